"""Keras 2's ``class_weight`` of ``train_on_batch``, for models with several outputs.

Keras 2 took ``class_weight`` as one dict of class weights per output (a list in the
order of the outputs, or a dict by output name) and turned it into one sample weight per
sample and output. Keras 3 takes one dict for a model with one output only, and fails on
anything else (``ValueError: setting an array element with a sequence``: the GAN scripts
of the Keras 2 era, whose discriminator has two outputs). ``kutils migrate`` rewrites
``model.train_on_batch(x, y, class_weight=w)`` (only the calls that pass
``class_weight``) into ``train_on_batch(model, x, y, class_weight=w)``, which computes
the sample weights as Keras 2.3.1's ``standardize_weights`` did and hands them to Keras
3's ``train_on_batch``:

* the class of a sample is the argmax of a one-hot target (``(n, k)``, ``k > 1``), or
  the target's value itself (``(n, 1)`` or ``(n,)``); a class missing from the dict is
  Keras 2's ``ValueError``; targets of rank 3 or more are refused, as in Keras 2;
* ``class_weight`` and ``sample_weight`` given together are multiplied (Keras 2.3.1;
  Keras 2.2.4 ignored ``class_weight`` then, with a warning);
* an output without class weights (``None`` in the list, its name missing from the dict)
  weighs each sample 1, or by its ``sample_weight``;
* what Keras 2 ignored without a word is ignored too, with a ``UserWarning`` saying so: a
  list of several dicts for a model with one output (Keras 2 applied none of them), a
  value for an output that is not a dict, a dict naming no output of a model with several.

This module imports Keras only when the function is called.
"""

from __future__ import annotations

import warnings
from typing import Any

from kutils import _batch_steps

__all__ = ["train_on_batch"]


def train_on_batch(
    model: Any,
    x: Any,
    y: Any,
    sample_weight: Any = None,
    class_weight: Any = None,
    reset_metrics: bool = True,
) -> Any:
    """Run one gradient step on a batch, with Keras 2's ``class_weight`` (Keras 2's method).

    Args:
        model: a compiled Keras model. Anything else with a ``train_on_batch`` method (a
            class of the user's own) has that method called with the same arguments.
        x: the inputs, as for Keras's ``train_on_batch``.
        y: the targets: an array for a model with one output; a list (in the order of
            the outputs) or a dict by output name for a model with several.
        sample_weight: ``None``, or per-sample weights: an array of shape ``(n,)`` for
            one output; a list or a dict by output name for several.
        class_weight: ``None``, a dict mapping each class to its weight (one output), or
            one such dict per output: a list in the order of the outputs, or a dict by
            output name (an output left out, or given ``None``, is not weighted).
        reset_metrics: only ``True``, Keras 2's default: the loss and metrics
            returned are those of this batch (the model's metrics are reset first;
            Keras 3.15's own ``train_on_batch`` does so, 3.8's does not).

    Returns:
        The loss, or the list of the total loss, each output's loss and the metrics, in
        Keras 2's order: the metrics output by output, each in the order given to
        ``compile`` (Keras 3's own ``train_on_batch`` sorts them by name).

    Raises:
        ValueError: a class of the targets is missing from its dict, the targets of a
            weighted output have rank 3 or more, a list has not one entry per output,
            or a ``sample_weight`` has the wrong shape (Keras 2's errors).
        TypeError: ``class_weight`` or ``sample_weight`` of a model with several
            outputs is neither a list nor a dict.
        NotImplementedError: ``reset_metrics=False``.

    Example:
        >>> cw_valid = {0: 1, 1: 1}  # doctest: +SKIP
        >>> cw_label = {i: 10 / 16 for i in range(10)} | {10: 1 / 16}  # doctest: +SKIP
        >>> train_on_batch(discriminator, imgs, [valid, labels],
        ...                class_weight=[cw_valid, cw_label])  # doctest: +SKIP
    """
    import keras

    if not isinstance(model, keras.Model):
        return _own_train_on_batch(model, x, y, sample_weight, class_weight, reset_metrics)
    if reset_metrics is not True:
        msg = (
            "train_on_batch with reset_metrics=False (metrics accumulated over batches) "
            "has no Keras 3 counterpart: call model.evaluate on the batches, or keep "
            f"the metrics yourself. Received: reset_metrics={reset_metrics!r}"
        )
        raise NotImplementedError(msg)
    if class_weight is None:
        if len(_output_names(model, y)) == 1:
            return _batch_steps.reset_then_train(model, x, y, sample_weight=sample_weight)
        logs = _batch_steps.reset_then_train(
            model, x, y, sample_weight=sample_weight, return_dict=True
        )
        return _keras2_order(logs, _output_names(model, y))
    names = _output_names(model, y)
    targets = _per_output(y, names, "y")
    samples = _standardize(sample_weight, names, "sample_weight")
    classes = _standardize(class_weight, names, "class_weight")
    _warn_ignored(class_weight, classes, names)
    weights = [
        _keras2_weights(target, sample, cls, keras.backend.floatx())
        for target, sample, cls in zip(targets, samples, classes, strict=True)
    ]
    if len(names) == 1:
        return _batch_steps.reset_then_train(model, x, targets[0], sample_weight=weights[0])
    # Several outputs: targets and weights as lists in the order of the outputs (Keras
    # 3 matches a dict of targets to the outputs, but not a dict of sample weights).
    logs = _batch_steps.reset_then_train(model, x, targets, sample_weight=weights, return_dict=True)
    return _keras2_order(logs, names)


