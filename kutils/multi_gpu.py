"""``multi_gpu_model``: the Keras 2 ``multi_gpu_utils`` API over kutils' data-parallel core.

The argument checks and error messages are those of Keras 2.3.1; the replication itself
is :func:`kutils.parallel.data_parallel`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kutils import _requirements

if TYPE_CHECKING:
    import keras

__all__ = ["multi_gpu_model"]

#: Environment variable read for ``device_type`` when it is not passed: lets a runner make
#: an unchanged Keras 2 script replicate on logical CPUs (``KUTILS_MULTI_GPU_DEVICE_TYPE=CPU``).
DEVICE_TYPE_ENV = "KUTILS_MULTI_GPU_DEVICE_TYPE"


def multi_gpu_model(
    model: keras.Model,
    gpus: int | Sequence[int] | None = None,
    cpu_merge: bool = True,
    cpu_relocation: bool = False,
    *,
    device_type: str | None = None,
) -> keras.Model:
    """Replicate a model on several GPUs: each GPU runs the model on part of every batch.

    Every batch is split into one sub-batch per GPU (the last takes the remainder), each
    GPU runs the model on its sub-batch with the model's own weights, and the results
    are concatenated in order into one batch. The returned model compiles, trains and
    predicts like ``model``; ``model`` holds the trained weights, so save ``model``.

    Args:
        model: a built Keras model: the template, whose weights the result shares.
        gpus: an int >= 2 (use GPUs 0 to ``gpus - 1``), a list of at least two GPU ids,
            or None for every visible GPU.
        cpu_merge: True merges the results on ``/cpu:0``; False merges on the first
            GPU (``tf.distribute.NcclAllReduce``-style; best with NVLink).
        cpu_relocation: True moves the model's weights to ``/cpu:0`` first, keeping
            their values; use it when the model was built on a GPU.
        device_type: the kind of device ``gpus`` counts: ``'GPU'`` or ``'CPU'``.
            ``'CPU'`` replicates on logical CPU devices, for testing on machines
            without GPUs (see ``tf.config.set_logical_device_configuration``).
            None (the default) reads the ``KUTILS_MULTI_GPU_DEVICE_TYPE`` environment
            variable, else ``'GPU'``: a runner can set it so that an unchanged Keras 2
            script calling ``multi_gpu_model(model, gpus=2)`` uses logical CPUs.

    Returns:
        As in Keras 2, a functional ``keras.Model`` on the template's input tensors (a
        :class:`kutils.parallel.ParallelFunctional`): its layers are the input layers,
        one slice layer per device and input, the template (``layers[-2]`` for a
        single-output template) and one concatenation layer per output, named after
        the outputs; repeated output names get ``_1``, ``_2``... A subclassed template
        without input tensors gets a :class:`kutils.parallel.DataParallel` instead.

    Raises:
        ValueError: the Keras backend is not TensorFlow; ``device_type`` (or the
            environment variable) is neither ``'GPU'`` nor ``'CPU'``; fewer than 2 GPUs are asked
            for or visible; a requested GPU does not exist; or the model is not built.
        TypeError: ``gpus`` is neither an int, a list of ints nor None.
        kutils._requirements.TensorFlowRequiredError: (an ``ImportError``) the backend
            is TensorFlow but the installed TensorFlow is older than 2.16.

    Example:
        >>> with tf.device("/cpu:0"):  # doctest: +SKIP
        ...     model = Xception(weights=None, input_shape=(299, 299, 3), classes=1000)
        >>> parallel_model = multi_gpu_model(model, gpus=8)  # doctest: +SKIP
        >>> parallel_model.compile(loss="categorical_crossentropy", optimizer="rmsprop")
        >>> parallel_model.fit(x, y, epochs=20, batch_size=256)  # doctest: +SKIP
        >>> model.save("my_model.h5")  # the template holds the trained weights

    Differences:
        Keras 2's ``cpu_relocation=True`` rebuilt the model with fresh, random weights
        (training then started from scratch and never reached the template); kutils
        moves the existing weights, values and all. A batch smaller than the number of
        GPUs no longer feeds NaN statistics from empty sub-batches into
        BatchNormalization. The slice and merge layers are ``BatchSlice`` and
        ``BatchConcat`` instead of ``Lambda`` and ``Concatenate``. Keras 3 (and
        TensorFlow since 2.4) has no
        ``multi_gpu_model``. ``device_type`` and ``KUTILS_MULTI_GPU_DEVICE_TYPE`` are new.
    """
    import keras

    _require_tensorflow_backend(keras.backend.backend())
    _requirements.require_tensorflow("kutils.multi_gpu_model")

    from kutils._devices import merge_device
    from kutils.parallel import (
        data_parallel,
        local_devices,
        merge_ops,
        parallel_functional,
    )

    replicas = _replica_devices(gpus, _resolve_device_type(device_type), local_devices())
    if cpu_relocation:
        relocate_variables(model, "/cpu:0")
    ops = merge_ops(cpu_merge, replicas)
    if not getattr(model, "inputs", None):
        # A subclassed model built with build(input_shape) has no input tensors to
        # build a functional model on (Keras 2 rejected it); the core's model runs it.
        return data_parallel(model, replicas, cross_device_ops=ops)
    return parallel_functional(model, replicas, merge_device=merge_device(ops, replicas))


def _replica_devices(
    gpus: int | Sequence[int] | None, kind: str, available: list[str]
) -> list[str]:
    """The devices of the replicas, checked as Keras 2.3.1 checked ``gpus``, in its order."""
    if kind == "gpu":
        # Keras 2.3.1 listed the GPUs and '/cpu:0' only.
        available = [d for d in available if d.startswith("/gpu:")] + ["/cpu:0"]
    if isinstance(gpus, str) or not isinstance(gpus, (int, Sequence, type(None))):
        msg = (
            "gpus must be an int, a list of GPU ids or None. "
            f"Received: gpus={gpus!r} of type {type(gpus).__name__}"
        )
        raise TypeError(msg)
    if not gpus:
        gpus = len([d for d in available if d.startswith(f"/{kind}:")])
    if isinstance(gpus, Sequence):
        if len(gpus) <= 1:
            msg = (
                "For multi-gpu usage to be effective, call `multi_gpu_model` with "
                f"`len(gpus) >= 2`. Received: `gpus={gpus}`"
            )
            raise ValueError(msg)
        target_ids = list(gpus)
    else:
        if gpus <= 1:
            msg = (
                "For multi-gpu usage to be effective, call `multi_gpu_model` with "
                f"`gpus >= 2`. Received: `gpus={gpus}`"
            )
            raise ValueError(msg)
        target_ids = list(range(gpus))
    replicas = [f"/{kind}:{i}" for i in target_ids]
    target_devices = ["/cpu:0", *replicas]
    if any(device not in available for device in target_devices):
        msg = (
            f"To call `multi_gpu_model` with `gpus={gpus}`, we expect the following "
            f"devices to be available: {target_devices}. However this machine only has: "
            f"{available}. Try reducing `gpus`."
        )
        raise ValueError(msg)
    return replicas


def relocate_variables(model: keras.Model, device: str) -> None:
    """Move the storage of every variable of ``model`` to ``device``, keeping values.

    ``cpu_relocation=True``. A Keras 3 variable on the TensorFlow backend keeps its value
    in a ``tf.Variable``, which TensorFlow cannot move, so new storage is made on
    ``device`` from the current value (through the accessors of
    ``kutils/_keras_compat.py``). The Keras variable objects stay the same, so every
    layer, optimizer slot map and checkpoint that refers to them still does, and the
    model's compiled train, test and predict functions (which captured the old storage)
    are dropped for re-tracing.
    """
    import keras
    import tensorflow as tf

    from kutils import _keras_compat, _keras_compat_training

    _keras_compat.check_keras_version("multi_gpu_model(cpu_relocation=True)")
    if keras.backend.backend() != "tensorflow":
        msg = f"Moving variables needs the TensorFlow backend. Received: backend={keras.backend.backend()!r}"
        raise ValueError(msg)
    for variable in model.variables:
        storage = _keras_compat_training.variable_storage(variable)
        if storage is None:  # not created yet: it will be made wherever it is first built
            continue
        with tf.init_scope(), tf.device(device):
            _keras_compat_training.replace_variable_storage(variable, tf.identity(storage))
    for name in ("train_function", "test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)


def _resolve_device_type(device_type: str | None) -> str:
    """``device_type``, else the environment variable, else GPU; lower case, checked."""
    if device_type is None:
        source = DEVICE_TYPE_ENV
        device_type = os.environ.get(DEVICE_TYPE_ENV) or "GPU"
    else:
        source = "device_type"
    if not isinstance(device_type, str) or device_type.upper() not in ("GPU", "CPU"):
        msg = f"{source} must be 'GPU' or 'CPU'. Received: {source}={device_type!r}"
        raise ValueError(msg)
    return device_type.lower()


def _require_tensorflow_backend(backend: str) -> None:
    if backend != "tensorflow":
        msg = (
            "`multi_gpu_model` is only available with the TensorFlow backend. "
            f"Received: backend={backend!r} (set KERAS_BACKEND=tensorflow before importing "
            "Keras, or use keras.distribution for JAX)"
        )
        problem = _requirements.tensorflow_problem()
        if problem is not None:
            msg += f". Note that {problem}. {_requirements.install_instructions()}"
        raise ValueError(msg)
