"""kutils.Sequence: Keras 2 Sequence subclasses driven by Keras 3's fit/evaluate/predict.

The sequences are defined at module level so that spawned worker processes can unpickle
them (they import this module by name).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import resource_tracker
from pathlib import Path

import keras
import numpy as np
import psutil
import pytest

from kutils import Sequence

pytestmark = pytest.mark.timeout(180)

FEATURES = 3


# --- sequences -------------------------------------------------------------------------


class CIFAR10Sequence(Sequence):
    """The Keras 2 docs' example, reading .npy files instead of images."""

    def __init__(self, x_set, y_set, batch_size):
        self.x, self.y = x_set, y_set
        self.batch_size = batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        batch_x = self.x[idx * self.batch_size : (idx + 1) * self.batch_size]
        batch_y = self.y[idx * self.batch_size : (idx + 1) * self.batch_size]
        return np.array([np.load(file_name) for file_name in batch_x]), np.array(batch_y)


class LoggingSequence(Sequence):
    """Batches of sample ids; every __getitem__ appends 'epoch index ids' to a log file.

    A file, not a list, so that worker processes (which get a copy) can report too.
    ``on_epoch_end`` counts epochs and, with ``reshuffle``, draws a new sample order.
    ``lengths`` gives the number of batches per epoch (the last one repeats).
    """

    def __init__(self, log_path, lengths=(4,), batch_size=2, reshuffle=False, fail_at=None):
        self.log_path = str(log_path)
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.reshuffle = reshuffle
        self.fail_at = fail_at
        self.epoch = 0
        self.order = np.arange(max(self.lengths) * batch_size)

    def __len__(self):
        return self.lengths[min(self.epoch, len(self.lengths) - 1)]

    def __getitem__(self, index):
        if index == self.fail_at:
            raise LookupError(f"cannot read batch {index} of epoch {self.epoch}")
        ids = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        with open(self.log_path, "a") as log:
            log.write(f"{self.epoch} {index} {' '.join(map(str, ids))}\n")
        x = np.repeat(ids[:, None], FEATURES, axis=1).astype("float32") / 10
        return x, (ids % 2).astype("float32")[:, None]

    def on_epoch_end(self):
        self.epoch += 1
        if self.reshuffle:
            self.order = np.random.default_rng(self.epoch).permutation(self.order)


class ThreadSequence(LoggingSequence):
    workers = 3


class ProcessSequence(LoggingSequence):
    workers = 1
    use_multiprocessing = True


class SuperInitSequence(LoggingSequence):
    def __init__(self, log_path, **kwargs):
        loading = {k: kwargs.pop(k) for k in ("workers", "use_multiprocessing") if k in kwargs}
        super().__init__(log_path, **kwargs)
        Sequence.__init__(self, **loading)


class WeightedSequence(Sequence):
    def __init__(self, weight):
        self.weight = weight

    def __len__(self):
        return 3

    def __getitem__(self, index):
        rng = np.random.default_rng(index)
        x = rng.normal(size=(4, FEATURES)).astype("float32")
        return x, np.ones((4, 1), "float32"), np.full((4,), self.weight, "float32")


class StructuredSequence(Sequence):
    def __init__(self, structure):
        self.structure = structure

    def __len__(self):
        return 2

    def __getitem__(self, index):
        a = np.full((4, 2), index, "float32")
        b = np.full((4, 1), index, "float32")
        y = np.zeros((4, 1), "float32")
        if self.structure == "array":
            return np.concatenate([a, b], axis=1), y
        if self.structure == "list":
            return [a, b], y
        return {"a": a, "b": b}, y


class UnpicklableSequence(ProcessSequence):
    def __init__(self, log_path):
        super().__init__(log_path)
        self.lock = threading.Lock()


class DyingSequence(ProcessSequence):
    def __getitem__(self, index):
        if index == 2 and self.epoch == 0 and multiprocessing.parent_process() is not None:
            os._exit(3)  # a crash in native code or the OOM killer, as seen from Python
        return super().__getitem__(index)