def _own_train_on_batch(
    receiver: Any, x: Any, y: Any, sample_weight: Any, class_weight: Any, reset_metrics: bool
) -> Any:
    """Anything but a Keras model: its own ``train_on_batch``, as the code called it."""
    method = getattr(receiver, "train_on_batch", None)
    if not callable(method):
        msg = (
            "train_on_batch takes a Keras model as its first argument (kutils migrate "
            "writes model.train_on_batch(x, y, class_weight=w) as "
            f"train_on_batch(model, x, y, class_weight=w)). Received: {receiver!r}"
        )
        raise TypeError(msg)
    keywords: dict[str, Any] = {"sample_weight": sample_weight, "class_weight": class_weight}
    if reset_metrics is not True:
        keywords["reset_metrics"] = reset_metrics
    return method(x, y, **keywords)


def _output_names(model: Any, y: Any) -> list[str]:
    """The model's output names; for a model not built yet, those ``y`` implies."""
    names = list(getattr(model, "output_names", None) or [])
    if names:
        return names
    if isinstance(y, dict):
        return list(y)
    if isinstance(y, (list, tuple)):
        return [f"output_{index + 1}" for index in range(len(y))]
    return ["output_1"]


def _per_output(y: Any, names: list[str], what: str) -> list[Any]:
    """The targets, one entry per output, in the order of ``names``."""
    if isinstance(y, dict):
        missing = [name for name in names if name not in y]
        if missing:
            msg = (
                f"No data provided for the outputs {missing}: give {what} as a dict with "
                f"a key for each output {names}. Received: {what} keys {sorted(y)}"
            )
            raise ValueError(msg)
        return [y[name] for name in names]
    if isinstance(y, (list, tuple)) and (len(names) > 1 or len(y) == 1):
        if len(y) != len(names):
            msg = (
                f"The model has {len(names)} outputs {names}, so {what} needs one array "
                f"per output. Received: a list of {len(y)} entries"
            )
            raise ValueError(msg)
        return list(y)
    if len(names) > 1:
        msg = (
            f"The model has {len(names)} outputs {names}, so {what} must be a list or a "
            f"dict by output name. Received: {type(y).__name__}"
        )
        raise TypeError(msg)
    return [y]


def _standardize(weight: Any, names: list[str], what: str) -> list[Any]:
    """Keras 2.3.1's ``standardize_sample_or_class_weights``: one entry per output."""
    if weight is None or (hasattr(weight, "__len__") and len(weight) == 0):
        return [None for _ in names]
    if len(names) == 1:
        if isinstance(weight, list) and len(weight) == 1:
            return weight
        if isinstance(weight, dict) and names[0] in weight:
            return [weight[names[0]]]
        return [weight]
    if isinstance(weight, list):
        if len(weight) != len(names):
            msg = (
                f"Provided `{what}` was a list of {len(weight)} elements, but the model "
                f"has {len(names)} outputs {names}: give one `{what}` per output (a list "
                "in their order, or a dict by output name)."
            )
            raise ValueError(msg)
        return weight
    if isinstance(weight, dict):
        return [weight.get(name) for name in names]
    msg = (
        f"The model has multiple outputs {names}, so `{what}` should be either a list or "
        f"a dict by output name. Received: {what}={weight!r}"
    )
    raise TypeError(msg)


