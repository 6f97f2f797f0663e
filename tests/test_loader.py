"""kutils._loader: worker processes that die, also half-way through sending a batch.

No Keras here (the loader needs only ``len`` and ``[]``): spawned workers import this
module to unpickle its sequences, and a light module keeps their start-up short. The
same fault under ``fit`` is in test_sequence.py.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import subprocess
import sys
import termios
import textwrap
import threading
import time
from multiprocessing import resource_tracker
from pathlib import Path

import numpy as np
import psutil
import pytest

from kutils._loader import OrderedLoader, WorkerDied

pytestmark = pytest.mark.timeout(120)

BIG = 40 * 2**20  # bytes in a big batch: hundreds of pipe writes
BOUND = 20.0  # seconds within which every wait must end


class KillWhenPickled:
    """Kills the process that pickles it: placed after a big array, mid-send."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("not reached")


class BigBatches:
    """Batch 0 is small; batch 1 holds ``BIG`` bytes, then optionally a KillWhenPickled.

    ``marker`` (a path) is written once batch 1 is built, before it is sent; batch 1
    is built only once the path ``wait_for`` exists, when it is given.
    """

    def __init__(self, kill_in_pickle=False, marker=None, length=3, wait_for=None):
        self.kill_in_pickle = kill_in_pickle
        self.marker = marker
        self.length = length
        self.wait_for = wait_for

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if index != 1:
            return np.full((2, 2), index, "float32")
        deadline = time.monotonic() + BOUND
        while self.wait_for is not None and not Path(self.wait_for).exists():
            assert time.monotonic() < deadline, f"{self.wait_for} never appeared"
            time.sleep(0.01)
        batch = [np.ones(BIG, "uint8")]
        if self.kill_in_pickle:
            batch.append(KillWhenPickled())
        if self.marker is not None:
            Path(self.marker).write_text("built")
        return batch


class Unpicklable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


class BigThenUnpicklable:
    def __len__(self):
        return 2

    def __getitem__(self, index):
        if index == 1:
            return [np.ones(BIG, "uint8"), Unpicklable()]
        return np.zeros(3)


def children():
    resource_tracker.ensure_running()  # one per session; not a worker
    tracker = resource_tracker._resource_tracker._pid
    return {p.pid for p in psutil.Process().children(recursive=True) if p.pid != tracker}


def next_within(iterator, seconds):
    """next(iterator) in a thread: (value, error); fails the test if it takes longer."""
    box: dict = {}

    def run():
        try:
            box["value"] = next(iterator)
        except BaseException as error:  # handed to the test
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"next() still waiting after {seconds} s: the loader hangs"
    return box.get("value"), box.get("error"), time.monotonic() - started


def pipe_bytes(loader):
    """Bytes waiting in the (single) worker's results pipe."""
    fd = loader._results[0].connection.fileno()
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), sys.byteorder)


def test_worker_killed_while_blocked_mid_send_raises_worker_died(tmp_path):
    before = children()
    marker = tmp_path / "built"
    loader = OrderedLoader(
        BigBatches(marker=marker), [0, 1, 2], workers=1, use_multiprocessing=True, max_queue_size=2
    )
    batches = iter(loader)
    try:
        first, error, _ = next_within(batches, BOUND)
        assert error is None and first[0, 0] == 0
        # Nobody reads while the test holds the iterator: the worker blocks in its send of
        # batch 1 once the pipe is full. Wait for that, then kill it there.
        deadline = time.monotonic() + BOUND
        while not (marker.exists() and pipe_bytes(loader) >= 4096):
            assert time.monotonic() < deadline, "the worker never began to send batch 1"
            time.sleep(0.05)
        time.sleep(0.2)
        assert pipe_bytes(loader) < BIG  # half written: the rest is still in the worker
        (worker,) = loader._processes
        os.kill(worker.pid, signal.SIGKILL)
        _, error, took = next_within(batches, BOUND)
        assert isinstance(error, WorkerDied), error
        assert f"exited with code -{signal.SIGKILL}" in str(error)
        assert took < BOUND
    finally:
        loader.close()
    assert not psutil.pid_exists(worker.pid) or psutil.Process(worker.pid).status() == "zombie"
    assert children() == before


