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

import weakref
from typing import Any

from kutils import _keras_compat

__all__ = ["compile"]

# Optimizer instances already given to a compile call: the next compile with the same
# instance gets a copy sharing its step count (Keras 2 gave each compile its own slots).
_USED_OPTIMIZERS: weakref.WeakSet[Any] = weakref.WeakSet()
_PINNED_CLASSES: dict[type, type] = {}


def compile(model: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A001
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
        model.__class__ = _pinned_class(type(model))
    model.compile(*args, **kwargs)


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
        try:
            return super().train_step(data)  # type: ignore[misc]
        finally:
            object.__setattr__(self, "_kutils_in_step", False)

    @property
    def trainable_weights(self) -> list[Any]:
        if self._kutils_in_step and self._kutils_pinned is not None:
            return list(self._kutils_pinned)
        return super().trainable_weights  # type: ignore[misc,no-any-return]

    @property
    def trainable_variables(self) -> list[Any]:
        if self._kutils_in_step and self._kutils_pinned is not None:
            return list(self._kutils_pinned)
        return super().trainable_variables  # type: ignore[misc,no-any-return]


def _pinned_class(cls: type) -> type:
    """``cls`` with :class:`_PinnedTraining` mixed in, made once, named as ``cls``."""
    made = _PINNED_CLASSES.get(cls)
    if made is None:
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        made = type(cls.__name__, (_PinnedTraining, cls), namespace)
        _PINNED_CLASSES[cls] = made
    return made
