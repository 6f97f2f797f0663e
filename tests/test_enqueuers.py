"""OrderedEnqueuer / GeneratorEnqueuer: Keras 2's enqueuers on real threads and processes.

The sequences are defined at module level so that spawned worker processes can unpickle
them (they import this module by name). This module imports no Keras, so the workers
start without TensorFlow.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
import time
import warnings
from multiprocessing import resource_tracker

import psutil
import pytest

from kutils import GeneratorEnqueuer, OrderedEnqueuer, SequenceEnqueuer
from kutils.enqueuers import iter_sequence_infinite

pytestmark = pytest.mark.timeout(120)

THREADS_AND_PROCESSES = pytest.mark.parametrize(
    "use_multiprocessing", [False, True], ids=["threads", "processes"]
)


class EpochSequence:
    """Batch i of epoch e is (e, i, pid); on_epoch_end counts the epochs."""

    def __init__(self, length: int = 5) -> None:
        self.length = length
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return (self.epoch, index, os.getpid())

    def on_epoch_end(self) -> None:
        self.epoch += 1


class GrowingSequence(EpochSequence):
    """One more batch every epoch (Keras 2.3.1 re-read len() each epoch)."""

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.length += 1


class FailingSequence(EpochSequence):
    def __getitem__(self, index: int) -> tuple[int, int, int]:
        if index == 2:
            raise KeyError(f"no batch {index}")
        return super().__getitem__(index)


class CountingSequence(EpochSequence):
    """Records which indices were loaded (threads only: the list is shared)."""

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.loaded: list[int] = []
        self.lock = threading.Lock()

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        with self.lock:
            self.loaded.append(index)
        return super().__getitem__(index)


class SlowSequence(EpochSequence):
    def __getitem__(self, index: int) -> tuple[int, int, int]:
        time.sleep(0.3)
        return super().__getitem__(index)


class NoneSequence(EpochSequence):
    def __getitem__(self, index: int) -> tuple[int, int, int] | None:  # type: ignore[override]
        return None if index % 2 else super().__getitem__(index)


def worker_processes() -> list[psutil.Process]:
    resource_tracker.ensure_running()  # started once per session; not a worker
    tracker = resource_tracker._resource_tracker._pid
    return [p for p in psutil.Process().children(recursive=True) if p.pid != tracker]


def enqueuer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kutils_")]


def take(enqueuer: SequenceEnqueuer, n: int) -> list:
    batches = enqueuer.get()
    return [next(batches) for _ in range(n)]


@pytest.fixture
def stopped_afterwards():
    """Enqueuers made by a test; each is stopped even when the test fails."""
    made: list[SequenceEnqueuer] = []
    yield made
    for enqueuer in made:
        enqueuer.stop()


# --- OrderedEnqueuer --------------------------------------------------------------------


@THREADS_AND_PROCESSES
def test_ordered_yields_batches_in_order_over_epochs(stopped_afterwards, use_multiprocessing):
    enqueuer = OrderedEnqueuer(EpochSequence(4), use_multiprocessing=use_multiprocessing)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    got = [(epoch, index) for epoch, index, _ in take(enqueuer, 10)]
    assert got == [(e, i) for e in range(3) for i in range(4)][:10]


@THREADS_AND_PROCESSES
def test_ordered_loads_on_the_requested_kind_of_worker(stopped_afterwards, use_multiprocessing):
    enqueuer = OrderedEnqueuer(EpochSequence(4), use_multiprocessing=use_multiprocessing)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    pids = {pid for _, _, pid in take(enqueuer, 4)}
    if use_multiprocessing:
        assert os.getpid() not in pids
    else:
        assert pids == {os.getpid()}


def test_ordered_shuffle_permutes_each_epoch_anew(stopped_afterwards):
    random.seed(3)
    enqueuer = OrderedEnqueuer(EpochSequence(12), shuffle=True)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=4)
    batches = take(enqueuer, 36)
    epochs = [[index for _, index, _ in batches[k : k + 12]] for k in (0, 12, 24)]
    assert all(sorted(order) == list(range(12)) for order in epochs)
    assert epochs[0] != list(range(12))
    assert len({tuple(order) for order in epochs}) == 3


def test_ordered_calls_on_epoch_end_once_the_last_batch_is_taken(stopped_afterwards):
    seq = EpochSequence(3)
    enqueuer = OrderedEnqueuer(seq)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=1, max_queue_size=10)
    batches = enqueuer.get()
    first_epoch = [next(batches) for _ in range(3)]
    assert [e for e, _, _ in first_epoch] == [0, 0, 0]
    deadline = time.monotonic() + 10
    while seq.epoch == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seq.epoch == 1  # without asking for the next batch, as in Keras 2


@THREADS_AND_PROCESSES
def test_ordered_reads_len_again_every_epoch(stopped_afterwards, use_multiprocessing):
    enqueuer = OrderedEnqueuer(GrowingSequence(2), use_multiprocessing=use_multiprocessing)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=2)
    got = [(epoch, index) for epoch, index, _ in take(enqueuer, 9)]
    assert got == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2), (2, 3)]


@THREADS_AND_PROCESSES
def test_ordered_error_in_getitem_reaches_get_with_its_type(
    stopped_afterwards, use_multiprocessing
):
    enqueuer = OrderedEnqueuer(FailingSequence(5), use_multiprocessing=use_multiprocessing)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    batches = enqueuer.get()
    assert [index for _, index, _ in (next(batches), next(batches))] == [0, 1]
    with pytest.raises(KeyError, match="no batch 2"):
        next(batches)
    assert not enqueuer.is_running()


@THREADS_AND_PROCESSES
def test_stop_leaves_no_worker_thread_or_process(use_multiprocessing):
    before = worker_processes()
    enqueuer = OrderedEnqueuer(EpochSequence(50), use_multiprocessing=use_multiprocessing)
    enqueuer.start(workers=2, max_queue_size=5)
    take(enqueuer, 3)
    if use_multiprocessing:
        assert len(worker_processes()) == len(before) + 2
    started = time.monotonic()
    enqueuer.stop()
    assert time.monotonic() - started < 15
    assert enqueuer_threads() == []
    assert worker_processes() == before
    assert multiprocessing.active_children() == []


def test_stop_returns_while_a_slow_batch_loads():
    enqueuer = OrderedEnqueuer(SlowSequence(20))
    enqueuer.start(workers=2, max_queue_size=4)
    take(enqueuer, 1)
    started = time.monotonic()
    enqueuer.stop()
    assert time.monotonic() - started < 5
    assert enqueuer_threads() == []


def test_stop_ends_the_get_generator(stopped_afterwards):
    enqueuer = OrderedEnqueuer(EpochSequence(3))
    enqueuer.start(workers=1, max_queue_size=2)
    batches = enqueuer.get()
    next(batches)
    enqueuer.stop()
    assert list(batches) == []


def test_is_running_follows_start_and_stop():
    enqueuer = OrderedEnqueuer(EpochSequence(3))
    assert not enqueuer.is_running()
    enqueuer.start()
    assert enqueuer.is_running()
    enqueuer.stop()
    assert not enqueuer.is_running()


def test_read_ahead_is_bounded_by_max_queue_size(stopped_afterwards):
    seq = CountingSequence(40)
    enqueuer = OrderedEnqueuer(seq)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    take(enqueuer, 1)
    time.sleep(0.5)
    # the loader's 3, the one waiting in the hand-off queue, the one being handed over
    assert 3 <= len(seq.loaded) <= 1 + 3 + 2


def test_none_batch_from_a_sequence_raises_value_error(stopped_afterwards):
    enqueuer = OrderedEnqueuer(NoneSequence(6))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    batches = enqueuer.get()
    assert next(batches)[1] == 0
    with pytest.raises(ValueError, match=r"sequence\[1\] returned None"):
        next(batches)


def test_none_from_a_generator_is_skipped_as_keras_2(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(iter([0, None, 2, None, 4]))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=1, max_queue_size=3)
    assert list(enqueuer.get()) == [0, 2, 4]


def test_get_before_start_raises_runtime_error():
    with pytest.raises(RuntimeError, match=r"before start\(\)"):
        next(OrderedEnqueuer(EpochSequence(3)).get())


def test_empty_sequence_raises_value_error_from_get(stopped_afterwards):
    enqueuer = OrderedEnqueuer(EpochSequence(0))
    stopped_afterwards.append(enqueuer)
    enqueuer.start()
    with pytest.raises(ValueError, match="len\\(sequence\\) is 0"):
        next(enqueuer.get())


def test_start_twice_raises_runtime_error(stopped_afterwards):
    enqueuer = OrderedEnqueuer(EpochSequence(3))
    stopped_afterwards.append(enqueuer)
    enqueuer.start()
    with pytest.raises(RuntimeError, match="already running"):
        enqueuer.start()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"workers": 0}, ValueError, r"Received: workers=0"),
        ({"workers": 1.5}, TypeError, r"Received: workers=1.5"),
        ({"max_queue_size": -1}, ValueError, r"Received: max_queue_size=-1"),
    ],
)
def test_start_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        OrderedEnqueuer(EpochSequence(3)).start(**kwargs)


def test_use_multiprocessing_must_be_a_flag():
    assert OrderedEnqueuer(EpochSequence(3), use_multiprocessing=1).use_multiprocessing is True
    with pytest.raises(TypeError, match="Received: use_multiprocessing='yes'"):
        OrderedEnqueuer(EpochSequence(3), use_multiprocessing="yes")


def test_ordered_rejects_a_generator():
    with pytest.raises(TypeError, match="use GeneratorEnqueuer"):
        OrderedEnqueuer(iter([1, 2]))


def test_unpicklable_sequence_with_processes_raises_type_error_from_get(stopped_afterwards):
    seq = EpochSequence(3)
    seq.handle = threading.Lock()  # type: ignore[attr-defined]
    enqueuer = OrderedEnqueuer(seq, use_multiprocessing=True)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=1)
    with pytest.raises(TypeError, match="must be picklable"):
        next(enqueuer.get())


def test_iter_sequence_infinite_repeats_the_epochs():
    batches = iter_sequence_infinite(EpochSequence(2))
    assert [index for _, index, _ in (next(batches) for _ in range(5))] == [0, 1, 0, 1, 0]


# --- GeneratorEnqueuer ------------------------------------------------------------------


def counting_generator(n: int | None = None):
    i = 0
    while n is None or i < n:
        yield i
        i += 1


def test_generator_output_keeps_the_generator_order_with_several_threads(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(counting_generator())
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=4, max_queue_size=5)
    assert take(enqueuer, 300) == list(range(300))


def sleeping_generator(n: int):
    for i in range(n):
        time.sleep(0.02)  # releases the GIL inside next(): other threads would collide
        yield i


def test_plain_generator_is_never_run_by_two_threads_at_once(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(sleeping_generator(30))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=4, max_queue_size=8)
    assert list(enqueuer.get()) == list(range(30))


def test_finite_generator_ends_get_after_its_last_batch(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(counting_generator(7))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=3, max_queue_size=2)
    assert list(enqueuer.get()) == list(range(7))


def test_generator_crossing_a_loader_chunk_keeps_order(stopped_afterwards, monkeypatch):
    monkeypatch.setattr("kutils.enqueuers._GENERATOR_CHUNK", 4)
    enqueuer = GeneratorEnqueuer(counting_generator(10))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    assert list(enqueuer.get()) == list(range(10))


def failing_generator():
    yield 0
    yield 1
    raise ZeroDivisionError("bad batch")


def test_generator_error_reaches_get_with_its_type(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(failing_generator())
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=3)
    batches = enqueuer.get()
    assert [next(batches), next(batches)] == [0, 1]
    with pytest.raises(ZeroDivisionError, match="bad batch"):
        next(batches)
    assert not enqueuer.is_running()


class ThreadRecordingIterator:
    """A thread-safe iterator whose __next__ works outside its lock, like Keras 2's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.threads: set[str] = set()

    def __iter__(self):
        return self

    def __next__(self) -> int:
        with self.lock:
            self.count += 1
            value = self.count
            self.threads.add(threading.current_thread().name)
        time.sleep(0.05)
        return value


