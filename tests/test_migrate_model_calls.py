"""The migrate rules of ``kutils._migrate_model_calls``: save_weights/load_weights with a
name the weights-name rule cannot rename, and a flat metrics list for several outputs.

What the rewritten code computes is checked against Keras 2.3.1 in
tests/test_save_weights.py; here, what the rewrite writes and what it leaves.
"""

from __future__ import annotations

import pytest

from kutils import _migrate_rules as rules
from kutils._migrate_model_calls import ORDER_NOTE
from kutils.migrate import migrate_source

HEADER = "import keras\n"


def _migrate(body: str) -> tuple[str, list[tuple[int, str]]]:
    text, findings, _ = migrate_source(HEADER + body)
    assert migrate_source(text)[0] == text  # idempotent
    return text, findings


def test_the_rules_are_entries_of_the_rule_table():
    calls = rules.by_kind("weights-call")
    assert calls["save_weights"].keras3 == "kutils.save_weights"
    assert calls["load_weights"].keras3 == "kutils.load_weights"
    assert rules.by_kind("compile-metrics")["metrics"].keras3 == "metrics"


# -- save_weights / load_weights ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "options['file_weight']",  # the Keras-GAN scripts' name, built with % elsewhere
        "weights_path",
        "'saved_model/%s_weights.hdf5' % model_name",
        "os.path.join(folder, 'w.h5')",
        "'model.ckpt'",  # a literal Keras 3 refuses and the rename rule does not touch
        "'weights'",
    ],
)
def test_save_weights_with_a_name_not_renamed_goes_through_kutils(name):
    text, findings = _migrate(f"model.save_weights({name})\n")
    assert findings == []
    assert text == f"{HEADER}from kutils import save_weights\nsave_weights(model, {name})\n"


@pytest.mark.parametrize(
    "call",
    [
        "model.load_weights(args.weights)",
        "model.load_weights(path, by_name=True, skip_mismatch=True)",
        "model.load_weights('model.ckpt')",
    ],
)
def test_load_weights_with_a_name_keras_3_cannot_read_goes_through_kutils(call):
    text, findings = _migrate(call + "\n")
    assert findings == []
    expected = call.replace("model.load_weights(", "load_weights(model, ")
    assert text == f"{HEADER}from kutils import load_weights\n{expected}\n"


@pytest.mark.parametrize(
    "call",
    [
        "model.save_weights('w.weights.h5')",
        "model.save_weights(prefix + '.weights.h5')",
        "model.load_weights('w.weights.h5')",
        "model.load_weights('model.keras')",
        "model.load_weights('old.h5')",  # Keras 3 reads a Keras 2 .h5 file
        "model.save_weights(path, save_format='h5')",  # tf.keras's argument: not Keras 2's
        "model.save_weights(*names)",
        "kutils.save_weights(model, path)",
    ],
)
def test_calls_keras_3_or_kutils_already_handle_are_left(call):
    source = f"import kutils\n{call}\n"
    text, findings, _ = migrate_source(HEADER + source)
    assert text == HEADER + source
    assert not any("save_weights" in message for _, message in findings)


def test_a_literal_h5_name_is_left_to_the_project_wide_rename():
    # migrate_source sees one file: the name is reported, not rewritten here; the
    # command renames it to .weights.h5 when every save and load agrees.
    text, findings = _migrate("model.save_weights('w.h5')\n")
    assert text == HEADER + "model.save_weights('w.h5')\n"
    assert [line for line, _ in findings] == [2]


def test_a_models_own_save_weights_method_is_left():
    source = (
        "class Trainer:\n"
        "    def save_weights(self, path):\n"
        "        pass\n"
        "trainer = Trainer()\n"
        "trainer.save_weights(path)\n"
    )
    assert _migrate(source) == (HEADER + source, [])


def test_self_save_weights_in_a_model_subclass_goes_through_kutils():
    # A keras.Model subclass calling self.save_weights is a Keras model: Keras 3 refuses
    # the name there too.
    source = (
        "class Net(keras.Model):\n"
        "    def checkpoint(self, path):\n"
        "        self.save_weights(path)\n"
    )
    text, findings = _migrate(source)
    assert findings == []
    assert text.splitlines()[-1] == "        save_weights(self, path)"


