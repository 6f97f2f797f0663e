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

This module knows nothing of the Keras 2 API; ``kutils.multi_gpu_model`` is a thin
facade over it.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import keras

from kutils import _keras_compat, _requirements

# Without TensorFlow, importing this module is the first use: kutils' clear error (an
# ImportError naming the installed state and the install commands), not a bare
# ModuleNotFoundError.
_requirements.require_tensorflow("kutils.parallel")

import tensorflow as tf  # noqa: E402 - after the check above

if TYPE_CHECKING:
    from kutils import _shards

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

_CPU = "/cpu:0"


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
        return _strategy_model(model, devices)
    names = _resolve_devices(devices)
    merge_device = _merge_device(cross_device_ops, names)
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
        return tf.distribute.ReductionToOneDevice(reduce_to_device=_CPU)
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


@keras.saving.register_keras_serializable(package="kutils")
class DataParallel(keras.Model):
    """A model whose ``call`` splits the batch across devices and runs the template on each.

    Made by :func:`data_parallel` for a list of devices. Device *i* gets rows
    ``[i * step, (i + 1) * step)`` of every input, with ``step = batch // len(devices)``;
    the last device also takes the remainder. Each device runs the template itself, so
    every replica uses the template's variables. The per-device outputs are
    concatenated in device order on ``merge_device``, so row order is preserved and
    losses and metrics see the whole batch.

    Args:
        template: the built model to run on every device.
        devices: normalized device names, at least one.
        merge_device: where outputs are concatenated.
        name: the model name; Keras auto-names it when None.

    Attributes:
        template: the wrapped model, which holds the weights: save it.
        devices: the replica devices.
        merge_device: the merge device.
    """

    # XLA would discard the tf.device scopes; "auto" jit must resolve to False.
    supports_jit = False

    def __init__(
        self,
        template: keras.Model,
        devices: Sequence[str],
        *,
        merge_device: str = _CPU,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.template = template
        self.devices = list(devices)
        self.merge_device = merge_device
        # Only BatchNormalization misbehaves on an empty sub-batch (its moving averages
        # become NaN); the guard costs a conditional per device, so only it pays.
        self._guard_empty = _keras_compat.contains_layer_type(
            template, keras.layers.BatchNormalization
        )
        names = getattr(template, "output_names", None)
        if names:
            self.output_names = _dedupe(list(names))
        self.built = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Run the template on each device's slice of ``inputs``; concatenate the results."""
        parts = len(self.devices)
        batch = tf.shape(keras.tree.flatten(inputs)[0])[0]
        outputs = []
        for i, device in enumerate(self.devices):
            sub_batch = keras.tree.map_structure(lambda x, k=i: _batch_slice(x, k, parts), inputs)
            outputs.append(
                _run_replica(
                    self.template, sub_batch, device, training, self._guard_empty, i, parts, batch
                )
            )
        if parts == 1:
            return outputs[0]
        with tf.device(self.merge_device):
            return keras.tree.map_structure(lambda *xs: tf.concat(xs, axis=0), *outputs)

    def train_step(self, data: Any) -> Any:
        """Keras's train step, with each replica's gradients computed on its device."""
        return colocated_train_step(self, data)

    def get_config(self) -> dict[str, Any]:
        """The template's config, the devices and the merge device, for ``save``."""
        return {
            "name": self.name,
            "template": keras.saving.serialize_keras_object(self.template),
            "devices": list(self.devices),
            "merge_device": self.merge_device,
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, Any] | None = None
    ) -> DataParallel:
        """Rebuild a saved model; every device it names must exist in this process."""
        template = keras.saving.deserialize_keras_object(
            config["template"], custom_objects=custom_objects
        )
        devices = _resolve_devices(config["devices"])
        merge_device = _resolve_devices([config["merge_device"]])[0]
        return cls(template, devices, merge_device=merge_device, name=config.get("name"))


