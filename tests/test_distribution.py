"""Data-parallel training: TF_CONFIG parsing, strategies, and real runs in subprocesses.

The mirrored runs split the CPU into 2 logical devices; the multi-worker runs start 2 worker
processes on 127.0.0.1 ports. Every process is bounded by a timeout and killed by PID.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
from idx_helpers import make_dataset, write_dataset

import lenet_blocks as lb
from lenet_blocks.distributed_search import free_ports
from lenet_blocks.distribution import (
    configure_cpu_devices,
    is_chief,
    make_strategy,
    parse_tf_config,
)

pytestmark = pytest.mark.tensorflow_only

TIMEOUT_S = 240
KILL_AFTER_FIRST_EPOCH = """
import os, signal, sys
import keras
from lenet_blocks.distribution import configure_cpu_devices
from lenet_blocks.training import train

configure_cpu_devices(int(sys.argv[4]))

class KillAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        os.kill(os.getpid(), signal.SIGKILL)

train(sys.argv[1], data_dir=sys.argv[2], distribution=sys.argv[3], epochs=2, verbose=0,
      callbacks=[KillAfterFirstEpoch()])
"""


def tf_config(ports, index):
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def start(args, env=None):
    """Starts `python ARGS` in its own process group, its output going to a file."""
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)  # noqa: SIM115
    with log:
        process = subprocess.Popen(
            [sys.executable, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    process.log_path = log.name
    return process


def finish(processes, timeout=TIMEOUT_S):
    """Waits for every process (one deadline); kills the rest by PID; returns their outputs."""
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    outputs = []
    for process in processes:
        with open(process.log_path) as log:
            outputs.append(log.read())
        os.unlink(process.log_path)
    return outputs


def train_command(output, data_dir, *extra):
    return [
        "-m",
        "lenet_blocks",
        "train",
        "--output",
        str(output),
        "--data-dir",
        str(data_dir),
        "--epochs",
        "2",
        "--verbose",
        "2",
        *extra,
    ]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("data"), make_dataset(200, 40, seed=4))


@pytest.fixture(scope="module")
def single_run(tmp_path_factory, data_dir):
    output = tmp_path_factory.mktemp("single")
    (log,) = finish([start(train_command(output, data_dir))])
    assert (output / "metrics.json").exists(), log
    return output


def assert_same_run_as(run, single_run, replicas, workers, same_batches):
    metrics = json.loads((run / "metrics.json").read_text())
    single = json.loads((single_run / "metrics.json").read_text())
    assert metrics["distribution"]["replicas"] == replicas
    assert metrics["distribution"]["workers"] == workers
    assert metrics["settings"] == single["settings"]
    assert set(metrics) == set(single) and set(metrics["history"]) == set(single["history"])
    assert metrics["epochs"] == single["epochs"] == 2
    if same_batches:  # same seed, same global batches: the first epoch is the same computation
        np.testing.assert_allclose(
            metrics["history"]["loss"][0], single["history"]["loss"][0], 1e-4
        )
    model = lb.load_model(run / "model.keras")
    reference = lb.load_model(single_run / "model.keras")
    assert model.get_config() == reference.get_config()
    assert [w.shape for w in model.get_weights()] == [w.shape for w in reference.get_weights()]
    assert sorted(path.name for path in run.iterdir()) == sorted(
        path.name for path in single_run.iterdir()
    )


# -- TF_CONFIG, the chief, arguments ---------------------------------------------------------


def test_parse_tf_config():
    assert parse_tf_config(tf_config([1, 2, 3], 2)) == ("worker", 2, 3)
    config = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief"}}
    config["task"]["index"] = 0
    assert parse_tf_config(config) == ("chief", 0, 2)


@pytest.mark.parametrize(
    "config, match",
    [
        (None, "TF_CONFIG unset"),
        ("{not json", "must be JSON"),
        ('{"cluster": {}}', "a `cluster` and a `task`"),
        (tf_config([1, 2], 2), "is not in its cluster"),
    ],
)
def test_parse_tf_config_errors_name_the_value(monkeypatch, config, match):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=match):
        parse_tf_config(config)


def test_chief_is_worker_zero_or_the_chief_task(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief()
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 0))
    assert is_chief()
    monkeypatch.setenv("TF_CONFIG", tf_config([1, 2], 1))
    assert not is_chief()
    chief_config = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({**chief_config, "task": {"type": "worker", "index": 0}})
    )
    assert not is_chief()


def test_strategy_arguments_are_checked(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert make_strategy("none") is None
    with pytest.raises(ValueError, match="Received: distribution='horovod'"):
        make_strategy("horovod")
    with pytest.raises(ValueError, match="TF_CONFIG unset"):
        make_strategy("multi-worker")
    with pytest.raises(ValueError, match="Received: cpu_devices=0"):
        configure_cpu_devices(0)


def test_cpu_devices_after_tensorflow_started_is_a_clear_error():
    import tensorflow as tf

    tf.constant(1.0)  # devices are initialized from here on
    with pytest.raises(ValueError, match=r"already initialized.*Received: cpu_devices=7"):
        configure_cpu_devices(7)


def test_train_cli_rejects_multi_worker_without_tf_config(tmp_path, data_dir):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = subprocess.run(
        [
            sys.executable,
            *train_command(tmp_path / "run", data_dir, "--distribution", "multi-worker"),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    assert result.returncode == 2
    assert "TF_CONFIG" in result.stderr and "Traceback" not in result.stderr


# -- mirrored over 2 logical CPU devices ------------------------------------------------------

MIRRORED_STEPS = """
import json
from lenet_blocks.distribution import configure_cpu_devices, make_strategy
configure_cpu_devices(2)
import keras, numpy as np
from lenet_blocks.training import RunSettings, build_compiled_model

