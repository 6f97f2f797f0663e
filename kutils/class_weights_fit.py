"""Keras 2's ``class_weight`` of ``fit``, for models with several outputs.

Keras 2 took ``class_weight`` in ``fit`` as in ``train_on_batch``: one dict of class
weights per output (a list in the order of the outputs, or a dict by output name), turned
into one sample weight per sample and output over the whole arrays before the first
epoch. Keras 3's ``fit`` takes one dict for a model with one output only
(``ValueError: class_weight is only supported for Models with a single output``), and
refuses ``class_weight`` together with ``sample_weight``. ``kutils migrate`` rewrites
``model.fit(..., class_weight=w)`` (only the calls that pass ``class_weight``) into
``fit(model, ..., class_weight=w)``, which computes those sample weights as Keras 2.3.1
did (:func:`kutils.train_on_batch` explains the rules) and hands them to Keras 3's
``fit``: the batches, the shuffling and a ``validation_split`` then carry each sample's
weight, as in Keras 2.

This module imports Keras only when the function is called.
"""

from __future__ import annotations

from typing import Any

from kutils import class_weights as _cw

__all__ = ["fit"]

# Keras 2.3.1's ``fit`` arguments that Keras 3's ``fit`` does not take, with their
# defaults: they only acted on generator and Sequence input.
_KERAS2_ONLY = {"max_queue_size": 10, "workers": 1, "use_multiprocessing": False}


def fit(
    model: Any,
    x: Any = None,
    y: Any = None,
    batch_size: int | None = None,
    epochs: int = 1,
    verbose: Any = 1,
    callbacks: Any = None,
    validation_split: float = 0.0,
    validation_data: Any = None,
    shuffle: Any = True,
    class_weight: Any = None,
    sample_weight: Any = None,
    initial_epoch: int = 0,
    steps_per_epoch: int | None = None,
    validation_steps: int | None = None,
    validation_freq: Any = 1,
    max_queue_size: int = 10,
    workers: int = 1,
    use_multiprocessing: bool = False,
    *,
    validation_batch_size: int | None = None,
) -> Any:
    """Train a model on arrays, with Keras 2's ``class_weight`` (Keras 2's method).

    The arguments are Keras 2.3.1's ``Model.fit``'s, in its order, after the model.

    Args:
        model: a compiled Keras model. Anything else with a ``fit`` method (a class of
            the user's own, a scikit-learn estimator) has that method called with ``x``,
            ``y`` and the arguments given other values than Keras 2's defaults.
        x: the inputs, as for Keras's ``fit``.
        y: the targets: an array for a model with one output; a list (in the order of
            the outputs) or a dict by output name for a model with several.
        batch_size: as for Keras's ``fit``.
        epochs: as for Keras's ``fit``.
        verbose: as for Keras's ``fit``; 1 by default, as in Keras 2.
        callbacks: as for Keras's ``fit``.
        validation_split: as for Keras's ``fit``; the samples set apart keep their
            weights, as in Keras 2.
        validation_data: as for Keras's ``fit`` (not class-weighted, as in Keras 2).
        shuffle: as for Keras's ``fit``.
        class_weight: ``None``, a dict mapping each class to its weight (one output), or
            one such dict per output: a list in the order of the outputs, or a dict by
            output name (an output left out, or given ``None``, is not weighted).
        sample_weight: ``None``, or per-sample weights: an array of shape ``(n,)`` for
            one output; a list or a dict by output name for several. Multiplied by the
            class weights, as in Keras 2.3.1.
        initial_epoch: as for Keras's ``fit``.
        steps_per_epoch: as for Keras's ``fit``.
        validation_steps: as for Keras's ``fit``.
        validation_freq: as for Keras's ``fit``.
        max_queue_size: Keras 2's, for generator input; Keras 3's ``fit`` has no such
            argument: a value other than the default is passed on, and refused there.
        workers: the same.
        use_multiprocessing: the same.
        validation_batch_size: Keras 3's, passed on when given.

    Returns:
        The ``History`` of Keras 3's ``fit``.

    Raises:
        ValueError: a class of the targets is missing from its dict, the targets of a
            weighted output have rank 3 or more, or a list has not one entry per output
            (Keras 2's errors).
        TypeError: the weights of a model with several outputs are neither a list nor a
            dict.
        NotImplementedError: ``class_weight`` of a model with several outputs with
            inputs that are not arrays (a generator, a ``Sequence``, a dataset, which
            Keras 2.3.1 handed on to ``fit_generator``): give each batch its sample
            weights instead.

    Example:
        >>> fit(discriminator, imgs, [valid, labels], epochs=3,
        ...     class_weight=[cw_valid, cw_label])  # doctest: +SKIP
    """
    import keras

    given = _keras3_arguments(locals())
    if not isinstance(model, keras.Model):
        return _own_fit(model, x, y, class_weight, sample_weight, given)
    if class_weight is None:
        return model.fit(x, y, sample_weight=sample_weight, **given)
    names = _cw._output_names(model, y)
    if y is None:
        if len(names) > 1:
            msg = (
                "class_weight of a model with several outputs needs the targets as arrays "
                "(y=): with a generator, Sequence or dataset, give each batch its weights "
                "instead, yielding (x, [y1, y2], [w1, w2]). Received: y=None, x of type "
                f"{type(x).__name__}"
            )
            raise NotImplementedError(msg)
        return model.fit(x, class_weight=class_weight, sample_weight=sample_weight, **given)
    targets = _cw._per_output(y, names, "y")
    weights = _keras2_sample_weights(targets, names, class_weight, sample_weight)
    if len(names) == 1:
        return model.fit(x, targets[0], sample_weight=weights[0], **given)
    # Targets and weights as lists in the order of the outputs (Keras 3 matches a dict of
    # targets to the outputs, but not a dict of sample weights).
    return model.fit(x, targets, sample_weight=weights, **given)


