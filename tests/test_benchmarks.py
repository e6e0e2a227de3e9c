"""`benchmarks/bench_gpu.py --quick`, run once end to end on the CPU, its helpers' doctests, and
the committed results.

The module-scoped fixture runs the script in a subprocess (one to three minutes on 2 cores);
every test that takes `quick_run` reads what that one run wrote.
"""

from __future__ import annotations

import ast
import doctest
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from bench_helpers import (
    BENCHMARKS,
    REPOSITORY,
    WITHOUT_TENSORFLOW,
    bench_lib_fixture,  # noqa: F401  (the `bench_lib` fixture)
    run_quick,
)

import lenet_blocks

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LOOP_BOUND = "fit/keras-tensorflow/notebook/float32/loop32/tensor/b32"  # --quick: 1024 / 32


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """Runs `bench_gpu.py --quick` on the CPU; returns its output folder and parsed JSON."""
    output = tmp_path_factory.mktemp("bench") / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # measure the CPU even on a GPU machine
    env.pop("KERAS_BACKEND", None)
    return run_quick([sys.executable, str(BENCHMARKS / "bench_gpu.py")], output, env)


def test_without_tensorflow_the_script_says_so_and_names_the_jax_benchmark():
    script = str(BENCHMARKS / "bench_gpu.py")
    process = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, script, "--quick"],
        cwd=BENCHMARKS.parent,
        env={**os.environ, "PYTHONPATH": str(BENCHMARKS), "KERAS_BACKEND": "tensorflow"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 1
    assert "TensorFlow, which is not installed here" in process.stderr
    assert "benchmarks/bench_keras_jax.py" in process.stderr
    assert "Traceback" not in process.stderr


def _top_level_imports(path) -> set[str]:
    """Modules a file imports when it is loaded (imports inside functions or `if` are lazy)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def _module_file(name: str):
    """The file of a module of this repository (`bench_lib.x`, `lenet_blocks.x`, a script)."""
    root, *rest = name.split(".")
    folders = {"bench_lib": BENCHMARKS / "bench_lib", "lenet_blocks": REPOSITORY / "lenet_blocks"}
    stem = folders[root].joinpath(*rest) if root in folders else BENCHMARKS / root
    return next((p for p in (stem.with_suffix(".py"), stem / "__init__.py") if p.is_file()), None)


def test_the_jax_run_imports_no_tensorflow_when_loaded():
    public = lenet_blocks._PUBLIC_NAMES  # lazily loaded names -> their modules
    todo, seen, imported = ["bench_keras_jax"], set(), set()
    while todo:
        name = todo.pop()
        path = _module_file(public.get(name.removeprefix("lenet_blocks."), name))
        if path is None or path in seen:
            continue
        seen.add(path)
        found = _top_level_imports(path)
        imported |= found
        todo += [m for m in found if m.split(".")[0] in ("bench_lib", "lenet_blocks", "bench_gpu")]
    for module in (
        "bench_gpu",
        "bench_lib.keras_steps",
        "lenet_blocks.compile",
        "lenet_blocks.builder",
    ):
        assert _module_file(module) in seen
    assert not [module for module in imported if module.split(".")[0] == "tensorflow"]


def test_json_has_the_run_description(quick_run):
    result = quick_run["result"]
    for key in ("schema_version", "created", "command", "device", "versions", "config"):
        assert key in result
    for key in ("figures", "ratios", "peers", "skipped", "training_flops_per_sample"):
        assert key in result
    assert result["complete"] is True and result["bound_samples_per_second"] is None  # a CPU
    device = result["device"]
    assert device["kind"] == "cpu"
    assert device["name"] and device["cpu_model"] and device["logical_cpus"] >= 1
    assert "nvidia_smi" in device
    assert result["versions"]["tensorflow"] and result["versions"]["keras"]


def test_quick_configuration_is_the_small_cpu_sweep(quick_run):
    config = quick_run["result"]["config"]
    assert config["quick"] is True
    assert config["batch_sizes"] == [32, 64]
    assert config["precisions"] == ["float32"]
    assert config["xla"] == [True, False]
    assert config["feeds"] == ["tensor", "tf.data"]
    assert config["peers"] is False


def test_every_figure_has_a_median_and_spread(quick_run):
    figures = quick_run["result"]["figures"]
    assert figures
    for key, figure in figures.items():
        assert figure["repeats"] >= 1, key
        assert 0 < figure["min"] <= figure["q1"] <= figure["median"], key
        assert figure["median"] <= figure["q3"] <= figure["max"], key


def test_sweep_covers_models_feeds_xla_and_modes(quick_run, bench_lib):
    fields = bench_lib("sweep").fields
    covered = {
        (f["mode"], f["model"], f["compiler"], f["feed"], f["batch_size"])
        for f in map(fields, quick_run["result"]["figures"])
        if f["framework"] == "keras-tensorflow" and f["mode"] != "fit"
    }
    for mode in ("train", "infer"):
        for model in ("notebook", "sequential"):
            for compiler in ("xla", "none"):
                for batch in quick_run["result"]["config"]["batch_sizes"]:
                    assert (mode, model, compiler, "tensor", batch) in covered
                    assert (mode, model, compiler, "tf.data", batch) in covered
                    if mode == "train":
                        assert ("train", model, f"{compiler}-loop8", "tensor", batch) in covered


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
    for batch in quick_run["result"]["config"]["batch_sizes"]:
        assert any(
            key.startswith("build_lenet_vs_sequential/train/") and key.endswith(f"/b{batch}")
            for key in ratios
        )
    assert "best_pipeline_vs_notebook_fit" in ratios


def test_fit_group_has_the_loop_bound_and_the_summary_quotes_it(quick_run):
    result = quick_run["result"]
    assert LOOP_BOUND in result["figures"]
    ratios = result["ratios"]
    assert ratios["loop_vs_notebook_fit"]["numerator"] == LOOP_BOUND
    assert ratios["best_pipeline_vs_loop"]["denominator"] == LOOP_BOUND
    # the bound is not one of the package's pipelines
    assert ratios["best_pipeline_vs_notebook_fit"]["numerator"] != LOOP_BOUND
    value = ratios["loop_vs_notebook_fit"]["value"]
    assert f"{value:.2f}x ({LOOP_BOUND})" in quick_run["stdout"]


def test_the_loop_runs_the_models_own_train_step(bench_lib):
    keras_steps = bench_lib("keras_steps")
    images, labels = keras_steps.synthetic_data(16)
    data = (images.astype("float32"), labels)
    weights = []
    for loop in (False, True):
        keras_steps.keras.utils.set_random_seed(0)
        model = keras_steps.compiled_model("notebook")
        steps = keras_steps.Steps(model, loop_steps=3)
        for _ in range(1 if loop else 3):
            steps.train_loop(data) if loop else steps.train(data)
        weights.append(model.get_weights())
    for one_by_one, looped in zip(*weights, strict=True):
        np.testing.assert_allclose(looped, one_by_one, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sequential", "notebook"])
def test_time_to_accuracy_row_stops_at_its_cap_with_its_curve(name, bench_lib):
    keras_steps, accuracy = bench_lib("keras_steps"), bench_lib("accuracy")
    (x_train, y_train), (x_test, y_test) = (keras_steps.synthetic_data(n) for n in (320, 64))
    config = {"seed": 0, "steps_per_execution": 2, "jit_compile": "auto", "eval_every": 64}
    config.update(thresholds=[0.8, 0.9], max_seconds=0.0)  # stop at the first evaluation
    row = accuracy.run(name, ((x_train, y_train), (x_test, y_test)), config)
    ((seconds, samples, best),) = row["curve"]
    assert seconds > 0 and samples == 64 and row["best_accuracy"] == best
    assert set(row["time_to_accuracy"]) == {"0.8", "0.9"} and row["status"] == "measured"
    assert ("make_dataset" in row["settings"]) is (name == "notebook")


def test_training_flops_are_counted_from_the_layers(bench_lib):
    environment, keras_steps = bench_lib("environment"), bench_lib("keras_steps")
    conv = 2 * (5 * 5 * 1 * 6 * 24 * 24 + 5 * 5 * 6 * 16 * 8 * 8)
    dense = 2 * (256 * 120 + 120 * 84 + 84 * 10)
    first = 2 * 5 * 5 * 1 * 6 * 24 * 24  # no gradient of the images
    expected = 3 * (conv + dense) - first
    for name in ("notebook", "sequential"):
        assert environment.training_flops_per_sample(keras_steps.compiled_model(name)) == expected


@pytest.mark.parametrize(
    ("name", "bound_named"), [("NVIDIA A100-SXM4-80GB", True), ("Some Future GPU", False)]
)
def test_gpu_line_names_the_gpu_that_ran_and_its_bound(name, bound_named, bench_lib):
    environment, results = bench_lib("environment"), bench_lib("results")
    device = {"kind": "gpu", "name": name, "peak_fp32_flops": environment.PEAK_FP32_FLOPS.get(name)}
    key = "train/keras-tensorflow/notebook/float32/xla/tensor/b8192"
    result = {
        "device": device,
        "figures": {key: {"median": 2e6, "min": 1.9e6, "max": 2.1e6}},
        "bound_samples_per_second": environment.throughput_bound(device, 1517040),
    }
    (line,) = results.summary(result)
    assert line.startswith(f"{name}: best build_lenet('notebook') training 2,000,000 samples/s")
    assert "H200" not in line
    assert ("unknown" in line) is not bound_named


def test_gpu_line_says_none_was_measured_on_cpu(quick_run):
    assert "GPU: none measured (device: cpu" in quick_run["stdout"]


def test_peers_are_not_requested_in_quick_mode(quick_run):
    assert quick_run["result"]["peers"] == {"pytorch": {"status": "not requested"}}


def test_markdown_report_has_the_tables(quick_run):
    text = (quick_run["output"] / "throughput.md").read_text()
    assert "Device measured: **" in text
    assert "## Summary" in text
    assert "## train, float32: samples/s, median (min-max)" in text
    assert "| batch 32 | batch 64 |" in text


def test_plots_are_pngs(quick_run):
    for mode in ("train", "infer"):
        path = quick_run["output"] / f"throughput_{mode}_float32.png"
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_no_temporary_files_are_left(quick_run):
    assert not list(quick_run["output"].glob(".tmp-*"))


@pytest.mark.parametrize("kind", ["throughput", "time_to_accuracy"])
def test_committed_cpu_results_are_compact_and_their_ratios_recheck(kind, bench_lib):
    path = BENCHMARKS / "results" / "cpu" / f"{kind}.json"
    if not path.exists():
        pytest.skip("no committed results here (the sdist leaves them out)")
    text = path.read_text()
    assert len(text.splitlines()) < 600
    result = json.loads(text)
    assert bench_lib("results").dumps(result, inline_depth=2) + "\n" == text
    for key, ratio in result.get("ratios", {}).items():
        numerator = result["figures"][ratio["numerator"]]["median"]
        assert ratio["value"] == numerator / result["figures"][ratio["denominator"]]["median"], key


@pytest.mark.parametrize("module", ["environment", "keras_steps", "report_text", "sweep", "timing"])
def test_helper_doctests(module, bench_lib):
    outcome = doctest.testmod(bench_lib(module))
    assert outcome.attempted > 0 and outcome.failed == 0
