"""print_summary: the Keras 2.3.1 text, byte for byte, for Keras 3 models.

The expected tables are written out by hand from the Keras 2.3.1 layout rules (column
ends at 29/55/65 for sequential-like models and 32/53/65/98 otherwise, each field cut
to its column, the character before each field a space). Every line ends with ``|`` in
the test source so the trailing spaces are visible; the ``|`` is not part of the text.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import nested_model
from keras import Input, layers

from kutils import print_summary


def _expected(text: str) -> list[str]:
    lines = text.strip("\n").splitlines()
    assert all(line.endswith("|") for line in lines), "every golden line ends with |"
    return [line[:-1] for line in lines]


def _summary_lines(model, **kwargs) -> list[str]:
    lines: list[str] = []
    print_summary(model, print_fn=lines.append, **kwargs)
    return lines


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


def sequential_model():
    """The Keras 2 documentation example."""
    return keras.Sequential(
        [Input((784,)), layers.Dense(32, name="dense_1"), layers.Dense(10, name="dense_2")],
        name="sequential_1",
    )


def functional_model():
    """Two inputs, two outputs and a layer shared by both inputs."""
    a = Input((3,), name="input_a")
    b = Input((3,), name="input_b")
    shared = layers.Dense(4, name="shared_dense")
    shared_a, shared_b = shared(a), shared(b)
    merged = layers.Concatenate(name="concatenate_1")([shared_a, shared_b])
    main_output = layers.Dense(1, name="main_output")(merged)
    aux_output = layers.Dense(2, name="aux_output")(shared_b)
    return keras.Model([a, b], [main_output, aux_output], name="two_towers")


class TwoLayerNet(keras.Model):
    def __init__(self):
        super().__init__(name="two_layer_net")
        self.hidden = layers.Dense(8, name="hidden")
        self.norm = layers.BatchNormalization(name="norm")
        self.out = layers.Dense(2, name="out")

    def call(self, x, training=False):
        return self.out(self.norm(self.hidden(x), training=training))


def subclassed_model():
    model = TwoLayerNet()
    model(np.zeros((2, 5), dtype="float32"))  # built by calling it on data
    return model


def frozen_model():
    """A frozen layer and BatchNormalization: their weights are non-trainable."""
    return keras.Sequential(
        [
            Input((10,)),
            layers.Dense(16, name="frozen_dense", trainable=False),
            layers.BatchNormalization(name="batch_norm"),
            layers.Dense(1, name="output"),
        ],
        name="frozen",
    )


def multi_output_layer_model():
    """A chain whose LSTM returns three tensors: a list of shapes, cut to its column."""
    sequence = Input((5, 3), name="sequence")
    outputs = layers.LSTM(4, return_state=True, name="lstm")(sequence)
    return keras.Model(sequence, outputs, name="lstm_states")


SEQUENTIAL = r"""
Model: "sequential_1"|
_________________________________________________________________|
Layer (type)                 Output Shape              Param #   |
=================================================================|
dense_1 (Dense)              (None, 32)                25120     |
_________________________________________________________________|
dense_2 (Dense)              (None, 10)                330       |
=================================================================|
Total params: 25,450|
Trainable params: 25,450|
Non-trainable params: 0|
_________________________________________________________________|
"""

FUNCTIONAL = r"""
Model: "two_towers"|
__________________________________________________________________________________________________|
Layer (type)                    Output Shape         Param #     Connected to                     |
==================================================================================================|
input_a (InputLayer)            (None, 3)            0                                            |
__________________________________________________________________________________________________|
input_b (InputLayer)            (None, 3)            0                                            |
__________________________________________________________________________________________________|
shared_dense (Dense)            (None, 4)            16          input_a[0][0]                    |
                                                                 input_b[0][0]                    |
__________________________________________________________________________________________________|
concatenate_1 (Concatenate)     (None, 8)            0           shared_dense[0][0]               |
                                                                 shared_dense[1][0]               |
