"""Keras 2 HDF5 weights (``model.save`` and ``save_weights`` files): read into Keras 3
layers, and written from them in Keras 2's layout (``kutils.save_weights``).

Keras 2 stores one HDF5 group per layer of the model, in the order of ``model.layers``,
with the group's attribute ``weight_names`` listing the layer's weights in Keras 2's
order of ``layer.weights``: its trainable weights, then its non-trainable ones (for a
nested model, those of all its layers). A Keras 3 layer gives the same order as
``layer.trainable_weights + layer.non_trainable_weights``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["WeightsMismatch", "keras2_order", "load_weights_from_group", "save_weights_to_group"]


class WeightsMismatch(ValueError):
    """The weights of a Keras 2 file do not fit the model they are loaded into."""


def keras2_order(layer: Any) -> list[Any]:
    """A Keras 3 layer's weights in Keras 2's order of ``layer.weights``."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def _decode(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _stored_layers(group: Any) -> list[tuple[str, list[Any]]]:
    """The file's layers that have weights, in file order, with their arrays."""
    stored = []
    for layer_name in (_decode(name) for name in group.attrs["layer_names"]):
        layer_group = group[layer_name]
        names = [_decode(name) for name in layer_group.attrs.get("weight_names", [])]
        if names:
            stored.append((layer_name, [layer_group[name][()] for name in names]))
    return stored


def load_weights_from_group(
    group: Any,
    model: Any,
    *,
    by_name: bool = False,
    skip_mismatch: bool = False,
    reshape: bool = False,
) -> None:
    """Assign the weights in a Keras 2 weights group to ``model`` (Keras 2's semantics).

    ``by_name=False``: the i-th layer of the file that has weights goes to the i-th
    layer of the model that has weights. ``by_name=True``: each file layer goes to the
    model layer of the same name, if any; ``skip_mismatch`` skips those whose weights
    differ in number or shape (with a warning) instead of raising.
    """
    stored = _stored_layers(group)
    pairs = _pairs_by_name(stored, model) if by_name else _pairs_by_order(stored, model)
    assignments: list[tuple[Any, Any]] = []
    for layer, layer_name, values in pairs:
        targets = keras2_order(layer)
        if reshape:
            values = [
                _reshaped(value, variable) for value, variable in zip(values, targets, strict=False)
            ]
        problem = _mismatch(targets, values)
        if problem is None:
            assignments.extend(zip(targets, values, strict=True))
            continue
        msg = (
            f"Layer {layer.name!r} of the model cannot take the weights of layer "
            f"{layer_name!r} in the Keras 2 file: {problem}"
        )
        if by_name and skip_mismatch:
            import warnings

            warnings.warn(f"{msg}. Skipped (skip_mismatch=True).", stacklevel=3)
            continue
        raise WeightsMismatch(msg)
    assignments += _top_level(group, model, by_name)
    for variable, value in assignments:
        variable.assign(value)


def _top_level(group: Any, model: Any, by_name: bool) -> list[tuple[Any, Any]]:
    """The weights a model holds outside its layers (Keras 3's ``top_level_model_weights``
    group, which ``save_weights_to_group`` writes when there are some)."""
    if by_name or "top_level_model_weights" not in group:
        return []
    stored = group["top_level_model_weights"]
    values = [stored[_decode(name)][()] for name in stored.attrs.get("weight_names", [])]
    in_layers = {id(weight) for layer in model.layers for weight in layer.weights}
    targets = [weight for weight in keras2_order(model) if id(weight) not in in_layers]
    problem = _mismatch(targets, values)
    if problem is not None:
        msg = f"The model's own weights (outside its layers) do not fit the file's: {problem}"
        raise WeightsMismatch(msg)
    return list(zip(targets, values, strict=True))


