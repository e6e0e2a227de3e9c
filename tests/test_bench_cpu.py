"""`benchmarks/bench_cpu.py --quick`: the package, plain Keras `fit` and PyTorch eager on every
Keras backend whose environment is here (`.venv`, `.venv-jax`, `.venv-torch`), one process
each, run once end to end; the doctests of its helpers; the committed run and the tables the
docs carry from it.
"""

from __future__ import annotations

import doctest
import json
import os
import sys

import pytest
from bench_helpers import (
    BENCHMARKS,
    REPOSITORY,
    bench_lib_fixture,  # noqa: F401  (the `bench_lib` fixture)
    run_quick,
)

from lenet_blocks.backends import BACKENDS

COMMITTED = BENCHMARKS / "results" / "cpu" / "backends.json"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("bench_cpu") / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_BACKEND", None)
    env["PYTHONPATH"] = str(BENCHMARKS)
    command = [sys.executable, str(BENCHMARKS / "bench_cpu.py")]
    return run_quick(command, output, env, kind="backends")


def test_every_present_backend_measured_the_package_and_plain_fit(quick_run, bench_lib):
    cross_backend = bench_lib("cross_backend")
    kinds = (*BACKENDS, cross_backend.PEER)
    present = [kind for kind in kinds if cross_backend.interpreter(kind) is not None]
    result = quick_run["result"]
    assert result["complete"] is True and result["config"]["quick"] is True
    (isa,) = result["config"]["instruction_sets"]  # a quick run: the native set only
    figures = result["figures"]
    for backend in present:
        if backend == "pytorch":
            assert f"{isa}/pytorch/eager/b32" in figures
            continue
        for variant in ("package", "keras-fit"):
            assert f"{isa}/keras-{backend}/{variant}/b32" in figures, (backend, variant)
        assert f"{backend}/{isa}" in result["workers"]
        assert result["workers"][f"{backend}/{isa}"]["backend"] == backend
    for key, figure in figures.items():
        assert 0 < figure["min"] <= figure["median"] <= figure["max"], key


def test_ratios_and_the_fastest_backend_come_from_the_run_figures(quick_run):
    result = quick_run["result"]
    figures, ratios = result["figures"], result["ratios"]
    assert any(key.startswith("package_vs_keras_fit/") for key in ratios)
    for key, ratio in ratios.items():
        numerator = figures[ratio["numerator"]]["median"]
        assert ratio["value"] == pytest.approx(
            numerator / figures[ratio["denominator"]]["median"], rel=1e-12
        ), key
    (row,) = result["fastest"]
    packages = [k for k in figures if k.split("/")[2] in ("package", "package-spe32")]
    assert row["figure"] == max(packages, key=lambda key: figures[key]["median"])
    assert row["backend"] in row["figure"] and row["batch_size"] == 32


def test_the_cpu_and_what_was_not_measured_are_recorded(quick_run):
    result = quick_run["result"]
    device = result["device"]
    assert device["cpu_model"] and device["usable_cpus"] >= 1
    if "avx512f" not in device["cpu_flags"]:
        assert any(note.startswith("AVX-512 not measured") for note in result["notes"])
    assert result["source"]["commit"]


def test_reports_are_written(quick_run):
    output = quick_run["output"]
    text = (output / "backends.md").read_text()
    assert "## Fastest backend (lenet-blocks train)" in text and "| batch 32 |" in text
    assert (output / "backends.png").read_bytes().startswith(b"\x89PNG")
    assert "| instruction set | batch | fastest backend |" in quick_run["stdout"]


def test_an_avx512_cpu_is_measured_native_and_capped_to_avx2(bench_lib):
    cpu = bench_lib("cpu")
    sets, notes = cpu.instruction_sets("auto", ["avx2", "avx512f"])
    assert list(sets) == ["avx512", "avx2"] and not notes
    env = cpu.environment_for(sets["avx2"], {})
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["XLA_FLAGS"] == "--xla_cpu_max_isa=AVX2"


def test_committed_run_is_compact_and_the_docs_carry_its_table(bench_lib):
    if not COMMITTED.exists():
        pytest.skip("no committed results here (the sdist leaves them out)")
    report = bench_lib("backend_report")
    text = COMMITTED.read_text()
    result = json.loads(text)
    assert report.dumps(result, inline_depth=2) + "\n" == text
    assert result["complete"] is True
    for name in ("backends.md", "benchmarks.md"):
        assert report.docs_block(result) in (REPOSITORY / "docs" / name).read_text(), name


@pytest.mark.parametrize("module", ["cpu", "cross_backend", "backend_report"])
def test_helper_doctests(module, bench_lib):
    outcome = doctest.testmod(bench_lib(module))
    assert outcome.attempted > 0 and outcome.failed == 0
