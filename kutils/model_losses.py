"""Keras 2's ``Model.add_loss`` on symbolic tensors, as a function of a model.

Keras 2 let a model take a loss tensor built from its own graph (the variational
autoencoder of the Keras 2 examples: ``vae.add_loss(K.mean(reconstruction + kl))``,
then ``vae.compile(optimizer='adam')``). Keras 3 refuses it (``Functional.add_loss``
raises ``NotImplementedError``). ``kutils migrate`` rewrites ``model.add_loss(t)``
(never ``self.add_loss``, a layer's own loss in its ``call``) into
``add_loss(model, t)``, which gives the call Keras 2's meaning:

* the loss is computed in the same forward pass as the model's outputs (a model that
  samples at random, like the autoencoder, sees one sample per step, as in Keras 2);
* ``fit``, ``evaluate``, ``train_on_batch`` and ``test_on_batch`` minimize and report it,
  alone (``compile`` without a loss) or added to the compiled loss, in the ``loss`` log;
  ``train_on_batch`` and ``test_on_batch`` return the batch's own loss, on every Keras
  3.8 to 3.15 (Keras 3.8's return the mean since ``fit`` or ``evaluate`` began);
* Keras 2.3.1 took the mean of the total loss, so a loss that is not a scalar counts with
  its mean (Keras 3 would sum it);
* the model still predicts only its own outputs, and its weights, ``save_weights`` and
  ``load_weights`` are unchanged.

This module imports no Keras at import time.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kutils import _batch_steps, _keras_compat, _keras_compat_training

__all__ = ["add_loss"]

_STATE = "_kutils_added_losses"


def add_loss(model: Any, losses: Any, inputs: Any = None) -> None:
    """Add a loss built from the model's own tensors to the model (Keras 2's method).

    Args:
        model: a built Keras model (functional or ``Sequential``). Anything else with
            an ``add_loss`` method (a layer, a model class overriding it) has that
            method called, as the code did before ``kutils migrate`` rewrote it.
        losses: a loss, or a list of losses. Each one is a symbolic tensor computed from
            the model's inputs, outputs and the tensors between them (``keras.ops``
            functions of ``model.inputs`` and ``model.outputs``), a Python number (added
            to the loss as is, as Keras 2 did), or a callable taking no argument and
            returning a tensor (called at each step, as tf.keras did). Tensors with
            values, added inside a layer's ``call``, go to Keras 3's own
            ``model.add_loss``.
        inputs: only ``None``, Keras 2's default.

    Raises:
        TypeError: ``model`` has no ``add_loss``, or a loss is none of the above.
        ValueError: a symbolic loss needs a tensor that is not computed from the
            model's inputs, or ``inputs`` is given.

    Example:
        >>> add_loss(vae, keras.ops.mean(reconstruction_loss + kl_loss))  # doctest: +SKIP
        >>> vae.compile(optimizer="adam")  # doctest: +SKIP
    """
    import keras

    if not _keras_models_add_loss(model, keras):
        _own_add_loss(model, losses, inputs)
        return
    items = _as_list(losses)
    if not items:
        return  # Keras 2 ignored None and []
    _check_inputs(inputs)
    kinds = [_kind(item, keras) for item in items]
    if all(kind == "value" for kind in kinds):
        model.add_loss(losses)  # a loss with values, inside a call: Keras 3's own
        return
    if "value" in kinds:
        msg = (
            "add_loss got symbolic and computed tensors in one list: add the tensors "
            "computed inside a layer's call() with that layer's self.add_loss(...). "
            f"Received: losses={losses!r}"
        )
        raise TypeError(msg)
    state = _state(model)
    added = _AddedLosses(
        symbolic=[*state.symbolic] if state else [],
        others=[*state.others] if state else [],
    )
    for item, kind in zip(items, kinds, strict=True):
        if kind == "symbolic":
            if all(item is not known for known in added.symbolic):  # Keras 2: once each
                added.symbolic.append(item)
        else:
            added.others.append(item)
    added.graph = _joint_graph(model, added.symbolic, keras)
    _install(model, added)


@dataclass
class _AddedLosses:
    """The losses added to one model, and the graph computing them with its outputs."""

    symbolic: list[Any] = field(default_factory=list)
    others: list[Any] = field(default_factory=list)
    graph: Any = None


def _keras_models_add_loss(model: Any, keras: Any) -> bool:
    """Whether ``model`` is a Keras model whose add_loss is Keras's own."""
    method = getattr(type(model), "add_loss", None)
    module = getattr(method, "__module__", "") or ""
    return isinstance(model, keras.Model) and module.startswith("keras.")


def _own_add_loss(receiver: Any, losses: Any, inputs: Any) -> None:
    """Anything else (a layer, a class of the user's own): its add_loss, as before."""
    method = getattr(receiver, "add_loss", None)
    if not callable(method):
        msg = (
            "add_loss takes a Keras model as its first argument (kutils migrate writes "
            f"model.add_loss(loss) as add_loss(model, loss)). Received: {receiver!r}"
        )
        raise TypeError(msg)
    if inputs is None:
        method(losses)
    else:
        method(losses, inputs=inputs)


def _as_list(losses: Any) -> list[Any]:
    if losses is None:
        return []
    if isinstance(losses, (list, tuple)):
        return list(losses)
    return [losses]