def test_worker_killed_by_its_own_batch_mid_pickle_raises_worker_died(tmp_path):
    before = children()
    go = tmp_path / "batch 0 received"
    loader = OrderedLoader(
        BigBatches(kill_in_pickle=True, wait_for=go),
        [0, 1, 2],
        workers=2,
        use_multiprocessing=True,
        max_queue_size=3,
    )
    batches = iter(loader)
    try:
        # The worker of batch 1 dies only after batch 0 arrived: a worker's death is
        # reported at once, also while the batch waited for is another worker's, so
        # under load a quick death could otherwise come first.
        first, error, _ = next_within(batches, BOUND)
        assert error is None and first[0, 0] == 0
        go.write_text("go")
        _, error, _ = next_within(batches, BOUND)
        assert isinstance(error, WorkerDied), error
        assert f"exited with code -{signal.SIGKILL}" in str(error)
    finally:
        loader.close()
    assert children() == before


def test_batch_that_fails_to_pickle_half_sent_reports_the_pickling_error():
    loader = OrderedLoader(
        BigThenUnpicklable(), [0, 1], workers=1, use_multiprocessing=True, max_queue_size=2
    )
    batches = iter(loader)
    try:
        first, error, _ = next_within(batches, BOUND)
        assert error is None and list(first) == [0, 0, 0]
        _, error, _ = next_within(batches, BOUND)
        assert type(error) is TypeError
        assert str(error) == "this object refuses to be pickled"
    finally:
        loader.close()


def test_big_batches_arrive_whole_and_in_order():
    loader = OrderedLoader(
        BigBatches(length=4), [3, 1, 0, 2, 1], workers=2, use_multiprocessing=True, max_queue_size=3
    )
    try:
        got = list(loader)
    finally:
        loader.close()
    assert [b[0, 0] for i, b in enumerate(got) if i in (0, 2, 3)] == [3, 0, 2]
    for big in (got[1], got[4]):
        assert big[0].shape == (BIG,) and int(big[0].sum()) == BIG


@pytest.mark.parametrize(
    "consume",
    ["for batch in loader: pass", "next(iter(loader))"],
    ids=["idle workers", "workers waiting for credit mid-pass"],
)
def test_workers_of_a_killed_parent_exit(tmp_path, consume):
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_loader import BigBatches
        from kutils._loader import OrderedLoader
        if __name__ == "__main__":
            loader = OrderedLoader(BigBatches(length=50), [0] + list(range(2, 50)),
                                   workers=2, use_multiprocessing=True, max_queue_size=1)
            {consume}
            print(" ".join(str(p.pid) for p in loader._processes), flush=True)
            time.sleep(600)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = parent.stdout.readline()
        workers = [psutil.Process(int(pid)) for pid in line.split()]
        assert len(workers) == 2, line
        parent.kill()
        parent.wait(BOUND)
        _, alive = psutil.wait_procs(workers, timeout=BOUND)
        assert alive == []
    finally:
        parent.kill()
        parent.wait(BOUND)
        parent.stdout.close()


class SlowBatches:
    def __len__(self):
        return 100

    def __getitem__(self, index):
        time.sleep(0.5)
        return np.full(3, index)


def test_close_from_another_thread_ends_the_iteration_and_frees_everything():
    before = children()
    loader = OrderedLoader(
        SlowBatches(), list(range(100)), workers=2, use_multiprocessing=True, max_queue_size=4
    )
    got = []
    batches = iter(loader)

    def consume():
        for batch in batches:
            got.append(batch)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    deadline = time.monotonic() + BOUND
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got, "no batch arrived"
    loader.close()
    thread.join(BOUND)
    assert not thread.is_alive(), "the iteration did not stop after close()"
    assert len(got) < 100
    assert all(reader.connection.closed for reader in loader._results)
    assert children() == before


