"""Keras 2 layer configurations, translated one layer at a time into Keras 3 layers.

A Keras 2.2/2.3 (or tf.keras 1.x/2.x) model file stores each layer as
``{'class_name': ..., 'config': {...}}``. Most configurations are valid Keras 3 arguments
as they are; this module changes only what Keras 3 reads differently or no longer
accepts, each change with its reason beside it. The graph (how the layers are called)
is ``_keras2_graph``'s business.
"""

from __future__ import annotations

import base64
import functools
import marshal
import types
from collections.abc import Callable
from typing import Any

__all__ = [
    "LambdaNotSupplied",
    "UnsupportedKeras2Layer",
    "build_layer",
    "keras2_hard_sigmoid",
    "register_serializables",
]


class UnsupportedKeras2Layer(ValueError):
    """A layer of a Keras 2 file that Keras 3 has no equivalent for."""


class LambdaNotSupplied(ValueError):
    """A Lambda layer whose function kutils will not or cannot load from the file."""


def keras2_hard_sigmoid(x: Any) -> Any:
    """Keras 2's hard sigmoid, ``clip(0.2 * x + 0.5, 0, 1)``.

    Keras 3's ``hard_sigmoid`` is another function (``relu6(x + 3) / 6``), so a Keras 2
    ``'hard_sigmoid'`` (the default recurrent activation of LSTM, GRU and ConvLSTM2D in
    Keras 2) is translated to this one.
    """
    from keras import ops

    return ops.clip(0.2 * x + 0.5, 0.0, 1.0)


# Keras 2 layer classes Keras 3 dropped, with what to do instead.
_DROPPED = {
    "LocallyConnected1D": "Keras 3 has no locally connected layers",
    "LocallyConnected2D": "Keras 3 has no locally connected layers",
    "CuDNNLSTM": "translate it by hand to LSTM(recurrent_activation='sigmoid') and "
    "sum the two halves of its bias",
    "CuDNNGRU": "translate it by hand to GRU(reset_after=True, recurrent_activation='sigmoid')",
    "Merge": "the Keras 1 Merge layer was removed in Keras 2.2; load and re-save the file "
    "with Keras 2.1 using the merge layers (Add, Concatenate, ...)",
}

# Keras 2 arguments Keras 3 no longer takes and that change nothing in Keras 3.
_DROPPED_ARGUMENTS = {
    "implementation",  # RNN kernels: Keras 3 picks its own; the results are the same
    "input_length",  # Embedding: the input shape says it (kept in batch_input_shape)
    "batch_input_shape",  # becomes an InputLayer (_keras2_graph)
    "batch_size",
    "input_dtype",
}

_WRAPPERS = {"Bidirectional", "TimeDistributed"}


def build_layer(entry: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool) -> Any:
    """Return the Keras 3 layer for one Keras 2 ``{'class_name', 'config'}`` entry."""
    import keras

    class_name = entry["class_name"]
    config = dict(entry["config"])
    if class_name in _DROPPED:
        msg = (
            f"Layer {config.get('name')!r} is a Keras 2 {class_name}, which Keras 3 cannot "
            f"load: {_DROPPED[class_name]}. Received: class_name={class_name!r}"
        )
        raise UnsupportedKeras2Layer(msg)
    if class_name in custom_objects:
        return custom_objects[class_name].from_config(_strip_input_arguments(config))
    if class_name == "Lambda":
        return _lambda_layer(config, custom_objects, safe_mode=safe_mode)
    config = _translate_arguments(class_name, config)
    if class_name in _WRAPPERS:
        return _wrapper(class_name, config, custom_objects, safe_mode=safe_mode)
    if class_name == "ThresholdedReLU":
        theta = config.pop("theta", 1.0)
        return keras.layers.ReLU(threshold=theta, **config)
    layer_class = _keras_layer_class(class_name, config)
    return _keras2_activity_regularization(layer_class.from_config(config))


