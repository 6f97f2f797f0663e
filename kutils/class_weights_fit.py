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

# Keras 2.3.1's ``Model.fit`` parameters, in their order.
_KERAS2_FIT = (
    "x",
    "y",
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
    "class_weight",
    "sample_weight",
    "initial_epoch",
    "steps_per_epoch",
    "validation_steps",
    "validation_freq",
    "max_queue_size",
    "workers",
    "use_multiprocessing",
)


def fit(model: Any, *args: Any, **kwargs: Any) -> Any:
    """Train a model on arrays, with Keras 2's ``class_weight`` (Keras 2's method).

    Takes the arguments of Keras 2.3.1's ``Model.fit``, in its order (``x, y,
    batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
    class_weight, sample_weight, ...``), by position or by name.

    Args:
        model: a compiled Keras model. Anything else with a ``fit`` method (a class of
            the user's own, a scikit-learn estimator) has that method called with the
            arguments given.
        *args: Keras 2's ``fit`` arguments by position.
        **kwargs: Keras 2's ``fit`` arguments by name (and Keras 3's, passed on).
            ``class_weight``: ``None``, a dict mapping each class to its weight (one
            output), or one such dict per output: a list in the order of the outputs,
            or a dict by output name (an output left out, or given ``None``, is not
            weighted). ``sample_weight`` is multiplied in, as in Keras 2.3.1.

    Returns:
        The ``History`` of Keras 3's ``fit``.

    Raises:
        ValueError: a class of the targets is missing from its dict, the targets of a
            weighted output have rank 3 or more, or a list has not one entry per output
            (Keras 2's errors).
        TypeError: an argument is given twice or is not one of ``fit``'s, or the
            weights of a model with several outputs are neither a list nor a dict.
        NotImplementedError: ``class_weight`` of a model with several outputs together
            with inputs that are not arrays (a generator, a ``Sequence``, a dataset):
            Keras 2 took class weights only with arrays in ``fit``, too.

    Example:
        >>> fit(discriminator, imgs, [valid, labels], epochs=3,
        ...     class_weight=[cw_valid, cw_label])  # doctest: +SKIP
    """
    import keras

    if not isinstance(model, keras.Model):
        return _own_fit(model, args, kwargs)
    given = _by_name(args, kwargs)
    class_weight = given.pop("class_weight", None)
    if class_weight is None:
        return model.fit(**given)
    x, y = given.pop("x", None), given.pop("y", None)
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
        return model.fit(x, class_weight=class_weight, **given)  # Keras 3's, one output
    targets = _cw._per_output(y, names, "y")
    samples = _cw._standardize(given.pop("sample_weight", None), names, "sample_weight")
    classes = _cw._standardize(class_weight, names, "class_weight")
    _cw._warn_ignored(class_weight, classes, names)
    floatx = keras.backend.floatx()
    weights = [
        _cw._keras2_weights(target, sample, cls, floatx)
        for target, sample, cls in zip(targets, samples, classes, strict=True)
    ]
    if len(names) == 1:
        return model.fit(x, targets[0], sample_weight=weights[0], **given)
    # Targets and weights as lists in the order of the outputs (Keras 3 matches a dict of
    # targets to the outputs, but not a dict of sample weights).
    return model.fit(x, targets, sample_weight=weights, **given)


def _by_name(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments by Keras 2's names."""
    if len(args) > len(_KERAS2_FIT):
        msg = (
            f"fit takes at most {len(_KERAS2_FIT)} arguments after the model (Keras 2's "
            f"{', '.join(_KERAS2_FIT)}). Received: {len(args)} positional arguments"
        )
        raise TypeError(msg)
    given = dict(zip(_KERAS2_FIT, args, strict=False))
    twice = sorted(set(given) & set(kwargs))
    if twice:
        msg = f"fit got {twice} both by position and by name. Received: {twice}"
        raise TypeError(msg)
    given.update(kwargs)
    return given


def _own_fit(receiver: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Anything but a Keras model: its own ``fit``, as the code called it."""
    method = getattr(receiver, "fit", None)
    if not callable(method):
        msg = (
            "fit takes a Keras model as its first argument (kutils migrate writes "
            "model.fit(x, y, class_weight=w) as fit(model, x, y, class_weight=w)). "
            f"Received: {receiver!r}"
        )
        raise TypeError(msg)
    return method(*args, **kwargs)
