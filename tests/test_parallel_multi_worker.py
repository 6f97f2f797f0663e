"""data_parallel on tf.distribute.MultiWorkerMirroredStrategy: real workers on 127.0.0.1.

Each worker is a separate Python process running tests/multiworker_worker.py (a process
can hold only one collective strategy, and its logical devices must be set before
TensorFlow starts). Every process a test starts is killed and reaped when it ends.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from multiworker_worker import EPOCHS

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "multiworker_worker.py"
RUN_TIMEOUT = 180  # seconds for a whole cluster run; a healthy one takes ~15 s


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


@contextlib.contextmanager
def _cluster(
    tmp_path: Path, data: Path, cpus: tuple[int, ...], mode: str, timeout: float | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start one worker per entry of ``cpus``; kill and reap all of them on exit."""
    ports = _free_ports(len(cpus))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index, count in enumerate(cpus):
            env = dict(os.environ)
            env["TF_CONFIG"] = _tf_config(ports, index)
            env["KUTILS_TEST_WORKER"] = str(index)
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
            log = (tmp_path / f"worker{index}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(WORKER),
                        str(data),
                        str(tmp_path / f"out{index}.npz"),
                        str(count),
                        mode,
                        "none" if timeout is None else str(timeout),
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=tmp_path,
                )
            )
            log.close()
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=30)


def _log(tmp_path: Path, index: int) -> str:
    return (tmp_path / f"worker{index}.log").read_text(errors="replace")


@pytest.fixture
def problem(tmp_path: Path) -> Path:
    """Data and initial weights in an .npz for the workers, with an HDF5 copy beside it."""
    return _write_problem(tmp_path, 32)


def _write_problem(tmp_path: Path, rows: int) -> Path:
    import h5py
    from multiworker_worker import build_model

    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 4)).astype("float32")
    y = rng.normal(size=(rows, 1)).astype("float32")
    path = tmp_path / "data.npz"
    weights = build_model().get_weights()
    np.savez(path, x=x, y=y, **{f"w{i}": w for i, w in enumerate(weights)})
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"], f["y"] = x, y
    return path


def _single_process(data: Path, epochs: list[list[np.ndarray]]) -> Any:
    """The template trained in this process on the given global batches (row indices)."""
    import keras
    from multiworker_worker import build_model

    arrays = np.load(data)
    model = build_model()
    model.set_weights([arrays[f"w{i}"] for i in range(len(model.weights))])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    for batches in epochs:
        for rows in batches:
            model.train_on_batch(arrays["x"][rows], arrays["y"][rows])
    return model


def _in_order(*sizes: int) -> list[np.ndarray]:
    bounds = np.cumsum([0, *sizes])
    return [np.arange(a, b) for a, b in itertools.pairwise(bounds)]


# A worker that hangs at interpreter exit after writing every result: seen now and then
# under load; the one caught with py-spy was a deadlock in TensorFlow's prefetch-iterator
# destructor, which kutils now avoids (docs/multi_worker.md). Job schedulers treat
# worker 0's exit as the end of the job; the tests do the same, once every worker has
# finished, after this grace period (the fit results are still checked).
SHUTDOWN_GRACE = 30.0


