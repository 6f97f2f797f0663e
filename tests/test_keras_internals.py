"""Canary tests: one per private Keras or TensorFlow attribute kutils reads, wraps or subclasses.

Each test is named after the internal it checks and asserts only what kutils relies on,
so a Keras or TensorFlow release that moves one fails one obvious test here instead of
many distant ones. docs/internals.md lists, for each, where kutils uses it and why. The
compatibility matrix (``nox -s compat``) runs this file on the oldest and the newest
supported stack.
"""

from __future__ import annotations

import importlib
import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from kutils import _keras2_display, _keras_compat, _keras_compat_training, _sequence_hooks


def _params(function):
    return tuple(inspect.signature(function).parameters)


@pytest.fixture(scope="module")
def functional():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(2, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden))


# -- the data-adapter routing point and EpochIterator -------------------------------------


def test_canary_keras_src_trainers_data_adapters_get_data_adapter():
    from keras.src.trainers import data_adapters

    # Unwrap kutils's router, if another test installed it, to see Keras's own function.
    function = inspect.unwrap(data_adapters.get_data_adapter)
    assert _params(function) == _keras_compat.GET_DATA_ADAPTER_PARAMS
    adapter = function(np.zeros((4, 2)), np.zeros(4), batch_size=2)
    assert adapter.num_batches == 2


def test_canary_keras_src_trainers_epoch_iterator_data_adapters():
    # EpochIterator must look get_data_adapter up in the module, for the router to apply.
    from keras.src.trainers import data_adapters, epoch_iterator

    assert epoch_iterator.data_adapters is data_adapters
    source = inspect.getsource(epoch_iterator.EpochIterator.__init__)
    assert "data_adapters.get_data_adapter(" in source


def test_canary_keras_src_trainers_epoch_iterator_EpochIterator___iter__():
    from keras.src.trainers.epoch_iterator import EpochIterator

    iterator = EpochIterator(x=np.zeros((6, 2)), batch_size=2)
    function = inspect.unwrap(type(iterator).__iter__)
    assert "__iter__" in vars(EpochIterator)
    # The hook reads these three attributes, then calls Keras's own __iter__.
    assert iterator.steps_per_epoch is None
    assert iterator._num_batches == 3
    assert iterator.data_adapter.num_batches == 3
    assert _params(function) == ("self",)


def test_canary_keras_src_trainers_epoch_iterator_EpochIterator_catch_stop_iteration():
    from keras.src.trainers.epoch_iterator import EpochIterator as iterator_class

    assert "catch_stop_iteration" in vars(iterator_class)
    iterator = iterator_class(x=np.zeros((4, 2)), batch_size=2)
    with iterator.catch_stop_iteration():
        pass
    assert iterator.data_adapter is not None


def test_canary_keras_src_trainers_data_adapters_py_dataset_adapter_PyDatasetAdapter():
    base = _keras_compat.py_dataset_adapter_class()
    for name in ("_standardize_batch", "on_epoch_begin", "on_epoch_end", "get_tf_dataset"):
        assert callable(getattr(base, name)), name
    # kutils's subclass sets the fields PyDatasetAdapter.__init__ sets; check they are these.
    init = inspect.getsource(base.__init__)
    for field in ("py_dataset", "class_weight", "shuffle", "enqueuer", "_output_signature"):
        assert f"self.{field} =" in init, field
    assert "_within_epoch" in inspect.getsource(base)


def test_canary_keras_src_trainers_data_adapters_data_adapter_utils_get_tensor_spec():
    spec = _keras_compat.tensor_spec_of_batches(
        [(np.zeros((2, 3), "float32"),), (np.zeros((1, 3), "float32"),)]
    )
    assert tuple(spec[0].shape) == (None, 3)


def test_canary_keras_src_trainers_data_adapters_data_adapter_utils_NUM_BATCHES_FOR_TENSOR_SPEC():
    assert _keras_compat.batches_for_tensor_spec() >= 1


def test_canary_keras_src_trainers_data_adapters_raise_unsupported_arg():
    with pytest.raises(ValueError, match="the targets"):
        _keras_compat.raise_unsupported_arg("y", "the targets", "PyDataset")


