"""`benchmarks/bench_gpu.py --quick`, run once end to end on the CPU, and its helpers' doctests.

The module-scoped fixture runs the script in a subprocess (about a minute on 2 cores); every
test below reads what that one run wrote.
"""

from __future__ import annotations

import doctest
import importlib
import os
import subprocess
import sys

import pytest
from bench_helpers import BENCHMARKS, WITHOUT_TENSORFLOW, run_quick

STATUSES = {"PASS", "FAIL", "NOT MEASURED"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Runs `bench_gpu.py --quick` on the CPU; returns its output folder and parsed JSON."""
    output = tmp_path_factory.mktemp("bench") / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # measure the CPU even on a GPU machine
    return run_quick([sys.executable, str(BENCHMARKS / "bench_gpu.py")], output, env)


def test_without_tensorflow_the_script_says_so_and_names_the_jax_benchmark():
    script = str(BENCHMARKS / "bench_gpu.py")
    process = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, script, "--quick"],
        cwd=BENCHMARKS.parent,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 1
    assert "TensorFlow, which is not installed here" in process.stderr
    assert "benchmarks/bench_keras_jax.py" in process.stderr
    assert "Traceback" not in process.stderr


def test_json_has_the_run_description(quick_run):
    result = quick_run["result"]
    for key in ("schema_version", "created", "command", "device", "versions", "config"):
        assert key in result
    for key in ("figures", "ratios", "targets", "peers", "skipped"):
        assert key in result
    device = result["device"]
    assert device["kind"] == "cpu"
    assert device["name"] and device["cpu_model"] and device["logical_cpus"] >= 1
    assert "nvidia_smi" in device
    assert result["versions"]["tensorflow"] and result["versions"]["keras"]


def test_quick_configuration_is_the_small_cpu_sweep(quick_run):
    config = quick_run["result"]["config"]
    assert config["quick"] is True
    assert config["batch_sizes"] == [32, 256]
    assert config["precisions"] == ["float32"]
    assert config["xla"] == [True, False]
    assert config["feeds"] == ["tensor", "tf.data"]
    assert config["peers"] is False


def test_every_figure_has_a_median_and_spread(quick_run):
    figures = quick_run["result"]["figures"]
    assert figures
    for key, figure in figures.items():
        assert figure["unit"] == "samples/s", key
        assert figure["repeats"] == len(figure["values"]) >= 1, key
        assert 0 < figure["min"] <= figure["q1"] <= figure["median"], key
        assert figure["median"] <= figure["q3"] <= figure["max"], key


def test_sweep_covers_models_feeds_xla_and_modes(quick_run):
    figures = quick_run["result"]["figures"].values()
    covered = {
        (f["mode"], f["model"], f["compiler"], f["feed"], f["batch_size"])
        for f in figures
        if f["framework"] == "keras-tensorflow" and f["mode"] != "fit"
    }
    for mode in ("train", "infer"):
        for model in ("notebook", "sequential"):
            for compiler in ("xla", "none"):
                for feed in ("tensor", "tf.data"):
                    for batch in (32, 256):
                        assert (mode, model, compiler, feed, batch) in covered


def test_every_ratio_is_computed_from_figures_of_the_same_run(quick_run):
    result = quick_run["result"]
    figures, ratios = result["figures"], result["ratios"]
    assert ratios
    for key, ratio in ratios.items():
        numerator = figures[ratio["numerator"]]["median"]
        denominator = figures[ratio["denominator"]]["median"]
        assert ratio["value"] == pytest.approx(numerator / denominator, rel=1e-12), key


def test_reference_is_compared_with_the_plain_sequential_at_every_batch_size(quick_run):
    ratios = quick_run["result"]["ratios"]
    for batch in (32, 256):
        assert any(
            key.startswith("build_lenet_vs_sequential/train/") and key.endswith(f"/b{batch}")
            for key in ratios
        )
    assert "best_pipeline_vs_notebook_fit" in ratios


def test_fit_group_has_the_tensorflow_floor_and_target_2a_quotes_it(quick_run):
    result = quick_run["result"]
    floor = result["figures"]["fit/tensorflow_floor_steps/b32"]
    assert (floor["framework"], floor["model"], floor["feed"]) == (
        "tensorflow",
        "notebook",
        "tensor",
    )
    ratios = result["ratios"]
    assert (
        ratios["tensorflow_floor_vs_notebook_fit"]["numerator"] == "fit/tensorflow_floor_steps/b32"
    )
    assert ratios["best_pipeline_vs_tensorflow_floor"]["denominator"] == (
        "fit/tensorflow_floor_steps/b32"
    )
    # the floor is not one of the package's pipelines
    assert ratios["best_pipeline_vs_notebook_fit"]["numerator"] != "fit/tensorflow_floor_steps/b32"
    target = next(t for t in result["targets"] if t["id"] == "2a")
    floor_ratio = ratios["tensorflow_floor_vs_notebook_fit"]["value"]
    assert f"reach {floor_ratio:.2f}x" in target["detail"]


def test_tensorflow_floor_steps_train_the_notebook_network(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import keras
    import numpy as np

    tf_floor = importlib.import_module("bench_lib.tf_floor")
    networks = importlib.import_module("bench_lib.networks")
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, size=(32, 28, 28, 1), dtype=np.uint8)
    labels = generator.integers(0, 10, size=(32,))
    keras.utils.set_random_seed(0)
    first_loss = float(tf_floor.training_steps(images, labels, 1, "/CPU:0")())
    keras.utils.set_random_seed(0)
    model = networks.plain_sequential()  # same initial weights: the loss Keras computes
    model.compile(loss="sparse_categorical_crossentropy")
    assert first_loss == pytest.approx(model.evaluate(images, labels, verbose=0), rel=1e-5)
    one_class = np.full((32,), 3)
    assert float(tf_floor.training_steps(images, one_class, 100, "/CPU:0")()) < 0.05


def test_targets_have_a_status_and_no_gpu_is_reported_on_cpu(quick_run):
    targets = {t["id"]: t for t in quick_run["result"]["targets"]}
    assert set(targets) == {"1", "2a", "2b", "4"}
    assert all(t["status"] in STATUSES and t["detail"] for t in targets.values())
    assert targets["4"]["status"] == "NOT MEASURED"
    assert targets["4"]["detail"] == "no GPU measured"
    assert "[NOT MEASURED] 4:" in quick_run["stdout"]


def test_peers_are_not_requested_in_quick_mode(quick_run):
    peers = quick_run["result"]["peers"]
    assert set(peers) == {"pytorch", "keras-jax"}
    assert all(info["status"] == "not requested" for info in peers.values())


def test_markdown_report_has_the_tables(quick_run):
    text = (quick_run["output"] / "throughput.md").read_text()
    assert "Device measured: **" in text
    assert "| # | target | status | measured |" in text
    assert "## Training (full optimizer steps), float32: samples/s" in text
    assert "| batch 32 | batch 256 |" in text


def test_plots_are_pngs(quick_run):
    for mode in ("train", "infer"):
        path = quick_run["output"] / f"throughput_{mode}_float32.png"
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_no_temporary_files_are_left(quick_run):
    assert not list(quick_run["output"].glob(".tmp-*"))


@pytest.mark.parametrize(
    "module",
    [
        "accuracy_clock",
        "accuracy_run",
        "data",
        "environment",
        "networks",
        "peers",
        "stats",
        "sweep",
        "targets",
        "tf_floor",
        "timing",
    ],
)
def test_helper_doctests(module, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    outcome = doctest.testmod(importlib.import_module(f"bench_lib.{module}"))
    assert outcome.failed == 0