def _wait_finished(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """Wait for the workers to exit; return those killed while hanging at exit.

    A worker has finished once it wrote OUT.npz.done (its results) or OUT.npz.failed
    (after printing the exception that ended it).
    """
    deadline = time.monotonic() + RUN_TIMEOUT
    finished_at = None
    while any(proc.poll() is None for proc in procs):
        now = time.monotonic()
        assert now < deadline, "the workers did not finish in time"
        if finished_at is None and all(
            (tmp_path / f"out{i}.npz.done").exists() or (tmp_path / f"out{i}.npz.failed").exists()
            for i in range(len(procs))
        ):
            finished_at = now
        if finished_at is not None and now - finished_at > SHUTDOWN_GRACE:
            hung = [i for i, proc in enumerate(procs) if proc.poll() is None]
            for i in hung:
                procs[i].kill()
                procs[i].wait(timeout=30)
            return hung
        time.sleep(0.2)
    return []


def _sequence_shuffle_batches(tmp_path: Path) -> list[list[np.ndarray]]:
    """The global batches of the sequence-shuffle run, from the batches each worker read.

    Every worker first reads batch 0 once (for the shapes), then its own batches; an
    epoch ends with 'end'. Each epoch, the two workers' reads must split the 8 batches.
    """
    reads = [(tmp_path / f"out{i}.npz.reads").read_text().split() for i in range(2)]
    epochs = []
    for index in range(2):
        assert reads[index][0] == "0", reads[index]
        reads[index] = reads[index][1:]
    per_worker = [" ".join(r).split("end")[:EPOCHS] for r in reads]
    for epoch in range(EPOCHS):
        mine, theirs = ([int(i) for i in w[epoch].split()] for w in per_worker)
        assert sorted(mine + theirs) == list(range(8)), (mine, theirs)
        assert len(mine) == len(theirs) == 4
        epochs.append(
            [
                np.concatenate([np.arange(4 * a, 4 * a + 4), np.arange(4 * b, 4 * b + 4)])
                for a, b in zip(mine, theirs, strict=True)
            ]
        )
    orders = [[int(i) for i in w[e].split()] for w in per_worker for e in range(EPOCHS)]
    assert any(order != sorted(order) for order in orders), "the batches were not shuffled"
    return epochs


def _shuffled_batches(block_size: int | None) -> Any:
    """The global batches of a shuffled run, from the seed both workers recorded.

    numpy arrays are shuffled row by row (blocks of 1), an HDF5Dataset by blocks.
    """

    def batches(tmp_path: Path) -> list[list[np.ndarray]]:
        from kutils import HDF5Dataset

        seeds = [np.load(tmp_path / f"out{i}.npz.eval.npz")["seeds"] for i in range(2)]
        np.testing.assert_array_equal(seeds[0], seeds[1])
        assert len(seeds[0]) == EPOCHS and len(set(seeds[0].tolist())) == 1, seeds
        rows = np.arange(len(np.load(tmp_path / "data.npz")["x"]))
        dataset = HDF5Dataset(
            rows, batch_size=8, shuffle=True, block_size=block_size, seed=int(seeds[0][0])
        )
        epochs = []
        for _ in range(EPOCHS):
            epochs.append([dataset[i][0] for i in range(len(dataset))])
            dataset.on_epoch_end()
        in_order = _in_order(8, 8, 8, 8)
        assert any(
            not np.array_equal(b, o) for e in epochs for b, o in zip(e, in_order, strict=True)
        ), "not shuffled"
        return epochs

    return batches


# Global batches (row indices) of each input kind's two epochs on two workers.
EXPECTED_BATCHES = {
    "numpy": lambda _: [_in_order(8, 8, 8, 8)] * EPOCHS,
    "tfdata": lambda _: [_in_order(8, 8, 8, 8)] * EPOCHS,
    "hdf5": lambda _: [_in_order(8, 8, 8, 8)] * EPOCHS,
    # A Sequence batch is one worker's: a step trains on one batch per worker.
    "sequence": lambda _: [_in_order(16, 16)] * EPOCHS,
    "pydataset": lambda _: [_in_order(16, 16)] * EPOCHS,
    # Batches of 7: steps of 7 + 7 rows, and the last 4-row batch split between workers.
    "sequence-uneven": lambda _: [_in_order(14, 14, 4)] * EPOCHS,
    "sequence-shuffle": _sequence_shuffle_batches,
    "hdf5-shuffle": _shuffled_batches(block_size=None),
    "numpy-shuffle": _shuffled_batches(block_size=1),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "cpus"),
    [
        ("numpy", (1, 1)),
        ("numpy", (2, 2)),
        ("numpy-shuffle", (1, 1)),
        ("tfdata", (1, 1)),
        ("sequence", (1, 1)),
        ("sequence", (2, 2)),
        ("sequence-uneven", (1, 1)),
        ("pydataset", (1, 1)),
        ("sequence-shuffle", (1, 1)),
        ("hdf5", (1, 1)),
        ("hdf5", (2, 2)),
        ("hdf5-shuffle", (1, 1)),
    ],
    ids=lambda value: "x".join(map(str, value)) if isinstance(value, tuple) else value,
)
def test_two_workers_fit_to_the_single_process_weights(
    tmp_path: Path, problem: Path, kind: str, cpus: tuple[int, int]
) -> None:
    # Keras 3.15's own fit fails here before the first step (known-issues.md); this
    # trains through data_parallel and must reach the single-process result over the
    # same global batches.
    data = problem
    with _cluster(tmp_path, data, cpus, f"fit:{kind}") as procs:
        hung = _wait_finished(tmp_path, procs)
    assert not _workers_alive(), "a worker process was left behind"
    for index, proc in enumerate(procs):
        assert index in hung or proc.returncode == 0, _log(tmp_path, index)
        assert "ran out of data" not in _log(tmp_path, index)
    initial = np.load(data)
    expected = _single_process(data, EXPECTED_BATCHES[kind](tmp_path))
    results = [np.load(tmp_path / f"out{i}.npz") for i in range(2)]
    weights = [[r[f"arr_{k}"] for k in range(len(expected.weights))] for r in results]
    for mine, theirs in zip(weights[0], weights[1], strict=True):
        np.testing.assert_array_equal(mine, theirs)
    for mine, single in zip(weights[0], expected.get_weights(), strict=True):
        np.testing.assert_allclose(mine, single, rtol=0, atol=1e-5)
    assert any(not np.allclose(w, initial[f"w{k}"], atol=1e-3) for k, w in enumerate(weights[0])), (
        "the workers did not train"
    )
    _assert_evaluate_and_predict_match(tmp_path, data, expected)


