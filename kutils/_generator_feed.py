"""One input of a ``*_generator`` call (``kutils/generators.py``) in the form Keras 3 takes.

A :class:`Feed` checks the input (a ``kutils.Sequence``, any ``keras.utils.PyDataset``,
or a generator or iterator), gives a Sequence the worker options of the call for the
call and runs a generator in a ``GeneratorEnqueuer``, standardizes each batch as Keras
2.3.1 did (``(x,)`` tuples for ``predict``, ``class_weight`` applied as sample weights),
and keeps the exception its source raised, so that :func:`reraising` can raise it with
its own type where TensorFlow would show another. Like ``generators.py``, it imports no
TensorFlow or Keras until it is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

# Keras 2.3.1's defaults for the worker options: a Sequence keeps its own setting of an
# option the call leaves at its default.
_OPTION_DEFAULTS = {"workers": 1, "use_multiprocessing": False, "max_queue_size": 10}


def loading_options(workers: Any, use_multiprocessing: Any, max_queue_size: Any) -> dict[str, Any]:
    """The worker options of a call, checked as ``Sequence`` checks its own."""
    from kutils.sequence import check_loading_options

    check_loading_options(workers, use_multiprocessing, max_queue_size)
    return {
        "workers": int(workers),
        "use_multiprocessing": bool(use_multiprocessing),
        "max_queue_size": int(max_queue_size),
    }


def is_sequence(data: Any) -> bool:
    """Whether ``data`` is a ``kutils.Sequence`` (any ``keras.utils.PyDataset``)."""
    import keras

    return isinstance(data, keras.utils.PyDataset)


def is_iterator(data: Any) -> bool:
    """Whether ``data`` is a generator or another iterator (has ``__next__``)."""
    return hasattr(data, "__next__")


def reraising(feeds: list[Feed], run: Callable[[], Any]) -> Any:
    """Call ``run`` and raise the error a feed's source raised, if any, with its own type.

    With TensorFlow, Keras 3 turns an exception of a generator into ``UnknownError`` in
    ``fit``, and ``evaluate``/``predict`` take it for the end of the data and return a
    result of the batches read so far: either way the source's own error is raised.
    """
    try:
        result = run()
    except Exception:
        _raise_source_error(feeds)
        raise
    _raise_source_error(feeds)
    return result


def _raise_source_error(feeds: list[Feed]) -> None:
    for feed in feeds:
        original = feed.error
        if original is not None:
            feed.error = None
            # What TensorFlow made of it (UnknownError) adds nothing.
            original.__suppress_context__ = True
            raise original


class Feed:
    """One input of a ``*_generator`` call, in the form Keras 3 takes, and its cleanup."""

    def __init__(
        self,
        source: Any,
        name: str,
        mode: str,
        options: dict[str, Any],
        class_weight: dict[Any, float] | None = None,
    ) -> None:
        self.sequence = is_sequence(source)
        if not self.sequence and not is_iterator(source):
            msg = (
                f"{name} must be a kutils.Sequence or a generator (an object with "
                f"__next__); for a list or another iterable pass iter(...). "
                f"Received: {name}={short_repr(source)}"
            )
            raise TypeError(msg)
        self.source = source
        self.mode = mode
        self.options = options
        self.class_weight = class_weight
        self.error: BaseException | None = None
        self._saved: dict[str, Any] = {}
        self._enqueuer: Any = None

    def __enter__(self) -> Feed:
        if self.sequence:
            for option, value in self.options.items():
                if value != _OPTION_DEFAULTS[option]:
                    self._saved[option] = getattr(self.source, option)
                    setattr(self.source, option, value)
        elif self.options["workers"] > 0:
            from kutils.enqueuers import GeneratorEnqueuer

            self._enqueuer = GeneratorEnqueuer(
                self.source, use_multiprocessing=self.options["use_multiprocessing"]
            )
            self._enqueuer.start(
                workers=self.options["workers"], max_queue_size=self.options["max_queue_size"]
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._enqueuer is not None:
            self._enqueuer.stop()
        for option, value in self._saved.items():
            setattr(self.source, option, value)

    def steps(self, argument: str, steps: int | None) -> int | None:
        if steps is None and not self.sequence:
            msg = (
                f"`{argument}=None` is only valid for a generator based on the "
                "`keras.utils.Sequence` class. Please specify "
                f"`{argument}` or use the `keras.utils.Sequence` class."
            )
            raise ValueError(msg)
        return steps

    @contextlib.contextmanager
    def keras2_source(self, shuffle: bool) -> Iterator[Any]:
        """The batches for Keras 2.3.1's loop: a Sequence read in this thread
        (``workers=0``) or by an ``OrderedEnqueuer`` with its effective options, or this
        feed's standardized generator batches (already enqueued by ``__enter__``)."""
        from kutils import _keras2_loop

        if self.sequence:
            options = {
                option: getattr(self.source, option, self.options[option])
                for option in _OPTION_DEFAULTS
            }
            source = _keras2_loop.Source(self.source, True, options, shuffle=shuffle)
        else:
            source = _keras2_loop.Source(self._batches(), False, {"workers": 0})
        try:
            yield source
        finally:
            source.stop()

    def data(self) -> Any:
        """What to pass to Keras: the Sequence, or a generator of standardized batches."""
        if self.sequence:
            return self.source
        return self._batches()

    def keras_class_weight(self) -> dict[Any, float] | None:
        # Keras 3 refuses class_weight with a generator: _batches applies it instead.
        return self.class_weight if self.sequence else None

    def keras_shuffle(self, shuffle: bool) -> bool:
        # Keras 2 shuffled only a Sequence run by workers; Keras 3 warns for a generator.
        return bool(shuffle) and self.sequence and self.options["workers"] > 0

    def _batches(self) -> Iterator[Any]:
        source = self._enqueuer.get() if self._enqueuer is not None else self.source
        try:
            for batch in source:
                if batch is None:
                    continue
                yield self._standardize(batch)
        except Exception as error:
            self.error = error
            raise

    def _standardize(self, batch: Any) -> tuple[Any, ...]:
        from kutils._row_sources import lists_to_tuples

        if self.mode == "predict":
            if isinstance(batch, tuple):
                if len(batch) not in (1, 2, 3):
                    raise ValueError(_bad_batch(batch))
                return (lists_to_tuples(batch[0]),)
            return (lists_to_tuples(batch),)
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(_bad_batch(batch))
        parts = lists_to_tuples(tuple(batch))
        if self.class_weight is not None and len(parts) == 2:
            parts = (*parts, _class_weights(parts[1], self.class_weight))
        return tuple(parts)


