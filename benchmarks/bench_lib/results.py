"""What a run reports: ratios of its figures (each naming both), the summary lines the targets
of docs/benchmarks.md are read from, and its compact JSON, Markdown and PNG plots."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from bench_lib.report_text import dumps, table, write_text
from bench_lib.sweep import fields, figure_id
from lenet_blocks.artifacts import write_with

PLOTTED = ("batch_size", "median", "min", "max")


def ratios(figures: dict) -> dict:
    """`build_lenet('notebook')` over the plain Sequential, `tf.data` over device tensors,
    steps in one call over one step per call, Keras over each peer (float32, device tensors),
    and the `fit` group's ratios; wherever both figures exist."""
    found = {}

    def add(name: str, numerator: str | None, denominator: str | None) -> None:
        if numerator in figures and denominator in figures:
            value = figures[numerator]["median"] / figures[denominator]["median"]
            found[name] = {"numerator": numerator, "denominator": denominator, "value": value}

    by_key = {key: fields(key) for key in figures}
    for key, f in by_key.items():
        if f["mode"] == "fit" or not f["framework"].startswith("keras-"):
            continue
        single, _, loop = f["compiler"].partition("-loop")
        if loop:
            name = f"loop_vs_single_step/{f['model']}/{f['precision']}/{single}/b{f['batch_size']}"
            add(name, key, figure_id(**{**f, "compiler": single}))
        if f["model"] != "notebook":
            continue
        setting = f"{f['mode']}/{f['precision']}/{f['compiler']}/{f['feed']}/b{f['batch_size']}"
        add(f"build_lenet_vs_sequential/{setting}", key, figure_id(**{**f, "model": "sequential"}))
        if f["feed"] != "tensor" or loop:
            continue
        name = f"tf.data_vs_tensor/{f['mode']}/{f['precision']}/{f['compiler']}/b{f['batch_size']}"
        add(name, figure_id(**{**f, "feed": "tf.data"}), key)
        for peer, p in by_key.items():
            same = (p["mode"], p["batch_size"]) == (f["mode"], f["batch_size"])
            if same and f["precision"] == "float32" and p["framework"] != f["framework"]:
                name = f"{f['framework']}_{f['compiler']}_vs_{p['framework']}_{p['compiler']}"
                add(f"{name}/{f['mode']}/b{f['batch_size']}", key, peer)
    fits = {key: f for key, f in by_key.items() if f["mode"] == "fit"}
    notebook = next((k for k, f in fits.items() if f["model"] == "sequential"), None)
    package = [k for k, f in fits.items() if f["feed"] == "tf.data"]
    best = max(package, key=lambda k: figures[k]["median"], default=None)
    default = next((k for k in package if fields(k)["compiler"] == "defaults"), None)
    loop = next(
        (k for k, f in fits.items() if f["feed"] == "tensor" and f["framework"] != "pytorch"), None
    )
    torch = next((k for k, f in fits.items() if f["framework"] == "pytorch"), None)
    add("best_pipeline_vs_notebook_fit", best, notebook)
    add("package_fit_vs_notebook_fit", default, notebook)
    add("loop_vs_notebook_fit", loop, notebook)
    add("best_pipeline_vs_loop", best, loop)
    add("best_pipeline_vs_pytorch_eager", best, torch)
    add("loop_vs_pytorch_eager", loop, torch)
    return found


