"""The device-list engine of the data-parallel core: in-graph replication.

A model here runs the template once per device on that device's rows of the batch
(``tf.device`` scopes inside ``call``) and concatenates the results on a merge device,
in device order. The template's own variables are used by every replica, so the
template holds the trained weights at every moment. Two forms:

* :class:`DataParallel`, a subclassed model, for any built template;
* :class:`ParallelFunctional`, a functional model on the template's input tensors
  (:class:`BatchSlice` layers, the template, :class:`BatchConcat` layers), built by
  :func:`parallel_functional`; it is what ``kutils.multi_gpu_model`` returns.

Both train with :func:`colocated_train_step`, which builds each replica's gradients on
its device. The public path of these names is ``kutils.parallel``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from kutils import _keras_compat_training
from kutils._devices import CPU, resolve_devices

# The module saved models record for these classes: the public one, so that a file names
# kutils.parallel whichever private module defines the class.
_PUBLIC_MODULE = "kutils.parallel"


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

    __module__ = _PUBLIC_MODULE
    # XLA would discard the tf.device scopes; "auto" jit must resolve to False.
    supports_jit = False

    def __init__(
        self,
        template: keras.Model,
        devices: Sequence[str],
        *,
        merge_device: str = CPU,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.template = template
        self.devices = list(devices)
        self.merge_device = merge_device
        # Only BatchNormalization misbehaves on an empty sub-batch (its moving averages
        # become NaN); the guard costs a conditional per device, so only it pays.
        self._guard_empty = _keras_compat_training.contains_layer_type(
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
        devices = resolve_devices(config["devices"])
        merge_device = resolve_devices([config["merge_device"]])[0]
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
    metrics, through the accessors of ``kutils/_keras_compat_training.py``. Run eagerly
    (``run_eagerly=True``), the tape is used instead.
    """
    _keras_compat_training.check_train_step_internals(model)
    unscale = _keras_compat_training.unscale_loss_for_distribution_function()
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    tape = tf.GradientTape() if tf.executing_eagerly() else None
    with tape if tape is not None else contextlib.nullcontext():
        training = _keras_compat_training.call_has_training_arg(model)
        y_pred = model(x, training=True) if training else model(x)
        loss = _keras_compat_training.compute_loss(model, x, y, y_pred, sample_weight)
        _keras_compat_training.loss_tracker(model).update_state(
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

    __module__ = _PUBLIC_MODULE

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

    __module__ = _PUBLIC_MODULE

    def __init__(self, device: str = CPU, **kwargs: Any) -> None:
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

    __module__ = _PUBLIC_MODULE
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
        self.devices = resolve_devices([group[0].device for group in self._slices])
        self.merge_device = resolve_devices([self._merges[0].device])[0]
        self._guard_empty = _keras_compat_training.contains_layer_type(
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
        # As a functional model converts its inputs: to each Input's dtype, casting a
        # tensor of another dtype (uint8 images, int64 token ids, float64 arrays).
        flat = [
            keras.ops.convert_to_tensor(x, dtype=tensor.dtype, sparse=tensor.sparse)
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
    model: keras.Model, devices: Sequence[str], *, merge_device: str = CPU
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
