"""The Keras and TensorFlow internals of training: models, optimizers, distribution.

The second half of kutils' accessors to Keras internals (``kutils/_keras_compat.py``
holds the version check, the data-adapter routing point, identifier look-ups, model
graphs, legacy preprocessing and HDF5 writing). Here: what the data-parallel core,
``add_loss``, ``compile``, the Keras 2 optimizer state and the batch methods read of a
model, an optimizer or a tf.distribute object. The same rules: each accessor checks what
it reads and raises ``KerasInternalsChanged`` naming the versions when it is missing;
no kutils behaviour, no kutils module imported but ``_keras_compat``; docs/internals.md
lists every accessor and its canary in tests/test_keras_internals.py.

Nothing here imports Keras or TensorFlow at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kutils._keras_compat import _missing, _private_attribute, check_keras_version, keras_version

# ---------------------------------------------------------------------------------------
# Model internals for multi_gpu_model and data_parallel
# ---------------------------------------------------------------------------------------


_PARALLEL_FEATURE = "data_parallel and multi_gpu_model"


def variable_storage(variable: Any) -> Any:
    """``Variable._value``: the ``tf.Variable`` holding a Keras variable's value.

    None when the storage is not created yet. Raises KerasInternalsChanged when Keras
    no longer keeps it there (or lacks ``_initialize``, which remakes it).
    """
    check_keras_version(_PARALLEL_FEATURE)
    if not (hasattr(variable, "_value") and callable(getattr(variable, "_initialize", None))):
        raise _missing("Variable._value/_initialize", "move variables to another device")
    return variable._value


def replace_variable_storage(variable: Any, value: Any) -> None:
    """Make new storage for ``variable`` from ``value`` (``Variable._initialize``).

    The storage is made under the caller's device scope; the Keras variable object stays
    the same, so everything that refers to it still does.
    """
    check_keras_version(_PARALLEL_FEATURE)
    variable._value = None
    variable._initialize(value)


def contains_layer_type(model: Any, layer_type: type) -> bool:
    """Whether ``model`` or any layer nested in it, at any depth, is a ``layer_type``.

    ``Layer._flatten_layers`` is the one walk that also reaches layers held as plain
    attributes of custom layers (``model.layers`` lists only the top level).
    """
    check_keras_version(_PARALLEL_FEATURE)
    flatten = getattr(model, "_flatten_layers", None)
    if not callable(flatten):
        raise _missing("Layer._flatten_layers", "inspect nested layers")
    return any(
        isinstance(layer, layer_type) for layer in flatten(include_self=True, recursive=True)
    )


def add_call_loss(model: Any, value: Any) -> None:
    """Record ``value`` as a loss of ``model`` from inside its ``call``.

    ``keras.layers.Layer.add_loss``, the base implementation: ``Functional.add_loss``
    overrides it to raise ``NotImplementedError``. Keras clears the model's losses when
    a call starts and reads them in ``compute_loss`` (``Model.losses``).
    """
    import keras

    own = getattr(keras.layers.Layer, "add_loss", None)
    if not callable(own) or not hasattr(model, "_losses"):
        raise _missing("Layer.add_loss/Layer._losses", "add a loss to a functional model")
    own(model, value)


_TRAIN_STEP_ATTRIBUTES = ("_compute_loss", "_loss_tracker", "_call_has_training_arg")


def check_train_step_internals(model: Any) -> None:
    """Raise KerasInternalsChanged unless ``model`` has what a re-made train step needs."""
    check_keras_version(_PARALLEL_FEATURE)
    for name in _TRAIN_STEP_ATTRIBUTES:
        if not hasattr(model, name):
            raise _missing(f"keras.Model.{name}", "run its data-parallel train step")
    unscale_loss_for_distribution_function()


def call_has_training_arg(model: Any) -> bool:
    """``Model._call_has_training_arg``: whether ``call`` takes ``training``."""
    check_keras_version(_PARALLEL_FEATURE)
    return bool(model._call_has_training_arg)


def compute_loss(model: Any, x: Any, y: Any, y_pred: Any, sample_weight: Any) -> Any:
    """``Model._compute_loss(..., training=True)``: the compiled loss plus layer losses."""
    check_keras_version(_PARALLEL_FEATURE)
    return model._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)


def loss_tracker(model: Any) -> Any:
    """``Model._loss_tracker``, the Mean metric behind the ``loss`` log."""
    check_keras_version(_PARALLEL_FEATURE)
    return model._loss_tracker


def unscale_loss_for_distribution_function() -> Callable[[Any], Any]:
    """``keras.src.losses.loss.unscale_loss_for_distribution`` (Keras 3.8+).

    A loss computed under a strategy is divided by the replica count (so that summing
    gradients across replicas averages them); this undoes it for the loss log.
    """
    check_keras_version(_PARALLEL_FEATURE)
    return _private_attribute(
        "losses.loss", "unscale_loss_for_distribution", "log the loss", call=True
    )


def model_distribute_strategy(model: Any) -> Any:
    """``Model._distribute_strategy``: the strategy a model was built under, or None."""
    return getattr(model, "_distribute_strategy", None)


def epoch_iterator_element_spec(iterator: Any) -> Any:
    """The element spec of a ``TFEpochIterator``'s ``_distributed_dataset``, or None."""
    return getattr(getattr(iterator, "_distributed_dataset", None), "element_spec", None)


