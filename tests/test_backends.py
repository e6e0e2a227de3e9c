"""The package on every Keras backend: parity of predictions, `.keras` files moving between
backends, the torch-optimizer fallback of `load_model`, and `lenet-blocks train` on JAX/PyTorch.

The cross-backend tests run real subprocesses with `KERAS_BACKEND` set: TensorFlow with this
interpreter, JAX and PyTorch with the interpreters of `.venv-jax` and `.venv-torch`
(`bash scripts/setup_backends.sh`), or those named by `LENET_BLOCKS_JAX_PYTHON` /
`LENET_BLOCKS_TORCH_PYTHON`. A backend whose interpreter is missing is skipped.
"""

import json
import os
import subprocess
import sys
import warnings
import zipfile
from itertools import combinations, permutations
from pathlib import Path

import keras
import numpy as np
import pytest
from cli_helpers import run_cli
from idx_helpers import make_dataset, write_dataset

import lenet_blocks as lb
from lenet_blocks import objectives
from lenet_blocks.layers import ConnectionTableConv2D

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("tensorflow", "jax", "torch")
PRESETS = ("notebook", "d2l", "lenet5_1998")
# Predictions from the same weights agree within TOLERANCE x max(1, |prediction|): absolutely
# for the probabilities of notebook/d2l, relatively for LeNet-5's RBF distances (about 100,
# where a float32 step is 8e-6); their class probabilities agree within TOLERANCE absolutely.
TOLERANCE = 1e-5
PROTOCOL = "lenet-blocks-worker:"
SUBPROCESS_TIMEOUT = 900

# One process per backend. Phase 1: build every preset from the shared weights, predict,
# compile, train one batch, predict, save `<backend>-<preset>.keras`; say `saved`. Phase 2 (on
# a line on stdin naming the other backends): load their files with `lb.load_model`, predict,
# and write what was restored to `<backend>-report.json`.
WORKER = """
import json, sys, warnings
from pathlib import Path
import keras
import numpy as np
import lenet_blocks as lb
from lenet_blocks import objectives

work, presets = Path(sys.argv[1]), sys.argv[2].split(",")
backend = keras.backend.backend()
data = np.load(work / "inputs.npz")
x, y = data["x"], data["y"]
for preset in presets:
    model = lb.build_lenet(preset)
    weights = np.load(work / f"weights-{preset}.npz")
    model.set_weights([weights[f"arr_{i}"] for i in range(len(weights.files))])
    np.save(work / f"{backend}-{preset}-fixed.npy", model.predict(x, verbose=0))
    loss, metrics = objectives.loss_and_metrics(model)
    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.train_on_batch(x, y)
    np.save(work / f"{backend}-{preset}-trained.npy", model.predict(x, verbose=0))
    model.save(work / f"{backend}-{preset}.keras")
print("PROTOCOL saved", flush=True)

report = {}
for saver in sys.stdin.readline().split():
    for preset in presets:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = lb.load_model(work / f"{saver}-{preset}.keras")
        np.save(work / f"{backend}-loads-{saver}-{preset}.npy", model.predict(x, verbose=0))
        optimizer = model.optimizer
        report[f"{saver}-{preset}"] = {
            "optimizer": f"{type(optimizer).__module__}.{type(optimizer).__name__}",
            "iterations": int(keras.ops.convert_to_numpy(optimizer.iterations)),
            "momentum": optimizer.get_config()["momentum"],
            "loss": type(model.loss).__name__,
            "warnings": [str(w.message) for w in caught if issubclass(w.category, UserWarning)],
        }
(work / f"{backend}-report.json").write_text(json.dumps(report))
print("PROTOCOL loaded", flush=True)
""".replace("PROTOCOL", PROTOCOL)

KILL_AFTER_FIRST_EPOCH = """
import os, signal, sys
import keras
from lenet_blocks.training import train

class KillAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        os.kill(os.getpid(), signal.SIGKILL)

train(sys.argv[1], data_dir=sys.argv[2], preset=sys.argv[3], epochs=2, batch_size=8,
      verbose=0, callbacks=[KillAfterFirstEpoch()])
"""


def backend_python(backend: str) -> str | None:
    """The interpreter that runs `backend`, or `None` where it is not set up."""
    if backend == "tensorflow":
        return sys.executable  # the package depends on TensorFlow: every venv has it
    override = os.environ.get(f"LENET_BLOCKS_{backend.upper()}_PYTHON")
    if override:
        return override
    python = ROOT / f".venv-{backend}" / "bin" / "python"
    return str(python) if python.exists() else None


