"""kutils migrate's rewrite rules against the real Keras 2.3.1.

Each case of ``tests/goldens/migrate_rules/cases.json`` (recorded by
``tests/oracle/record_migrate_rules.py`` under Keras 2.3.1) is a Keras 2 snippet and what
Keras 2.3.1 computed with it. The test migrates the snippet, runs the result on Keras 3
and compares values, shapes and dtypes; the migration must be complete (nothing left to
report but what the case expects), idempotent and leave every other line as it was.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import pytest

from kutils.migrate import migrate_source

FOLDER = Path(__file__).parent / "goldens" / "migrate_rules"
GOLDEN = json.loads((FOLDER / "cases.json").read_text())
CASES = GOLDEN["cases"]
# Lines each case's migration must change (a substring of the new line), and the findings
# it may leave (a substring of the message).
EXPECTED = {
    "module_paths": (
        ["from keras.layers import Dense", "from keras import layers as merge"],
        ["reject weights="],
    ),
    "preprocessing": (["from kutils.preprocessing import", "from kutils import preprocessing"], []),
    # compile("sgd", loss, metrics=[...]) with loss a loop variable: as with loss=loss,
    # migrate cannot tell the number of outputs the flat metrics list is for.
    "loss_aliases": (
        ["mean_squared_error as mse", "metrics.mean_squared_error"],
        ["cannot tell how many outputs the loss 'loss' is for"],
    ),
    "optimizer_decay": (
        [
            "InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.05), momentum=0.5",
            "SGD(learning_rate=keras.optimizers.schedules.InverseTimeDecay(0.01, decay_steps=1, decay_rate=0.5), nesterov",
            "optimizers.SGD(learning_rate=0.2)",
            "import keras",
        ],
        [],
    ),
    "callback_mode": (
        [
            'monitor="val_acc", patience=2, mode="max"',
            'monitor="val_score", patience=2, mode="min"',
            'monitor="fmeasure_score", save_best_only=True, save_weights_only=True, mode="max"',
            'monitor="val_error", save_best_only=True, save_weights_only=True, mode="min"',
        ],
        [],
    ),
    "predict_classes": (["predict_classes(model, x)", "predict_proba(model, x"], []),
    "load_model": (["from kutils import load_model, model_from_json"], []),
    "numpy_aliases": (["dtype=float", "astype(int)", "astype(bool)", "dtype=str"], []),
    "layer_sizes_by_name": (
        [
            "Dense(int(self.units))",
            "RepeatVector(int(steps))",
            "LSTM(units=int(self.units))",
            "RNN(LSTMCell(int(steps)))",
            "Embedding(int(num_classes), int(self.codes))",
            'Dense(int(num_classes), activation="softmax")',
        ],
        [],
    ),
    "iterator_next": (
        ["first_x, first_y = next(flow)", "return [next(stream) for _ in range(3)]"],
        [],
    ),
    "tensorboard_ignored_arguments": (
        [
            'TensorBoard(log_dir="logs", histogram_freq=1, update_freq="epoch")',
            'TensorBoard("logs", 0, write_graph=False, write_images=True)',
            "only_ignored = TensorBoard()",
            "                        histogram_freq=2)",
        ],
        [],
    ),
    "stateful_batch_size": (
        [
            "    model.add(keras.Input(shape=(3, 2), batch_size=2))",
            "reset_states(model)",
            "reset_states(model.layers[0], states=initial)",
            "carried = predict(model, seq[:2], batch_size=2)",
            "from kutils import predict, reset_states",
            "import keras",
        ],
        [],
    ),
    "stateful_batch_input_shape": (
        [
            "model = Sequential([keras.Input(batch_shape=(2, 3, 2)), SimpleRNN(3, stateful=True,",
            "reset_states(model.layers[1])",
        ],
        [],
    ),
}


def _migrated(name: str) -> tuple[str, list[tuple[int, str]]]:
    text, findings, _ = migrate_source(CASES[name]["snippet"])
    return text, findings


def test_every_case_has_its_expectations():
    assert set(CASES) == set(EXPECTED)


# Keras 3 warns about Keras 2's input_shape= on a Sequential model's first layer (it works).
@pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_rewritten_snippet_computes_what_keras_2_3_1_computed(name):
    text, _ = _migrated(name)
    scope: dict = {"folder": str(FOLDER)}
    exec(compile(text, f"<{name}>", "exec"), scope)
    result = scope["result"]
    expected = CASES[name]["result"]
    assert sorted(result) == sorted(expected)
    for key, recorded in expected.items():
        value = np.asarray(result[key])
        if key == "proba" or value.dtype.kind == "f":
            value_dtype = np.dtype(recorded["dtype"])
            assert value.dtype == value_dtype, (key, value.dtype, recorded["dtype"])
        elif recorded["dtype"].startswith("<U"):
            assert value.dtype.kind == "U", key
        else:
            assert value.dtype == np.dtype(recorded["dtype"]), (key, value.dtype)
        assert list(value.shape) == recorded["shape"], key
        values = recorded["values"]
        if value.dtype.kind == "c":
            np.testing.assert_allclose(value.real, values[0])
            np.testing.assert_allclose(value.imag, values[1])
        elif value.dtype.kind == "f":
            # Keras 2.3.1 itself gave one of these (see REPEAT in the recording script).
            outcomes = [values, *recorded.get("alternatives", [])]
            close = [np.allclose(value, seen, rtol=1e-6, atol=1e-6) for seen in outcomes]
            assert any(close), (key, value.tolist(), outcomes)
        else:
            assert value.tolist() == values, key


@pytest.mark.parametrize("name", sorted(CASES))
def test_migration_rewrites_only_the_rule_spans_and_is_idempotent(name):
    original = CASES[name]["snippet"]
    text, findings = _migrated(name)
    wanted, allowed = EXPECTED[name]
    assert all(any(a in message for a in allowed) for _, message in findings), findings
    diff = [
        line[1:]
        for line in difflib.ndiff(original.splitlines(), text.splitlines())
        if line.startswith("+ ")
    ]
    for fragment in wanted:
        assert any(fragment in line for line in diff), (fragment, diff)
    # Every line the migration changed holds a rewritten span: the others are byte-exact.
    removed = [
        line[2:]
        for line in difflib.ndiff(original.splitlines(), text.splitlines())
        if line.startswith("- ")
    ]
    assert len(removed) <= len(diff)
    again, _, edits = migrate_source(text)
    assert again == text and edits == 0


def test_the_decay_golden_differs_from_training_without_decay():
    # Otherwise the decay case would prove nothing about the schedule.
    result = CASES["optimizer_decay"]["result"]
    assert not np.allclose(result["momentum"]["values"], result["no_decay"]["values"], atol=1e-3)


def test_keras_3_refuses_the_layer_sizes_named_by_the_golden_left_unchanged():
    # Otherwise the layer_sizes_by_name case would prove nothing about the rewrite.
    scope: dict = {}
    snippet = CASES["layer_sizes_by_name"]["snippet"]
    with pytest.raises(ValueError, match=r"expected a positive integer\. Received: units=4"):
        exec(compile(snippet, "<layer_sizes_by_name>", "exec"), scope)


def test_decay_schedule_without_lr_uses_the_optimizer_default():
    text, findings, _ = migrate_source(
        "from keras.optimizers import Adam, SGD\na = Adam(decay=0.2)\nb = SGD(decay=1e-3)\n"
    )
    assert "Adam(learning_rate=keras.optimizers.schedules.InverseTimeDecay(0.001," in text
    assert "SGD(learning_rate=keras.optimizers.schedules.InverseTimeDecay(0.01," in text
    assert text.splitlines()[1] == "import keras"
    assert findings == []


def test_decay_next_to_a_comment_is_reported_not_rewritten():
    source = "from keras.optimizers import SGD\nopt = SGD(lr=0.1,  # fast\n          decay=0.01)\n"
    text, findings, _ = migrate_source(source)
    assert "decay=0.01" in text
    assert any("decay=" in message for _, message in findings)


def test_module_import_with_a_name_keras_3_lacks_is_reported_not_rewritten():
    source = "from keras.layers.core import Dense, MaxoutDense\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert [line for line, _ in findings] == [1]


def test_module_alias_used_for_a_name_keras_3_lacks_is_reported():
    source = "from keras.layers import core\nlayer = core.MaxoutDense(3)\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert findings


def test_callback_with_a_computed_monitor_is_reported():
    source = "from keras.callbacks import ModelCheckpoint\nname = 'val_acc'\ncb = ModelCheckpoint('m.keras', monitor=name)\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert any(line == 3 and "mode=" in message for line, message in findings)


def test_callback_monitoring_the_loss_is_left_alone():
    source = "from keras.callbacks import EarlyStopping\ncb = EarlyStopping(monitor='val_loss')\n"
    assert migrate_source(source)[:2] == (source, [])


def test_numpy_alias_kept_when_the_file_rebinds_the_builtin():
    source = "import numpy as np\nfloat = 3\nx = np.float(2)\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert any(line == 3 for line, _ in findings)


def test_layer_weights_argument_is_reported():
    source = "from keras.layers import Embedding\ne = Embedding(10, 3, weights=[m])\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert any(line == 2 and "set_weights" in message for line, message in findings)


@pytest.mark.parametrize(
    "name",
    ['"w{}.h5".format(i)', 'f"w{i}.h5"', '"w%d.h5" % i', 'prefix + ".hdf5"'],
)
def test_weights_file_name_built_at_run_time_goes_through_kutils_save_weights(name):
    # Keras 2 wrote an HDF5 weights file at any name; kutils.save_weights still does.
    source = f"import keras\nmodel.save_weights({name})\n"
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text == f"import keras\nfrom kutils import save_weights\nsave_weights(model, {name})\n"


@pytest.mark.parametrize(
    "call",
    ['model.save("m{}.h5".format(i))', 'ModelCheckpoint(f"w{i}.h5", save_weights_only=True)'],
)
def test_model_file_name_built_at_run_time_is_still_reported(call):
    source = f"import keras\nfrom keras.callbacks import ModelCheckpoint\n{call}\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert [line for line, message in findings if "built at run time" in message] == [3]


def test_weights_file_name_built_with_the_keras_3_suffix_is_not_reported():
    source = 'import keras\nmodel.save_weights(prefix + ".weights.h5")\n'
    assert migrate_source(source)[:2] == (source, [])


def test_add_loss_outside_a_layer_is_rewritten_and_inside_is_not():
    source = (
        "import keras\n"
        "model.add_loss(keras.ops.mean(x))\n"
        "class Penalty(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        self.add_loss(keras.ops.sum(x))\n"
        "        return x\n"
    )
    text, findings, _ = migrate_source(source)
    assert findings == []
    assert text.splitlines()[2:4] == ["add_loss(model, keras.ops.mean(x))", source.splitlines()[2]]
    assert "        self.add_loss(keras.ops.sum(x))" in text.splitlines()


def test_load_model_reached_through_keras_becomes_kutils_load_model():
    source = 'import keras\nmodel = keras.models.load_model("m.h5", compile=False)\n'
    text, findings, _ = migrate_source(source)
    assert text == 'import keras\nimport kutils\nmodel = kutils.load_model("m.h5", compile=False)\n'
    assert findings == []


def test_load_model_imported_beside_other_names_is_split_off():
    source = "from keras.models import Sequential, load_model\n"
    text, _, _ = migrate_source(source)
    assert text == "from kutils import load_model\nfrom keras.models import Sequential\n"


def test_predict_classes_rewrite_in_a_file_without_keras():
    text, findings, _ = migrate_source(
        "def label(model, x):\n    return model.predict_classes(x)\n"
    )
    assert "return predict_classes(model, x)" in text
    assert text.startswith("from kutils import predict_classes\n")
    assert findings == []


def test_scikit_learn_wrapper_is_reported_with_its_successor():
    source = "from keras.wrappers.scikit_learn import KerasClassifier\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert any("scikeras" in message for _, message in findings)


@pytest.mark.parametrize(
    "call", ["K.function([a], [b])", "K.gradients(loss, w)", "K.get_session()"]
)
def test_backend_graph_functions_are_reported(call):
    source = f"from keras import backend as K\nf = {call}\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert [line for line, _ in findings] == [2]


def test_decay_schedule_uses_the_files_own_name_for_keras():
    source = "import tensorflow.keras as tk\nopt = tk.optimizers.SGD(lr=0.1, decay=0.01)\n"
    text, findings, _ = migrate_source(source)
    assert text == (
        "import tensorflow.keras as tk\nopt = tk.optimizers.SGD("
        "learning_rate=tk.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=1, "
        "decay_rate=0.01))\n"
    )
    assert findings == []


def test_callback_with_keyword_arguments_unpacked_is_reported():
    source = "from keras.callbacks import EarlyStopping\ncb = EarlyStopping(**options)\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert [line for line, _ in findings] == [2]


@pytest.mark.parametrize(
    ("call", "mode"),
    [
        ("ModelCheckpoint('m.keras', monitor='fmeasure_val')", "max"),
        ("EarlyStopping(monitor='fmeasure_val')", "min"),
        ("ReduceLROnPlateau(monitor='val_top_k_categorical_accuracy')", "max"),
        ("ModelCheckpoint('m.keras', 'val_acc')", "max"),
        ("EarlyStopping(monitor='val_mae', mode='auto')", "min"),
    ],
)
def test_callback_mode_is_written_as_keras_2_3_1_inferred_it(call, mode):
    source = f"from keras.callbacks import {call.split('(')[0]}\ncb = {call}\n"
    text, findings, _ = migrate_source(source)
    assert f"mode='{mode}'" in text.splitlines()[1]
    assert findings == []


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            "TensorBoard(log_dir='a',\n    batch_size=4, histogram_freq=1)",
            "TensorBoard(log_dir='a',\n    histogram_freq=1)",
        ),
        ("TensorBoard(batch_size=3, write_grads=True,\n)", "TensorBoard()"),
        ("TensorBoard('a', write_grads=True,\n    embeddings_data=x)", "TensorBoard('a')"),
        (
            "TensorBoard(batch_size=3, log_dir='x', write_grads=True, update_freq='batch')",
            "TensorBoard(log_dir='x', update_freq='batch')",
        ),
        (
            "TensorBoard('x', 1, 32, True, False, True, 0, None, None, None, 'batch')",
            "TensorBoard('x', 1, write_graph=True, write_images=True, update_freq='batch')",
        ),
        ("TensorBoard('x', 1, update_freq='batch')", "TensorBoard('x', 1, update_freq='batch')"),
    ],
)
def test_tensorboard_arguments_keras_2_ignored_are_removed(call, expected):
    source = f"from keras.callbacks import TensorBoard\ntb = {call}\n"
    text, findings, _ = migrate_source(source)
    assert text == f"from keras.callbacks import TensorBoard\ntb = {expected}\n"
    assert findings == []
    assert migrate_source(text)[0] == text


@pytest.mark.parametrize(
    "call",
    [
        "TensorBoard('x', batch_size=3,  # why\n    write_graph=False)",
        "TensorBoard('x', batch_size=3, **settings)",
        "TensorBoard(*arguments, batch_size=3)",
    ],
)
def test_tensorboard_call_that_cannot_be_read_is_reported_not_rewritten(call):
    source = f"from keras.callbacks import TensorBoard\ntb = {call}\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert [line for line, _ in findings] == [2]
    assert "batch_size= under TensorFlow 2" in findings[0][1]


def test_tensorboard_positional_arguments_are_reported_when_they_cannot_be_named():
    source = "from keras.callbacks import TensorBoard\ntb = TensorBoard('x', 0, *more)\n"
    text, findings, _ = migrate_source(source)
    assert text == source
    assert any("write the arguments after the second as keywords" in m for _, m in findings)


def test_tf_keras_tensorboard_is_left_alone():
    # tf.keras's TensorBoard had other parameters (embeddings_freq worked there).
    source = "import tensorflow as tf\ntb = tf.keras.callbacks.TensorBoard('x', 0, True, embeddings_freq=1)\n"
    assert migrate_source(source)[0] == source


def test_keras_3_refuses_the_tensorboard_arguments_and_misplaces_the_positional_ones():
    import keras

    with pytest.raises(TypeError, match="batch_size"):
        keras.callbacks.TensorBoard(log_dir="logs", batch_size=4)
    # Keras 2.3.1's TensorBoard("logs", 0, 8, False, True, True) had write_graph=False.
    misplaced = keras.callbacks.TensorBoard("logs", 0, 8, False)
    assert misplaced.write_graph == 8


_FLOW = "from keras.preprocessing.image import ImageDataGenerator\n"


@pytest.mark.parametrize(
    "body",
    [
        "def f(flow):\n    return flow.next()\n",  # a parameter: could be anything
        "flow = make()\nbatch = flow.next()\n",
        "flow = ImageDataGenerator().flow(x)\nflow = other\nbatch = flow.next()\n",
        "gen = Other()\nflow = gen.flow(x)\nbatch = flow.next()\n",
        "flow = ImageDataGenerator().flow(x)\nbatch = flow.next(1)\n",
        "flow = ImageDataGenerator().flow(x)\ndef next(i): pass\nbatch = flow.next()\n",
        "for flow in flows:\n    batch = flow.next()\n",
    ],
)
def test_next_on_what_may_not_be_a_keras_2_flow_is_left_alone(body):
    text, _, _ = migrate_source(_FLOW + body)
    assert text.split("\n", 1)[1] == body  # the import alone is rewritten


def test_next_on_a_flow_from_directory_in_a_generator_function_is_rewritten():
    source = _FLOW + (
        "def batches(folder):\n"
        "    datagen = ImageDataGenerator(rescale=1 / 255.)\n"
        "    it = datagen.flow_from_directory(folder)\n"
        "    while True:\n"
        "        x, y = it.next()\n"
        "        yield x, y\n"
    )
    text, findings, _ = migrate_source(source)
    assert "        x, y = next(it)\n" in text
    assert findings == []


def test_keras_3_flow_has_no_next_method():
    import numpy as np

    from kutils.preprocessing import ImageDataGenerator

    flow = ImageDataGenerator().flow(np.zeros((2, 3, 3, 1)), batch_size=1)
    assert not hasattr(flow, "next")
    assert next(flow).shape == (1, 3, 3, 1)


@pytest.mark.parametrize("name", ["stateful_batch_size", "stateful_batch_input_shape"])
def test_the_stateful_goldens_show_the_state_carried_and_reset(name):
    # Otherwise the stateful cases would prove nothing about the fixed batch or the reset.
    result = {key: np.array(value["values"]) for key, value in CASES[name]["result"].items()}
    assert not np.allclose(result["first"], result["carried"], atol=1e-3)
    np.testing.assert_array_equal(result["after_reset"], result["first"])
    assert result["batch_shape"].tolist()[0] == 2
    if "partly" in result:  # one layer reset, the other not: a third result
        assert not np.allclose(result["partly"], result["first"], atol=1e-3)
        assert not np.allclose(result["partly"], result["carried"], atol=1e-3)
