"""`preprocess_input`, `decode_predictions` and the class names a model carries."""

import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import lenet_blocks as lb
from lenet_blocks.inference import decode_predictions, model_class_names, preprocess_input

MODELS = {
    "gray": lb.build_lenet(),
    "rgb": lb.build_lenet("d2l", input_shape=(32, 32, 3)),
    "free": lb.build_lenet("tuned_gap", input_shape=(None, None, 1)),
}


@given(
    model=st.sampled_from(sorted(MODELS)),
    height=st.integers(1, 80),
    width=st.integers(1, 80),
    layout=st.sampled_from(["hw", "hwc1", "hwc3", "hwc4", "nhw", "nhwc3"]),
    dtype=st.sampled_from(["uint8", "float32", "float64", "int32", "bool"]),
)
def test_any_valid_image_becomes_the_models_input(model, height, width, layout, dtype):
    shape = {
        "hw": (height, width), "hwc1": (height, width, 1), "hwc3": (height, width, 3),
        "hwc4": (height, width, 4), "nhw": (2, height, width), "nhwc3": (2, height, width, 3),
    }[layout]  # fmt: skip
    if layout == "nhw" and width in (1, 3, 4):
        return  # (N, H, W) with W in 1, 3, 4 reads as one (H, W, C) image: documented
    images = (np.random.default_rng(0).uniform(0, 255, shape)).astype(dtype)
    target = MODELS[model]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the [0, 1] warning for small random floats
        batch = preprocess_input(images, target)
    _, h, w, c = target.input_shape
    expected = (2 if layout.startswith("n") else 1, h or height, w or width, c)
    assert batch.shape == expected and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 255.0


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((0, 28, 28)), "holds no images"),
        (np.full((28, 28), np.nan), "finite"),
        (np.zeros((28, 28), complex), "real numbers"),
        (np.array([["a"]]), "real numbers"),
        (np.zeros((2, 2, 28, 28, 1)), "must be \\(H, W\\)"),
        ([np.zeros((28, 28)), np.zeros((20, 20))], "of one shape"),
    ],
)
def test_invalid_images_are_refused(images, message):
    with pytest.raises(ValueError, match=message):
        preprocess_input(images, MODELS["gray"])


def test_aspect_ratio_is_kept_and_the_rest_padded_with_background():
    wide = np.full((10, 40), 200, "uint8")  # 4:1, becomes 28x7 centred
    batch = preprocess_input(wide, MODELS["gray"], invert=False)[0, ..., 0]
    assert batch[:10].max() == 0 and batch[-10:].max() == 0
    assert batch[14].min() > 150


def test_dark_object_on_light_background_is_inverted():
    photo = np.full((28, 28), 250, "uint8")
    photo[8:20, 8:20] = 10  # a dark object on white
    batch = preprocess_input(photo, MODELS["gray"])[0, ..., 0]
    assert batch[0, 0] == 5 and batch[14, 14] == 245
    kept = preprocess_input(photo, MODELS["gray"], invert=False)[0, ..., 0]
    assert kept[0, 0] == 250


def test_rgb_pil_image_becomes_luminance():
    image = Image.fromarray(np.full((28, 28, 3), [255, 0, 0], "uint8"))
    batch = preprocess_input(image, MODELS["gray"], invert=False)
    np.testing.assert_allclose(batch[0, 0, 0, 0], 0.299 * 255, rtol=1e-5)


def test_unit_range_floats_warn():
    with pytest.warns(UserWarning, match=r"\[0, 1\]; the model expects 0-255"):
        preprocess_input(np.full((28, 28), 0.5, "float32"), MODELS["gray"])


def test_decode_predictions_is_applications_style():
    decoded = decode_predictions(np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]), top=2)
    assert decoded == [[(1, "1", 0.6), (2, "2", 0.3)], [(0, "0", 0.5), (2, "2", 0.3)]]
    with pytest.raises(ValueError, match="must name the 3 classes"):
        decode_predictions(np.zeros((1, 3)), class_names=["a"])
    with pytest.raises(ValueError, match="`top` must be a positive int"):
        decode_predictions(np.zeros((1, 3)), top=0)


@pytest.mark.parametrize("preset", ["notebook", "lenet5_1998"])
def test_class_names_survive_a_reload_in_a_fresh_interpreter(preset, tmp_path):
    names = ["zero", "one", "two"]
    lb.build_lenet(preset, classes=3, class_names=names).save(tmp_path / "m.keras")
    script = (
        "import sys, lenet_blocks; from lenet_blocks.inference import model_class_names; "
        "print(model_class_names(lenet_blocks.load_model(sys.argv[1])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m.keras")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == str(tuple(names)), result.stderr[-2000:]


def test_class_names_are_checked_and_need_a_head():
    assert model_class_names(lb.build_lenet(classes=2, class_names=("a", "b"))) == ("a", "b")
    with pytest.raises(ValueError, match="`class_names` must be None or 2 distinct"):
        lb.build_lenet(classes=2, class_names=["a", "a"])
    with pytest.raises(ValueError, match="`class_names` applies to a model with its head"):
        lb.build_lenet(include_top=False, class_names=["a"])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            {"preset": "d2l", "classes": 5},
            r"labels up to 9 \(10 classes\) but the model's head has 5",
        ),
        ({"include_top": False}, r"headless model \(include_top=False\)"),
    ],
)
def test_evaluate_mismatches_are_one_line_errors(tmp_path, capsys, build, message):
    from idx_helpers import make_dataset, write_dataset

    from lenet_blocks import cli

    data_dir = write_dataset(tmp_path / "data", make_dataset(num_train=20, num_test=20, seed=0))
    lb.build_lenet(**build).save(tmp_path / "m.keras")
    assert cli.main(["evaluate", str(tmp_path / "m.keras"), "--data-dir", str(data_dir)]) == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and re.search(message, error), error


@pytest.mark.parametrize("preset", ["notebook", "lenet5_1998", "tuned_gap"])
def test_evaluate_works_for_free_sizes_and_every_output(preset):
    from lenet_blocks.training import evaluate_model

    shape = (None, None, 1) if preset == "tuned_gap" else (28, 28, 1)
    model = lb.build_lenet(preset, input_shape=shape, classes=4)
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28)).astype("uint8")
    labels = np.arange(8) % 4
    results = evaluate_model(model, images, labels)
    assert sorted(results["per_class_accuracy"]) == ["0", "1", "2", "3"]
    assert 0.0 <= results["accuracy"] <= 1.0


def test_class_names_flag_overrides(tmp_path, capsys):
    from lenet_blocks import cli

    lb.build_lenet("d2l", classes=3).save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), "uint8"))
    argv = ["predict", str(tmp_path / "m.keras"), str(tmp_path / "x.npy"), "--top-k", "3"]
    assert cli.main([*argv, "--class-names", "cat,dog,bird"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert all(name in line for name in ("cat", "dog", "bird"))
    assert cli.main([*argv, "--class-names", "cat,dog"]) == 2
    assert "`class_names` must name the 3 classes" in capsys.readouterr().err
