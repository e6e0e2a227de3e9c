"""The throughput run: Keras steps with the peer beside them, and `fit` at batch 32. All
candidates of one precision, batch size and mode are timed interleaved (one group)."""

from __future__ import annotations

import keras

from bench_lib import keras_steps
from bench_lib.keras_steps import (
    BACKEND,
    FRAMEWORK,
    HAS_TF_DATA,
    Steps,
    sync,
    synthetic_data,
    to_device,
)
from bench_lib.timing import Candidate, measure_interleaved

FIELDS = ("mode", "framework", "model", "precision", "compiler", "feed", "batch_size")
NO_TF_DATA = "tf.data (lenet_blocks.pipeline) needs TensorFlow, which is not installed"


def figure_id(mode, framework, model, precision, compiler, feed, batch_size) -> str:
    """The key of one figure.

    Example:
    >>> figure_id("train", "keras-tensorflow", "notebook", "float32", "xla", "tensor", 32)
    'train/keras-tensorflow/notebook/float32/xla/tensor/b32'
    """
    return f"{mode}/{framework}/{model}/{precision}/{compiler}/{feed}/b{batch_size}"


def fields(key: str) -> dict:
    """The fields of a figure, read back from its key (`batch_size` as an int).

    Example:
    >>> fields("fit/pytorch/notebook/float32/eager/tensor/b32")["batch_size"]
    32
    """
    values = dict(zip(FIELDS, key.split("/"), strict=True))
    return {**values, "batch_size": int(values["batch_size"][1:])}


class Run:
    """The figures and skipped settings of one run (`bench_gpu.throughput_config`, a
    `describe_device()` dict, `{compiler: torch_peer.candidate}`), `after_group` called after
    every group."""

    def __init__(self, config: dict, device: dict, peers: dict, after_group=lambda: None):
        self.config, self.device, self.peers, self.after_group = config, device, peers, after_group
        self.figures, self.skipped, self.loop = {}, [], config["loop_steps"]

    def measure(self, candidates: list[Candidate], **timing) -> None:
        """Times `candidates` interleaved; stores each figure, or why it failed."""
        measured, failures = measure_interleaved(candidates, **timing)
        self.figures.update(measured)
        self.skipped += [{"what": key, "reason": reason} for key, reason in failures.items()]
        self.after_group()

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason})

    def _steps(self, precision: str) -> dict:
        """`Steps` of every model and compiler, keyed `(model, compiler)`."""
        steps = {}
        for xla in self.config["xla"]:
            for model in self.config["models"]:
                keras.utils.set_random_seed(self.config["seed"])
                try:
                    built = keras_steps.compiled_model(model, precision, jit_compile=xla)
                    steps[(model, "xla" if xla else "none")] = Steps(built, self.loop)
                except Exception as error:  # e.g. a preset that does not build in this policy
                    self.skip(f"{model} {precision} xla={xla}", f"{type(error).__name__}: {error}")
        return steps

    def sweep(self, support: dict) -> None:
        """Every model x compiler x feed x precision x batch size x mode."""
        config = self.config
        if "tf.data" in config["feeds"] and not HAS_TF_DATA:
            self.skip("feed tf.data", NO_TF_DATA)
        images, labels = synthetic_data(max(8192, *config["batch_sizes"]), config["seed"])
        for precision in config["precisions"]:
            if support[precision]:
                self.skip(f"precision {precision}", support[precision])
                continue
            steps = self._steps(precision)
            for batch in config["batch_sizes"]:
                for mode in ("train", "infer"):
                    candidates = self._keras(steps, mode, precision, batch, images, labels)
                    for compiler, factory in self.peers.items() if precision == "float32" else ():
                        key = figure_id(
                            mode, "pytorch", "notebook", precision, compiler, "tensor", batch
                        )
                        candidates.append(factory(key, compiler, mode, batch, seed=config["seed"]))
                    self.measure(
                        candidates,
                        warmup_calls=config["warmup_calls"],
                        repeats=config["repeats"],
                        min_seconds=config["min_seconds"],
                    )

    def _keras(self, steps: dict, mode: str, precision: str, batch: int, images, labels) -> list:
        """The Keras candidates of one group: each model and compiler on a device tensor (and
        `loop_steps` steps per call when training), and on `make_dataset` batches."""
        data = tuple(
            to_device(array[:batch], self.device["placement"]) for array in (images, labels)
        )
        loop, candidates = self.loop, []
        for (model, compiler), functions in steps.items():
            calls = {(compiler, "tensor"): lambda f=functions: f.predict(data[:1])}
            if mode == "train":
                calls = {(compiler, "tensor"): lambda f=functions: f.train(data)}
                calls[(f"{compiler}-loop{loop}", "tensor")] = lambda f=functions: f.train_loop(data)
            if "tf.data" in self.config["feeds"] and HAS_TF_DATA:
                from lenet_blocks.pipeline import make_dataset  # tf.data: cast per batch

                whole = len(images) // batch * batch  # whole batches only: one shape
                wanted = labels[:whole] if mode == "train" else None
                dataset = make_dataset(images[:whole], wanted, batch).repeat()
                batches = iter(dataset) if BACKEND == "tensorflow" else dataset.as_numpy_iterator()
                read = functions.train_from if mode == "train" else functions.predict_from
                calls[(compiler, "tf.data")] = lambda read=read, batches=batches: read(batches)
            for (name, feed), call in calls.items():
                key = figure_id(mode, FRAMEWORK, model, precision, name, feed, batch)
                samples = batch * loop if "-loop" in name else batch
                candidates.append(Candidate(key, call, samples, sync))
        return candidates

    def fit_group(self) -> None:
        """Whole `fit` epochs at batch 32 (`keras_steps.FIT_VARIANTS`), as many `train_step`s
        in one compiled call on one device tensor, and as many PyTorch eager steps."""
        batch, seed = keras_steps.NOTEBOOK_TRAINING["batch_size"], self.config["seed"]
        steps = max(1, self.config["fit_samples"] // batch)
        images, labels = synthetic_data(steps * batch, seed)
        candidates = []
        if not HAS_TF_DATA:
            self.skip("fit on tf.data", NO_TF_DATA)
        for variant in keras_steps.FIT_VARIANTS:
            compiler, model, feed, jit_compile, _ = variant
            repeated = BACKEND != "tensorflow" and jit_compile is True  # JAX jits anyway
            if (feed != "tf.data" or HAS_TF_DATA) and not repeated:
                key = figure_id("fit", FRAMEWORK, model, "float32", compiler, feed, batch)
                keras.utils.set_random_seed(seed)
                call = keras_steps.fit_call(variant, images, labels, batch)
                candidates.append(Candidate(key, call, len(images)))
        keras.utils.set_random_seed(seed)
        loop = Steps(keras_steps.compiled_model("notebook"), steps)
        data = tuple(
            to_device(array[:batch], self.device["placement"]) for array in (images, labels)
        )
        key = figure_id("fit", FRAMEWORK, "notebook", "float32", f"loop{steps}", "tensor", batch)
        candidates.append(Candidate(key, lambda: loop.train_loop(data), steps * batch, sync))
        if "eager" in self.peers:
            key = figure_id("fit", "pytorch", "notebook", "float32", "eager", "tensor", batch)
            candidates.append(self.peers["eager"](key, "eager", "train", batch, steps, seed))
        self.measure(
            candidates, warmup_calls=1, repeats=self.config["fit_repeats"], min_seconds=0.0
        )