# The number of the write system call, as /proc/<pid>/task/<tid>/syscall shows it.
WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64}.get(platform.machine())


def kill_when_writing():
    """SIGKILL this process, from a watching thread, while another of its threads is
    inside write(): the only writes left in a worker are to its results pipe."""

    def watch():
        me = threading.get_native_id()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for task in Path("/proc/self/task").iterdir():
                try:
                    call = (task / "syscall").read_text().split()
                except OSError:
                    continue
                if int(task.name) != me and call and call[0] == str(WRITE_SYSCALL):
                    os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.0002)

    threading.Thread(target=watch, daemon=True).start()


class KilledMidSendSequence(ProcessSequence):
    """In a worker, batch 2 is 40 MB, and the worker is SIGKILLed (as by the out-of-memory
    killer) while it is writing the batch into the results pipe."""

    def __getitem__(self, index):
        batch = super().__getitem__(index)  # its log line is written before the watch
        if index == 2 and self.epoch == 0 and multiprocessing.parent_process() is not None:
            rows = 40 * 2**20 // (4 * FEATURES)
            kill_when_writing()
            return np.ones((rows, FEATURES), "float32"), np.ones((rows, 1), "float32")
        return batch


class PidSequence(LoggingSequence):
    """Also logs 'epoch pid' for every batch to ``<log>.pid`` (who served it)."""

    workers = 2
    use_multiprocessing = True

    def __getitem__(self, index):
        with open(f"{self.log_path}.pid", "a") as log:
            log.write(f"{self.epoch} {os.getpid()}\n")
        return super().__getitem__(index)


def serving_pids(log):
    """{epoch: set of pids that served a batch of that epoch}."""
    pids: dict[int, set[int]] = {}
    for line in Path(f"{log}.pid").read_text().splitlines():
        epoch, pid = (int(v) for v in line.split())
        pids.setdefault(epoch, set()).add(pid)
    return pids


class StepsRecorder(keras.callbacks.Callback):
    """Records ``self.params['steps']`` and the batches seen in each epoch."""

    def __init__(self):
        super().__init__()
        self.steps_at_begin, self.steps_at_end, self.batches = [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.steps_at_begin.append(self.params["steps"])
        self.batches.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.batches[-1] += 1

    def on_epoch_end(self, epoch, logs=None):
        self.steps_at_end.append(self.params["steps"])


class CountingCallback(keras.callbacks.Callback):
    def __init__(self, stop_at=None, interrupt_at=None):
        super().__init__()
        self.stop_at = stop_at
        self.interrupt_at = interrupt_at
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1
        if self.batches == self.interrupt_at:
            raise KeyboardInterrupt
        if self.batches == self.stop_at:
            self.model.stop_training = True


# --- helpers ---------------------------------------------------------------------------


def small_model(inputs=FEATURES):
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def read_log(path):
    """[(epoch, index, ids)] in the order the batches were read."""
    if not Path(path).exists():
        return []
    rows = []
    for line in Path(path).read_text().splitlines():
        epoch, index, *ids = (int(v) for v in line.split())
        rows.append((epoch, index, ids))
    return rows


def served(path, epoch):
    return [index for e, index, _ in read_log(path) if e == epoch]


def worker_processes():
    resource_tracker.ensure_running()  # started once per session; not a worker
    tracker = resource_tracker._resource_tracker._pid
    return [p for p in psutil.Process().children(recursive=True) if p.pid != tracker]


def kutils_threads():
    return [t for t in threading.enumerate() if t.name.startswith("kutils_sequence")]


# --- the base class --------------------------------------------------------------------


def test_base_class_can_be_instantiated():
    seq = Sequence()
    assert isinstance(seq, keras.utils.PyDataset)
    assert seq.use_sequence_api is True


@pytest.mark.parametrize(
    "call", [len, lambda s: s[0], lambda s: list(s)], ids=["len", "getitem", "iter"]
)
def test_base_class_methods_raise_not_implemented(call):
    with pytest.raises(NotImplementedError, match="must implement"):
        call(Sequence())


def test_subclass_without_super_init_reads_loading_options_without_warning():
    seq = LoggingSequence("unused.log")
    assert (seq.workers, seq.use_multiprocessing, seq.max_queue_size) == (1, False, 10)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(ThreadSequence, (3, False)), (ProcessSequence, (1, True))],
)
def test_class_attributes_set_loading_options(cls, expected):
    seq = cls("unused.log")
    assert (seq.workers, seq.use_multiprocessing) == expected


