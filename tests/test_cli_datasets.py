"""`lenet-blocks train/evaluate/predict --dataset` end to end on data the tests write: an RGB and
a grayscale image folder, an `.npz` archive; the errors of data a preset cannot take.

In-process (`cli.main`): the commands are what is tested, not the process around them
(tests/test_cli.py runs the real subprocesses)."""

import json
import re

import numpy as np
import pytest
from data_helpers import labelled, write_images, write_npz
from PIL import Image

from lenet_blocks import cli, load_model
from lenet_blocks.inference import model_class_names

CLASSES = ("bar", "square")
TRAIN = ("--epochs", "1", "--batch-size", "8", "--verbose", "0")


def shape_image(kind: str, size: tuple[int, int], mode: str, rng) -> Image.Image:
    """A bright bar or square on a dark ground (dark borders: predict does not invert it)."""
    side = size[0]
    pixels = rng.integers(0, 40, size=(side, side), dtype=np.uint8)
    middle = slice(side // 4, side - side // 4)
    if kind == "bar":
        pixels[side // 2 - 1 : side // 2 + 1, middle] = 255
    else:
        pixels[middle, middle] = 255
    if mode == "RGB":
        return Image.fromarray(np.stack([pixels, pixels // 2, pixels], axis=-1), "RGB")
    return Image.fromarray(pixels, "L")


def write_folder(root, count: int, size: int = 16, rgb: bool = False, seed: int = 0):
    counts = dict.fromkeys(CLASSES, count)
    mode = "RGB" if rgb else "L"
    return write_images(root, counts, (size, size), mode, seed, draw=shape_image)


def write_archive(path, classes: int = 3, size: int = 16):
    """An `.npz` archive of 40 training and 9 test images, labels cycling 0..classes-1."""
    x, y = labelled(40, classes, (size, size))
    return write_npz(path, (x, y), (x[:9], y[:9]))


def run(*args) -> int:
    return cli.main([str(arg) for arg in args])


def test_rgb_folder_with_train_and_test_parts_end_to_end(tmp_path, capsys):
    write_folder(tmp_path / "rgb" / "train", 10, rgb=True)
    write_folder(tmp_path / "rgb" / "test", 3, rgb=True, seed=1)
    run_dir = tmp_path / "run"

    assert run("train", "--dataset", tmp_path / "rgb", "--output", run_dir, *TRAIN) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model = load_model(run_dir / "model.keras")
    assert model.input_shape == (None, 16, 16, 3) and model_class_names(model) == CLASSES
    assert (metrics["train_samples"], metrics["validation_samples"]) == (18, 2)
    assert metrics["test_samples"] == 6 and metrics["test_split"] == "test"

    capsys.readouterr()
    evaluated = tmp_path / "evaluate.json"
    arguments = ("--dataset", tmp_path / "rgb", "--output", evaluated)
    assert run("evaluate", run_dir / "model.keras", *arguments) == 0
    assert json.loads(evaluated.read_text())["samples"] == 6
    assert "  bar " in capsys.readouterr().out

    image = tmp_path / "rgb" / "test" / "square" / "0.png"
    assert run("predict", run_dir / "model.keras", image, "--top-k", "2") == 0
    answered = capsys.readouterr().out.split(": ", 1)[1]
    assert {name.split(" (")[0] for name in answered.strip().split(", ")} == set(CLASSES)


def test_grayscale_folder_without_test_part_end_to_end(tmp_path, capsys):
    root = write_folder(tmp_path / "gray", 10)
    run_dir = tmp_path / "run"

    assert (
        run("train", "--dataset", root, "--output", run_dir, "--validation-split", "0.2", *TRAIN)
        == 0
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test_split"] == "validation" and metrics["test_samples"] == 4
    assert load_model(run_dir / "model.keras").input_shape == (None, 16, 16, 1)

    capsys.readouterr()
    assert run("evaluate", run_dir / "model.keras", "--dataset", root) == 0  # every image
    assert "square" in capsys.readouterr().out
    assert run("predict", run_dir / "model.keras", root / "bar" / "0.png", "--invert", "no") == 0
    assert capsys.readouterr().out.split(": ", 1)[1].split(" (")[0] in CLASSES

    other_names = ("evaluate", run_dir / "model.keras", "--dataset", root, "--class-names", "x,y")
    assert run(*other_names) == 2
    assert "its class folders ['bar', 'square'] must be the model's" in capsys.readouterr().err


def test_npz_archive_end_to_end_with_class_names(tmp_path, capsys):
    archive = write_archive(tmp_path / "mine.npz")
    run_dir = tmp_path / "run"

    arguments = ("--dataset", archive, "--class-names", "a,b,c", "--output", run_dir)
    assert run("train", *arguments, *TRAIN) == 0
    model = load_model(run_dir / "model.keras")
    assert model_class_names(model) == ("a", "b", "c") and model.input_shape[1:] == (16, 16, 1)
    capsys.readouterr()
    assert run("evaluate", run_dir / "model.keras", "--dataset", archive) == 0
    assert "  c " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("preset", "size", "message"),
    [
        ("notebook", 12, "cannot take the images of .* \\(12x12x1\\): `input_shape` must have"),
        ("lenet5_1998", 16, "at least 28 for LeNet-5"),
    ],
)
def test_images_a_preset_cannot_take_are_one_line_exit_2(tmp_path, capsys, preset, size, message):
    root = write_folder(tmp_path / "small", 5, size=size)
    arguments = ("--dataset", root, "--preset", preset, "--output", tmp_path / "run")

    assert run("train", *arguments, *TRAIN) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert re.search(message, error)


def test_bad_file_in_a_folder_is_exit_2_naming_it_or_skipped_and_counted(tmp_path, capsys):
    root = write_folder(tmp_path / "bad", 5)
    (root / "bar" / "notes.txt").write_text("not an image")
    arguments = ("--dataset", root, "--output", tmp_path / "run", *TRAIN)

    assert run("train", *arguments) == 2
    error = capsys.readouterr().err
    assert "bar/notes.txt: is not a PNG/JPEG file" in error and error.count("\n") == 1

    assert run("train", *arguments, "--skip-bad-files") == 0
    assert "Skipped 1 bad files (metrics.json lists them), the first: " in capsys.readouterr().err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(metrics["skipped_files"]) == 1 and metrics["settings"]["skip_bad_files"]
    assert metrics["train_samples"] + metrics["validation_samples"] == 10


def test_tune_searches_an_image_folder_read_into_memory(tmp_path):
    root = write_folder(tmp_path / "folder", 6, size=28)  # HyperLeNet's space fits 28
    output = tmp_path / "tune"

    arguments = ("--dataset", root, "--output", output, "--max-trials", "1", "--epochs", "1")
    assert run("tune", *arguments, "--verbose", "0") == 0
    model = load_model(output / "best_model.keras")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, len(CLASSES))
    assert model_class_names(model) == tuple(sorted(CLASSES))  # the folder names travel with it


def test_tune_searches_an_npz_archive_with_its_geometry(tmp_path):
    archive = write_archive(tmp_path / "mine.npz", classes=4, size=28)  # HyperLeNet's space fits 28
    output = tmp_path / "tune"

    arguments = ("--dataset", archive, "--output", output, "--max-trials", "1", "--epochs", "1")
    assert run("tune", *arguments, "--verbose", "0") == 0
    model = load_model(output / "best_model.keras")
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 4)
