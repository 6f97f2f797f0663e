"""Keras 2's ``reset_states`` method, as a function of a model, a recurrent layer or a metric.

Keras 3's models have no ``reset_states``. ``kutils migrate`` rewrites
``model.reset_states()`` into ``reset_states(model)`` (and ``x.reset_states(...)`` on any
other receiver the same way, since a file does not say what ``x`` is); the function does
what Keras 2.3.1's method of that object did:

* a model (``Network.reset_states``): resets each of its layers that is stateful and has
  ``reset_states``; a nested model counts as stateful when one of its layers is;
* a recurrent layer (``RNN.reset_states(states=None)``): raises ``AttributeError`` when
  the layer is not stateful, sets its states to zeros, or to ``states`` when given
  (checked one by one against the states' shapes);
* a metric (``Metric.reset_states``): its variables back to zero (Keras 3's
  ``reset_state``);
* anything else with a ``reset_states`` method (``Bidirectional``, a class of the
  user's): that method.

This module imports Keras only when the function is called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["reset_states"]


def reset_states(obj: Any, states: Any = None) -> None:
    """Reset the states of a stateful model, recurrent layer or metric (Keras 2's method).

    Args:
        obj: a Keras model, a recurrent layer (``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN``),
            a metric, or any object with a ``reset_states`` method.
        states: for a recurrent layer only: the values to set its states to (a numpy
            array, or a list with one array per state, each of shape
            ``(batch_size, units)``); ``None`` sets zeros.

    Raises:
        AttributeError: ``obj`` is a recurrent layer that is not stateful (as Keras 2
            raised), or has nothing to reset.
        ValueError: ``states`` has another number of arrays, or another shape, than the
            layer's states; or the layer is not built yet and ``states`` is given.
        TypeError: ``states`` given for a model or a metric, which Keras 2 refused too.

    Example:
        >>> for epoch in range(epochs):  # doctest: +SKIP
        ...     model.fit(x, y, batch_size=1, shuffle=False)
        ...     reset_states(model)
    """
    import keras

    rnn_method = keras.layers.RNN.reset_states
    if isinstance(obj, keras.layers.RNN) and type(obj).reset_states is rnn_method:
        _reset_rnn(obj, states)
        return
    method = getattr(obj, "reset_states", None)
    if callable(method):
        if states is None:
            method()
        else:
            method(states)
        return
    kind = "a model" if isinstance(obj, keras.Model) else "a metric"
    if isinstance(obj, (keras.Model, keras.metrics.Metric)) and states is not None:
        msg = (
            f"reset_states of {kind} takes no states (Keras 2's did not either): pass "
            "them to the recurrent layer, reset_states(model.layers[i], states). "
            f"Received: states={states!r}"
        )
        raise TypeError(msg)
    if isinstance(obj, keras.Model):
        for layer in obj.layers:
            if _stateful(layer) and (hasattr(layer, "reset_states") or _is_model(layer)):
                reset_states(layer)
        return
    if isinstance(obj, keras.metrics.Metric):
        obj.reset_state()
        return
    msg = (
        "reset_states takes a Keras model, a stateful recurrent layer or a metric. "
        f"Received: obj={obj!r} (of type {type(obj).__name__}), which has no states to reset"
    )
    raise AttributeError(msg)


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _stateful(layer: Any) -> bool:
    """Keras 2's ``layer.stateful``: for a model, whether one of its layers is."""
    if _is_model(layer) and not hasattr(layer, "reset_states"):
        return any(_stateful(inner) for inner in layer.layers)
    return bool(getattr(layer, "stateful", False))


def _reset_rnn(layer: Any, states: Any) -> None:
    """Keras 2.3.1's ``RNN.reset_states(states)`` on a Keras 3 recurrent layer."""
    import keras

    if not layer.stateful:
        msg = (
            f"Layer must be stateful: {layer.name} was made with stateful=False, and only "
            "a stateful recurrent layer keeps states to reset. Received: "
            f"layer={layer.name!r} (stateful=False)"
        )
        raise AttributeError(msg)
    variables = keras.tree.flatten(layer.states) if layer.states is not None else []
    if states is None:
        layer.reset_state()  # before the layer is built there is nothing to reset yet
        return
    if not variables:
        msg = (
            f"Layer {layer.name} is not built yet, so it has no states to set: call the "
            "model on a batch first (or build it), then set the states. Received: "
            f"states={states!r}"
        )
        raise ValueError(msg)
    values = list(states) if isinstance(states, (list, tuple)) else [states]
    if len(values) != len(variables):
        msg = (
            f"Layer {layer.name} expects {len(variables)} states, but it received "
            f"{len(values)} state values. Received: states={states!r}"
        )
        raise ValueError(msg)
    for index, (value, variable) in enumerate(zip(values, variables, strict=True)):
        shape = tuple(getattr(value, "shape", ()))
        if shape != tuple(variable.shape):
            msg = (
                f"State {index} is incompatible with layer {layer.name}: expected "
                f"shape={tuple(variable.shape)}, found shape={shape}"
            )
            raise ValueError(msg)
        variable.assign(value)