def _warn_ignored(class_weight: Any, classes: list[Any], names: list[str]) -> None:
    """Say so when Keras 2 would have applied none of ``class_weight`` to an output."""
    if len(names) > 1 and isinstance(class_weight, dict) and all(c is None for c in classes):
        reason = f"none of its keys names an output of the model {names}"
    else:
        ignored = [n for n, c in zip(names, classes, strict=True) if _ignored(c)]
        if not ignored:
            return
        reason = f"the value for the outputs {ignored} is not a dict of class weights"
        if len(names) == 1 and isinstance(class_weight, list):
            reason = f"it is a list of {len(class_weight)} entries and the model has 1 output"
    msg = (
        f"class_weight is ignored, as Keras 2 ignored it, since {reason}. Received: "
        f"class_weight={class_weight!r}"
    )
    warnings.warn(msg, UserWarning, stacklevel=3)


def _ignored(cls: Any) -> bool:
    return cls is not None and not isinstance(cls, dict)


def _keras2_weights(target: Any, sample_weight: Any, class_weight: Any, floatx: str) -> Any:
    """Keras 2.3.1's ``standardize_weights`` of one output, without a temporal mode."""
    import numpy as np

    y = np.asarray(target)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        _check_sample_weight(sample_weight, y)
    class_sample_weight = None
    if isinstance(class_weight, dict):
        class_sample_weight = _class_sample_weight(y, class_weight)
    if sample_weight is not None and class_sample_weight is not None:
        return (sample_weight * class_sample_weight).astype(floatx)
    if sample_weight is not None:
        return sample_weight.astype(floatx)
    if class_sample_weight is not None:
        return class_sample_weight.astype(floatx)
    return np.ones((y.shape[0],), dtype=floatx)


def _check_sample_weight(sample_weight: Any, y: Any) -> None:
    if sample_weight.ndim != 1:
        msg = (
            f"Found a sample_weight array with shape {sample_weight.shape}: Keras 3 has "
            "no sample_weight_mode='temporal', so give one weight per sample (a 1D "
            "array)."
        )
        raise ValueError(msg)
    if y.shape[:1] != sample_weight.shape:
        msg = (
            f"Found a sample_weight array with shape {sample_weight.shape} for targets "
            f"with shape {y.shape}: sample_weight cannot be broadcast; give one weight "
            "per sample."
        )
        raise ValueError(msg)


def _class_sample_weight(y: Any, class_weight: dict[Any, Any]) -> Any:
    """Each sample's class weight: the class from argmax of a one-hot target, else its value."""
    import numpy as np

    if y.ndim > 2:
        msg = (
            "`class_weight` not supported for 3+ dimensional targets (as in Keras 2): "
            f"weigh the samples with sample_weight. Received: targets of shape {y.shape}"
        )
        raise ValueError(msg)
    if y.ndim == 2 and y.shape[1] > 1:
        y_classes = np.argmax(y, axis=1)
    elif y.ndim == 2:
        y_classes = np.reshape(y, y.shape[0])
    else:
        y_classes = y
    # A class is looked up as Keras 2 did: by value, so that 1.0 finds the key 1.
    weights = np.asarray([class_weight[cls] for cls in y_classes if cls in class_weight])
    if len(weights) != len(y_classes):
        missing = set(y_classes.tolist()) - set(class_weight)
        msg = (
            "`class_weight` must contain all classes in the data. The classes "
            f"{missing} exist in the data but not in `class_weight`: add a weight for "
            f"each. Received: class_weight={class_weight!r}"
        )
        raise ValueError(msg)
    return weights


def _keras2_order(logs: dict[str, Any], names: list[str]) -> list[Any]:
    """Keras 2's order of a model with several outputs: the loss, each output's loss,
    then each output's metrics, output by output (Keras 3 sorts the metrics by name)."""
    head = ["loss", *(f"{name}_loss" for name in names)]
    ordered = [key for key in head if key in logs]
    rest = [key for key in logs if key not in ordered]
    # The output a metric belongs to: the longest output name it starts with.
    by_length = sorted(enumerate(names), key=lambda item: -len(item[1]))

    def output_of(key: str) -> int:
        return next((i for i, name in by_length if key.startswith(f"{name}_")), len(names))

    ordered += sorted(rest, key=output_of)
    return [logs[key] for key in ordered]