def test_a_results_pipe_closed_from_several_threads_at_once_is_closed_once():
    """stop() in one thread and the iterating generator's cleanup in another both close
    the readers; a second os.close of the number fails with EBADF (seen in CI) or closes
    a file opened meanwhile. Tiny switch intervals make the threads interleave."""
    from kutils._loader_wire import ResultReader

    errors: list[BaseException] = []
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(300):
            receiver, sender = multiprocessing.Pipe(duplex=False)
            reader = ResultReader(receiver, None)
            barrier = threading.Barrier(6)

            def close(reader=reader, barrier=barrier):
                barrier.wait(BOUND)
                try:
                    reader.close()
                except BaseException as error:  # collected for the assert below
                    errors.append(error)

            threads = [threading.Thread(target=close) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(BOUND)
            sender.close()
            assert receiver.closed
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


class MediumBatches:
    def __len__(self):
        return 12

    def __getitem__(self, index):
        return np.full(4 * 2**20, index % 256, "uint8")


@pytest.mark.slow
def test_workers_killed_at_random_moments_never_hang_the_loader():
    """30 s of loaders whose workers are SIGKILLed at random moments (idle, computing,
    mid-send): every run ends with all batches or WorkerDied, within the bound."""
    rng = np.random.default_rng(13)
    before = children()
    outcomes = {"complete": 0, "died": 0}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        loader = OrderedLoader(
            MediumBatches(), list(range(12)), workers=2, use_multiprocessing=True, max_queue_size=4
        )
        batches = iter(loader)
        try:
            first, error, _ = next_within(batches, BOUND)
            assert error is None and first[0] == 0
            victim = loader._processes[int(rng.integers(2))]
            delay = float(rng.uniform(0, 0.4))
            killer = threading.Timer(delay, os.kill, (victim.pid, signal.SIGKILL))
            killer.start()
            count = 1
            while True:
                batch, error, _ = next_within(batches, BOUND)
                if error is not None:
                    break
                assert batch[0] == count % 256 and batch.size == 4 * 2**20
                count += 1
            killer.join(BOUND)
            if isinstance(error, StopIteration):
                assert count == 12
                outcomes["complete"] += 1
            else:
                assert isinstance(error, WorkerDied), error
                outcomes["died"] += 1
        finally:
            loader.close()
    assert outcomes["died"] > 0, outcomes
    assert children() == before


class StatefulBatches:
    """Batch ``i`` is ``(pid, offset + i)``: who served it and the state it saw."""

    def __init__(self, length=6):
        self.length = length
        self.offset = 0

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return os.getpid(), self.offset + index


def test_passes_reuse_the_workers_and_see_the_new_state():
    sequence = StatefulBatches()
    loader = OrderedLoader(sequence, [], workers=2, use_multiprocessing=True, max_queue_size=2)
    try:
        first = list(loader.run(range(6)))
        pids = {process.pid for process in loader._processes}
        assert len(pids) == 2
        assert [value for _, value in first] == list(range(6))
        sequence.offset = 100  # as on_epoch_end would change it, in the parent
        second = list(loader.run([5, 4, 3]))
        assert [value for _, value in second] == [105, 104, 103]
        # a pass ended early: the results it had queued are not delivered to the next
        early = loader.run(range(6))
        assert next(early)[1] == 100
        loader.end_pass()
        rest = [value for _, value in early]  # what had arrived, in order, and no more
        assert rest == list(range(101, 101 + len(rest))) and len(rest) < 5
        sequence.offset = 200
        third = list(loader.run([0, 1, 2, 3]))
        assert [value for _, value in third] == [200, 201, 202, 203]
        # every pass was served by the two processes started for the first one
        assert {pid for pid, _ in first + second + third} <= pids
        assert {process.pid for process in loader._processes} == pids
    finally:
        loader.close()


def test_passes_reuse_the_threads():
    sequence = StatefulBatches()
    loader = OrderedLoader(sequence, [], workers=2, use_multiprocessing=False, max_queue_size=2)
    try:
        assert [v for _, v in loader.run(range(3))] == [0, 1, 2]
        executor = loader._threads
        early = loader.run(range(6))
        next(early)
        loader.end_pass()
        rest = [v for _, v in early]
        assert rest == list(range(1, 1 + len(rest))) and len(rest) < 5
        sequence.offset = 10
        assert [v for _, v in loader.run([2, 0])] == [12, 10]
        assert loader._threads is executor
    finally:
        loader.close()


def test_unknown_start_method_is_rejected_with_what_was_received():
    with pytest.raises(
        ValueError, match=r"start_method must be one of .*Received: start_method='forked'"
    ):
        OrderedLoader(
            [1], [0], workers=1, use_multiprocessing=True, max_queue_size=1, start_method="forked"
        )


class RecordingBatches:
    """Appends each index a worker process loads to ``log``, one line per call."""

    def __init__(self, log, length=200):
        self.log = str(log)
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        with open(self.log, "a", encoding="utf-8") as file:
            file.write(f"{index}\n")
        return index


def loaded(log, settle=0.5):
    """The indices the workers loaded, once they had ``settle`` seconds to run ahead."""
    time.sleep(settle)
    return [int(line) for line in Path(log).read_text(encoding="utf-8").split()]


def test_process_workers_run_ahead_without_requests_up_to_max_queue_size(tmp_path):
    """Workers get the pass's order once and load ahead on their own; the consumer's
    position plus max_queue_size bounds them at every moment."""
    log = tmp_path / "loaded"
    log.touch()
    loader = OrderedLoader(
        RecordingBatches(log), [], workers=2, use_multiprocessing=True, max_queue_size=4
    )
    try:
        order = list(range(199, 99, -1))
        batches = loader.run(order)
        taken = [next_within(batches, BOUND)[0]]
        assert taken == [199]
        # the first window, loaded with no request per batch
        assert sorted(loaded(log)) == sorted(order[:4])
        for _ in range(6):
            taken.append(next_within(batches, BOUND)[0])
        assert taken == order[:7]
        # The bound moves half a window at a time (at 2, 4, 6 taken): 6 + 4 loaded, never
        # more than 7 taken + max_queue_size.
        assert sorted(loaded(log)) == sorted(order[:10])
        assert list(batches) == order[7:]
    finally:
        loader.close()


def test_a_pass_ended_early_stops_its_process_workers_loading(tmp_path):
    log = tmp_path / "loaded"
    log.touch()
    loader = OrderedLoader(
        RecordingBatches(log), [], workers=2, use_multiprocessing=True, max_queue_size=3
    )
    try:
        batches = loader.run(range(200))
        assert next_within(batches, BOUND)[0] == 0
        loaded(log)
        loader.end_pass()
        assert len(loaded(log)) <= 1 + 3  # the rest of the 200 was dropped, not loaded
        assert list(loader.run([150, 3])) == [150, 3]
        assert len(loaded(log)) <= 1 + 3 + 2
    finally:
        loader.close()


@pytest.mark.parametrize("max_queue_size", [1, 2, 3, 7])
def test_process_workers_deliver_every_window_in_order(max_queue_size):
    loader = OrderedLoader(
        StatefulBatches(length=50),
        [],
        workers=3,
        use_multiprocessing=True,
        max_queue_size=max_queue_size,
    )
    try:
        for length in (50, 1, 2, 13):
            order = list(range(length))[::-1]
            assert [value for _, value in loader.run(order)] == order
    finally:
        loader.close()


def test_small_results_written_together_are_all_read_in_order():
    """A worker's results arrive several to a read, a big one split across reads."""
    from kutils._loader_wire import FrameWriter, ResultReader, send

    receiver, sender = multiprocessing.Pipe(duplex=False)
    reader = ResultReader(receiver, None)
    writer = FrameWriter(sender.fileno())
    big = np.arange(100_000, dtype="int64")  # 800 kB: more than a pipe holds
    values = [("small", 0), ("small", 1), big, ("small", 3), ValueError("batch 4")]
    received = []

    def write():
        for position, value in enumerate(values):
            send(writer, position, position != 4, value)
        writer.flush()  # the small results go in one write
        sender.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    deadline = time.monotonic() + BOUND
    while not reader.at_end:
        assert time.monotonic() < deadline
        received += reader.read_available()
        time.sleep(0.001)
    thread.join(BOUND)
    reader.close()
    assert [(position, ok) for position, ok, _, _ in received] == [
        (0, True),
        (1, True),
        (2, True),
        (3, True),
        (4, False),
    ]
    import pickle

    got = [pickle.loads(data, buffers=buffers) for _, _, data, buffers in received]
    assert got[:2] == values[:2] and got[3] == values[3]
    np.testing.assert_array_equal(got[2], big)
    assert isinstance(got[4], ValueError) and str(got[4]) == "batch 4"


class HeavyStateBatches(StatefulBatches):
    """A sequence whose pickled state is far bigger than a pipe holds (64 kB)."""

    def __init__(self):
        super().__init__(length=4)
        self.table = np.zeros(2**20, "uint8")

    def __getitem__(self, index):
        return os.getpid(), self.offset + index, int(self.table[index])


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_a_new_state_bigger_than_the_pipe_reaches_busy_workers(start_method):
    """The parent never blocks writing a big state: what the control pipe cannot take
    goes out while it waits for results, and each worker sees the whole new state."""
    sequence = HeavyStateBatches()
    loader = OrderedLoader(
        sequence,
        [],
        workers=2,
        use_multiprocessing=True,
        max_queue_size=2,
        start_method=start_method,
    )
    try:
        assert [batch[1:] for batch in loader.run(range(4))] == [(i, 0) for i in range(4)]
        for round_number in range(1, 4):
            sequence.offset = 10 * round_number
            sequence.table = np.full(2**20, round_number, "uint8")
            batches = loader.run([3, 2, 1, 0])
            got, error, _ = next_within(batches, BOUND)
            assert error is None
            got = [got, *batches]
            assert [batch[1:] for batch in got] == [
                (10 * round_number + i, round_number) for i in (3, 2, 1, 0)
            ]
    finally:
        loader.close()
