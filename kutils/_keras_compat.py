"""Every Keras and TensorFlow internal kutils reads, behind small named accessors.

This module only adapts: it knows where each private Keras/TensorFlow attribute lives
in the supported releases, checks it is there, and gives it a name; it raises
``KerasInternalsChanged`` naming the installed and supported versions when it is not.
It holds no kutils behaviour and imports no kutils module. The Keras callables kutils
replaces at run time are listed and replaced in ``kutils/_keras_patches.py`` (through
the accessors here); each family keeps its behaviour in its own module.
docs/internals.md lists every accessor, why it exists, for which Keras releases, and
its canary test in tests/test_keras_internals.py.

Nothing here imports Keras or TensorFlow at module level: ``import kutils`` stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
import warnings
from collections.abc import Callable
from typing import Any

# The oldest Keras release kutils supports and the newest it was tested on (major, minor).
# The compatibility matrix (`nox -s compat`) runs the internals tests on both ends, with
# TensorFlow 2.16 and 2.21; pyproject.toml declares the same floor (keras>=3.8).
SUPPORTED_KERAS = ((3, 8), (3, 15))


class KerasInternalsChanged(ImportError):
    """Raised when the installed Keras does not have the internals kutils relies on."""


class UntestedKerasWarning(RuntimeWarning):
    """Warned once per process when Keras is newer than the newest release kutils tested."""


@functools.lru_cache(maxsize=1)
def keras_version() -> tuple[int, int]:
    """The installed Keras version as (major, minor); imports Keras."""
    import keras

    major, minor = (int(part) for part in keras.__version__.split(".")[:2])
    return major, minor


_warned_untested = threading.Event()


def check_keras_version(feature: str) -> None:
    """Refuse a Keras older than the floor; warn once about one newer than tested.

    Called where a feature that depends on Keras internals is used (never at import).

    Raises:
        KerasInternalsChanged: Keras is older than ``SUPPORTED_KERAS[0]``: kutils fails
            there or trains silently wrong (docs/internals.md says how).
    """
    import keras

    version = keras_version()
    low, high = SUPPORTED_KERAS
    supported = f"Keras {low[0]}.{low[1]} to {high[0]}.{high[1]}"
    if version < low:
        msg = (
            f"kutils {feature} supports {supported}, but Keras {keras.__version__} is "
            f"installed. Upgrade Keras: pip install 'keras>={low[0]}.{low[1]}'"
        )
        raise KerasInternalsChanged(msg)
    if version > high and not _warned_untested.is_set():
        _warned_untested.set()
        msg = (
            f"kutils {feature}: Keras {keras.__version__} is newer than the newest release "
            f"kutils was tested with (kutils supports {supported}). If it fails, install a "
            f"tested Keras: pip install 'keras>={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}'"
        )
        warnings.warn(msg, UntestedKerasWarning, stacklevel=3)


def _missing(what: str, purpose: str) -> KerasInternalsChanged:
    import keras

    return KerasInternalsChanged(
        f"{what} is missing in Keras {keras.__version__}; kutils cannot {purpose}. kutils "
        f"supports Keras {SUPPORTED_KERAS[0][0]}.{SUPPORTED_KERAS[0][1]} to "
        f"{SUPPORTED_KERAS[1][0]}.{SUPPORTED_KERAS[1][1]}."
    )


def _private_module(name: str) -> Any:
    """``keras.src.<name>``; KerasInternalsChanged when Keras no longer has it."""
    try:
        return importlib.import_module(f"keras.src.{name}")
    except ImportError as error:
        raise _missing(f"keras.src.{name}", "use it") from error


def _private_attribute(module: str, name: str, purpose: str, *, call: bool = False) -> Any:
    """``keras.src.<module>.<name>`` (callable when ``call``); KerasInternalsChanged if not."""
    found = getattr(_private_module(module), name, None)
    if found is None or (call and not callable(found)):
        raise _missing(f"keras.src.{module}.{name}", purpose)
    return found


# ---------------------------------------------------------------------------------------
# The data-adapter routing point: what Keras's fit/evaluate/predict read their input with
# ---------------------------------------------------------------------------------------

# Keras 3 picks the data adapter of every fit/evaluate/predict call in one function,
# ``keras.src.trainers.data_adapters.get_data_adapter``, which ``EpochIterator`` looks up
# as a module attribute; ``kutils/_keras_patches.py`` replaces it, and hooks two
# ``EpochIterator`` and eight ``CallbackList`` methods, through the accessors below.

GET_DATA_ADAPTER_PARAMS = (
    "x",
    "y",
    "sample_weight",
    "batch_size",
    "steps_per_epoch",
    "shuffle",
    "class_weight",
)

_FIT_FEATURE = "fit/evaluate/predict with kutils inputs"


def data_adapters_module() -> Any:
    """``keras.src.trainers.data_adapters`` (holds get_data_adapter)."""
    check_keras_version(_FIT_FEATURE)
    return _data_adapters_module()


def _data_adapters_module() -> Any:
    return _private_module("trainers.data_adapters")


# The three accessors below are unchecked by version: the fit hooks are installed when
# a kutils input is made, also in worker processes; the version is checked where the
# input reaches fit (in each route).


def routed_data_adapters_module() -> Any:
    """``keras.src.trainers.data_adapters``, checked for the ``get_data_adapter`` routed.

    Its ``get_data_adapter`` must take ``GET_DATA_ADAPTER_PARAMS`` (unless kutils's
    router is already in place), and ``EpochIterator`` must look it up in this module.
    """
    adapters = _data_adapters_module()
    iterator_module = _private_module("trainers.epoch_iterator")
    original = getattr(adapters, "get_data_adapter", None)
    if not callable(original):
        raise _missing("keras.src.trainers.data_adapters.get_data_adapter", "route fit's data")
    if getattr(iterator_module, "data_adapters", None) is not adapters:
        raise _missing(
            "EpochIterator's look-up of data_adapters.get_data_adapter", "route fit's data"
        )
    if not getattr(original, "_kutils_wraps", False):
        names = tuple(inspect.signature(original).parameters)
        if names != GET_DATA_ADAPTER_PARAMS:
            raise _missing(
                f"get_data_adapter{GET_DATA_ADAPTER_PARAMS}", f"route it (it takes {names})"
            )
    return adapters


def hooked_epoch_iterator_class() -> Any:
    """``keras.src.trainers.epoch_iterator.EpochIterator``, checked for the methods hooked."""
    iterator_class = _private_attribute("trainers.epoch_iterator", "EpochIterator", "drive fit")
    for name in ("__iter__", "catch_stop_iteration"):
        if not hasattr(iterator_class, name):
            raise _missing(f"EpochIterator.{name}", "hook fit's epochs")
    return iterator_class


def set_epoch_batches(iterator: Any, count: int) -> None:
    """Set ``EpochIterator._num_batches``, which Keras reads once, in ``reset()``."""
    iterator._num_batches = count


CALLBACK_LIST_METHODS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_epoch_end",
    "on_test_begin",
    "on_predict_begin",
    "on_train_end",
    "on_test_end",
    "on_predict_end",
    "set_params",
)


def callback_list_class() -> Any:
    """``keras.callbacks.CallbackList``, checked for the methods kutils hooks."""
    import keras

    callback_list = getattr(keras.callbacks, "CallbackList", None)
    missing = [m for m in CALLBACK_LIST_METHODS if not hasattr(callback_list, m)]
    if callback_list is None or missing:
        raise _missing(
            f"keras.callbacks.CallbackList.{'/'.join(missing) or 'class'}",
            "keep Sequence workers alive for a whole fit and update callbacks' steps",
        )
    return callback_list


# --- the adapter classes and helpers the routes build on --------------------------------


def py_dataset_adapter_class() -> Any:
    """``PyDatasetAdapter``, checked for the methods kutils's Sequence adapter overrides."""
    check_keras_version(_FIT_FEATURE)
    base = _private_attribute(
        "trainers.data_adapters.py_dataset_adapter", "PyDatasetAdapter", "feed a Sequence to fit"
    )
    for name in ("_standardize_batch", "on_epoch_begin", "on_epoch_end", "get_tf_dataset"):
        if not hasattr(base, name):
            raise _missing(f"PyDatasetAdapter.{name}", "feed a Sequence to fit")
    return base