# Uneven global batches: (input kind @ batch rows, rows of data, the global batches).
UNEVEN = {
    # 4 steps of 15 rows: 8 + 7 per replica on 2 replicas, 4 + 4 + 4 + 3 on 4
    "numpy@15": (60, _in_order(15, 15, 15, 15)),
    # the last, short batch of an epoch (13 rows) splits 7 + 6
    "numpy@16": (61, _in_order(16, 16, 16, 13)),
    "hdf5@15": (60, _in_order(15, 15, 15, 15)),
    "tfdata@15": (60, _in_order(15, 15, 15, 15)),
    # a Sequence batch per worker: the last step has worker 1's short batch (8 + 5)
    "sequence@8": (61, _in_order(16, 16, 16, 13)),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "cpus"),
    [
        ("numpy@15", (1, 1)),
        ("numpy@15", (2, 2)),
        ("numpy@16", (1, 1)),
        ("hdf5@15", (1, 1)),
        ("tfdata@15", (1, 1)),
        ("sequence@8", (1, 1)),
    ],
    ids=lambda value: "x".join(map(str, value)) if isinstance(value, tuple) else value,
)
def test_uneven_global_batches_train_as_in_one_process(
    tmp_path: Path, kind: str, cpus: tuple[int, int]
) -> None:
    # Keras averages each replica's loss over its own rows; when a global batch does not
    # split evenly, the rows of the smaller part must not weigh more than in one process.
    rows, batches = UNEVEN[kind]
    data = _write_problem(tmp_path, rows)
    with _cluster(tmp_path, data, cpus, f"fit:{kind}") as procs:
        hung = _wait_finished(tmp_path, procs)
    for index, proc in enumerate(procs):
        assert index in hung or proc.returncode == 0, _log(tmp_path, index)
    expected = _single_process(data, [batches] * EPOCHS)
    for index in range(2):
        result = np.load(tmp_path / f"out{index}.npz")
        for k, single in enumerate(expected.get_weights()):
            np.testing.assert_allclose(result[f"arr_{k}"], single, rtol=0, atol=1e-5)
    # What fit reports (the loss and a metric, per epoch) is one process's too.
    logs = _single_process_logs(data, [batches] * EPOCHS)
    for index in range(2):
        result = np.load(tmp_path / f"out{index}.npz.eval.npz")
        for name, values in logs.items():
            np.testing.assert_allclose(result[f"history_{name}"], values, rtol=1e-5)
    import keras

    expected.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])  # evaluate: both
    _assert_evaluate_and_predict_match(tmp_path, data, expected)


