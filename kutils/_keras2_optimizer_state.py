"""A Keras 2 (or tf.keras) file's optimizer state into the Keras 3 optimizer's slots.

``optimizer_weights`` holds the iteration count, then the optimizer's slots, in one of
three layouts, told apart by the weights' names:

- Keras 2.0 to 2.3 (``m_0:0``, ``v_0:0``..., or ``Variable_3:0``): each kind of slot for every trainable
  weight, kind after kind (Adam: all ``m``, all ``v``, all ``vhat``, the last
  placeholders of shape (1,) without amsgrad). Nadam's ``m_schedule`` comes second.
- tf.keras up to 2.10 (``Adam/dense/kernel/m:0``): kind after kind too, the kind last in
  the name.
- tf.keras 2.11+ (``Adam/m/dense/kernel:0``): per weight, the kinds interleaved, the kind
  second in the name.

Each value goes to the Keras 3 slot holding the same quantity for the same weight; the
weights are in the order of ``model.trainable_weights`` in every layout. Nothing is
assigned unless every value fits (kind known, count and shapes right): a state that
does not fit is reported and training starts fresh, never from misplaced moments.
"""

from __future__ import annotations

import warnings
from typing import Any

from kutils import _keras_compat_training

__all__ = ["restore_optimizer_state"]

# Keras 2.0 to 2.3: the Keras 3 attribute of each stored kind, in stored order.
_KERAS2_KINDS = {
    "SGD": ("momentums",),
    "Adam": ("_momentums", "_velocities", "_velocity_hats"),
    "RMSprop": ("_velocities",),
    "Adagrad": ("_accumulators",),
    "Adadelta": ("_accumulated_grads", "_accumulated_delta_vars"),
    "Adamax": ("_m", "_u"),
    "Nadam": ("_momentums", "_velocities"),
}
# tf.keras: the slot names it wrote, by optimizer, and Keras 3's attribute for each.
_TF_KERAS_KINDS = {
    "SGD": {"m": "momentums", "momentum": "momentums"},
    "Adam": {"m": "_momentums", "v": "_velocities", "vhat": "_velocity_hats"},
    "RMSprop": {
        "velocity": "_velocities",
        "rms": "_velocities",
        "momentum": "_momentums",
        "average_gradient": "_average_gradients",
        "mg": "_average_gradients",
    },
    "Adagrad": {"accumulator": "_accumulators"},
    "Adadelta": {
        "accumulated_grad": "_accumulated_grads",
        "accum_grad": "_accumulated_grads",
        "accumulated_delta_var": "_accumulated_delta_vars",
        "accum_var": "_accumulated_delta_vars",
    },
    "Adamax": {"m": "_m", "u": "_u", "v": "_u"},
    "Nadam": {"m": "_momentums", "v": "_velocities"},
}


class _DoesNotFit(Exception):
    """The stored state does not fit the Keras 3 optimizer (the message says why)."""


def restore_optimizer_state(
    model: Any, class_name: str, names: list[str], values: list[Any]
) -> bool:
    """Put a file's optimizer weights into ``model.optimizer``; False (warned) if they
    do not fit."""
    optimizer = model.optimizer
    params = list(model.trainable_weights)
    optimizer.build(params)  # slot j of every kind belongs to params[j]
    try:
        assignments = _assignments(optimizer, class_name, names, values, params)
    except _DoesNotFit as problem:
        msg = (
            f"The optimizer state of the Keras 2 file was not restored ({problem}); "
            "training starts with a fresh optimizer state."
        )
        warnings.warn(msg, stacklevel=4)
        return False
    optimizer.iterations.assign(int(values[0]))
    for variable, value in assignments:
        variable.assign(value)
    return True


def _assignments(
    optimizer: Any, class_name: str, names: list[str], values: list[Any], params: list[Any]
) -> list[tuple[Any, Any]]:
    if class_name not in _KERAS2_KINDS:
        raise _DoesNotFit(f"kutils does not map the state of {class_name}")
    if not params:
        raise _DoesNotFit("the model has no trainable weights")
    kinds = _TF_KERAS_KINDS[class_name]
    if all(_tf_keras_kind(name, kinds) for name in names[1:]):
        pairs = _tf_keras_layout(optimizer, class_name, names, values)
    else:  # Keras 2's names (m_0, or Variable_3 from Keras 2.2 on TensorFlow 1) say nothing
        pairs = _keras2_layout(optimizer, class_name, values, len(params))
    for variable, value in pairs:
        if tuple(variable.shape) != tuple(value.shape):
            raise _DoesNotFit(
                f"a stored slot of shape {tuple(value.shape)} does not fit "
                f"{variable.path} of shape {tuple(variable.shape)}"
            )
    return pairs


def _keras2_layout(
    optimizer: Any, class_name: str, values: list[Any], count: int
) -> list[tuple[Any, Any]]:
    head = 2 if class_name == "Nadam" else 1  # Nadam: iterations, m_schedule
    kinds, rest = divmod(len(values) - head, count)
    if rest or kinds < len(_KERAS2_KINDS[class_name]) - (class_name == "Adam"):
        raise _DoesNotFit(
            f"{len(values)} optimizer weights for {count} trainable weights do not fit "
            f"Keras 2's {class_name}"
        )
    pairs: list[tuple[Any, Any]] = []
    if class_name == "Nadam":
        pairs.append(
            (_keras_compat_training.optimizer_slot_variables(optimizer, "_u_product"), values[1])
        )
    for index, attribute in enumerate(_KERAS2_KINDS[class_name][:kinds]):
        slots = _keras_compat_training.optimizer_slot_variables(optimizer, attribute)
        # Keras 3 keeps no slots for SGD without momentum or Adam without amsgrad.
        stored = values[head + index * count : head + (index + 1) * count]
        pairs.extend(zip(slots, stored, strict=False))
    return pairs


def _tf_keras_layout(
    optimizer: Any, class_name: str, names: list[str], values: list[Any]
) -> list[tuple[Any, Any]]:
    kinds = _TF_KERAS_KINDS[class_name]
    by_kind: dict[str, list[Any]] = {}
    for name, value in zip(names[1:], values[1:], strict=True):
        kind = _tf_keras_kind(name, kinds)
        if kind is None:  # (the caller checked every name)
            raise _DoesNotFit(f"kutils does not know the slot {name!r} of {class_name}")
        by_kind.setdefault(kinds[kind], []).append(value)
    pairs: list[tuple[Any, Any]] = []
    for attribute, stored in by_kind.items():
        slots = list(_keras_compat_training.optimizer_slot_variables(optimizer, attribute))
        if len(slots) != len(stored):
            raise _DoesNotFit(
                f"{len(stored)} stored values for {len(slots)} Keras 3 slots ({attribute})"
            )
        pairs.extend(zip(slots, stored, strict=True))
    return pairs


def _tf_keras_kind(name: str, kinds: dict[str, str]) -> str | None:
    parts = name.split(":")[0].split("/")
    if len(parts) >= 3 and parts[1] in kinds:  # tf.keras 2.11+: Adam/m/dense/kernel
        return parts[1]
    if parts[-1] in kinds:  # tf.keras up to 2.10: Adam/dense/kernel/m
        return parts[-1]
    return None
