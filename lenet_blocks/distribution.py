"""Data-parallel training with `tf.distribute`: strategies, the chief, and a multi-worker loop.

`lenet-blocks train --distribution {none,mirrored,multi-worker}` (`train(distribution=...)`):

- `"mirrored"`: `tf.distribute.MirroredStrategy` over the local GPUs or, with none, over the
  local CPU devices (`configure_cpu_devices(n)` splits the CPU into `n` logical devices, for
  testing on a machine without GPUs).
- `"multi-worker"`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per worker, the
  cluster described by the standard `TF_CONFIG` environment variable.

The batch size is the *global* batch: each step, every one of the `R` replicas gets
`batch_size / R` samples, and the gradients are summed over replicas, so a step is the same
step as on one device. Keras' own `Model.fit` drives the mirrored strategy. With Keras 3,
`Model.fit` under `MultiWorkerMirroredStrategy` fails before its first step
(keras-team/keras#20585: its symbolic build reduces a nested per-replica batch, which the
collective strategy cannot do), so `fit_multi_worker` runs the same epochs with
`strategy.run`, the model's optimizer and Keras callbacks (progress bar included).

Only the chief (`is_chief()`) writes files; the other workers train along and write nothing.

Example:
>>> parse_tf_config({"cluster": {"worker": ["127.0.0.1:2222", "127.0.0.1:2223"]},
...                  "task": {"type": "worker", "index": 1}})
('worker', 1, 2)
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from lenet_blocks.choices import DISTRIBUTIONS

__all__ = [
    "DISTRIBUTIONS",
    "WorkerLostError",
    "configure_cpu_devices",
    "fit_multi_worker",
    "is_chief",
    "make_strategy",
    "parse_tf_config",
]

LOG_EVERY = 32  # steps between the training logs of `fit_multi_worker` (one collective read)


class WorkerLostError(RuntimeError):
    """A worker of a multi-worker run left the cluster; the others cannot go on."""


def parse_tf_config(config: dict | str | None = None) -> tuple[str, int, int]:
    """`(task type, task index, number of workers)` of a `TF_CONFIG` (default: the environment's).

    Raises:
        ValueError: `TF_CONFIG` is missing, not JSON, or has no cluster/task that fit together.
    """
    if config is None:
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "`--distribution multi-worker` needs the TF_CONFIG environment variable, e.g. "
                'TF_CONFIG=\'{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
                '"task": {"type": "worker", "index": 0}}\'. Received: TF_CONFIG unset'
            )
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"TF_CONFIG must be JSON ({error}). Received: TF_CONFIG={config!r}"
            ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError(
            "TF_CONFIG must have a `cluster` and a `task` entry. "
            f"Received: TF_CONFIG={json.dumps(config)}"
        )
    task_type, index = task.get("type"), task.get("index")
    members = cluster.get(task_type)
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise ValueError(
            f"TF_CONFIG's task {task!r} is not in its cluster {cluster!r}. "
            f"Received: TF_CONFIG={json.dumps(config)}"
        )
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return task_type, index, workers


def is_chief() -> bool:
    """Whether this process writes the run's files: no `TF_CONFIG`, or its chief.

    The chief is the `chief` task or, in a cluster without one, worker 0 (TensorFlow's rule).

    Example:
    >>> import os
    >>> "TF_CONFIG" in os.environ or is_chief()
    True
    """
    if not os.environ.get("TF_CONFIG"):
        return True
    task_type, index, _ = parse_tf_config()
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and index == 0


def configure_cpu_devices(count: int) -> None:
    """Splits the physical CPU into `count` logical devices (for a CPU `MirroredStrategy`).

    Must run before TensorFlow initializes its devices (before the first op).

    Raises:
        ValueError: `count` is not a positive int, or TensorFlow's devices are already set up.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"`cpu_devices` must be a positive int. Received: cpu_devices={count!r}")
    if count == 1:
        return
    (cpu,) = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:
        logical = len(tf.config.list_logical_devices("CPU"))
        if logical == count:
            return
        raise ValueError(
            f"TensorFlow's devices are already initialized ({logical} logical CPU devices), so "
            "the CPU can no longer be split; set `cpu_devices` at the start of the process. "
            f"Received: cpu_devices={count}"
        ) from None


def make_strategy(distribution: str) -> tf.distribute.Strategy | None:
    """The strategy of `distribution` (`None` for `"none"`: Keras' default, one device).

    Raises:
        ValueError: an unknown `distribution`, a backend other than TensorFlow, or a missing or
            malformed `TF_CONFIG` for `"multi-worker"`.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {DISTRIBUTIONS}. "
            f"Received: distribution={distribution!r}"
        )
    if distribution == "none":
        return None
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "`distribution` uses tf.distribute, which needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow). Received: distribution={distribution!r} on the "
            f"{keras.backend.backend()} backend"
        )
    if distribution == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = gpus or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    parse_tf_config()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _sharded(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    # In-memory arrays have no files to shard: each worker takes its part of every batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit_multi_worker(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_data: tf.data.Dataset,
    validation_data: tf.data.Dataset,
    *,
    epochs: int,
    initial_epoch: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
) -> dict[str, list[float]]:
    """`model.fit` for `MultiWorkerMirroredStrategy`, built on `strategy.run`.

    Every worker calls it with the same arguments. The datasets yield global batches; each
    worker takes its share of every batch. Per step, each replica computes the model's compiled
    loss (`model.compute_loss`) of its samples, weighted so that the sum over the replicas is
    the mean over the whole global batch (an uneven last batch is averaged exactly); the model's
    optimizer sums the gradients over replicas. Logs carry `loss`, `accuracy` and their `val_`
    versions, as `Model.fit` would.

    Args:
        model: a compiled model built in `strategy.scope()`.
        strategy: the `MultiWorkerMirroredStrategy`.
        train_data, validation_data: batched `tf.data.Dataset`s of `(images, labels)`.
        epochs, initial_epoch, callbacks, verbose: as for `Model.fit`.

    Returns:
        The history, `{name: [value per epoch]}`.
    """
    from lenet_blocks.objectives import loss_and_metrics

    with strategy.scope():
        _, (accuracy,) = loss_and_metrics(model)
        loss_sum = keras.metrics.Sum(name="loss_sum")
        sample_count = keras.metrics.Sum(name="samples")
        model.optimizer.build(model.trainable_variables)
    _check_same_initial_epoch(strategy, initial_epoch)
    train_batches = strategy.experimental_distribute_dataset(_sharded(train_data))
    validation_batches = strategy.experimental_distribute_dataset(_sharded(validation_data))
    steps = int(train_data.cardinality())

    def replica_loss(labels, outputs, training):
        """The model's compiled loss (with `model.losses`) of this replica's share of the batch.

        Keras averages a replica's loss over its own samples and divides it by the number of
        replicas; weighting each sample by `replicas * local / global` makes the sum over the
        replicas the mean over the global batch, also for an uneven last batch.
        """
        replica = tf.distribute.get_replica_context()
        count = tf.cast(tf.shape(labels)[0], "float32")
        global_count = tf.maximum(replica.all_reduce("SUM", count), 1.0)
        weight = strategy.num_replicas_in_sync * count / global_count
        loss = model.compute_loss(
            y=labels,
            y_pred=outputs,
            sample_weight=tf.fill(tf.shape(labels), weight),
            training=training,
        )
        loss_sum.update_state(loss * global_count)
        sample_count.update_state(count)
        accuracy.update_state(labels, outputs)
        return loss

    def train_replica(images, labels):
        with tf.GradientTape() as tape:
            loss = replica_loss(labels, model(images, training=True), training=True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))

    def test_replica(images, labels):
        replica_loss(labels, model(images, training=False), training=False)

    @tf.function
    def train_step(batch):
        strategy.run(train_replica, args=batch)

    @tf.function
    def test_step(batch):
        strategy.run(test_replica, args=batch)

    def results(prefix=""):
        mean_loss = float(loss_sum.result()) / max(float(sample_count.result()), 1.0)
        return {f"{prefix}loss": mean_loss, f"{prefix}accuracy": float(accuracy.result())}

    def reset():
        for metric in (loss_sum, sample_count, accuracy):
            metric.reset_state()

    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*(callbacks or []), history],
        add_progbar=verbose not in (0, "0"),
        model=model,
        verbose=1 if verbose == "auto" else verbose,
        epochs=epochs,
        steps=steps,
    )
    try:
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            reset()
            callback_list.on_epoch_begin(epoch)
            batch_logs = {}
            for step, batch in enumerate(train_batches):
                callback_list.on_train_batch_begin(step)
                train_step(batch)
                # Reading the metrics is a collective operation: every worker does it at the
                # same steps, every LOG_EVERY steps (the progress bar and the non-finite-loss
                # check see those) and at the epoch's last step.
                if step % LOG_EVERY == 0 or step == steps - 1:
                    batch_logs = results()
                callback_list.on_train_batch_end(step, batch_logs)
                if model.stop_training:
                    break
            logs = results()
            reset()
            for batch in validation_batches:
                test_step(batch)
            logs.update(results("val_"))
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end()
    except (
        tf.errors.UnavailableError,
        tf.errors.AbortedError,
        tf.errors.InternalError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
    ) as error:
        raise WorkerLostError(
            "A worker left the cluster, so the collective operations of the others were "
            f"aborted ({type(error).__name__}). Start every worker again with the same "
            "command: they resume after the last completed epoch."
        ) from None
    return {key: list(values) for key, values in history.history.items()}


def _check_same_initial_epoch(strategy: tf.distribute.Strategy, initial_epoch: int) -> None:
    """Raises `ValueError` (on every worker alike) unless all workers resume from one epoch."""

    @tf.function
    def sums():
        value = strategy.run(lambda: tf.constant(float(initial_epoch)))
        squares = strategy.run(lambda: tf.constant(float(initial_epoch) ** 2))
        return (
            strategy.reduce("SUM", value, axis=None),
            strategy.reduce("SUM", squares, axis=None),
        )

    total, total_of_squares = (float(x) for x in sums())
    replicas = strategy.num_replicas_in_sync
    # All equal exactly when n * sum(x^2) == sum(x)^2.
    if abs(replicas * total_of_squares - total**2) > 0.5:
        raise ValueError(
            "The workers resumed from different epochs (mean "
            f"{total / replicas:g}; this one {initial_epoch}): their checkpoints differ. The "
            "output directory must be one directory that every worker reads (a shared "
            f"filesystem). Received: initial_epoch={initial_epoch} on this worker"
        )