def _single_process_logs(data: Path, epochs: list[list[np.ndarray]]) -> dict[str, list[float]]:
    """The loss and mae fit would report per epoch, over these global batches, in one process."""
    import keras
    from multiworker_worker import build_model

    arrays = np.load(data)
    model = build_model()
    model.set_weights([arrays[f"w{i}"] for i in range(len(model.weights))])
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
    logs: dict[str, list[float]] = {"loss": [], "mae": []}
    for batches in epochs:
        sums = np.zeros(2)
        for rows in batches:
            sums += len(rows) * np.array(model.train_on_batch(arrays["x"][rows], arrays["y"][rows]))
        count = sum(len(rows) for rows in batches)
        logs["loss"].append(sums[0] / count)
        logs["mae"].append(sums[1] / count)
    return logs


def _assert_evaluate_and_predict_match(tmp_path: Path, data: Path, model: Any) -> None:
    """Each worker's evaluate and predict equal the trained model's own, in one process."""
    x, y = np.load(data)["x"], np.load(data)["y"]
    loss = model.evaluate(x, y, batch_size=8, verbose=0)
    predictions = model.predict(x, batch_size=8, verbose=0)
    for index in range(2):
        result = np.load(tmp_path / f"out{index}.npz.eval.npz")
        np.testing.assert_allclose(result["loss"], loss, rtol=1e-5)
        # evaluate on the training input's kind (sharded for Sequence and HDF5 input)
        np.testing.assert_allclose(result["input_loss"], loss, rtol=1e-5)
        np.testing.assert_allclose(result["predictions"], predictions, rtol=0, atol=1e-5)


GOOD_CLUSTER = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


@pytest.mark.parametrize(
    ("tf_config", "expected"),
    [
        ("", "TF_CONFIG environment variable, which is not set"),
        ("{'cluster': {}}", "TF_CONFIG is not valid JSON"),
        ('["worker"]', "must be a JSON object"),
        ({"task": {"type": "worker", "index": 0}}, "needs a 'cluster'"),
        ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}, "non-empty list"),
        (
            {"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}},
            "host:port",
        ),
        ({"cluster": GOOD_CLUSTER}, "needs a 'task'"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker"}}, "needs a 'task'"),
        (
            {"cluster": GOOD_CLUSTER, "task": {"type": "chief", "index": 0}},
            "'chief' is not in the cluster",
        ),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": 2}}, "from 0 to 1"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": -1}}, "from 0 to 1"),
        ({"cluster": GOOD_CLUSTER, "task": {"type": "worker", "index": "0"}}, "from 0 to 1"),
    ],
    ids=[
        "unset",
        "malformed-json",
        "not-an-object",
        "missing-cluster",
        "empty-worker-list",
        "address-without-port",
        "missing-task",
        "task-without-index",
        "task-type-not-in-cluster",
        "index-too-large",
        "index-negative",
        "index-not-int",
    ],
)
def test_bad_tf_config_raises_before_training(
    monkeypatch: pytest.MonkeyPatch, tf_config: Any, expected: str
) -> None:
    from kutils.parallel import multi_worker_strategy

    if isinstance(tf_config, str):
        monkeypatch.setenv("TF_CONFIG", tf_config)
        tf_config = None
    with pytest.raises(ValueError, match="Received: ") as info:
        multi_worker_strategy(tf_config)
    assert expected in str(info.value)


def test_port_in_use_raises_before_training() -> None:
    from kutils.parallel import multi_worker_strategy

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = {
            "cluster": {"worker": [address, "127.0.0.1:1"]},
            "task": {"type": "worker", "index": 0},
        }
        with pytest.raises(ValueError, match="port is in use") as info:
            multi_worker_strategy(json.dumps(config))
    assert f"Received: address={address!r}" in str(info.value)


def test_keras_still_has_the_step_the_workaround_replaces() -> None:
    # data_parallel overrides TensorFlowTrainer._maybe_symbolic_build to get past Keras
    # 3.15's failure under MultiWorkerMirroredStrategy; if Keras renames it, the override
    # would silently stop applying, so this fails first.
    import inspect

    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    params = list(inspect.signature(TensorFlowTrainer._maybe_symbolic_build).parameters)
    assert params == ["self", "iterator", "data_batch"]


