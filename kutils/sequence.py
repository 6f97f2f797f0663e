"""``Sequence``: the Keras 2 base class for batch datasets, for Keras 3's ``fit``.

A Keras 2 ``Sequence`` subclass (``__len__``, ``__getitem__`` returning a whole batch,
optionally ``on_epoch_end``, and an ``__init__`` that never calls ``super().__init__()``)
derives from ``kutils.Sequence`` instead and runs unchanged with ``model.fit``,
``evaluate`` and ``predict`` of Keras 3, with the Keras 2 epoch semantics.

This module imports Keras at the top: ``import kutils`` never imports it; the first use
of ``kutils.Sequence`` does. Its behaviour in fit lives in ``kutils/_sequence_adapter.py``.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterator
from typing import Any

import keras

from kutils import _keras_patches, _sequence_adapter, _sequence_hooks

__all__ = ["Sequence"]


class _RoutedPyDataset(keras.utils.PyDataset):
    """Installs kutils's fit hooks (``_keras_patches``) when an instance is made.

    Keras 2 subclasses never call ``super().__init__()``, so ``__new__`` does it (once
    per process): from then on fit gives a kutils Sequence its own adapter. A separate
    base class, so that ``inspect.signature(Sequence)`` still shows ``__init__``.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        _keras_patches.install_fit_hooks()
        return super().__new__(cls)


class Sequence(_RoutedPyDataset):
    """Base object for fitting to a sequence of data, such as a dataset (Keras 2 API).

    Every ``Sequence`` implements ``__getitem__`` (return batch ``index``: a tuple
    ``(x, y)`` or ``(x, y, sample_weight)``, where ``x`` and ``y`` are arrays, lists of
    arrays or dicts of arrays) and ``__len__`` (the number of batches). Override
    ``on_epoch_end`` to change the data between epochs, for example to shuffle it.
    Pass the sequence to ``model.fit``, ``evaluate`` or ``predict``; each batch is read
    exactly once per epoch.

    Subclasses need not call ``super().__init__()``: Keras 2 subclasses never did, and
    they run without warnings. To load batches in parallel, call
    ``super().__init__(workers=4, use_multiprocessing=False, max_queue_size=10)``, set
    these as class attributes (``workers = 4``), or set them on an instance
    (``seq.workers = 4``): Keras 3's ``fit`` no longer accepts these arguments.

    Args:
        workers: how many workers load batches during ``fit``, ``evaluate`` and
            ``predict``. ``0`` or ``1`` loads them in the training loop's own thread
            (with TensorFlow's prefetching), as Keras 3 does.
        use_multiprocessing: load batches in worker processes instead of threads. On
            Linux they are forked, as in Keras 2 (scripts without a ``__main__`` guard
            work); set ``start_method = "spawn"`` on the sequence (the only method on
            macOS and Windows) to spawn them: the sequence must then be picklable, its
            class importable by name, and the script guarded by
            ``if __name__ == "__main__":``.
        max_queue_size: how many batches workers may load ahead of the model.

    Raises:
        ValueError: an argument is out of range (for example ``workers=-1``).
        TypeError: an argument has the wrong type (for example ``workers=2.5``).

    Semantics in ``fit``, ``evaluate`` and ``predict`` (both Keras 2 and kutils):

    * ``on_epoch_end`` runs once at the end of every epoch of ``fit`` (after the last
      batch, before validation), once at the end of each validation pass over a
      validation ``Sequence``, once at the end of ``evaluate`` and once at the end of
      ``predict``. Keras 3 also calls it before the first epoch of ``fit`` and before
      every ``evaluate`` and validation pass; kutils drops those calls. An epoch ended
      early by ``stop_training`` gets no ``on_epoch_end``, as in Keras 2.
    * ``len()`` is read again at the start of every epoch, so a sequence may change its
      length in ``on_epoch_end`` (Keras 3 keeps the first length for the whole ``fit``).
    * With ``shuffle=True`` (the default of ``fit``) the order of the batches is
      shuffled each epoch with Python's ``random``; ``evaluate`` and ``predict`` never
      shuffle.
    * An exception raised by ``__getitem__``, in a thread or a worker process, reaches
      the caller of ``fit`` with its own type and message (Keras 3 with TensorFlow turns
      it into ``tensorflow.errors.UnknownError`` or ``InvalidArgumentError``); the
      worker's traceback is attached as the cause.
    * Worker threads and processes live for one ``fit``/``evaluate``/``predict`` call
      (a validation Sequence gets its own, kept across validation passes) and are
      stopped and joined when the call returns, raises or is interrupted. After each
      ``on_epoch_end`` worker processes get the sequence's new state (pickled again).
    * When ``len()`` changes between epochs, callbacks get ``set_params`` with the new
      ``steps`` before ``on_epoch_begin``, as in Keras 2.3.1.
    * Batches may hold lists of arrays (``([x1, x2], y)``): they reach Keras as tuples,
      which Keras 3 with TensorFlow needs.

    Differences from Keras 2: TensorFlow reads batches 0 and 1 once more before the
    first epoch, to learn their shapes and dtypes; later batches must have the same
    structure and dtypes (the batch size may differ). ``on_epoch_end`` runs in the
    thread that called ``fit``, not in a background thread.

    Example:
        >>> import math
        >>> import numpy as np
        >>> class ArraySequence(Sequence):
        ...     def __init__(self, x, y, batch_size):
        ...         self.x, self.y, self.batch_size = x, y, batch_size
        ...     def __len__(self):
        ...         return math.ceil(len(self.x) / self.batch_size)
        ...     def __getitem__(self, idx):
        ...         batch = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
        ...         return self.x[batch], self.y[batch]
        >>> seq = ArraySequence(np.zeros((10, 3)), np.zeros(10), batch_size=4)
        >>> len(seq), [len(x) for x, y in seq]
        (3, [4, 4, 2])
    """

    # Keras 2 subclasses never call super().__init__(); PyDataset looks these up with
    # hasattr() and warns when they are missing, so class-level defaults keep it quiet.
    _workers: int = 1
    _use_multiprocessing: bool = False
    _max_queue_size: int = 10
    #: How worker processes start: ``None`` forks on Linux (as Keras 2 did) and spawns
    #: elsewhere; ``"spawn"`` or ``"forkserver"`` to choose (see docs/sequence.md).
    start_method: str | None = None
    #: Keras 2.3.1 marks Sequences with this attribute (``training_utils.is_sequence``).
    use_sequence_api: bool = True

    def __init__(
        self,
        *,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ) -> None:
        check_loading_options(workers, use_multiprocessing, max_queue_size)
        super().__init__(
            workers=workers,
            use_multiprocessing=use_multiprocessing,
            max_queue_size=max_queue_size,
        )

    def __getitem__(self, index: int) -> Any:
        """Gets batch at position ``index``.

        Args:
            index: position of the batch in the Sequence.

        Returns:
            A batch, ``(x, y)`` or ``(x, y, sample_weight)``.
        """
        msg = f"{type(self).__name__} must implement __getitem__(index) returning a batch."
        raise NotImplementedError(msg)

    def __len__(self) -> int:
        """Number of batches in the Sequence."""
        msg = f"{type(self).__name__} must implement __len__() returning the number of batches."
        raise NotImplementedError(msg)

    def on_epoch_end(self) -> None:
        """Method called at the end of every epoch; does nothing unless overridden."""

    def __iter__(self) -> Iterator[Any]:
        """Yield every batch in order, reading the length once, at the start."""
        num_batches = self.num_batches
        indices = itertools.count() if num_batches is None else range(num_batches)
        for index in indices:
            yield self[index]