def test_super_init_sets_loading_options():
    seq = SuperInitSequence("unused.log", workers=4, use_multiprocessing=True)
    assert (seq.workers, seq.use_multiprocessing, seq.max_queue_size) == (4, True, 10)


def test_iteration_yields_every_batch_in_order(tmp_path):
    seq = LoggingSequence(tmp_path / "log", lengths=(5,))
    batches = list(seq)
    assert [int(x[0, 0] * 10) for x, _ in batches] == [0, 2, 4, 6, 8]
    assert served(tmp_path / "log", 0) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"workers": -1}, ValueError, r"Received: workers=-1"),
        ({"workers": 2.5}, TypeError, r"Received: workers=2.5"),
        ({"max_queue_size": 0}, ValueError, r"Received: max_queue_size=0"),
        ({"use_multiprocessing": "yes"}, TypeError, r"Received: use_multiprocessing='yes'"),
    ],
)
def test_bad_loading_options_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        Sequence(**kwargs)


def test_bad_loading_option_set_on_instance_is_rejected_by_fit(tmp_path):
    seq = LoggingSequence(tmp_path / "log")
    seq.workers = "4"
    with pytest.raises(TypeError, match=r"Received: workers='4'"):
        small_model().fit(seq, verbose=0)


# --- training --------------------------------------------------------------------------


def test_cifar10_style_sequence_reading_npy_files_trains_with_fit(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, FEATURES)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], "float32")
    files = []
    for i, sample in enumerate(x):
        files.append(str(tmp_path / f"sample_{i}.npy"))
        np.save(files[-1], sample)
    seq = CIFAR10Sequence(files, y, batch_size=8)
    model = small_model()
    history = model.fit(seq, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 5
    assert losses[-1] < losses[0] / 4
    assert model.predict(seq, verbose=0).shape == (40, 1)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (LoggingSequence, {}),
        (ThreadSequence, {}),
        (SuperInitSequence, {"workers": 2}),
        (ProcessSequence, {}),
        (SuperInitSequence, {"workers": 2, "use_multiprocessing": True}),
    ],
    ids=["main-thread", "threads-class-attr", "threads-super-init", "process", "processes-super"],
)
def test_fit_reads_every_batch_once_per_epoch(tmp_path, cls, kwargs):
    log = tmp_path / "log"
    seq = cls(log, lengths=(4,), **kwargs)
    small_model().fit(seq, epochs=2, verbose=0)
    assert seq.epoch == 2
    for epoch in (1,):
        assert sorted(served(log, epoch)) == [0, 1, 2, 3]
    # epoch 0 also has the two batches TensorFlow reads first to learn the shapes
    assert sorted(served(log, 0)) == [0, 0, 1, 1, 2, 3]


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_order_of_batches_follows_shuffle(tmp_path, shuffle):
    log = tmp_path / "log"
    seq = LoggingSequence(log, lengths=(12,))
    small_model().fit(seq, epochs=1, verbose=0, shuffle=shuffle)
    order = served(log, 0)[2:]
    assert sorted(order) == list(range(12))
    assert (order == list(range(12))) is (not shuffle)


