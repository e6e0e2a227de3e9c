"""Throughput of `build_lenet` models with Keras on JAX: the sweep for machines without TensorFlow.

The lent H200 machine's image has JAX (with CUDA) and PyTorch but no TensorFlow, so
`bench_gpu.py` cannot run there; this sweep measures the same models with Keras' JAX backend.
Each candidate jits the model's own `train_step` (what `fit` runs on JAX: forward, loss,
gradients, optimizer update, metrics, and loss scaling under `mixed_float16`) or
`predict_step`, on one device array of synthetic images (no input cost). Training is timed two
ways: one step per dispatch (compiler `xla`, as Keras' `fit` runs on JAX, one jitted call per
step) and `loop_steps` steps per dispatch inside one `jax.lax.fori_loop` (`xla-loopN`); their
ratio is what launching and dispatching each step costs. Import it only with
`KERAS_BACKEND=jax`.
"""

from __future__ import annotations

import re

import jax
import keras
import numpy as np

from bench_lib.data import synthetic_data
from bench_lib.environment import cpu_model, device_slug, precision_support
from bench_lib.networks import NOTEBOOK_TRAINING, SEQUENTIAL, plain_sequential
from bench_lib.stats import figure_fields, figure_id, ratio
from bench_lib.targets import gpu_target as judge_gpu_target
from bench_lib.timing import Candidate, measure_interleaved
from lenet_blocks import build_lenet, get_preset
from lenet_blocks.objectives import loss_and_metrics

FRAMEWORK = "keras-jax"


def describe_jax_device() -> dict:
    """The device JAX computes on: `kind` (`"gpu"` or `"cpu"`), `name`, `slug` (the default
    results folder), `compute_capability` (`[major, minor]` on NVIDIA GPUs, as
    `environment.precision_support` reads it) and `platform`."""
    device = jax.devices()[0]
    kind = "gpu" if device.platform in ("gpu", "cuda", "rocm") else "cpu"
    name = device.device_kind if kind == "gpu" else cpu_model()
    capability = getattr(device, "compute_capability", None)
    slug = "cpu" if kind == "cpu" else device_slug(name)
    return {
        "kind": kind,
        "name": name,
        "slug": f"{slug}-keras-jax",
        "jax_device": str(device),
        "platform": device.platform,
        "compute_capability": [int(part) for part in str(capability).split(".")]
        if re.fullmatch(r"\d+\.\d+", str(capability))
        else None,
        "device_count": jax.device_count(),
    }


def compiled_model(model_name: str, policy: str = "float32") -> keras.Model:
    """`build_lenet(model_name)` (or the notebook's plain Sequential) under a dtype policy,
    compiled with its training settings' optimizer (its constant learning rate: a schedule
    does not change the work of a step) and `loss_and_metrics(model)`, with its optimizer and
    metric variables built by one `train_on_batch`, as `fit` builds them.

    Example:
    >>> compiled_model("notebook").optimizer.name
    'sgd'
    """
    keras.config.set_dtype_policy(policy)
    try:
        model = plain_sequential() if model_name == SEQUENTIAL else build_lenet(model_name)
    finally:
        keras.config.set_dtype_policy("float32")
    settings = NOTEBOOK_TRAINING if model_name == SEQUENTIAL else get_preset(model_name)["training"]
    optimizer = keras.optimizers.get(
        {
            "class_name": settings["optimizer"],
            "config": {"learning_rate": settings["learning_rate"]},
        }
    )
    loss, metrics = loss_and_metrics(model)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    model.train_on_batch(np.zeros((2, 28, 28, 1), "float32"), np.zeros((2,), "int32"))
    return model


class JaxSteps:
    """A compiled model's `train_step` and `predict_step`, jitted (the training state donated,
    as `fit` does on JAX), on the model's current state.

    Args:
        model: a compiled model whose optimizer and metric variables are built.
        loop_steps: training steps per call of `train_loop`.
    """

    def __init__(self, model: keras.Model, loop_steps: int):
        self.state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.optimizer.variables],
            [v.value for v in model.metrics_variables],
        )

        def steps(state, data):
            return jax.lax.fori_loop(
                0, loop_steps, lambda _, s: model.train_step(s, data)[1], state
            )

        self._train = jax.jit(
            lambda state, data: model.train_step(state, data)[1], donate_argnums=0
        )
        self._train_loop = jax.jit(steps, donate_argnums=0)
        self._predict = jax.jit(lambda state, data: model.predict_step(state, data)[0])

    def train(self, data):
        """One training step; returns the new trainable variables."""
        self.state = self._train(self.state, data)
        return self.state[0]

    def train_loop(self, data):
        """`loop_steps` training steps in one dispatch; returns the new trainable variables."""
        self.state = self._train_loop(self.state, data)
        return self.state[0]

    def predict(self, data):
        """One forward pass; returns the outputs."""
        return self._predict(self.state[:2], data)


