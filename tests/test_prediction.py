"""Tests of `lenet_blocks.prediction`: reading image files and reporting top-k classes."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import lenet_blocks as lb
from lenet_blocks.prediction import format_predictions, load_images, predict_files

MODEL = lb.build_lenet()


@pytest.fixture(scope="module")
def model():
    return MODEL


def png_bytes(width: int, height: int) -> bytes:
    """A grayscale PNG header declaring `width` x `height`, with an empty image stream."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def load_error(path) -> str:
    """The `ValueError` raised when loading `path`, checking that it names the file."""
    with pytest.raises(ValueError) as info:
        load_images(path, MODEL)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("shape", "count"), [((28, 28), 1), ((28, 28, 1), 1), ((3, 28, 28), 3), ((2, 28, 28, 1), 2)]
)
def test_npy_image_or_batch_loads(tmp_path, shape, count):
    array = np.random.default_rng(0).integers(0, 256, shape).astype("uint8")
    np.save(tmp_path / "x.npy", array)

    images = load_images(tmp_path / "x.npy", MODEL, invert=False)

    assert images.shape == (count, 28, 28, 1)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images.reshape(array.shape), array)


def test_png_is_converted_and_resized_keeping_its_aspect_ratio(tmp_path):
    Image.new("RGB", (56, 40), (255, 255, 255)).save(tmp_path / "white.png")

    images = load_images(tmp_path / "white.png", MODEL, invert=False)

    assert images.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(images[0, 4:24], 255.0)  # 56x40 -> 28x20, centred
    np.testing.assert_array_equal(images[0, :4], 0.0)  # padded with the background
    np.testing.assert_array_equal(images[0, 24:], 0.0)


def test_dark_object_on_white_png_is_inverted_by_default(tmp_path):
    picture = np.full((28, 28, 3), 255, "uint8")
    picture[10:18, 10:18] = 0
    Image.fromarray(picture).save(tmp_path / "photo.png")

    images = load_images(tmp_path / "photo.png", MODEL)

    assert images[0, 0, 0, 0] == 0 and images[0, 14, 14, 0] == 255


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.npy"):
        load_images(tmp_path / "absent.npy", MODEL)


def test_empty_batch_is_refused_by_predict_files(tmp_path, model):
    np.save(tmp_path / "empty.npy", np.zeros((0, 28, 28), "uint8"))

    with pytest.raises(ValueError, match=r"empty\.npy' holds no images.*\(0, 28, 28\)"):
        predict_files(model, [tmp_path / "empty.npy"])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e300], ids=str)
def test_non_finite_values_refused(tmp_path, value):
    array = np.zeros((2, 28, 28))
    array[1, 3, 4] = value  # 1e300 is finite in float64, infinite in float32
    np.save(tmp_path / "x.npy", array)

    assert "holds non-finite values" in load_error(tmp_path / "x.npy")


@pytest.mark.parametrize(
    "array",
    [np.zeros((28, 28), complex), np.full((28, 28), "a"), np.full((28, 28), b"a")],
    ids=["complex", "str", "bytes"],
)
def test_non_real_dtypes_refused_naming_the_file(tmp_path, array):
    np.save(tmp_path / "x.npy", array)

    message = load_error(tmp_path / "x.npy")

    assert (
        f"must hold real numbers (bool, int or float). Received: an array of dtype {array.dtype}"
        in message
    )


def test_another_size_is_resized_and_a_non_image_shape_named(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 32, 32), "uint8"))
    assert load_images(tmp_path / "x.npy", MODEL).shape == (5, 28, 28, 1)

    np.save(tmp_path / "x.npy", np.zeros((2, 5, 32, 32), "uint8"))
    assert "Received: an array of shape (2, 5, 32, 32)" in load_error(tmp_path / "x.npy")


