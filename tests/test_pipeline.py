"""Tests of the tf.data input pipeline and the validation split."""

import numpy as np
import pytest

from lenet_blocks.pipeline import EpochCounter, make_dataset, split_validation


def test_split_holds_out_the_last_tenth_like_keras():
    images, labels = np.arange(100).reshape(100, 1), np.arange(100)
    (x, y), (xv, yv) = split_validation(images, labels, 0.1)
    assert y.tolist() == list(range(90)) and yv.tolist() == list(range(90, 100))
    assert x.shape == (90, 1) and xv.shape == (10, 1)


@pytest.mark.parametrize("split", [-0.1, 1.0])
def test_split_rejects_fraction_outside_unit_interval(split):
    with pytest.raises(ValueError, match=r"`validation_split` must be in \[0, 1\)"):
        split_validation(np.zeros((4, 1)), np.zeros(4), split)


def test_split_rejects_length_mismatch():
    with pytest.raises(ValueError, match="3 images and 4 labels"):
        split_validation(np.zeros((3, 1)), np.zeros(4))


def test_dataset_yields_float_images_with_raw_pixel_values_and_int_labels():
    images = np.full((3, 28, 28), 255, "uint8")
    (x, y), *_ = list(make_dataset(images, np.array([1, 2, 3]), batch_size=3))
    assert x.dtype.name == "float32" and x.shape == (3, 28, 28, 1)
    assert float(x.numpy().max()) == 255.0
    assert y.numpy().tolist() == [1, 2, 3]


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    labels = np.arange(64)
    images = np.zeros((64, 2, 2), "uint8")

    def epoch_orders(seed):
        dataset = make_dataset(images, labels, batch_size=64, shuffle=True, seed=seed)
        return [next(iter(dataset))[1].numpy().tolist() for _ in range(2)]

    first, second = epoch_orders(7)
    assert first != second and sorted(first) == labels.tolist()
    assert epoch_orders(7) == [first, second]


def test_unshuffled_dataset_keeps_order_and_all_samples():
    labels = np.arange(10)
    dataset = make_dataset(np.zeros((10, 4, 4, 1), "uint8"), labels, batch_size=4)
    assert np.concatenate([y.numpy() for _, y in dataset]).tolist() == labels.tolist()


def test_dataset_without_labels_yields_images():
    batches = list(make_dataset(np.zeros((5, 4, 4), "uint8"), batch_size=2))
    assert [tuple(b.shape) for b in batches] == [(2, 4, 4, 1), (2, 4, 4, 1), (1, 4, 4, 1)]


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match=r"Received: batch_size=0"):
        make_dataset(np.zeros((2, 4, 4), "uint8"), batch_size=0)


def test_epoch_order_depends_only_on_seed_and_epoch():
    labels = np.arange(50)
    images = np.zeros((50, 2, 2), "uint8")
    counter = EpochCounter()

    def order(epoch, seed=3):
        counter.on_epoch_begin(epoch)
        dataset = make_dataset(images, labels, 8, shuffle=True, seed=seed, epoch=counter.epoch)
        assert int(dataset.cardinality()) == 7
        return np.concatenate([y.numpy() for _, y in dataset]).tolist()

    first, second = order(0), order(1)
    assert first != second and sorted(first) == sorted(second) == labels.tolist()
    assert order(1) == second and order(0) == first  # whatever passes came before
    assert order(0, seed=4) != first


def test_epoch_order_needs_an_int_seed():
    with pytest.raises(ValueError, match="Received: seed=None"):
        make_dataset(
            np.zeros((2, 2, 2), "uint8"), np.arange(2), shuffle=True, epoch=EpochCounter().epoch
        )
