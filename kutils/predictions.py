"""Keras 2's ``Sequential.predict_classes`` and ``predict_proba``, as functions of a model.

Keras 3 removed both methods. ``kutils migrate`` rewrites ``model.predict_classes(x)``
into ``predict_classes(model, x)``; the result is what Keras 2.3.1's method returned:

* ``predict_proba``: the predictions, with a ``UserWarning`` when a value falls outside
  [0, 1] (the last layer is then not a softmax or a sigmoid);
* ``predict_classes``: the index of the largest prediction when the model has more than
  one output unit, else ``(prediction > 0.5)`` as int32, keeping the last axis of 1.

Both run ``model.predict(x, batch_size=..., verbose=...)`` with Keras 2's defaults
(``batch_size=32``, ``verbose=0``; Keras 3's ``predict`` prints progress by default).
This module imports no Keras.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["predict_classes", "predict_proba"]


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
    predictions = model.predict(x, batch_size=batch_size, verbose=verbose)
    if not isinstance(predictions, np.ndarray):
        msg = (
            f"{name} needs a model with one output, as Keras 2's Sequential had; this "
            f"model predicts {type(predictions).__name__} of {len(predictions)} outputs. "
            "Call model.predict(x) and take the output you want instead. "
            f"Received: model={getattr(model, 'name', model)!r}"
        )
        raise ValueError(msg)
    return predictions