def test_the_kutils_prefix_is_used_when_the_bare_name_is_taken():
    source = "def save_weights():\n    pass\nmodel.save_weights(path)\n"
    text, findings = _migrate(source)
    assert findings == []
    assert text.splitlines()[1] == "import kutils"
    assert text.splitlines()[-1] == "kutils.save_weights(model, path)"


def test_a_receiver_with_brackets_and_keywords_is_kept():
    text, _ = _migrate("models[i].save_weights(filepath=path, overwrite=False)\n")
    assert text.splitlines()[-1] == "save_weights(models[i], filepath=path, overwrite=False)"


# -- compile(loss=[...], metrics=[...]) ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "metrics"),
    [
        (
            "model.compile(loss=['mse', 'mae'], optimizer='sgd', metrics=['accuracy'])\n",
            "metrics=[['accuracy'], ['accuracy']]",
        ),
        (
            "model.compile(loss=('mse', 'mae', 'mse'), metrics=['acc', f1])\n",
            "metrics=[['acc', f1], ['acc', f1], ['acc', f1]]",
        ),
        (
            "model.compile(loss={'valid': 'mse', 'label': 'mae'}, metrics=['accuracy'])\n",
            "metrics={'valid': ['accuracy'], 'label': ['accuracy']}",
        ),
        (
            "def build():\n"
            "    losses = ['binary_crossentropy', 'sparse_categorical_crossentropy']\n"
            "    model.compile(loss=losses,\n"
            "        metrics=['accuracy'])\n",
            "metrics=[['accuracy'], ['accuracy']]",
        ),
    ],
)
def test_a_flat_metrics_list_is_given_per_output(body, metrics):
    text, findings = _migrate(body)
    line = next(n for n, x in enumerate(text.splitlines(), 1) if "metrics=" in x)
    assert findings == [(line, ORDER_NOTE)]  # the values' order in a list differs
    assert metrics in text
    assert text.count("\n") == (HEADER + body).count("\n")


@pytest.mark.parametrize(
    "body",
    [
        "model.compile(loss='mse', metrics=['mae'])\n",  # one loss: any output count
        "model.compile(loss=['mse'], metrics=['mae'])\n",
        "model.compile(loss=['mse', 'mae'], metrics=[['mae'], ['acc']])\n",
        "model.compile(loss=['mse', 'mae'], metrics={'a': ['mae']})\n",
        "model.compile(loss=['mse', 'mae'], metrics=my_metrics)\n",
        "model.compile(loss=['mse', 'mae'], metrics=['mae', None])\n",
        "model.compile(loss=['mse', 'mae'], metrics=[])\n",
        "model.compile(loss=['mse', 'mae'])\n",
    ],
)
def test_metrics_already_per_output_or_for_one_output_are_left(body):
    assert _migrate(body) == (HEADER + body, [])


@pytest.mark.parametrize(
    "body",
    [
        "def f(losses):\n    model.compile(loss=losses, metrics=['acc'])\n",
        "losses = ['mse']\nlosses.append('mae')\nmodel.compile(loss=losses, metrics=['acc'])\n",
        "losses = ['mse', 'mae']\nlosses = ['mse']\nmodel.compile(loss=losses, metrics=['a'])\n",
        "for losses in options:\n    model.compile(loss=losses, metrics=['acc'])\n",
    ],
)
def test_a_loss_name_of_unknown_length_is_reported_with_the_fix(body):
    text, findings = _migrate(body)
    assert text == HEADER + body
    line = (
        (HEADER + body)
        .splitlines()
        .index(next(x for x in (HEADER + body).splitlines() if "compile" in x))
    )
    assert [(number, "metrics=[[...], [...]]" in m) for number, m in findings] == [(line + 1, True)]


# -- compile(opt, loss, ['acc']): the arguments after loss by position --------------------