@pytest.mark.parametrize(
    "cls", [LoggingSequence, ThreadSequence, ProcessSequence], ids=["main", "threads", "process"]
)
def test_workers_deliver_batches_in_order(tmp_path, cls):
    model = small_model()
    model.set_weights([np.array([[10.0], [0.0], [0.0]], "float32"), np.zeros(1, "float32")])
    predictions = model.predict(cls(tmp_path / "log", lengths=(12,)), verbose=0)
    np.testing.assert_allclose(predictions[:, 0], np.arange(24), atol=1e-4)


# --- on_epoch_end ----------------------------------------------------------------------


def run_fit(seq, epochs):
    small_model().fit(seq, epochs=epochs, verbose=0)


def run_fit_with_validation(seq, epochs):
    small_model().fit(
        LoggingSequence(Path(seq.log_path).with_suffix(".t")),
        epochs=epochs,
        validation_data=seq,
        verbose=0,
    )


def run_evaluate(seq, epochs):
    small_model().evaluate(seq, verbose=0)


def run_predict(seq, epochs):
    small_model().predict(seq, verbose=0)


@pytest.mark.parametrize(
    ("run", "epochs", "expected"),
    [
        (run_fit, 1, 1),
        (run_fit, 3, 3),
        (run_fit_with_validation, 2, 2),
        (run_evaluate, 1, 1),
        (run_predict, 1, 1),
    ],
    ids=["fit-1", "fit-3", "validation-2", "evaluate", "predict"],
)
def test_on_epoch_end_runs_once_per_epoch(tmp_path, run, epochs, expected):
    seq = LoggingSequence(tmp_path / "log")
    run(seq, epochs)
    assert seq.epoch == expected


def test_on_epoch_end_skipped_for_epoch_stopped_early(tmp_path):
    seq = LoggingSequence(tmp_path / "log", lengths=(4,))
    small_model().fit(seq, epochs=3, verbose=0, callbacks=[CountingCallback(stop_at=6)])
    assert seq.epoch == 1  # epoch 2 was stopped after its second batch, as in Keras 2


@pytest.mark.parametrize(
    "cls", [LoggingSequence, ThreadSequence, ProcessSequence], ids=["main", "threads", "process"]
)
def test_shuffling_in_on_epoch_end_takes_effect(tmp_path, cls):
    log = tmp_path / "log"
    seq = cls(log, lengths=(4,), reshuffle=True)
    small_model().fit(seq, epochs=2, verbose=0, shuffle=False)
    # sorted by index: worker threads log in the order they start
    rows = sorted((index, ids) for epoch, index, ids in read_log(log) if epoch == 1)
    expected_order = np.random.default_rng(1).permutation(np.arange(8))
    assert [index for index, _ in rows] == [0, 1, 2, 3]
    assert [i for _, ids in rows for i in ids] == expected_order.tolist()
    assert expected_order.tolist() != list(range(8))


