"""One Keras backend's side of the cross-backend CPU run (`bench_cpu.py`), in its own process.

Started as `KERAS_BACKEND=<backend> python -m bench_lib.backend_worker` (with `benchmarks/` on
`PYTHONPATH`) by `bench_lib.cross_backend`, it answers one JSON request per line on stdin, one
JSON reply per line on stdout (anything else the libraries print goes to stderr):

- `{"op": "prepare", "batch_size": B, "samples": N, "seed": S, "variants": [...], "warmup":
  true}` builds the candidates of one batch size and (with `warmup`) runs each once, untimed;
  replies with their names and the error of each that failed;
- `{"op": "run", "name": NAME}` runs one timed repeat; replies `{"samples", "seconds"}`.

The candidates (`VARIANTS`), each an epoch of `N` synthetic samples:

- `package`: `lenet_blocks.training.train` as `lenet-blocks train --preset notebook --epochs 2
  --batch-size B --verbose 0` runs it (its pipeline, callbacks, compile settings and
  `--steps-per-execution` default), timed over its second epoch (`train_seconds`, validation
  excluded);
- `package-spe32`: the same with `--steps-per-execution 32` (32 steps per compiled call);
- `package-cosine`: the same with `--lr-schedule cosine`;
- `keras-fit`: plain Keras `fit` of the notebook's `keras.Sequential` on NumPy uint8 arrays,
  compile defaults, one epoch per call on the same model (after the warm-up's first epoch);
- `pytorch-eager` (with PyTorch installed): the same network in PyTorch, eager, the same number
  of SGD steps on one batch of device tensors.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback

import keras

from bench_lib.cross_backend import VARIANTS


class EpochTimer(keras.callbacks.Callback):
    """Seconds of the last epoch `fit` ran (its `on_epoch_begin` to its `on_epoch_end`); it has
    no batch hooks, so `fit` keeps its asynchronous batch dispatch."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.started


def package_run(batch_size: int, data: tuple, **options):
    """One `train` of 2 epochs in a fresh folder per call, with `options` (`train`'s
    `steps_per_execution`, `lr_schedule`): `(samples, seconds)` of its second epoch."""
    from lenet_blocks.training import train

    options = {"lr_schedule": "constant", **options}

    def run():
        with tempfile.TemporaryDirectory() as folder:
            metrics = train(
                folder, data=data, preset="notebook", epochs=2, batch_size=batch_size, verbose=0,
                **options,
            )  # fmt: skip
        return metrics["train_samples"], metrics["history"]["train_seconds"][-1]

    return run


def keras_fit_run(batch_size: int, images, labels):
    """Plain `fit` of the notebook's Sequential, one epoch per call."""
    from bench_lib import keras_steps

    model = keras_steps.compiled_model(keras_steps.SEQUENTIAL)
    timer = EpochTimer()

    def run():
        model.fit(images, labels, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
        return len(images), timer.seconds

    return run


def pytorch_run(batch_size: int, samples: int, seed: int):
    """PyTorch eager SGD steps of the notebook's network, `samples // batch_size` per call."""
    from bench_lib import torch_peer

    steps = max(1, samples // batch_size)
    candidate = torch_peer.candidate("eager", "eager", "train", batch_size, steps, seed)

    def run():
        started = time.perf_counter()
        candidate.sync(candidate.run())
        return steps * batch_size, time.perf_counter() - started

    return run


def make_candidates(request: dict) -> tuple[dict, dict]:
    """The runs of one `prepare` request by name, and why any variant is left out."""
    import importlib.util

    from bench_lib import keras_steps

    batch, samples, seed = request["batch_size"], request["samples"], request["seed"]
    images, labels = keras_steps.synthetic_data(samples, seed)
    data = ((images, labels), keras_steps.synthetic_data(64, seed + 1))
    factories = {
        "package": lambda: package_run(batch, data),
        "package-spe32": lambda: package_run(batch, data, steps_per_execution=32),
        "package-cosine": lambda: package_run(batch, data, lr_schedule="cosine"),
        "keras-fit": lambda: keras_fit_run(batch, images, labels),
        "pytorch-eager": lambda: pytorch_run(batch, samples, seed),
    }
    runs, missing = {}, {}
    for name in request["variants"]:
        if name == "pytorch-eager" and importlib.util.find_spec("torch") is None:
            missing[name] = "PyTorch is not installed in this environment"
        elif name in factories:
            runs[name] = factories[name]()
        else:
            missing[name] = f"unknown variant (known: {', '.join(VARIANTS)})"
    return runs, missing


def describe() -> dict:
    """The backend, library versions and instruction-set settings of this process."""
    import importlib.metadata

    versions = {"keras": keras.__version__, "python": sys.version.split()[0]}
    for name in ("tensorflow", "jax", "jaxlib", "torch", "numpy", "lenet_blocks"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    caps = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "XLA_FLAGS", "OMP_NUM_THREADS")
    caps += ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
    info = {"backend": keras.backend.backend(), "versions": versions}
    info["isa_environment"] = {name: os.environ[name] for name in caps if name in os.environ}
    if "torch" in sys.modules or keras.backend.backend() == "torch":
        import torch

        info["pytorch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def serve(requests, send) -> None:
    """Answers each request of `requests` (dicts) through `send(dict)`."""
    runs = {}
    for request in requests:
        try:
            if request["op"] == "prepare":
                runs, failed = make_candidates(request)
                for name, run in list(runs.items()) if request.get("warmup", True) else ():
                    try:
                        run()  # untimed: the libraries' first calls, allocations
                    except Exception as error:  # a variant this backend cannot run
                        failed[name] = f"{type(error).__name__}: {str(error)[:300]}"
                        del runs[name]
                send({"candidates": list(runs), "failed": failed})
            elif request["op"] == "run":
                samples, seconds = runs[request["name"]]()
                send({"samples": samples, "seconds": seconds})
            else:
                send({"error": f"unknown op {request['op']!r}"})
        except Exception as error:
            traceback.print_exc()
            send({"error": f"{type(error).__name__}: {str(error)[:300]}"})


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # what the libraries print goes to stderr, not into the protocol
    sys.stdout = sys.stderr

    def send(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")

    send({"ready": describe()})
    serve((json.loads(line) for line in sys.stdin if line.strip()), send)


if __name__ == "__main__":
    main()
