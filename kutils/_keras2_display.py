"""How Keras 2 showed a model's layers, shared by ``print_summary`` and ``model_to_dot``.

Keras 3 names, shapes and nests layers differently from Keras 2.3.1: a plain functional
model is a ``Functional``, a layer has no ``output_shape``, and ``Bidirectional`` is no
longer a ``Wrapper``. The rules below rebuild the Keras 2 view from the graph accessors
of ``kutils/_keras_compat.py`` (the only code here that reads Keras internals).
"""

from __future__ import annotations

from typing import Any

from kutils import _keras_compat


def is_model(layer: Any) -> bool:
    """Whether ``layer`` is a Keras model (Sequential, Functional or subclassed)."""
    import keras

    return isinstance(layer, keras.Model)


def wrapped_layer(layer: Any) -> tuple[Any, str] | None:
    """The layer inside a wrapper and the name Keras 2 showed for it, or None.

    ``TimeDistributed`` keeps its inner layer in ``.layer``. Keras 3's ``Bidirectional``
    is no longer a ``Wrapper``: it keeps copies named ``forward_<name>`` and
    ``backward_<name>``; Keras 2 showed the name of the layer the user passed.
    """
    import keras

    if isinstance(layer, keras.layers.Wrapper):
        return layer.layer, layer.layer.name
    if isinstance(layer, keras.layers.Bidirectional):
        forward = layer.forward_layer
        name = forward.name
        return forward, name[len("forward_") :] if name.startswith("forward_") else name
    return None


def legacy_output_shape(layer: Any) -> str:
    """Keras 2's ``str(layer.output_shape)``, or ``'multiple'`` where that raised.

    Keras 3 layers have no ``output_shape``. Keras 2 derived it from every call of the
    layer: the one output's shape tuple, a list of tuples for several outputs, and an
    ``AttributeError`` (shown as ``multiple``) when the layer was never called on
    symbolic tensors or its calls gave different shapes.
    """
    return _legacy_shape(_keras_compat.layer_calls(layer), "output_shapes")


def legacy_input_shape(layer: Any) -> str:
    """Keras 2's ``str(layer.input_shape)``, or ``'multiple'`` where that raised."""
    return _legacy_shape(_keras_compat.layer_calls(layer), "input_shapes")


def _legacy_shape(calls: list[_keras_compat.LayerCall], attribute: str) -> str:
    if not calls:
        return "multiple"
    texts = {str(getattr(call, attribute)) for call in calls}
    if len(texts) != 1:
        return "multiple"
    shapes = getattr(calls[0], attribute)
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def legacy_class_name(layer: Any) -> str:
    """The class name Keras 2 showed: ``Model`` for a plain functional model.

    ``keras.Model(inputs, outputs)`` made a ``Model`` in Keras 2 and makes a
    ``Functional`` in Keras 3; subclasses keep their own names.
    """
    if type(layer) is _keras_compat.functional_class():
        return "Model"
    return type(layer).__name__
