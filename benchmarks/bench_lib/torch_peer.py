"""The optional PyTorch peer: the notebook's network, eager and `torch.compile`d, timed in the
same interleaved groups as Keras. Same layers, Keras' initializers (Glorot-uniform, zero
biases), SGD at the notebook's rate, and the loss Keras computes on TensorFlow for a sigmoid
output (softmax cross-entropy of the logits before the last sigmoid)."""

from __future__ import annotations

import functools

import torch
from torch import nn

from bench_lib.keras_steps import NOTEBOOK_TRAINING, synthetic_data
from bench_lib.timing import Candidate

COMPILERS = ("eager", "torch.compile")


DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def notebook_network() -> nn.Sequential:
    """Conv 6@5, max pool, conv 16@5, max pool, dense 120/84, all sigmoid, dense 10 (logits).

    Example:
    >>> sum(p.numel() for p in notebook_network().parameters())
    44426
    """
    network = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Sigmoid(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(256, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip
    for module in network:
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return network


@functools.cache
def _trainer(compiler: str, seed: int) -> tuple:
    """One network per compiler for every group (compiled code is reused)."""
    torch.manual_seed(seed)
    network = notebook_network().to(DEVICE)
    optimizer = torch.optim.SGD(network.parameters(), lr=NOTEBOOK_TRAINING["learning_rate"])
    forward = network if compiler == "eager" else torch.compile(network)
    loss = nn.CrossEntropyLoss()

    def train(x, y):
        optimizer.zero_grad(set_to_none=True)
        value = loss(forward(x), y)
        value.backward()
        optimizer.step()
        return value

    def predict(x, y):
        with torch.inference_mode():
            return torch.sigmoid(forward(x))

    return train, predict


def candidate(name: str, compiler: str, mode: str, batch_size: int, steps: int = 1, seed=0):
    """`steps` training steps (`mode="train"`) or forward passes (`"infer"`) of one device
    tensor of `batch_size` synthetic samples per call; built at its first call, so that a
    failure (e.g. of `torch.compile`) is recorded as that candidate's."""
    images, labels = synthetic_data(batch_size, seed)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).astype("float32")).to(DEVICE)
    y = torch.from_numpy(labels.astype("int64")).to(DEVICE)

    def run():
        step = _trainer(compiler, seed)[0 if mode == "train" else 1]
        for _ in range(steps):
            result = step(x, y)
        return result

    return Candidate(name, run, steps * batch_size, lambda result: result.sum().item())
