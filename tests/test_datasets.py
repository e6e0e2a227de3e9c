"""Tests for `lenet_blocks.datasets`."""

import gzip
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from idx_helpers import (
    MEMORY_CAP_AVAILABLE,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    idx_bytes,
    make_dataset,
    run_memory_capped,
    write_bytes,
    write_dataset,
    write_gzip_bomb,
    write_idx,
)

from lenet_blocks import datasets
from lenet_blocks.datasets import (
    FASHION_MNIST_CLASS_NAMES,
    DatasetNotFoundError,
    load_fashion_mnist,
    read_idx_file,
)

REAL_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DEBIAN_DATA_DIR = datasets.DEBIAN_DATA_DIR
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


@pytest.fixture(autouse=True)
def isolated_locations(tmp_path, monkeypatch):
    """Points every default search location at empty temporary directories."""
    monkeypatch.delenv(datasets.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(datasets, "DEBIAN_DATA_DIR", str(tmp_path / "debian"))


def install_fake_keras(monkeypatch, get_file):
    """Makes `import keras` inside the module return a stub with `utils.get_file`."""
    fake = types.SimpleNamespace(utils=types.SimpleNamespace(get_file=get_file))
    monkeypatch.setitem(sys.modules, "keras", fake)


def assert_same_dataset(loaded, expected):
    for got, want in zip((*loaded[0], *loaded[1]), (*expected[0], *expected[1]), strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want, strict=True)


def read_error(path, kind):
    """Returns the `ValueError` raised when reading `path`, checking it names the file."""
    with pytest.raises(ValueError) as info:
        read_idx_file(path, kind)
    assert str(path) in str(info.value)
    return str(info.value)


# Loading and search order.


def test_loads_small_gzip_set_exactly(tmp_path):
    dataset = make_dataset()
    write_dataset(tmp_path / "data", dataset)

    assert_same_dataset(load_fashion_mnist(tmp_path / "data", download=False), dataset)


def test_loads_uncompressed_files(tmp_path):
    dataset = make_dataset()
    write_dataset(tmp_path / "data", dataset, compress=False)

    assert_same_dataset(load_fashion_mnist(tmp_path / "data", download=False), dataset)


def test_data_dir_takes_precedence_over_env_var(tmp_path, monkeypatch):
    explicit, from_env = make_dataset(seed=1), make_dataset(seed=2)
    write_dataset(tmp_path / "explicit", explicit)
    write_dataset(tmp_path / "env", from_env)
    monkeypatch.setenv(datasets.DATA_DIR_ENV_VAR, str(tmp_path / "env"))

    assert_same_dataset(load_fashion_mnist(tmp_path / "explicit", download=False), explicit)


def test_env_var_dir_used(tmp_path, monkeypatch):
    dataset = make_dataset()
    write_dataset(tmp_path / "env", dataset)
    write_dataset(datasets.keras_cache_dir(), make_dataset(seed=9))
    monkeypatch.setenv(datasets.DATA_DIR_ENV_VAR, str(tmp_path / "env"))

    assert_same_dataset(load_fashion_mnist(download=False), dataset)


def test_keras_home_cache_used(tmp_path):
    dataset = make_dataset()
    write_dataset(tmp_path / "keras_home" / "datasets" / "fashion-mnist", dataset)
    write_dataset(Path(datasets.DEBIAN_DATA_DIR), make_dataset(seed=9))

    assert_same_dataset(load_fashion_mnist(download=False), dataset)


def test_home_keras_cache_used_without_keras_home(tmp_path, monkeypatch):
    dataset = make_dataset()
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write_dataset(tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist", dataset)

    assert_same_dataset(load_fashion_mnist(download=False), dataset)


def test_debian_dir_used():
    dataset = make_dataset()
    write_dataset(Path(datasets.DEBIAN_DATA_DIR), dataset)

    assert_same_dataset(load_fashion_mnist(download=False), dataset)


def test_candidate_dirs_order(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV_VAR, str(tmp_path / "env"))

    assert [location.path for location in datasets.candidate_dirs()] == [
        tmp_path / "env",
        tmp_path / "keras_home" / "datasets" / "fashion-mnist",
        tmp_path / "debian",
    ]


def test_data_dir_without_copy_does_not_fall_back(tmp_path, monkeypatch):
    write_dataset(tmp_path / "env", make_dataset())
    write_dataset(Path(datasets.DEBIAN_DATA_DIR), make_dataset())
    monkeypatch.setenv(datasets.DATA_DIR_ENV_VAR, str(tmp_path / "env"))
    install_fake_keras(monkeypatch, get_file=lambda *a, **k: pytest.fail("downloaded"))

    with pytest.raises(DatasetNotFoundError, match="not attempted because data_dir was given"):
        load_fashion_mnist(tmp_path / "empty")


def test_partial_copy_reports_missing_file(tmp_path):
    write_dataset(tmp_path / "data", make_dataset())
    (tmp_path / "data" / f"{TEST_LABELS}.gz").unlink()

    with pytest.raises(
        DatasetNotFoundError, match=rf"data_dir argument\): missing {TEST_LABELS}\[\.gz\]\n"
    ):
        load_fashion_mnist(tmp_path / "data", download=False)


# The not-found error.


def test_missing_everywhere_error_lists_locations_and_remedies(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV_VAR, str(tmp_path / "env"))

    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(download=False)

    message = str(info.value)
    assert isinstance(info.value, DatasetNotFoundError)
    for expected in (
        str(tmp_path / "env"),
        str(tmp_path / "keras_home" / "datasets" / "fashion-mnist"),
        str(tmp_path / "debian"),
        "disabled (download=False)",
        "apt-get install dataset-fashion-mnist",
        "--data-dir",
        "lenet-blocks",
        "LENET_BLOCKS_DATA_DIR",
        "internet",
    ):
        assert expected in message


def test_failed_download_is_reported_without_chaining(monkeypatch):
    def offline_get_file(fname, origin, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- no network")

    install_fake_keras(monkeypatch, offline_get_file)

    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist()

    assert f"failed (Exception: URL fetch failure on {KERAS_URL}" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


# Download.


@pytest.fixture
def fake_download(monkeypatch):
    """Installs a `get_file` stub that 'downloads' a small set; returns its calls."""
    dataset = make_dataset()
    sources = {
        f"{TRAIN_IMAGES}.gz": dataset[0][0],
        f"{TRAIN_LABELS}.gz": dataset[0][1],
        f"{TEST_IMAGES}.gz": dataset[1][0],
        f"{TEST_LABELS}.gz": dataset[1][1],
    }
    calls = []

    def get_file(fname, origin, cache_subdir, cache_dir):
        calls.append((fname, origin, cache_subdir, cache_dir))
        return str(write_idx(Path(cache_dir) / cache_subdir / fname, sources[fname]))

    install_fake_keras(monkeypatch, get_file)
    return dataset, calls


def test_download_uses_keras_origin_and_cache(tmp_path, fake_download):
    _, calls = fake_download

    load_fashion_mnist()

    assert sorted(calls) == sorted(
        (fname, KERAS_URL + fname, "datasets/fashion-mnist", str(tmp_path / "keras_home"))
        for fname in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        )
    )


def test_downloaded_files_are_loaded(fake_download):
    dataset, _ = fake_download

    assert_same_dataset(load_fashion_mnist(), dataset)


# Validation of single files.


def test_read_idx_file_rejects_unknown_kind(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(3, np.uint8))

    with pytest.raises(ValueError, match="kind"):
        read_idx_file(path, "pixels")


@given(num_items=st.integers(0, 4), compress=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_read_idx_file_round_trips_images(tmp_path_factory, num_items, compress, seed):
    images = np.random.default_rng(seed).integers(0, 256, (num_items, 28, 28), np.uint8)
    path = tmp_path_factory.mktemp("idx") / ("images.gz" if compress else "images")
    write_idx(path, images)

    np.testing.assert_array_equal(read_idx_file(path, "images"), images, strict=True)


def test_gzip_detected_from_content_not_name(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    path = write_bytes(tmp_path / "labels", idx_bytes(labels), compress=True)

    np.testing.assert_array_equal(read_idx_file(path, "labels"), labels, strict=True)


def test_wrong_magic_rejected(tmp_path):
    path = write_idx(tmp_path / "images.gz", np.zeros(5, np.uint8))

    assert "bad magic number 0x00000801, expected 0x00000803" in read_error(path, "images")


def test_images_of_any_size_are_read_but_not_empty_ones(tmp_path):
    images = np.arange(2 * 5 * 7, dtype=np.uint8).reshape(2, 5, 7)
    path = write_idx(tmp_path / "images.gz", images)
    np.testing.assert_array_equal(read_idx_file(path, "images"), images, strict=True)

    empty = write_idx(tmp_path / "empty.gz", np.zeros((2, 0, 28), np.uint8))
    assert "images are 0x28, expected both sides of at least 1 pixel" in read_error(empty, "images")


def test_fashion_mnist_needs_28x28_images(tmp_path):
    (x_train, y_train), test = make_dataset()
    write_dataset(tmp_path / "data", ((x_train[:, :27], y_train), test))

    with pytest.raises(ValueError, match="images are 27x28, expected 28x28 for Fashion-MNIST"):
        load_fashion_mnist(tmp_path / "data", download=False)


def test_header_too_short_rejected(tmp_path):
    path = write_bytes(tmp_path / "labels", b"\x00\x00\x08")

    assert "too short" in read_error(path, "labels")


def test_truncated_file_rejected(tmp_path):
    content = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    path = write_bytes(tmp_path / "images.gz", content[:-10])

    assert "truncated" in read_error(path, "images")


def test_trailing_data_rejected(tmp_path):
    content = idx_bytes(np.zeros(4, np.uint8))
    path = write_bytes(tmp_path / "labels.gz", content + b"\x00")

    assert "trailing data" in read_error(path, "labels")


def test_truncated_gzip_stream_rejected(tmp_path):
    compressed = gzip.compress(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    path = write_bytes(tmp_path / "images.gz", compressed[:-20], compress=False)

    with pytest.raises(ValueError, match="gzip") as info:
        read_idx_file(path, "images")

    assert str(path) in str(info.value)
    assert info.value.__suppress_context__


def test_label_out_of_range_rejected(tmp_path):
    (x_train, _), test = make_dataset(num_train=4)
    write_dataset(tmp_path / "data", ((x_train, np.array([0, 9, 10, 3], np.uint8)), test))

    with pytest.raises(ValueError, match="label 10 at index 2 is out of range 0-9") as info:
        load_fashion_mnist(tmp_path / "data", download=False)
    assert TRAIN_LABELS in str(info.value)


def test_count_mismatch_between_images_and_labels_rejected(tmp_path):
    (x_train, y_train), test = make_dataset(num_train=6)
    write_dataset(tmp_path / "data", ((x_train, y_train[:5]), test))

    with pytest.raises(ValueError, match=r"holds 6 images but .* holds 5 labels"):
        load_fashion_mnist(tmp_path / "data", download=False)


def test_file_with_the_official_count_and_other_content_fails_the_checksum_asked(tmp_path):
    path = write_idx(tmp_path / f"{TEST_LABELS}.gz", np.zeros(10000, np.uint8))
    official = (10000, datasets.FILE_SHA256[TEST_LABELS], "Fashion-MNIST")

    with pytest.raises(ValueError, match="sha256") as info:
        read_idx_file(path, "labels", official=official)
    assert "get a fresh copy" in str(info.value) and str(path) in str(info.value)
    assert len(read_idx_file(path, "labels")) == 10000  # no checksum unless asked


def test_small_file_is_not_checksummed_even_as_fashion_mnist(tmp_path):
    labels = np.zeros(9999, np.uint8)
    path = write_idx(tmp_path / f"{TEST_LABELS}.gz", labels)
    official = (10000, datasets.FILE_SHA256[TEST_LABELS], "Fashion-MNIST")

    np.testing.assert_array_equal(
        read_idx_file(path, "labels", official=official), labels, strict=True
    )


def test_empty_split_rejected(tmp_path):
    write_dataset(tmp_path / "data", make_dataset(num_train=0))

    with pytest.raises(ValueError, match=rf"{TRAIN_IMAGES}\.gz holds no images"):
        load_fashion_mnist(tmp_path / "data", download=False)


# Bounded reads and unreadable files.

CHILD_IMPORTS = "import gzip, sys\nfrom lenet_blocks.datasets import read_idx_file"
READ_IN_CHILD = """
try:
    read_idx_file(sys.argv[1], "labels")
except ValueError as error:
    print(error)
"""
needs_memory_cap = pytest.mark.skipif(not MEMORY_CAP_AVAILABLE, reason="needs Linux' RLIMIT_AS")


@pytest.fixture(scope="module")
def gzip_bomb(tmp_path_factory):
    """512 MiB of content behind a header declaring 10 labels, in a file of a few MiB."""
    path = tmp_path_factory.mktemp("bomb") / "labels.gz"
    return write_gzip_bomb(path, idx_bytes(np.zeros(10, np.uint8)), inflated_size=2**29)


@needs_memory_cap
def test_gzip_bomb_stops_at_declared_size_in_bounded_memory(gzip_bomb):
    # The child has 128 MiB to spare after its imports.
    result = run_memory_capped(CHILD_IMPORTS, READ_IN_CHILD, str(gzip_bomb))

    assert result.returncode == 0, result.stderr
    assert f"{gzip_bomb}: file has trailing data: header declares shape (10,)" in result.stdout


@needs_memory_cap
def test_gzip_bomb_decompressed_whole_would_exceed_the_cap(gzip_bomb):
    # The cap of the test above is tight enough to catch a reader that inflates everything.
    code = "gzip.decompress(open(sys.argv[1], 'rb').read())"

    result = run_memory_capped(CHILD_IMPORTS, code, str(gzip_bomb))

    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_header_over_default_limit_rejected_before_reading(tmp_path):
    header = idx_bytes(np.zeros(0, np.uint8))[:4] + (2**31).to_bytes(4, "big")
    path = write_bytes(tmp_path / "labels.gz", header)

    message = read_error(path, "labels")

    assert f"over the limit of {datasets.MAX_IDX_BYTES} bytes" in message
    assert "max_bytes=" in message and "MAX_IDX_BYTES" in message


def test_limit_set_by_argument_and_by_module_constant(tmp_path, monkeypatch):
    labels = np.zeros(100, np.uint8)
    path = write_idx(tmp_path / "labels.gz", labels)

    with pytest.raises(ValueError, match=r"\(108 bytes\), over the limit of 107 bytes"):
        read_idx_file(path, "labels", max_bytes=107)
    np.testing.assert_array_equal(read_idx_file(path, "labels", max_bytes=108), labels)
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 50)
    assert "over the limit of 50 bytes" in read_error(path, "labels")


@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, True, "100"])
def test_invalid_max_bytes_rejected(tmp_path, max_bytes):
    path = write_idx(tmp_path / "labels", np.zeros(3, np.uint8))

    with pytest.raises(ValueError, match=r"`max_bytes` must be a positive int or None"):
        read_idx_file(path, "labels", max_bytes=max_bytes)


def test_unreadable_file_is_one_line_value_error(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8))

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)  # chmod does not stop root, who may run the tests

    message = read_error(path, "labels")
    assert message == f"{path}: cannot read the file (Permission denied)."


def test_directory_instead_of_file_rejected(tmp_path):
    assert "cannot read the file" in read_error(tmp_path, "labels")


def test_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent"):
        read_idx_file(tmp_path / "absent", "labels")


def test_returned_array_is_read_only(tmp_path):
    path = write_idx(tmp_path / "labels.gz", np.zeros(3, np.uint8))

    assert not read_idx_file(path, "labels").flags.writeable


def test_class_names():
    official = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot"
    assert official.split("|") == list(FASHION_MNIST_CLASS_NAMES)


@pytest.mark.integration
@pytest.mark.skipif(not REAL_DATA_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian_package(monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_DATA_DIR", DEFAULT_DEBIAN_DATA_DIR)

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)

    assert Path(DEFAULT_DEBIAN_DATA_DIR) == REAL_DATA_DIR
    assert x_train.shape == (60000, 28, 28)
    assert y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28)
    assert y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)