def test_canary_keras_src_trainers_data_adapters_tf_dataset_adapter_TFDatasetAdapter():
    base = _keras_compat.tf_dataset_adapter_class()
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((4, 1))).batch(2)
    adapter = base(dataset)
    for name in ("num_batches", "on_epoch_begin", "on_epoch_end", "get_tf_dataset"):
        assert hasattr(adapter, name), name


# -- string identifiers (custom_objects.py) -----------------------------------------------


@pytest.mark.parametrize("module", _keras_compat.IDENTIFIER_MODULES)
def test_canary_keras_src_module_get(module):
    getter = inspect.unwrap(_keras_compat.identifier_getter(module))
    assert getter.__module__.startswith(f"keras.src.{module}")
    assert _params(getter)[0] == "identifier"
    # kutils's custom-object look-up replaces it in the module, where Keras's layers look.
    assert importlib.import_module(f"keras.src.{module}").get is not None


@pytest.mark.parametrize("module", _keras_compat.IDENTIFIER_MODULES)
def test_canary_keras_module_get(module):
    # The public namespace (keras.api.<module> in 3.8, keras.<module> in 3.15) binds
    # Keras's own getter by name: a second reference kutils replaces too.
    public = _keras_compat.public_identifier_getter(module)
    assert inspect.unwrap(public) is inspect.unwrap(_keras_compat.identifier_getter(module))
    assert getattr(keras, module).get is public


# -- model graphs (summary.py, plotting.py) -----------------------------------------------


def test_canary_keras_Layer__inbound_nodes(functional):
    layer = functional.get_layer("hidden")
    (node,) = layer._inbound_nodes
    assert [tuple(t.shape) for t in node.input_tensors] == [(None, 3)]
    assert [tuple(t.shape) for t in node.output_tensors] == [(None, 2)]


def test_canary_keras_KerasTensor__keras_history(functional):
    (node,) = functional.get_layer("out")._inbound_nodes
    history = node.input_tensors[0]._keras_history
    assert history.operation is functional.get_layer("hidden")
    assert (history.node_index, history.tensor_index) == (0, 0)
    assert _keras_compat.node_inbound(node) == [(functional.get_layer("hidden"), 0, 0)]


def test_canary_keras_src_models_functional_Functional(functional):
    assert type(functional) is _keras_compat.functional_class()
    assert _keras2_display.legacy_class_name(functional) == "Model"


def test_canary_keras_Functional__nodes_by_depth(functional):
    depths = functional._nodes_by_depth
    assert sorted(depths) == [0, 1, 2]
    assert _keras_compat.graph_nodes_by_depth(functional) == dict(depths)


def test_canary_keras_Sequential__functional():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert isinstance(model._functional, _keras_compat.functional_class())
    assert _keras_compat.graph_nodes_by_depth(model) is not None


def test_canary_keras_Sequential__layers():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    assert [type(layer).__name__ for layer in model._layers] == ["InputLayer", "Dense"]
    assert len(_keras_compat.all_model_layers(model)) == 2


# -- model internals (multi_gpu.py, _device_parallel.py) ---------------------------------


def test_canary_keras_Variable__value_and__initialize():
    from kutils.multi_gpu import relocate_variables

    variable = keras.Variable(np.ones((2,), "float32"))
    assert isinstance(variable._value, tf.Variable)
    assert callable(variable._initialize)
    assert _keras_compat_training.variable_storage(variable) is variable._value
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    before = [v.numpy() for v in model.variables]
    relocate_variables(model, "/cpu:1")
    assert all("CPU:1" in v._value.device for v in model.variables)
    np.testing.assert_array_equal(before[0], model.variables[0].numpy())


def test_canary_keras_Layer__flatten_layers(functional):
    layers = list(functional._flatten_layers(include_self=True, recursive=True))
    assert functional in layers
    assert _keras_compat_training.contains_layer_type(functional, keras.layers.Dense)
    assert not _keras_compat_training.contains_layer_type(
        functional, keras.layers.BatchNormalization
    )


def _compiled(functional):
    model = keras.models.clone_model(functional)
    model.compile("sgd", "mse")
    return model


def test_canary_keras_Model__compute_loss(functional):
    model = _compiled(functional)
    x, y = np.ones((2, 3), "float32"), np.zeros((2, 1), "float32")
    loss = _keras_compat_training.compute_loss(model, x, y, model(x), None)
    expected = float(np.mean(model.predict(x, verbose=0) ** 2))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_canary_keras_Model__loss_tracker(functional):
    model = _compiled(functional)
    assert isinstance(_keras_compat_training.loss_tracker(model), keras.metrics.Mean)


