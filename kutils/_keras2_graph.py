"""Keras 2 model configurations (Sequential, functional ``Model``, nested) as Keras 3 models.

Each layer is translated by ``_keras2_layers``; here the Keras 2 graph is rebuilt with
Keras 3's functional API, calling each layer on the tensors its Keras 2 nodes name, as
Keras 2's own ``Network.from_config`` did. Layer names are kept, so weights map by name.
"""

from __future__ import annotations

from typing import Any

from kutils._keras2_layers import build_layer

__all__ = ["MODEL_CLASSES", "build_model"]

MODEL_CLASSES = ("Sequential", "Model", "Functional")


def build_model(
    serialized: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool
) -> Any:
    """Return the Keras 3 model for a Keras 2 ``{'class_name', 'config'}`` model entry."""
    class_name = serialized.get("class_name")
    config: Any = serialized.get("config")
    if class_name == "Sequential":
        return _sequential(config, custom_objects, safe_mode=safe_mode)
    if class_name in ("Model", "Functional"):
        return _functional(config, custom_objects, safe_mode=safe_mode)
    msg = (
        "Expected a Keras 2 model configuration of class Sequential or Model. "
        f"Received: class_name={class_name!r}"
    )
    raise ValueError(msg)


def _build_any(entry: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool) -> Any:
    if entry.get("class_name") in MODEL_CLASSES:
        return build_model(entry, custom_objects, safe_mode=safe_mode)
    return build_layer(entry, custom_objects, safe_mode=safe_mode)


# -- Sequential --------------------------------------------------------------------------


def _sequential(config: Any, custom_objects: dict[str, Any], *, safe_mode: bool) -> Any:
    import keras

    if isinstance(config, list):  # Keras 2.0 to 2.2.2 stored the list of layers alone
        config = {"layers": config}
    entries = config["layers"]
    model = keras.Sequential(name=config.get("name"))
    first = entries[0] if entries else None
    has_input = False
    if first is not None and first.get("class_name") == "InputLayer":
        entries = entries[1:]
        model.add(_input_layer(first["config"]))
        has_input = True
    elif first is not None and "batch_input_shape" in first.get("config", {}):
        first_config = first["config"]
        model.add(
            keras.layers.InputLayer(
                batch_shape=tuple(first_config["batch_input_shape"]),
                dtype=first_config.get("dtype") or "float32",
            )
        )
        has_input = True
    for entry in entries:
        layer = _build_any(entry, custom_objects, safe_mode=safe_mode)
        if not has_input and isinstance(layer, keras.Model):
            # A nested model first: the outer model takes its input shape.
            model.add(keras.layers.InputLayer(batch_shape=tuple(layer.inputs[0].shape)))
        has_input = True
        model.add(layer)
    return model


def _input_layer(config: dict[str, Any]) -> Any:
    import keras

    shape: Any = config.get("batch_input_shape") or config.get("batch_shape")
    return keras.layers.InputLayer(
        batch_shape=tuple(shape),
        dtype=config.get("dtype") or "float32",
        sparse=bool(config.get("sparse", False)),
        name=config.get("name"),
    )


# -- functional Model --------------------------------------------------------------------


def _functional(config: dict[str, Any], custom_objects: dict[str, Any], *, safe_mode: bool) -> Any:
    import keras

    layers: dict[str, Any] = {}
    # Each layer's outputs, one entry per Keras 2 node. A Keras 2 nested model's node 0
    # is its own internal node, never named in the outer config: its calls start at 1.
    outputs: dict[str, list[Any]] = {}
    pending: list[tuple[str, list[Any]]] = []
    for entry in config["layers"]:
        name = entry.get("name") or entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            layers[name] = None
            outputs[name] = [[keras.Input(**_input_arguments(entry["config"]))]]
            continue
        layers[name] = _build_any(entry, custom_objects, safe_mode=safe_mode)
        outputs[name] = [None] if entry["class_name"] in MODEL_CLASSES else []
        pending.extend((name, node) for node in entry.get("inbound_nodes", []))
    _call_nodes(pending, layers, outputs)
    inputs = [_tensor(outputs, reference) for reference in config["input_layers"]]
    model_outputs = [_tensor(outputs, reference) for reference in config["output_layers"]]
    return keras.Model(
        inputs=inputs[0] if len(inputs) == 1 else inputs,
        outputs=model_outputs[0] if len(model_outputs) == 1 else model_outputs,
        name=config.get("name"),
    )


def _input_arguments(config: dict[str, Any]) -> dict[str, Any]:
    shape: Any = config.get("batch_input_shape") or config.get("batch_shape")
    return {
        "batch_shape": tuple(shape),
        "dtype": config.get("dtype") or "float32",
        "sparse": bool(config.get("sparse", False)),
        "name": config.get("name"),
    }


def _call_nodes(
    pending: list[tuple[str, list[Any]]], layers: dict[str, Any], outputs: dict[str, list[Any]]
) -> None:
    """Call the layers node by node, in file order, each once its inputs exist."""
    while pending:
        waiting: list[tuple[str, list[Any]]] = []
        for name, node in pending:
            if waiting and any(earlier == name for earlier, _ in waiting):
                waiting.append((name, node))  # a layer's nodes keep their order
                continue
            inputs = _node_inputs(node, outputs)
            if inputs is None:
                waiting.append((name, node))
                continue
            tensors, kwargs = inputs
            result = layers[name](tensors[0] if len(tensors) == 1 else tensors, **kwargs)
            outputs[name].append(list(result) if isinstance(result, (list, tuple)) else [result])
        if len(waiting) == len(pending):
            names = sorted({name for name, _ in waiting})
            msg = (
                "The Keras 2 model configuration has layers whose inputs never appear "
                f"(a broken or cyclic graph). Received: layers={names}"
            )
            raise ValueError(msg)
        pending = waiting


def _node_inputs(
    node: list[Any], outputs: dict[str, list[Any]]
) -> tuple[list[Any], dict[str, Any]] | None:
    tensors = []
    kwargs: dict[str, Any] = {}
    for reference in node:
        tensor = _tensor(outputs, reference, missing_ok=True)
        if tensor is None:
            return None
        tensors.append(tensor)
        if len(reference) > 3 and reference[3]:
            kwargs.update(reference[3])
    return tensors, kwargs


def _tensor(
    outputs: dict[str, list[Any]], reference: list[Any], *, missing_ok: bool = False
) -> Any:
    name, node_index, tensor_index = reference[:3]
    nodes = outputs.get(name)
    if nodes is None:
        msg = f"The Keras 2 model configuration names an unknown layer. Received: {name!r}"
        raise ValueError(msg)
    if node_index < len(nodes) and nodes[node_index] is not None:
        return nodes[node_index][tensor_index]
    if missing_ok:
        return None
    msg = (
        f"The Keras 2 model configuration names call {node_index} of layer {name!r}, "
        f"which the graph does not make. Received: {reference!r}"
    )
    raise ValueError(msg)
