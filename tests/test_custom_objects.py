"""CustomObjectScope, custom_object_scope and get_custom_objects with Keras 2 semantics."""

from __future__ import annotations

import contextlib
import importlib
import os
import pathlib
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest

from kutils import CustomObjectScope, custom_object_scope, get_custom_objects


def my_activation(x):
    return keras.ops.relu(x) * 2.0


def my_loss(y_true, y_pred):
    return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)


def my_metric(y_true, y_pred):
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


class MyRegularizer(keras.regularizers.Regularizer):
    def __init__(self, strength=0.01):
        self.strength = strength

    def __call__(self, weights):
        return self.strength * keras.ops.sum(keras.ops.abs(weights))

    def get_config(self):
        return {"strength": self.strength}


class MyDense(keras.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

    def call(self, inputs):
        return keras.ops.matmul(inputs, self.kernel)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


CUSTOM = {
    "MyDense": MyDense,
    "my_activation": my_activation,
    "MyRegularizer": MyRegularizer,
    "my_loss": my_loss,
    "my_metric": my_metric,
}


@pytest.fixture(autouse=True)
def clean_registry():
    registry = get_custom_objects()
    before = dict(registry)
    yield
    registry.clear()
    registry.update(before)


def test_get_custom_objects_is_the_live_keras_registry():
    assert get_custom_objects() is get_custom_objects()
    assert get_custom_objects() is keras.saving.get_custom_objects()


def test_assigning_into_get_custom_objects_registers_for_string_lookups():
    get_custom_objects()["my_activation"] = my_activation
    layer = keras.layers.Dense(4, activation="my_activation")
    assert layer.activation is my_activation


def test_scope_objects_are_visible_inside_and_gone_after():
    with CustomObjectScope({"my_activation": my_activation}) as scope:
        assert isinstance(scope, CustomObjectScope)
        assert get_custom_objects()["my_activation"] is my_activation
    assert "my_activation" not in get_custom_objects()


def test_several_dicts_merge_with_later_ones_winning():
    with custom_object_scope({"a": my_loss, "b": my_loss}, {"b": my_metric}):
        assert get_custom_objects()["a"] is my_loss
        assert get_custom_objects()["b"] is my_metric
    assert "a" not in get_custom_objects()
    assert "b" not in get_custom_objects()


def test_nested_scopes_merge_and_unwind_like_a_stack():
    with CustomObjectScope({"a": my_loss}):
        with CustomObjectScope({"b": my_metric}):
            assert get_custom_objects()["a"] is my_loss
            assert get_custom_objects()["b"] is my_metric
        assert "b" not in get_custom_objects()
        assert get_custom_objects()["a"] is my_loss
    assert "a" not in get_custom_objects()


def test_scope_takes_back_its_own_entries_even_when_the_block_raises():
    get_custom_objects()["kept"] = my_loss
    before = dict(get_custom_objects())
    registry = get_custom_objects()
    with pytest.raises(RuntimeError, match="boom"), CustomObjectScope({"kept": my_metric}):
        assert get_custom_objects()["kept"] is my_metric
        del get_custom_objects()["kept"]
        raise RuntimeError("boom")
    assert get_custom_objects() == before
    assert get_custom_objects() is registry


def test_registrations_made_inside_a_scope_not_through_it_stay():
    get_custom_objects()["replaced_inside"] = my_loss
    with CustomObjectScope({"scoped": my_metric, "replaced_inside": my_metric}):
        get_custom_objects()["added_inside"] = my_activation
        get_custom_objects()["replaced_inside"] = my_activation
    assert "scoped" not in get_custom_objects()
    assert get_custom_objects()["added_inside"] is my_activation
    assert get_custom_objects()["replaced_inside"] is my_activation


def test_zero_arguments_is_a_no_op_scope():
    before = dict(get_custom_objects())
    with CustomObjectScope():
        assert get_custom_objects() == before
    assert get_custom_objects() == before


@pytest.mark.parametrize("bad", [None, [("a", 1)], "name"])
def test_a_non_dict_argument_raises_type_error_on_enter_and_changes_nothing(bad):
    before = dict(get_custom_objects())
    scope = CustomObjectScope({"a": my_loss}, bad)
    with pytest.raises(TypeError, match=r"argument 1 of type"), scope:
        pass
    assert get_custom_objects() == before


def test_string_identifiers_find_scoped_objects():
    with custom_object_scope(CUSTOM):
        layer = keras.layers.Dense(
            4, activation="my_activation", kernel_regularizer="MyRegularizer"
        )
        assert layer.activation is my_activation
        assert isinstance(layer.kernel_regularizer, MyRegularizer)


def test_string_identifiers_fail_outside_the_scope_with_keras_error():
    with custom_object_scope(CUSTOM):
        pass
    with pytest.raises(ValueError, match="Could not interpret activation"):
        keras.layers.Dense(4, activation="my_activation")
    with pytest.raises(ValueError, match="Could not interpret regularizer"):
        keras.layers.Dense(4, kernel_regularizer="MyRegularizer")


def test_builtin_string_identifiers_are_unchanged():
    with custom_object_scope(CUSTOM):
        layer = keras.layers.Dense(4, activation="relu", kernel_regularizer="l2")
    assert layer.activation is keras.activations.relu
    assert isinstance(layer.kernel_regularizer, keras.regularizers.L2)


def test_compile_with_string_loss_and_metric_trains_inside_scope():
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    with custom_object_scope(CUSTOM):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="my_loss", metrics=["my_metric"])
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert set(history.history) >= {"loss", "my_metric"}
    assert np.isfinite(history.history["loss"]).all()


