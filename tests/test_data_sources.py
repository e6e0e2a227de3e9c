"""Tests for `lenet_blocks.data_sources`, `npz_archives` and `image_folders`: every source on
small files the tests write, and each bad-data case."""

import pickle

import numpy as np
import pytest
from data_helpers import (
    cifar10_batch,
    labelled,
    python2_cifar10_batch,
    write_cifar10,
    write_images,
    write_npz,
)
from idx_helpers import write_dataset
from PIL import Image

from lenet_blocks import datasets, npz_archives
from lenet_blocks.data_sources import (
    CIFAR10_CLASS_NAMES,
    MNIST_CLASS_NAMES,
    _read_cifar10_batch,
    check_arrays,
    is_image_folder,
    load_dataset,
)
from lenet_blocks.datasets import DatasetNotFoundError
from lenet_blocks.image_folders import scan_image_folder


@pytest.fixture(autouse=True)
def isolated_locations(tmp_path, monkeypatch):
    """Points every default search location at empty temporary directories."""
    monkeypatch.delenv(datasets.DATA_DIR_ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(datasets, "DEBIAN_DATA_DIR", str(tmp_path / "debian"))


# IDX directories: the official counts are the user's data unless asked for as Fashion-MNIST.


@pytest.fixture(scope="module")
def official_count_idx_dir(tmp_path_factory):
    """An MNIST-like IDX set of one's own with the official item counts (60,000 / 10,000)."""
    split = [
        (np.zeros((n, 28, 28), np.uint8), (np.arange(n) % 10).astype(np.uint8))
        for n in (60000, 10000)
    ]
    return write_dataset(tmp_path_factory.mktemp("my_idx"), split, compress=False)


def test_idx_set_with_official_counts_loads_as_ones_own_data(official_count_idx_dir):
    data = load_dataset(official_count_idx_dir)

    assert data.train[0].shape == (60000, 28, 28) and data.test[1].shape == (10000,)
    assert data.class_names == tuple(str(index) for index in range(10))


def test_the_same_set_asked_for_as_fashion_mnist_fails_the_checksum(official_count_idx_dir):
    with pytest.raises(ValueError, match="expected c59f468a") as info:
        load_dataset("fashion_mnist", official_count_idx_dir)

    message = str(info.value)
    assert "\n" not in message and "get a fresh copy" in message and "--dataset DIR" in message


def test_mnist_npz_with_official_counts_is_checksummed_only_when_asked_for_by_name(tmp_path):
    train, test = labelled(60000, 10, (28, 28)), labelled(10000, 10, (28, 28))
    path = write_npz(tmp_path / "mnist.npz", train, test)

    assert load_dataset(path).train[0].shape == (60000, 28, 28)
    with pytest.raises(ValueError, match=r"expected 731c5ac6.* fresh copy") as info:
        load_dataset("mnist", tmp_path)
    assert str(path) in str(info.value)


def test_idx_set_of_any_image_size_and_dense_labels(tmp_path):
    train, test = labelled(9, 3, (5, 6)), labelled(3, 3, (5, 6))
    write_dataset(tmp_path / "mine", (train, test), compress=True)

    data = load_dataset(tmp_path / "mine")

    assert data.image_shape == (5, 6, 1) and data.classes == 3
    np.testing.assert_array_equal(data.train[1], train[1])


# .npz archives.


def test_npz_loads_memory_mapped_and_takes_class_names(tmp_path):
    path = write_npz(tmp_path / "mine.npz", labelled(6, 3), labelled(3, 3))

    data = load_dataset(path, class_names=["a", "b", "c"])

    images = data.train[0]  # a view of the file's pages: no copy, read-only
    assert isinstance(images.base, np.memmap) and not images.flags.writeable
    assert data.class_names == ("a", "b", "c") and data.image_shape == (8, 8, 1)


def test_compressed_npz_with_rgb_images_and_column_labels(tmp_path):
    x, y = labelled(4, 2, (6, 6, 3))
    path = write_npz(tmp_path / "rgb.npz", (x, y[:, None]), (x, y[:, None]), compressed=True)

    data = load_dataset(path)

    assert data.image_shape == (6, 6, 3) and data.train[1].shape == (4,)


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ({"x_train": np.zeros((6, 8, 8), "float32")}, "x_train must hold uint8 pixels"),
        ({"x_test": np.zeros((3, 8), "uint8")}, r"x_test must be \(N, H, W\)"),
        ({"y_train": np.zeros(5, "uint8")}, "x_train holds 6 images and y_train 5 labels"),
        ({"y_train": np.array([0, 1, 3, 0, 1, 3], "uint8")}, "class 2 has no training image"),
        ({"y_test": np.array([0, 1, 4], "uint8")}, "label 4 at index 2 is out of range 0-2"),
        ({"y_train": np.zeros(6, "float32")}, "y_train must be integer labels"),
        ({"x_test": np.zeros((3, 9, 9), "uint8")}, "both splits need one image shape"),
    ],
)
def test_bad_npz_is_one_line_naming_the_file(tmp_path, replace, message):
    path = write_npz(tmp_path / "bad.npz", labelled(6, 3), labelled(3, 3), **replace)

    with pytest.raises(ValueError, match=message) as info:
        load_dataset(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_over_the_size_limit_together_is_refused_before_reading(
    tmp_path, monkeypatch, compressed
):
    path = write_npz(tmp_path / "big.npz", labelled(6, 3), labelled(3, 3), compressed=compressed)
    sizes = [6 * 8 * 8, 6, 3 * 8 * 8, 3]  # x_train, y_train, x_test, y_test (uint8)
    monkeypatch.setattr(npz_archives, "MAX_NPZ_BYTES", sum(sizes) - 1)
    read = []
    monkeypatch.setattr(npz_archives, "_read_member", lambda *args: read.append(args))
    with pytest.raises(ValueError, match=f"declare {sum(sizes)} bytes .* over the limit of"):
        npz_archives.read_npz(path)
    assert read == []  # refused on the headers alone
    monkeypatch.undo()
    assert npz_archives.read_npz(path)["x_train"].shape == (6, 8, 8)


def test_npz_without_the_keras_layout_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros((2, 8, 8), "uint8"))

    with pytest.raises(ValueError, match="missing x_train, y_train, x_test, y_test"):
        load_dataset(path)


