"""``print_summary``: the Keras 2.3.1 text summary of a model, for Keras 3 models.

Keras 3 renders ``model.summary()`` with rich box-drawing tables sized to the terminal
and passes the whole text to ``print_fn`` at once. Scripts and tests written for Keras 2
parse, diff or log the old plain-text table line by line; this module prints that table,
byte for byte, from a Keras 3 model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["print_summary"]

# Keras 2.3.1 layouts: (line_length, positions, header).
_SEQUENTIAL_LAYOUT = (65, [0.45, 0.85, 1.0], ["Layer (type)", "Output Shape", "Param #"])
_GRAPH_LAYOUT = (
    98,
    [0.33, 0.55, 0.67, 1.0],
    ["Layer (type)", "Output Shape", "Param #", "Connected to"],
)


def print_summary(
    model: Any,
    line_length: int | None = None,
    positions: Sequence[float] | None = None,
    print_fn: Callable[[str], Any] | None = None,
) -> None:
    """Print a summary of a model, in the Keras 2.3.1 text layout.

    The output is the table ``keras.utils.print_summary`` (and ``Model.summary``)
    printed in Keras 2.3.1: a ``Model: "name"`` line, ``_`` and ``=`` rules, one row per
    layer with its name and class, output shape and parameter count, and the totals with
    thousands separators. Sequential-like models (a ``Sequential``, a subclassed model,
    or a functional chain without branches or shared layers) get 65 columns and three
    fields; other models get 98 columns and a ``Connected to`` field listing each input
    as ``layer_name[node_index][tensor_index]``, one per row. ``multiple`` stands for a
    shape that is not one tuple: a layer of a subclassed model (never called on symbolic
    tensors) or a layer called on inputs of different shapes.

    Args:
        model: a built Keras 3 model: ``Sequential``, functional, subclassed (built by
            calling it on data or by ``fit``), nested models included.
        line_length: total width of the table, by default 65 for sequential-like models
            and 98 otherwise.
        positions: where each field ends: fractions of ``line_length`` when the last
            value is at most 1, otherwise absolute column numbers. By default
            ``[.45, .85, 1.]`` for sequential-like models and ``[.33, .55, .67, 1.]``
            otherwise.
        print_fn: called once per line, with the line and no trailing newline. Defaults
            to ``print``.

    Raises:
        ValueError: ``model`` is not built yet (the Keras 2 message), or is not a model.
        IndexError: ``positions`` has fewer values than the table has fields.
        RuntimeError: a layer of the model has not been built (Keras 2's error from
            ``count_params``), as happens when a subclassed model was built with
            ``model.build(shape)`` and its ``call`` never ran.

    Differences:
        Keras 2.3.1 counted trainable parameters from the snapshot taken at
        ``compile`` and warned when ``trainable`` changed later; kutils counts the
        weights as they are now, so the totals always equal ``model.count_params()``.
        Keras 3's ``Model.summary`` draws a rich table sized to the terminal, calls
        ``print_fn`` once with the whole text, and adds memory sizes.

    Example:
        >>> model = keras.Sequential(
        ...     [keras.Input((784,)), Dense(32, name="dense_1"), Dense(10, name="dense_2")],
        ...     name="sequential_1",
        ... )  # doctest: +SKIP
        >>> print_summary(model)  # doctest: +SKIP
        Model: "sequential_1"
        _________________________________________________________________
        Layer (type)                 Output Shape              Param #
        =================================================================
        dense_1 (Dense)              (None, 32)                25120
        _________________________________________________________________
        dense_2 (Dense)              (None, 10)                330
        =================================================================
        Total params: 25,450
        Trainable params: 25,450
        Non-trainable params: 0
        _________________________________________________________________
    """
    from kutils import _keras_compat

    _check_model(model)
    if print_fn is None:
        print_fn = print

    nodes_by_depth = _keras_compat.graph_nodes_by_depth(model)
    sequential_like = _is_sequential_like(model, nodes_by_depth)
    default_length, default_positions, header = (
        _SEQUENTIAL_LAYOUT if sequential_like else _GRAPH_LAYOUT
    )
    line_length = line_length or default_length
    columns = _columns(positions or default_positions, line_length, len(header))
    relevant = {id(node) for nodes in (nodes_by_depth or {}).values() for node in nodes}

    print_fn(f'Model: "{model.name}"')
    print_fn("_" * line_length)
    print_fn(_row(header, columns))
    print_fn("=" * line_length)
    layers = model.layers
    for index, layer in enumerate(layers):
        for fields in _layer_rows(layer, sequential_like, relevant):
            print_fn(_row(fields, columns))
        print_fn(("=" if index == len(layers) - 1 else "_") * line_length)

    trainable = _count_unique(model.trainable_weights)
    non_trainable = _count_unique(model.non_trainable_weights)
    print_fn(f"Total params: {trainable + non_trainable:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {non_trainable:,}")
    print_fn("_" * line_length)


_NOT_BUILT = (
    "This model has not yet been built. Build the model first by calling build() or "
    "calling fit() with some data. Or specify input_shape or batch_input_shape in the "
    "first layer for automatic build. "
)


def _check_model(model: Any) -> None:
    from kutils import _keras2_display

    if not _keras2_display.is_model(model):
        msg = (
            "print_summary takes a Keras model (keras.Model, keras.Sequential). "
            f"Received: model of type {type(model).__name__}"
        )
        raise ValueError(msg)
    if not model.built:
        raise ValueError(_NOT_BUILT + f"Received: model={model.name!r}, which is not built")


def _is_sequential_like(model: Any, nodes_by_depth: dict[int, list[Any]] | None) -> bool:
    """Keras 2.3.1's test: a Sequential, a subclassed model or a plain chain of layers."""
    from kutils import _keras_compat

    if type(model).__name__ == "Sequential" or nodes_by_depth is None:
        return True
    graph_nodes: set[int] = set()
    for nodes in nodes_by_depth.values():
        if len(nodes) > 1:
            return False
        if len(nodes) == 1 and len(_keras_compat.node_inbound(nodes[0])) > 1:
            return False
        graph_nodes.update(id(node) for node in nodes)
    for layer in model.layers:
        calls_in_graph = [c for c in _keras_compat.layer_calls(layer) if id(c.node) in graph_nodes]
        if len(calls_in_graph) > 1:  # a shared layer
            return False
    return True