def tf_dataset_adapter_class() -> Any:
    """``TFDatasetAdapter``, the base of the adapter of inputs read in shards."""
    check_keras_version(_FIT_FEATURE)
    return _private_attribute(
        "trainers.data_adapters.tf_dataset_adapter",
        "TFDatasetAdapter",
        "read inputs in shards across workers",
    )


def tensor_spec_of_batches(batches: list[Any]) -> Any:
    """Keras's ``data_adapter_utils.get_tensor_spec``: the common spec of ``batches``."""
    check_keras_version(_FIT_FEATURE)
    get_tensor_spec = _private_attribute(
        "trainers.data_adapters.data_adapter_utils",
        "get_tensor_spec",
        "learn a Sequence's batch spec",
        call=True,
    )
    return get_tensor_spec(batches)


def batches_for_tensor_spec() -> int:
    """How many batches Keras reads to learn a PyDataset's spec (NUM_BATCHES_FOR_TENSOR_SPEC)."""
    check_keras_version(_FIT_FEATURE)
    count = _private_attribute(
        "trainers.data_adapters.data_adapter_utils",
        "NUM_BATCHES_FOR_TENSOR_SPEC",
        "learn a batch spec",
    )
    return int(count)


def raise_unsupported_arg(name: str, description: str, input_type: str) -> None:
    """Keras's own error for an argument a PyDataset input cannot take (``y=...``)."""
    adapters = data_adapters_module()
    raise_unsupported = getattr(adapters, "raise_unsupported_arg", None)
    if raise_unsupported is None:
        raise _missing("data_adapters.raise_unsupported_arg", "report a bad fit argument")
    raise_unsupported(name, description, input_type)


