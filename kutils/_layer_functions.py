"""``get_source_inputs`` and ``convert_all_kernels_in_model`` of Keras 2's ``layer_utils``."""

from __future__ import annotations

from typing import Any

__all__ = ["convert_all_kernels_in_model", "count_params", "get_source_inputs"]


def get_source_inputs(tensor: Any, layer: Any = None, node_index: int | None = None) -> Any:
    """Return the list of input tensors needed to compute ``tensor``.

    Args:
        tensor: a symbolic Keras tensor (the output of a layer call).
        layer: start from this layer's node instead of the tensor's history (Keras 2).
        node_index: the node of ``layer`` to start from (default 0).

    Returns:
        The model input tensors ``tensor`` depends on, each once, as a list. A tensor
        without Keras history is returned unchanged, as in Keras 2.

    Example:
        >>> inputs = keras.Input((3,))  # doctest: +SKIP
        >>> get_source_inputs(keras.layers.Dense(2)(inputs))[0] is inputs  # doctest: +SKIP
        True
    """
    from keras.utils import get_source_inputs as keras_get_source_inputs

    if layer is None:
        return keras_get_source_inputs(tensor)
    node = layer._inbound_nodes[node_index or 0]
    if node.is_input:
        return list(node.output_tensors)
    sources: list[Any] = []
    for parent in node.input_tensors:
        for source in keras_get_source_inputs(parent):
            if all(source is not known for known in sources):
                sources.append(source)
    return sources


def count_params(weights: Any) -> int:
    """Count the scalars in a list of weights, each weight once (Keras 2.3.1).

    Args:
        weights: variables or arrays (e.g. ``model.trainable_weights``).

    Returns:
        The number of scalars, as a Python ``int``.
    """
    import math

    unique = {id(weight): weight for weight in weights}
    return sum(math.prod(tuple(weight.shape)) for weight in unique.values())


class TheanoKernelsError(NotImplementedError):
    """``convert_all_kernels_in_model`` has nothing to convert on Keras 3."""


def convert_all_kernels_in_model(model: Any) -> None:
    """Always raises: Theano kernel conversion does not apply to Keras 3.

    Keras 2 flipped the spatial axes of every convolution kernel to move weights
    between the Theano and TensorFlow backends. Keras 3 has no Theano backend and every
    backend uses the same kernel layout, so weights load without conversion.

    Args:
        model: the model Keras 2 would have converted (not modified).

    Raises:
        TheanoKernelsError: always (a ``NotImplementedError``).
    """
    msg = (
        "convert_all_kernels_in_model converted convolution kernels between the Theano "
        "and TensorFlow layouts of Keras 1/2. Keras 3 has no Theano backend and all its "
        "backends share one kernel layout, so there is nothing to convert: load the "
        "weights as they are and remove this call. To flip kernels of weights that "
        "really come from Theano, reverse their spatial axes with numpy "
        "(kernel[::-1, ::-1, :, :] for Conv2D) and set_weights. "
        f"Received: model={getattr(model, 'name', model)!r}"
    )
    raise TheanoKernelsError(msg)
