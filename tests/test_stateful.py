"""kutils.reset_states: Keras 2.3.1's reset_states of models, recurrent layers and metrics.

Its values against Keras 2.3.1 (a model's reset, a layer's reset with given states, a
fixed batch from the migrated layer arguments) are checked in
``tests/test_migrate_rules.py``; here, the cases Keras 2.3.1 could not record (a nested
model) and the errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from kutils import reset_states

SEQUENCES = np.random.RandomState(0).normal(0, 1, (2, 3, 2)).astype("float32")


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


def _stateful_lstm(keras, stateful=True):
    inputs = keras.Input(batch_shape=(2, 3, 2))
    return keras.Model(inputs, keras.layers.LSTM(3, stateful=stateful)(inputs))


def test_nested_model_with_a_stateful_layer_is_reset(keras):
    # Keras 2 counted a nested model as stateful when one of its layers was, and reset it.
    inner = _stateful_lstm(keras)
    outer = keras.Sequential([keras.Input(batch_shape=(2, 3, 2)), inner, keras.layers.Dense(1)])
    first = outer.predict(SEQUENCES, verbose=0)
    carried = outer.predict(SEQUENCES, verbose=0)
    assert not np.allclose(first, carried)
    reset_states(outer)
    np.testing.assert_allclose(outer.predict(SEQUENCES, verbose=0), first, rtol=1e-6)


def test_model_without_stateful_layers_is_left_as_it_is(keras):
    model = _stateful_lstm(keras, stateful=False)
    before = model.predict(SEQUENCES, verbose=0)
    reset_states(model)
    np.testing.assert_allclose(model.predict(SEQUENCES, verbose=0), before)


def test_layer_that_is_not_stateful_raises_as_keras_2_did(keras):
    model = _stateful_lstm(keras, stateful=False)
    with pytest.raises(AttributeError, match="Layer must be stateful"):
        reset_states(model.layers[1])


def test_bidirectional_stateful_layer_is_reset_by_its_own_method(keras):
    inputs = keras.Input(batch_shape=(2, 3, 2))
    layer = keras.layers.Bidirectional(keras.layers.SimpleRNN(2, stateful=True))
    model = keras.Model(inputs, layer(inputs))
    first = model.predict(SEQUENCES, verbose=0)
    model.predict(SEQUENCES, verbose=0)
    reset_states(model)
    np.testing.assert_allclose(model.predict(SEQUENCES, verbose=0), first, rtol=1e-6)


@pytest.mark.parametrize(
    ("states", "message"),
    [
        ([np.zeros((2, 3), "float32")], "expects 2 states, but it received 1"),
        ([np.zeros((2, 3), "float32"), np.zeros((1, 3), "float32")], r"State 1 .*\(1, 3\)"),
    ],
)
def test_states_of_the_wrong_number_or_shape_are_refused(keras, states, message):
    model = _stateful_lstm(keras)
    model.predict(SEQUENCES, verbose=0)
    with pytest.raises(ValueError, match=message):
        reset_states(model.layers[1], states)


def test_states_for_a_layer_not_built_yet_say_to_build_it_first(keras):
    layer = keras.layers.LSTM(3, stateful=True)
    with pytest.raises(ValueError, match="not built yet"):
        reset_states(layer, [np.zeros((2, 3), "float32")] * 2)


def test_states_given_to_a_model_are_refused(keras):
    with pytest.raises(TypeError, match=r"takes no states.*Received: states="):
        reset_states(_stateful_lstm(keras), [np.zeros((2, 3))])


def test_metric_is_reset_to_zero(keras):
    metric = keras.metrics.Mean()
    metric.update_state([1.0, 3.0])
    reset_states(metric)
    assert float(metric.result()) == 0.0
    metric.update_state([5.0])
    assert float(metric.result()) == 5.0


def test_object_without_states_is_named_in_the_error():
    with pytest.raises(AttributeError, match=r"Received: obj=.*of type list"):
        reset_states([1, 2])