def test_npz_holding_objects_is_refused_without_unpickling(tmp_path):
    objects = np.array([{"a": 1}, None], dtype=object)
    path = write_npz(tmp_path / "objects.npz", labelled(2, 2), labelled(2, 2), y_test=objects)

    with pytest.raises(ValueError, match=r"y_test\.npy holds Python objects"):
        load_dataset(path)


def test_array_checks_name_the_source():
    with pytest.raises(ValueError, match="`data`: y_train holds the negative label -1"):
        check_arrays(
            (np.zeros((2, 4, 4), "uint8"), np.array([0, -1])),
            (np.zeros((1, 4, 4), "uint8"), np.array([0])),
            "`data`",
        )


# Named sets from local copies: Keras' cache layouts.


def test_mnist_from_a_copy_in_keras_cache(tmp_path):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    write_npz(cache / "mnist.npz", labelled(20, 10, (28, 28)), labelled(10, 10, (28, 28)))

    data = load_dataset("mnist", download=False)

    assert data.class_names == MNIST_CLASS_NAMES and data.train[0].shape == (20, 28, 28)


def test_mnist_not_found_lists_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV_VAR, str(tmp_path / "mine"))

    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", download=False)

    message = str(info.value)
    for place in (tmp_path / "mine", tmp_path / "keras_home" / "datasets", "download=False"):
        assert str(place) in message


def test_cifar10_from_keras_extracted_batches(tmp_path):
    target = tmp_path / "keras_home" / "datasets" / "cifar-10-batches-py-target"
    write_cifar10(target / "cifar-10-batches-py")

    data = load_dataset("cifar10", download=False)

    assert data.train[0].shape == (50, 32, 32, 3) and data.test[1].shape == (10,)
    assert data.class_names == CIFAR10_CLASS_NAMES