def test_canary_keras_Model__call_has_training_arg(functional):
    assert _keras_compat_training.call_has_training_arg(functional) is True

    class NoTraining(keras.Model):
        def call(self, inputs):
            return inputs

    assert _keras_compat_training.call_has_training_arg(NoTraining()) is False


def test_canary_keras_Layer_add_loss_on_a_functional_model(functional):
    # kutils.add_loss: Functional refuses add_loss; the base Layer.add_loss, called from
    # inside the model's call (found on the instance), records a loss that Model.losses
    # returns, and the next outermost call starts from no loss.
    model = keras.models.clone_model(functional)
    with pytest.raises(NotImplementedError):
        model.add_loss(keras.ops.ones(()))
    own_call = model.call

    def call(inputs, training=None, mask=None):
        outputs = own_call(inputs, training=training, mask=mask)
        _keras_compat_training.add_call_loss(model, keras.ops.sum(outputs))
        return outputs

    object.__setattr__(model, "call", call)
    x = np.ones((2, 3), "float32")
    outputs = model(x)
    assert len(model.losses) == 1
    assert float(model.losses[0]) == pytest.approx(float(np.sum(outputs)))
    model(x)
    assert len(model.losses) == 1


@pytest.mark.parametrize("method", ["train_on_batch", "test_on_batch"])
def test_canary_keras_batch_methods_reset_metrics(functional, method):
    # kutils/_batch_steps.py resets the metrics before these methods where Keras does
    # not: after evaluate, Keras's own method returns the batch's loss exactly when
    # batch_methods_reset_metrics() says so, else the mean over both.
    model = keras.models.clone_model(functional)
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x, y = np.ones((2, 3), "float32"), np.zeros((2, 1), "float32")
    predicted = model.predict(x, verbose=0)
    own, evaluated = float(np.mean(predicted**2)), float(np.mean((predicted - 10.0) ** 2))
    model.evaluate(x, y + 10.0, verbose=0)
    returned = float(getattr(model, method)(x, y))
    if _keras_compat_training.batch_methods_reset_metrics():
        assert returned == pytest.approx(own, rel=1e-5)
    else:
        assert returned == pytest.approx((own + evaluated) / 2, rel=1e-5)


def test_canary_keras_src_losses_loss_unscale_loss_for_distribution(mirrored):
    unscale = _keras_compat_training.unscale_loss_for_distribution_function()
    assert float(unscale(tf.constant(3.0))) == 3.0  # no strategy: unchanged

    @tf.function
    def step():
        return mirrored.run(lambda: unscale(tf.constant(3.0)))

    # Under two replicas the loss was divided by 2; unscaling multiplies it back.
    results = mirrored.experimental_local_results(step())
    assert [float(r) for r in results] == [6.0, 6.0]


def test_canary_keras_TensorFlowTrainer__maybe_symbolic_build():
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    assert _params(TensorFlowTrainer._maybe_symbolic_build) == ("self", "iterator", "data_batch")
    assert "data_batch" in _params(keras.Model._symbolic_build)


def test_canary_keras_Model__distribute_strategy(functional, mirrored):
    assert functional._distribute_strategy is None
    with mirrored.scope():
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    assert model._distribute_strategy is mirrored
    assert _keras_compat_training.model_distribute_strategy(model) is mirrored


def test_canary_keras_TFEpochIterator__distributed_dataset(mirrored):
    from keras.src.backend.tensorflow.trainer import TFEpochIterator

    iterator = TFEpochIterator(
        x=np.zeros((8, 3), "float32"), batch_size=4, distribute_strategy=mirrored
    )
    spec = iterator._distributed_dataset.element_spec
    assert spec is not None
    assert _keras_compat_training.epoch_iterator_element_spec(iterator) is spec


# -- TensorFlow internals (_strategy_parallel.py, _iterator_drain.py) ------------------