@pytest.mark.slow
def test_killed_worker_stops_the_other_with_a_clear_error(tmp_path: Path, problem: Path) -> None:
    data = problem
    with _cluster(tmp_path, data, (1, 1), "long") as procs:
        markers = [tmp_path / f"out{i}.npz.started" for i in range(2)]
        deadline = time.monotonic() + RUN_TIMEOUT
        while not all(m.exists() for m in markers):
            assert all(p.poll() is None for p in procs), _log(tmp_path, 0) + _log(tmp_path, 1)
            assert time.monotonic() < deadline, "the workers never started training"
            time.sleep(0.2)
        procs[1].kill()
        killed_at = time.monotonic()
        procs[0].wait(timeout=90)  # TimeoutExpired fails the test; _cluster reaps both
        stopped_after = time.monotonic() - killed_at
    log = _log(tmp_path, 0)
    assert procs[0].returncode not in (0, None), log
    assert "another worker of the MultiWorkerMirroredStrategy cluster" in log, log
    assert stopped_after < 90
    assert not (tmp_path / "out0.npz").exists()
    assert not _workers_alive(), "a worker process was left behind"


@pytest.mark.slow
def test_each_worker_counts_its_own_devices_not_the_clusters(tmp_path: Path, problem: Path) -> None:
    # Once the cluster is up, TensorFlow lists every worker's devices in each process;
    # multi_worker_strategy reports this worker's GPUs to the strategy (one replica per
    # GPU), so it must count this worker's alone. No GPU here: the same count on CPUs.
    with _cluster(tmp_path, problem, (2, 2), "devices") as procs:
        hung = _wait_finished(tmp_path, procs)
    for index, proc in enumerate(procs):
        assert index in hung or proc.returncode == 0, _log(tmp_path, index)
    for index in range(2):
        text = (tmp_path / f"out{index}.npz.devices.txt").read_text()
        listed, own, accelerators = text.split(";")
        assert (int(listed), int(own)) == (4, 2), text
        assert accelerators == "{}", text  # no GPU: the strategy uses the CPU


def _workers_alive() -> list[Any]:
    import psutil

    return [
        child
        for child in psutil.Process().children(recursive=True)
        if child.is_running() and str(WORKER) in " ".join(child.cmdline())
    ]


@pytest.mark.slow
def test_sequence_error_reaches_its_worker_and_stops_the_other(
    tmp_path: Path, problem: Path
) -> None:
    with _cluster(tmp_path, problem, (1, 1), "broken") as procs:
        hung = _wait_finished(tmp_path, procs)
    assert not _workers_alive(), "a worker process was left behind"
    # Batch 3 is read by worker 1 (batches 1 and 3): fit raises the Sequence's own error.
    assert procs[1].returncode not in (0, None)
    assert 0 not in hung, "worker 0 hung after worker 1 failed"
    assert "KeyError: 'batch 3 is broken'" in _log(tmp_path, 1), _log(tmp_path, 1)
    # Worker 0, waiting for the gradients of worker 1, stops with a clear error that
    # names worker 1's (reported to the cluster by worker 1's fit).
    assert procs[0].returncode not in (0, None)
    log = _log(tmp_path, 0)
    assert "another worker of the MultiWorkerMirroredStrategy cluster stopped with" in log, log
    assert "KeyError: 'batch 3 is broken'" in log, log
    for index in range(2):
        message = (tmp_path / f"out{index}.npz.class_weight.txt").read_text()
        assert "class_weight is not supported" in message
        assert "Received: class_weight={0: 1.0}" in message


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("caught:sequence", "KeyError: 'batch 3 is broken'"),
        ("caught:callback", "RuntimeError: callback failed at batch 2"),
    ],
    ids=["input-error", "callback-error"],
)
def test_a_worker_that_fails_and_lives_on_still_stops_the_others(
    tmp_path: Path, problem: Path, mode: str, cause: str
) -> None:
    # Worker 1 catches its error and stays alive (heartbeats and all). With no collective
    # timeout, worker 0 would wait for its gradients for ever unless the error reaches it.
    # Worker 0 writes what its fit raised as soon as it catches it; its process exit is
    # not waited for (a process may still hang at exit, see SHUTDOWN_GRACE).
    caught, theirs = (tmp_path / f"out{i}.npz.caught.txt" for i in range(2))
    with _cluster(tmp_path, problem, (1, 1), mode) as procs:
        deadline = time.monotonic() + 120
        while not (caught.exists() and theirs.exists()):
            assert caught.exists() or procs[0].poll() is None, _log(tmp_path, 0)
            if time.monotonic() > deadline:
                pytest.fail(
                    "worker 0 kept waiting for the worker that failed:\n" + _log(tmp_path, 0)
                )
            time.sleep(0.2)
        assert procs[1].poll() is None, _log(tmp_path, 1)  # still alive, as the script wants
    assert theirs.read_text().startswith(cause.split(":")[0])
    message = caught.read_text()
    assert message.startswith("AbortedError: Training stopped: another worker of the ")
    assert "MultiWorkerMirroredStrategy cluster stopped with an error" in message
    assert cause in message
    assert not _workers_alive(), "a worker process was left behind"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="counts threads in /proc")