x = np.random.default_rng(0).integers(0, 256, (96, 28, 28, 1)).astype("float32")
y = np.arange(96) % 10
settings = RunSettings()
strategy = make_strategy("mirrored")
models = []
for scope in (strategy.scope(), None):
    keras.utils.set_random_seed(0)
    if scope is None:
        models.append(build_compiled_model(settings))
    else:
        with scope:
            models.append(build_compiled_model(settings))
    models[-1].fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
difference = max(
    float(np.abs(a - b).max()) for a, b in zip(models[0].get_weights(), models[1].get_weights())
)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "difference": difference}))
"""


def test_mirrored_steps_are_single_device_steps():
    """Each replica gets half of every global batch; the summed gradients make the same step."""
    (output,) = finish([start(["-c", MIRRORED_STEPS])])
    result = json.loads(output.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["difference"] < 1e-5


def test_mirrored_run_matches_a_single_device_run(tmp_path, data_dir, single_run):
    run = tmp_path / "mirrored"
    command = train_command(run, data_dir, "--distribution", "mirrored", "--cpu-devices", "2")
    (log,) = finish([start(command)])
    assert "Epoch 2/2" in log, log
    assert_same_run_as(run, single_run, replicas=2, workers=1, same_batches=False)


def test_mirrored_run_resumes_after_a_kill(tmp_path, data_dir, single_run):
    run = tmp_path / "mirrored"
    (log,) = finish(
        [start(["-c", KILL_AFTER_FIRST_EPOCH, str(run), str(data_dir), "mirrored", "2"])]
    )
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["epochs_done"] == 1, log
    command = train_command(run, data_dir, "--distribution", "mirrored", "--cpu-devices", "2")
    (log,) = finish([start(command)])
    assert "after epoch 1" in log and "Epoch 2/2" in log and "Epoch 1/2" not in log, log
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["history"]["loss"][:1] == state["history"]["loss"]
    assert_same_run_as(run, single_run, replicas=2, workers=1, same_batches=False)


# -- two workers on 127.0.0.1 ---------------------------------------------------------------


def start_workers(run, data_dir, scripts=(None, None), outputs=None):
    """Two workers on free 127.0.0.1 ports; `scripts[i]`: worker i runs it instead of the CLI."""
    ports = free_ports(2)
    processes = []
    for index, script in enumerate(scripts):
        output = run if outputs is None else outputs[index]
        env = {"TF_CONFIG": tf_config(ports, index)}
        if script is None:
            args = train_command(output, data_dir, "--distribution", "multi-worker")
        else:
            args = ["-c", script, str(output), str(data_dir), "multi-worker", "1"]
        processes.append(start(args, env))
    return processes


def test_two_workers_train_like_one_and_only_the_chief_writes(tmp_path, data_dir, single_run):
    run, worker_output = tmp_path / "workers", tmp_path / "worker1"
    chief_log, worker_log = finish(start_workers(run, data_dir, outputs=(run, worker_output)))
    assert "Epoch 2/2" in chief_log and "Epoch 2/2" in worker_log, chief_log + worker_log
    assert_same_run_as(run, single_run, replicas=2, workers=2, same_batches=True)
    assert not worker_output.exists() or not any(worker_output.iterdir())


def test_two_workers_resume_after_both_are_killed(tmp_path, data_dir, single_run):
    run = tmp_path / "workers"
    logs = finish(start_workers(run, data_dir, scripts=(KILL_AFTER_FIRST_EPOCH,) * 2))
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["epochs_done"] == 1, logs
    chief_log, worker_log = finish(start_workers(run, data_dir))
    for log in (chief_log, worker_log):
        assert "after epoch 1" in log and "Epoch 1/2" not in log, log
    assert_same_run_as(run, single_run, replicas=2, workers=2, same_batches=True)


def test_a_lost_worker_stops_the_other_with_a_clear_error(tmp_path, data_dir):
    run = tmp_path / "workers"
    chief, worker = start_workers(run, data_dir, scripts=(None, KILL_AFTER_FIRST_EPOCH))
    chief_log, _ = finish([chief, worker])
    assert chief.returncode == 1, chief_log
    assert "A worker left the cluster" in chief_log and "Traceback" not in chief_log
    assert json.loads((run / "checkpoint" / "state.json").read_text())["epochs_done"] == 1