def colocated_train_step(model: keras.Model, data: Any) -> Any:
    """Keras 3's TensorFlow ``train_step``, with gradients built next to their forward ops.

    ``tf.GradientTape`` creates the backward ops outside any device scope, so in a model
    whose ``call`` places replicas with ``tf.device`` the whole backward pass lands on
    one device. ``tf.gradients`` (graph mode, as inside Keras's traced train function)
    colocates each gradient op with its forward op, as Keras 2 did with
    ``colocate_gradients_with_ops=True``, so every device differentiates its own
    replica. Everything else is ``keras.src.backend.tensorflow.trainer.train_step`` of
    Keras 3.8 to 3.15: the loss, the loss tracker, loss scaling, the optimizer and the
    metrics, through the accessors of ``kutils/_keras_compat.py``. Run eagerly
    (``run_eagerly=True``), the tape is used instead.
    """
    _keras_compat.check_train_step_internals(model)
    unscale = _keras_compat.unscale_loss_for_distribution_function()
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    tape = tf.GradientTape() if tf.executing_eagerly() else None
    with tape if tape is not None else contextlib.nullcontext():
        training = _keras_compat.call_has_training_arg(model)
        y_pred = model(x, training=True) if training else model(x)
        loss = _keras_compat.compute_loss(model, x, y, y_pred, sample_weight)
        _keras_compat.loss_tracker(model).update_state(
            unscale(loss),
            sample_weight=tf.shape(next(i for i in keras.tree.flatten(x) if i is not None))[0],
        )
        if model.optimizer is not None:
            loss = model.optimizer.scale_loss(loss)
    trainable_weights = model.trainable_weights
    if trainable_weights:
        if tape is not None:
            gradients = tape.gradient(loss, trainable_weights)
        else:
            gradients = tf.gradients(loss, trainable_weights)
        model.optimizer.apply_gradients(zip(gradients, trainable_weights, strict=True))
    else:
        warnings.warn("The model does not have any trainable weights.", stacklevel=2)
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


# .keras files name the class "kutils>DataParallel"; legacy .h5 files name it by its
# bare class name, which Keras looks up among the custom objects.
keras.saving.get_custom_objects().setdefault("DataParallel", DataParallel)


def _batch_slice(x: Any, index: int, parts: int) -> Any:
    """Rows of sub-batch ``index`` of ``parts``: ``batch // parts`` each, the last takes the rest."""
    batch = tf.shape(x)[0]
    step = batch // parts
    start = step * index
    stop = batch if index == parts - 1 else start + step
    return x[start:stop]


def _run_replica(
    template: keras.Model,
    sub_batch: Any,
    device: str,
    training: bool | None,
    guard_empty: bool,
    index: int,
    parts: int,
    batch: Any,
) -> Any:
    """``template(sub_batch)`` on ``device``; an empty BatchNormalization sub-batch runs in inference."""
    with tf.device(device):
        if training and guard_empty and index < parts - 1:
            # A batch smaller than the device count leaves the first slices empty;
            # running those in training mode would feed NaN batch statistics into
            # BatchNormalization's moving averages.
            return tf.cond(
                batch // parts > 0,
                lambda: template(sub_batch, training=True),
                lambda: template(sub_batch, training=False),
            )
        return template(sub_batch, training=training)


@keras.saving.register_keras_serializable(package="kutils")
class BatchSlice(keras.layers.Layer):
    """Sub-batch ``index`` of ``parts`` of its input, for the replica on ``device``.

    Sub-batch *i* holds rows ``[i * step, (i + 1) * step)`` with
    ``step = batch // parts``; the last one also takes the remainder (Keras 2's
    ``get_slice``). A layer of :class:`ParallelFunctional`'s graph; ``device`` is
    where that model runs the replica fed by this slice.
    """

    def __init__(self, index: int, parts: int, device: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = int(index)
        self.parts = int(parts)
        self.device = str(device)

    def call(self, x: Any) -> Any:
        return _batch_slice(x, self.index, self.parts)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (None, *tuple(input_shape)[1:])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "index": self.index,
            "parts": self.parts,
            "device": self.device,
        }