def _sync(result) -> None:
    jax.block_until_ready(result)


def measure(config: dict, device: dict, after_group=None) -> tuple[dict, list]:
    """Every model, precision, batch size and mode of `config`; the candidates of one
    precision, batch size and mode interleaved round-robin.

    Args:
        config: `bench_keras_jax.run_config`'s dict: `models`, `precisions`, `batch_sizes`,
            `loop_steps`, `repeats`, `warmup_calls`, `min_seconds`, `seed`.
        device: `describe_jax_device()`'s dict.
        after_group: called as `after_group(figures, skipped)` after each group, with
            everything measured so far.

    Returns:
        `(figures, skipped)`: figures by id (`stats.figure_id` with framework `keras-jax`), and
        each precision or candidate left out with its reason.
    """
    support = precision_support(device)
    figures, skipped = {}, []
    loop = f"xla-loop{config['loop_steps']}"
    for precision in config["precisions"]:
        if support[precision] is not None:
            skipped.append({"what": f"precision {precision}", "reason": support[precision]})
            continue
        steps = {}
        for name in config["models"]:
            keras.utils.set_random_seed(config["seed"])
            steps[name] = JaxSteps(compiled_model(name, precision), config["loop_steps"])
        for batch in config["batch_sizes"]:
            images, labels = synthetic_data(batch, config["seed"])
            data = (jax.device_put(images.astype("float32")), jax.device_put(labels))
            for mode in ("train", "infer"):
                candidates, fields = [], {}
                for name, functions in steps.items():
                    variants = (
                        [
                            ("xla", functions.train, batch),
                            (loop, functions.train_loop, batch * config["loop_steps"]),
                        ]
                        if mode == "train"
                        else [("xla", functions.predict, batch)]
                    )
                    for compiler, call, samples in variants:
                        key, fields[key] = figure_fields(
                            mode, FRAMEWORK, name, precision, compiler, "tensor", batch
                        )
                        candidates.append(
                            Candidate(key, lambda call=call, data=data: call(data), samples, _sync)
                        )
                measured, failures = measure_interleaved(
                    candidates,
                    warmup_calls=config["warmup_calls"],
                    repeats=config["repeats"],
                    min_seconds=config["min_seconds"],
                )
                figures.update({key: {**fields[key], **figure} for key, figure in measured.items()})
                skipped.extend({"what": key, "reason": reason} for key, reason in failures.items())
                if after_group is not None:
                    after_group(figures, skipped)
    return figures, skipped


def jax_ratios(figures: dict, loop_steps: int) -> dict:
    """`build_lenet('notebook')` over the plain Sequential (same setting), and for each training
    figure, `loop_steps` steps per dispatch over one step per dispatch."""
    ratios = {}
    loop = f"xla-loop{loop_steps}"
    for key, figure in figures.items():
        mode, model, precision, compiler, batch = (
            figure[name] for name in ("mode", "model", "precision", "compiler", "batch_size")
        )
        if model == "notebook":
            sequential = figure_id(
                mode, FRAMEWORK, SEQUENTIAL, precision, compiler, "tensor", batch
            )
            if sequential in figures:
                ratios[f"build_lenet_vs_sequential/{mode}/{precision}/{compiler}/b{batch}"] = ratio(
                    figures, key, sequential, "build_lenet('notebook') / plain keras.Sequential"
                )
        if compiler == loop:
            single = figure_id(mode, FRAMEWORK, model, precision, "xla", "tensor", batch)
            if single in figures:
                ratios[f"loop_vs_single_step/{model}/{precision}/b{batch}"] = ratio(
                    figures, key, single, f"{loop_steps} steps per dispatch / one step per dispatch"
                )
    return ratios


def gpu_target(figures: dict, ratios: dict, device: dict) -> dict:
    """Target 4 (`targets.gpu_target`) on this run's `build_lenet('notebook')` training
    figures, with the dispatch ratio at the best setting: what launching each step costs."""
    training = {
        key: figure
        for key, figure in figures.items()
        if (figure["mode"], figure["model"]) == ("train", "notebook")
    }
    target = judge_gpu_target(training, device, " with Keras on JAX")
    for best in map(figures.get, target.get("figures", ())):
        dispatch = ratios.get(
            f"loop_vs_single_step/notebook/{best['precision']}/b{best['batch_size']}"
        )
        if dispatch is not None:
            target["detail"] += f"; {dispatch['description']} there: {dispatch['value']:.2f}x"
    return target
