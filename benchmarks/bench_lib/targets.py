"""Ratios between figures of one run, and the issue's targets with PASS/FAIL.

Every ratio names its numerator and denominator figure ids and is computed from their stored
medians (`stats.ratio`), so anyone can re-check it from the JSON alone.
"""

from __future__ import annotations

from bench_lib.networks import SEQUENTIAL
from bench_lib.stats import figure_id, ranges_overlap, ratio

PASS, FAIL, NOT_MEASURED = "PASS", "FAIL", "NOT MEASURED"
H200_PHYSICAL_BOUND = 4.4e7  # training samples/s at FP32 peak, 1.52 MFLOP per training sample
KERAS = "keras-tensorflow"


def _select(figures: dict, **fields) -> dict:
    return {
        key: figure
        for key, figure in figures.items()
        if all(figure.get(name) == value for name, value in fields.items())
    }


def throughput_ratios(figures: dict) -> dict:
    """`build_lenet` over the plain Sequential, tf.data over tensor feed, and Keras over each
    peer, for every setting where both figures exist."""
    ratios = {}
    for key, figure in _select(figures, framework=KERAS, model="notebook").items():
        mode, precision, compiler, feed, batch = (
            figure[name] for name in ("mode", "precision", "compiler", "feed", "batch_size")
        )
        if mode == "fit":
            continue
        sequential = figure_id(mode, KERAS, SEQUENTIAL, precision, compiler, feed, batch)
        if sequential in figures:
            ratios[f"build_lenet_vs_sequential/{mode}/{precision}/{compiler}/{feed}/b{batch}"] = (
                ratio(figures, key, sequential, "build_lenet('notebook') / plain keras.Sequential")
            )
        if feed != "tensor":
            continue
        pipeline = figure_id(mode, KERAS, "notebook", precision, compiler, "tf.data", batch)
        if pipeline in figures:
            ratios[f"tf.data_vs_tensor/{mode}/{precision}/{compiler}/b{batch}"] = ratio(
                figures, pipeline, key, "tf.data feed / device tensor feed (notebook preset)"
            )
        if precision != "float32":
            continue
        for peer_key, peer in figures.items():
            if peer["framework"] != KERAS and (peer["mode"], peer["batch_size"]) == (mode, batch):
                name = f"{peer['framework']}-{peer['compiler']}"
                ratios[f"keras_{compiler}_vs_{name}/{mode}/b{batch}"] = ratio(
                    figures, key, peer_key, f"build_lenet (Keras, TF, {compiler}) / {name}"
                )
    return ratios


def best_pipeline(figures: dict) -> str | None:
    """Id of the fastest `fit` of the package's pipeline (`build_lenet`, `make_dataset`)."""
    package = _select(figures, mode="fit", framework=KERAS, model="notebook")
    return max(package, key=lambda key: package[key]["median"]) if package else None


NOTEBOOK_FIT = "fit/notebook_fit_numpy/b32"
TRAIN_COMMAND_FIT = "fit/package_fit/b32"  # what `lenet-blocks train` runs today
TENSORFLOW_FLOOR = "fit/tensorflow_floor_steps/b32"
PYTORCH_EAGER = "fit/pytorch_eager_steps/b32"


def pipeline_ratios(figures: dict) -> dict:
    """Target 2's ratios: the best package `fit` over the notebook's `fit`, over the
    hand-written TensorFlow steps and over PyTorch eager training at batch 32, and those steps
    over the notebook's `fit` and over PyTorch eager; each where both figures exist."""
    best = best_pipeline(figures)
    if best is None:
        return {}
    wanted = {
        "best_pipeline_vs_notebook_fit": (
            best,
            NOTEBOOK_FIT,
            "best package fit / the notebook's fit on NumPy arrays",
        ),
        "package_fit_vs_notebook_fit": (
            TRAIN_COMMAND_FIT,
            NOTEBOOK_FIT,
            "lenet-blocks train's fit / the notebook's fit",
        ),
        "tensorflow_floor_vs_notebook_fit": (
            TENSORFLOW_FLOOR,
            NOTEBOOK_FIT,
            "hand-written TensorFlow steps / the notebook's fit",
        ),
        "best_pipeline_vs_tensorflow_floor": (
            best,
            TENSORFLOW_FLOOR,
            "best package fit / hand-written TensorFlow steps",
        ),
        "best_pipeline_vs_pytorch_eager": (
            best,
            PYTORCH_EAGER,
            "best package fit / PyTorch eager training steps",
        ),
        "tensorflow_floor_vs_pytorch_eager": (
            TENSORFLOW_FLOOR,
            PYTORCH_EAGER,
            "hand-written TensorFlow steps / PyTorch eager",
        ),
    }
    return {
        name: ratio(figures, numerator, denominator, description)
        for name, (numerator, denominator, description) in wanted.items()
        if numerator in figures and denominator in figures
    }


def below_one_within_noise(figures: dict, ratios: dict) -> list[str]:
    """The keys of `ratios` below 1.0 whose two figures' min-max ranges overlap.

    Example:
    >>> figures = {"a": {"min": 8, "max": 11}, "b": {"min": 9, "max": 12}}
    >>> a_over_b = {"value": 0.9, "numerator": "a", "denominator": "b"}
    >>> below_one_within_noise(figures, {"a/b": a_over_b})
    ['a/b']
    """
    return [
        key
        for key, value in ratios.items()
        if value["value"] < 1.0
        and ranges_overlap(figures[value["numerator"]], figures[value["denominator"]])
    ]


def _target(name: str, statement: str, status: str, detail: str, **evidence) -> dict:
    return {"id": name, "statement": statement, "status": status, "detail": detail, **evidence}