def per_replica_value_specs(spec: Any) -> Any:
    """TensorFlow's ``PerReplicaSpec._value_specs`` (one spec per replica), or None."""
    return getattr(spec, "_value_specs", None)


def symbolic_build(model: Any, data_batch: Any) -> None:
    """``Model._symbolic_build(data_batch=...)``: build a model from a batch's shapes."""
    if not hasattr(model, "_symbolic_build"):
        raise _missing("keras.Model._symbolic_build", "build the model under a strategy")
    model._symbolic_build(data_batch=data_batch)


# ---------------------------------------------------------------------------------------
# TensorFlow internals for data_parallel across workers (_strategy_parallel.py,
# _per_worker_input.py)
# ---------------------------------------------------------------------------------------


def report_error_to_cluster(error: BaseException) -> bool:
    """Report ``error`` to every task of this process's collective cluster.

    TensorFlow's own PreemptionCheckpointHandler reports errors to the coordination
    service this way (``tensorflow.python.eager.context``), which aborts the collectives
    of every task at once. Best effort: returns False, and reports nothing, when
    TensorFlow lacks the call or this process is not part of a cluster. A TensorFlow
    internal: no Keras version applies (its canary runs on TensorFlow 2.16 and 2.21).
    """
    import tensorflow as tf
    from tensorflow.python.eager import context

    report = getattr(context.context(), "report_error_to_cluster", None)
    if report is None:
        return False
    code = error.error_code if isinstance(error, tf.errors.OpError) else tf.errors.ABORTED
    message = error.message if isinstance(error, tf.errors.OpError) else str(error)
    try:
        report(code, f"{type(error).__name__}: {message}")
    except Exception:  # no cluster, or it is already shutting down
        return False
    return True


def distributed_iterator_device_parts(iterator: Any) -> list[tuple[Any, str | None]] | None:
    """The per-device iterators of the local part of a tf.distribute iterator.

    ``(iterator, device)`` for each device buffer of each local worker iterator
    (``DistributedIterator._iterators``, ``_SingleWorkerOwnedDatasetIterator._iterator``,
    ``OwnedMultiDeviceIterator._devices`` and ``_device_iterators``, TF 2.16 to 2.21), or
    ``(iterator, None)`` for a worker iterator without per-device buffers. None when the
    iterator does not have that structure (the caller then warns). A TensorFlow internal:
    no Keras version applies.
    """
    workers = getattr(iterator, "_iterators", None)
    if workers is None:
        return None
    parts: list[tuple[Any, str | None]] = []
    for worker in workers:
        inner = getattr(worker, "_iterator", None)
        if inner is None:
            return None
        devices = getattr(inner, "_devices", None)
        device_iterators = getattr(inner, "_device_iterators", None)
        if devices is None or device_iterators is None:
            parts.append((inner, None))
        else:
            parts.extend(zip(device_iterators, devices, strict=True))
    return parts