def _keras2_activity_regularization(layer: Any) -> Any:
    if getattr(layer, "activity_regularizer", None) is not None:
        layer.activity_regularizer = keras2_activity_regularizer(layer.activity_regularizer)
    return layer


def keras2_activity_regularizer(regularizer: Any) -> Any:
    """Wrap an activity regularizer so that Keras 3 applies it with Keras 2's strength.

    Keras 3 divides a layer's activity regularization by the batch size; Keras 2 added
    it whole. The wrapper multiplies by the batch size, which Keras 3 then divides out.
    """
    return _activity_regularizer_class()(regularizer)


def register_serializables() -> None:
    """Register kutils' Keras 2 objects with Keras, so that a ``.keras`` file saved from a
    translated model loads (they are otherwise registered when first used)."""
    _activity_regularizer_class()


@functools.lru_cache(maxsize=1)
def _activity_regularizer_class() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="kutils")
    class Keras2ActivityRegularizer(keras.regularizers.Regularizer):
        def __init__(self, regularizer: Any) -> None:
            self.regularizer = keras.regularizers.get(regularizer)

        def __call__(self, x: Any) -> Any:
            batch = keras.ops.cast(keras.ops.shape(x)[0], x.dtype) if x.ndim else 1.0
            return self.regularizer(x) * batch

        def get_config(self) -> dict[str, Any]:
            return {"regularizer": keras.regularizers.serialize(self.regularizer)}

    return Keras2ActivityRegularizer


def _strip_input_arguments(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key not in _DROPPED_ARGUMENTS}


def _keras_layer_class(class_name: str, config: dict[str, Any]) -> Any:
    import keras

    registered = keras.saving.get_registered_object(class_name)
    if registered is not None:
        return registered
    layer_class = getattr(keras.layers, class_name, None)
    if not isinstance(layer_class, type) or not issubclass(layer_class, keras.layers.Layer):
        msg = (
            f"Unknown layer {class_name!r} (named {config.get('name')!r}) in a Keras 2 "
            "model. A custom layer: pass its class in custom_objects "
            f"(custom_objects={{{class_name!r}: {class_name}}}) or load inside a "
            f"CustomObjectScope. Received: class_name={class_name!r}"
        )
        raise ValueError(msg)
    return layer_class


