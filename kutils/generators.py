"""Keras 2's ``fit_generator``, ``evaluate_generator`` and ``predict_generator`` on Keras 3.

Keras 3 removed the three methods. Its ``fit``, ``evaluate`` and ``predict`` take a
generator, but they ignore ``workers``, ``use_multiprocessing`` and ``max_queue_size``
(and reject them as arguments), need ``(x,)`` tuples from a generator in ``predict``,
refuse ``class_weight`` with a generator, and with TensorFlow turn an exception raised
by the generator into ``tensorflow.errors.UnknownError``. These functions take a model
and the Keras 2.3.1 arguments and keep their meaning:

* a ``kutils.Sequence`` (any ``keras.utils.PyDataset``) goes to Keras 3 with the
  worker options of the call applied to it for the call, so kutils loads it in order
  (or shuffled each epoch) on its own worker threads or processes;
* a plain generator or iterator runs in a ``GeneratorEnqueuer`` with ``workers``
  threads (``workers=0``: in the training loop's thread), ``max_queue_size`` batches
  ahead;
* an exception raised by the generator reaches the caller with its own type;
* the return values are Keras 2's: a ``History``, a scalar or a list of scalars, the
  prediction array(s).

``kutils migrate`` rewrites ``model.fit_generator(gen, ...)`` into
``fit_generator(model, gen, ...)``. This module imports no TensorFlow or Keras until a
function is called.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Callable, Collection, Iterator
from typing import Any

__all__ = ["evaluate_generator", "fit_generator", "predict_generator"]

# Keras 2.3.1's defaults for the worker options: a Sequence keeps its own setting of an
# option the call leaves at its default.
_OPTION_DEFAULTS = {"workers": 1, "use_multiprocessing": False, "max_queue_size": 10}


def fit_generator(
    model: Any,
    generator: Any,
    steps_per_epoch: int | None = None,
    epochs: int = 1,
    verbose: int = 1,
    callbacks: list[Any] | None = None,
    validation_data: Any = None,
    validation_steps: int | None = None,
    validation_freq: int | Collection[int] = 1,
    class_weight: dict[Any, float] | None = None,
    max_queue_size: int = 10,
    workers: int = 1,
    use_multiprocessing: bool = False,
    shuffle: bool = True,
    initial_epoch: int = 0,
) -> Any:
    """Train ``model`` on batches from a generator or Sequence (Keras 2.3.1's ``fit_generator``).

    Args:
        model: a compiled Keras 3 model.
        generator: a ``kutils.Sequence`` (or ``keras.utils.PyDataset``), or a generator
            or iterator yielding ``(x, y)`` or ``(x, y, sample_weight)`` batches.
        steps_per_epoch: batches per epoch; required for a generator, ``len(sequence)``
            for a Sequence when ``None``.
        epochs: index of the last epoch (training starts at ``initial_epoch``).
        verbose: 0 silent, 1 progress bar, 2 one line per epoch.
        callbacks: Keras callbacks; their ``params`` hold ``epochs`` and ``steps``.
        validation_data: a Sequence, a generator (then ``validation_steps`` is
            required), or a tuple ``(x, y)`` / ``(x, y, sample_weight)``.
        validation_steps: batches per validation pass from a generator or Sequence;
            ignored for a tuple, as in Keras 2.
        validation_freq: validate every this many epochs, or on the epochs (1-based)
            listed in a collection.
        class_weight: class index -> weight for the loss of the training batches.
        max_queue_size: how many batches the workers load ahead.
        workers: worker threads (processes for a Sequence with ``use_multiprocessing``);
            0 loads the batches in the training loop's thread.
        use_multiprocessing: load a Sequence in worker processes. A generator cannot be
            sent to another process: it runs in threads, with a ``UserWarning``.
        shuffle: shuffle the order of a Sequence's batches every epoch (not a
            generator's, nor with ``workers=0``, as in Keras 2).
        initial_epoch: epoch at which to start (to resume a training).

    Returns:
        The ``History`` callback of the run (``history.history`` holds the losses and
        metrics per epoch).

    Raises:
        ValueError: ``steps_per_epoch`` or ``validation_steps`` is missing for a
            generator, a batch is not ``(x, y)`` or ``(x, y, sample_weight)``, or
            ``validation_data`` has another form.
        TypeError: ``generator`` is neither a Sequence nor an iterator.
        Exception: whatever the generator or Sequence raised, with its own type.

    Example:
        >>> def batches():  # doctest: +SKIP
        ...     while True:
        ...         yield x_train[:32], y_train[:32]
        >>> history = fit_generator(model, batches(), steps_per_epoch=10, epochs=3, workers=2)  # doctest: +SKIP
    """
    _check_model(model, "fit_generator")
    options = _options(workers, use_multiprocessing, max_queue_size)
    # Every argument is checked before a worker starts reading a generator.
    train = _Feed(generator, "generator", "fit", options, class_weight=class_weight)
    steps = train.steps("steps_per_epoch", steps_per_epoch)
    validation: Any = None
    val_steps = None
    val_feed: _Feed | None = None
    if validation_data is not None:
        if _is_sequence(validation_data) or _is_iterator(validation_data):
            val_feed = _Feed(validation_data, "validation_data", "evaluate", options)
            val_steps = val_feed.steps("validation_steps", validation_steps)
        else:
            validation = _validation_tuple(validation_data)
    with contextlib.ExitStack() as stack:
        stack.enter_context(train)
        if val_feed is not None:
            stack.enter_context(val_feed)
            validation = val_feed.data()
        # Keras 3 takes an int or a list; Keras 2 took any collection of epochs.
        freq: Any = validation_freq
        freq = int(freq) if isinstance(freq, numbers.Integral) else list(freq)
        feeds = [feed for feed in (train, val_feed) if feed is not None]
        return _reraising(
            feeds,
            lambda: model.fit(
                train.data(),
                steps_per_epoch=steps,
                epochs=epochs,
                verbose=verbose,
                callbacks=callbacks,
                validation_data=validation,
                validation_steps=val_steps,
                validation_freq=freq,
                class_weight=train.keras_class_weight(),
                shuffle=train.keras_shuffle(shuffle),
                initial_epoch=initial_epoch,
            ),
        )


def evaluate_generator(
    model: Any,
    generator: Any,
    steps: int | None = None,
    callbacks: list[Any] | None = None,
    max_queue_size: int = 10,
    workers: int = 1,
    use_multiprocessing: bool = False,
    verbose: int = 0,
) -> Any:
    """Evaluate ``model`` on batches from a generator or Sequence (Keras 2.3.1).

    Args:
        model: a compiled Keras 3 model.
        generator: a ``kutils.Sequence``, or a generator or iterator yielding
            ``(x, y)`` or ``(x, y, sample_weight)``.
        steps: batches to evaluate; required for a generator, ``len(sequence)`` when
            ``None`` for a Sequence.
        callbacks: Keras callbacks.
        max_queue_size: how many batches the workers load ahead.
        workers: worker threads (0: in the calling thread).
        use_multiprocessing: load a Sequence in worker processes.
        verbose: 0 silent, 1 progress bar.

    Returns:
        The loss as a scalar if the model has no metrics, else the list
        ``[loss, metric, ...]`` (``model.metrics_names`` order), averaged over samples.

    Raises:
        ValueError: ``steps`` is missing for a generator, or a batch has another form.
        Exception: whatever the generator or Sequence raised, with its own type.

    Example:
        >>> loss, accuracy = evaluate_generator(model, batches(), steps=5)  # doctest: +SKIP
    """
    loading = (workers, use_multiprocessing, max_queue_size)
    return _evaluate_or_predict("evaluate", model, generator, steps, callbacks, loading, verbose)


def predict_generator(
    model: Any,
    generator: Any,
    steps: int | None = None,
    callbacks: list[Any] | None = None,
    max_queue_size: int = 10,
    workers: int = 1,
    use_multiprocessing: bool = False,
    verbose: int = 0,
) -> Any:
    """Predict on the inputs from a generator or Sequence (Keras 2.3.1's ``predict_generator``).

    Args:
        model: a Keras 3 model.
        generator: a ``kutils.Sequence``, or a generator or iterator yielding the
            inputs ``x`` alone, or ``(x, y)`` / ``(x, y, sample_weight)`` (the targets
            are ignored).
        steps: batches to predict; required for a generator, ``len(sequence)`` when
            ``None`` for a Sequence.
        callbacks: Keras callbacks.
        max_queue_size: how many batches the workers load ahead.
        workers: worker threads (0: in the calling thread).
        use_multiprocessing: load a Sequence in worker processes.
        verbose: 0 silent, 1 progress bar.

    Returns:
        The predictions concatenated over the batches, as an array (a list of arrays
        for a model with several outputs).

    Raises:
        ValueError: ``steps`` is missing for a generator.
        Exception: whatever the generator or Sequence raised, with its own type.

    Example:
        >>> predictions = predict_generator(model, inputs(), steps=5)  # doctest: +SKIP
    """
    loading = (workers, use_multiprocessing, max_queue_size)
    return _evaluate_or_predict("predict", model, generator, steps, callbacks, loading, verbose)


# -- helpers ----------------------------------------------------------------------------


def _evaluate_or_predict(
    mode: str,
    model: Any,
    generator: Any,
    steps: int | None,
    callbacks: list[Any] | None,
    loading: tuple[Any, Any, Any],
    verbose: int,
) -> Any:
    """``model.evaluate`` or ``model.predict`` (``mode``) over the batches of ``generator``.

    ``loading`` is ``(workers, use_multiprocessing, max_queue_size)``, checked after the
    model, as the public functions always did.
    """
    _check_model(model, f"{mode}_generator")
    feed = _Feed(generator, "generator", mode, _options(*loading))
    count = feed.steps("steps", steps)  # before any worker starts
    run = getattr(model, mode)
    with feed:
        return _reraising(
            [feed], lambda: run(feed.data(), steps=count, callbacks=callbacks, verbose=verbose)
        )


def _check_model(model: Any, function: str) -> None:
    if not callable(getattr(model, "fit", None)) or not callable(getattr(model, "predict", None)):
        msg = (
            f"{function} takes a Keras model as its first argument: "
            f"{function}(model, generator, ...). Received: model={model!r}"
        )
        raise TypeError(msg)


def _options(workers: Any, use_multiprocessing: Any, max_queue_size: Any) -> dict[str, Any]:
    from kutils.sequence import check_loading_options

    check_loading_options(workers, use_multiprocessing, max_queue_size)
    return {
        "workers": int(workers),
        "use_multiprocessing": bool(use_multiprocessing),
        "max_queue_size": int(max_queue_size),
    }


def _is_sequence(data: Any) -> bool:
    import keras

    return isinstance(data, keras.utils.PyDataset)


def _is_iterator(data: Any) -> bool:
    return hasattr(data, "__next__")


def _validation_tuple(data: Any) -> tuple[Any, ...]:
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return tuple(data)
    msg = (
        "`validation_data` should be a tuple `(val_x, val_y, val_sample_weight)` or "
        "`(val_x, val_y)`, a Sequence or a generator. Found: " + _short(data)
    )
    raise ValueError(msg)


def _reraising(feeds: list[_Feed], run: Callable[[], Any]) -> Any:
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


def _raise_source_error(feeds: list[_Feed]) -> None:
    for feed in feeds:
        original = feed.error
        if original is not None:
            feed.error = None
            # What TensorFlow made of it (UnknownError) adds nothing.
            original.__suppress_context__ = True
            raise original


class _Feed:
    """One input of a ``*_generator`` call, in the form Keras 3 takes, and its cleanup."""

    def __init__(
        self,
        source: Any,
        name: str,
        mode: str,
        options: dict[str, Any],
        class_weight: dict[Any, float] | None = None,
    ) -> None:
        self.sequence = _is_sequence(source)
        if not self.sequence and not _is_iterator(source):
            msg = (
                f"{name} must be a kutils.Sequence or a generator (an object with "
                f"__next__); for a list or another iterable pass iter(...). "
                f"Received: {name}={_short(source)}"
            )
            raise TypeError(msg)
        self.source = source
        self.mode = mode
        self.options = options
        self.class_weight = class_weight
        self.error: BaseException | None = None
        self._saved: dict[str, Any] = {}
        self._enqueuer: Any = None

    def __enter__(self) -> _Feed:
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
        "Found: " + _short(batch)
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
