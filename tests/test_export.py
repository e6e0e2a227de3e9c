"""Tests of `lenet_blocks.export`: SavedModel, TFLite (float32, int8), ONNX, OpenVINO, keras-hub.

The tests of the float formats on every backend (`test_every_backend_format_*`) are marked
`backend_agnostic` here: CI runs them under JAX and PyTorch too, each on the formats its backend
exports. The other tests need TensorFlow (int8, the SavedModel signatures, the CLI's models).
"""

import json
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from cli_helpers import run_cli
from idx_helpers import make_dataset, write_dataset

from lenet_blocks import build_lenet, cli
from lenet_blocks.export import (
    BACKEND_FORMATS,
    ExportDependencyError,
    ExportError,
    ExportVerificationError,
    export_model,
    run_exported,
    runners,
    twin,
)

BACKEND = keras.backend.backend()
tensorflow_only = pytest.mark.tensorflow_only  # int8, the SavedModel's signatures, the CLI
FILE_NAMES = {
    "savedmodel": "lenet_savedmodel",
    "tflite": "lenet.tflite",
    "onnx": "lenet.onnx",
    "openvino": "lenet_openvino",
    "keras-hub": "lenet_hub",
}


def seeded_model(preset="notebook"):
    keras.utils.set_random_seed(0)
    return build_lenet(preset)