# ---------------------------------------------------------------------------------------
# String identifiers that name custom objects (custom_objects.py)
# ---------------------------------------------------------------------------------------

# Keras modules whose ``get(identifier)`` turns strings such as ``'relu'`` into objects.
IDENTIFIER_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)
_IDENTIFIER_FEATURE = "custom-object string look-ups"


def identifier_getter(module: str) -> Callable[..., Any]:
    """``keras.src.<module>.get`` (module one of IDENTIFIER_MODULES)."""
    check_keras_version(_IDENTIFIER_FEATURE)
    return _private_attribute(
        module, "get", "make string identifiers find custom objects", call=True
    )


def identifier_module(module: str) -> Any:
    """``keras.src.<module>``, where Keras's layers look ``get`` up (IDENTIFIER_MODULES)."""
    identifier_getter(module)
    return _private_module(module)


# The public ``keras.<module>`` namespaces (``keras.api.<module>`` in Keras 3.8, the
# ``keras.<module>`` package itself in 3.15) bind ``get`` by name when Keras is imported,
# so they hold a second reference to ``keras.src.<module>.get``: replacing the one in
# ``keras.src`` does not reach ``keras.activations.get(...)`` called by user code.
# (``tf.keras.losses`` and ``tf.keras.metrics`` are a third, separate namespace under
# ``keras._tf_keras``, left alone: kutils serves Keras 2 scripts, which import ``keras``.)


def public_identifier_getter(module: str) -> Callable[..., Any]:
    """``keras.<module>.get`` as user code calls it (module one of IDENTIFIER_MODULES)."""
    check_keras_version(_IDENTIFIER_FEATURE)
    import keras

    found = getattr(getattr(keras, module, None), "get", None)
    if not callable(found):
        raise _missing(f"keras.{module}.get", "make string identifiers find custom objects")
    return found


def public_identifier_namespace(module: str) -> Any:
    """The public ``keras.<module>`` namespace whose ``get`` user code calls."""
    public_identifier_getter(module)
    import keras

    return getattr(keras, module)


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

_GRAPH_FEATURE = "print_summary and model_to_dot"


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