POSITIONAL = rules.by_kind("compile-positional")["compile"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "model.compile('sgd', 'mse', ['mae'])\n",
            "model.compile('sgd', 'mse', metrics=['mae'])\n",
        ),
        (
            "model.compile(opt, 'mse', ['mae'], [0.5])  # tuned\n",
            "model.compile(opt, 'mse', metrics=['mae'], loss_weights=[0.5])  # tuned\n",
        ),
        (
            "model.compile(\n    opt,\n    'mse',\n    my_metrics,\n)\n",
            "model.compile(\n    opt,\n    'mse',\n    metrics=my_metrics,\n)\n",
        ),
        (
            "model.compile(opt, 'mse', None, loss_weights=[1.0])\n",
            "model.compile(opt, 'mse', metrics=None, loss_weights=[1.0])\n",
        ),
    ],
)
def test_metrics_and_loss_weights_by_position_get_keras_2s_names(body, expected):
    # Keras 3's compile takes loss_weights third: a metrics list there is read as weights.
    text, findings = _migrate(body)
    assert text == HEADER + expected
    assert findings == []


def test_positional_metrics_of_several_outputs_are_given_per_output():
    text, findings = _migrate("model.compile(opt, ['mse', 'mae'], ['acc'])\n")
    assert text == HEADER + "model.compile(opt, ['mse', 'mae'], metrics=[['acc'], ['acc']])\n"
    assert findings == [(2, ORDER_NOTE)]


def test_a_changed_default_optimizer_named_with_positional_metrics_is_rewritten():
    # compile('adadelta', loss, [...]): a model's compile, whatever the loss is.
    text, findings = _migrate("model.compile('adadelta', loss_fn, ['acc'])\n")
    assert text == HEADER + (
        "model.compile(keras.optimizers.Adadelta(learning_rate=1.0), loss_fn, metrics=['acc'])\n"
    )
    # As with loss=loss_fn: a loss name whose number of outputs is unknown is reported.
    assert [m.endswith("the loss 'loss_fn' is for") for _, m in findings] == [True]


def test_positional_arguments_through_kutils_compile_keep_keras_2s_order():
    body = "d.trainable = False\ngan.compile(opt, 'mse', ['acc'], None, 'temporal')\n"
    text, findings = _migrate(body)
    # kutils.compile takes Keras 2's positions, so nothing to report.
    assert text.splitlines()[-1] == "compile(gan, opt, 'mse', ['acc'], None, 'temporal')"
    assert findings == []
    text, findings = _migrate("d.trainable = False\ngan.compile(opt, 'mse', ['acc'])\n")
    assert text.splitlines()[-1] == "compile(gan, opt, 'mse', metrics=['acc'])"


@pytest.mark.parametrize(
    "body",
    [
        "model.compile(opt, 'mse', ['acc'], None, 'temporal')\n",  # sample_weight_mode
        "class M(keras.Model):\n    def build_it(self):\n        self.compile(o, 'mse', ['a'])\n",
        "class M(keras.Model):\n    def compile(self, o, l, m):\n        super().compile(o, l, m)\n",
    ],
)
def test_positional_arguments_migrate_cannot_name_are_reported(body):
    text, findings = _migrate(body)
    assert text == HEADER + body
    assert [message for _, message in findings] == [POSITIONAL.message]


@pytest.mark.parametrize(
    "body",
    [
        "model.compile(opt, 'mse')\n",
        "model.compile(*args)\n",
        "model.compile(opt, 'mse', *rest)\n",
        "pattern.compile(a, b, c, d, e, f, g, h)\n",  # more than Keras 2's compile takes
        "import kutils\nkutils.compile(model, opt, 'mse', metrics=['acc'])\n",  # migrated
    ],
)
def test_calls_that_are_not_keras_2s_positional_compile_are_left(body):
    assert _migrate(body) == (HEADER + body, [])


def test_a_file_without_keras_keeps_its_compile_calls():
    body = "import re\nre.compile('a', 'b', ['c'])\n"
    assert migrate_source(body) == (body, [], 0)