@pytest.mark.parametrize("cls", [LoggingSequence, ThreadSequence], ids=["main", "threads"])
def test_length_changing_between_epochs_is_read_each_epoch(tmp_path, cls):
    log = tmp_path / "log"
    seq = cls(log, lengths=(3, 4, 2), batch_size=1)
    history = small_model().fit(seq, epochs=3, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 3
    # worker threads log in the order they start, so compare sets of batches
    assert sorted(served(log, 0)) == [0, 0, 1, 1, 2]  # 0 and 1 also read for the shapes
    assert sorted(served(log, 1)) == [0, 1, 2, 3]
    assert sorted(served(log, 2)) == [0, 1]


@pytest.mark.parametrize(
    "cls", [LoggingSequence, ThreadSequence, ProcessSequence], ids=["main", "threads", "process"]
)
def test_callbacks_see_the_new_steps_when_the_length_changes(tmp_path, cls):
    seq = cls(tmp_path / "log", lengths=(3, 5, 2), batch_size=1)
    recorder = StepsRecorder()
    small_model().fit(seq, epochs=3, verbose=0, shuffle=False, callbacks=[recorder])
    assert recorder.batches == [3, 5, 2]
    assert recorder.steps_at_begin == [3, 5, 2]
    assert recorder.steps_at_end == [3, 5, 2]


def test_validation_length_change_leaves_training_steps_alone(tmp_path):
    train = LoggingSequence(tmp_path / "train", lengths=(3,), batch_size=1)
    validation = LoggingSequence(tmp_path / "val", lengths=(2, 4, 1), batch_size=1)
    recorder = StepsRecorder()
    small_model().fit(train, epochs=3, verbose=0, validation_data=validation, callbacks=[recorder])
    assert recorder.steps_at_begin == [3, 3, 3]
    assert recorder.steps_at_end == [3, 3, 3]


def test_process_workers_start_once_per_fit_and_see_on_epoch_end(tmp_path):
    log, val_log = tmp_path / "log", tmp_path / "val"
    seq = PidSequence(log, lengths=(4,), reshuffle=True)
    validation = PidSequence(val_log, lengths=(2,))
    small_model().fit(seq, epochs=3, verbose=0, shuffle=False, validation_data=validation)
    pids = serving_pids(log)
    me = os.getpid()
    workers = set().union(*pids.values()) - {me}  # the main process reads the shapes
    # The same (at most two) processes served all three epochs: workers restarted per
    # epoch would show up to six. Under load one worker may take every task, so one is fine.
    assert 1 <= len(workers) <= 2, pids
    assert all(pids[epoch] - {me} <= workers for epoch in (0, 1, 2))
    val_workers = set().union(*serving_pids(val_log).values()) - {me}
    assert len(val_workers) <= 2 and not val_workers & workers
    assert sorted(served(val_log, 1)) == sorted(served(val_log, 2)) == [0, 1]
    # the live workers got each epoch's reshuffled order (on_epoch_end ran in the parent)
    for epoch in (1, 2):
        rows = sorted((index, ids) for e, index, ids in read_log(log) if e == epoch)
        order = np.arange(8)
        for e in range(1, epoch + 1):
            order = np.random.default_rng(e).permutation(order)
        assert [i for _, ids in rows for i in ids] == order.tolist()
    assert multiprocessing.active_children() == []


def test_evaluate_and_predict_stop_their_process_workers(tmp_path):
    before = worker_processes()
    seq = PidSequence(tmp_path / "log", lengths=(3,))
    model = small_model()
    model.evaluate(seq, verbose=0)
    assert worker_processes() == before
    model.predict(seq, verbose=0)
    assert worker_processes() == before
    assert multiprocessing.active_children() == []


def test_validation_steps_reads_one_stream_and_no_unused_batch_without_workers(tmp_path):
    train = LoggingSequence(tmp_path / "train", lengths=(2,))
    validation = LoggingSequence(tmp_path / "val", lengths=(6,))
    validation.workers = 0
    small_model().fit(train, epochs=4, verbose=0, validation_data=validation, validation_steps=2)
    reads = [index for _, index, _ in read_log(tmp_path / "val")]
    # batches 0 and 1 for the shapes, then each pass goes on where the last one stopped
    # (Keras 2's one validation stream), wrapping at the end, and reads nothing more
    assert reads == [0, 1, 0, 1, 2, 3, 4, 5, 0, 1]


def test_steps_per_epoch_continues_through_the_sequence_with_threads(tmp_path):
    log = tmp_path / "log"
    seq = ThreadSequence(log, lengths=(4,))
    small_model().fit(seq, epochs=2, steps_per_epoch=2, verbose=0, shuffle=False)
    # two epochs of two steps read each batch once (0 and 1 also read for the shapes)
    assert sorted(index for _, index, _ in read_log(log)) == [0, 0, 1, 1, 2, 3]


# --- batch formats ---------------------------------------------------------------------


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_sample_weights_from_batches_are_applied(weight):
    model = small_model()
    before = [w.copy() for w in model.get_weights()]
    seq = WeightedSequence(weight)
    model.fit(seq, epochs=1, verbose=0)
    changed = any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert changed is (weight > 0)
    loss = model.evaluate(seq, verbose=0)
    assert (loss == 0.0) is (weight == 0.0)


@pytest.mark.parametrize("structure", ["array", "list", "dict"])
def test_batches_may_hold_arrays_lists_or_dicts(structure):
    a = keras.Input((2,), name="a")
    b = keras.Input((1,), name="b")
    if structure == "array":
        inputs = keras.Input((3,))
        outputs = keras.layers.Dense(1, name="out")(inputs)
    else:
        inputs = [a, b] if structure == "list" else {"a": a, "b": b}
        merged = keras.layers.Concatenate()([a, b])
        outputs = keras.layers.Dense(1, name="out")(merged)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    seq = StructuredSequence(structure)
    history = model.fit(seq, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(seq, verbose=0).shape == (8, 1)


# --- errors and clean-up ---------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [LoggingSequence, ThreadSequence, ProcessSequence], ids=["main", "threads", "process"]
)
def test_getitem_error_reaches_fit_caller_with_type_and_message(tmp_path, cls):
    seq = cls(tmp_path / "log", lengths=(4,), fail_at=3)
    with pytest.raises(LookupError) as info:
        small_model().fit(seq, epochs=1, verbose=0, shuffle=False)
    assert type(info.value) is LookupError
    assert str(info.value) == "cannot read batch 3 of epoch 0"
    if cls is ProcessSequence:
        assert any("Raised in a Sequence worker process" in n for n in info.value.__notes__)


@pytest.mark.parametrize("run", [run_evaluate, run_predict], ids=["evaluate", "predict"])
def test_getitem_error_reaches_evaluate_and_predict_callers(tmp_path, run):
    seq = ThreadSequence(tmp_path / "log", lengths=(4,), fail_at=2)
    with pytest.raises(LookupError, match="cannot read batch 2"):
        run(seq, 1)


def test_dead_worker_process_raises_instead_of_hanging(tmp_path):
    seq = DyingSequence(tmp_path / "log", lengths=(4,))
    with pytest.raises(RuntimeError, match=r"exited with code 3 while loading batches"):
        small_model().fit(seq, epochs=1, verbose=0, shuffle=False)
    assert multiprocessing.active_children() == []


@pytest.mark.skipif(
    WRITE_SYSCALL is None or not Path("/proc/self/syscall").exists(),
    reason="needs Linux /proc/<pid>/task/<tid>/syscall on x86_64 or aarch64",
)
def test_worker_killed_mid_send_raises_in_fit_and_leaves_no_process(tmp_path):
    before = worker_processes()
    seq = KilledMidSendSequence(tmp_path / "log", lengths=(4,))
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"exited with code -{signal.SIGKILL} while loading"):
        small_model().fit(seq, epochs=1, verbose=0, shuffle=False)
    assert time.monotonic() - started < 120
    assert worker_processes() == before
    assert multiprocessing.active_children() == []