def test_iterator_objects_are_called_from_several_threads(stopped_afterwards):
    iterator = ThreadRecordingIterator()
    enqueuer = GeneratorEnqueuer(iterator)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=3, max_queue_size=6)
    assert sorted(take(enqueuer, 12)) == list(range(1, 13))
    assert len(iterator.threads) > 1


def test_generator_with_multiprocessing_warns_and_yields_each_batch_once(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(counting_generator(20), use_multiprocessing=True)
    stopped_afterwards.append(enqueuer)
    with pytest.warns(UserWarning, match="runs the generator in threads"):
        enqueuer.start(workers=3, max_queue_size=4)
    assert list(enqueuer.get()) == list(range(20))


def test_wait_time_warns_deprecation_as_keras_2():
    with pytest.warns(DeprecationWarning, match="`wait_time` is not used anymore."):
        GeneratorEnqueuer(counting_generator(), wait_time=0.05)


def test_generator_enqueuer_rejects_a_sequence():
    with pytest.raises(TypeError, match="use OrderedEnqueuer"):
        GeneratorEnqueuer(EpochSequence(3))


def test_generator_stop_leaves_no_thread():
    enqueuer = GeneratorEnqueuer(counting_generator())
    enqueuer.start(workers=3, max_queue_size=4)
    take(enqueuer, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enqueuer.stop()
    assert enqueuer_threads() == []
    assert not enqueuer.is_running()


class DyingSequence(EpochSequence):
    def __getitem__(self, index: int) -> tuple[int, int, int]:
        if index == 1 and multiprocessing.parent_process() is not None:
            os._exit(3)
        return super().__getitem__(index)


def test_worker_process_that_dies_raises_runtime_error_from_get(stopped_afterwards):
    enqueuer = OrderedEnqueuer(DyingSequence(4), use_multiprocessing=True)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=1, max_queue_size=2)
    with pytest.raises(RuntimeError):
        take(enqueuer, 4)
    assert not enqueuer.is_running()
    assert multiprocessing.active_children() == []


def test_max_queue_size_0_reads_a_whole_epoch_ahead(stopped_afterwards):
    seq = CountingSequence(12)
    enqueuer = OrderedEnqueuer(seq)
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=2, max_queue_size=0)
    take(enqueuer, 1)
    deadline = time.monotonic() + 10
    while len(seq.loaded) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(seq.loaded) == list(range(12))


