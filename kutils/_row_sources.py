"""Small helpers shared by the input families, importing nothing heavy and no family.

``lists_to_tuples`` puts a batch in the form tf.data wants. The row-source registry lets
the data-parallel core (``kutils/_per_worker_input.py``) read an input family's data in shards
without importing that family: a family registers a converter that turns its own inputs
into a *row source*, an object with

* ``len(source)``: batches per epoch;
* ``seed`` (int or None, settable) and ``_plan_epoch()``: fix the epoch's order from it;
* ``_batch_rows(index)``: the rows of batch ``index`` as increasing runs ``[(a, b), ...]``;
* ``read_runs(runs)``: the batch ``(x, y[, sample_weight])`` made of those rows;
* ``on_epoch_end()``: move to the next epoch's order.

``kutils.HDF5Dataset`` is one (the HDF5 family registers it); ``_per_worker_input`` has its own for
shuffled numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RowConverter = Callable[[Any, Any, Any, "int | None", Any], Any]

_row_sources: dict[str, RowConverter] = {}


def lists_to_tuples(value: Any) -> Any:
    """``value`` with every list (at any depth, inside tuples and dicts) made a tuple."""
    if isinstance(value, (list, tuple)):
        return tuple(lists_to_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: lists_to_tuples(item) for key, item in value.items()}
    return value


def whole_batch_rows(
    index: int, batch_size: int, num_rows: int, order: Any, shuffle: Any
) -> list[tuple[int, int]] | None:
    """The rows of batch ``index`` of a row source that reads batches whole, else None.

    Whole batches are read in file order (``order`` is None) and with
    ``shuffle == "batch"``, where ``order`` permutes the complete batches (a last, partial
    batch keeps its place). Other shuffles choose rows in their own way: None.
    """
    if order is None:
        chosen = index
    elif shuffle == "batch":
        chosen = int(order[index]) if index < len(order) else index
    else:
        return None
    return [(chosen * batch_size, min((chosen + 1) * batch_size, num_rows))]


def register_row_source(family: str, convert: RowConverter) -> None:
    """Register ``convert(x, y, sample_weight, batch_size, shuffle)`` -> row source or None."""
    _row_sources[family] = convert


def find_row_source(
    x: Any, y: Any, sample_weight: Any, batch_size: int | None, shuffle: Any
) -> Any:
    """The first registered family's row source for these inputs, or None."""
    for convert in list(_row_sources.values()):
        source = convert(x, y, sample_weight, batch_size, shuffle)
        if source is not None:
            return source
    return None