def test_unpicklable_sequence_with_spawned_processes_gets_a_clear_error(tmp_path):
    seq = UnpicklableSequence(tmp_path / "log")
    seq.start_method = "spawn"
    with pytest.raises(TypeError, match=r"must be picklable.*Received: sequence="):
        small_model().fit(seq, epochs=1, verbose=0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is the Linux default")
def test_unpicklable_sequence_works_with_forked_processes_as_in_keras_2(tmp_path):
    log = tmp_path / "log"
    seq = UnpicklableSequence(log)
    seq.reshuffle = True
    small_model().fit(seq, epochs=2, verbose=0, shuffle=False)
    rows = sorted((index, ids) for epoch, index, ids in read_log(log) if epoch == 1)
    expected = np.random.default_rng(1).permutation(np.arange(8)).tolist()
    assert [i for _, ids in rows for i in ids] == expected  # re-forked after on_epoch_end
    assert multiprocessing.active_children() == []


UNGUARDED_SCRIPT = """
import numpy as np
from keras.models import Sequential
from keras.layers import Dense, Input
from kutils import Sequence


class DataGenerator(Sequence):
    def __init__(self, n, batch_size=8):
        self.n, self.batch_size = n, batch_size
        self.indexes = np.arange(n)

    def __len__(self):
        return self.n // self.batch_size

    def __getitem__(self, index):
        ids = self.indexes[index * self.batch_size : (index + 1) * self.batch_size]
        return ids[:, None].astype("float32") / self.n, (ids % 2).astype("float32")

    def on_epoch_end(self):
        np.random.shuffle(self.indexes)

START

model = Sequential([Input((1,)), Dense(1)])
model.compile(optimizer="sgd", loss="mse")
generator = DataGenerator(64)
generator.workers = 6
generator.use_multiprocessing = True
model.fit(generator, validation_data=DataGenerator(32), epochs=2, verbose=0)
print("TRAINED")
"""


def run_script(tmp_path, start):
    script = tmp_path / "train.py"
    script.write_text(UNGUARDED_SCRIPT.replace("START", start))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=170,
        env=env,
        cwd=tmp_path,
    )
    return result, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is the Linux default")