def images(count=16, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def quadrant_data(count, seed):
    """Four classes a LeNet learns with a wide margin: which quadrant of the image is bright.

    The bright quadrant (160-223) and the background (0-63) never overlap, so the task is
    learned whatever kernels oneDNN picks on the CPU at hand, not by a lucky seed.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=count)
    pixels = rng.integers(0, 64, size=(count, 28, 28))
    rows, cols = np.divmod(labels, 2)
    row_mask = (np.arange(28) // 14)[None, :] == rows[:, None]
    col_mask = (np.arange(28) // 14)[None, :] == cols[:, None]
    pixels += 160 * (row_mask[:, :, None] & col_mask[:, None, :])
    return pixels.astype("uint8"), labels


@pytest.fixture(scope="module")
def trained_model():
    keras.utils.set_random_seed(0)
    model = build_lenet(
        classes=4, activation="tanh", classifier_activation="softmax", include_rescaling=True
    )
    model.compile(
        keras.optimizers.Adam(0.001), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    x, y = quadrant_data(600, seed=0)
    model.fit(x[..., None].astype("float32"), y, epochs=4, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module", params=["notebook", "lenet5_1998"])
def backend_exports(request, tmp_path_factory):
    """Every format this backend exports, of one reference model: `{format: (report | error)}`.

    Module-scoped: each conversion once (they import heavy converters), shared by the tests.
    """
    keras.utils.set_random_seed(0)
    model = build_lenet(request.param)
    root = tmp_path_factory.mktemp(f"exports_{request.param}")
    results = {}
    for format in BACKEND_FORMATS[BACKEND]:
        try:
            results[format] = export_model(model, root / FILE_NAMES[format], format)
        except (ExportError, ImportError) as error:
            results[format] = error
    return model, root, results


@pytest.mark.backend_agnostic
def test_every_backend_format_matches_keras(backend_exports):
    model, root, results = backend_exports
    batch = images()
    expected = np.asarray(model.predict(batch[..., None].astype("float32"), verbose=0))
    scale = max(1.0, float(np.abs(expected).max()))
    for format, report in results.items():
        assert isinstance(report, dict), f"{format}: {report}"
        path = root / FILE_NAMES[format]
        assert report["max_abs_diff"] <= report["allowed_abs_diff"], format
        assert report["prediction_agreement"] == 1.0 and report["backend"] == BACKEND
        assert np.abs(run_exported(path, batch) - expected).max() <= 1e-4 * scale, format
        assert report["size_bytes"] > 40_000 and report["path"] == str(path)
    assert not [p.name for p in root.iterdir() if p.name.startswith(".")]  # no temporaries


@pytest.mark.backend_agnostic
def test_every_backend_format_refuses_what_the_backend_cannot_do(tmp_path):
    for format in sorted(set(FILE_NAMES) - set(BACKEND_FORMATS[BACKEND])):
        with pytest.raises(ValueError, match=f"format='{format}'.*{BACKEND} Keras backend"):
            export_model(seeded_model(), tmp_path / FILE_NAMES[format], format)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.backend_agnostic
@pytest.mark.skipif(
    BACKEND == "tensorflow" or "tflite" not in BACKEND_FORMATS[BACKEND],
    reason="a backend that exports float32 TFLite but cannot quantize it",
)
def test_int8_off_tensorflow_is_a_one_line_error(tmp_path):
    images, labels = quadrant_data(8, seed=0)
    with pytest.raises(ValueError, match=f"tensorflow Keras backend only.*backend='{BACKEND}'"):
        export_model(
            seeded_model(),
            tmp_path / "lenet.tflite",
            "tflite",
            quantize="int8",
            calibration_images=images,
            evaluation_data=(images, labels),
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    ("format", "module"), [("openvino", "openvino"), ("keras-hub", "keras_hub")]
)
def test_missing_package_names_the_extra_before_writing(tmp_path, monkeypatch, format, module):
    if format not in BACKEND_FORMATS[BACKEND]:
        pytest.skip(f"{format} is not exported on {BACKEND}")
    monkeypatch.setitem(sys.modules, module, None)  # any import of it now fails
    extra = "hub" if format == "keras-hub" else "export"
    with pytest.raises(ExportDependencyError, match=rf"lenet_blocks\[{extra}\]"):
        export_model(seeded_model(), tmp_path / FILE_NAMES[format], format)
    assert list(tmp_path.iterdir()) == []


@tensorflow_only
def test_tensorflow_exports_every_format():
    assert set(BACKEND_FORMATS["tensorflow"]) == set(FILE_NAMES)


@tensorflow_only
@pytest.mark.parametrize("preset", ["notebook", "lenet5_1998", "tuned_gap"])
def test_float64_twin_has_same_weights_and_close_outputs(preset):
    model = seeded_model(preset)
    rebuilt = twin.float64_twin(model)
    assert {w.dtype for w in rebuilt.weights} == {"float64"}
    for ours, theirs in zip(model.get_weights(), rebuilt.get_weights(), strict=True):
        np.testing.assert_array_equal(ours.astype("float64"), theirs)
    batch = images()[..., None]
    exact = rebuilt.predict(batch.astype("float64"), verbose=0)
    approximate = model.predict(batch.astype("float32"), verbose=0)
    assert exact.dtype == "float64"
    scale = max(1.0, float(np.abs(exact).max()))
    assert 0 < np.abs(exact - approximate).max() <= 1e-5 * scale  # float32 rounding, nothing else
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@tensorflow_only
def test_parity_bound_adds_twice_the_keras_float32_error(tmp_path, monkeypatch):
    """An export as exact as Keras itself may differ from Keras by twice Keras' own error."""
    monkeypatch.setattr(twin, "float32_error", lambda *a: 1e-3)
    real = runners.run_exported
    monkeypatch.setattr(runners, "run_exported", lambda *a: real(*a) + 1.5e-3)
    report = export_model(seeded_model(), tmp_path / "ok.tflite", "tflite")
    assert report["keras_float32_error"] == 1e-3
    assert report["allowed_abs_diff"] == pytest.approx(1e-5 + 2e-3)
    assert report["max_abs_diff"] == pytest.approx(1.5e-3, abs=1e-5)
    monkeypatch.setattr(runners, "run_exported", lambda *a: real(*a) + 2.5e-3)
    with pytest.raises(ExportVerificationError, match="twice the Keras model's own float32"):
        export_model(seeded_model(), tmp_path / "bad.tflite", "tflite")
    assert not (tmp_path / "bad.tflite").exists()


@tensorflow_only
def test_model_without_float64_twin_warns_and_uses_tolerance_alone(tmp_path, monkeypatch):
    def no_twin(model):
        raise TypeError("this layer only runs in float32")

    monkeypatch.setattr(twin, "float64_twin", no_twin)
    with pytest.warns(UserWarning, match="float64.*only runs in float32"):
        report = export_model(seeded_model(), tmp_path / "lenet.tflite", "tflite")
    assert report["keras_float32_error"] is None and report["allowed_abs_diff"] == 1e-5


@tensorflow_only
def test_float64_rebuild_that_is_another_model_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setattr(twin, "float64_twin", lambda model: seeded_model("d2l"))
    with pytest.warns(UserWarning, match="more than float32 rounding explains"):
        report = export_model(seeded_model(), tmp_path / "lenet.tflite", "tflite")
    assert report["keras_float32_error"] is None and report["allowed_abs_diff"] == 1e-5


@tensorflow_only
def test_savedmodel_serves_without_lenet_blocks(tmp_path):
    model = seeded_model()
    export_model(model, tmp_path / "served", "savedmodel")
    batch = images(4)
    np.save(tmp_path / "images.npy", batch)
    np.save(tmp_path / "expected.npy", model.predict(batch[..., None].astype("float32"), verbose=0))
    script = f"""
import sys
sys.modules["lenet_blocks"] = None  # any import of the package now fails
import numpy as np, tensorflow as tf
loaded = tf.saved_model.load({str(tmp_path / "served")!r})
images = np.load({str(tmp_path / "images.npy")!r})[..., None]
expected = np.load({str(tmp_path / "expected.npy")!r})
float_out = loaded.signatures["serve"](images=tf.constant(images, tf.float32))["outputs"]
uint8_out = loaded.signatures["serve_uint8"](images=tf.constant(images))["outputs"]
print(float(np.abs(float_out - expected).max()), float(np.abs(uint8_out - expected).max()))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    float_diff, uint8_diff = map(float, result.stdout.split())
    assert float_diff <= 1e-5 and uint8_diff <= 1e-5


@tensorflow_only
def test_int8_tflite_keeps_accuracy_of_trained_model(tmp_path, trained_model):
    x_test, y_test = quadrant_data(200, seed=1)
    x_train, _ = quadrant_data(600, seed=0)
    path = tmp_path / "lenet_int8.tflite"
    report = export_model(
        trained_model, path, "tflite", quantize="int8",
        calibration_images=x_train, evaluation_data=(x_test, y_test), calibration_samples=200,
    )  # fmt: skip
    assert report["keras_accuracy"] >= 0.9  # the model learned the task
    assert report["accuracy_drop"] <= 0.02 and report["calibration_samples"] == 200
    float_size = export_model(trained_model, tmp_path / "lenet.tflite", "tflite")["size_bytes"]
    assert report["size_bytes"] < float_size / 2
    predicted = run_exported(path, x_test).argmax(axis=-1)
    assert np.mean(predicted == y_test) == pytest.approx(report["exported_accuracy"])


@tensorflow_only
def test_int8_accuracy_drop_over_threshold_raises(tmp_path, trained_model, monkeypatch):
    x, y = quadrant_data(200, seed=1)
    real = runners.run_exported
    # The artifact predicts the next class: every correct answer becomes wrong.
    monkeypatch.setattr(runners, "run_exported", lambda *a: np.roll(real(*a), 1, axis=-1))
    path = tmp_path / "lenet_int8.tflite"
    with pytest.raises(ExportVerificationError, match=r"tflite \(int8\).*lenet_int8.*points"):
        export_model(
            trained_model, path, "tflite", quantize="int8", calibration_images=x,
            evaluation_data=(x, y), calibration_samples=50,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


@tensorflow_only
@pytest.mark.parametrize("format", ["savedmodel", "tflite"])
def test_output_mismatch_raises_and_writes_nothing(tmp_path, monkeypatch, format):
    real = runners.run_exported
    monkeypatch.setattr(runners, "run_exported", lambda *a: real(*a) + 1e-3)
    path = tmp_path / FILE_NAMES[format]
    with pytest.raises(ExportVerificationError) as error:
        export_model(seeded_model(), path, format)
    message = str(error.value)
    assert format in message and str(path) in message and "0.001" in message
    assert list(tmp_path.iterdir()) == []


@tensorflow_only
@pytest.mark.parametrize("format", ["savedmodel", "tflite"])
def test_refuses_to_overwrite_without_force(tmp_path, format):
    path = tmp_path / FILE_NAMES[format]
    if format == "savedmodel":
        path.mkdir()
        (path / "old.txt").write_text("old")
    else:
        path.write_text("old")
    with pytest.raises(FileExistsError, match=f"{re.escape(str(path))}.*force"):
        export_model(seeded_model(), path, format)
    assert (path / "old.txt" if format == "savedmodel" else path).read_text() == "old"
    export_model(seeded_model(), path, format, force=True)
    assert run_exported(path, images(2)).shape == (2, 10)
    assert not (path / "old.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "keras"}, "`format` must be one of"),
        ({"format": "openvino", "quantize": "int8"}, "'tflite' format only"),
        ({"format": "onnx", "quantize": "int8"}, "'tflite' format only"),
        ({"format": "tflite", "quantize": "int4"}, "`quantize` must be"),
        ({"format": "tflite", "quantize": "int8"}, "needs `calibration_images`"),
        ({"format": "tflite", "full_integer": True}, "`full_integer`"),
        ({"format": "tflite", "tolerance": -1e-5}, "`tolerance` must be a number >= 0"),
    ],
)
@tensorflow_only
def test_bad_arguments_raise_before_writing(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        export_model(seeded_model(), tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


@tensorflow_only
def test_run_exported_rejects_unknown_and_missing_paths(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"model\.bin"):
        run_exported(tmp_path / "model.bin", images(1))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.tflite"):
        run_exported(tmp_path / "nowhere.tflite", images(1))


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_cli")
    data_dir = write_dataset(root / "data", make_dataset(num_train=60, num_test=20, seed=2))
    keras.utils.set_random_seed(0)
    build_lenet().save(root / "model.keras")
    return root, data_dir


@tensorflow_only
def test_cli_exports_tflite_and_prints_report(tmp_path, cli_inputs):
    root, data_dir = cli_inputs
    result = run_cli(
        "export", root / "model.keras", "--format", "tflite", "--output", tmp_path / "lenet.tflite",
        "--data-dir", data_dir, "--report", tmp_path / "report.json", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"exported tflite to {tmp_path / 'lenet.tflite'}" in result.stdout
    assert "verified on 20 images" in result.stdout and "accuracy: keras" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["format"] == "tflite" and report["max_abs_diff"] <= 1e-5
    assert 0 < report["keras_float32_error"] < 1e-6 and "own float32 error" in result.stdout
    assert report["size_bytes"] == (tmp_path / "lenet.tflite").stat().st_size


@tensorflow_only
def test_cli_exports_a_keras_hub_preset(tmp_path, cli_inputs, capsys):
    keras_hub = pytest.importorskip("keras_hub")
    root, data_dir = cli_inputs
    output = tmp_path / "lenet_hub"
    args = ["export", str(root / "model.keras"), "--format", "keras-hub", "--output", str(output)]
    assert cli.main([*args, "--data-dir", str(data_dir)]) == 0
    assert f"exported keras-hub to {output}" in capsys.readouterr().out
    restored = keras_hub.models.ImageClassifier.from_preset(str(output))
    batch = images(4)[..., None].astype("float32")
    expected = keras.saving.load_model(root / "model.keras").predict(batch, verbose=0)
    np.testing.assert_array_equal(restored.predict(batch, verbose=0), expected)


@tensorflow_only
def test_cli_existing_output_exits_2_with_one_line(tmp_path, cli_inputs, capsys):
    root, data_dir = cli_inputs
    (tmp_path / "lenet.onnx").write_text("old")
    args = ["export", str(root / "model.keras"), "--format", "onnx", "--data-dir", str(data_dir)]
    status = cli.main([*args, "--output", str(tmp_path / "lenet.onnx")])
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith("lenet-blocks export: error: ") and "already exists" in error
    assert error.count("\n") == 1 and (tmp_path / "lenet.onnx").read_text() == "old"


@tensorflow_only
def test_cli_verification_failure_exits_1(tmp_path, cli_inputs, capsys, monkeypatch):
    root, data_dir = cli_inputs
    real = runners.run_exported
    monkeypatch.setattr(runners, "run_exported", lambda *a: real(*a) + 1e-3)
    args = ["export", str(root / "model.keras"), "--format", "tflite", "--data-dir", str(data_dir)]
    assert cli.main([*args, "--output", str(tmp_path / "lenet.tflite")]) == 1
    assert "lenet-blocks export: error: tflite export to" in capsys.readouterr().err
    assert not (tmp_path / "lenet.tflite").exists()


@tensorflow_only
def test_cli_passes_tolerance_and_rejects_a_negative_one(tmp_path, cli_inputs, capsys):
    root, data_dir = cli_inputs
    args = ["export", str(root / "model.keras"), "--format", "tflite", "--data-dir", str(data_dir)]
    output = str(tmp_path / "lenet.tflite")
    assert cli.main([*args, "--output", output, "--tolerance", "-1"]) == 2
    assert "`tolerance` must be a number >= 0. Received: tolerance=-1" in capsys.readouterr().err
    assert cli.main([*args, "--output", output, "--tolerance", "0.5"]) == 0
    assert "(allowed 0.5)" in capsys.readouterr().out


@tensorflow_only
def test_export_does_not_import_the_tf_data_pipeline():
    script = "import sys, lenet_blocks.export; print('lenet_blocks.pipeline' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]