def backend_env(backend: str) -> dict:
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}


def require_python(backend: str) -> str:
    python = backend_python(backend)
    if python is None:
        pytest.skip(f"no {backend} environment: run `bash scripts/setup_backends.sh {backend}`")
    return python


def max_differences(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(max absolute difference, max difference relative to max(1, |b|))."""
    difference = np.abs(a.astype("float64") - b.astype("float64"))
    return float(difference.max()), float((difference / np.maximum(1.0, np.abs(b))).max())


def assert_close(actual, expected, what):
    absolute, relative = max_differences(actual, expected)
    assert relative <= TOLERANCE, f"{what}: max abs diff {absolute:.3g}, rel {relative:.3g}"


# --- Cross-backend exchange (subprocesses) -------------------------------------------------


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """Runs the worker on every available backend; returns (work dir, backends)."""
    backends = [b for b in BACKENDS if backend_python(b) is not None]
    if len(backends) < 2:
        pytest.skip("one backend only: run `bash scripts/setup_backends.sh`")
    work = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 28, 28, 1)).astype("float32")
    np.savez(work / "inputs.npz", x=x, y=np.arange(8) % 10)
    for index, preset in enumerate(PRESETS):
        keras.utils.set_random_seed(index)
        weights = lb.build_lenet(preset).get_weights()  # moved off the zero biases too:
        np.savez(
            work / f"weights-{preset}.npz", *[w + rng.normal(0, 0.05, w.shape) for w in weights]
        )

    workers = {}
    try:
        for backend in backends:
            stderr = open(work / f"{backend}-stderr.txt", "w")  # noqa: SIM115 (closed below)
            workers[backend] = (
                subprocess.Popen(
                    [backend_python(backend), "-c", WORKER, str(work), ",".join(PRESETS)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    env=backend_env(backend),
                ),
                stderr,
            )
        for backend, (process, _) in workers.items():  # phase 1: every file is saved
            wait_for(process, "saved", backend, work)
        for backend, (process, _) in workers.items():  # phase 2: load the others' files
            others = [b for b in backends if b != backend]
            process.stdin.write(" ".join(others) + "\n")
            process.stdin.close()
        for backend, (process, _) in workers.items():
            wait_for(process, "loaded", backend, work)
            assert process.wait(timeout=SUBPROCESS_TIMEOUT) == 0, stderr_of(backend, work)
    finally:
        for process, stderr in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait()
            stderr.close()
    return work, backends


def wait_for(process, word, backend, work):
    """Reads the worker's stdout up to its `word` line (the worker writes nothing else)."""
    for line in process.stdout:
        if line.strip() == f"{PROTOCOL} {word}":
            return
    process.wait(timeout=SUBPROCESS_TIMEOUT)
    pytest.fail(f"{backend} worker exited {process.returncode}: {stderr_of(backend, work)}")


def stderr_of(backend, work) -> str:
    return (work / f"{backend}-stderr.txt").read_text()[-4000:]


@pytest.mark.parametrize("preset", PRESETS)
def test_same_weights_give_same_predictions_on_every_backend(exchange, preset):
    work, backends = exchange
    outputs = {b: np.load(work / f"{b}-{preset}-fixed.npy") for b in backends}
    for backend in backends:
        assert outputs[backend].shape == (8, 10)
    model = lb.build_lenet(preset)
    for first, second in combinations(backends, 2):
        assert_close(outputs[second], outputs[first], f"{preset}: {first} vs {second}")
        np.testing.assert_allclose(  # what users read: class probabilities, within 1e-5
            objectives.class_probabilities(model, outputs[second]),
            objectives.class_probabilities(model, outputs[first]),
            rtol=0,
            atol=TOLERANCE,
        )


@pytest.mark.parametrize("preset", PRESETS)
def test_keras_files_move_between_backends(exchange, preset):
    work, backends = exchange
    for saver, loader in permutations(backends, 2):
        saved = np.load(work / f"{saver}-{preset}-trained.npy")
        loaded = np.load(work / f"{loader}-loads-{saver}-{preset}.npy")
        assert_close(loaded, saved, f"{preset} saved on {saver}, loaded on {loader}")


@pytest.mark.parametrize("preset", PRESETS)
def test_compiled_files_restore_optimizer_on_every_backend(exchange, preset):
    """A torch-saved file names a torch-only optimizer: it comes back as the public SGD."""
    work, backends = exchange
    expected_loss = "RBFLoss" if preset == "lenet5_1998" else "SparseCategoricalCrossentropy"
    for loader in backends:
        report = json.loads((work / f"{loader}-report.json").read_text())
        for saver in backends:
            if saver == loader:
                continue
            restored = report[f"{saver}-{preset}"]
            assert restored["optimizer"].endswith(".SGD"), (saver, loader, restored)
            other_backends = [f"keras.src.backend.{b}." for b in BACKENDS if b != loader]
            assert not restored["optimizer"].startswith(tuple(other_backends)), restored
            assert restored["iterations"] == 1 and restored["momentum"] == pytest.approx(0.9)
            assert restored["loss"] == expected_loss
            assert not [w for w in restored["warnings"] if "optimizer" in w], restored


# --- The CLI on JAX and PyTorch (subprocesses) ---------------------------------------------


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cli_train_resumes_and_finishes_on_backend(backend, tmp_path):
    python = require_python(backend)
    data_dir = write_dataset(tmp_path / "data", make_dataset(num_train=40, num_test=10, seed=1))
    run = tmp_path / "run"
    killed = subprocess.run(
        [python, "-c", KILL_AFTER_FIRST_EPOCH, str(run), str(data_dir), "lenet5_1998"],
        capture_output=True,
        text=True,
        env=backend_env(backend),
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert killed.returncode == -9, killed.stderr[-4000:]
    assert (run / "checkpoint" / "epoch-0001.weights.h5").exists()
    result = run_cli(
        "train", "--preset", "lenet5_1998", "--data-dir", data_dir, "--output", run,
        "--epochs", "2", "--batch-size", "8", "--verbose", "2",
        python=python, env=backend_env(backend), timeout=SUBPROCESS_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    assert "after epoch 1." in result.stdout and "Epoch 2/2" in result.stdout
    names = sorted(path.name for path in run.iterdir())
    assert names == ["confusion_matrix.png", "metrics.json", "model.keras", "training_curves.png"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["versions"]["keras_backend"] == backend
    assert metrics["epochs"] == 2 and len(metrics["history"]["loss"]) == 2
    assert np.isfinite(metrics["test_loss"])
    model = lb.load_model(run / "model.keras")  # saved on `backend`, loaded on this one
    assert model.count_params() == metrics["parameters"] == 60000


# --- load_model's fallback for backend-specific optimizers (in process) --------------------


def other_backend() -> str:
    return next(b for b in BACKENDS if b != keras.backend.backend())


def with_optimizer_module(path: Path, module: str, class_name: str | None = None) -> Path:
    """A copy of the `.keras` file at `path` whose optimizer is recorded as `module.class_name`."""
    patched = path.with_name(f"patched-{path.name}")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(patched, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "config.json":
                config = json.loads(data)
                optimizer = config["compile_config"]["optimizer"]
                optimizer["module"] = module
                if class_name is not None:
                    optimizer["class_name"] = optimizer["registered_name"] = class_name
                data = json.dumps(config).encode()
            target.writestr(entry, data)
    return patched


def compiled_trained_model(preset="notebook"):
    model = lb.build_lenet(preset)
    loss, metrics = objectives.loss_and_metrics(model)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.5), loss=loss, metrics=metrics)
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype("float32")
    model.train_on_batch(x, np.arange(4))
    return model, x


@pytest.mark.backend_agnostic
def test_load_model_replaces_other_backends_optimizer_keeping_its_state(tmp_path):
    model, x = compiled_trained_model("lenet5_1998")
    model.save(tmp_path / "m.keras")
    other = other_backend()
    path = with_optimizer_module(
        tmp_path / "m.keras", f"keras.src.backend.{other}.optimizers.{other}_sgd"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        restored = lb.load_model(path)
    assert isinstance(restored.optimizer, keras.optimizers.SGD)
    assert not type(restored.optimizer).__module__.startswith(f"keras.src.backend.{other}.")
    assert int(keras.ops.convert_to_numpy(restored.optimizer.iterations)) == 1
    assert restored.optimizer.get_config()["momentum"] == pytest.approx(0.5)
    for saved, loaded in zip(model.optimizer.variables, restored.optimizer.variables, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(saved)
        )
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    restored.train_on_batch(x, np.arange(4))  # and it trains on this backend


@pytest.mark.backend_agnostic
def test_load_model_without_such_public_optimizer_warns_and_compiles_anew(tmp_path):
    model, x = compiled_trained_model()
    model.save(tmp_path / "m.keras")
    other = other_backend()
    path = with_optimizer_module(
        tmp_path / "m.keras", f"keras.src.backend.{other}.optimizers.special", "SpecialSGD"
    )
    with pytest.warns(UserWarning, match=r"SpecialSGD.*optimizer and its state were not restored"):
        restored = lb.load_model(path)
    assert restored.compiled
    assert isinstance(restored.loss, keras.losses.SparseCategoricalCrossentropy)
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    restored.train_on_batch(x, np.arange(4))


@pytest.mark.backend_agnostic
def test_load_model_uncompiled_ignores_the_optimizer(tmp_path):
    model, x = compiled_trained_model()
    model.save(tmp_path / "m.keras")
    path = with_optimizer_module(tmp_path / "m.keras", "keras.src.backend.nowhere.sgd", "Nope")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        restored = lb.load_model(path, compile=False)
    assert not restored.compiled
    np.testing.assert_array_equal(restored.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.backend_agnostic
def test_load_model_keeps_xla_on_tensorflow_and_jax_but_not_torch_compile(tmp_path):
    """TF and JAX record `jit_compile=True` (XLA); on PyTorch that would mean torch.compile."""
    model = lb.build_lenet("d2l")
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", jit_compile=True)
    model.save(tmp_path / "m.keras")
    restored = lb.load_model(tmp_path / "m.keras")
    assert restored.jit_compile is (keras.backend.backend() != "torch")
    x = np.zeros((2, 28, 28, 1), "float32")
    assert restored.predict(x, verbose=0).shape == (2, 10)


# --- ConnectionTableConv2D sparsity, on any backend (test_lenet5 uses tf.GradientTape) -----


def input_gradient_by_map(layer, x, output_map):
    """|d sum(layer(x)[..., output_map]) / d x| summed over all but the input map axis."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x)[..., output_map])
        gradient = tape.gradient(total, x)
    elif backend == "jax":
        import jax

        gradient = jax.grad(lambda v: layer(v)[..., output_map].sum())(x)
    elif backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        layer(x)[..., output_map].sum().backward()
        gradient = x.grad
    else:
        pytest.skip(f"no gradient helper for the {backend} backend")
    return np.abs(keras.ops.convert_to_numpy(gradient)).sum(axis=(0, 1, 2))


@pytest.mark.backend_agnostic
def test_c3_gradient_reaches_exactly_the_tables_input_maps():
    layer = ConnectionTableConv2D(activation=None)
    x = np.random.default_rng(0).normal(size=(2, 14, 14, 6)).astype("float32")
    layer.build(x.shape)
    table = np.array(lb.layers.LENET5_CONNECTION_TABLE)
    for k in range(table.shape[1]):
        assert ((input_gradient_by_map(layer, x, k) > 0) == table[:, k]).all(), k


@pytest.mark.backend_agnostic
def test_c3_trains_only_connected_weights():
    """One SGD step on any backend leaves the dense kernel's unconnected entries at zero."""
    layer = ConnectionTableConv2D(kernel_size=3)
    model = keras.Sequential([keras.Input((8, 8, 6)), layer, keras.layers.Flatten()])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    rng = np.random.default_rng(0)
    before = keras.ops.convert_to_numpy(layer.kernel).copy()
    model.train_on_batch(rng.normal(size=(2, 8, 8, 6)), rng.normal(size=(2, 6 * 6 * 16)))
    assert not np.array_equal(keras.ops.convert_to_numpy(layer.kernel), before)
    kernel = keras.ops.convert_to_numpy(layer.dense_kernel())
    connected = np.array(lb.layers.LENET5_CONNECTION_TABLE)
    assert (kernel[:, :, ~connected] == 0).all() and (kernel[:, :, connected] != 0).all()


def test_setup_script_is_valid_bash_and_pins_the_cpu_torch_build():
    script = ROOT / "scripts" / "setup_backends.sh"
    assert "torch==2.13.0" in script.read_text()
    subprocess.run(["bash", "-n", str(script)], check=True)
