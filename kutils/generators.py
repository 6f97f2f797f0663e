"""Keras 2's ``fit_generator``, ``evaluate_generator`` and ``predict_generator`` on Keras 3.

Keras 3 removed the three methods. Its ``fit``, ``evaluate`` and ``predict`` take a
generator, but they ignore ``workers``, ``use_multiprocessing`` and ``max_queue_size``
(and reject them as arguments), need ``(x,)`` tuples from a generator in ``predict``,
refuse ``class_weight`` with a generator, and with TensorFlow turn an exception raised
by the generator into ``tensorflow.errors.UnknownError``. These functions take a model
and the Keras 2.3.1 arguments and keep their meaning:

* the training runs Keras 2.3.1's loop (``kutils/_keras2_loop.py``): ``steps_per_epoch``
  batches an epoch, wrapping round a Sequence, Keras 2's batch logs, callback params
  and progress text; a model built under a ``tf.distribute`` strategy goes to Keras 3's
  ``fit``/``evaluate``/``predict`` instead;
* a ``kutils.Sequence`` (any ``keras.utils.PyDataset``) gets the worker options of the
  call for the call, and is read in order (or shuffled each epoch) by an
  ``OrderedEnqueuer`` on worker threads or processes (``workers=0``: in this thread);
* a plain generator or iterator runs in a ``GeneratorEnqueuer`` with ``workers``
  threads (``workers=0``: in the training loop's thread), ``max_queue_size`` batches
  ahead;
* an exception raised by the generator reaches the caller with its own type;
* the return values are Keras 2's: a ``History``, a scalar or a list of scalars, the
  prediction array(s).

``kutils migrate`` rewrites ``model.fit_generator(gen, ...)`` into
``fit_generator(model, gen, ...)``. This module imports no TensorFlow or Keras until a
function is called. ``kutils/_generator_feed.py`` holds what each input of a call goes
through (``Feed``).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Collection
from typing import Any

from kutils._generator_feed import (
    Feed,
    is_iterator,
    is_sequence,
    loading_options,
    reraising,
    short_repr,
)

__all__ = ["evaluate_generator", "fit_generator", "predict_generator"]


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
        callbacks: Keras callbacks; their ``params`` hold ``epochs``, ``steps``,
            ``verbose``, ``do_validation`` and ``metrics`` (sent again after each epoch
            when ``steps_per_epoch`` is None), their batch logs ``batch``, ``size``, the
            batch's loss and the epoch's running mean of each metric, as in Keras 2.3.1.
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
    options = loading_options(workers, use_multiprocessing, max_queue_size)
    # Every argument is checked before a worker starts reading a generator.
    train = Feed(generator, "generator", "fit", options, class_weight=class_weight)
    steps = train.steps("steps_per_epoch", steps_per_epoch)
    val_feed, validation, val_steps = _validation_input(validation_data, validation_steps, options)
    with contextlib.ExitStack() as stack:
        stack.enter_context(train)
        if val_feed is not None:
            stack.enter_context(val_feed)
            validation = val_feed.data()
        feeds = [feed for feed in (train, val_feed) if feed is not None]
        common: dict[str, Any] = {
            "epochs": epochs,
            "verbose": verbose,
            "callbacks": callbacks,
            "validation_freq": _keras_validation_freq(validation_freq),
            "class_weight": train.keras_class_weight(),
            "initial_epoch": initial_epoch,
        }
        if _runs_keras2_loop(model):
            parts = (train, val_feed, validation)
            return _fit_keras2(model, stack, parts, steps, val_steps, shuffle, common)
        return reraising(
            feeds,
            lambda: model.fit(
                train.data(),
                steps_per_epoch=steps,
                validation_data=validation,
                validation_steps=val_steps,
                shuffle=train.keras_shuffle(shuffle),
                **common,
            ),
        )


def _validation_input(
    validation_data: Any, validation_steps: int | None, options: dict[str, Any]
) -> tuple[Feed | None, Any, int | None]:
    """``fit_generator``'s validation input, checked before any worker starts: a feed
    and its steps for a Sequence or generator, else the validation tuple (or None)."""
    if validation_data is None:
        return None, None, None
    if is_sequence(validation_data) or is_iterator(validation_data):
        feed = Feed(validation_data, "validation_data", "evaluate", options)
        return feed, None, feed.steps("validation_steps", validation_steps)
    return None, _validation_tuple(validation_data), None


def _keras_validation_freq(validation_freq: int | Collection[int]) -> Any:
    """Keras 3 takes an int or a list; Keras 2 took any collection of epochs."""
    freq: Any = validation_freq
    return int(freq) if isinstance(freq, numbers.Integral) else list(freq)


def _fit_keras2(
    model: Any,
    stack: contextlib.ExitStack,
    parts: tuple[Feed, Feed | None, Any],
    steps: int | None,
    val_steps: int | None,
    shuffle: bool,
    common: dict[str, Any],
) -> Any:
    """Keras 2.3.1's loop (kutils/_keras2_loop.py) on the feeds ``fit_generator`` entered:
    ``parts`` is the training feed, the validation feed (or None) and a validation tuple."""
    from kutils import _keras2_loop

    train, val_feed, validation = parts
    source = stack.enter_context(train.keras2_source(shuffle))
    if val_feed is not None:
        validation = stack.enter_context(val_feed.keras2_source(False))
        if val_steps is None:  # a Sequence: all of it, as Keras 2
            val_steps = len(val_feed.source)
    feeds = [feed for feed in (train, val_feed) if feed is not None]
    return reraising(
        feeds,
        lambda: _keras2_loop.fit(
            model,
            source,
            steps=steps if steps is not None else len(train.source),
            steps_from_len=steps is None,
            validation=validation,
            validation_steps=val_steps,
            **common,
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
    feed = Feed(generator, "generator", mode, loading_options(*loading))
    count = feed.steps("steps", steps)  # before any worker starts
    run = getattr(model, mode)
    if _runs_keras2_loop(model):
        from kutils import _keras2_loop

        total = count if count is not None else len(generator)
        with feed, feed.keras2_source(False) as source:
            if mode == "evaluate":
                return reraising(
                    [feed],
                    lambda: _keras2_loop.evaluate_batches(model, source, total, callbacks, verbose),
                )
            return reraising(
                [feed], lambda: _keras2_loop.predict_batches(model, source, total, verbose)
            )
    with feed:
        return reraising(
            [feed], lambda: run(feed.data(), steps=count, callbacks=callbacks, verbose=verbose)
        )


def _runs_keras2_loop(model: Any) -> bool:
    """Keras 2.3.1's loop (kutils/_keras2_loop.py), unless the model was built under a
    ``tf.distribute`` strategy, which needs Keras 3's input pipeline (``fit``)."""
    return getattr(model, "_distribute_strategy", None) is None


def _check_model(model: Any, function: str) -> None:
    if not callable(getattr(model, "fit", None)) or not callable(getattr(model, "predict", None)):
        msg = (
            f"{function} takes a Keras model as its first argument: "
            f"{function}(model, generator, ...). Received: model={model!r}"
        )
        raise TypeError(msg)


def _validation_tuple(data: Any) -> tuple[Any, ...]:
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return tuple(data)
    msg = (
        "`validation_data` should be a tuple `(val_x, val_y, val_sample_weight)` or "
        "`(val_x, val_y)`, a Sequence or a generator. Found: " + short_repr(data)
    )
    raise ValueError(msg)