def test_generator_enqueuer_refuses_an_unbounded_queue():
    with pytest.raises(ValueError, match=r"Received: max_queue_size=0"):
        GeneratorEnqueuer(counting_generator()).start(max_queue_size=0)


def test_restart_after_stop_begins_a_new_run(stopped_afterwards):
    enqueuer = OrderedEnqueuer(EpochSequence(3))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=1, max_queue_size=2)
    take(enqueuer, 2)
    enqueuer.stop(timeout=0)
    enqueuer.start(workers=2, max_queue_size=2)
    assert [index for _, index, _ in take(enqueuer, 4)] == [0, 1, 2, 0]


class LateLastItemIterator:
    """Thread-safe and finite; the call that would take the last item starts late.

    Another worker thread then takes the last item at a later position while the late
    call finds the iterator exhausted: Keras 2 kept such items (it drained the pending
    results after StopIteration).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.Lock()
        self.tickets = 0
        self.handed = 0

    def __iter__(self):
        return self

    def __next__(self) -> int:
        with self.lock:
            ticket = self.tickets
            self.tickets += 1
        if ticket == self.n - 1:
            time.sleep(0.3)
        with self.lock:
            if self.handed == self.n:
                raise StopIteration
            self.handed += 1
            return self.handed - 1


def test_finite_iterator_with_several_threads_loses_no_batch(stopped_afterwards):
    enqueuer = GeneratorEnqueuer(LateLastItemIterator(6))
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=3, max_queue_size=4)
    assert sorted(enqueuer.get()) == list(range(6))


class PlainBatches:
    """Not a Sequence: __len__ and __getitem__ only, no on_epoch_end."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return index