def _columns(positions: Sequence[float], line_length: int, n_fields: int) -> list[int]:
    if len(positions) < n_fields:
        msg = (
            f"positions needs one end column per field ({n_fields} for this model: "
            f"{'sequential-like' if n_fields == 3 else 'with a Connected to column'}). "
            f"Received: positions={list(positions)!r}"
        )
        raise IndexError(msg)
    if positions[-1] <= 1:
        return [int(line_length * p) for p in positions]
    return [int(p) for p in positions]


def _row(fields: Sequence[object], columns: Sequence[int]) -> str:
    """Keras 2's print_row: each field cut or padded to end at its column."""
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "  # a separator even when the previous field was cut
        line += str(field)
        line = line[: columns[i]]
        line += " " * (columns[i] - len(line))
    return line


def _layer_rows(layer: Any, sequential_like: bool, relevant: set[int]) -> list[list[object]]:
    from kutils import _keras2_display as display
    from kutils import _keras_compat

    name = f"{layer.name} ({display.legacy_class_name(layer)})"
    fields: list[object] = [name, display.legacy_output_shape(layer), _param_count(layer)]
    if sequential_like:
        return [fields]
    connections = [
        f"{inbound.name}[{node_index}][{tensor_index}]"
        for call in _keras_compat.layer_calls(layer)
        if not relevant or id(call.node) in relevant
        for inbound, node_index, tensor_index in call.inbound
    ]
    rows = [[*fields, connections[0] if connections else ""]]
    rows.extend(["", "", "", connection] for connection in connections[1:])
    return rows


def _param_count(layer: Any) -> int:
    if not layer.built:
        msg = (
            f"You tried to call `count_params` on {layer.name}, but the layer isn't "
            f"built. You can build it manually via: `{layer.name}.build(batch_input_shape)`. "
            "For a subclassed model, call the model on a batch of data (model(x)) so that "
            f"every layer is built. Received: layer {layer.name!r}, which is not built"
        )
        raise RuntimeError(msg)
    return _count_unique(layer.weights)


def _count_unique(weights: Sequence[Any]) -> int:
    """Keras 2.3.1's count_params: the sizes of the distinct weights, summed."""
    unique = {id(w): w for w in weights}
    total = 0
    for weight in unique.values():
        size = 1
        for dim in weight.shape:
            size *= int(dim)
        total += size
    return total
