"""What the cross-backend CPU run reports: `backends.json`, `backends.md`, `backends.png`, and
the table of the fastest backend that docs/backends.md and docs/benchmarks.md carry between
`DOCS_BEGIN` and `DOCS_END` (`bench_cpu.py --update-docs` writes it there)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from bench_lib.cross_backend import key_fields
from bench_lib.report_text import dumps, table, write_text
from lenet_blocks.artifacts import write_with

DOCS_BEGIN = "<!-- bench_cpu.py: fastest backend (generated, do not edit) -->"
DOCS_END = "<!-- bench_cpu.py: end -->"
LABELS = {
    "package": "lenet-blocks train",
    "package-spe32": "lenet-blocks train --steps-per-execution 32",
    "package-cosine": "lenet-blocks train --lr-schedule cosine",
    "keras-fit": "plain Keras fit (Sequential, NumPy)",
    "eager": "PyTorch eager",
}


def _number(value: float) -> str:
    return f"{value:,.0f}"


def _cell(figure: dict | None) -> str:
    if figure is None:
        return "-"
    spread = f"{_number(figure['min'])}-{_number(figure['max'])}"
    return f"{_number(figure['median'])} ({spread})"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def fastest_table(result: dict) -> list[str]:
    """The fastest backend per instruction set and batch size, as Markdown table lines.

    Example:
    >>> row = {"isa": "avx2", "batch_size": 32, "backend": "jax", "variant": "package",
    ...        "samples_per_second": 5e3, "package_vs_keras_fit": 1.1,
    ...        "package_vs_pytorch_eager": 0.7, "runner_up": "avx2/keras-torch/package/b32",
    ...        "separated": False}
    >>> fastest_table({"fastest": [row]})[-1]
    '| avx2 | 32 | jax | lenet-blocks train | 5,000 | 1.10x | 0.70x | torch, ranges overlap |'
    """
    header = ["instruction set", "batch", "fastest backend", "how", "samples/s (median)"]
    header += ["vs plain Keras fit, same backend", "vs PyTorch eager", "next backend"]
    rows = []
    for row in result["fastest"]:
        runner_up = row.get("runner_up")
        if runner_up is None:
            following = "-"
        else:
            following = key_fields(runner_up)["framework"].removeprefix("keras-") + (
                ", ranges apart" if row["separated"] else ", ranges overlap"
            )
        rows.append([
            row["isa"], str(row["batch_size"]), row["backend"], LABELS[row["variant"]],
            _number(row["samples_per_second"]),
            _ratio(row["package_vs_keras_fit"]), _ratio(row["package_vs_pytorch_eager"]),
            following,
        ])  # fmt: skip
    return table(header, rows)


def docs_block(result: dict) -> str:
    """The generated block the docs carry: the table and the run it comes from."""
    device = result["device"]
    lines = [
        DOCS_BEGIN,
        "",
        f"From `{result['command']}` ({result['created']}, {device['cpu_model']}, "
        f"{device['usable_cpus']} CPUs, flags {', '.join(device['cpu_flags']) or '-'}, "
        f"{result['config'].get('threads') or 'all'} thread(s) per process, load average at "
        f"start {', '.join(f'{value:.2f}' for value in device['load_average_at_start'])}; "
        "`benchmarks/results/cpu/backends.md`):",
        "",
        *fastest_table(result),
        "",
        *(f"- {note}" for note in result["notes"]),
        "",
        DOCS_END,
    ]
    return "\n".join(lines)


def update_docs(path: Path, result: dict) -> bool:
    """Replaces the generated block of the Markdown file `path`; `False` if it has none.

    Example:
    >>> import tempfile
    >>> doc = Path(tempfile.mkdtemp()) / "x.md"
    >>> _ = doc.write_text(f"a\\n{DOCS_BEGIN}\\nold\\n{DOCS_END}\\nb\\n")
    >>> update_docs(doc, {"fastest": [], "notes": [], "command": "c", "created": "t",
    ...     "config": {"threads": 1}, "device": {"cpu_model": "m", "usable_cpus": 2,
    ...     "cpu_flags": [], "load_average_at_start": [1.0, 1.0, 1.0]}})
    True
    >>> "old" in doc.read_text()
    False
    """
    text = path.read_text()
    pattern = re.compile(re.escape(DOCS_BEGIN) + ".*?" + re.escape(DOCS_END), re.DOTALL)
    if not pattern.search(text):
        return False
    write_text(path, pattern.sub(lambda _: docs_block(result), text, count=1))
    return True


def markdown(result: dict) -> str:
    """The run as Markdown: machine, fastest backend, every figure, the ratios."""
    device = result["device"]
    lines = [
        "# lenet_blocks on every Keras backend and PyTorch, CPU training",
        "",
        f"- CPU: {device['cpu_model']}, {device['usable_cpus']} of {device['logical_cpus']} CPUs "
        f"usable, flags: {', '.join(device['cpu_flags']) or '-'}; load average at start "
        + ", ".join(f"{value:.2f}" for value in device["load_average_at_start"]),
        f"- Created {result['created']} by `{result['command']}`"
        + ("" if result.get("complete") else " (incomplete: stopped before its end)"),
        *(f"- {note}" for note in result["notes"]),
        "",
        "## Processes",
        "",
    ]
    for name, info in result["workers"].items():
        versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        caps = ", ".join(f"{k}={v}" for k, v in info["isa_environment"].items()) or "none"
        torch_isa = info.get("pytorch_cpu_capability")
        extra = f"; PyTorch CPU capability {torch_isa}" if torch_isa else ""
        lines.append(f"- {name}: {versions}; instruction-set and thread settings: {caps}{extra}")
    lines += ["", "## Fastest backend (lenet-blocks train)", "", *fastest_table(result)]
    by_isa = defaultdict(lambda: defaultdict(dict))
    for key, figure in result["figures"].items():
        f = key_fields(key)
        by_isa[f["isa"]][(f["framework"], f["variant"])][f["batch_size"]] = figure
    batches = result["config"]["batch_sizes"]
    for isa, rows in by_isa.items():
        body = [
            [framework, LABELS.get(variant, variant), *(_cell(cells.get(b)) for b in batches)]
            for (framework, variant), cells in sorted(rows.items())
        ]
        lines += ["", f"## {isa}: training samples/s, median (min-max)", ""]
        lines += table(["framework", "what", *(f"batch {b}" for b in batches)], body)
    rows = [[key, f"{item['value']:.3f}"] for key, item in sorted(result["ratios"].items())]
    lines += ["", "## Ratios (of the medians above)", "", *table(["ratio", "value"], rows)]
    lines += ["", "## Skipped", "", *(f"- {s['what']}: {s['reason']}" for s in result["skipped"])]
    return "\n".join([*lines, "", f"Configuration: `{json.dumps(result['config'])}`", ""])


def plot(result: dict, path: Path) -> Path:
    """One panel per instruction set: samples/s by batch size, one bar per framework and
    variant (median, min-max whiskers), log scale."""
    by_isa = defaultdict(lambda: defaultdict(dict))
    for key, figure in result["figures"].items():
        f = key_fields(key)
        by_isa[f["isa"]][f"{f['framework']} {LABELS.get(f['variant'], f['variant'])}"][
            f["batch_size"]
        ] = figure
    batches = result["config"]["batch_sizes"]
    figure = Figure(figsize=(7 * max(1, len(by_isa)) + 3, 4.5))
    axes = figure.subplots(1, max(1, len(by_isa)), squeeze=False, sharey=True)[0]
    labels = sorted({label for series in by_isa.values() for label in series})
    colors = dict(zip(labels, colormaps["tab20"].colors * 2, strict=False))
    width = 0.8 / max(1, len(labels))
    for axis, (isa, series) in zip(axes, by_isa.items(), strict=False):
        for index, label in enumerate(labels):
            points = [(i, series[label][b]) for i, b in enumerate(batches) if b in series[label]]
            if not points:
                continue
            x = [i + (index - len(labels) / 2 + 0.5) * width for i, _ in points]
            medians = [p["median"] for _, p in points]
            spread = [
                [p["median"] - p["min"] for _, p in points],
                [p["max"] - p["median"] for _, p in points],
            ]
            axis.bar(x, medians, width, yerr=spread, color=colors[label], label=label, capsize=2)
        axis.set(yscale="log", xlabel="batch size", title=f"instruction set: {isa}")
        axis.set_xticks(range(len(batches)), labels=map(str, batches))
        axis.grid(alpha=0.3, axis="y", which="both")
    axes[0].set_ylabel("training samples/s (median, min-max)")
    handles, names = axes[0].get_legend_handles_labels()
    figure.legend(handles, names, fontsize=7, loc="center right")
    figure.suptitle(f"Training the notebook network, {result['device']['cpu_model']}")
    figure.tight_layout(rect=(0, 0, 0.75, 1))
    return write_with(path, lambda tmp: figure.savefig(tmp, dpi=80, format="png"))


def write(result: dict, output: Path, plots: bool = True) -> None:
    """`backends.json` (one line per figure), `backends.md` and (with `plots`) `backends.png`."""
    output.mkdir(parents=True, exist_ok=True)
    write_text(output / "backends.json", dumps(result, inline_depth=2) + "\n")
    write_text(output / "backends.md", markdown(result))
    if plots and result["figures"]:
        plot(result, output / "backends.png")