def test_ordered_takes_an_object_without_on_epoch_end(stopped_afterwards):
    enqueuer = OrderedEnqueuer(PlainBatches())
    stopped_afterwards.append(enqueuer)
    enqueuer.start(workers=1, max_queue_size=2)
    assert take(enqueuer, 5) == [0, 1, 0, 1, 0]


class StuckSequence(EpochSequence):
    """Batch 0 loads; every other batch blocks for a long time (a hung NFS read, a lock)."""

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        if index > 0:
            RELEASE.wait(STUCK_SECONDS)
        return super().__getitem__(index)


STUCK_SECONDS = 60
# Set at the end of a test to let this process's stuck threads finish (never set in the
# worker processes and scripts, where the source stays stuck).
RELEASE = threading.Event()


def stuck_generator():
    yield 0
    RELEASE.wait(STUCK_SECONDS)
    yield 1


@pytest.fixture
def released_afterwards():
    RELEASE.clear()
    yield
    RELEASE.set()


@THREADS_AND_PROCESSES
def test_stop_with_a_timeout_returns_while_the_sequence_is_stuck(
    use_multiprocessing, released_afterwards
):
    enqueuer = OrderedEnqueuer(StuckSequence(10), use_multiprocessing=use_multiprocessing)
    enqueuer.start(workers=2, max_queue_size=3)
    assert [index for _, index, _ in take(enqueuer, 1)] == [0]
    time.sleep(0.3)  # the workers are now inside the blocking __getitem__
    started = time.monotonic()
    enqueuer.stop(timeout=1)
    # The timeout bounds the wait; terminating stuck worker processes adds a little.
    assert time.monotonic() - started < 4
    assert not enqueuer.is_running()
    assert multiprocessing.active_children() == []


