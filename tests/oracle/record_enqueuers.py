"""Oracle cases for ``OrderedEnqueuer`` and ``GeneratorEnqueuer`` (threads): what
``get()`` hands out over several epochs, when ``on_epoch_end`` runs, and the
attributes and errors of the API. Cases with one worker thread are deterministic."""

from __future__ import annotations

import itertools

import numpy as np

import _oracle
import _shim

AREA = "enqueuers"


class Numbered(_shim.utils.Sequence):
    def __init__(self, n, log):
        self.n = n
        self.log = log
        self.epochs = 0

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return np.array([index, self.epochs])

    def on_epoch_end(self):
        self.epochs += 1
        self.log.append("on_epoch_end")


def _ordered(n, take, workers, max_queue_size, shuffle=False):
    log = []
    enqueuer = _shim.utils.OrderedEnqueuer(Numbered(n, log), shuffle=shuffle)
    enqueuer.start(workers=workers, max_queue_size=max_queue_size)
    try:
        stream = enqueuer.get()
        batches = [next(stream).tolist() for _ in range(take)]
    finally:
        enqueuer.stop()
    if shuffle:
        # The order is random; what is fixed is which batches each epoch holds.
        whole_epochs = batches[: (take // n) * n]
        return sorted(map(tuple, whole_epochs))
    return batches


def _counting(limit):
    for i in range(limit):
        yield np.array([i])


def _generator(take, workers, limit=1000):
    enqueuer = _shim.utils.GeneratorEnqueuer(_counting(limit))
    enqueuer.start(workers=workers, max_queue_size=4)
    try:
        stream = enqueuer.get()
        out = []
        for _ in range(take):
            try:
                out.append(int(next(stream)[0]))
            except StopIteration:
                out.append("stop")
                break
        return out
    finally:
        enqueuer.stop()


def cases():
    for n, take, queue in itertools.product((1, 3, 5), (1, 4, 11), (1, 10)):
        yield (
            f"ordered/n={n}/take={take}/queue={queue}",
            lambda n=n, t=take, q=queue: _ordered(n, t, 1, q),
        )
    for n, take in itertools.product((3, 4), (3, 8)):
        yield (
            f"ordered-shuffle/n={n}/take={take}",
            lambda n=n, t=take: _ordered(n, t, 1, 10, shuffle=True),
        )
    for take, limit in itertools.product((1, 5), (3, 1000)):
        yield (
            f"generator/take={take}/limit={limit}",
            lambda t=take, li=limit: _generator(t, 1, li),
        )
    E = _shim.utils
    yield (
        "api/ordered-is-sequence-enqueuer",
        lambda: issubclass(E.OrderedEnqueuer, _shim.legacy("data_utils").SequenceEnqueuer),
    )
    yield (
        "api/generator-is-sequence-enqueuer",
        lambda: issubclass(E.GeneratorEnqueuer, _shim.legacy("data_utils").SequenceEnqueuer),
    )
    yield "api/not-running-before-start", lambda: E.OrderedEnqueuer(Numbered(2, [])).is_running()
    yield "api/running-after-start", lambda: _running()
    yield "api/defaults", lambda: _defaults()
    yield "api/sequence-abstract", lambda: _shim.utils.Sequence()
    yield "api/sequence-iter", lambda: [b.tolist() for b in Numbered(3, [])]


def _running():
    enqueuer = _shim.utils.OrderedEnqueuer(Numbered(2, []))
    enqueuer.start(workers=1)
    try:
        return enqueuer.is_running()
    finally:
        enqueuer.stop()


def _defaults():
    enqueuer = _shim.utils.OrderedEnqueuer(Numbered(2, []))
    return [enqueuer.use_multiprocessing, enqueuer.shuffle]


_oracle.main(__name__, AREA, cases)