def _check_inputs(inputs: Any) -> None:
    if inputs is None or (isinstance(inputs, list) and not inputs):
        return
    msg = (
        "add_loss(model, loss, inputs=...) is not supported: Keras 2.3.1 left a "
        "model's loss conditional on inputs out of the model's losses, so it was never "
        "trained on. Call add_loss(model, loss) to train on it, or remove the call. "
        f"Received: inputs={inputs!r}"
    )
    raise ValueError(msg)


def _kind(item: Any, keras: Any) -> str:
    if isinstance(item, keras.KerasTensor):
        return "symbolic"
    if isinstance(item, numbers.Real) and not isinstance(item, bool):
        return "number"
    if keras.ops.is_tensor(item):
        return "value"
    if callable(item):
        return "callable"
    msg = (
        "add_loss takes symbolic tensors built from the model's tensors, numbers, "
        "callables taking no argument, or a list of these. "
        f"Received: {type(item).__name__} {item!r}"
    )
    raise TypeError(msg)


def _state(model: Any) -> _AddedLosses | None:
    return model.__dict__.get(_STATE)


def _joint_graph(model: Any, symbolic: list[Any], keras: Any) -> Any:
    """A functional graph from the model's inputs to its outputs and the losses."""
    if not symbolic:
        return None
    try:
        model_inputs, model_outputs = model.input, model.output
    except (AttributeError, ValueError):  # a Sequential model has only the lists
        model_inputs, model_outputs = _single(model, "inputs"), _single(model, "outputs")
    try:
        graph = keras.Model(model_inputs, [model_outputs, list(symbolic)])
    except ValueError as error:
        raise ValueError(_not_connected(model, str(error))) from error
    # Keras 3.15 refuses such a graph above; Keras 3.8 builds it, with the other Input
    # among its layers, and fails only when called (a KeyError).
    own = model_inputs if isinstance(model_inputs, list) else [model_inputs]
    foreign = [
        layer.name
        for layer in graph.layers
        if isinstance(layer, keras.layers.InputLayer)
        and all(layer.output is not tensor for tensor in own)
    ]
    if foreign:
        raise ValueError(_not_connected(model, f"the loss uses the Input {foreign}"))
    return graph


def _not_connected(model: Any, reason: str) -> str:
    return (
        "add_loss needs losses computed from the model's own inputs: a loss uses a "
        "tensor that is not computed from them (another model's Input?). Build the "
        "loss from the tensors between model.inputs and model.outputs. "
        f"Received: model={model.name!r} with inputs {model.inputs} ({reason})"
    )


def _single(model: Any, name: str) -> Any:
    try:
        tensors = getattr(model, name)
    except (AttributeError, ValueError) as error:
        tensors = None
        reason = f" ({error})"
    else:
        reason = ""
    if not tensors:
        msg = (
            "add_loss needs a built model with inputs and outputs (a functional model, "
            f"or a Sequential model given its input shape). Received: model={model.name!r}"
            f" with no {name}{reason}"
        )
        raise ValueError(msg)
    return tensors[0] if len(tensors) == 1 else list(tensors)


def _install(model: Any, added: _AddedLosses) -> None:
    """Make the model's call compute its outputs and record the losses, in one pass."""
    first = _state(model) is None
    # object.__setattr__: neither Keras's attribute tracking nor the weights file
    # (which walks the model's attributes) sees the state or the graph.
    object.__setattr__(model, _STATE, added)
    if first:
        _keras_compat.check_keras_version("add_loss")
        object.__setattr__(model, "call", _call_with_losses(model, model.call))
        # Keras 2.3.1's train_on_batch and test_on_batch returned the batch's own loss,
        # which Keras 3.8's do not (see kutils/_batch_steps.py).
        _batch_steps.keep_batch_values(model)


def _call_with_losses(model: Any, own_call: Callable[..., Any]) -> Callable[..., Any]:
    import keras

    def call(inputs: Any, training: Any = None, mask: Any = None, **kwargs: Any) -> Any:
        added: _AddedLosses = model.__dict__[_STATE]
        if added.graph is None:
            outputs = own_call(inputs, training=training, mask=mask, **kwargs)
            values = []
        else:
            outputs, values = added.graph.call(inputs, training=training, mask=mask, **kwargs)
        for value in [*values, *(_value(item) for item in added.others)]:
            _keras_compat_training.add_call_loss(model, _mean(value, keras))
        return outputs

    return call


def _mean(value: Any, keras: Any) -> Any:
    """Keras 2.3.1 trained on ``K.mean(compiled loss + every added loss)``: a loss
    that is not a scalar counts with its mean."""
    value = keras.ops.convert_to_tensor(value)
    if not keras.backend.is_float_dtype(value.dtype):
        value = keras.ops.cast(value, keras.config.floatx())
    return keras.ops.mean(value)


def _value(item: Any) -> Any:
    if not callable(item):
        return item  # a number
    value = item()
    import keras

    if not keras.ops.is_tensor(value) and not isinstance(value, numbers.Real):
        msg = (
            "a loss callable given to add_loss must return a tensor or a number. "
            f"Received: {item!r} returned {type(value).__name__}"
        )
        raise TypeError(msg)
    return value