def test_fit_calls_do_not_pile_up_threads(tmp_path: Path, problem: Path) -> None:
    # With a collective timeout, TensorFlow 2.21 keeps a thread per collective operation
    # until the timeout expires (~4 per step): multi_worker_strategy sets none by
    # default. Each fit call's new input pipeline still keeps ~10 threads here (TF 2.21,
    # measured; listed in docs/multi_worker.md).
    with _cluster(tmp_path, problem, (1, 1), "threads") as procs:
        hung = _wait_finished(tmp_path, procs)
    for index, proc in enumerate(procs):
        assert index in hung or proc.returncode == 0, _log(tmp_path, index)
        counts = np.load(tmp_path / f"out{index}.npz.threads.npz")["counts"]
        # 5 more fit calls of 2 epochs: ~690 more threads with a 60 s timeout
        assert counts[-1] - counts[0] < 100, counts


@pytest.mark.slow
def test_repeated_calls_trace_and_run_no_collective_of_their_own(
    tmp_path: Path, problem: Path
) -> None:
    # After the first round, fit (shuffled or not), evaluate and predict on numpy arrays
    # neither trace a function with a collective in it again nor run an eager
    # all-reduce: either would wait for the other workers outside the training steps on
    # every call (a per-call cost docs/performance.md measured before the change).
    with _cluster(tmp_path, problem, (2, 1), "calls") as procs:
        hung = _wait_finished(tmp_path, procs)
    for index, proc in enumerate(procs):
        assert index in hung or proc.returncode == 0, _log(tmp_path, index)
        rounds = np.load(tmp_path / f"out{index}.npz.calls.npz")["rounds"].tolist()
        traced, eager = rounds[0]
        assert traced > 0, rounds  # the first round traced the steps' all-reduces
        assert eager == 1, rounds  # the workers agreed on the shuffle seed, once
        assert rounds[1:] == [[0, 0], [0, 0]], rounds


@pytest.mark.parametrize(
    ("runs", "parts", "expected"),
    [
        ([(0, 8)], 2, [[(0, 4)], [(4, 8)]]),
        ([(0, 3), (10, 15)], 2, [[(0, 3), (10, 11)], [(11, 15)]]),
        ([(4, 7)], 2, [[(4, 5)], [(5, 7)]]),
        ([(4, 5)], 3, [[(4, 4)], [(4, 4)], [(4, 5)]]),
    ],
    ids=["even", "across-runs", "odd", "fewer-rows-than-parts"],
)
def test_each_replica_reads_its_own_rows_of_a_global_batch(
    runs: list[tuple[int, int]], parts: int, expected: list[list[tuple[int, int]]]
) -> None:
    from kutils._row_shards import _part_of_runs

    got = [_part_of_runs(runs, part, parts) for part in range(parts)]
    assert got == expected
    rows = [r for part in got for a, b in part for r in range(a, b)]
    assert rows == [r for a, b in runs for r in range(a, b)]  # every row once, in order


