"""The Markdown tables and PNG plots of a run, written atomically next to its JSON."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from lenet_blocks.artifacts import write_with

NOTE_SHARED = (
    "Figures are medians over the repeats with their min-max range in parentheses; the "
    "repeats of every candidate of one precision, batch size and mode (models, XLA on and "
    "off, both feeds, peers) are interleaved round-robin. The load average at start shows "
    "whether the machine was shared: on a shared CPU, compare ratios, not absolute figures."
)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def cell(figure: dict | None) -> str:
    """A figure as `median (min-max)`, `-` for none."""
    if figure is None:
        return "-"
    return f"{_number(figure['median'])} ({_number(figure['min'])}-{_number(figure['max'])})"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def device_lines(result: dict) -> list[str]:
    """What was measured on, with which versions, by which command (TensorFlow or JAX run)."""
    device, versions = result["device"], result["versions"]
    load = device.get("load_average_at_start")
    runtime = (
        f"TensorFlow device `{device['tensorflow_device']}`"
        if "tensorflow_device" in device
        else f"JAX device `{device['jax_device']}`"
    )
    stopped = (
        " (incomplete: the run stopped before its end)" if result.get("complete") is False else ""
    )
    lines = [
        f"- Device measured: **{device['name']}** ({device['kind']}); {runtime}",
        f"- CPU: {device['cpu_model']}, {device['usable_cpus']} usable of "
        f"{device['logical_cpus']} logical CPUs, flags: {', '.join(device['cpu_flags']) or '-'}",
        f"- Load average at start: {', '.join(f'{v:.2f}' for v in load) if load else '-'}",
        f"- nvidia-smi: {device['nvidia_smi'] or 'not present'}",
        "- Versions: "
        + ", ".join(
            f"{name} {value}"
            for name, value in versions.items()
            if isinstance(value, str) and name != "platform"
        ),
        f"- Platform: {versions['platform']}",
        f"- Created {result['created']} by `{result['command']}`{stopped}",
    ]
    return lines


def targets_table(targets: list[dict]) -> list[str]:
    """The targets' ids, statements, statuses and details as a Markdown table."""
    rows = [[t["id"], t["statement"], f"**{t['status']}**", t["detail"]] for t in targets]
    return table(["#", "target", "status", "measured"], rows)


def ratios_table(ratios: dict) -> list[str]:
    """Every ratio's key, value and description as a Markdown table, sorted by key."""
    rows = [[key, f"{item['value']:.3f}", item["description"]] for key, item in ratios.items()]
    return table(["ratio", "value", "numerator / denominator"], sorted(rows))