def test_canary_tensorflow_PerReplicaSpec__value_specs(mirrored):
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((8, 3), "float32")).batch(4)
    spec = mirrored.experimental_distribute_dataset(dataset).element_spec
    assert len(spec._value_specs) == 2
    assert tuple(spec._value_specs[0].shape) == (None, 3)
    assert _keras_compat_training.per_replica_value_specs(spec) is spec._value_specs


def test_canary_tensorflow_python_eager_context_report_error_to_cluster():
    from tensorflow.python.eager import context

    report = context.context().report_error_to_cluster
    assert _params(report) == ("error_code", "error_message")
    # Outside a cluster kutils's accessor reports nothing and says so.
    assert _keras_compat_training.report_error_to_cluster(RuntimeError("x")) is False


def _distributed_iterator(mirrored):
    def dataset_fn(context):
        return tf.data.Dataset.from_tensor_slices(np.zeros((4, 1), "float32")).batch(1)

    options = tf.distribute.InputOptions(experimental_fetch_to_device=True)
    return iter(mirrored.distribute_datasets_from_function(dataset_fn, options=options))


def test_canary_tensorflow_DistributedIterator__iterators(mirrored):
    iterator = _distributed_iterator(mirrored)
    assert len(iterator._iterators) == 1


def test_canary_tensorflow__SingleWorkerOwnedDatasetIterator__iterator(mirrored):
    (worker,) = _distributed_iterator(mirrored)._iterators
    assert callable(worker._iterator.get_next)


def test_canary_tensorflow_OwnedMultiDeviceIterator__devices_and__device_iterators(mirrored):
    iterator = _distributed_iterator(mirrored)
    inner = iterator._iterators[0]._iterator
    assert len(inner._devices) == len(inner._device_iterators) == 2
    parts = _keras_compat_training.distributed_iterator_device_parts(iterator)
    assert [device for _, device in parts] == list(inner._devices)


def test_canary_keras_callbacks_CallbackList_call_order_and_set_params():
    # kutils hooks CallbackList: on_train_begin marks a fit, on_epoch_begin comes before
    # the training EpochIterator.__iter__ (set_params there reaches every callback), and
    # on_test_end (validation, inside fit) comes before on_train_end (the end of fit).
    callback_list = _keras_compat.callback_list_class()
    for name in _keras_compat.CALLBACK_LIST_METHODS:
        assert callable(getattr(callback_list, name))
    from keras.src.backend.tensorflow import trainer

    fit = inspect.getsource(trainer.TensorFlowTrainer.fit)
    begin = fit.index("callbacks.on_epoch_begin(epoch)")
    assert (
        begin
        < fit.index("epoch_iterator.catch_stop_iteration()")
        < fit.index("callbacks.on_train_end(")
    )
    assert "callbacks=callbacks" in fit  # validation's evaluate reuses fit's list
    recorder = keras.callbacks.Callback()
    callbacks = callback_list([recorder], steps=3, epochs=1, verbose=0)
    callbacks.set_params({**callbacks.params, "steps": 5})
    assert recorder.params["steps"] == 5


# -- the supported Keras range --------------------------------------------------------------


def _model():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile("sgd", "mse")
    return model


def _sequence():
    from kutils import Sequence

    class Batches(Sequence):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return np.ones((2, 2), "float32"), np.ones((2, 1), "float32")

    return Batches()


def test_pyproject_keras_floor_and_classifiers_agree_with_the_tested_range():
    import pathlib
    import re

    text = (pathlib.Path(__file__).parent.parent / "pyproject.toml").read_text()
    low = _keras_compat.SUPPORTED_KERAS[0]
    assert f'"keras>={low[0]}.{low[1]}"' in text
    versions = re.findall(r"Programming Language :: Python :: (3\.\d+)", text)
    assert versions == ["3.10", "3.11", "3.12", "3.13"]
    assert 'requires-python = ">=3.10"' in text