@keras.saving.register_keras_serializable(package="kutils")
class BatchConcat(keras.layers.Layer):
    """The replicas' results for one output, concatenated in order on ``device``."""

    def __init__(self, device: str = _CPU, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device = str(device)

    def call(self, parts: list[Any]) -> Any:
        with tf.device(self.device):
            return tf.concat(list(parts), axis=0)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (None, *tuple(input_shape[0])[1:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "device": self.device}


@keras.saving.register_keras_serializable(package="kutils")
class ParallelFunctional(keras.Model):
    """A functional model on the template's inputs that runs the template on several devices.

    Made by :func:`parallel_functional` (and so by ``kutils.multi_gpu_model``). Its graph
    is Keras 2's: the template's input layers, one :class:`BatchSlice` layer per device
    and input, the template (called once per device, so every replica uses its
    variables), and one :class:`BatchConcat` layer per output, named after the
    template's outputs (repeated names get ``_1``, ``_2``...). ``inputs``, ``outputs``,
    ``layers``, ``summary()``, ``get_config()``, saving and ``export()`` are those of any
    functional model; ``layers[-2]`` is the template when it has one output.

    Keras 3 runs a functional graph without device scopes, so ``call`` runs the same
    graph itself: each slice's replica under ``tf.device`` of its slice layer, the
    concatenation on the merge device.

    Args:
        inputs: the template's input tensors (or, when loading, rebuilt ones).
        outputs: the concatenated outputs of the graph described above.
        name: the model name; Keras auto-names it when None.

    Attributes:
        template: the wrapped model, which holds the weights: save it.
        devices: the replica devices, in slice order.
        merge_device: where outputs are concatenated.
    """

    # XLA would discard the tf.device scopes; "auto" jit must resolve to False.
    supports_jit = False

    # Takes Functional's (inputs, outputs, name=None, **kwargs) through *args/**kwargs:
    # Keras saves a Functional subclass's graph config only when its constructor looks
    # like Functional's, and Keras 3.8 compares the argument lists with a wrapped
    # Functional.__init__ whose only arguments are *args/**kwargs (3.15 accepts both forms).
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        slices = [layer for layer in self.layers if isinstance(layer, BatchSlice)]
        merges = [layer for layer in self.layers if isinstance(layer, BatchConcat)]
        templates = [
            layer
            for layer in self.layers
            if not isinstance(layer, (BatchSlice, BatchConcat, keras.layers.InputLayer))
        ]
        if len(templates) != 1 or not slices or not merges:
            msg = (
                "A ParallelFunctional graph holds input layers, BatchSlice layers, one "
                "template model and BatchConcat layers. Received layers: "
                f"{[type(layer).__name__ for layer in self.layers]}"
            )
            raise ValueError(msg)
        parts = slices[0].parts
        by_replica: list[list[BatchSlice]] = [[] for _ in range(parts)]
        for layer in slices:
            by_replica[layer.index].append(layer)
        # The slice layers of a replica, in the order of the inputs they read.
        order = {id(t): position for position, t in enumerate(self.inputs)}
        self._slices = [
            sorted(group, key=lambda layer: order[id(layer.input)]) for group in by_replica
        ]
        # The merge layers carry the output names, in output order.
        self._merges = [self.get_layer(name) for name in self.output_names]
        object.__setattr__(self, "_template", templates[0])
        # Checked as for DataParallel: a loaded model's devices must exist here.
        self.devices = _resolve_devices([group[0].device for group in self._slices])
        self.merge_device = _resolve_devices([self._merges[0].device])[0]
        self._guard_empty = _keras_compat.contains_layer_type(
            templates[0], keras.layers.BatchNormalization
        )

    @property
    def template(self) -> keras.Model:
        """The wrapped model, which holds the weights."""
        return self._template

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Run the template on each device's slice of ``inputs``; concatenate the results."""
        del mask
        if isinstance(inputs, dict):  # by input name, as for any functional model
            inputs = [inputs[tensor.name] for tensor in self.inputs]
        flat = [
            tf.convert_to_tensor(x, dtype=tensor.dtype)
            for x, tensor in zip(keras.tree.flatten(inputs), self.inputs, strict=True)
        ]
        parts = len(self.devices)
        batch = tf.shape(flat[0])[0]
        single_input = len(flat) == 1
        replica_outputs = []
        for i, device in enumerate(self.devices):
            sub = [layer(x) for layer, x in zip(self._slices[i], flat, strict=True)]
            result = _run_replica(
                self._template,
                sub[0] if single_input else sub,
                device,
                training,
                self._guard_empty,
                i,
                parts,
                batch,
            )
            replica_outputs.append(keras.tree.flatten(result))
        merged = [
            merge([outs[j] for outs in replica_outputs]) for j, merge in enumerate(self._merges)
        ]
        return merged[0] if len(merged) == 1 else merged

    def train_step(self, data: Any) -> Any:
        """Keras's train step, with each replica's gradients computed on its device."""
        return colocated_train_step(self, data)


def parallel_functional(
    model: keras.Model, devices: Sequence[str], *, merge_device: str = _CPU
) -> ParallelFunctional:
    """A :class:`ParallelFunctional` model running ``model`` on ``devices`` (normalized names).

    Raises:
        ValueError: ``model`` has no input tensors (a subclassed model built with
            ``build(input_shape)``): use :func:`data_parallel`, whose model does not need them.
    """
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        msg = (
            "A functional parallel model is built on the template's input tensors, and "
            f"this model has none (model={model.name!r} of type {type(model).__name__}): "
            "build it from keras.Input, or use kutils.parallel.data_parallel."
        )
        raise ValueError(msg)
    parts = len(devices)
    replica_outputs = []
    for i, device in enumerate(devices):
        sub = [
            BatchSlice(i, parts, device, name=f"replica_{i}_slice_{j}")(x)
            for j, x in enumerate(inputs)
        ]
        replica_outputs.append(keras.tree.flatten(model(sub[0] if len(sub) == 1 else sub)))
    # A Sequential has one output, its last layer's; it has no output_names.
    names = _dedupe(list(getattr(model, "output_names", None) or [model.layers[-1].name]))
    merged = [
        BatchConcat(merge_device, name=names[j])([outs[j] for outs in replica_outputs])
        for j in range(len(names))
    ]
    # One input or output is given bare, as Keras does for such a model: its exported
    # serving signature then takes a tensor, not a one-element list.
    return ParallelFunctional(
        inputs[0] if len(inputs) == 1 else inputs, merged[0] if len(merged) == 1 else merged
    )


for _layer_class in (BatchSlice, BatchConcat, ParallelFunctional):
    # Legacy .h5 files name classes by their bare names, looked up among custom objects.
    keras.saving.get_custom_objects().setdefault(_layer_class.__name__, _layer_class)


def _dedupe(names: list[str]) -> list[str]:
    """Suffix every repeated name with _1, _2... in order, as Keras 2 did."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        if names.count(name) > 1:
            seen[name] = seen.get(name, 0) + 1
            result.append(f"{name}_{seen[name]}")
        else:
            result.append(name)
    return result


def _resolve_devices(devices: Sequence[str] | None) -> list[str]:
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


def _merge_device(ops: tf.distribute.CrossDeviceOps | None, devices: list[str]) -> str:
    if ops is None:
        return _CPU
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


def _strategy_model(template: keras.Model, strategy: tf.distribute.Strategy) -> keras.Model:
    with strategy.scope():
        replica = _clone_with_weights(template)
        return StrategyDataParallel(template, replica, strategy)


def _worker_lost(exc: tf.errors.OpError) -> tf.errors.OpError:
    """The error of a step that another worker of the cluster left unfinished."""
    if "Error reported from" in exc.message:
        what = "stopped with an error (reported to the whole cluster, below)"
    else:
        what = "stopped answering (it crashed, was killed or is unreachable)"
    msg = (
        f"Training stopped: another worker of the MultiWorkerMirroredStrategy cluster {what}, "
        "so the gradient all-reduce cannot complete. Check that worker's log, then restart "
        "every worker; keras.callbacks.BackupAndRestore lets the restarted run resume. "
        f"Received: {type(exc).__name__}: {exc.message}"
    )
    return type(exc)(exc.node_def, exc.op, msg)


# The errors of a collective operation whose peer is gone or has reported an error.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)


def _spans_workers(strategy: tf.distribute.Strategy) -> bool:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(kind, [])) for kind in ("chief", "worker")) > 1


def _clone_with_weights(template: keras.Model) -> keras.Model:
    try:
        replica = keras.models.clone_model(template)
    except Exception as exc:
        msg = (
            "Running a model under a tf.distribute strategy needs a copy built inside "
            "strategy.scope(); this model could not be cloned (a subclassed model needs "
            f"get_config). Received: model={template.name!r} ({type(exc).__name__}: {exc})"
        )
        raise ValueError(msg) from exc
    if not replica.built:
        msg = (
            "The copy of the model made for the strategy is not built (a subclassed model "
            "needs get_build_config/build_from_config). Build the model from a keras.Input, "
            f"or pass a list of devices instead. Received: model={template.name!r}"
        )
        raise ValueError(msg)
    replica.set_weights(template.get_weights())
    return replica


class StrategyDataParallel(_keras_compat.LocalBatchSymbolicBuild, keras.Model):
    """A copy of the template run by a tf.distribute strategy, its weights kept in step.

    Made by :func:`data_parallel` for a ``tf.distribute.Strategy``. The copy (``replica``)
    and this model are built, and compiled, under ``strategy.scope()``, so Keras runs
    ``fit``, ``evaluate`` and ``predict`` through the strategy. Every public training or
    inference call first copies the template's weights into the copy; ``fit`` and
    ``train_on_batch`` copy the result back, so the template holds the trained weights.

    Across the workers of a ``MultiWorkerMirroredStrategy``, ``fit`` and ``evaluate``
    read a kutils ``Sequence`` (or other ``PyDataset``), HDF5 input or shuffled numpy
    arrays as per-worker shards with one shuffle order for all workers
    (``kutils/_shards.py``; docs/multi_worker.md has the rules per input type). A
    worker whose ``fit`` or ``evaluate`` fails once it has begun reports the error to the
    cluster, so the other workers stop at once instead of waiting for it.

    Args:
        template: the user's built model.
        replica: the copy of ``template`` made under ``strategy.scope()``.
        strategy: the strategy that runs the copy.
    """

    def __init__(
        self, template: keras.Model, replica: keras.Model, strategy: tf.distribute.Strategy
    ) -> None:
        super().__init__()
        self.replica = replica
        # Kept outside Keras's tracking: the template's variables are not the strategy's.
        object.__setattr__(self, "_template", template)
        object.__setattr__(self, "_strategy", strategy)
        names = getattr(replica, "output_names", None)
        if names:
            self.output_names = list(names)
        self._across_workers = _spans_workers(strategy)
        object.__setattr__(self, "_sharded_input", None)
        self.built = True

    @property
    def template(self) -> keras.Model:
        """The user's model, which receives the trained weights."""
        return self._template

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        return self.replica(inputs, training=training)

    def compile(self, optimizer: Any = "rmsprop", *args: Any, **kwargs: Any) -> None:
        """``keras.Model.compile`` inside the strategy's scope, as tf.distribute needs."""
        with self._strategy.scope():
            if isinstance(optimizer, keras.optimizers.Optimizer):
                # An optimizer made outside the scope would mix two strategies.
                optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
            super().compile(optimizer, *args, **kwargs)

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        try:
            return self._call_on_input(keras.Model.fit, args, kwargs, training=True)
        finally:
            self._push()

    def train_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        try:
            return super().train_on_batch(*args, **kwargs)
        finally:
            self._push()

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return self._call_on_input(keras.Model.evaluate, args, kwargs, training=False)

    def _call_on_input(
        self, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, training: bool
    ) -> Any:
        """Keras's ``fit``/``evaluate`` (``method``), on per-worker shards where they apply.

        Across workers, an exception that stops this worker once training or evaluation
        has begun is reported to the cluster, so that the other workers, waiting for it
        in an all-reduce, stop at once (see ``_stopped_midway``).
        """
        arguments = self._per_worker_input(method, args, kwargs, training=training)
        steps = self._steps_run() if self._across_workers else None
        try:
            if arguments is None:
                return method(self, *args, **kwargs)
            shards, keywords = arguments
            with shards.running():
                return method(self, **keywords)
        except BaseException as error:
            if not self._across_workers:
                raise
            if self._stopped_midway(error, arguments, steps):
                _keras_compat.report_error_to_cluster(error)
            if isinstance(error, _PEER_ERRORS):
                raise _worker_lost(error) from error
            raise

    def _steps_run(self) -> int | None:
        """The optimizer's step count, or None when there is no optimizer yet."""
        iterations = getattr(getattr(self, "optimizer", None), "iterations", None)
        try:
            return None if iterations is None else int(iterations.numpy())
        except Exception:  # unreadable once the cluster failed
            return None

    def _stopped_midway(self, error: BaseException, arguments: Any, steps: int | None) -> bool:
        """Whether ``error`` may leave the other workers waiting for this one.

        True for a TensorFlow op error (TensorFlow's own handler reports those), an
        error raised once the sharded input's first epoch began, or one raised after a
        training step ran (a callback's, say). An error Keras raises before anything
        runs (a bad argument) is raised on every worker alike and is not reported, so
        a script that catches it can go on using the cluster.
        """
        if isinstance(error, tf.errors.OpError):
            return True
        if arguments is not None and arguments[0].started:
            return True
        return steps is not None and self._steps_run() != steps

    def _per_worker_input(
        self, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any], *, training: bool
    ) -> tuple[_shards.ShardedInput, dict[str, Any]] | None:
        """Across workers, a Sequence, HDF5 or shuffled numpy input read as shards.

        Returns the sharded input and the keyword arguments for Keras with the input
        replaced, or None when Keras's own handling applies (one worker, other inputs,
        or ``steps_per_epoch``/``steps``/``validation_split`` given).
        """
        if not self._across_workers:
            return None
        from kutils import _shards

        bound = inspect.signature(method).bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        arguments.update(arguments.pop("kwargs", {}))
        if arguments.get("steps_per_epoch") or arguments.get("steps"):
            return None
        if arguments.get("validation_split"):
            return None
        if arguments.get("_use_cached_eval_dataset"):
            return None  # fit's validation pass: Keras reuses its own iterator, not x
        shards = _shards.sharded_input(
            self._strategy,
            arguments["x"],
            arguments["y"],
            arguments["sample_weight"],
            arguments["batch_size"],
            arguments.get("shuffle", False),
            training=training,
        )
        if shards is None:
            return None
        if arguments.get("class_weight") is not None:
            msg = (
                "class_weight is not supported for an input read in shards across workers "
                "(a Sequence, HDF5 data or shuffled numpy arrays); give per-sample weights "
                "instead: (x, y, sample_weight) batches, HDF5Dataset(x, y, sample_weight) "
                "or fit(x, y, sample_weight=...). "
                f"Received: class_weight={arguments['class_weight']!r}"
            )
            raise ValueError(msg)
        shards.build()
        object.__setattr__(self, "_sharded_input", shards)  # the last one, for its seed
        arguments.update(x=shards, y=None, sample_weight=None, batch_size=None)
        if training:
            arguments["shuffle"] = False
        return shards, arguments

    def test_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return super().test_on_batch(*args, **kwargs)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return super().predict(*args, **kwargs)

    def predict_on_batch(self, *args: Any, **kwargs: Any) -> Any:
        self._pull()
        return super().predict_on_batch(*args, **kwargs)

    def train_step(self, data: Any) -> Any:
        """Keras's train step; across workers, its scalar logs are made 1-D."""
        return self._reducible(super().train_step(data))

    def test_step(self, data: Any) -> Any:
        """Keras's test step; across workers, its scalar logs are made 1-D."""
        return self._reducible(super().test_step(data))

    def _reducible(self, logs: Any) -> Any:
        # Across workers Keras averages each replica's logs with
        # strategy.reduce("MEAN", v, axis=0), which fails on a scalar loss; a 1-element
        # vector per replica averages to the same scalar.
        if not self._across_workers:
            return logs
        return keras.tree.map_structure(
            lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, logs
        )

    def _pull(self) -> None:
        self.replica.set_weights(self._template.get_weights())

    def _push(self) -> None:
        self._template.set_weights(self.replica.get_weights())


def multi_worker_strategy(
    tf_config: str | dict[str, Any] | None = None,
    *,
    timeout_seconds: float | None = None,
    check_port: bool = True,
) -> tf.distribute.MultiWorkerMirroredStrategy:
    """A ``tf.distribute.MultiWorkerMirroredStrategy`` from a TF_CONFIG, checked first.

    Every worker runs the same script; ``TF_CONFIG`` says where the workers are and which
    one this process is, for example on worker 1 of 2::

        {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
         "task": {"type": "worker", "index": 1}}

    The configuration is validated before TensorFlow sees it, so a mistake surfaces as a
    ``ValueError`` naming what was received, not as a hang or a gRPC error mid-training.
    Pass the result to :func:`data_parallel`.

    Args:
        tf_config: the TF_CONFIG as a JSON string or a dict; ``None`` reads the
            ``TF_CONFIG`` environment variable.
        timeout_seconds: how long one collective operation (a gradient all-reduce) may
            wait for the other workers before failing with
            ``tf.errors.DeadlineExceededError``. ``None`` (the default, as in
            TensorFlow) sets no limit: a crashed or killed worker is still found by
            TensorFlow's heartbeats, and the others stop with an error within about 20
            seconds (measured). A limit costs threads: TensorFlow 2.21 keeps one thread
            per collective operation until its timeout expires, about 4 per step, so a
            60 s limit at 10 steps per second holds some 2,400 threads. Set one only to
            bound a hang that is not a lost worker, longer than your slowest step.
        check_port: bind this task's port on every address of this machine (as
            TensorFlow's server will, whatever host TF_CONFIG names) and release it, to
            report a port that is already taken before TensorFlow starts.

    Returns:
        The strategy, with one replica per local GPU (or the CPU when there is none).

    Raises:
        ValueError: TF_CONFIG is missing, is not JSON, lacks ``cluster`` or ``task``,
            names a task type that is not in the cluster or an index out of range, has
            an address that is not ``host:port`` (a ``grpc://`` prefix is accepted and
            dropped; other schemes are not), lists one address twice, or this task's
            port is in use on any address of this machine.

    Example:
        >>> strategy = multi_worker_strategy()  # doctest: +SKIP
        >>> parallel = data_parallel(model, strategy)  # doctest: +SKIP
        >>> parallel.compile("sgd", "mse")  # doctest: +SKIP
        >>> parallel.fit(x, y, batch_size=64)  # model now holds the trained weights

    Differences:
        Neither Keras 2 nor Keras 3 has this; Keras 3.15's own ``fit`` fails under a
        MultiWorkerMirroredStrategy before the first step, which :func:`data_parallel`
        works around.
    """
    config = _parse_tf_config(tf_config)
    cluster, task_type, task_id = _check_tf_config(config)
    address = cluster[task_type][task_id]
    if check_port:
        _check_port_free(address, task_type, task_id)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster),
        task_type=task_type,
        task_id=task_id,
        rpc_layer=config.get("rpc_layer", "grpc"),
    )
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_seconds)
    return tf.distribute.MultiWorkerMirroredStrategy(
        cluster_resolver=resolver, communication_options=options
    )


