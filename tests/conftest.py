"""Shared fixtures, Hypothesis profiles and the backend markers.

Profiles: `dev` (default, more examples), `ci` (chosen when `CI` is set; sized for a
2-core CPU) and `fuzz` (`HYPOTHESIS_PROFILE=fuzz`: a long local run of the fuzz suites). None
has a deadline: the first call of a Keras model traces a graph (and on JAX the first call
compiles it, which takes longer than Hypothesis' default 200 ms).

Backends: the tests of the layers, the builder, LeNet-5 with its objective, and saving hold on
every Keras backend; they (and the doctests of the same modules) get the `backend_agnostic`
marker here, so that CI runs them again under JAX and PyTorch with
`KERAS_BACKEND=jax .venv-jax/bin/python -m pytest -m backend_agnostic` (see docs/backends.md).
A test that needs TensorFlow itself (`tf.GradientTape`, `tf.data` internals, the tuner,
export) is marked `tensorflow_only` and skipped on the other backends.
"""

import os
from pathlib import Path

import keras
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

BACKEND = keras.backend.backend()
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "lenet_blocks"
# Test modules whose every test holds on TensorFlow, JAX and PyTorch.
BACKEND_AGNOSTIC_TEST_MODULES = frozenset(
    {
        "test_layers.py",
        "test_builder.py",
        "test_lenet5.py",
        "test_saving.py",
        "test_regularization.py",
        "test_bench_keras_jax.py",  # needs JAX installed, whatever the backend (skips without)
        "test_cli_backends.py",  # every command on the backend of the run
        "test_training_callbacks.py",
        "test_array_batches.py",  # the NumPy batches of JAX and PyTorch, and exact resume there
    }
)
# Package modules whose doctests hold on every backend (paths relative to lenet_blocks/).
BACKEND_AGNOSTIC_DOCTEST_MODULES = frozenset(
    {
        "__init__.py",
        "builder.py",
        "inspection.py",
        "lenet5.py",
        "losses.py",
        "objectives.py",
        "presets.py",
        "regularization.py",
        "saving.py",
        *(f"layers/{path.name}" for path in (PACKAGE_DIR / "layers").glob("*.py")),
    }
)


# Tests whose assertions need a model to have learned something. oneDNN picks other kernels on
# other instruction sets, so CI runs these again with `ONEDNN_MAX_CPU_ISA=AVX2` (`-m learns`):
# each must learn its task with margin, not by a lucky seed.
LEARNING_TESTS = frozenset(
    {
        "test_export.py::test_int8_tflite_keeps_accuracy_of_trained_model",
        "test_export.py::test_int8_accuracy_drop_over_threshold_raises",
        "test_lenet5.py::test_lenet5_rbf_loss_decreases_on_tiny_set",
        "test_training.py::test_one_epoch_on_real_fashion_mnist_learns",
        "test_layers.py::test_layer_passes_every_generic_check",
    }
)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backend_agnostic: holds on every Keras backend; CI also runs these under JAX and "
        "PyTorch (KERAS_BACKEND=jax|torch, -m backend_agnostic)",
    )
    config.addinivalue_line(
        "markers", "tensorflow_only: needs TensorFlow itself; skipped on the other backends"
    )
    config.addinivalue_line(
        "markers",
        "learns: asserts that a model learned; CI reruns these under ONEDNN_MAX_CPU_ISA=AVX2",
    )


def _is_backend_agnostic(item) -> bool:
    path = Path(item.path).resolve()
    if path.name.startswith("test_"):
        return path.name in BACKEND_AGNOSTIC_TEST_MODULES
    try:
        return path.relative_to(PACKAGE_DIR).as_posix() in BACKEND_AGNOSTIC_DOCTEST_MODULES
    except ValueError:
        return False


def pytest_collection_modifyitems(config, items):
    skip_tensorflow_only = pytest.mark.skip(
        reason=f"needs TensorFlow itself; the Keras backend is {BACKEND}"
    )
    for item in items:
        if _is_backend_agnostic(item):
            item.add_marker(pytest.mark.backend_agnostic)
        if f"{Path(item.path).name}::{getattr(item, 'originalname', '')}" in LEARNING_TESTS:
            item.add_marker(pytest.mark.learns)
        if BACKEND != "tensorflow" and item.get_closest_marker("tensorflow_only"):
            item.add_marker(skip_tensorflow_only)


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts with the float32 policy and a fresh Keras name scope.

    `free_memory=False`: the `gc.collect()` of a full `clear_session()` costs 0.15-0.6 s a
    test (more on PyTorch), which made up most of the layer tests' time; Python's own garbage
    collection still runs.
    """
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session(free_memory=False)
    yield
    keras.config.set_dtype_policy("float32")