def _keras3_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """``fit``'s arguments for Keras 3's ``fit``, but ``x``, ``y`` and the weights:
    Keras 2's own ones only when not at their defaults (Keras 3 then refuses them)."""
    skipped = {"model", "x", "y", "class_weight", "sample_weight", "keras"}
    given = {
        name: value
        for name, value in arguments.items()
        if name not in skipped and not (name in _KERAS2_ONLY and value == _KERAS2_ONLY[name])
    }
    if given["validation_batch_size"] is None:
        del given["validation_batch_size"]
    return given


def _keras2_sample_weights(
    targets: list[Any], names: list[str], class_weight: Any, sample_weight: Any
) -> list[Any]:
    """Keras 2.3.1's sample weights of each output, from its class and sample weights."""
    import keras

    samples = _cw._standardize(sample_weight, names, "sample_weight")
    classes = _cw._standardize(class_weight, names, "class_weight")
    _cw._warn_ignored(class_weight, classes, names)
    floatx = keras.backend.floatx()
    return [
        _cw._keras2_weights(target, sample, cls, floatx)
        for target, sample, cls in zip(targets, samples, classes, strict=True)
    ]


def _own_fit(
    receiver: Any, x: Any, y: Any, class_weight: Any, sample_weight: Any, given: dict[str, Any]
) -> Any:
    """Anything but a Keras model: its own ``fit``, with ``x``, ``y`` and the arguments
    given values other than Keras 2's defaults."""
    method = getattr(receiver, "fit", None)
    if not callable(method):
        msg = (
            "fit takes a Keras model as its first argument (kutils migrate writes "
            "model.fit(x, y, class_weight=w) as fit(model, x, y, class_weight=w)). "
            f"Received: {receiver!r}"
        )
        raise TypeError(msg)
    import inspect

    defaults = {
        name: parameter.default for name, parameter in inspect.signature(fit).parameters.items()
    }
    keywords = {name: value for name, value in given.items() if defaults.get(name) != value}
    if class_weight is not None:
        keywords["class_weight"] = class_weight
    if sample_weight is not None:
        keywords["sample_weight"] = sample_weight
    return method(x, y, **keywords)
