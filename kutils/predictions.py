"""Keras 2's ``predict``, ``Sequential.predict_classes`` and ``predict_proba``, as functions.

Keras 3 removed both methods. ``kutils migrate`` rewrites ``model.predict_classes(x)``
into ``predict_classes(model, x)``; the result is what Keras 2.3.1's method returned:

* ``predict_proba``: the predictions, with a ``UserWarning`` when a value falls outside
  [0, 1] (the last layer is then not a softmax or a sigmoid);
* ``predict_classes``: the index of the largest prediction when the model has more than
  one output unit, else ``(prediction > 0.5)`` as int32, keeping the last axis of 1.

Both run ``predict(model, x, batch_size=..., verbose=...)`` (below) with Keras 2's defaults
(``batch_size=32``, ``verbose=0``; Keras 3's ``predict`` prints progress by default).

``predict``: Keras 3 still has the method, but reads its inputs differently from Keras
2.3.1, whose ``predict`` turned every 1-D array into a column ``(n, 1)`` and took the
number of samples from the first input (the rows other inputs have beyond it were never
used). ``kutils migrate`` rewrites ``model.predict(x, ...)`` into ``predict(model, x,
...)``, which prepares the inputs as Keras 2 did and hands them to Keras 3's ``predict``.

This module imports Keras only when ``predict`` is called.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import numpy as np

__all__ = ["predict", "predict_classes", "predict_proba"]


def predict_proba(model: Any, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
    """The class probabilities the model predicts for ``x`` (Keras 2's method).

    Args:
        model: a Keras model with one output (Keras 2 had the method on ``Sequential``).
        x: the input samples, as for ``model.predict``.
        batch_size: samples per batch.
        verbose: 0 (silent) or 1 (a progress bar).

    Returns:
        The predictions, a numpy array.

    Warns:
        UserWarning: a prediction is below 0 or above 1, as Keras 2 warned.

    Example:
        >>> probabilities = predict_proba(model, x_test)  # doctest: +SKIP
    """
    predictions = _predict(model, x, batch_size, verbose, "predict_proba")
    if predictions.size and (predictions.min() < 0.0 or predictions.max() > 1.0):
        warnings.warn(
            "Network returning invalid probability values. The last layer might not "
            "normalize predictions into probabilities (like softmax or sigmoid would).",
            UserWarning,
            stacklevel=2,
        )
    return predictions


def predict_classes(model: Any, x: Any, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
    """The class the model predicts for each sample of ``x`` (Keras 2's method).

    Args:
        model: a Keras model with one output (Keras 2 had the method on ``Sequential``).
        x: the input samples, as for ``model.predict``.
        batch_size: samples per batch.
        verbose: 0 (silent) or 1 (a progress bar).

    Returns:
        With more than one output unit, the index of the largest prediction over the
        last axis (numpy's default integer); with one unit, ``prediction > 0.5`` as
        int32 with the last axis kept (shape ``(samples, 1)``), as Keras 2.3.1.

    Example:
        >>> classes = predict_classes(model, x_test)  # doctest: +SKIP
    """
    predictions = _predict(model, x, batch_size, verbose, "predict_classes")
    if predictions.shape[-1] > 1:
        return predictions.argmax(axis=-1)
    return (predictions > 0.5).astype("int32")


def _predict(model: Any, x: Any, batch_size: int, verbose: int, name: str) -> np.ndarray:
    if not callable(getattr(model, "predict", None)):
        msg = (
            f"{name} takes a Keras model as its first argument (kutils migrate writes "
            f"model.{name}(x) as {name}(model, x)). Received: model={model!r}"
        )
        raise TypeError(msg)
    # Keras 2's Sequential methods called its predict: the inputs read as Keras 2 did.
    predictions = predict(model, x, batch_size=batch_size, verbose=verbose)
    if not isinstance(predictions, np.ndarray):
        msg = (
            f"{name} needs a model with one output, as Keras 2's Sequential had; this "
            f"model predicts {type(predictions).__name__} of {len(predictions)} outputs. "
            "Call model.predict(x) and take the output you want instead. "
            f"Received: model={getattr(model, 'name', model)!r}"
        )
        raise ValueError(msg)
    return predictions


def predict(
    model: Any,
    x: Any,
    batch_size: int | None = None,
    verbose: int = 0,
    steps: int | None = None,
    callbacks: list[Any] | None = None,
    max_queue_size: int = 10,
    workers: int = 1,
    use_multiprocessing: bool = False,
) -> Any:
    """Predict the outputs for ``x``, reading ``x`` as Keras 2.3.1's ``Model.predict`` did.

    Differs from Keras 3's ``predict`` where Keras 2 accepted more: a 1-D array is a
    column (shape ``(n, 1)``), as Keras 2 made it; with several inputs of different
    lengths, the number of samples is the first input's, and the rows the others have
    beyond it are not used (Keras 3 refuses such inputs; Keras 2 said nothing, this
    function warns). A generator or a ``kutils.Sequence`` goes to
    ``kutils.predict_generator``, as Keras 2 did. ``verbose`` is 0 by default, as in
    Keras 2 (Keras 3 prints a progress bar).

    Args:
        model: a Keras model. Anything else with a ``predict`` method (a scikit-learn
            estimator, a class of the user's own) has that method called with ``x``
            and the arguments given here that are not at their default.
        x: the inputs: an array, a list of arrays (one per input, in the order of the
            model's inputs), a dict by input name, or a generator or Sequence.
        batch_size: samples per batch; 32 when ``None`` and ``steps`` is ``None``.
        verbose: 0 (silent) or 1 (a progress bar).
        steps: batches to predict before stopping.
        callbacks: Keras callbacks called during prediction.
        max_queue_size, workers, use_multiprocessing: for a generator or a Sequence
            (ignored for arrays, as in Keras 2).

    Returns:
        The predictions: an array, or a list of arrays for a model with several outputs.

    Raises:
        IndexError: an input has fewer rows than the first (Keras 2's error type).
        TypeError: ``model`` is neither a Keras model nor has a ``predict`` method.

    Warns:
        UserWarning: inputs of different lengths (the lengths are in the message).

    Example:
        >>> images = predict(generator, [noise, sampled_labels])  # doctest: +SKIP
    """
    import keras

    if not isinstance(model, keras.Model):
        given = {
            "batch_size": batch_size,
            "verbose": verbose,
            "steps": steps,
            "callbacks": callbacks,
            "max_queue_size": max_queue_size,
            "workers": workers,
            "use_multiprocessing": use_multiprocessing,
        }
        return _own_predict(model, x, {k: v for k, v in given.items() if v != _DEFAULTS[k]})
    if inspect.isgenerator(x) or _is_kutils_sequence(x):
        from kutils.generators import predict_generator

        return predict_generator(
            model, x, steps, callbacks, max_queue_size, workers, use_multiprocessing, verbose
        )
    if batch_size is None and steps is None:
        batch_size = 32
    x = _keras2_inputs(model, x)
    return model.predict(
        x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks
    )


_DEFAULTS: dict[str, Any] = {
    "batch_size": None,
    "verbose": 0,
    "steps": None,
    "callbacks": None,
    "max_queue_size": 10,
    "workers": 1,
    "use_multiprocessing": False,
}


def _own_predict(receiver: Any, x: Any, given: dict[str, Any]) -> Any:
    """Anything but a Keras model: its own ``predict``, as the code called it."""
    method = getattr(receiver, "predict", None)
    if not callable(method):
        msg = (
            "predict takes a Keras model, or an object with a predict method, as its "
            "first argument (kutils migrate writes model.predict(x) as "
            f"predict(model, x)). Received: model={receiver!r}"
        )
        raise TypeError(msg)
    return method(x, **given)


def _is_kutils_sequence(x: Any) -> bool:
    from kutils.sequence import Sequence

    return isinstance(x, Sequence)


def _keras2_inputs(model: Any, x: Any) -> Any:
    """``x`` as Keras 2's ``standardize_input_data`` and ``predict_loop`` read it."""
    if isinstance(x, dict):
        names = [tensor.name for tensor in model.inputs]
        order = [name for name in names if name in x] + [k for k in x if k not in names]
        arrays = _first_length([_column(x[name]) for name in order], order)
        return dict(zip(order, arrays, strict=True))
    if isinstance(x, (list, tuple)):
        if x and isinstance(x[0], list):
            x = [np.asarray(item) for item in x]
        elif len(model.inputs) == 1 and x and isinstance(x[0], (float, int)):
            return _column(np.asarray(x))
        return _first_length([_column(item) for item in x], None)
    return _column(x)


def _column(array: Any) -> Any:
    """A 1-D numpy array (or pandas Series) as a column ``(n, 1)``, as Keras 2 made it."""
    if type(array).__name__ in ("Series", "DataFrame"):
        array = array.values
    if isinstance(array, np.ndarray) and array.ndim == 1:
        return array[:, np.newaxis]
    return array


def _first_length(arrays: list[Any], names: list[str] | None) -> list[Any]:
    """Every array cut to the first one's length, as Keras 2's batches sliced them."""
    if len(arrays) < 2 or not all(isinstance(a, np.ndarray) for a in arrays):
        return arrays
    lengths = [len(a) for a in arrays]
    first = lengths[0]
    if len(set(lengths)) == 1:
        return arrays
    labels = names or [f"input {i}" for i in range(len(arrays))]
    described = ", ".join(f"{label}: {n}" for label, n in zip(labels, lengths, strict=True))
    if min(lengths) < first:
        msg = (
            f"predict takes the number of samples from the first input, as Keras 2 did, "
            f"and another input has fewer rows ({described}); Keras 2 failed here too "
            "(IndexError). Pass inputs of one length. Received: lengths="
            f"{lengths}"
        )
        raise IndexError(msg)
    warnings.warn(
        f"predict was given inputs of different lengths ({described} rows): as Keras 2 "
        f"did, it predicts the {first} samples of the first input, and the rows the "
        "other inputs have beyond them are not used. Pass inputs of one length to "
        "silence this warning.",
        UserWarning,
        stacklevel=4,
    )
    return [a[:first] for a in arrays]