def test_a_keras_older_than_the_floor_is_refused_where_used_not_at_import(monkeypatch):
    # On a real Keras below the floor (the compatibility check in docs/internals.md ran
    # this file on Keras 3.7) nothing is faked; on a supported Keras the floor is raised.
    import subprocess
    import sys

    if _keras_compat.keras_version() >= _keras_compat.SUPPORTED_KERAS[0]:
        monkeypatch.setattr(_keras_compat, "SUPPORTED_KERAS", ((9, 0), (9, 9)))
        low = "9.0"
    else:
        low = "{}.{}".format(*_keras_compat.SUPPORTED_KERAS[0])
        # Importing kutils and its Sequence works on the old Keras: nothing is checked yet.
        code = "import kutils\nfrom kutils import Sequence, HDF5Matrix, data_parallel\nprint('ok')"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == ["ok"]
    pattern = (
        rf"supports Keras {re.escape(low)} to .* but Keras {re.escape(keras.__version__)} "
        rf"is installed\. Upgrade Keras: pip install 'keras>={re.escape(low)}'"
    )
    with pytest.raises(_keras_compat.KerasInternalsChanged, match=pattern):
        _model().fit(_sequence(), epochs=1, verbose=0)
    from kutils import data_parallel

    with pytest.raises(_keras_compat.KerasInternalsChanged, match=pattern):
        data_parallel(_model(), ["/cpu:1", "/cpu:2"])


def test_a_keras_newer_than_tested_gets_one_warning_where_used(monkeypatch):
    import warnings

    from kutils import print_summary

    installed = _keras_compat.keras_version()
    monkeypatch.setattr(_keras_compat, "SUPPORTED_KERAS", ((3, 0), (3, installed[1] - 1)))
    monkeypatch.setattr(_keras_compat, "_warned_untested", __import__("threading").Event())
    newest = f"3.{installed[1] - 1}"
    pattern = (
        rf"Keras {re.escape(keras.__version__)} is newer than the newest release kutils was "
        rf"tested with \(kutils supports Keras 3\.0 to {re.escape(newest)}\)\. If it fails, "
        rf"install a tested Keras: pip install 'keras>=3\.0,<3\.{installed[1]}'"
    )
    with pytest.warns(_keras_compat.UntestedKerasWarning, match=pattern) as caught:
        print_summary(_model(), print_fn=lambda line: None)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        print_summary(_model(), print_fn=lambda line: None)
        _model().fit(_sequence(), epochs=1, verbose=0)


# -- the shape of the adapter ---------------------------------------------------------------


def _kutils_imports():
    """Each kutils module -> the kutils modules it imports anywhere (top level or in a function)."""
    import ast
    import pathlib

    package = pathlib.Path(__file__).parent.parent / "kutils"
    graph = {}
    for path in package.glob("*.py"):
        name = f"kutils.{path.stem}" if path.stem != "__init__" else "kutils"
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "kutils":
                    found.update(f"kutils.{alias.name}" for alias in node.names)
                elif node.module.startswith("kutils."):
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("kutils."))
        graph[name] = {module for module in found if module != name}
    return graph


def test_keras_compat_imports_no_kutils_module():
    imports = _kutils_imports()
    assert imports["kutils._keras_compat"] == set()
    assert imports["kutils._keras_compat_training"] == {"kutils._keras_compat"}


def test_kutils_modules_import_no_circle():
    graph = _kutils_imports()
    graph["kutils"] = set()  # the package's lazy __getattr__ table, not an import
    state = {}

    def visit(module, path):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import circle: {' -> '.join([*path, module])}"
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_data_parallel_core_imports_no_legacy_family():
    graph = _kutils_imports()
    legacy = {"kutils.hdf5_dataset", "kutils.hdf5_matrix", "kutils.sequence"}
    core_modules = (
        "kutils.parallel",
        "kutils._devices",
        "kutils._device_parallel",
        "kutils._strategy_parallel",
        "kutils._cluster_setup",
        "kutils._per_worker_input",
        "kutils._sequence_shards",
        "kutils._row_shards",
        "kutils._iterator_drain",
    )
    for core in core_modules:
        assert not graph[core] & legacy, (core, graph[core])


def test_only_keras_compat_overrides_private_model_methods():
    import ast
    import pathlib

    package = pathlib.Path(__file__).parent.parent / "kutils"
    for path in package.glob("*.py"):
        if path.stem == "_keras_compat":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith("Model") for base in node.bases
            ):
                private = [
                    item.name
                    for item in node.body
                    if isinstance(item, ast.FunctionDef)
                    and item.name.startswith("_")
                    and not item.name.startswith("__")
                ]
                assert not [name for name in private if hasattr(keras.Model, name)], (
                    f"{path.name}:{node.name} overrides {private}"
                )