def throughput_markdown(result: dict) -> str:
    """The throughput report: targets, one table per mode and precision, ratios, peers."""
    figures, ratios, config = result["figures"], result["ratios"], result["config"]
    batches = config["batch_sizes"]
    lines = ["# lenet_blocks throughput", "", *device_lines(result), "", NOTE_SHARED, ""]
    lines += ["## Targets", "", *targets_table(result["targets"]), ""]
    groups = defaultdict(dict)
    for figure in figures.values():
        if figure["mode"] != "fit":
            row = (figure["framework"], figure["model"], figure["compiler"], figure["feed"])
            groups[(figure["mode"], figure["precision"])].setdefault(row, {})[
                figure["batch_size"]
            ] = figure
    for (mode, precision), rows in sorted(groups.items()):
        title = "Training (full optimizer steps)" if mode == "train" else "Inference (forward)"
        lines += [f"## {title}, {precision}: samples/s", ""]
        body = [[*row, *(cell(by_batch.get(b)) for b in batches)] for row, by_batch in rows.items()]
        header = ["framework", "model", "compiler", "feed", *(f"batch {b}" for b in batches)]
        lines += [*table(header, sorted(body)), ""]
    fits = [figure for figure in figures.values() if figure["mode"] == "fit"]
    if fits:
        lines += ["## fit at batch 32: the notebook's way and the package's pipeline", ""]
        rows = [[f["variant"], f["description"], cell(f)] for f in fits]
        lines += [*table(["variant", "what", "samples/s"], rows), ""]
    if ratios:
        lines += ["## Ratios (medians of figures above, same run)", ""]
        lines += [*ratios_table(ratios), ""]
    lines += ["## Peers", ""]
    rows = [
        [
            peer,
            info["status"],
            info.get("version") or "-",
            info.get("device") or "-",
            info.get("reason") or "",
        ]
        for peer, info in result["peers"].items()
    ]
    lines += [*table(["peer", "status", "version", "device", "reason"], rows), ""]
    if result["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"- {item['what']}: {item['reason']}" for item in result["skipped"]]
        lines.append("")
    lines += ["## Configuration", "", "```json", json.dumps(config, indent=2), "```", ""]
    return "\n".join(lines)


def accuracy_markdown(result: dict) -> str:
    """The time-to-accuracy report: targets and one row per run."""
    thresholds = [f"{t:g}" for t in result["config"]["thresholds"]]
    lines = ["# lenet_blocks time to accuracy (Fashion-MNIST test set)", ""]
    lines += [*device_lines(result), ""]
    lines += [
        "Training time excludes the evaluations on the 10,000 test images (every "
        f"{result['config']['eval_every']:,} training samples); it includes tracing and "
        f"compilation. Each run stops at {result['config']['max_seconds']:g} s of training. "
        "One run per row (seed "
        f"{result['config']['seed']}), so these times carry run-to-run noise.",
        "",
        "## Targets",
        "",
        *targets_table(result["targets"]),
        "",
        "## Runs",
        "",
    ]
    rows = []
    for row in result["rows"]:
        if row["status"] != "measured":
            rows.append([row["name"], row["settings"], *["-"] * len(thresholds), row["status"]])
            continue
        times = [
            f"{row['time_to_accuracy'][t]:.1f} s"
            if row["time_to_accuracy"][t] is not None
            else "not reached"
            for t in thresholds
        ]
        best = f"{row['best_accuracy']:.4f} in {row['training_seconds']:.0f} s"
        rows.append([row["name"], row["settings"], *times, best])
    header = ["run", "settings", *(f"to {t}" for t in thresholds), "best accuracy"]
    lines += [*table(header, rows), ""]
    lines += ["## Configuration", "", "```json", json.dumps(result["config"], indent=2), "```", ""]
    return "\n".join(lines)


def write_text(path: Path, text: str) -> Path:
    """Writes `text` atomically."""
    return write_with(path, lambda tmp: tmp.write_text(text))


FRAMEWORK_LABELS = {"keras-tensorflow": "Keras/TF", "pytorch": "PyTorch", "keras-jax": "Keras/JAX"}


def _line_label(figure: dict) -> str:
    framework = FRAMEWORK_LABELS.get(figure["framework"], figure["framework"])
    model = "Sequential" if figure["model"] == "sequential" else figure["model"]
    compiler = {"none": "no XLA", "xla": "XLA"}.get(figure["compiler"], figure["compiler"])
    return f"{framework} {model}, {compiler}"


def _plot_line(axis, points: list[dict], label: str, color) -> None:
    points = sorted(points, key=lambda point: point["batch_size"])
    medians = [point["median"] for point in points]
    spread = [
        [point["median"] - point["min"] for point in points],
        [point["max"] - point["median"] for point in points],
    ]
    axis.errorbar(
        [point["batch_size"] for point in points],
        medians,
        yerr=spread,
        fmt="-" if label.startswith("Keras/TF") else "--",
        marker="o",
        ms=3,
        capsize=2,
        color=color,
        label=label,
    )


def plot_throughput(result: dict, directory: Path) -> list[Path]:
    """One PNG per mode and precision: samples/s against batch size (log-log), one panel per
    feed, one line per framework/model/compiler (same color in every panel), error bars from
    min to max."""
    series = defaultdict(lambda: defaultdict(list))
    for figure in result["figures"].values():
        if figure["mode"] != "fit":
            key = (figure["mode"], figure["precision"])
            series[key][(figure["feed"], _line_label(figure))].append(figure)
    batches = result["config"]["batch_sizes"]
    paths = []
    for (mode, precision), lines in sorted(series.items()):
        feeds = sorted({feed for feed, _ in lines})
        labels = sorted({label for _, label in lines})
        colors = dict(zip(labels, colormaps["tab20"].colors, strict=False))
        figure = Figure(figsize=(5 * len(feeds) + 3, 4.5))
        axes = figure.subplots(1, len(feeds), squeeze=False, sharey=True)[0]
        for axis, feed in zip(axes, feeds, strict=True):
            for label in labels:
                if (feed, label) in lines:
                    _plot_line(axis, lines[(feed, label)], label, colors[label])
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xticks(batches, labels=[str(batch) for batch in batches])
            axis.minorticks_off()
            axis.set_xlabel("batch size")
            axis.set_title(f"feed: {feed}")
            axis.grid(alpha=0.3, which="both")
        axes[0].set_ylabel("samples/s (median, min-max bars)")
        handles = {}
        for axis in axes:
            for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, handle)
        figure.legend([handles[label] for label in labels], labels, fontsize=7, loc="center right")
        figure.suptitle(f"{mode} throughput, {precision}, {result['device']['name']}")
        figure.tight_layout(rect=(0, 0, 0.8, 1))
        path = directory / f"throughput_{mode}_{precision}.png"
        write_with(path, lambda tmp, figure=figure: figure.savefig(tmp, dpi=80, format="png"))
        paths.append(path)
    return paths


def plot_accuracy(result: dict, path: Path) -> Path:
    """Test accuracy against training seconds for every run, with the thresholds."""
    figure = Figure(figsize=(9, 4.5))
    axis = figure.subplots()
    for row in result["rows"]:
        if row["status"] == "measured" and row["curve"]:
            seconds = [point["seconds"] for point in row["curve"]]
            accuracy = [point["accuracy"] for point in row["curve"]]
            axis.plot(seconds, accuracy, marker=".", label=row["name"])
    for threshold in result["config"]["thresholds"]:
        axis.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("training seconds (evaluation excluded)")
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0.5, 1.0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.suptitle(f"Time to accuracy, {result['device']['name']}")
    figure.tight_layout()
    return write_with(path, lambda tmp: figure.savefig(tmp, dpi=80, format="png"))