def summary(result: dict) -> list[str]:
    """The figures the targets of docs/benchmarks.md are read from, one line each."""
    figures, found, device = result.get("figures", {}), result.get("ratios", {}), result["device"]
    lines = []
    versus = {k: v for k, v in found.items() if k.startswith("build_lenet_vs_sequential/train/")}
    if versus:
        values = sorted(v["value"] for v in versus.values())
        below = [v for v in versus.values() if v["value"] < 1.0]
        pairs = [(figures[v["numerator"]], figures[v["denominator"]]) for v in below]
        noise = sum(a["min"] <= b["max"] and b["min"] <= a["max"] for a, b in pairs)
        lines.append(
            f"build_lenet / Sequential, training: {len(values) - len(below)} of {len(values)} "
            f"settings >= 1.0, lowest {values[0]:.3f}, median {statistics.median(values):.3f}; "
            f"{noise} of the {len(below)} below 1.0 within the noise (min-max ranges overlap)"
        )
    for name, text in (
        ("best_pipeline_vs_notebook_fit", "best package fit / the notebook's fit"),
        ("package_fit_vs_notebook_fit", "lenet-blocks train's fit / the notebook's fit"),
        ("loop_vs_notebook_fit", "the same steps in one compiled call / the notebook's fit"),
        ("best_pipeline_vs_pytorch_eager", "best package fit / PyTorch eager steps"),
        ("loop_vs_pytorch_eager", "the same steps in one compiled call / PyTorch eager steps"),
    ):
        if name in found:
            lines.append(f"{text}: {found[name]['value']:.2f}x ({found[name]['numerator']})")
    training = [k for k in figures if k.startswith("train/keras-") and "/notebook/" in k]
    if "figures" in result and (device["kind"] != "gpu" or not training):
        lines.append(f"GPU: none measured (device: {device['kind']}, {device['name']})")
    elif "figures" in result:
        best = max(training, key=lambda key: figures[key]["median"])
        value, bound = figures[best]["median"], result.get("bound_samples_per_second")
        share = f"{value / bound:.1%} of " if bound else ""
        bound_text = f"{bound:,.3g}" if bound else "unknown (this GPU's peak is not in the table)"
        lines.append(
            f"{device['name']}: best build_lenet('notebook') training {value:,.0f} samples/s "
            f"({best}), {share}the FP32 bound {bound_text}; target: 1,000,000"
        )
    for row in result.get("rows", []):
        times = ", ".join(
            f"to {t}: {s:.1f} s" if s is not None else f"to {t}: not reached"
            for t, s in row.get("time_to_accuracy", {}).items()
        )
        best = f"; best accuracy {row['best_accuracy']:.4f}" if row.get("best_accuracy") else ""
        lines.append(f"{row['name']}: {times or row['status']}{best}")
    return lines


def _cell(figure: dict | None) -> str:
    if figure is None:
        return "-"
    number = "{:,.0f}" if figure["min"] >= 100 else "{:.3g}"
    low, high = (number.format(figure[key]) for key in ("min", "max"))
    return f"{number.format(figure['median'])} ({low}-{high})"


def markdown(result: dict) -> str:
    """The run as Markdown: what it ran on, the summary, one table per mode and precision."""
    device, versions = result["device"], result["versions"]
    load = ", ".join(f"{value:.2f}" for value in device.get("load_average_at_start") or [])
    lines = [
        f"# lenet_blocks {result['kind']}, Keras on {versions.get('keras_backend')}",
        "",
        f"- Device measured: **{device['name']}** ({device['kind']}, `{device.get('placement')}`)",
        f"- CPU: {device['cpu_model']}, {device['usable_cpus']} of {device['logical_cpus']} "
        f"CPUs usable, flags: {', '.join(device['cpu_flags']) or '-'}; load average {load}",
        f"- nvidia-smi: {device.get('nvidia_smi') or 'not present'}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "platform"),
        f"- Created {result['created']} by `{result['command']}`"
        + (" (incomplete: stopped before its end)" if result.get("complete") is False else ""),
        "",
        "## Summary",
        "",
        *(f"- {line}" for line in summary(result)),
    ]
    groups = defaultdict(lambda: defaultdict(dict))
    for key, figure in result.get("figures", {}).items():
        f = fields(key)
        row = (f["framework"], f["model"], f["compiler"], f["feed"])
        groups[(f["mode"], f["precision"])][row][f["batch_size"]] = figure
    for (mode, precision), rows in sorted(groups.items()):
        batches = sorted({batch for by_batch in rows.values() for batch in by_batch})
        body = [
            [*row, *(_cell(cells.get(b)) for b in batches)] for row, cells in sorted(rows.items())
        ]
        header = ["framework", "model", "compiler", "feed", *(f"batch {b}" for b in batches)]
        lines += ["", f"## {mode}, {precision}: samples/s, median (min-max)", ""]
        lines += table(header, body)
    if result.get("ratios"):
        rows = [[key, f"{item['value']:.3f}"] for key, item in sorted(result["ratios"].items())]
        lines += ["", "## Ratios (of the medians above)", "", *table(["ratio", "value"], rows)]
    if result.get("rows"):
        lines += ["", "## Runs", "", *(f"- {r['name']}: {r['settings']}" for r in result["rows"])]
    lines += ["", "## Skipped", "", *(f"- {s['what']}: {s['reason']}" for s in result["skipped"])]
    return "\n".join([*lines, "", f"Configuration: `{json.dumps(result['config'])}`", ""])


