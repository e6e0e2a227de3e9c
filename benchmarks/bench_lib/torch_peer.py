"""The notebook's LeNet in PyTorch, eager and `torch.compile`d: throughput and time to accuracy.

Run only inside `peer_worker` (a subprocess). The network matches the Keras one: the same
layers, Keras' initializers (Glorot-uniform weights, zero biases), SGD with the notebook's
learning rate, and the loss Keras computes on the TensorFlow backend for a sigmoid output
(softmax cross-entropy of the logits before the last sigmoid).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from bench_lib.accuracy_clock import AccuracyClock, train_until_accurate
from bench_lib.data import synthetic_data
from bench_lib.networks import NOTEBOOK_TRAINING
from bench_lib.timing import Candidate, repeated_step


def device() -> torch.device:
    """The GPU when PyTorch sees one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def notebook_network() -> nn.Sequential:
    """Conv 6@5 sigmoid, max pool, conv 16@5 sigmoid, max pool, dense 120/84 sigmoid, dense 10
    (logits; the notebook's last sigmoid is applied by `predict`). 44,426 parameters.

    Example:
    >>> sum(p.numel() for p in notebook_network().parameters())
    44426
    """
    network = nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.Sigmoid(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5),
        nn.Sigmoid(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.Sigmoid(),
        nn.Linear(120, 84),
        nn.Sigmoid(),
        nn.Linear(84, 10),
    )
    for module in network:
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return network


class Trainer:
    """The network, its SGD optimizer, and the compiled (or eager) training step and predict."""

    def __init__(self, variant: str, target: torch.device):
        self.network = notebook_network().to(target)
        self.optimizer = torch.optim.SGD(
            self.network.parameters(), lr=NOTEBOOK_TRAINING["learning_rate"]
        )
        self.loss = nn.CrossEntropyLoss()
        self.forward = self.network if variant == "eager" else torch.compile(self.network)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One full optimizer step; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.forward(x), y)
        loss.backward()
        self.optimizer.step()
        return loss

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The notebook's outputs (sigmoid of the logits), without gradients."""
        with torch.inference_mode():
            return torch.sigmoid(self.forward(x))


def _sync(result: torch.Tensor) -> None:
    result.sum().item()


@functools.cache
def _shared_trainer(variant: str, seed: int) -> Trainer:
    """One trainer per variant for all batch sizes and modes (compiled code is reused)."""
    torch.manual_seed(seed)
    return Trainer(variant, device())


def describe() -> dict:
    """The device and CPU threads PyTorch computes with, and its version."""
    return {
        "device": str(device()),
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__},
    }


def candidate(spec: dict) -> Candidate:
    """A call of `steps_per_call` training steps (`mode="train"`) or forward passes
    (`"infer"`) on one device tensor of `batch_size` synthetic samples.

    `spec` keys: `name`, `variant` (`"eager"` or `"compile"`), `mode`, `batch_size`,
    `steps_per_call`, `seed`.
    """
    trainer = _shared_trainer(spec["variant"], spec["seed"])
    target = device()
    images, labels = synthetic_data(spec["batch_size"], spec["seed"])
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype("float32")).to(target)
    y = torch.from_numpy(labels.astype("int64")).to(target)
    step = trainer.train_step if spec["mode"] == "train" else lambda x, y: trainer.predict(x)
    return repeated_step(
        spec["name"], step, x, y, spec["steps_per_call"], spec["batch_size"], _sync
    )


def time_to_accuracy(spec: dict, data: dict) -> dict:
    """Trains one variant with the notebook's settings until the thresholds or the time cap.

    `spec` keys: `variant`, `thresholds`, `max_seconds`, `eval_every`, `seed`; `data` holds
    uint8 `x_train`, `y_train`, `x_test`, `y_test` (images NHWC).
    """
    torch.manual_seed(spec["seed"])
    target = device()
    trainer = Trainer(spec["variant"], target)

    def to_tensor(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images.transpose(0, 3, 1, 2).astype("float32")).to(target)

    x_train, x_test = to_tensor(data["x_train"]), to_tensor(data["x_test"])
    y_train = torch.from_numpy(data["y_train"].astype("int64")).to(target)
    y_test = torch.from_numpy(data["y_test"].astype("int64")).to(target)

    def train_step(batch: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(batch).to(target)
        return trainer.train_step(x_train[index], y_train[index])

    def evaluate() -> float:
        predicted = torch.cat([trainer.predict(chunk) for chunk in x_test.split(1000)])
        return (predicted.argmax(dim=1) == y_test).float().mean().item()

    clock = AccuracyClock(tuple(spec["thresholds"]), spec["max_seconds"])
    return train_until_accurate(
        train_step,
        evaluate,
        clock,
        samples=len(x_train),
        batch_size=NOTEBOOK_TRAINING["batch_size"],
        eval_every=spec["eval_every"],
        seed=spec["seed"],
        sync=_sync,
    )