# ---------------------------------------------------------------------------------------
# Optimizer slots, for restoring a Keras 2 file's optimizer state (saved_models.py)
# ---------------------------------------------------------------------------------------

# Keras 3's optimizers keep their per-weight slots in attributes of their own, each a
# list with one variable per trainable variable in the order given to ``build``
# (``SGD.momentums``, ``Adam._momentums``/``_velocities``/``_velocity_hats``,
# ``RMSprop._velocities``, ``Adagrad._accumulators``, ``Adadelta._accumulated_grads``/
# ``_accumulated_delta_vars``, ``Adamax._m``/``_u``, ``Nadam._momentums``/``_velocities``
# and its scalar ``_u_product``), Keras 3.8 to 3.15.
_OPTIMIZER_SLOT_ATTRIBUTES = frozenset(
    {
        "momentums",
        "_momentums",
        "_velocities",
        "_velocity_hats",
        "_average_gradients",
        "_accumulators",
        "_accumulated_grads",
        "_accumulated_delta_vars",
        "_m",
        "_u",
        "_u_product",
    }
)


def optimizer_slot_variables(optimizer: Any, attribute: str) -> Any:
    """A built Keras 3 optimizer's slot list (or scalar) held in ``attribute``.

    Returns an empty list for a slot the optimizer does not keep in its configuration
    (``_velocity_hats`` without amsgrad, ``momentums`` without momentum).

    Raises:
        KerasInternalsChanged: the optimizer class no longer has the attribute.
    """
    check_keras_version("restoring a Keras 2 optimizer state")
    if attribute not in _OPTIMIZER_SLOT_ATTRIBUTES:
        raise ValueError(f"Not an optimizer slot attribute kutils knows: {attribute!r}")
    if not hasattr(optimizer, attribute):
        if attribute in ("_velocity_hats", "momentums"):
            return []
        raise _missing(f"{type(optimizer).__name__}.{attribute}", "restore its state")
    found = getattr(optimizer, attribute)
    return [] if found is None else found


def optimizer_sharing_step(optimizer: Any) -> Any:
    """A new optimizer of ``optimizer``'s configuration that shares its step count and
    learning rate variable (``_iterations``, ``_learning_rate``), with slots of its own.

    Keras 2's optimizer made new slots at each ``compile`` but kept one ``iterations``
    and one ``lr`` (``kutils.compile``); a Keras 3 optimizer serves one list of
    variables only.

    Raises:
        KerasInternalsChanged: the optimizer no longer keeps these attributes.
    """
    check_keras_version("sharing an optimizer between compiled models")
    for name in ("_iterations", "_learning_rate"):
        if not hasattr(optimizer, name):
            raise _missing(f"{type(optimizer).__name__}.{name}", "share it between models")
    copy = type(optimizer).from_config(optimizer.get_config())
    # object.__setattr__: the optimizer's tracker would list the shared variables as
    # the copy's own a second time.
    object.__setattr__(copy, "_iterations", optimizer._iterations)
    if not callable(optimizer._learning_rate):
        object.__setattr__(copy, "_learning_rate", optimizer._learning_rate)
    return copy


# ---------------------------------------------------------------------------------------
# What Keras's own train_on_batch and test_on_batch return (_batch_steps.py)
# ---------------------------------------------------------------------------------------

# Keras resets a model's metrics when train_on_batch or test_on_batch starts only since
# keras-team/keras#22617 (April 2026): Keras 3.15 does, 3.8 does not (it returns running
# means). The releases between were not checked, so they count as not resetting.
_RESETS_METRICS_PER_BATCH_SINCE = (3, 15)


def batch_methods_reset_metrics() -> bool:
    """Whether Keras's ``train_on_batch`` and ``test_on_batch`` reset the model's
    metrics first, so that they return the batch's own loss and metrics."""
    return keras_version() >= _RESETS_METRICS_PER_BATCH_SINCE