def layer_calls(layer: Any) -> list[LayerCall]:
    """Every call of ``layer`` on symbolic tensors, oldest first (``layer._inbound_nodes``)."""
    check_keras_version(_GRAPH_FEATURE)
    if not hasattr(layer, "_inbound_nodes"):
        raise _missing("Layer._inbound_nodes", "read the model graph")
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
    check_keras_version(_GRAPH_FEATURE)
    inbound = []
    for tensor in node.input_tensors:
        history = getattr(tensor, "_keras_history", None)
        if history is not None and history.operation is not None:
            inbound.append((history.operation, history.node_index, history.tensor_index))
    return inbound


def functional_class() -> Any:
    """``keras.src.models.functional.Functional``, the class of graph networks."""
    check_keras_version(_GRAPH_FEATURE)
    return _private_attribute("models.functional", "Functional", "read the model graph")


def graph_nodes_by_depth(model: Any) -> dict[int, list[Any]] | None:
    """The model's ``_nodes_by_depth``, or None when it is not a graph network.

    A graph network is a Functional model or a Sequential model that has been built
    with a known input shape (Keras 2's ``model._is_graph_network``). Subclassed models
    and unbuilt Sequential models are not.
    """
    check_keras_version(_GRAPH_FEATURE)
    import keras

    graph = model
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
    if not isinstance(graph, functional_class()):
        return None
    nodes_by_depth = getattr(graph, "_nodes_by_depth", None)
    if nodes_by_depth is None:
        raise _missing("Functional._nodes_by_depth", "read the model graph")
    return dict(nodes_by_depth)


def all_model_layers(model: Any) -> list[Any]:
    """Every layer of the model, a Sequential's input layer included (Keras 2.3.1 ``_layers``)."""
    check_keras_version(_GRAPH_FEATURE)
    import keras

    if isinstance(model, keras.Sequential):
        if not hasattr(model, "_layers"):
            raise _missing("Sequential._layers", "list a Sequential model's input layer")
        return list(model._layers)
    return list(model.layers)


# ---------------------------------------------------------------------------------------
# Keras 2's preprocessing classes that Keras 3 still ships but no longer exports publicly
# ---------------------------------------------------------------------------------------

# Keras 3 keeps Keras 2's ImageDataGenerator, Tokenizer, TimeseriesGenerator ... in
# keras.src.legacy.preprocessing and exports them only under the tf.keras namespace it
# builds for TensorFlow (``keras._tf_keras.keras.preprocessing.<kind>``), which also
# re-exports the image and sequence functions Keras 3 kept public. DataFrameIterator is
# in the legacy module but not in that namespace.
LEGACY_PREPROCESSING_KINDS = ("image", "text", "sequence")


def legacy_preprocessing_attribute(kind: str, name: str) -> Any:
    """Keras 2's ``keras.preprocessing.<kind>.<name>`` as Keras 3 ships it."""
    check_keras_version("kutils.preprocessing")
    for module in (
        f"keras._tf_keras.keras.preprocessing.{kind}",
        f"keras.src.legacy.preprocessing.{kind}",
    ):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
        if found is not None:
            return found
    raise _missing(f"keras.preprocessing.{kind}.{name} (legacy)", "offer Keras 2's preprocessing")


# ---------------------------------------------------------------------------------------
# Keras 2's HDF5 attribute chunking, for writing Keras 2 weights files (saved_models.py)
# ---------------------------------------------------------------------------------------

# An HDF5 attribute holds at most 64 KB; Keras 2 and Keras 3's legacy HDF5 code store a
# longer list (``layer_names`` of a model with thousands of layers) as ``layer_names0``,
# ``layer_names1``... Keras 3 keeps that writer, unchanged since Keras 2, in
# keras.src.legacy.saving.legacy_h5_format (3.0 to 3.15); its reader is the same module's.


def hdf5_attribute_writer() -> Callable[[Any, str, list[bytes]], None]:
    """Keras's ``save_attributes_to_hdf5_group(group, name, data)`` (Keras 2's chunking).

    Raises:
        KerasInternalsChanged: Keras no longer ships it.
    """
    check_keras_version("kutils.save_weights")
    return _private_attribute(
        "legacy.saving.legacy_h5_format",
        "save_attributes_to_hdf5_group",
        "write Keras 2 weights files",
        call=True,
    )