def _translate_arguments(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Keras 2 arguments as Keras 3 reads them (the layer class stays the same)."""
    config = _strip_input_arguments(config)
    for key, value in list(config.items()):
        if key.endswith("activation") and value == "hard_sigmoid":
            config[key] = keras2_hard_sigmoid
        elif key.endswith("initializer") and isinstance(value, dict):
            config[key] = _initializer(value)
        elif key in ("target_shape", "dims") and isinstance(value, list):
            config[key] = tuple(value)
    if class_name == "LeakyReLU" and "alpha" in config:
        config["negative_slope"] = config.pop("alpha")
    if class_name == "Activation" and config.get("activation") == "hard_sigmoid":
        config["activation"] = keras2_hard_sigmoid
    axis = config.get("axis")
    if class_name == "BatchNormalization" and isinstance(axis, list) and len(axis) == 1:
        config["axis"] = axis[0]  # tf.keras wrote [axis]; Keras 3 takes an int
    if config.get("time_major") is False:
        del config["time_major"]  # tf.keras RNNs; Keras 3 is always batch-major
    if class_name.startswith("SpatialDropout"):
        # Keras 3 takes neither: a dropout layer has no weights, and the spatial noise
        # shape is what the layer computes anyway.
        config.pop("trainable", None)
        config.pop("noise_shape", None)
    if class_name in ("GRU", "GRUCell"):
        # Keras 2's GRU default was reset_after=False; Keras 3's is True. A file from
        # before Keras 2.1.3 has no such argument and means False.
        config.setdefault("reset_after", False)
    return config


def _initializer(serialized: dict[str, Any]) -> dict[str, Any]:
    config = dict(serialized.get("config", {}))
    if serialized.get("class_name") == "VarianceScaling" and config.get("distribution") in (
        "normal",
        "truncated_normal",
    ):
        # Keras 2's 'normal' was already a truncated normal, with Keras 3's scaling.
        config["distribution"] = "truncated_normal"
    return {"class_name": serialized["class_name"], "config": config}


def _wrapper(
    class_name: str, config: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool
) -> Any:
    import keras

    config["layer"] = build_layer(config["layer"], custom_objects, safe_mode=safe_mode)
    if config.get("backward_layer") is not None:
        config["backward_layer"] = build_layer(
            config["backward_layer"], custom_objects, safe_mode=safe_mode
        )
    else:
        config.pop("backward_layer", None)
    wrapper_class = getattr(keras.layers, class_name)
    return wrapper_class(**config)


# -- Lambda ------------------------------------------------------------------------------


def _lambda_layer(
    config: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool
) -> Any:
    import keras

    name = config.get("name")
    function = _lambda_function(config, custom_objects, safe_mode=safe_mode)
    output_shape = config.get("output_shape")
    if config.get("output_shape_type") == "lambda":
        output_shape = None  # stored bytecode: Keras 3 infers the shape by tracing
    elif isinstance(output_shape, list):
        output_shape = tuple(output_shape)
    arguments = config.get("arguments") or None
    return keras.layers.Lambda(
        function,
        output_shape=output_shape,
        arguments=arguments,
        name=name,
        trainable=config.get("trainable", True),
        dtype=config.get("dtype"),
    )


def _lambda_function(
    config: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool
) -> Callable[..., Any]:
    name = config.get("name")
    if name in custom_objects:
        supplied: Callable[..., Any] = custom_objects[name]
        return supplied
    stored = config.get("function")
    if config.get("function_type") == "function" and isinstance(stored, str):
        if stored in custom_objects:
            found: Callable[..., Any] = custom_objects[stored]
            return found
        msg = (
            f"Lambda layer {name!r} calls the function {stored!r}, which was not supplied. "
            f"Pass it in custom_objects: custom_objects={{{stored!r}: {stored}}}. "
            f"Received: function={stored!r}"
        )
        raise LambdaNotSupplied(msg)
    if safe_mode:
        msg = (
            f"Lambda layer {name!r} stores its function as Python bytecode, which kutils "
            "does not run unless you opt in: a model file is data, and bytecode in it can "
            "do anything. Supply the function under the layer's name, "
            f"custom_objects={{{name!r}: function}}, or, for a file you trust and wrote "
            "with this Python version, pass safe_mode=False. "
            "Received: safe_mode=True"
        )
        raise LambdaNotSupplied(msg)
    return _load_bytecode(name, stored)


def _load_bytecode(name: Any, stored: Any) -> Callable[..., Any]:
    code, defaults, closure = [*list(stored), None, None][:3]
    if isinstance(defaults, list):
        defaults = tuple(defaults)
    try:
        raw = base64.b64decode(code.encode("ascii"))
        function_code = marshal.loads(raw)
    except (ValueError, TypeError, EOFError) as error:
        msg = (
            f"Lambda layer {name!r} stores bytecode this Python cannot read ({error}): it "
            "was written by another Python version. Supply the function under the "
            f"layer's name, custom_objects={{{name!r}: function}}. Received: safe_mode=False"
        )
        raise LambdaNotSupplied(msg) from error
    cells = None
    if closure is not None:
        cells = tuple(types.CellType(value) for value in closure)
    return types.FunctionType(function_code, _lambda_globals(), None, defaults, cells)


def _lambda_globals() -> dict[str, Any]:
    import keras
    import numpy

    # What a Keras 2 Lambda's body found in keras.layers.core's globals.
    return {"K": keras.ops, "np": numpy, "keras": keras, "__builtins__": __builtins__}
