"""`benchmarks/bench_keras_jax.py --quick`, run once end to end on the CPU with TensorFlow
unimportable (as on the lent GPU machine's image), and the doctests of its Keras steps.

Needs JAX: CI runs it in the JAX environment (`.venv-jax`); without JAX it is skipped.
"""

from __future__ import annotations

import doctest
import importlib
import os
import sys

import pytest
from bench_helpers import BENCHMARKS, WITHOUT_TENSORFLOW, run_quick

pytest.importorskip("jax")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("bench_jax") / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_BACKEND", None)  # the script picks JAX itself
    env["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS), str(BENCHMARKS.parent)])
    script = str(BENCHMARKS / "bench_keras_jax.py")
    return run_quick([sys.executable, "-c", WITHOUT_TENSORFLOW, script], output, env)


def test_quick_run_measures_both_models_step_and_loop_without_tensorflow(quick_run, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sweep = importlib.import_module("bench_lib.sweep")
    result = quick_run["result"]
    assert result["device"]["kind"] == "cpu"
    assert result["complete"] is True  # written after every group, complete at the end
    assert "tensorflow" not in result["versions"]
    config = result["config"]
    assert config["batch_sizes"] == [32, 64] and config["loop_steps"] == 8
    assert {"what": "feed tf.data", "reason": sweep.NO_TF_DATA} in result["skipped"]
    figures = {key: {**sweep.fields(key), **figure} for key, figure in result["figures"].items()}
    covered = {(f["mode"], f["model"], f["compiler"], f["batch_size"]) for f in figures.values()}
    for model in ("notebook", "sequential"):
        for batch in config["batch_sizes"]:
            assert ("train", model, "xla", batch) in covered
            assert ("train", model, "xla-loop8", batch) in covered
            assert ("infer", model, "xla", batch) in covered
    for figure in figures.values():
        assert figure["framework"] == "keras-jax"
        assert 0 < figure["min"] <= figure["median"] <= figure["max"]


def test_every_ratio_is_computed_from_figures_of_the_same_run(quick_run):
    figures, ratios = quick_run["result"]["figures"], quick_run["result"]["ratios"]
    assert any(key.startswith("build_lenet_vs_sequential/train/") for key in ratios)
    assert any(key.startswith("loop_vs_single_step/notebook/") for key in ratios)
    for key, ratio in ratios.items():
        numerator = figures[ratio["numerator"]]["median"]
        denominator = figures[ratio["denominator"]]["median"]
        assert ratio["value"] == pytest.approx(numerator / denominator, rel=1e-12), key


def test_gpu_line_says_none_was_measured_on_cpu_and_reports_are_written(quick_run):
    assert "GPU: none measured (device: cpu" in quick_run["stdout"]
    output = quick_run["output"]
    markdown = (output / "throughput.md").read_text()
    assert "## train, float32" in markdown and "xla-loop8" in markdown
    for mode in ("train", "infer"):
        assert (output / f"throughput_{mode}_float32.png").read_bytes().startswith(b"\x89PNG")


def test_helper_doctests(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module("bench_lib.keras_steps")
    if module.BACKEND != "jax":
        pytest.skip("the doctests build models: they need Keras on JAX in this process")
    outcome = doctest.testmod(module)
    assert outcome.attempted > 0 and outcome.failed == 0
