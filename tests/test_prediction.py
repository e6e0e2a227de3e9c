"""Tests of `lenet_blocks.prediction`: reading image files and reporting top-k classes."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import lenet_blocks as lb
from lenet_blocks.prediction import format_predictions, load_images, predict_files

SIZE = (28, 28)


@pytest.fixture(scope="module")
def model():
    return lb.build_lenet()


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
        load_images(path, SIZE, 1)
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

    images = load_images(tmp_path / "x.npy", SIZE, 1)

    assert images.shape == (count, 28, 28, 1)
    assert images.dtype == np.float32
    np.testing.assert_array_equal(images.reshape(array.shape), array)


def test_png_is_converted_and_resized(tmp_path):
    Image.new("RGB", (56, 40), (255, 255, 255)).save(tmp_path / "white.png")

    images = load_images(tmp_path / "white.png", SIZE, 1)

    assert images.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(images, 255.0)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.npy"):
        load_images(tmp_path / "absent.npy", SIZE, 1)


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


def test_wrong_shape_names_the_received_shape(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((5, 32, 32), "uint8"))

    assert "Received: an array of shape (5, 32, 32)" in load_error(tmp_path / "x.npy")


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
        assert first in lb.datasets.FASHION_MNIST_CLASS_NAMES and first != second
        assert 1 >= p1 >= p2 >= 0
    assert format_predictions(results).count("\n") == 2


@pytest.mark.parametrize("top_k", [0, -1, 1.5, True])
def test_invalid_top_k_refused(model, top_k, tmp_path):
    with pytest.raises(ValueError, match=r"`top_k` must be a positive int"):
        predict_files(model, [tmp_path / "x.npy"], top_k=top_k)