def test_one_routing_point_for_every_family_wraps_get_data_adapter_once(tmp_path):
    import h5py
    from keras.src.trainers import data_adapters

    from kutils import HDF5Matrix, _per_worker_input  # noqa: F401  (registers the shards family)

    with h5py.File(tmp_path / "d.h5", "w") as file:
        file["x"] = np.zeros((4, 2), "float32")
    HDF5Matrix(str(tmp_path / "d.h5"), "x")  # the HDF5 family installs the routing point
    _sequence()  # the Sequence family installs it too: still once
    assert sorted(_sequence_hooks.ROUTES) == ["hdf5", "sequence", "shards"]
    router = data_adapters.get_data_adapter
    assert router._kutils_wraps
    # One layer over Keras's own function, whichever family came first.
    assert not getattr(router.__wrapped__, "_kutils_wraps", False)
    assert router.__wrapped__.__module__ == "keras.src.trainers.data_adapters"


# -- the functional multi_gpu_model ------------------------------------------------------


def test_canary_keras_src_models_functional_functional_like_constructor():
    # kutils.parallel.ParallelFunctional (multi_gpu_model's result) is a keras.Model
    # subclass built like a functional model; Keras saves its graph config only when this
    # check accepts its __init__(self, *args, **kwargs).
    from keras.src.models.functional import functional_like_constructor

    class FunctionalLike(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

    assert functional_like_constructor(FunctionalLike)
    inputs = keras.Input((3,))
    model = FunctionalLike(inputs, keras.layers.Dense(1)(inputs))
    assert "layers" in model.get_config()


# -- the one table of run-time replacements -------------------------------------------------


def test_every_replacement_is_listed_once_with_its_tested_range_and_a_canary_here():
    import pathlib

    from kutils import _keras_patches

    rows = _keras_patches.REPLACEMENTS
    assert len(rows) == 25
    assert len({row.target for row in rows}) == 25
    source = pathlib.Path(__file__).read_text()
    for row in rows:
        low, high = row.tested
        assert low <= _keras_compat.SUPPORTED_KERAS[0], row.target
        assert high >= _keras_compat.SUPPORTED_KERAS[1], row.target
        canary = row.canary.split("[")[0]
        assert f"def {canary}(" in source, (row.target, row.canary)
        assert row.wrap.__module__ == "kutils._keras_patches", row.target


def test_after_both_installs_every_listed_callable_is_kutils_wrapper_over_keras_own():
    from kutils import _keras_patches, get_custom_objects

    _sequence()  # installs the fit hooks
    get_custom_objects()  # installs the identifier look-ups
    for row in _keras_patches.REPLACEMENTS:
        replaced = getattr(row.owner(), row.attribute)
        assert getattr(replaced, "_kutils_wraps", False), row.target
        assert inspect.unwrap(replaced).__module__.startswith("keras."), row.target


@pytest.mark.parametrize("kind", ["image", "text", "sequence"])
def test_canary_keras_legacy_preprocessing(kind):
    """Keras 3 still ships Keras 2's preprocessing names (kutils.preprocessing)."""
    import kutils.preprocessing
    from kutils._keras_compat import legacy_preprocessing_attribute

    for name in kutils.preprocessing.NAMES[kind]:
        assert callable(legacy_preprocessing_attribute(kind, name)), name


# -- optimizer slots (saved_models: restoring a Keras 2 optimizer state) ------------------


@pytest.mark.parametrize(
    ("optimizer", "attributes"),
    [
        (lambda: keras.optimizers.SGD(momentum=0.9), ["momentums"]),
        (
            lambda: keras.optimizers.Adam(amsgrad=True),
            ["_momentums", "_velocities", "_velocity_hats"],
        ),
        (lambda: keras.optimizers.RMSprop(), ["_velocities"]),
        (lambda: keras.optimizers.Adagrad(), ["_accumulators"]),
        (lambda: keras.optimizers.Adadelta(), ["_accumulated_grads", "_accumulated_delta_vars"]),
        (lambda: keras.optimizers.Adamax(), ["_m", "_u"]),
        (lambda: keras.optimizers.Nadam(), ["_momentums", "_velocities"]),
    ],
)
def test_canary_keras_optimizers_slot_attributes(optimizer, attributes):
    # One variable per trainable variable, in the order given to build().
    weights = [keras.Variable(np.ones((2, 3))), keras.Variable(np.ones((3,)))]
    instance = optimizer()
    instance.build(weights)
    for attribute in attributes:
        slots = _keras_compat_training.optimizer_slot_variables(instance, attribute)
        assert [tuple(slot.shape) for slot in slots] == [(2, 3), (3,)]


def test_canary_keras_Nadam__u_product():
    # A scalar variable, the product of the momentum schedule (Keras 2's m_schedule).
    instance = keras.optimizers.Nadam()
    instance.build([keras.Variable(np.ones((2,)))])
    product = _keras_compat_training.optimizer_slot_variables(instance, "_u_product")
    assert tuple(product.shape) == () and float(product.numpy()) == 1.0


def test_canary_keras_optimizers_slots_without_momentum_or_amsgrad():
    for instance, attribute in [
        (keras.optimizers.SGD(), "momentums"),
        (keras.optimizers.Adam(), "_velocity_hats"),
    ]:
        instance.build([keras.Variable(np.ones((2,)))])
        assert list(_keras_compat_training.optimizer_slot_variables(instance, attribute)) == []


def test_canary_keras_src_legacy_saving_legacy_h5_format_save_attributes_to_hdf5_group(tmp_path):
    # Keras 2's chunking of a long attribute (name0, name1, ...), which Keras 3's legacy
    # reader reassembles: kutils.save_weights writes layer_names and weight_names with it.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    write = _keras_compat.hdf5_attribute_writer()
    assert write is legacy_h5_format.save_attributes_to_hdf5_group
    assert _params(write) == ("group", "name", "data")
    names = np.asarray([f"layer_{index:05d}".encode() for index in range(8000)])
    with h5py.File(tmp_path / "a.h5", "w") as file:
        write(file, "layer_names", names)
        write(file, "short", np.asarray([b"a", b"bc"]))
        assert "layer_names" not in file.attrs and "layer_names0" in file.attrs
        assert file.attrs["short"].dtype == np.dtype("S2")  # Keras 2's fixed-length bytes
        read = legacy_h5_format.load_attributes_from_hdf5_group(file, "layer_names")
    assert read == [name.decode() for name in names]


# -- kutils.compile (trainable.py) --------------------------------------------------------


def test_canary_keras_optimizer__iterations_and__learning_rate_shared():
    # A copy of an optimizer given the original's step count and learning rate variable
    # counts its steps there and reads the rate from there, with slots of its own.
    original = keras.optimizers.Adam(0.1)
    copy = _keras_compat_training.optimizer_sharing_step(original)
    variable = keras.Variable(np.ones((2,), "float32"))
    copy.apply_gradients([(keras.ops.ones((2,)), variable)])
    assert int(original.iterations) == 1
    original.learning_rate = 0.5
    assert float(copy.learning_rate) == 0.5
    assert not original.built and copy.built


def test_canary_keras_train_step_trains_model_trainable_weights():
    # kutils.compile: Keras 3's TensorFlow train_step reads self.trainable_weights (a
    # property a subclass can override) for the gradients and the optimizer.
    class Fixed(keras.Sequential):
        @property
        def trainable_weights(self):
            return [self.layers[0].kernel]

    model = Fixed([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    bias = model.layers[0].bias.numpy().copy()
    kernel = model.layers[0].kernel.numpy().copy()
    model.train_on_batch(np.ones((4, 2)), np.full((4, 1), 3.0))
    np.testing.assert_array_equal(model.layers[0].bias.numpy(), bias)
    assert not np.array_equal(model.layers[0].kernel.numpy(), kernel)


def test_canary_keras_BatchNormalization_call_and_attributes():
    # kutils.compile's frozen BatchNormalization: call(inputs, training, mask) and the
    # attributes it normalizes with.
    layer = keras.layers.BatchNormalization()
    layer.build((None, 3))
    parameters = list(inspect.signature(type(layer).call).parameters)
    assert parameters == ["self", "inputs", "training", "mask"]
    for name in ("axis", "center", "scale", "beta", "gamma", "epsilon"):
        assert hasattr(layer, name), name
    # Batch renormalization (a layer kutils leaves to Keras): an attribute since Keras 3.9;
    # Keras 3.8's layer has none, which kutils reads as renorm=False.
    assert getattr(layer, "renorm", False) is False
