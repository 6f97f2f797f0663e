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
* in those steps a frozen ``BatchNormalization`` (or one in a frozen model) normalizes
  with the batch's statistics and leaves its moving statistics alone, as Keras 2.3.1's
  did (Keras 3's uses its moving statistics);
* its ``train_on_batch`` and ``test_on_batch`` return the batch's own loss and metrics,
  as Keras 2's did (Keras 3.8's return their means since ``fit`` or ``evaluate`` began);
* outside training, ``trainable``, ``trainable_weights``, ``summary``, saving and
  loading are Keras 3's.

Only the model given and its BatchNormalization layers are changed (their class is
swapped for a subclass made once per class, with the same name); no Keras class is
patched. This module imports Keras only when called.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from typing import Any

from kutils import _batch_steps, _keras_compat_training

__all__ = ["compile"]

# Optimizer instances already given to a compile call: the next compile with the same
# instance gets a copy sharing its step count (Keras 2 gave each compile its own slots).
_USED_OPTIMIZERS: weakref.WeakSet[Any] = weakref.WeakSet()
_PINNED_CLASSES: dict[tuple[type, type], type] = {}
# How many training steps of models compiled here are being traced in this thread.
_STEPS = threading.local()


def compile(
    model: Any,
    optimizer: Any,
    loss: Any = None,
    metrics: Any = None,
    loss_weights: Any = None,
    sample_weight_mode: Any = None,
    weighted_metrics: Any = None,
    target_tensors: Any = None,
    *,
    run_eagerly: bool | None = None,
    steps_per_execution: int | None = None,
    jit_compile: Any = None,
    auto_scale_loss: bool | None = None,
) -> None:
    """Compile a model so that it trains the weights trainable now (Keras 2's method).

    Args:
        model: a Keras model. Anything else with a ``compile`` method (a class of the
            user's own) has that method called with the arguments given.
        optimizer: an optimizer instance or name, as for Keras's ``compile``. An
            instance given to an earlier ``compile`` is copied for this model, the copy
            sharing its step count and learning rate (Keras 2's slots for each model).
        loss: the loss, or one per output (Keras's ``compile``).
        metrics: the metrics, or one list per output (Keras's ``compile``).
        loss_weights: the weights of the outputs' losses (Keras's ``compile``).
        sample_weight_mode: Keras 2's ``'temporal'`` (or ``None``): Keras 3 takes 2D
            sample weights as they come, so the argument is ignored with a warning.
        weighted_metrics: the metrics weighted by the sample weights.
        target_tensors: only ``None``: Keras 3 trains on the targets given to each step.
        run_eagerly: Keras 3's argument, passed on when given.
        steps_per_execution: Keras 3's argument, passed on when given.
        jit_compile: Keras 3's argument, passed on when given.
        auto_scale_loss: Keras 3's argument, passed on when given.

    Raises:
        TypeError: ``model`` has no ``compile`` method.
        NotImplementedError: ``target_tensors`` is given.

    Example:
        >>> compile(discriminator, opt, loss="binary_crossentropy")  # doctest: +SKIP
        >>> discriminator.trainable = False  # doctest: +SKIP
        >>> compile(combined, opt, loss="binary_crossentropy")  # doctest: +SKIP
        >>> discriminator.train_on_batch(x, y)  # doctest: +SKIP
    """
    import keras

    given = {
        "loss": loss,
        "metrics": metrics,
        "loss_weights": loss_weights,
        "weighted_metrics": weighted_metrics,
        "run_eagerly": run_eagerly,
        "steps_per_execution": steps_per_execution,
        "jit_compile": jit_compile,
        "auto_scale_loss": auto_scale_loss,
    }
    keywords = {name: value for name, value in given.items() if value is not None}
    if not isinstance(model, keras.Model):
        _own_compile(model, optimizer, keywords, sample_weight_mode, target_tensors)
        return
    if target_tensors is not None:
        msg = (
            "compile's target_tensors has no Keras 3 counterpart: give the targets to "
            f"fit or train_on_batch. Received: target_tensors={target_tensors!r}"
        )
        raise NotImplementedError(msg)
    if sample_weight_mode is not None:
        msg = (
            f"compile(sample_weight_mode={sample_weight_mode!r}) is ignored: Keras 3 has "
            "no such argument and takes 2D sample weights as they come."
        )
        warnings.warn(msg, stacklevel=2)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if optimizer in _USED_OPTIMIZERS or optimizer.built:
            optimizer = _keras_compat_training.optimizer_sharing_step(optimizer)
        _USED_OPTIMIZERS.add(optimizer)
    if not isinstance(model, _PinnedTraining):
        model.__class__ = _mixed(_PinnedTraining, type(model))
    model.compile(optimizer=optimizer, **keywords)
    _keras2_batch_norms(model)


def _own_compile(
    receiver: Any, optimizer: Any, keywords: dict[str, Any], mode: Any, targets: Any
) -> None:
    """Anything but a Keras model: its own ``compile``, with the arguments given."""
    method = getattr(receiver, "compile", None)
    if not callable(method):
        msg = (
            "compile takes a Keras model as its first argument (kutils migrate writes "
            f"model.compile(...) as compile(model, ...)). Received: {receiver!r}"
        )
        raise TypeError(msg)
    if mode is not None:
        keywords["sample_weight_mode"] = mode
    if targets is not None:
        keywords["target_tensors"] = targets
    method(optimizer, **keywords)


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

    # Keras 2.3.1's train_on_batch and test_on_batch returned the batch's own values,
    # which Keras 3.8's do not (see kutils/_batch_steps.py).
    def train_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        _batch_steps.reset_metrics_for_batch(self)
        return super().train_on_batch(*args, **kwargs)  # type: ignore[misc]

    def test_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        _batch_steps.reset_metrics_for_batch(self)
        return super().test_on_batch(*args, **kwargs)  # type: ignore[misc]

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

    def _symbolic_build(self, *args: Any, **kwargs: Any) -> Any:
        # Under a distribution strategy Keras builds the optimizer here, from
        # trainable_variables: the pinned ones.
        object.__setattr__(self, "_kutils_in_step", True)
        try:
            return super()._symbolic_build(*args, **kwargs)  # type: ignore[misc]
        finally:
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
        # renorm: Keras 3.9 and later (Keras 3.8's layer has no batch renormalization).
        if mask is not None or getattr(layer, "renorm", False):
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