def test_cifar10_batch_pickled_by_python_2_as_the_official_ones_is_read(tmp_path):
    content = python2_cifar10_batch(images=3)
    (tmp_path / "data_batch_1").write_bytes(content)
    expected = pickle.loads(content, encoding="bytes")  # what Keras' own loader does

    images, labels = _read_cifar10_batch(tmp_path / "data_batch_1")

    assert expected[b"filenames"] == [b"0.png", b"1.png", b"2.png"]
    rows = cifar10_batch(3)[b"data"]
    np.testing.assert_array_equal(images, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert labels.dtype == np.int64 and labels.tolist() == expected[b"labels"] == [0, 1, 2]


def test_cifar10_batch_with_other_classes_is_refused_unloaded(tmp_path):
    batches = tmp_path / "copy" / "cifar-10-batches-py"
    write_cifar10(batches, lambda name: {"data": pickle.Pickler}, pickle.DEFAULT_PROTOCOL)

    with pytest.raises(ValueError, match=r"refused to load _pickle\.Pickler") as info:
        load_dataset("cifar10", tmp_path / "copy")
    assert "data_batch_1" in str(info.value)


def test_unknown_name_or_path_says_what_a_dataset_may_be(tmp_path):
    with pytest.raises(FileNotFoundError, match="fashion_mnist, mnist, cifar10 or the path"):
        load_dataset(tmp_path / "nothing")


def test_folder_options_apply_to_image_folders_only(tmp_path):
    with pytest.raises(ValueError, match="`image_size` applies to image folders"):
        load_dataset("mnist", image_size=(8, 8))


# Image folders.


def test_grayscale_folder_gives_its_names_and_shape(tmp_path):
    root = write_images(tmp_path / "gray", {"b_dog": 2, "a_cat": 3})

    data = load_dataset(root)

    assert is_image_folder(root) and data.class_names == ("a_cat", "b_dog")
    assert data.image_shape == (12, 10, 1) and data.folder.train_files == 5


def test_any_colour_image_makes_the_folder_rgb(tmp_path):
    root = write_images(tmp_path / "mixed", {"a": 2, "b": 1})
    write_images(root, {"b": 1}, mode="RGB", seed=1)  # overwrites b/0.png in colour

    assert scan_image_folder(root).image_shape == (12, 10, 3)


def test_mismatched_sizes_name_the_file_unless_resized(tmp_path):
    root = write_images(tmp_path / "sizes", {"a": 2, "b": 2})
    Image.new("L", (14, 14)).save(root / "b" / "odd.png")

    with pytest.raises(ValueError, match=r"b/odd\.png: image is 14x14 .* \(--image-size HxW\)"):
        scan_image_folder(root)
    assert scan_image_folder(root, image_size=(16, 16)).image_shape == (16, 16, 1)


@pytest.mark.parametrize(
    ("bad_file", "content", "message"),
    [
        ("notes.txt", b"hello", "notes.txt: is not a PNG/JPEG file"),
        ("broken.png", b"not a png at all", "broken.png: is not a readable image"),
    ],
)
def test_bad_file_is_one_line_naming_it_or_skipped_and_counted(
    tmp_path, bad_file, content, message
):
    root = write_images(tmp_path / "bad", {"a": 2, "b": 2})
    (root / "a" / bad_file).write_bytes(content)

    with pytest.raises(ValueError, match=message) as info:
        scan_image_folder(root)
    assert "\n" not in str(info.value) and "--skip-bad-files" in str(info.value)

    folder = scan_image_folder(root, skip_bad_files=True)
    assert len(folder.skipped) == 1 and bad_file in folder.skipped[0]
    assert folder.train_files == 4 and folder.train_dir != root


def test_hidden_files_keras_would_not_read_leave_the_tree_as_it_is(tmp_path):
    root = write_images(tmp_path / "tidy", {"a": 2, "b": 2})
    (root / "a" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")

    folder = scan_image_folder(root)

    assert folder.train_dir == root and folder.train_files == 4 and folder.skipped == ()


def test_hidden_images_in_a_split_tree_are_left_out_of_both_parts(tmp_path):
    write_images(tmp_path / "split" / "train", {"a": 2, "b": 2})
    write_images(tmp_path / "split" / "test", {"a": 1, "b": 1})
    (tmp_path / "split" / "test" / "b" / "._0.png").write_bytes(b"\x00\x05\x16\x07")

    folder = scan_image_folder(tmp_path / "split")

    assert folder.test_dir != tmp_path / "split" / "test"
    assert sorted(path.name for path in folder.test_dir.rglob("*.png")) == [
        "00000000.png",
        "00000000.png",
    ]
    assert (folder.train_files, folder.test_files) == (4, 2)


def test_empty_class_folder_is_named(tmp_path):
    root = write_images(tmp_path / "empty", {"a": 2})
    (root / "b").mkdir()

    with pytest.raises(ValueError, match=r"empty/b: empty class folder"):
        scan_image_folder(root)


def test_single_class_is_refused(tmp_path):
    root = write_images(tmp_path / "one", {"a": 3})

    with pytest.raises(ValueError, match=r"at least two class folders\. Received: 1 \(a\)"):
        scan_image_folder(root)


def test_an_image_folder_is_read_into_memory_with_the_streamed_split(tmp_path):
    write_images(tmp_path / "split" / "train", {"a": 10, "b": 10})
    write_images(tmp_path / "split" / "test", {"a": 1, "b": 2}, seed=1)
    write_images(tmp_path / "flat", {"a": 10, "b": 10})

    (x_train, y_train), (x_test, y_test) = load_dataset(tmp_path / "split").arrays()
    assert x_train.shape == (20, 12, 10, 1) and x_train.dtype == np.uint8
    assert sorted(y_train.tolist()) == [0] * 10 + [1] * 10 and sorted(y_test.tolist()) == [0, 1, 1]
    first = Image.open(tmp_path / "split" / "test" / "a" / "0.png")
    assert np.array_equal(x_test[list(y_test).index(0), ..., 0], np.asarray(first))

    (x_train, _), (x_test, _) = load_dataset(tmp_path / "flat").arrays(0.2, seed=0)
    assert len(x_train) == 16 and len(x_test) == 4  # Keras' seeded split is the test split


def test_an_image_folder_over_the_memory_limit_is_refused_before_reading(tmp_path, monkeypatch):
    data = load_dataset(write_images(tmp_path / "folder", {"a": 2, "b": 2}))
    monkeypatch.setattr(datasets, "MAX_IDX_BYTES", 4 * 12 * 10 - 1)

    with pytest.raises(ValueError, match=r"folder: its 4 images of \(12, 10, 1\) take 480 bytes"):
        data.arrays()


def test_test_part_must_hold_the_training_classes(tmp_path):
    write_images(tmp_path / "split" / "train", {"a": 2, "b": 2})
    write_images(tmp_path / "split" / "test", {"a": 1, "c": 1})

    with pytest.raises(ValueError, match=r"class folders \['a', 'c'\] must be those of"):
        scan_image_folder(tmp_path / "split")