_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def _parse_tf_config(tf_config: str | dict[str, Any] | None) -> dict[str, Any]:
    import json
    import os

    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG", "")
        if not tf_config.strip():
            msg = (
                "multi_worker_strategy reads the cluster from the TF_CONFIG environment "
                f"variable, which is not set; set it on every worker, e.g. "
                f"TF_CONFIG='{_TF_CONFIG_EXAMPLE}'. Received: TF_CONFIG={tf_config!r}"
            )
            raise ValueError(msg)
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except json.JSONDecodeError as exc:
            msg = (
                f"TF_CONFIG is not valid JSON ({exc}); it should look like "
                f"{_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={tf_config!r}"
            )
            raise ValueError(msg) from exc
    if not isinstance(tf_config, dict):
        msg = (
            "TF_CONFIG must be a JSON object with 'cluster' and 'task', such as "
            f"{_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={tf_config!r}"
        )
        raise ValueError(msg)
    return tf_config


def _check_tf_config(config: dict[str, Any]) -> tuple[dict[str, list[str]], str, int]:
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        msg = (
            "TF_CONFIG needs a 'cluster' mapping each task type to its 'host:port' "
            f"addresses, such as {_TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={config!r}"
        )
        raise ValueError(msg)
    checked: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            msg = (
                f"TF_CONFIG cluster[{kind!r}] must be a non-empty list of 'host:port' "
                f"addresses. Received: cluster={cluster!r}"
            )
            raise ValueError(msg)
        checked[kind] = []
        for index, address in enumerate(addresses):
            where = f"cluster[{kind!r}][{index}]"
            plain = _plain_address(str(address), where)
            host, _, port = plain.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                msg = (
                    f"Every TF_CONFIG address is 'host:port' with a port from 1 to 65535. "
                    f"Received: cluster[{kind!r}] address={address!r}"
                )
                raise ValueError(msg)
            key = f"{host.lower()}:{int(port)}"
            if key in seen:
                msg = (
                    f"TF_CONFIG lists the address {plain!r} twice, as {seen[key]} and "
                    f"{where}: every task needs a host:port of its own (two tasks cannot "
                    f"listen on one port). Received: cluster={cluster!r}"
                )
                raise ValueError(msg)
            seen[key] = where
            checked[kind].append(plain)
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        msg = (
            "TF_CONFIG needs a 'task' saying which cluster member this process is, such "
            f'as "task": {{"type": "worker", "index": 0}}, different on every worker. '
            f"Received: task={task!r}"
        )
        raise ValueError(msg)
    task_type, task_id = task["type"], task["index"]
    if task_type not in cluster:
        msg = (
            f"TF_CONFIG task type {task_type!r} is not in the cluster, which has "
            f"{sorted(cluster)}. Received: task={task!r}"
        )
        raise ValueError(msg)
    count = len(cluster[task_type])
    if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 <= task_id < count:
        msg = (
            f"TF_CONFIG task index must be an integer from 0 to {count - 1}: the cluster "
            f"has {count} {task_type!r} address(es). Received: task={task!r}"
        )
        raise ValueError(msg)
    return checked, task_type, task_id