def test_stop_with_a_timeout_returns_while_the_generator_is_stuck(released_afterwards):
    enqueuer = GeneratorEnqueuer(stuck_generator())
    enqueuer.start(workers=1, max_queue_size=2)
    assert take(enqueuer, 1) == [0]
    time.sleep(0.3)
    started = time.monotonic()
    enqueuer.stop(timeout=1)
    assert time.monotonic() - started < 3


STUCK_SCRIPT = """
import sys, time
sys.path[:0] = {paths!r}
from test_enqueuers import StuckSequence, stuck_generator
from kutils import GeneratorEnqueuer, OrderedEnqueuer

if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "sequence":
        enqueuer = OrderedEnqueuer(StuckSequence(10))
    else:
        enqueuer = GeneratorEnqueuer(stuck_generator())
    enqueuer.start(workers=2, max_queue_size=3)
    next(enqueuer.get())
    time.sleep(0.3)
    enqueuer.stop(timeout=0.5)
    print("stopped", flush=True)
"""


@pytest.mark.parametrize("kind", ["sequence", "generator"])
def test_a_thread_stuck_in_the_source_does_not_keep_the_process_alive(tmp_path, kind):
    """After stop(timeout), the script ends: no worker thread blocks interpreter exit."""
    import subprocess
    import sys

    script = tmp_path / "stuck.py"
    paths = [os.path.dirname(__file__), *sys.path]
    script.write_text(STUCK_SCRIPT.format(paths=paths))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script), kind], capture_output=True, text=True, timeout=50
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "stopped"
    assert time.monotonic() - started < 30  # the source stays stuck for 60 s


def test_process_workers_live_across_epochs_and_see_on_epoch_end():
    """One set of worker processes for the whole run (not a new pool every epoch), and
    each epoch's batches still carry the state on_epoch_end left."""
    enqueuer = OrderedEnqueuer(EpochSequence(4), use_multiprocessing=True)
    enqueuer.start(workers=2, max_queue_size=2)
    try:
        batches = take(enqueuer, 3 * 4)
    finally:
        enqueuer.stop()
    assert [(epoch, index) for epoch, index, _ in batches] == [
        (epoch, index) for epoch in range(3) for index in range(4)
    ]
    pids = {pid for _, _, pid in batches}
    assert os.getpid() not in pids
    assert len(pids) <= 2, f"{len(pids)} worker processes served 3 epochs with workers=2"