def test_a_worker_batch_is_split_between_its_replicas_in_order() -> None:
    from kutils._sequence_shards import _split_rows

    x, y = np.arange(10).reshape(5, 2), np.arange(5)
    pieces = list(_split_rows(([x], y), 2))
    assert [len(p[1]) for p in pieces] == [2, 3]
    np.testing.assert_array_equal(np.concatenate([p[0][0] for p in pieces]), x)
    assert isinstance(pieces[0][0], tuple)  # lists become tuples, as tf.data needs


@pytest.mark.parametrize(("workers", "local"), [(1, 1), (2, 1), (2, 2), (3, 4)])
def test_numpy_batch_parts_come_back_in_order_from_keras_predict(workers: int, local: int) -> None:
    # Keras's predict all-gathers the replicas' results worker by worker and reorders
    # them local replica first (_multi_worker_concat); the parts handed out must undo it.
    from kutils._array_feed import batch_part

    replicas = workers * local
    parts = [batch_part(r, replicas, local) for r in range(replicas)]
    assert [index for _, index in parts] == [r % local for r in range(replicas)]
    gathered = [part for part, _ in parts]  # in the order of the replica ids
    reordered = [p for index in range(local) for p in gathered[index::local]]
    assert reordered == list(range(replicas))


def test_sequence_hdf5_and_shuffled_numpy_inputs_are_read_in_shards(tmp_path: Path) -> None:
    import h5py
    import keras
    import tensorflow as tf

    from kutils import HDF5Dataset, HDF5Matrix, Sequence
    from kutils._array_feed import ArrayShards
    from kutils._row_shards import _RowShards
    from kutils._sequence_shards import _SequenceShards
    from kutils._strategy_parallel import sharded_input

    class Batches(Sequence):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int) -> Any:
            return np.zeros((4, 3)), np.zeros(4)

    class Endless(keras.utils.PyDataset):
        num_batches = None

    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"] = np.zeros((6, 3), "float32")
    x = HDF5Matrix(str(tmp_path / "d.h5"), "x")
    strategy = tf.distribute.get_strategy()
    kinds = {
        "sequence": sharded_input(strategy, Batches(), training=True),
        "hdf5dataset": sharded_input(strategy, HDF5Dataset(x, batch_size=2), training=True),
        "hdf5matrix": sharded_input(strategy, x, np.zeros(6), batch_size=2, training=True),
        "numpy": sharded_input(strategy, np.zeros((6, 3)), np.zeros(6), training=True),
        "numpy-shuffle": sharded_input(
            strategy, np.zeros((6, 3)), np.zeros(6), shuffle=True, training=True
        ),
        "tfdata": sharded_input(
            strategy, tf.data.Dataset.from_tensor_slices(np.zeros(6)), training=True
        ),
        "endless": sharded_input(strategy, Endless(), training=True),
    }
    assert isinstance(kinds.pop("sequence"), _SequenceShards)
    assert isinstance(kinds.pop("hdf5dataset"), _RowShards)
    assert isinstance(kinds.pop("hdf5matrix"), _RowShards)
    # numpy arrays, shuffled or not, are handed to each step: no tf.data pipeline.
    assert isinstance(kinds.pop("numpy-shuffle"), ArrayShards)
    assert isinstance(kinds.pop("numpy"), ArrayShards)
    # Keras splits tf.data right; an endless dataset has no order.
    assert kinds == {"tfdata": None, "endless": None}


# -- TF_CONFIG checks made before TensorFlow starts ---------------------------------------


