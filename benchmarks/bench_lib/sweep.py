"""The throughput run: the Keras sweep with the peers beside it, and `fit` at batch 32.

Every figure lands in one dict keyed by a readable id
(`mode/framework/model/precision/compiler/feed/b<batch>`) and carries those fields too, so
the report and the ratios can select figures without parsing ids. All candidates of one
precision, batch size and mode (every model, XLA on and off, both feeds, and the peers) are
timed interleaved.
"""

from __future__ import annotations

import keras
from tqdm import tqdm

from bench_lib import keras_tf, tf_floor
from bench_lib.data import synthetic_data
from bench_lib.networks import NOTEBOOK_TRAINING
from bench_lib.peers import PeerServer, RemoteCandidate
from bench_lib.stats import figure_fields
from bench_lib.timing import measure_interleaved

MODES = ("train", "infer")
PEER_VARIANTS = (
    ("pytorch", "eager", "eager"),
    ("pytorch", "compile", "torch.compile"),
    ("keras-jax", "jit", "xla"),
)
"""Each peer's variants, and the name of their compiler in figures."""


def _fit_fields(name, description, framework, model, compiler, feed, batch, **extra) -> dict:
    """The fields of one figure of the `fit` group (its id is `fit/<name>/b<batch>`)."""
    _, fields = figure_fields("fit", framework, model, "float32", compiler, feed, batch)
    return {**fields, "variant": name, "description": description, **extra}


def _build_step_functions(config: dict, precision: str, skipped: list) -> dict:
    """`StepFunctions` of every model with XLA on and off, keyed `(model, compiler)`."""
    functions = {}
    for xla in config["xla"]:
        compiler = "xla" if xla else "none"
        for model_name in config["models"]:
            keras.utils.set_random_seed(config["seed"])
            try:
                model = keras_tf.build_compiled(model_name, policy=precision, jit_compile=xla)
                functions[(model_name, compiler)] = keras_tf.StepFunctions(model)
            except Exception as error:  # e.g. a preset that does not build in this policy
                reason = f"{type(error).__name__}: {str(error)[:300]}"
                skipped.append({"what": f"{model_name} {precision} {compiler}", "reason": reason})
    return functions


def keras_sweep(
    config: dict,
    device: dict,
    precision_skips: dict,
    servers: dict[str, PeerServer],
    progress: tqdm,
) -> tuple[dict, list]:
    """Every model x XLA x feed x precision x batch size x mode on Keras/TensorFlow.

    One group is timed interleaved per precision, batch size and mode: every model with XLA
    on and off, fed both ways, and (in float32) the peers' variants, so that every ratio
    between them compares figures taken in the same minutes.

    Returns:
        `(figures, skipped)`; `skipped` lists `{"what", "reason"}` for each setting or
        candidate that could not run.
    """
    figures, skipped = {}, []
    images, labels = synthetic_data(max(8192, *config["batch_sizes"]), config["seed"])
    for precision in config["precisions"]:
        if precision_skips.get(precision):
            skipped.append({"what": f"precision {precision}", "reason": precision_skips[precision]})
            progress.update(len(config["batch_sizes"]))
            continue
        functions = _build_step_functions(config, precision, skipped)
        for batch in config["batch_sizes"]:
            for mode in MODES:
                progress.set_postfix_str(f"{precision} batch {batch} {mode}")
                candidates, fields = [], {}
                for feed in config["feeds"]:
                    for (model_name, compiler), step_functions in functions.items():
                        key, fields[key] = figure_fields(
                            mode, keras_tf.FRAMEWORK, model_name, precision, compiler, feed, batch
                        )
                        candidates.append(
                            keras_tf.step_candidate(
                                key,
                                step_functions,
                                mode=mode,
                                feed=feed,
                                batch_size=batch,
                                images=images,
                                labels=labels,
                                device=device["tensorflow_device"],
                            )
                        )
                if precision == "float32":
                    candidates += _peer_candidates(servers, mode, batch, fields, config["seed"])
                _measure(
                    candidates,
                    fields,
                    figures,
                    skipped,
                    warmup_calls=config["warmup_steps"],
                    repeats=config["repeats"],
                    min_seconds=config["min_seconds"],
                )
            progress.update()
    return figures, skipped