def check_loading_options(workers: Any, use_multiprocessing: Any, max_queue_size: Any) -> None:
    """Raise a clear error for a bad ``workers``/``use_multiprocessing``/``max_queue_size``."""
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral):
        msg = f"workers must be an integer (0 or more). Received: workers={workers!r}"
        raise TypeError(msg)
    if workers < 0:
        msg = f"workers must be 0 or more. Received: workers={workers!r}"
        raise ValueError(msg)
    if not isinstance(use_multiprocessing, (bool, numbers.Integral)):
        msg = (
            "use_multiprocessing must be True or False. "
            f"Received: use_multiprocessing={use_multiprocessing!r}"
        )
        raise TypeError(msg)
    if isinstance(max_queue_size, bool) or not isinstance(max_queue_size, numbers.Integral):
        msg = (
            "max_queue_size must be an integer (1 or more). "
            f"Received: max_queue_size={max_queue_size!r}"
        )
        raise TypeError(msg)
    if max_queue_size < 1:
        msg = f"max_queue_size must be 1 or more. Received: max_queue_size={max_queue_size!r}"
        raise ValueError(msg)


# fit/evaluate/predict give a kutils Sequence the adapter of kutils/_sequence_adapter.py.
_sequence_hooks.register_data_adapter(
    "sequence", _sequence_adapter.make_route(Sequence, check_loading_options)
)
