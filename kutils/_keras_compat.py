"""Every Keras and TensorFlow internal kutils reads or changes, behind small named accessors.

This module only adapts: it knows where each private Keras/TensorFlow attribute lives
in the supported releases and gives it a name, and it is the one place that changes
Keras (the data-adapter routing point below). It imports no kutils module; each kutils
family (sequence, hdf5, parallel, custom objects, summary/plot) keeps its own behaviour
in its own module and calls the accessors here. docs/internals.md lists every accessor,
why it exists, for which Keras releases, and its canary test in
tests/test_keras_internals.py.

Nothing here imports Keras or TensorFlow at module level: ``import kutils`` stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
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


def once_per_process(install: Callable[..., None]) -> Callable[..., None]:
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
# The routing point: Keras's choice of a data adapter for fit, evaluate and predict
# ---------------------------------------------------------------------------------------

# Keras 3 picks the data adapter of every fit/evaluate/predict call in one function,
# ``keras.src.trainers.data_adapters.get_data_adapter``, which ``EpochIterator`` looks up
# as a module attribute. kutils replaces it, once per process, by one router; each kutils
# family registers a route for its own input types (``register_data_adapter``): a
# callable that returns an adapter for the input, or None to leave it to the next route
# and finally to Keras. The families' types are disjoint (a kutils Sequence, HDF5Matrix
# leaves, a sharded input), so the order of the routes does not matter. The same install
# adds two hooks to ``EpochIterator`` that only act on adapters that ask for them.

GET_DATA_ADAPTER_PARAMS = (
    "x",
    "y",
    "sample_weight",
    "batch_size",
    "steps_per_epoch",
    "shuffle",
    "class_weight",
)

_routes: dict[str, Callable[..., Any]] = {}


def register_data_adapter(family: str, route: Callable[..., Any]) -> None:
    """Register ``route(x, y, sample_weight, batch_size, steps_per_epoch, shuffle,
    class_weight)`` (all keywords but ``x``) for family ``family``; it returns an adapter
    or None. Registering changes nothing in Keras: ``install_data_adapter_routing`` does.
    """
    _routes[family] = route


def registered_data_adapter_families() -> list[str]:
    """The families with a route, for tests and docs."""
    return sorted(_routes)


_FIT_FEATURE = "fit/evaluate/predict with kutils inputs"


def data_adapters_module() -> Any:
    """``keras.src.trainers.data_adapters`` (holds get_data_adapter)."""
    check_keras_version(_FIT_FEATURE)
    return _data_adapters_module()


def _data_adapters_module() -> Any:
    return _private_module("trainers.data_adapters")


def epoch_iterator_class() -> Any:
    """``keras.src.trainers.epoch_iterator.EpochIterator``."""
    check_keras_version(_FIT_FEATURE)
    return _epoch_iterator_class()


def _epoch_iterator_class() -> Any:
    # Unchecked: the routing install runs when a kutils input is made, also in worker
    # processes; the version is checked where the input reaches fit (in each route).
    return _private_attribute("trainers.epoch_iterator", "EpochIterator", "drive fit")


@once_per_process
def install_data_adapter_routing() -> None:
    """Put kutils's router in place of Keras's ``get_data_adapter`` (once per process).

    Called by each family before its input can reach ``fit`` (when a kutils Sequence, a
    streamed HDF5Matrix or a sharded input is made), never at import. Raises
    KerasInternalsChanged, touching nothing, when the function, its parameters or the
    ``EpochIterator`` methods hooked are not the ones kutils was written for.
    """
    try:
        original, iterator_class = _routing_targets()
    except KerasInternalsChanged:
        # On a Keras older than the floor, say that (and how to upgrade) first.
        check_keras_version("data-adapter routing")
        raise
    if getattr(original, "_kutils_wraps", False):
        return  # already routed (the once flag was reset, by a test)
    adapters = _data_adapters_module()

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
        arguments = {
            "y": y,
            "sample_weight": sample_weight,
            "batch_size": batch_size,
            "steps_per_epoch": steps_per_epoch,
            "shuffle": shuffle,
            "class_weight": class_weight,
        }
        for route in list(_routes.values()):
            adapter = route(x, **arguments)
            if adapter is not None:
                return adapter
        return original(x, **arguments)

    get_data_adapter._kutils_wraps = True  # type: ignore[attr-defined]
    setattr(adapters, "get_data_adapter", get_data_adapter)  # noqa: B010
    _hook_epoch_iterator(iterator_class)


def _routing_targets() -> tuple[Callable[..., Any], Any]:
    """Keras's ``get_data_adapter`` and ``EpochIterator``, checked for what kutils hooks."""
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
    iterator_class = _epoch_iterator_class()
    for name in ("__iter__", "catch_stop_iteration"):
        if not hasattr(iterator_class, name):
            raise _missing(f"EpochIterator.{name}", "hook fit's epochs")
    return original, iterator_class


