"""Keras 2's ``compile``: the weights a model trains are those trainable when compiled.

Keras 2 collected a model's trainable weights when ``compile`` ran and trained exactly
those until the next ``compile``, whatever ``trainable`` said later (it only warned about
the discrepancy). The GAN scripts of the Keras 2 era rely on it::

    discriminator.compile(...)          # collects all the discriminator's weights
    discriminator.trainable = False     # for the combined model only
    combined = Model(z, discriminator(generator(z)))
    combined.compile(...)               # collects the generator's weights only
    discriminator.train_on_batch(...)   # Keras 2: trains the discriminator
    combined.train_on_batch(...)        # trains the generator

Keras 3 reads ``trainable`` when it builds the training step, so the discriminator never
trains ("The model does not have any trainable weights"). ``kutils migrate`` rewrites
``model.compile(...)`` into ``compile(model, ...)`` in the files that set ``.trainable``;
the function calls Keras 3's ``compile`` and gives the model Keras 2's meaning:

* its training steps (``fit``, ``train_on_batch``, and kutils' ``fit_generator`` and
  ``train_on_batch``) update exactly the weights that were trainable when it was
  compiled, until it is compiled again (by this function or by ``model.compile``);
* an optimizer instance given to several ``compile`` calls keeps, as in Keras 2, one
  step count and one learning rate for all of them, and its own slots (Adam's moments,
  ...) for each model;
* outside training, ``trainable``, ``trainable_weights``, ``summary``, saving and
  loading are Keras 3's.

Only the model given is changed (its class is swapped for a subclass made once per
class); no Keras class is patched. This module imports Keras only when called.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from kutils import _keras_compat

__all__ = ["compile"]

# Optimizer instances already given to a compile call: the next compile with the same
# instance gets a copy sharing its step count (Keras 2 gave each compile its own slots).
_USED_OPTIMIZERS: weakref.WeakSet[Any] = weakref.WeakSet()
_PINNED_CLASSES: dict[tuple[type, type], type] = {}
# How many training steps of models compiled here are being traced in this thread.
_STEPS = threading.local()


def compile(model: Any, *args: Any, **kwargs: Any) -> None:
    """Compile a model so that it trains the weights trainable now (Keras 2's method).

    Args:
        model: a Keras model. Anything else with a ``compile`` method (a class of the
            user's own) has that method called with the same arguments.
        *args: the arguments of Keras 3's ``Model.compile`` (``optimizer`` first).
        **kwargs: the same, by keyword.

    Raises:
        TypeError: ``model`` has no ``compile`` method.

    Example:
        >>> compile(discriminator, loss="binary_crossentropy", optimizer=opt)  # doctest: +SKIP
        >>> discriminator.trainable = False  # doctest: +SKIP
        >>> compile(combined, loss="binary_crossentropy", optimizer=opt)  # doctest: +SKIP
        >>> discriminator.train_on_batch(x, y)  # doctest: +SKIP  (trains it, as Keras 2)
    """
    import keras

    if not isinstance(model, keras.Model):
        method = getattr(model, "compile", None)
        if not callable(method):
            msg = (
                "compile takes a Keras model as its first argument (kutils migrate writes "
                "model.compile(...) as compile(model, ...)). "
                f"Received: {model!r}"
            )
            raise TypeError(msg)
        method(*args, **kwargs)
        return
    args, kwargs = _own_optimizer(args, kwargs)
    if not isinstance(model, _PinnedTraining):
        model.__class__ = _mixed(_PinnedTraining, type(model))
    model.compile(*args, **kwargs)
    _keras2_batch_norms(model)


def _keras2_batch_norms(model: Any) -> None:
    """Give the model's BatchNormalization layers Keras 2.3.1's frozen behaviour."""
    import keras

    stack, seen = [model], set()
    while stack:
        layer = stack.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        stack.extend(getattr(layer, "layers", ()))
        if (
            isinstance(layer, keras.layers.BatchNormalization)
            and not isinstance(layer, _FrozenBatchNormalization)
            and type(layer).call is keras.layers.BatchNormalization.call
        ):
            layer.__class__ = _mixed(_FrozenBatchNormalization, type(layer))


def _own_optimizer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """The arguments, with an optimizer instance used before replaced by its copy."""
    import keras

    in_args = bool(args)
    optimizer = args[0] if in_args else kwargs.get("optimizer")
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        return args, kwargs
    if optimizer in _USED_OPTIMIZERS or optimizer.built:
        optimizer = _keras_compat.optimizer_sharing_step(optimizer)
    _USED_OPTIMIZERS.add(optimizer)
    if in_args:
        return (optimizer, *args[1:]), kwargs
    return args, {**kwargs, "optimizer": optimizer}


class _PinnedTraining:
    """Mixed into a model's class: training reads the weights pinned at compile time."""

    _kutils_pinned: tuple[Any, ...] | None = None
    _kutils_in_step = False

    def compile(self, *args: Any, **kwargs: Any) -> None:
        super().compile(*args, **kwargs)  # type: ignore[misc]
        # A model not built yet has no weights: they are collected at its first step,
        # when Keras 2's deferred compile collected them.
        built = getattr(self, "built", False)
        pinned = tuple(super().trainable_weights) if built else None  # type: ignore[misc]
        object.__setattr__(self, "_kutils_pinned", pinned)

    def train_step(self, data: Any) -> Any:
        if self._kutils_pinned is None:
            object.__setattr__(self, "_kutils_pinned", tuple(super().trainable_weights))  # type: ignore[misc]
        object.__setattr__(self, "_kutils_in_step", True)
        _STEPS.depth = getattr(_STEPS, "depth", 0) + 1
        try:
            return super().train_step(data)  # type: ignore[misc]
        finally:
            _STEPS.depth -= 1
            object.__setattr__(self, "_kutils_in_step", False)

    @property
    def trainable_weights(self) -> list[Any]:
        if self._kutils_in_step and self._kutils_pinned is not None:
            return list(self._kutils_pinned)
        return super().trainable_weights  # type: ignore[misc]

    @property
    def trainable_variables(self) -> list[Any]:
        if self._kutils_in_step and self._kutils_pinned is not None:
            return list(self._kutils_pinned)
        return super().trainable_variables  # type: ignore[misc]


class _FrozenBatchNormalization:
    """Mixed into a BatchNormalization layer: Keras 2.3.1's behaviour when frozen.

    Keras 2.3.1's layer ignored ``trainable`` in its call: in a training step it
    normalized with the batch's statistics, and, frozen (or in a frozen model), its
    moving statistics were not updated (a frozen layer or model had no updates). Keras
    3's frozen layer normalizes with its moving statistics. Only in the training steps of
    models compiled by :func:`compile`; elsewhere it is Keras 3's layer.
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        layer: Any = self
        if not (training and not layer.trainable and getattr(_STEPS, "depth", 0)):
            return super().call(inputs, training=training, mask=mask)  # type: ignore[misc]
        if mask is not None or layer.renorm:
            return super().call(inputs, training=training, mask=mask)  # type: ignore[misc]
        import keras
        from keras import ops

        x = ops.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        axis = layer.axis % len(x.shape)
        mean, variance = ops.moments(x, axes=[i for i in range(len(x.shape)) if i != axis])
        outputs = ops.batch_normalization(
            x=x,
            mean=mean,
            variance=variance,
            axis=axis,
            offset=ops.cast(layer.beta, x.dtype) if layer.center else None,
            scale=ops.cast(layer.gamma, x.dtype) if layer.scale else None,
            epsilon=layer.epsilon,
        )
        return ops.cast(outputs, layer.compute_dtype)


def _mixed(mixin: type, cls: type) -> type:
    """``cls`` with ``mixin`` mixed in, made once, named as ``cls`` (for saving)."""
    made = _PINNED_CLASSES.get((mixin, cls))
    if made is None:
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        made = type(cls.__name__, (mixin, cls), namespace)
        _PINNED_CLASSES[(mixin, cls)] = made
    return made