def _peer_candidates(servers: dict, mode: str, batch: int, fields: dict, seed: int) -> list:
    """The peers' variants for one group (float32, device tensors), their fields added."""
    candidates = []
    for peer, variant, compiler in PEER_VARIANTS:
        if peer in servers:
            key, fields[key] = figure_fields(
                mode, peer, "notebook", "float32", compiler, "tensor", batch
            )
            spec = {"variant": variant, "mode": mode, "batch_size": batch}
            spec.update(steps_per_call=1, seed=seed)
            candidates.append(RemoteCandidate(key, batch, servers[peer], spec))
    return candidates


def _measure(candidates: list, fields: dict, figures: dict, skipped: list, **timing) -> None:
    """Times `candidates` interleaved; stores each figure with its `fields`, or the failure."""
    measured, failures = measure_interleaved(candidates, **timing)
    for key, figure in measured.items():
        figures[key] = {**fields[key], **figure}
    skipped.extend({"what": key, "reason": reason} for key, reason in failures.items())


def fit_comparison(config: dict, device: dict, servers: dict[str, PeerServer]) -> tuple[dict, list]:
    """Whole `fit` epochs at the notebook's batch size, interleaved: the notebook's way
    (Sequential, NumPy arrays), the package's pipeline with several compile settings, as many
    hand-written TensorFlow training steps on one device tensor (`tf_floor`: what TensorFlow's
    kernels allow), and (when installed) as many PyTorch eager training steps.

    Returns:
        `(figures, skipped)`; each figure also has `variant` and `description` (and, for
        Keras, `steps_per_execution`).
    """
    batch = NOTEBOOK_TRAINING["batch_size"]
    steps = max(1, config["fit_samples"] // batch)
    images, labels = synthetic_data(steps * batch, config["seed"])
    candidates, fields = [], {}
    for variant in (keras_tf.NOTEBOOK_FIT, *keras_tf.PACKAGE_FITS):
        keras.utils.set_random_seed(config["seed"])
        key = f"fit/{variant.name}/b{batch}"
        candidate, jit = keras_tf.fit_candidate(
            variant, name=key, images=images, labels=labels, batch_size=batch
        )
        candidates.append(candidate)
        feed = "numpy" if variant.feed == "numpy" else "tf.data"
        compiler = "xla" if jit else "none"
        fields[key] = _fit_fields(
            variant.name,
            variant.description,
            keras_tf.FRAMEWORK,
            variant.model,
            compiler,
            feed,
            batch,
            steps_per_execution=variant.steps_per_execution,
        )
    key = f"fit/tensorflow_floor_steps/b{batch}"
    keras.utils.set_random_seed(config["seed"])
    candidates.append(
        tf_floor.floor_candidate(
            key,
            images=images[:batch],
            labels=labels[:batch],
            steps=steps,
            device=device["tensorflow_device"],
        )
    )
    fields[key] = _fit_fields(
        "tensorflow_floor_steps",
        "hand-written TensorFlow (tf.nn ops, SGD assign_sub, no Keras, no metrics): as many "
        "training steps on one device tensor, all in one tf.function",
        "tensorflow",
        "notebook",
        "none",
        "tensor",
        batch,
    )
    if "pytorch" in servers:
        key = f"fit/pytorch_eager_steps/b{batch}"
        spec = {"variant": "eager", "mode": "train", "batch_size": batch, "steps_per_call": steps}
        spec["seed"] = config["seed"]
        candidates.append(RemoteCandidate(key, steps * batch, servers["pytorch"], spec))
        fields[key] = _fit_fields(
            "pytorch_eager_steps",
            "PyTorch eager: as many training steps on one device tensor (no loader)",
            "pytorch",
            "notebook",
            "eager",
            "tensor",
            batch,
        )
    figures, skipped = {}, []
    _measure(
        candidates,
        fields,
        figures,
        skipped,
        warmup_calls=1,
        repeats=config["fit_repeats"],
        min_seconds=0.0,
    )
    return figures, skipped
