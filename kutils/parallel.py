"""Data parallelism for any Keras 3 model on the TensorFlow backend.

``data_parallel(model, devices)`` returns a model that runs ``model`` on several devices
at once: each batch is split into one sub-batch per device, every device runs the same
model (so the weights are shared) on its sub-batch, and the sub-results are concatenated,
in order, on one merge device. The returned model compiles, fits, evaluates and predicts
like the original.

Two engines, chosen by what ``devices`` is:

* a list of device names (``['/gpu:0', '/gpu:1']``, ``['/cpu:1', '/cpu:2']``): in-graph
  replication. The returned :class:`DataParallel` model's ``call`` slices the batch and
  runs each slice under ``tf.device``. The template's own variables are used, so the
  template holds the trained weights at every moment. On 2 logical CPUs a fit epoch
  measured about 2x faster than ``tf.distribute.MirroredStrategy`` and as fast as the
  template alone (see docs/performance.md).
* a ``tf.distribute.Strategy`` (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``...):
  the strategy runs Keras's own distributed training. A copy of the template is built
  under ``strategy.scope()`` (as tf.distribute requires) and the weights are copied from
  the template when a call starts and back to it when ``fit`` or ``train_on_batch``
  ends, so the template still holds the trained weights.

Where results are merged is a ``tf.distribute.CrossDeviceOps``, as for a
``MirroredStrategy``: ``merge_ops(cpu_merge=True)`` is ``ReductionToOneDevice('/cpu:0')``
and ``merge_ops(cpu_merge=False, devices)`` is ``NcclAllReduce`` on GPUs (the results stay
on the devices) or a reduction to the first device otherwise.

The device-list engine also comes as a functional model, :func:`parallel_functional`
(a :class:`ParallelFunctional` on the template's input tensors, with slice, template and
concatenation layers), which is what ``kutils.multi_gpu_model`` returns.

This module is the public front door of the core; each part lives in its own module:
``_devices.py`` (device names), ``_device_parallel.py`` (the device-list engine),
``_strategy_parallel.py`` (the strategy engine), ``_cluster_setup.py`` (TF_CONFIG and
:func:`multi_worker_strategy`) and ``_per_worker_input.py`` (input read in shards across
workers). The core knows nothing of the Keras 2 API; ``kutils.multi_gpu_model`` is a
thin facade over it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kutils import _keras_compat, _requirements

# Without TensorFlow, importing this module is the first use: kutils' clear error (an
# ImportError naming the installed state and the install commands), not a bare
# ModuleNotFoundError.
_requirements.require_tensorflow("kutils.parallel")

import tensorflow as tf  # noqa: E402 - after the check above

from kutils import _devices, _strategy_parallel  # noqa: E402
from kutils._cluster_setup import multi_worker_strategy  # noqa: E402
from kutils._device_parallel import (  # noqa: E402
    BatchConcat,
    BatchSlice,
    DataParallel,
    ParallelFunctional,
    parallel_functional,
)
from kutils._devices import local_devices, normalize_device  # noqa: E402
from kutils._strategy_parallel import StrategyDataParallel  # noqa: E402

__all__ = [
    "BatchConcat",
    "BatchSlice",
    "DataParallel",
    "ParallelFunctional",
    "StrategyDataParallel",
    "data_parallel",
    "local_devices",
    "merge_ops",
    "multi_worker_strategy",
    "normalize_device",
    "parallel_functional",
]


def data_parallel(
    model: keras.Model,
    devices: Sequence[str] | tf.distribute.Strategy | None = None,
    *,
    cross_device_ops: tf.distribute.CrossDeviceOps | None = None,
) -> keras.Model:
    """Run a built Keras model data-parallel on several devices.

    Args:
        model: a built Keras model (Sequential, Functional or subclassed) on the
            TensorFlow backend: the template, whose weights the result uses.
        devices: where to run. A list of device names (``'/gpu:0'``, ``'GPU:1'``,
            ``'/cpu:2'``, or full ``/job:localhost/...`` names): one replica per device,
            in-graph. A ``tf.distribute.Strategy``: the strategy's replicas, through
            tf.distribute. ``None``: every local GPU, or every logical CPU when there
            is no GPU.
        cross_device_ops: where the per-device results are merged, for a device list.
            ``None`` (the default) and ``tf.distribute.ReductionToOneDevice('/cpu:0')``
            merge on the CPU; ``ReductionToOneDevice(d)`` merges on ``d``; any other
            ``CrossDeviceOps`` (``NcclAllReduce``, ``HierarchicalCopyAllReduce``) merges
            on the first device. With a strategy, pass the ops to the strategy instead.

    Returns:
        A ``keras.Model`` that splits each batch across the devices. Compile and train
        it like the template; save the template.

    Raises:
        ValueError: the model is not built, a device does not exist, fewer than one
            device is given, or ``cross_device_ops`` is given with a strategy.
        TypeError: ``model`` is not a Keras model, or ``devices`` is neither a list of
            names nor a strategy.

    Example:
        >>> parallel = data_parallel(model, ["/gpu:0", "/gpu:1"])  # doctest: +SKIP
        >>> parallel.compile("sgd", "mse")  # doctest: +SKIP
        >>> parallel.fit(x, y, batch_size=256)  # model now holds the trained weights

    Differences:
        Keras 2's ``multi_gpu_model`` built a Functional model of Lambda slices; this
        subclassed model needs no input tensors, so it takes any built template. For
        the functional form see :func:`parallel_functional`. Keras 3 has no equivalent for the TensorFlow
        backend (``keras.distribution`` targets JAX).
    """
    _keras_compat.check_keras_version("data_parallel and multi_gpu_model")
    if not isinstance(model, keras.Model):
        msg = (
            "data_parallel expects a keras.Model to replicate. "
            f"Received: model of type {type(model).__name__}"
        )
        raise TypeError(msg)
    if not model.built:
        msg = (
            "data_parallel needs a built model, so that every device shares its weights: "
            "give it an Input, call it once on a batch, or call model.build(input_shape). "
            f"Received: model={model.name!r} with built=False"
        )
        raise ValueError(msg)
    if isinstance(devices, tf.distribute.Strategy):
        if cross_device_ops is not None:
            msg = (
                "cross_device_ops applies to a list of devices; a strategy carries its own "
                "(for example MirroredStrategy(devices, cross_device_ops=...)). Received: "
                f"devices={type(devices).__name__}, cross_device_ops={cross_device_ops!r}"
            )
            raise ValueError(msg)
        return _strategy_parallel.strategy_model(model, devices)
    names = _devices.resolve_devices(devices)
    merge_device = _devices.merge_device(cross_device_ops, names)
    return DataParallel(model, names, merge_device=merge_device)


def merge_ops(
    cpu_merge: bool = True, devices: Sequence[str] | None = None
) -> tf.distribute.CrossDeviceOps:
    """The tf.distribute cross-device ops for merging on the CPU or on the devices.

    Args:
        cpu_merge: True merges on ``/cpu:0``; False merges on the devices.
        devices: the replica devices, needed when ``cpu_merge`` is False.

    Returns:
        ``ReductionToOneDevice('/cpu:0')`` for a CPU merge; for a device merge,
        ``NcclAllReduce()`` when every device is a GPU, else
        ``ReductionToOneDevice(devices[0])``. Pass it to :func:`data_parallel` or to
        ``tf.distribute.MirroredStrategy(devices, cross_device_ops=...)``.

    Raises:
        ValueError: ``cpu_merge`` is False and no devices are given.

    Example:
        >>> merge_ops(cpu_merge=False, devices=["/gpu:0", "/gpu:1"])  # doctest: +SKIP
        <tensorflow.python.distribute.cross_device_ops.NcclAllReduce object at ...>
    """
    if cpu_merge:
        return tf.distribute.ReductionToOneDevice(reduce_to_device=_devices.CPU)
    if not devices:
        msg = (
            "merge_ops(cpu_merge=False) merges on the devices, so it needs them: pass "
            f"devices=['/gpu:0', '/gpu:1', ...]. Received: devices={devices!r}"
        )
        raise ValueError(msg)
    names = [normalize_device(d) for d in devices]
    if all(name.startswith("/gpu:") for name in names):
        return tf.distribute.NcclAllReduce()
    return tf.distribute.ReductionToOneDevice(reduce_to_device=names[0])