def _listening(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    taken = socket.socket(family, socket.SOCK_STREAM)
    taken.bind((host, 0))
    taken.listen()
    return taken


def _config(address: str, *others: str) -> str:
    return json.dumps(
        {"cluster": {"worker": [address, *others]}, "task": {"type": "worker", "index": 0}}
    )


@pytest.mark.parametrize(
    ("listener", "named"),
    [
        ("127.0.0.2", "127.0.0.2"),  # a loopback address that is not a 'localhost' name
        ("127.0.0.1", "127.0.0.2"),  # taken on another address of the machine
        ("127.0.0.2", "localhost"),
        ("127.0.0.1", "grpc://127.0.0.3"),
    ],
)
def test_port_in_use_on_any_address_of_the_machine_raises(listener: str, named: str) -> None:
    from kutils.parallel import multi_worker_strategy

    with _listening(listener) as taken:
        port = taken.getsockname()[1]
        address = f"{named}:{port}"
        with pytest.raises(ValueError, match=r"port is in use on this machine") as info:
            multi_worker_strategy(_config(address, "127.0.0.1:1"))
    assert f"port {port}" in str(info.value)


def test_port_in_use_on_ipv6_loopback_raises() -> None:
    from kutils.parallel import multi_worker_strategy

    try:
        taken = _listening("::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with taken:
        address = f"[::1]:{taken.getsockname()[1]}"
        with pytest.raises(ValueError, match=r"port is in use on this machine"):
            multi_worker_strategy(_config(address, "127.0.0.1:1"))


def test_free_port_passes_the_check() -> None:
    from kutils._cluster_setup import _check_port_free

    with _listening("127.0.0.1") as taken:
        port = taken.getsockname()[1]
    _check_port_free(f"127.0.0.2:{port}", "worker", 0)  # released: free again


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (["127.0.0.1:2000", "127.0.0.1:2000"], "cluster['worker'][0] and cluster['worker'][1]"),
        (["LOCALHOST:2000", "localhost:02000"], "twice"),
        (["grpc://127.0.0.1:2000", "127.0.0.1:2000"], "twice"),
    ],
)
def test_duplicate_addresses_raise_value_error(addresses: list[str], expected: str) -> None:
    from kutils.parallel import multi_worker_strategy

    config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError, match="every task needs a host:port of its own") as info:
        multi_worker_strategy(json.dumps(config))
    assert expected in str(info.value)


def test_duplicate_address_across_task_types_raises() -> None:
    from kutils.parallel import multi_worker_strategy

    config = {
        "cluster": {"chief": ["127.0.0.1:2001"], "worker": ["127.0.0.1:2001"]},
        "task": {"type": "worker", "index": 0},
    }
    with pytest.raises(ValueError, match=r"cluster\['chief'\]\[0\] and cluster\['worker'\]\[0\]"):
        multi_worker_strategy(json.dumps(config))


def test_grpc_scheme_is_dropped_and_other_schemes_are_rejected() -> None:
    from kutils._cluster_setup import _check_tf_config
    from kutils.parallel import multi_worker_strategy

    config = {
        "cluster": {"worker": ["grpc://127.0.0.1:2002", "GRPC://127.0.0.1:2003"]},
        "task": {"type": "worker", "index": 0},
    }
    cluster, _, _ = _check_tf_config(config)
    assert cluster == {"worker": ["127.0.0.1:2002", "127.0.0.1:2003"]}
    config["cluster"]["worker"][1] = "http://127.0.0.1:2003"
    with pytest.raises(ValueError, match=r"scheme 'http':// is not.*cluster\['worker'\]\[1\]"):
        multi_worker_strategy(json.dumps(config))


def test_one_worker_cluster_with_a_grpc_address_starts() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import json, sys\n"
        "from kutils.parallel import multi_worker_strategy\n"
        "config = {'cluster': {'worker': [sys.argv[1]]}, 'task': {'type': 'worker', 'index': 0}}\n"
        "strategy = multi_worker_strategy(json.dumps(config))\n"
        "print('replicas', strategy.num_replicas_in_sync)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("TF_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-c", code, f"grpc://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[-1] == "replicas 1"


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


@pytest.mark.skipif(_unprivileged_port_start() <= 80, reason="port 80 is not privileged here")
def test_privileged_port_without_privileges_raises_value_error() -> None:
    code = (
        "from kutils._cluster_setup import _check_port_free\n"
        "try:\n"
        "    _check_port_free('127.0.0.1:80', 'worker', 0)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:  # root may bind it: drop that capability for the child
        capsh = shutil.which("capsh")
        if capsh is None:
            pytest.skip("running as root without capsh to drop CAP_NET_BIND_SERVICE")
        command = [capsh, "--drop=cap_net_bind_service", "--", "-c", shlex.join(command)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ports below 1024 need privileges" in result.stdout
    assert "Received: address='127.0.0.1:80'" in result.stdout