def _class_weights(y: Any, class_weight: dict[Any, float]) -> Any:
    """Per-sample weights from ``class_weight``, as Keras 2's ``standardize_weights``."""
    import numpy as np

    if not hasattr(y, "shape"):
        msg = (
            "class_weight with a generator needs the targets y of each batch as one "
            "array; for several outputs, yield (x, y, sample_weight) instead. "
            f"Received: y of type {type(y).__name__}"
        )
        raise ValueError(msg)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        classes = np.argmax(y, axis=1)
    elif y.ndim == 2 and y.shape[1] == 1:
        classes = np.reshape(y, y.shape[0])
    else:
        classes = y
    missing = {int(c) if np.issubdtype(type(c), np.integer) else c for c in classes.tolist()}
    missing -= set(class_weight)
    if missing:
        msg = (
            "`class_weight` must contain all classes in the data. The classes "
            f"{missing} exist in the data but not in `class_weight`."
        )
        raise ValueError(msg)
    return np.asarray([class_weight[c] for c in classes.tolist()], dtype="float32")


def _bad_batch(batch: Any) -> str:
    return (
        "Output of generator should be a tuple `(x, y, sample_weight)` or `(x, y)`. "
        "Found: " + short_repr(batch)
    )


def short_repr(value: Any) -> str:
    """``repr(value)``, cut at 200 characters for an error message."""
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