def write(result: dict, output: Path, plots: bool = True) -> None:
    """`<kind>.json` (one line per figure or row), `<kind>.md` and the PNG plots."""
    output.mkdir(parents=True, exist_ok=True)
    write_text(output / f"{result['kind']}.json", dumps(result, inline_depth=2) + "\n")
    write_text(output / f"{result['kind']}.md", markdown(result))
    if plots and result["kind"] == "throughput":
        plot_throughput(result, output)
    elif plots:
        plot_accuracy(result, output / "time_to_accuracy.png")


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout(rect=(0, 0, 0.8, 1))
    return write_with(path, lambda tmp: figure.savefig(tmp, dpi=80, format="png"))


def plot_throughput(result: dict, directory: Path) -> list[Path]:
    """One PNG per mode and precision: samples/s against batch size (log-log), one panel per
    feed, one line per framework/model/compiler (same color in every panel), min-max bars."""
    series = defaultdict(lambda: defaultdict(list))
    for key, figure in result["figures"].items():
        f = fields(key)
        if f["mode"] != "fit":
            label = f"{f['framework']} {f['model']}, {f['compiler']}"
            series[(f["mode"], f["precision"])][(f["feed"], label)].append({**f, **figure})
    paths = []
    for (mode, precision), lines in sorted(series.items()):
        feeds, labels = sorted({f for f, _ in lines}), sorted({label for _, label in lines})
        colors = dict(zip(labels, colormaps["tab20"].colors * 2, strict=False))
        figure = Figure(figsize=(5 * len(feeds) + 3, 4.5))
        axes, handles = figure.subplots(1, len(feeds), squeeze=False, sharey=True)[0], {}
        for axis, feed in zip(axes, feeds, strict=True):
            for label in labels:
                points = sorted(lines.get((feed, label), []), key=lambda p: p["batch_size"])
                x, median, low, high = (np.array([p[k] for p in points]) for k in PLOTTED)
                if points:
                    handles[label] = axis.errorbar(
                        x, median, yerr=[median - low, high - median], color=colors[label],
                        fmt="-" if label.startswith("keras") else "--", marker="o", ms=3, capsize=2,
                    )  # fmt: skip
            axis.set(xscale="log", yscale="log", xlabel="batch size", title=f"feed: {feed}")
            batches = result["config"]["batch_sizes"]
            axis.set_xticks(batches, labels=map(str, batches), minor=False)
            axis.minorticks_off()
            axis.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("samples/s (median, min-max bars)")
        figure.legend(list(handles.values()), list(handles), fontsize=7, loc="center right")
        figure.suptitle(f"{mode} throughput, {precision}, {result['device']['name']}")
        paths.append(_save(figure, directory / f"throughput_{mode}_{precision}.png"))
    return paths


def plot_accuracy(result: dict, path: Path) -> Path:
    """Test accuracy against training seconds for every run, with the thresholds."""
    figure = Figure(figsize=(10, 4.5))
    axis = figure.subplots()
    for row in result["rows"]:
        if row.get("curve"):
            seconds, _, accuracy = zip(*row["curve"], strict=True)
            axis.plot(seconds, accuracy, marker=".", label=row["name"])
    for threshold in result["config"]["thresholds"]:
        axis.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    axis.set(xlabel="training seconds (evaluation excluded)", ylabel="test accuracy", ylim=(0.5, 1))
    axis.grid(alpha=0.3)
    figure.legend(fontsize=7, loc="center right")
    figure.suptitle(f"Time to accuracy, {result['device']['name']}")
    return _save(figure, path)