def _plain_address(address: str, where: str) -> str:
    """``address`` without a ``grpc://`` prefix (TensorFlow's cluster wants host:port)."""
    scheme, separator, rest = address.partition("://")
    if not separator:
        return address
    if scheme.lower() == "grpc":
        return rest
    msg = (
        f"TF_CONFIG addresses are 'host:port' (a 'grpc://' prefix is accepted and "
        f"dropped); the scheme {scheme!r}:// is not. Remove it. Received: {where}="
        f"{address!r}"
    )
    raise ValueError(msg)


def _check_port_free(address: str, task_type: str, task_id: int) -> None:
    """Raise ValueError if this task's port is taken on this machine.

    TensorFlow's gRPC server listens on the port on every address of the machine
    (0.0.0.0 and ::), whatever host TF_CONFIG names (measured with TF 2.21: a listener
    on 127.0.0.1 or on the machine's own address makes it fail with "Could not start
    gRPC server"), so the port is bound the same way here, then released.
    """
    import errno
    import socket

    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    probes: list[tuple[socket.AddressFamily, str]] = [(socket.AF_INET, "0.0.0.0")]
    if socket.has_ipv6:
        probes.append((socket.AF_INET6, "::"))
    try:  # the address given, when it is one of this machine's: a more precise message
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        given = {str(info[4][0]) for info in infos}
    except OSError:
        given = set()
    probes += [(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip) for ip in sorted(given)]
    for family, ip in reversed(probes):
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this kernel
            continue
        with probe:
            # As gRPC does; a port left in TIME_WAIT by a finished run is free to reuse.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind((ip, int(port)))
            except OSError as exc:
                if exc.errno == errno.EACCES:
                    msg = (
                        f"This worker ({task_type} {task_id}) must listen on port {port} "
                        f"({address} in TF_CONFIG), but this process may not bind it "
                        f"({exc.strerror}; ports below 1024 need privileges): choose a "
                        f"port from 1024 up in TF_CONFIG. Received: address={address!r}"
                    )
                    raise ValueError(msg) from exc
                if exc.errno != errno.EADDRINUSE:
                    continue  # not an address of this machine, or no IPv6 configured
                on = "every address of this machine" if ip in ("0.0.0.0", "::") else ip
                msg = (
                    f"This worker ({task_type} {task_id}) must listen on port {port} "
                    f"({address} in TF_CONFIG), but that port is in use on this machine "
                    f"(binding {on} failed: {exc.strerror}; TensorFlow listens on the "
                    "port on every address of the machine): stop the process holding it "
                    f"or choose another port in TF_CONFIG. Received: address={address!r}"
                )
                raise ValueError(msg) from exc