def test_unguarded_tutorial_script_with_process_workers_trains(tmp_path):
    result, _ = run_script(tmp_path, "")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TRAINED" in result.stdout


@pytest.mark.slow
def test_unguarded_script_with_spawn_fails_fast_naming_the_main_guard(tmp_path):
    result, seconds = run_script(tmp_path, 'DataGenerator.start_method = "spawn"')
    assert result.returncode != 0
    assert "TRAINED" not in result.stdout
    # kutils's own error from the parent, not a worker's crash blamed on memory
    assert "has no `if __name__ == '__main__':` guard" in result.stderr
    assert "out of memory" not in result.stderr
    assert seconds < 120  # TensorFlow's import included; no worker ran the script


def fit_returns(seq):
    small_model().fit(seq, epochs=2, verbose=0)


def fit_raises(seq):
    seq.fail_at = 3
    with pytest.raises(LookupError):
        small_model().fit(seq, epochs=2, verbose=0, shuffle=False)


def fit_interrupted(seq):
    with pytest.raises(KeyboardInterrupt):
        small_model().fit(seq, epochs=2, verbose=0, callbacks=[CountingCallback(interrupt_at=2)])


class RaiseAtEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise ArithmeticError("a callback failed between epochs")


def fit_callback_raises(seq):
    validation = SuperInitSequence(
        Path(seq.log_path).with_suffix(".v"), workers=seq.workers, use_multiprocessing=True
    )
    validation.use_multiprocessing = seq.use_multiprocessing
    with pytest.raises(ArithmeticError):
        small_model().fit(
            seq, epochs=2, verbose=0, validation_data=validation, callbacks=[RaiseAtEpochEnd()]
        )


def fit_stopped_early(seq):
    small_model().fit(seq, epochs=2, verbose=0, callbacks=[CountingCallback(stop_at=2)])


@pytest.mark.parametrize(
    "outcome",
    [fit_returns, fit_raises, fit_interrupted, fit_stopped_early, fit_callback_raises],
    ids=["returns", "raises", "interrupted", "stopped-early", "callback-raises"],
)
def test_no_worker_process_left_after_fit(tmp_path, outcome):
    before = worker_processes()
    seq = SuperInitSequence(tmp_path / "log", lengths=(6,), workers=2, use_multiprocessing=True)
    outcome(seq)
    assert worker_processes() == before
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    "outcome",
    [fit_returns, fit_raises, fit_interrupted, fit_stopped_early, fit_callback_raises],
    ids=["returns", "raises", "interrupted", "stopped-early", "callback-raises"],
)
def test_no_worker_thread_left_after_fit(tmp_path, outcome):
    seq = ThreadSequence(tmp_path / "log", lengths=(6,))
    outcome(seq)
    assert kutils_threads() == []