def _floor_detail(ratios: dict, key: str, unit: str) -> str:
    """What the hand-written TensorFlow steps reach, as the bound of any Keras pipeline."""
    if key not in ratios:
        return ""
    return (
        f"; bound: hand-written TensorFlow steps of the same layers (no Keras, no input "
        f"pipeline) reach {ratios[key]['value']:.2f}{unit}"
    )


def throughput_targets(figures: dict, ratios: dict, device: dict) -> list[dict]:
    """Targets 1, 2 and 4 of the issue, judged from this run's figures and ratios."""
    targets = []
    versus = {
        key: value
        for key, value in ratios.items()
        if key.startswith("build_lenet_vs_sequential/train/")
    }
    statement = "build_lenet reference training throughput / plain keras.Sequential >= 1.0"
    if versus:
        below = {key: value for key, value in versus.items() if value["value"] < 1.0}
        worst = min(versus, key=lambda key: versus[key]["value"])
        noise = below_one_within_noise(figures, below)
        detail = (
            f"{len(versus) - len(below)}/{len(versus)} training settings >= 1.0; lowest "
            f"{versus[worst]['value']:.3f} ({worst.split('/', 1)[1]}); {len(noise)} of the "
            f"{len(below)} below 1.0 have overlapping min-max ranges (within the noise)"
        )
        targets.append(
            _target("1", statement, FAIL if below else PASS, detail, ratios=sorted(versus))
        )
    else:
        targets.append(_target("1", statement, NOT_MEASURED, "no Sequential figures"))

    statement = "best package pipeline trains the reference network >= 3x the notebook's fit"
    if "best_pipeline_vs_notebook_fit" in ratios:
        value = ratios["best_pipeline_vs_notebook_fit"]
        best = figures[value["numerator"]]
        detail = f"{value['value']:.2f}x with {best['variant']} ({best['description']})"
        if "package_fit_vs_notebook_fit" in ratios:
            today = ratios["package_fit_vs_notebook_fit"]["value"]
            detail += f"; lenet-blocks train's settings as they are: {today:.2f}x"
        detail += _floor_detail(ratios, "tensorflow_floor_vs_notebook_fit", "x")
        status = PASS if value["value"] >= 3.0 else FAIL
        targets.append(
            _target("2a", statement, status, detail, ratios=["best_pipeline_vs_notebook_fit"])
        )
    else:
        targets.append(_target("2a", statement, NOT_MEASURED, "no fit figures"))
    statement = "best package pipeline >= PyTorch eager training at batch 32"
    if "best_pipeline_vs_pytorch_eager" in ratios:
        value = ratios["best_pipeline_vs_pytorch_eager"]["value"]
        targets.append(
            _target(
                "2b",
                statement,
                PASS if value >= 1.0 else FAIL,
                f"{value:.2f}x PyTorch eager"
                + _floor_detail(ratios, "tensorflow_floor_vs_pytorch_eager", "x PyTorch eager"),
                ratios=["best_pipeline_vs_pytorch_eager"],
            )
        )
    else:
        targets.append(_target("2b", statement, NOT_MEASURED, "PyTorch not measured"))

    training = _select(figures, mode="train", framework=KERAS, model="notebook")
    targets.append(gpu_target(training, device))
    return targets


def gpu_target(training: dict, device: dict, note: str = "") -> dict:
    """Target 4: the best of `training` (figures of `build_lenet('notebook')`, by id) against
    1,000,000 samples/s, when `device` is a GPU; `note` is appended to the detail.

    Example:
    >>> gpu_target({}, {"kind": "cpu"})["status"]
    'NOT MEASURED'
    """
    statement = "NVIDIA H200: >= 1,000,000 training samples/s (bound ~4.4e7 at FP32)"
    if device["kind"] != "gpu" or not training:
        return _target("4", statement, NOT_MEASURED, "no GPU measured")
    best = max(training, key=lambda key: training[key]["median"])
    value = training[best]["median"]
    detail = (
        f"{value:,.0f} samples/s ({best}), {value / H200_PHYSICAL_BOUND:.1%} of the H200 "
        f"FP32 bound; measured on {device['name']}{note}"
    )
    return _target("4", statement, PASS if value >= 1e6 else FAIL, detail, figures=[best])


def accuracy_targets(rows: list[dict]) -> list[dict]:
    """Target 3: the package's best time to 0.80 (<= 10 s) and to 0.90 (<= 60 s) test accuracy,
    over the `build_lenet` rows (not the notebook's own model, not the peers)."""
    package = [row for row in rows if row.get("package") and row.get("status") == "measured"]
    targets = []
    for number, threshold, limit in (("3a", "0.8", 10.0), ("3b", "0.9", 60.0)):
        statement = f"time to {threshold} test accuracy <= {limit:g} s on this device"
        reached = [row for row in package if row["time_to_accuracy"].get(threshold) is not None]
        if not package:
            targets.append(_target(number, statement, NOT_MEASURED, "no package row measured"))
        elif not reached:
            best = max(package, key=lambda row: row["best_accuracy"] or 0.0)
            detail = (
                f"not reached within the cap by any package row (best accuracy "
                f"{best['best_accuracy']:.4f}, {best['name']})"
            )
            targets.append(_target(number, statement, FAIL, detail))
        else:
            fastest = min(reached, key=lambda row: row["time_to_accuracy"][threshold])
            seconds = fastest["time_to_accuracy"][threshold]
            detail = f"{seconds:.1f} s ({fastest['name']})"
            status = PASS if seconds <= limit else FAIL
            targets.append(_target(number, statement, status, detail, rows=[fastest["name"]]))
    return targets