__________________________________________________________________________________________________|
main_output (Dense)             (None, 1)            9           concatenate_1[0][0]              |
__________________________________________________________________________________________________|
aux_output (Dense)              (None, 2)            10          shared_dense[1][0]               |
==================================================================================================|
Total params: 35|
Trainable params: 35|
Non-trainable params: 0|
__________________________________________________________________________________________________|
"""

SUBCLASSED = r"""
Model: "two_layer_net"|
_________________________________________________________________|
Layer (type)                 Output Shape              Param #   |
=================================================================|
hidden (Dense)               multiple                  48        |
_________________________________________________________________|
norm (BatchNormalization)    multiple                  32        |
_________________________________________________________________|
out (Dense)                  multiple                  18        |
=================================================================|
Total params: 98|
Trainable params: 82|
Non-trainable params: 16|
_________________________________________________________________|
"""

NESTED = r"""
Model: "nested"|
_________________________________________________________________|
Layer (type)                 Output Shape              Param #   |
=================================================================|
features (InputLayer)        (None, 6)                 0         |
_________________________________________________________________|
encoder (Sequential)         (None, 4)                 28        |
_________________________________________________________________|
head (Model)                 (None, 1)                 5         |
=================================================================|
Total params: 33|
Trainable params: 33|
Non-trainable params: 0|
_________________________________________________________________|
"""

FROZEN = r"""
Model: "frozen"|
_________________________________________________________________|
Layer (type)                 Output Shape              Param #   |
=================================================================|
frozen_dense (Dense)         (None, 16)                176       |
_________________________________________________________________|
batch_norm (BatchNormalizati (None, 16)                64        |
_________________________________________________________________|
output (Dense)               (None, 1)                 17        |
=================================================================|
Total params: 257|
Trainable params: 49|
Non-trainable params: 208|
_________________________________________________________________|
"""

MULTI_OUTPUT_LAYER = r"""
Model: "lstm_states"|
_________________________________________________________________|
Layer (type)                 Output Shape              Param #   |
=================================================================|
sequence (InputLayer)        (None, 5, 3)              0         |
_________________________________________________________________|
lstm (LSTM)                  [(None, 4), (None, 4), (N 128       |
=================================================================|
Total params: 128|
Trainable params: 128|
Non-trainable params: 0|
_________________________________________________________________|
"""

GOLDEN = [
    pytest.param(sequential_model, SEQUENTIAL, id="sequential"),
    pytest.param(functional_model, FUNCTIONAL, id="functional-shared-multi-io"),
    pytest.param(subclassed_model, SUBCLASSED, id="subclassed"),
    pytest.param(nested_model, NESTED, id="nested"),
    pytest.param(frozen_model, FROZEN, id="frozen-and-batchnorm"),
    pytest.param(multi_output_layer_model, MULTI_OUTPUT_LAYER, id="multi-output-layer"),
]


@pytest.mark.parametrize(("make_model", "golden"), GOLDEN)
def test_summary_matches_keras_2_text_byte_for_byte(make_model, golden):
    assert "\n".join(_summary_lines(make_model())) == "\n".join(_expected(golden))


@pytest.mark.parametrize("make_model", [p.values[0] for p in GOLDEN], ids=[p.id for p in GOLDEN])
def test_total_params_equal_count_params(make_model):
    model = make_model()
    lines = _summary_lines(model)
    total = int(lines[-4].removeprefix("Total params: ").replace(",", ""))
    trainable = int(lines[-3].removeprefix("Trainable params: ").replace(",", ""))
    non_trainable = int(lines[-2].removeprefix("Non-trainable params: ").replace(",", ""))
    assert total == model.count_params()
    assert trainable + non_trainable == total
    assert non_trainable == sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)


def test_freezing_after_build_moves_params_to_non_trainable():
    model = sequential_model()
    model.get_layer("dense_1").trainable = False
    lines = _summary_lines(model)
    assert lines[-3:-1] == ["Trainable params: 330", "Non-trainable params: 25,120"]


def test_print_fn_is_called_once_per_line_without_newlines():
    calls: list[str] = []
    print_summary(sequential_model(), print_fn=calls.append)
    assert len(calls) == 12
    assert not any("\n" in line for line in calls)


def test_prints_to_stdout_by_default(capsys):
    print_summary(sequential_model())
    assert capsys.readouterr().out == "\n".join(_expected(SEQUENTIAL)) + "\n"


def test_line_length_sets_rules_and_scales_fractional_positions():
    lines = _summary_lines(sequential_model(), line_length=80, positions=[0.5, 0.8, 1.0])
    assert lines[1:5] + lines[-1:] == _expected(
        r"""
________________________________________________________________________________|
Layer (type)                            Output Shape            Param #         |
================================================================================|
dense_1 (Dense)                         (None, 32)              25120           |
________________________________________________________________________________|
"""
    )


def test_absolute_positions_are_columns_and_line_length_only_sets_rules():
    lines = _summary_lines(sequential_model(), line_length=50, positions=[20, 35, 45])
    assert lines[1:5] == _expected(
        r"""
__________________________________________________|
Layer (type)        Output Shape   Param #   |
==================================================|
dense_1 (Dense)     (None, 32)     25120     |
"""
    )


def test_long_fields_are_cut_with_a_space_before_the_next_field():
    inputs = Input((3,), name="input_with_a_rather_long_name_indeed")
    outputs = layers.Dense(2, name="dense")(inputs)
    model = keras.Model(inputs, outputs, name="long")
    rows = _summary_lines(model, positions=[20, 30, 40])
    assert rows[4] == "input_with_a_rather (None, 3) 0         "
    assert rows[6] == "dense (Dense)       (None, 2) 8         "


def test_too_few_positions_for_the_connected_to_column_raise_index_error():
    with pytest.raises(
        IndexError, match=r"4 for this model.*Received: positions=\[0.5, 0.8, 1.0\]"
    ):
        print_summary(functional_model(), positions=[0.5, 0.8, 1.0], print_fn=lambda _: None)


def test_layer_called_on_different_shapes_shows_multiple():
    shared = layers.Dense(2, name="shared")
    flat = Input((3,), name="flat")
    steps = Input((4, 3), name="steps")
    model = keras.Model([flat, steps], [shared(flat), shared(steps)], name="two_shapes")
    row = next(line for line in _summary_lines(model) if line.startswith("shared "))
    assert row.split()[:3] == ["shared", "(Dense)", "multiple"]


def test_functional_chain_is_sequential_like_and_lists_input_layer():
    inputs = Input((3,), name="x")
    model = keras.Model(inputs, layers.Dense(2, name="y")(inputs), name="chain")
    lines = _summary_lines(model)
    assert len(lines[1]) == 65
    assert lines[4] == "x (InputLayer)               (None, 3)                 0         "


def test_unbuilt_model_raises_the_keras_2_error():
    model = keras.Sequential([layers.Dense(2)], name="unbuilt")
    with pytest.raises(ValueError, match=r"This model has not yet been built\. .*'unbuilt'"):
        print_summary(model)


def test_not_a_model_raises_value_error():
    with pytest.raises(ValueError, match="Received: model of type Dense"):
        print_summary(layers.Dense(2))


def test_subclassed_model_with_unbuilt_layers_raises_runtime_error():
    model = TwoLayerNet()
    with pytest.warns(UserWarning, match="does not have a `build\\(\\)` method"):
        model.build((None, 5))  # Keras 3 marks the model built but never runs call()
    with pytest.raises(RuntimeError, match=r"count_params` on hidden.*model\(x\)"):
        print_summary(model, print_fn=lambda _: None)


def test_training_keeps_the_summary_and_batchnorm_stats_non_trainable():
    model = frozen_model()
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 10)), rng.normal(size=(64, 1))
    before = model.get_layer("batch_norm").moving_mean.numpy().copy()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert not np.allclose(model.get_layer("batch_norm").moving_mean.numpy(), before)
    assert _summary_lines(model) == _expected(FROZEN)


def test_sequential_built_with_add_lists_each_layer_once():
    model = keras.Sequential(name="sequential_1")
    model.add(Input((784,)))
    model.add(layers.Dense(32, name="dense_1"))
    model.add(layers.Dense(10, name="dense_2"))
    assert _summary_lines(model) == _expected(SEQUENTIAL)