def _pairs_by_order(stored: list[tuple[str, list[Any]]], model: Any) -> list[Any]:
    layers = [layer for layer in model.layers if layer.weights]
    if len(layers) != len(stored):
        msg = (
            f"The Keras 2 file has weights for {len(stored)} layers, but the model has "
            f"{len(layers)} layers with weights. Build the same architecture, or load by "
            f"name with by_name=True. Received: file layers={[name for name, _ in stored]}, "
            f"model layers={[layer.name for layer in layers]}"
        )
        raise WeightsMismatch(msg)
    return [(layer, name, values) for layer, (name, values) in zip(layers, stored, strict=True)]


def _pairs_by_name(stored: list[tuple[str, list[Any]]], model: Any) -> list[Any]:
    by_name = {layer.name: layer for layer in model.layers}
    return [(by_name[name], name, values) for name, values in stored if name in by_name]


def _reshaped(value: Any, variable: Any) -> Any:
    if value.size == math.prod(tuple(variable.shape)):
        return value.reshape(tuple(variable.shape))
    return value


def _mismatch(targets: list[Any], values: list[Any]) -> str | None:
    if len(targets) != len(values):
        return f"it has {len(targets)} weights and the file {len(values)}"
    for index, (variable, value) in enumerate(zip(targets, values, strict=True)):
        if tuple(variable.shape) != tuple(value.shape):
            return (
                f"weight {index} ({variable.path}) has shape {tuple(variable.shape)} and the "
                f"file's has shape {tuple(value.shape)}"
            )
    return None


def save_weights_to_group(group: Any, model: Any) -> None:
    """Write ``model``'s weights into ``group`` as Keras 2.3.1's ``save_weights`` did.

    The attributes ``layer_names`` (every layer of ``model.layers``, in order),
    ``backend`` and ``keras_version`` (the running Keras); one group per layer with the
    attribute ``weight_names`` and one dataset per weight, in Keras 2's order, named as
    Keras 2's TensorFlow backend named them (``dense_1/kernel:0``). Weights the model
    holds outside its layers, which Keras 2 left out of the file, go to the group
    ``top_level_model_weights`` that Keras 3's loader reads (only when there are some).
    """
    import keras

    from kutils._keras_compat import hdf5_attribute_writer

    write_attribute = hdf5_attribute_writer()
    layers = list(model.layers)
    write_attribute(group, "layer_names", _strings([layer.name for layer in layers]))
    group.attrs["backend"] = keras.backend.backend().encode("utf8")
    group.attrs["keras_version"] = str(keras.__version__).encode("utf8")
    for layer in layers:
        weights = keras2_order(layer)
        _write_weights(group.create_group(layer.name), weights, layer.name, write_attribute)
    in_layers = {id(weight) for layer in layers for weight in layer.weights}
    own = [weight for weight in keras2_order(model) if id(weight) not in in_layers]
    if own:
        group_ = group.create_group("top_level_model_weights")
        _write_weights(group_, own, model.name, write_attribute)


def _strings(values: list[str]) -> Any:
    """Keras 2's form of a list of names in an attribute: fixed-length bytes (``|S5``)."""
    import numpy as np

    return np.asarray([value.encode("utf8") for value in values])


def _write_weights(group: Any, weights: list[Any], owner: str, write_attribute: Any) -> None:
    import keras

    names: list[str] = []
    for weight in weights:
        base = str(weight.path)
        if base.startswith(f"{owner}/") and base.count("/") > 1:
            # A nested model's weight (inner/dense_1/kernel): Keras 2 named it by its
            # own layer only (dense_1/kernel:0).
            base = base[len(owner) + 1 :]
        name, count = f"{base}:0", 0
        while name in names:  # TensorFlow made such names unique as _1, _2
            count += 1
            name = f"{base}_{count}:0"
        names.append(name)
    write_attribute(group, "weight_names", _strings(names))
    for name, weight in zip(names, weights, strict=True):
        value = keras.ops.convert_to_numpy(weight)
        dataset = group.create_dataset(name, value.shape, dtype=value.dtype)
        if value.shape:
            dataset[:] = value
        else:
            dataset[()] = value
