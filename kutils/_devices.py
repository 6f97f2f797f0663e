"""Device names for the data-parallel core: listing, normalizing, checking, merging.

Every engine of the core (``_device_parallel.py``, ``_strategy_parallel.py``) and the
front door ``kutils.parallel`` name devices the same way, ``'/type:index'`` in lower
case, as Keras 2 did; a device a model is asked to use must exist in this process.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

CPU = "/cpu:0"


def local_devices(device_type: str | None = None) -> list[str]:
    """Normalized names of this process's logical devices, such as ``['/cpu:0', '/gpu:0']``.

    Args:
        device_type: ``'GPU'``, ``'CPU'`` (any case) or None for every type.

    Returns:
        Names of the form ``'/type:index'`` in TensorFlow's order.
    """
    found = tf.config.list_logical_devices(device_type.upper() if device_type else None)
    return [normalize_device(device.name) for device in found]


def normalize_device(name: str) -> str:
    """Shorten a device name to ``'/type:index'``, lower case.

    ``'/job:localhost/replica:0/task:0/device:GPU:0'``, ``'GPU:0'`` and ``'/gpu:0'`` all
    become ``'/gpu:0'``, as Keras 2's ``_normalize_device_name`` did.

    Args:
        name: a TensorFlow device name.

    Returns:
        The short, lower-case name.

    Raises:
        ValueError: ``name`` does not end in ``type:index``.
    """
    parts = str(name).lower().replace("/", "").split(":")
    if len(parts) < 2 or not parts[-1].isdigit() or not parts[-2]:
        msg = (
            "A device name ends in 'type:index', such as '/gpu:0' or "
            f"'/job:localhost/replica:0/task:0/device:CPU:1'. Received: device={name!r}"
        )
        raise ValueError(msg)
    kind = parts[-2].removeprefix("device")
    return f"/{kind}:{parts[-1]}"


def resolve_devices(devices: Sequence[str] | None) -> list[str]:
    """``devices`` normalized and checked to exist; None means every GPU, else every CPU."""
    available = local_devices()
    if devices is None:
        gpus = [d for d in available if d.startswith("/gpu:")]
        return gpus or [d for d in available if d.startswith("/cpu:")]
    if isinstance(devices, str) or not isinstance(devices, Sequence):
        msg = (
            "devices must be a list of device names such as ['/gpu:0', '/gpu:1'], a "
            f"tf.distribute.Strategy or None. Received: devices={devices!r}"
        )
        raise TypeError(msg)
    if not devices:
        msg = f"data_parallel needs at least one device. Received: devices={devices!r}"
        raise ValueError(msg)
    names = [normalize_device(d) for d in devices]
    missing = [d for d in names if d not in available]
    if missing:
        msg = (
            f"The devices {missing} do not exist; this process has {available}. "
            f"Received: devices={list(devices)!r}"
        )
        raise ValueError(msg)
    return names


def merge_device(ops: tf.distribute.CrossDeviceOps | None, devices: list[str]) -> str:
    """The device where ``ops`` merges the results of ``devices`` (the CPU when None)."""
    if ops is None:
        return CPU
    if not isinstance(ops, tf.distribute.CrossDeviceOps):
        msg = (
            "cross_device_ops must be a tf.distribute.CrossDeviceOps, such as "
            "kutils.parallel.merge_ops(cpu_merge=True). "
            f"Received: cross_device_ops={ops!r}"
        )
        raise TypeError(msg)
    if not isinstance(ops, tf.distribute.ReductionToOneDevice) or not ops.reduce_to_device:
        return devices[0]
    target = normalize_device(ops.reduce_to_device)
    available = local_devices()
    if target not in available:
        msg = (
            f"cross_device_ops merges on {target}, which does not exist; this process has "
            f"{available}. Received: cross_device_ops=ReductionToOneDevice("
            f"reduce_to_device={ops.reduce_to_device!r})"
        )
        raise ValueError(msg)
    return target