@pytest.mark.parametrize(
    "content",
    [b"", b"not numpy", "npz", "declares-more-than-it-holds"],
    ids=["empty", "garbage", "npz", "short"],
)
def test_unreadable_npy_refused(tmp_path, content):
    path = tmp_path / "x.npy"
    if content == "npz":
        buffer = io.BytesIO()
        np.savez(buffer, x=np.zeros((28, 28)))
        content = buffer.getvalue()
    elif content == "declares-more-than-it-holds":
        buffer = io.BytesIO()
        header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 28, 28)}
        np.lib.format.write_array_header_1_0(buffer, header)
        content = buffer.getvalue() + bytes(100)
    path.write_bytes(content)

    assert "is not a" in load_error(path)


def test_png_declaring_30000_squared_pixels_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_bytes(30000, 30000))

    message = load_error(path)

    assert "refused before decoding" in message
    assert "PIL.Image.MAX_IMAGE_PIXELS" in message


def test_png_over_pil_warning_limit_refused_too(tmp_path, monkeypatch):
    # PIL only warns between MAX_IMAGE_PIXELS and twice that; the warning is an error here.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    path = tmp_path / "big.png"
    path.write_bytes(png_bytes(12, 12))

    assert "refused before decoding" in load_error(path)


def test_not_an_image_refused(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")

    assert "is not a readable image" in load_error(tmp_path / "notes.png")


def test_predict_files_reports_top_k_per_image(tmp_path, model):
    np.save(tmp_path / "batch.npy", np.zeros((3, 28, 28), "uint8"))

    results = predict_files(model, [tmp_path / "batch.npy"], top_k=2)

    assert [(r["file"], r["index"]) for r in results] == [
        (str(tmp_path / "batch.npy"), i) for i in range(3)
    ]
    for result in results:
        (first, p1), (second, p2) = result["top"]
        assert first in [str(i) for i in range(10)] and first != second  # no names: indices
        assert 1 >= p1 >= p2 >= 0
    assert format_predictions(results).count("\n") == 2


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_invalid_top_k_refused(model, top_k, tmp_path):
    with pytest.raises(ValueError, match=r"`top_k` must be a positive int"):
        predict_files(model, [tmp_path / "x.npy"], top_k=top_k)


@pytest.mark.parametrize(
    "build",
    [
        {"preset": "d2l", "classes": 5},
        {"preset": "tuned_gap", "input_shape": (None, None, 1)},
        {"preset": "lenet5_1998", "classes": 3},
        {"preset": "notebook", "classifier_activation": None},
    ],
    ids=["5-classes", "free-size", "rbf", "logits"],
)
def test_predict_works_for_every_model_the_builder_makes(tmp_path, build):
    model = lb.build_lenet(**build)
    np.save(tmp_path / "x.npy", np.zeros((2, 40, 30), "uint8"))
    results = predict_files(model, [tmp_path / "x.npy"], top_k=3)
    classes = model.output_shape[-1]
    assert len(results) == 2 and all(len(r["top"]) == min(3, classes) for r in results)
    assert all(name in [str(i) for i in range(classes)] for r in results for name, _ in r["top"])
    assert all(abs(sum(p for _, p in r["top"])) <= 1 + 1e-6 for r in results)


def test_model_class_names_are_reported(tmp_path):
    model = lb.build_lenet(classes=2, class_names=["cat", "dog"])
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), "uint8"))
    (result,) = predict_files(model, [tmp_path / "x.npy"], top_k=2)
    assert sorted(name for name, _ in result["top"]) == ["cat", "dog"]


def test_headless_model_gets_one_clear_error(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28), "uint8"))
    with pytest.raises(ValueError, match=r"headless model .*output shape \(None, 4, 4, 16\)"):
        predict_files(lb.build_lenet(include_top=False), [tmp_path / "x.npy"])


def test_unit_range_npy_warns(tmp_path):
    np.save(tmp_path / "x.npy", np.full((28, 28), 0.5, "float32"))
    with pytest.warns(UserWarning, match=r"x.npy' all lie in \[0, 1\]"):
        load_images(tmp_path / "x.npy", MODEL)