def test_layers_deserialize_inside_scope():
    config = keras.layers.serialize(MyDense(3, name="custom"))
    with custom_object_scope({"MyDense": MyDense}):
        layer = keras.layers.deserialize(config)
    assert isinstance(layer, MyDense)
    assert layer.units == 3


def _custom_model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            MyDense(8, name="custom_dense"),
            keras.layers.Activation(my_activation),
            keras.layers.Dense(2, kernel_regularizer=MyRegularizer(0.05)),
        ]
    )
    model.compile(optimizer="sgd", loss=my_loss, metrics=[my_metric])
    return model


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_model_with_custom_objects_inside_scope(tmp_path, suffix):
    model = _custom_model()
    x = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
    model.fit(x, np.zeros((16, 2), "float32"), epochs=1, verbose=0)
    path = tmp_path / f"model{suffix}"
    model.save(path)

    with CustomObjectScope(CUSTOM):
        loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[0], MyDense)
    assert isinstance(loaded.layers[2].kernel_regularizer, MyRegularizer)
    assert loaded.layers[2].kernel_regularizer.strength == pytest.approx(0.05)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    # The compiled loss and metric came back and work.
    result = loaded.evaluate(x, np.zeros((16, 2), "float32"), verbose=0, return_dict=True)
    assert set(result) >= {"loss"}


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_load_model_outside_scope_fails_with_keras_error(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    _custom_model().save(path)
    with CustomObjectScope(CUSTOM):
        pass
    with pytest.raises((TypeError, ValueError), match=r"MyDense|could not be deserialized"):
        keras.models.load_model(path)


def test_scope_is_process_global_as_in_keras_2():
    seen = {}

    def look():
        seen["value"] = get_custom_objects().get("my_activation")

    with CustomObjectScope({"my_activation": my_activation}):
        thread = threading.Thread(target=look)
        thread.start()
        thread.join(timeout=30)
    assert seen["value"] is my_activation


# -- threads and re-entry -----------------------------------------------------------------


def run_in_thread(target):
    """Start ``target`` in a thread; the returned join re-raises its error, bounded."""
    errors = []

    def run():
        try:
            target()
        except BaseException as error:  # handed to the test
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()

    def join():
        thread.join(timeout=30)
        assert not thread.is_alive(), "thread still running after 30 s"
        if errors:
            raise errors[0]

    return join


def no_scope_left_open():
    from kutils import custom_objects as module

    return module._shadows == {}


@pytest.mark.parametrize("first_out", ["a", "b"])
def test_scopes_in_two_threads_keep_each_others_objects(first_out):
    a_entered, b_entered, first_exited = (threading.Event() for _ in range(3))
    seen = {}

    def scope_a():
        with CustomObjectScope({"a": my_loss, "shared": my_loss}):
            a_entered.set()
            assert b_entered.wait(30)
            if first_out == "b":
                assert first_exited.wait(30)
                seen["a inside"] = dict(get_custom_objects())
        if first_out == "a":
            first_exited.set()

    def scope_b():
        assert a_entered.wait(30)
        with CustomObjectScope({"b": my_metric, "shared": my_metric}):
            b_entered.set()
            if first_out == "a":
                assert first_exited.wait(30)
                seen["b inside"] = dict(get_custom_objects())
        if first_out == "b":
            first_exited.set()

    join_a, join_b = run_in_thread(scope_a), run_in_thread(scope_b)
    join_a()
    join_b()
    if first_out == "a":
        # a left while b was still inside: b keeps its objects, a's are gone.
        assert seen["b inside"]["b"] is my_metric
        assert seen["b inside"]["shared"] is my_metric
        assert "a" not in seen["b inside"]
    else:
        # b left first: a's objects are back in place (also the name both set).
        assert seen["a inside"]["a"] is my_loss
        assert seen["a inside"]["shared"] is my_loss
        assert "b" not in seen["a inside"]
    for name in ("a", "b", "shared"):
        assert name not in get_custom_objects()
    assert no_scope_left_open()


def test_one_scope_object_entered_twice_nested():
    scope = CustomObjectScope({"a": my_loss})
    with scope:
        with scope:
            assert get_custom_objects()["a"] is my_loss
        assert get_custom_objects()["a"] is my_loss
    assert "a" not in get_custom_objects()
    assert no_scope_left_open()


def test_one_scope_object_entered_in_two_threads_at_once():
    scope = CustomObjectScope({"a": my_loss})
    first_in, second_in, first_out = (threading.Event() for _ in range(3))
    seen = {}

    def first():
        with scope:
            first_in.set()
            assert second_in.wait(30)
        first_out.set()

    def second():
        assert first_in.wait(30)
        with scope:
            second_in.set()
            assert first_out.wait(30)
            seen["inside"] = get_custom_objects().get("a")

    join_first, join_second = run_in_thread(first), run_in_thread(second)
    join_first()
    join_second()
    assert seen["inside"] is my_loss
    assert "a" not in get_custom_objects()
    assert no_scope_left_open()


def test_many_threads_entering_and_leaving_scopes_leave_the_registry_as_it_was():
    get_custom_objects()["base"] = my_loss
    before = dict(get_custom_objects())
    threads = 8
    start = threading.Barrier(threads)
    problems = []

    def worker(number):
        mine = {f"t{number}": my_metric, "base": my_activation, "common": my_metric}
        start.wait(30)
        for round_ in range(200):
            with CustomObjectScope(mine, {"round": round_}):
                registry = get_custom_objects()
                if registry.get(f"t{number}") is not my_metric:
                    problems.append((number, round_, "own object missing inside the scope"))

    joins = [run_in_thread(lambda n=n: worker(n)) for n in range(threads)]
    for join in joins:
        join()
    assert problems == []
    assert get_custom_objects() == before
    assert no_scope_left_open()


def test_class_registered_inside_a_scope_survives_and_loads_later(tmp_path, monkeypatch):
    (tmp_path / "kutils_scope_plugin.py").write_text(
        textwrap.dedent(
            """
            import keras

            @keras.saving.register_keras_serializable(package="kutils_scope_plugin")
            class Doubler(keras.layers.Layer):
                def call(self, inputs):
                    return inputs * 2.0
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "kutils_scope_plugin", raising=False)
    with CustomObjectScope({"my_activation": my_activation}):
        plugin = importlib.import_module("kutils_scope_plugin")
    assert get_custom_objects()["kutils_scope_plugin>Doubler"] is plugin.Doubler
    assert "my_activation" not in get_custom_objects()

    model = keras.Sequential([keras.Input((3,)), plugin.Doubler()])
    path = tmp_path / "doubler.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[0], plugin.Doubler)
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), 2 * x)


def test_object_registered_outside_the_scopes_between_two_of_them_survives_both():
    outer = CustomObjectScope({"x": my_loss})
    inner = CustomObjectScope({"x": my_metric})
    with outer:
        get_custom_objects()["x"] = my_activation  # registered outside the scopes
        with inner:
            assert get_custom_objects()["x"] is my_metric
        assert get_custom_objects()["x"] is my_activation
    assert get_custom_objects()["x"] is my_activation
    assert no_scope_left_open()


def test_scopes_closed_out_of_order_restore_what_was_there_before_both():
    get_custom_objects()["x"] = my_loss
    first, second = CustomObjectScope({"x": my_metric}), CustomObjectScope({"x": my_activation})
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # out of order: second still shows its object
    assert get_custom_objects()["x"] is my_activation
    second.__exit__(None, None, None)
    assert get_custom_objects()["x"] is my_loss
    assert no_scope_left_open()


# -- the public keras.<module>.get functions ---------------------------------------------
# Keras 2's public getters consulted the registry: activations.get returned the function,
# regularizers/initializers/constraints/optimizers.get built the class with an empty
# config (``cls()``), losses.get/metrics.get returned the function or an instance.


class ThreeInitializer(keras.initializers.Initializer):
    def __call__(self, shape, dtype=None):
        return keras.ops.full(shape, 3.0, dtype=dtype)


class ClipConstraint(keras.constraints.Constraint):
    def __call__(self, weights):
        return keras.ops.clip(weights, -0.1, 0.1)


class MyLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)


class HalfSGD(keras.optimizers.SGD):
    def __init__(self, learning_rate=0.5, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)


PUBLIC = {
    **CUSTOM,
    "ThreeInitializer": ThreeInitializer,
    "ClipConstraint": ClipConstraint,
    "MyLoss": MyLoss,
    "HalfSGD": HalfSGD,
}


@contextlib.contextmanager
def registered(how):
    """Make PUBLIC findable by name: inside a kutils scope, or in get_custom_objects()."""
    if how == "scope":
        with custom_object_scope(PUBLIC):
            yield
    else:
        get_custom_objects().update(PUBLIC)  # the autouse fixture takes them out again
        yield


HOW = ["scope", "get_custom_objects"]


def _regression_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(16, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True).astype("float32")


@pytest.mark.parametrize("how", HOW)
def test_public_activations_get_finds_a_custom_function(how):
    x, _ = _regression_data()
    with registered(how):
        activation = keras.activations.get("my_activation")
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(2, activation=activation, use_bias=False)]
        )
    assert activation is my_activation
    kernel = model.layers[0].kernel.numpy()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), np.maximum(x @ kernel, 0) * 2.0, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("how", HOW)
def test_public_regularizers_get_builds_the_class_with_no_arguments(how):
    x, y = _regression_data()
    with registered(how):
        regularizer = keras.regularizers.get("MyRegularizer")
        assert regularizer is not keras.regularizers.get("MyRegularizer")  # a new one each time
    assert isinstance(regularizer, MyRegularizer)
    assert regularizer.strength == 0.01
    dense = keras.layers.Dense(1, kernel_regularizer=regularizer)
    model = keras.Sequential([keras.Input((3,)), dense])
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(x, y)
    (penalty,) = model.losses
    expected = 0.01 * np.abs(dense.kernel.numpy()).sum()
    assert float(penalty) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("how", HOW)
def test_public_initializers_get_builds_the_class_with_no_arguments(how):
    with registered(how):
        initializer = keras.initializers.get("ThreeInitializer")
    assert isinstance(initializer, ThreeInitializer)
    dense = keras.layers.Dense(2, kernel_initializer=initializer)
    dense.build((None, 4))
    np.testing.assert_array_equal(dense.kernel.numpy(), np.full((4, 2), 3.0))


@pytest.mark.parametrize("how", HOW)
def test_public_constraints_get_builds_the_class_with_no_arguments(how):
    x, y = _regression_data()
    with registered(how):
        constraint = keras.constraints.get("ClipConstraint")
    assert isinstance(constraint, ClipConstraint)
    dense = keras.layers.Dense(1, kernel_constraint=constraint)
    model = keras.Sequential([keras.Input((3,)), dense])
    model.compile(optimizer=keras.optimizers.SGD(10.0), loss="mse")
    model.train_on_batch(x, y * 100.0)  # a large step: the constraint must clip it
    kernel = dense.kernel.numpy()
    assert np.abs(kernel).max() == pytest.approx(0.1)


@pytest.mark.parametrize("how", HOW)
def test_public_losses_get_returns_the_function_or_an_instance_of_the_class(how):
    x, y = _regression_data()
    with registered(how):
        function = keras.losses.get("my_loss")
        instance = keras.losses.get("MyLoss")
    assert function is my_loss
    assert isinstance(instance, MyLoss)
    for loss in (function, instance):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss=loss)
        model.train_on_batch(x, y)
        expected = np.abs(y - model.predict(x, verbose=0)).mean()
        assert model.evaluate(x, y, verbose=0) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("how", HOW)
def test_public_metrics_get_finds_a_custom_function_and_class(how):
    x, y = _regression_data()
    with registered(how):
        metric = keras.metrics.get("my_metric")
        loss_as_metric = keras.metrics.get("MyLoss")
    assert metric is my_metric
    assert isinstance(loss_as_metric, MyLoss)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[metric])
    history = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert "my_metric" in history.history
    expected = np.square(y - model.predict(x, verbose=0)).mean()
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result["my_metric"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("how", HOW)
def test_public_optimizers_get_builds_the_class_with_no_arguments(how):
    x, y = _regression_data()
    with registered(how):
        optimizer = keras.optimizers.get("HalfSGD")
    assert isinstance(optimizer, HalfSGD)
    models = []
    for chosen in (optimizer, keras.optimizers.SGD(0.5)):
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="ones")]
        )
        model.compile(optimizer=chosen, loss="mse")
        model.train_on_batch(x, y + 1.0)
        models.append(model)
    # One step with the custom optimizer equals one step of SGD(learning_rate=0.5).
    np.testing.assert_allclose(
        models[0].layers[0].kernel.numpy(), models[1].layers[0].kernel.numpy(), rtol=1e-6
    )
    assert not np.allclose(models[0].layers[0].kernel.numpy(), 1.0)


GETTERS = [
    ("activations", "activation function"),
    ("regularizers", "regularizer"),
    ("initializers", "initializer"),
    ("constraints", "constraint"),
    ("losses", "loss"),
    ("metrics", "metric"),
    ("optimizers", "optimizer"),
]


@pytest.mark.parametrize(("module", "kind"), GETTERS)
def test_public_getters_raise_keras_error_for_unregistered_names(module, kind):
    getter = getattr(keras, module).get
    unknown = rf"Could not interpret {kind} identifier: NotThere"
    with custom_object_scope(PUBLIC), pytest.raises(ValueError, match=unknown):
        getter("NotThere")
    with pytest.raises(ValueError, match=rf"Could not interpret {kind} identifier: HalfSGD"):
        getter("HalfSGD")  # the scope is closed: its names are gone


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("activations", "relu"),
        ("regularizers", "l2"),
        ("initializers", "glorot_uniform"),
        ("constraints", "non_neg"),
        ("losses", "mse"),
        ("metrics", "mae"),
        ("optimizers", "adam"),
    ],
)
def test_public_getters_keep_builtin_names(module, name):
    import inspect

    get_custom_objects()  # installs the look-ups
    getter = getattr(keras, module).get
    keras_own = inspect.unwrap(getter)
    assert getter is not keras_own
    ours, theirs = getter(name), keras_own(name)
    assert type(ours) is type(theirs)
    if inspect.isfunction(theirs):
        assert ours is theirs


def test_public_getter_is_the_one_keras_layers_use():
    from keras.src import activations, losses

    get_custom_objects()
    assert keras.activations.get is activations.get
    assert keras.losses.get is losses.get


def test_public_getters_found_in_a_keras_2_script_via_get_custom_objects(tmp_path):
    # A fresh process: nothing installed before the script registers its objects.
    script = tmp_path / "keras2_style.py"
    script.write_text(
        textwrap.dedent(
            """
            import keras
            from kutils import get_custom_objects

            # Importing kutils changes nothing in Keras.
            assert not getattr(keras.regularizers.get, "_kutils_wraps", False)

            class Halve(keras.regularizers.Regularizer):
                def __call__(self, weights):
                    return 0.5 * keras.ops.sum(keras.ops.square(weights))

            def cube(x):
                return x ** 3

            get_custom_objects().update({"Halve": Halve, "cube": cube})
            dense = keras.layers.Dense(
                1,
                kernel_regularizer=keras.regularizers.get("Halve"),
                activation=keras.activations.get("cube"),
            )
            model = keras.Sequential([keras.Input((2,)), dense])
            model.compile(optimizer="sgd", loss="mse")
            model.train_on_batch(keras.ops.ones((4, 2)), keras.ops.ones((4, 1)))
            print(type(dense.kernel_regularizer).__name__, dense.activation.__name__)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["Halve", "cube"]
