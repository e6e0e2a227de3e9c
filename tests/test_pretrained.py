"""Shipped weights: `build_lenet(weights=...)`, the manifest, hash checks, loading rules."""

import hashlib
import json
import os

import keras
import numpy as np
import pytest

import lenet_blocks as lb
from lenet_blocks import cli, pretrained
from lenet_blocks.datasets import DEBIAN_DATA_DIR

SHIPPED = pretrained.pretrained_presets()


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """A weights folder of our own: the notebook preset's weights (moved off their initial
    values) with a manifest entry, in place of the package's."""
    model = lb.build_lenet()
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    path = tmp_path / "notebook.fashion_mnist.weights.h5"
    model.save_weights(path)
    entry = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "parameters": model.count_params(),
        "test_accuracy": 0.5,
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"notebook": {"fashion_mnist": entry}}))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "MANIFEST_FILE", tmp_path / "manifest.json")
    pretrained._manifest.cache_clear()
    yield model, path
    pretrained._manifest.cache_clear()


def test_named_weights_load_the_shipped_file(fake_shipped):
    source, _ = fake_shipped
    model = lb.build_lenet(weights="fashion_mnist")
    for loaded, expected in zip(model.weights, source.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), expected.numpy())


def test_headless_model_gets_the_backbone_weights_at_any_size(fake_shipped):
    source, _ = fake_shipped
    features = lb.build_lenet(weights="fashion_mnist", include_top=False, input_shape=(40, 36, 1))
    backbone = keras.Model(source.input, source.get_layer("block2").output)
    image = np.random.default_rng(1).uniform(0, 255, (1, 28, 28, 1)).astype("float32")
    large = np.zeros((1, 40, 36, 1), "float32")
    large[:, :28, :28] = image
    full = keras.ops.convert_to_numpy(backbone(image))
    part = keras.ops.convert_to_numpy(features(large))[:, : full.shape[1], : full.shape[2]]
    np.testing.assert_allclose(part, full, rtol=1e-5, atol=1e-6)


def test_a_file_that_does_not_match_its_hash_is_refused(fake_shipped):
    _, path = fake_shipped
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"does not match its manifest .*was not loaded"):
        lb.build_lenet(weights="fashion_mnist")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"classes": 5}, "classes"),
        ({"input_shape": (32, 32, 1)}, "input_shape"),
        ({"activation": "relu"}, "activation"),
        ({"pooling": "avg"}, "pooling"),
    ],
)
def test_named_weights_rules_name_the_argument(fake_shipped, kwargs, argument):
    with pytest.raises(ValueError, match=rf"`{argument}` must .*weights='fashion_mnist'"):
        lb.build_lenet(weights="fashion_mnist", **kwargs)


def test_unknown_weight_set_lists_what_exists(fake_shipped):
    with pytest.raises(ValueError, match=r"weight sets shipped for preset 'd2l': \[\]"):
        lb.build_lenet("d2l", weights="fashion_mnist")


def test_weights_from_a_path_and_a_clear_mismatch(tmp_path):
    source = lb.build_lenet("d2l", classes=5)
    source.save_weights(tmp_path / "mine.weights.h5")
    model = lb.build_lenet("d2l", classes=5, weights=tmp_path / "mine.weights.h5")
    for loaded, expected in zip(model.weights, source.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), expected.numpy())
    with pytest.raises(ValueError, match=r"mine.weights.h5 do not fit model"):
        lb.build_lenet("notebook", weights=tmp_path / "mine.weights.h5")
    for bad in (tmp_path / "missing.weights.h5", tmp_path / "mine.h5", 5):
        with pytest.raises(ValueError, match=r"`weights` must be None"):
            lb.build_lenet(weights=bad)


def test_pooling_none_given_means_none():
    assert lb.build_lenet("tuned_gap").get_layer("global_avg_pool")
    model = lb.build_lenet("tuned_gap", pooling=None)
    assert not [layer for layer in model.layers if layer.name.startswith("global_")]


def test_the_manifest_lists_every_preset():
    assert pretrained.MANIFEST_FILE.is_file()
    assert sorted(SHIPPED) == sorted(lb.list_presets())


@pytest.mark.parametrize("preset", lb.list_presets())
def test_every_preset_ships_checked_small_weights(preset):
    entry = SHIPPED[preset]["fashion_mnist"]
    path = pretrained.weights_file(preset)
    assert path.stat().st_size == entry["bytes"] < 1_000_000
    assert entry["parameters"] == lb.build_lenet(preset).count_params()
    assert entry["command"].startswith(f"lenet-blocks train --preset {preset} ")
    record = json.loads((pretrained.WEIGHTS_DIR / entry["record"]).read_text())
    assert record["test_accuracy"] == entry["test_accuracy"]
    assert record["settings"]["preset"] == preset


@pytest.mark.integration
@pytest.mark.skipif(not os.path.isdir(DEBIAN_DATA_DIR), reason="Fashion-MNIST not installed")
@pytest.mark.parametrize("preset", lb.list_presets())
def test_shipped_weights_reproduce_their_test_accuracy(preset):
    from lenet_blocks.datasets import load_fashion_mnist
    from lenet_blocks.training import evaluate_model

    _, (x_test, y_test) = load_fashion_mnist(DEBIAN_DATA_DIR)
    model = lb.build_lenet(preset, weights="fashion_mnist")
    accuracy = evaluate_model(model, x_test, y_test)["accuracy"]
    assert abs(accuracy - SHIPPED[preset]["fashion_mnist"]["test_accuracy"]) <= 0.001


def test_docs_table_is_the_manifest_table():
    docs = (pretrained.WEIGHTS_DIR.parent.parent / "docs" / "pretrained.md").read_text()
    assert pretrained.weights_table() in docs


def test_cli_lists_presets_with_their_weights(fake_shipped, capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "notebook: The TF2 notebook's LeNet" in out
    assert "fashion_mnist (test accuracy 0.5000, 44,426 parameters)" in out
    assert "d2l: " in out and "weights: none shipped" in out


def test_cli_predicts_and_evaluates_from_a_preset_without_a_file(fake_shipped, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 28, 28), "uint8"))
    assert cli.main(["predict", "--preset", "notebook", str(tmp_path / "x.npy")]) == 0
    assert f"{tmp_path / 'x.npy'}[1]: " in capsys.readouterr().out
    assert cli.main(["evaluate", "m.keras", "--preset", "notebook"]) == cli.EXIT_USAGE
    assert "not both" in capsys.readouterr().err
    assert cli.main(["evaluate", "--weights", "fashion_mnist"]) == cli.EXIT_USAGE
    assert "applies with `--preset`" in capsys.readouterr().err
