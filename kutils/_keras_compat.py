"""Every place where kutils reaches into Keras internals, behind small version-checked functions.

Keras moves its private modules between releases. Keeping each private access here, with
a check of the Keras version and of the attributes relied on, means an upgrade of Keras
breaks one file, with a message that says what changed, instead of failing somewhere
inside a training run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import random
import threading
import time
from collections.abc import Callable
from typing import Any

# The Keras releases whose internals the functions below were written against and tested on.
SUPPORTED_KERAS = ((3, 0), (3, 99))


class KerasInternalsChanged(ImportError):
    """Raised when the installed Keras does not have the internals kutils relies on."""


def keras_version() -> tuple[int, int]:
    """The installed Keras version as (major, minor); imports Keras."""
    import keras

    major, minor = (int(part) for part in keras.__version__.split(".")[:2])
    return major, minor


def check_keras_version(feature: str) -> None:
    """Raise KerasInternalsChanged when the installed Keras is outside SUPPORTED_KERAS."""
    version = keras_version()
    low, high = SUPPORTED_KERAS
    if not low <= version <= high:
        msg = (
            f"kutils {feature} supports Keras {low[0]}.{low[1]} to {high[0]}.{high[1]}, "
            f"but Keras {version[0]}.{version[1]} is installed. Install a supported Keras "
            "(pip install 'keras>=3,<4') or a kutils release that supports yours."
        )
        raise KerasInternalsChanged(msg)


def _once_per_process(install: Callable[..., None]) -> Callable[..., None]:
    """Make ``install`` run to completion at most once per process, from any thread.

    A call that raises leaves nothing recorded, so a later call tries again. The flag is
    the wrapper's ``installed`` attribute (tests reset it).
    """
    lock = threading.Lock()

    @functools.wraps(install)
    def once(*args: Any, **kwargs: Any) -> None:
        if once.installed:  # type: ignore[attr-defined]
            return
        with lock:
            if not once.installed:  # type: ignore[attr-defined]
                install(*args, **kwargs)
                once.installed = True  # type: ignore[attr-defined]

    once.installed = False  # type: ignore[attr-defined]
    return once


# ---------------------------------------------------------------------------------------
# String identifiers that name custom objects
# ---------------------------------------------------------------------------------------

# Keras modules whose ``get(identifier)`` turns strings such as ``'relu'`` into objects.
# In Keras 2 these consulted the custom-object registry; in Keras 3 they look only at
# their own built-in table, so ``Dense(4, activation='my_activation')`` fails even inside
# a custom-object scope.
_IDENTIFIER_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)


@_once_per_process
def install_custom_object_lookups() -> None:
    """Let Keras 3 ``get(name)`` functions find custom objects by name, as Keras 2 did.

    Each ``keras.src.<module>.get`` is wrapped once per process. A string that names an
    object in the custom-object registry (or an active Keras custom-object scope) resolves
    to that object, which then goes through Keras's own ``get`` as if passed directly;
    every other identifier goes to Keras unchanged. Classes are instantiated with no
    arguments first, as Keras 2 did for regularizers, constraints, initializers, losses,
    metrics and optimizers (an activation class is passed on as it is).
    """
    check_keras_version("custom-object string look-ups")
    import keras

    for name in _IDENTIFIER_MODULES:
        module = importlib.import_module(f"keras.src.{name}")
        original = getattr(module, "get", None)
        if not callable(original):
            msg = (
                f"keras.src.{name}.get is missing in Keras {keras.__version__}; kutils "
                "cannot make string identifiers find custom objects."
            )
            raise KerasInternalsChanged(msg)
        if not getattr(original, "_kutils_wraps", False):
            wrapped = _custom_lookup(
                original,
                keras.saving.get_registered_object,
                instantiate_classes=name != "activations",
            )
            setattr(module, "get", wrapped)  # noqa: B010


def _custom_lookup(
    original: Callable[..., Any], find: Callable[[str], Any], *, instantiate_classes: bool
) -> Callable[..., Any]:
    @functools.wraps(original)
    def get(identifier: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(identifier, str):
            found = find(identifier)
            if found is not None:
                if instantiate_classes and inspect.isclass(found):
                    found = found()
                return original(found, *args, **kwargs)
        return original(identifier, *args, **kwargs)

    get._kutils_wraps = True  # type: ignore[attr-defined]
    return get


# ---------------------------------------------------------------------------------------
# Model graphs, for print_summary and model_to_dot
# ---------------------------------------------------------------------------------------

# Keras 2 read a layer's graph through ``layer._inbound_nodes`` (each node holding
# ``inbound_layers``, ``node_indices``, ``tensor_indices``, ``input_shapes`` and
# ``output_shapes``) and a model's through ``model._nodes_by_depth``. Keras 3 keeps
# ``_inbound_nodes`` and ``_nodes_by_depth`` (on the Functional model, or on the
# Functional that a built Sequential holds in ``_functional``), but a node now holds
# KerasTensors whose ``_keras_history`` says which layer call made them. The functions
# below give print_summary and model_to_dot the Keras 2 view.


class LayerCall:
    """One call of a layer in a graph (a Keras node), in Keras 2 terms.

    Attributes:
        node: the Keras node itself, for identity checks.
        inbound: ``(layer, node_index, tensor_index)`` for each input tensor, in order.
        input_shapes: the shape tuple of each input tensor (an input layer's call
            reports its own output, as Keras 2 did).
        output_shapes: the shape tuple of each output tensor.
    """

    __slots__ = ("inbound", "input_shapes", "node", "output_shapes")

    def __init__(
        self,
        node: Any,
        inbound: list[tuple[Any, int, int]],
        input_shapes: list[tuple[int | None, ...]],
        output_shapes: list[tuple[int | None, ...]],
    ) -> None:
        self.node = node
        self.inbound = inbound
        self.input_shapes = input_shapes
        self.output_shapes = output_shapes


def _check_graph_internals(layer: Any) -> None:
    if not hasattr(layer, "_inbound_nodes"):
        import keras

        msg = (
            f"Keras {keras.__version__} layers have no `_inbound_nodes`; kutils cannot "
            "read the model graph for print_summary and model_to_dot."
        )
        raise KerasInternalsChanged(msg)


def layer_calls(layer: Any) -> list[LayerCall]:
    """Every call of ``layer`` on symbolic tensors, oldest first (``layer._inbound_nodes``)."""
    check_keras_version("print_summary and model_to_dot")
    _check_graph_internals(layer)
    calls = []
    for node in layer._inbound_nodes:
        tensors = list(node.input_tensors)
        outputs = [tuple(t.shape) for t in node.output_tensors]
        inputs = [tuple(t.shape) for t in tensors] if tensors else outputs
        calls.append(LayerCall(node, node_inbound(node), inputs, outputs))
    return calls


def node_inbound(node: Any) -> list[tuple[Any, int, int]]:
    """``(layer, node_index, tensor_index)`` for each input tensor of a Keras node.

    Keras 2 kept these as ``node.inbound_layers``, ``node.node_indices`` and
    ``node.tensor_indices``; Keras 3 keeps them on each tensor's ``_keras_history``.
    """
    inbound = []
    for tensor in node.input_tensors:
        history = getattr(tensor, "_keras_history", None)
        if history is not None and history.operation is not None:
            inbound.append((history.operation, history.node_index, history.tensor_index))
    return inbound


def graph_nodes_by_depth(model: Any) -> dict[int, list[Any]] | None:
    """The model's ``_nodes_by_depth``, or None when it is not a graph network.

    A graph network is a Functional model or a Sequential model that has been built
    with a known input shape (Keras 2's ``model._is_graph_network``). Subclassed models
    and unbuilt Sequential models are not.
    """
    check_keras_version("print_summary and model_to_dot")
    import keras
    from keras.src.models.functional import Functional

    graph = model
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
    if not isinstance(graph, Functional):
        return None
    nodes_by_depth = getattr(graph, "_nodes_by_depth", None)
    if nodes_by_depth is None:
        msg = (
            f"Keras {keras.__version__} Functional models have no `_nodes_by_depth`; "
            "kutils cannot read the model graph for print_summary and model_to_dot."
        )
        raise KerasInternalsChanged(msg)
    return dict(nodes_by_depth)


def all_model_layers(model: Any) -> list[Any]:
    """Every layer of the model, a Sequential's input layer included (Keras 2.3.1 ``_layers``)."""
    import keras

    if isinstance(model, keras.Sequential):
        return list(model._layers)
    return list(model.layers)


def is_model(layer: Any) -> bool:
    """Whether ``layer`` is a Keras model (Sequential, Functional or subclassed)."""
    import keras

    return isinstance(layer, keras.Model)


def wrapped_layer(layer: Any) -> tuple[Any, str] | None:
    """The layer inside a wrapper and the name Keras 2 showed for it, or None.

    ``TimeDistributed`` keeps its inner layer in ``.layer``. Keras 3's ``Bidirectional``
    is no longer a ``Wrapper``: it keeps copies named ``forward_<name>`` and
    ``backward_<name>``; Keras 2 showed the name of the layer the user passed.
    """
    import keras

    if isinstance(layer, keras.layers.Wrapper):
        return layer.layer, layer.layer.name
    if isinstance(layer, keras.layers.Bidirectional):
        forward = layer.forward_layer
        name = forward.name
        return forward, name[len("forward_") :] if name.startswith("forward_") else name
    return None


def legacy_output_shape(layer: Any) -> str:
    """Keras 2's ``str(layer.output_shape)``, or ``'multiple'`` where that raised.

    Keras 3 layers have no ``output_shape``. Keras 2 derived it from every call of the
    layer: the one output's shape tuple, a list of tuples for several outputs, and an
    ``AttributeError`` (shown as ``multiple``) when the layer was never called on
    symbolic tensors or its calls gave different shapes.
    """
    return _legacy_shape(layer_calls(layer), "output_shapes")


def legacy_input_shape(layer: Any) -> str:
    """Keras 2's ``str(layer.input_shape)``, or ``'multiple'`` where that raised."""
    return _legacy_shape(layer_calls(layer), "input_shapes")


def _legacy_shape(calls: list[LayerCall], attribute: str) -> str:
    if not calls:
        return "multiple"
    texts = {str(getattr(call, attribute)) for call in calls}
    if len(texts) != 1:
        return "multiple"
    shapes = getattr(calls[0], attribute)
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def legacy_class_name(layer: Any) -> str:
    """The class name Keras 2 showed: ``Model`` for a plain functional model.

    ``keras.Model(inputs, outputs)`` made a ``Model`` in Keras 2 and makes a
    ``Functional`` in Keras 3; subclasses keep their own names.
    """
    from keras.src.models.functional import Functional

    if type(layer) is Functional:
        return "Model"
    return type(layer).__name__


# ---------------------------------------------------------------------------------------
# multi_gpu_model: moving a model's variables to another device
# ---------------------------------------------------------------------------------------


def relocate_variables(model: Any, device: str) -> None:
    """Move the storage of every variable of ``model`` to ``device``, keeping values.

    A Keras 3 variable on the TensorFlow backend keeps its storage, a ``tf.Variable``,
    in ``_value`` and makes it in ``_initialize(value)``; TensorFlow cannot move a
    ``tf.Variable``, so a new one is made on ``device`` from the current value. The
    Keras variable objects stay the same, so every layer, optimizer slot map and
    checkpoint that refers to them still does, and the model's compiled train, test
    and predict functions (which captured the old storage) are dropped for re-tracing.
    """
    check_keras_version("multi_gpu_model(cpu_relocation=True)")
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        msg = f"Moving variables needs the TensorFlow backend. Received: backend={keras.backend.backend()!r}"
        raise ValueError(msg)
    for variable in model.variables:
        if not (hasattr(variable, "_value") and callable(getattr(variable, "_initialize", None))):
            msg = (
                f"Keras {keras.__version__} variables have no _value/_initialize; kutils "
                "cannot move them to another device."
            )
            raise KerasInternalsChanged(msg)
        storage = variable._value
        if storage is None:  # not created yet: it will be made wherever it is first built
            continue
        with tf.init_scope(), tf.device(device):
            variable._value = None
            variable._initialize(tf.identity(storage))
    for name in ("train_function", "test_function", "predict_function"):
        if hasattr(model, name):
            setattr(model, name, None)


def contains_layer_type(model: Any, layer_type: type) -> bool:
    """Whether ``model`` or any layer nested in it, at any depth, is a ``layer_type``.

    ``Layer._flatten_layers`` is the one walk that also reaches layers held as plain
    attributes of custom layers (``model.layers`` lists only the top level).
    """
    check_keras_version("multi_gpu_model")
    flatten = getattr(model, "_flatten_layers", None)
    if not callable(flatten):
        msg = "keras.Layer._flatten_layers is missing; kutils cannot inspect nested layers."
        raise KerasInternalsChanged(msg)
    return any(
        isinstance(layer, layer_type) for layer in flatten(include_self=True, recursive=True)
    )


def colocated_train_step(model: Any, data: Any) -> Any:
    """Keras 3's TensorFlow ``train_step``, with gradients built next to their forward ops.

    ``tf.GradientTape`` creates the backward ops outside any device scope, so in a model
    whose ``call`` places replicas with ``tf.device`` the whole backward pass lands on
    one device. ``tf.gradients`` (graph mode, as inside Keras's traced train function)
    colocates each gradient op with its forward op, as Keras 2 did with
    ``colocate_gradients_with_ops=True``, so every device differentiates its own
    replica. Everything else is ``keras.src.backend.tensorflow.trainer.train_step`` of
    Keras 3.15: the loss, the loss tracker, loss scaling, the optimizer and the metrics.
    Run eagerly (``run_eagerly=True``), the tape is used instead.
    """
    import keras
    import tensorflow as tf

    for name in ("_compute_loss", "_loss_tracker", "_call_has_training_arg"):
        if not hasattr(model, name):
            msg = (
                f"keras.Model.{name} is missing in Keras {keras.__version__}; kutils cannot "
                "run its data-parallel train step."
            )
            raise KerasInternalsChanged(msg)
    from keras.src.losses import loss as loss_module

    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    tape = tf.GradientTape() if tf.executing_eagerly() else None
    with tape if tape is not None else contextlib.nullcontext():
        y_pred = model(x, training=True) if model._call_has_training_arg else model(x)
        loss = model._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
        )
        model._loss_tracker.update_state(
            loss_module.unscale_loss_for_distribution(loss),
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
        import warnings

        warnings.warn("The model does not have any trainable weights.", stacklevel=2)
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


# ---------------------------------------------------------------------------------------
# HDF5Matrix data streamed by fit / evaluate / predict
# ---------------------------------------------------------------------------------------

# Keras 3 picks the data adapter of every fit, evaluate and predict call in one function,
# ``keras.src.trainers.data_adapters.get_data_adapter``, called (as a module attribute) by
# ``keras.src.trainers.epoch_iterator.EpochIterator``. It turns any array-like into one
# in-memory numpy array. kutils wraps that function: when the data holds HDF5Matrix
# objects, it returns a PyDatasetAdapter over a kutils.HDF5Dataset instead, which reads
# each batch from disk; every other call goes to Keras unchanged.
_GET_DATA_ADAPTER_PARAMS = (
    "x",
    "y",
    "sample_weight",
    "batch_size",
    "steps_per_epoch",
    "shuffle",
    "class_weight",
)


@_once_per_process
def install_hdf5_streaming() -> None:
    """Let ``model.fit(x_h5, y_h5, batch_size=..., shuffle=...)`` stream from disk.

    Wraps ``keras.src.trainers.data_adapters.get_data_adapter`` once per process. Raises
    KerasInternalsChanged (touching nothing) when Keras is outside SUPPORTED_KERAS or the
    function, its parameters or ``PyDatasetAdapter`` are not what kutils was written for.
    """
    check_keras_version("streamed HDF5Matrix training")
    import keras

    adapters = importlib.import_module("keras.src.trainers.data_adapters")
    iterator_module = importlib.import_module("keras.src.trainers.epoch_iterator")
    original = getattr(adapters, "get_data_adapter", None)
    adapter_class = getattr(adapters, "PyDatasetAdapter", None)
    problem = None
    if not callable(original) or adapter_class is None:
        problem = "get_data_adapter or PyDatasetAdapter is missing"
    elif getattr(iterator_module, "data_adapters", None) is not adapters:
        problem = "EpochIterator no longer looks the data adapter up in data_adapters"
    elif not getattr(original, "_kutils_wraps", False):
        names = tuple(inspect.signature(original).parameters)
        if names != _GET_DATA_ADAPTER_PARAMS:
            problem = f"get_data_adapter takes {names}, not {_GET_DATA_ADAPTER_PARAMS}"
    if problem is not None:
        msg = (
            f"keras.src.trainers.data_adapters changed in Keras {keras.__version__} "
            f"({problem}); kutils cannot make fit stream HDF5Matrix data."
        )
        raise KerasInternalsChanged(msg)
    if callable(original) and not getattr(original, "_kutils_wraps", False):
        setattr(adapters, "get_data_adapter", _streaming_adapter(original, adapter_class))  # noqa: B010


def _streaming_adapter(original: Callable[..., Any], adapter_class: Any) -> Callable[..., Any]:
    from kutils.hdf5_dataset import legacy_fit_dataset

    @functools.wraps(original)
    def get_data_adapter(
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: Any = None,
        steps_per_epoch: Any = None,
        shuffle: Any = False,
        class_weight: Any = None,
    ) -> Any:
        dataset = legacy_fit_dataset(x, y, sample_weight, batch_size, shuffle)
        if dataset is None:
            return original(
                x,
                y=y,
                sample_weight=sample_weight,
                batch_size=batch_size,
                steps_per_epoch=steps_per_epoch,
                shuffle=shuffle,
                class_weight=class_weight,
            )
        # The dataset orders its own batches, so Keras must not shuffle them again.
        return adapter_class(dataset, class_weight=class_weight, shuffle=False)

    get_data_adapter._kutils_wraps = True  # type: ignore[attr-defined]
    return get_data_adapter


# ---------------------------------------------------------------------------------------
# Sequence: Keras 2 epoch semantics, parallel loading and errors in fit/evaluate/predict
# ---------------------------------------------------------------------------------------

# Keras 3.15 feeds a PyDataset to fit/evaluate/predict through PyDatasetAdapter, wrapped by
# EpochIterator. Three things there differ from Keras 2 and cannot be changed from the
# PyDataset side: EpochIterator.reset() calls on_epoch_end() before the first epoch (and
# before every evaluate), the number of batches is read once per fit, and with TensorFlow
# an exception in __getitem__ reaches the caller as tf.errors.UnknownError. kutils gives
# kutils.Sequence objects an adapter of their own (a PyDatasetAdapter subclass) and wraps
# two EpochIterator methods; every other dataset goes through Keras unchanged.


@_once_per_process
def install_sequence_support(
    sequence_class: Any, check_options: Callable[[Any, Any, Any], None]
) -> None:
    """Route ``sequence_class`` instances through kutils's adapter in Keras 3's trainers.

    Installed once per process: ``keras.src.trainers.data_adapters.get_data_adapter``
    gives instances of ``sequence_class`` a ``LegacySequenceAdapter``, and
    ``EpochIterator.__iter__`` / ``catch_stop_iteration`` re-read the length each epoch,
    re-raise the original exception of ``__getitem__`` and stop workers on the way out.
    """
    check_keras_version("Sequence support")
    import keras

    data_adapters = importlib.import_module("keras.src.trainers.data_adapters")
    epoch_iterator = importlib.import_module("keras.src.trainers.epoch_iterator")
    py_dataset_adapter = importlib.import_module(
        "keras.src.trainers.data_adapters.py_dataset_adapter"
    )
    adapter_utils = importlib.import_module("keras.src.trainers.data_adapters.data_adapter_utils")
    needed = [
        (data_adapters, "get_data_adapter"),
        (data_adapters, "raise_unsupported_arg"),
        (epoch_iterator, "EpochIterator"),
        (py_dataset_adapter, "PyDatasetAdapter"),
        (adapter_utils, "get_tensor_spec"),
        (adapter_utils, "NUM_BATCHES_FOR_TENSOR_SPEC"),
    ]
    iterator_class = getattr(epoch_iterator, "EpochIterator", None)
    base_adapter = getattr(py_dataset_adapter, "PyDatasetAdapter", None)
    missing = [f"{module.__name__}.{name}" for module, name in needed if not hasattr(module, name)]
    missing += [
        f"EpochIterator.{name}"
        for name in ("__iter__", "catch_stop_iteration")
        if iterator_class is not None and not hasattr(iterator_class, name)
    ]
    missing += [
        f"PyDatasetAdapter.{name}"
        for name in ("_standardize_batch", "on_epoch_begin", "on_epoch_end", "get_tf_dataset")
        if base_adapter is not None and not hasattr(base_adapter, name)
    ]
    if missing:
        msg = (
            f"Keras {keras.__version__} lacks {', '.join(missing)}; kutils.Sequence "
            "cannot drive fit/evaluate/predict with this Keras."
        )
        raise KerasInternalsChanged(msg)

    adapter_class = _make_sequence_adapter(base_adapter, adapter_utils, check_options)
    original_get = data_adapters.get_data_adapter
    raise_unsupported = data_adapters.raise_unsupported_arg

    @functools.wraps(original_get)
    def get_data_adapter(
        x: Any, y: Any = None, sample_weight: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(x, sequence_class) and x.num_batches is not None:
            if y is not None:
                raise_unsupported("y", "the targets", "PyDataset")
            if sample_weight is not None:
                raise_unsupported("sample_weights", "the sample weights", "PyDataset")
            bound = inspect.signature(original_get).bind(x, y, sample_weight, *args, **kwargs)
            bound.apply_defaults()
            return adapter_class(
                x,
                class_weight=bound.arguments.get("class_weight"),
                shuffle=bound.arguments.get("shuffle", False),
            )
        return original_get(x, y, sample_weight, *args, **kwargs)

    setattr(data_adapters, "get_data_adapter", get_data_adapter)  # noqa: B010
    _wrap_epoch_iterator(iterator_class, adapter_class)


def _wrap_epoch_iterator(iterator_class: Any, adapter_class: Any) -> None:
    original_iter = iterator_class.__iter__
    original_catch = iterator_class.catch_stop_iteration

    @functools.wraps(original_iter)
    def __iter__(self: Any) -> Any:
        # Keras reads the number of batches once, in reset(); Keras 2 read it every epoch.
        rereads = getattr(self.data_adapter, "_kutils_rereads_length", False)
        if rereads and not self.steps_per_epoch:
            self._num_batches = self.data_adapter.num_batches
        return original_iter(self)

    @functools.wraps(original_catch)
    @contextlib.contextmanager
    def catch_stop_iteration(self: Any) -> Any:
        adapter = self.data_adapter
        if not isinstance(adapter, adapter_class):
            with original_catch(self):
                yield
            return
        failed = True
        try:
            with original_catch(self):
                yield
            failed = False
        except Exception:
            original = adapter.pop_error()
            if original is None:
                raise
            # The error TensorFlow made of it adds nothing: show the original only.
            original.__suppress_context__ = True
            raise original  # noqa: B904
        finally:
            adapter.close(final=failed)

    iterator_class.__iter__ = __iter__
    iterator_class.catch_stop_iteration = catch_stop_iteration


def _make_sequence_adapter(
    base: Any, adapter_utils: Any, check_options: Callable[[Any, Any, Any], None]
) -> Any:
    from kutils._loader import OrderedLoader

    class LegacySequenceAdapter(base):
        """PyDatasetAdapter with Keras 2 epoch semantics and kutils's own workers."""

        _kutils_rereads_length = True

        def __init__(self, x: Any, class_weight: Any = None, shuffle: bool = False) -> None:
            # PyDatasetAdapter.__init__ would build Keras's own enqueuer; kutils loads
            # batches with kutils._loader instead, so set the same fields here.
            self.py_dataset = x
            self.class_weight = class_weight
            self.shuffle = shuffle
            self.enqueuer = None
            self._output_signature = None
            self._within_epoch = False
            workers, multiprocessing, queue_size = (
                x.workers,
                x.use_multiprocessing,
                x.max_queue_size,
            )
            check_options(workers, multiprocessing, queue_size)
            self._parallel = workers > 1 or (workers > 0 and bool(multiprocessing))
            self._options: dict[str, Any] = {
                "workers": int(workers),
                "use_multiprocessing": bool(multiprocessing),
                "max_queue_size": int(queue_size),
            }
            self._lock = threading.Lock()
            self._loaders: set[Any] = set()
            self._error: BaseException | None = None
            self._finished = False

        def _get_iterator(self) -> Any:
            indices = list(range(self.py_dataset.num_batches))
            if self.shuffle:
                random.shuffle(indices)
            position = 0
            try:
                # A loader stopped at an epoch end is replaced when Keras resumes this
                # iterator (with steps_per_epoch, one iterator spans several epochs).
                while position < len(indices):
                    loader = self._open_loader(indices[position:])
                    batches = (
                        iter(loader)
                        if loader is not None
                        else (self.py_dataset[i] for i in indices[position:])
                    )
                    try:
                        for batch in batches:
                            position += 1
                            yield self._standardize_batch(batch)
                    finally:
                        if loader is not None:
                            self._close_loader(loader)
                    if loader is None or self._finished:
                        return
            except Exception as error:
                self._error = error
                raise

        def _open_loader(self, indices: list[int]) -> Any:
            if not self._parallel:
                return None
            with self._lock:
                if self._finished:
                    msg = "This Sequence's workers were stopped after fit raised; start fit again."
                    raise RuntimeError(msg)
                loader = OrderedLoader(self.py_dataset, indices, **self._options)
                self._loaders.add(loader)
                return loader

        def _close_loader(self, loader: Any) -> None:
            with self._lock:
                self._loaders.discard(loader)
            loader.close()

        def close(self, final: bool = False) -> None:
            """Stop every worker of this adapter; ``final`` forbids starting new ones."""
            with self._lock:
                if final:
                    self._finished = True
                loaders, self._loaders = list(self._loaders), set()
            for loader in loaders:
                loader.close()

        def pop_error(self) -> BaseException | None:
            error, self._error = self._error, None
            return error

        def _standardize_batch(self, batch: Any) -> Any:
            # tf.data wants tuples where Keras 2 batches often hold lists ([x1, x2], y).
            return super()._standardize_batch(lists_to_tuples(batch))

        def get_tf_dataset(self) -> Any:
            import tensorflow as tf

            num_batches = self.py_dataset.num_batches
            if self._output_signature is None:
                count = min(adapter_utils.NUM_BATCHES_FOR_TENSOR_SPEC, num_batches)
                batches = [self._standardize_batch(self.py_dataset[i]) for i in range(count)]
                if not batches:
                    msg = f"The Sequence has length 0. Received: len(sequence)={num_batches}"
                    raise ValueError(msg)
                self._output_signature = adapter_utils.get_tensor_spec(batches)
            dataset = tf.data.Dataset.from_generator(
                self._get_iterator, output_signature=self._output_signature
            )
            if self._parallel:
                # The workers prefetch; tf.data prefetching on top would pull batches
                # of the next epoch before on_epoch_end has run.
                options = tf.data.Options()
                options.autotune.enabled = False
                options.threading.private_threadpool_size = 1
                return dataset.with_options(options)
            return dataset.prefetch(tf.data.AUTOTUNE)

        def on_epoch_end(self) -> None:
            # Keras 3 also calls this from EpochIterator.reset(), before any epoch has
            # begun; Keras 2 called on_epoch_end only after an epoch, so skip that call.
            self.close()
            if self._within_epoch:
                self.py_dataset.on_epoch_end()
            self._within_epoch = False

    return LegacySequenceAdapter


def lists_to_tuples(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return tuple(lists_to_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: lists_to_tuples(item) for key, item in value.items()}
    return value


# ---------------------------------------------------------------------------------------
# data_parallel under MultiWorkerMirroredStrategy: per-worker input shards
# ---------------------------------------------------------------------------------------

# kutils.parallel reads a Sequence, HDF5 or numpy input across workers as per-worker shards
# (kutils/_shards.py), a tf.distribute dataset made by distribute_datasets_from_function.
# Passed to fit as such, Keras would take its cardinality (elements per worker, that is
# steps x local replicas) for the number of steps and would have no epoch hooks. So fit
# gets the ShardedInput object itself, and get_data_adapter gives it an adapter that
# reports the steps of each epoch and moves the epochs on.


@_once_per_process
def install_sharded_input_support(input_class: Any) -> None:
    """Give instances of ``input_class`` (kutils._shards.ShardedInput) their own adapter.

    The adapter is a ``TFDatasetAdapter`` over ``x.dataset`` whose ``num_batches`` is
    ``x.num_batches()``, read again each epoch, and whose epoch hooks call
    ``x.begin_epoch()`` and (after an epoch that began) ``x.end_epoch()``.
    """
    check_keras_version("data_parallel input shards across workers")
    import keras

    data_adapters = importlib.import_module("keras.src.trainers.data_adapters")
    module = importlib.import_module("keras.src.trainers.data_adapters.tf_dataset_adapter")
    base: Any = getattr(module, "TFDatasetAdapter", None)
    original_get = getattr(data_adapters, "get_data_adapter", None)
    if base is None or not callable(original_get):
        msg = (
            f"Keras {keras.__version__} lacks TFDatasetAdapter or get_data_adapter; kutils "
            "cannot read inputs in shards across workers with this Keras."
        )
        raise KerasInternalsChanged(msg)

    class ShardedInputAdapter(base):
        """The adapter of a kutils ShardedInput: its steps per epoch and epoch hooks."""

        _kutils_rereads_length = True

        def __init__(self, shards: Any) -> None:
            super().__init__(shards.dataset)
            self._shards = shards
            self._within_epoch = False

        @property
        def num_batches(self) -> int:
            return int(self._shards.num_batches())

        def on_epoch_begin(self) -> None:
            self._within_epoch = True
            self._shards.begin_epoch()

        def on_epoch_end(self) -> None:
            # Keras also calls this before the first epoch (EpochIterator.reset).
            if self._within_epoch:
                self._shards.end_epoch()
            self._within_epoch = False

    @functools.wraps(original_get)
    def get_data_adapter(x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, input_class):
            return ShardedInputAdapter(x)
        return original_get(x, *args, **kwargs)

    setattr(data_adapters, "get_data_adapter", get_data_adapter)  # noqa: B010


# ---------------------------------------------------------------------------------------
# data_parallel under MultiWorkerMirroredStrategy: the symbolic build before fit
# ---------------------------------------------------------------------------------------

# Keras 3.15's TensorFlow trainer builds the model before fit/evaluate from the first
# distributed batch, which it reduces with ``strategy.reduce("MEAN", batch, axis=None)``
# (``TensorFlowTrainer._maybe_symbolic_build``). MultiWorkerMirroredStrategy's reduce
# cannot take a PerReplica batch, so fit fails before its first step. Only the shapes and
# dtypes of the batch are used (to make KerasTensors), so one replica's local part of the
# batch serves as well, and needs no cross-worker communication.


def symbolic_build_from_local_batch(
    model: Any, iterator: Any = None, data_batch: Any = None
) -> None:
    """``TensorFlowTrainer._maybe_symbolic_build`` reading a local replica's batch.

    Args:
        model: a Keras model on the TensorFlow backend, compiled under a strategy.
        iterator: the TFEpochIterator that fit/evaluate pass, or None.
        data_batch: a batch that Keras already took, or None.
    """
    check_keras_version("data_parallel under MultiWorkerMirroredStrategy")
    import tensorflow as tf
    from keras import tree

    strategy = getattr(model, "_distribute_strategy", None)
    if strategy is None:
        return
    if not hasattr(model, "_symbolic_build"):
        msg = "keras.Model._symbolic_build is gone from this Keras release."
        raise KerasInternalsChanged(msg)
    if iterator is not None:
        dataset = getattr(iterator, "_distributed_dataset", None)
        spec = getattr(dataset, "element_spec", None)
        if spec is not None:
            # The shapes and dtypes are all that is needed: taking them from the spec
            # reads no batch (and starts no input pipeline before the first epoch).
            data_batch = tree.map_structure(_one_replica_spec, spec)
        else:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda x: (
                        strategy.experimental_local_results(x)[0]
                        if isinstance(x, tf.distribute.DistributedValues)
                        else x
                    ),
                    batch,
                )
                break
    with strategy.scope():
        model._symbolic_build(data_batch=data_batch)


def _one_replica_spec(spec: Any) -> Any:
    """The TensorSpec of one replica's value: a PerReplicaSpec holds one per replica."""
    specs = getattr(spec, "_value_specs", None)
    return specs[0] if specs else spec


# --- telling the other workers that this one stopped ---------------------------------
# Under MultiWorkerMirroredStrategy a worker that leaves fit with an exception while the
# others wait in a gradient all-reduce holds them there until its process exits and its
# heartbeats stop; if the script catches the exception, or the process hangs at exit,
# they wait for ever (there is no collective timeout by default). TensorFlow's own PreemptionCheckpointHandler reports such errors
# to the coordination service, which aborts the collectives of every task at once; this
# does the same through the same private call (tensorflow.python.eager.context).


def report_error_to_cluster(error: BaseException) -> bool:
    """Report ``error`` to every task of this process's collective cluster.

    Best effort: returns False, and reports nothing, when TensorFlow lacks the call or
    this process is not part of a cluster.
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


# --- ending a distributed input pipeline ----------------------------------------------
# tf.distribute reads a per-worker dataset through an OwnedMultiDeviceIterator, whose
# background thread fills one buffer per device; its destructor waits for that thread.
# With a Dataset.from_generator inside, the thread runs Python and needs the GIL, which
# the destructor holds (it runs from the garbage collector): reading the iterator to its
# end first leaves the thread finished. The attributes read are TF 2.21's
# (DistributedIterator._iterators, _SingleWorkerOwnedDatasetIterator._iterator,
# OwnedMultiDeviceIterator._devices and _device_iterators); tests/test_parallel.py
# fails if they move.

_DRAIN_ERRORS_IN_A_ROW = 10


def drain_distributed_iterator(iterator: Any, timeout: float = 60.0) -> bool:
    """Read the local part of a tf.distribute iterator until its end.

    Call it only once the dataset is known to end (its generator has returned or
    will). Elements that fail (the input's own error, already raised) are skipped.
    Each device's buffer is read in its own thread: the background thread fills the
    devices' buffers in turn, so reading one device to its end while another's buffer is
    full would wait for ever.

    Returns:
        False when the iterator does not have the expected structure (nothing read) or
        was not read to its end within ``timeout`` seconds.
    """
    workers = getattr(iterator, "_iterators", None)
    if workers is None:
        return False
    parts: list[tuple[Any, str | None]] = []
    for worker in workers:
        inner = getattr(worker, "_iterator", None)
        if inner is None:
            return False
        devices = getattr(inner, "_devices", None)
        device_iterators = getattr(inner, "_device_iterators", None)
        if devices is None or device_iterators is None:
            parts.append((inner, None))
        else:
            parts.extend(zip(device_iterators, devices, strict=True))
    readers = [
        threading.Thread(target=_read_to_end, args=part, name="kutils-drain", daemon=True)
        for part in parts
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    for reader in readers:
        reader.join(max(deadline - time.monotonic(), 0.0))
    return not any(reader.is_alive() for reader in readers)


def _read_to_end(iterator: Any, device: str | None) -> None:
    import tensorflow as tf

    errors = 0
    with tf.device(device) if device else contextlib.nullcontext():
        while errors < _DRAIN_ERRORS_IN_A_ROW:
            try:
                iterator.get_next()
                errors = 0
            except tf.errors.OutOfRangeError:
                return
            except tf.errors.OpError:
                errors += 1