def _hook_epoch_iterator(iterator_class: Any) -> None:
    """Two hooks, acting only on adapters that declare them (Keras 3.7+'s EpochIterator).

    ``__iter__``: an adapter with ``_kutils_rereads_length`` has its ``num_batches`` read
    again each epoch (Keras reads it once, in ``reset()``; Keras 2 read it every epoch).
    ``catch_stop_iteration``: an adapter with ``_kutils_owns_errors`` re-raises the
    original exception of its input (``pop_error()``) where TensorFlow shows a generic
    one, and is closed on the way out (``close(final=failed)``).
    """
    original_iter = iterator_class.__iter__
    original_catch = iterator_class.catch_stop_iteration

    @functools.wraps(original_iter)
    def __iter__(self: Any) -> Any:
        adapter = self.data_adapter
        rereads = getattr(adapter, "_kutils_rereads_length", False)
        if rereads and not self.steps_per_epoch:
            self._num_batches = adapter.num_batches
        # The first iterator after a fit's on_epoch_begin is that fit's training one.
        callbacks = getattr(_call_state, "epoch_callbacks", None)
        _call_state.epoch_callbacks = None
        if hasattr(adapter, "end_call"):
            _remember_call_adapter(adapter)
            if callbacks is not None:
                callbacks._kutils_train_iterator = weakref.ref(self)
        return original_iter(self)

    @functools.wraps(original_catch)
    @contextlib.contextmanager
    def catch_stop_iteration(self: Any) -> Iterator[None]:
        adapter = self.data_adapter
        if not getattr(adapter, "_kutils_owns_errors", False):
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
            if failed:  # the call ends here: stop the workers of its other inputs too
                _end_call_adapters()

    iterator_class.__iter__ = __iter__
    iterator_class.catch_stop_iteration = catch_stop_iteration
    _hook_callback_list()


# The adapters whose workers live for one fit/evaluate/predict call, per calling thread.
_call_state = threading.local()


def _remember_call_adapter(adapter: Any) -> None:
    adapters = getattr(_call_state, "adapters", None)
    if adapters is None:
        adapters = _call_state.adapters = weakref.WeakSet()
    adapters.add(adapter)


def _end_call_adapters() -> None:
    """Stop the workers of every adapter used by the calls of this thread."""
    adapters = list(getattr(_call_state, "adapters", None) or ())
    _call_state.adapters = None
    for adapter in adapters:
        adapter.end_call()


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


def _hook_callback_list() -> None:
    """The end of a fit/evaluate/predict call, and a new epoch length, seen by callbacks.

    ``on_train_end``/``on_predict_end``, and ``on_test_end`` outside fit: the call is
    over, so the workers kept alive for it are stopped. ``on_epoch_begin``: when the
    training Sequence's ``len()`` changed, ``set_params`` gives the callbacks (and the
    progress bar) the new ``steps``, as Keras 2.3.1's ``fit_generator`` did.
    """
    callback_list = callback_list_class()
    if getattr(callback_list.on_train_end, "_kutils_wraps", False):
        return
    on_train_begin = callback_list.on_train_begin
    on_epoch_begin = callback_list.on_epoch_begin
    ends = {name: getattr(callback_list, name) for name in CALLBACK_LIST_METHODS[5:8]}

    @functools.wraps(on_train_begin)
    def train_begin(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._kutils_in_fit = True
        return on_train_begin(self, *args, **kwargs)

    @functools.wraps(on_epoch_begin)
    def epoch_begin(self: Any, *args: Any, **kwargs: Any) -> Any:
        reference = getattr(self, "_kutils_train_iterator", None)
        iterator = reference() if reference is not None else None
        if iterator is not None and not iterator.steps_per_epoch:
            steps = iterator.data_adapter.num_batches
            params = dict(getattr(self, "params", None) or {})
            if params and params.get("steps") != steps:
                params["steps"] = steps
                self.set_params(params)
        _call_state.epoch_callbacks = self
        return on_epoch_begin(self, *args, **kwargs)

    def ending(name: str) -> Callable[..., Any]:
        original = ends[name]

        @functools.wraps(original)
        def end(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                if name != "on_test_end" or not getattr(self, "_kutils_in_fit", False):
                    self._kutils_in_fit = False
                    _end_call_adapters()

        end._kutils_wraps = True  # type: ignore[attr-defined]
        return end

    def failing(original: Callable[..., Any]) -> Callable[..., Any]:
        # A callback that raises outside the epoch's batches ends the call too.
        @functools.wraps(original)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            except BaseException:
                self._kutils_in_fit = False
                _end_call_adapters()
                raise

        return call

    callback_list.on_train_begin = failing(train_begin)
    callback_list.on_epoch_begin = failing(epoch_begin)
    for name in ("on_epoch_end", "on_test_begin", "on_predict_begin"):
        setattr(callback_list, name, failing(getattr(callback_list, name)))
    for name in ends:
        setattr(callback_list, name, ending(name))


@once_per_process
def install_hdf5_streaming() -> None:
    """The Keras side of ``fit(x_h5, y_h5, ...)`` streaming: version check, then routing.

    Raises KerasInternalsChanged (touching nothing) when Keras is older than the floor or
    its data-adapter internals changed; the HDF5 family then reads into memory instead.
    """
    check_keras_version("streamed HDF5Matrix training")
    install_data_adapter_routing()


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


def replace_identifier_getter(module: str, getter: Callable[..., Any]) -> None:
    """Make ``getter`` Keras's ``keras.src.<module>.get`` (Keras looks it up there)."""
    check_keras_version(_IDENTIFIER_FEATURE)
    setattr(_private_module(module), "get", getter)  # noqa: B010


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


def replace_public_identifier_getter(module: str, getter: Callable[..., Any]) -> None:
    """Make ``getter`` the ``get`` of the public ``keras.<module>`` namespace."""
    check_keras_version(_IDENTIFIER_FEATURE)
    import keras

    namespace = getattr(keras, module, None)
    if namespace is None:
        raise _missing(f"keras.{module}", "make string identifiers find custom objects")
    setattr(namespace, "get", getter)  # noqa: B010


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


def is_model(layer: Any) -> bool:
    """Whether ``layer`` is a Keras model (Sequential, Functional or subclassed); public API."""
    import keras

    return isinstance(layer, keras.Model)


def wrapped_layer(layer: Any) -> tuple[Any, str] | None:
    """The layer inside a wrapper and the name Keras 2 showed for it, or None (public API).

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
    if type(layer) is functional_class():
        return "Model"
    return type(layer).__name__


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
