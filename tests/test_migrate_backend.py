"""kutils migrate's ``keras.backend`` rewrites against the real Keras 2.3.1.

Each case of ``tests/goldens/migrate_backend/cases.json`` (recorded by
``tests/oracle/record_migrate_backend.py`` under Keras 2.3.1) calls one ``keras.backend``
function on fixed inputs. The test migrates the snippet, checks that the call was
rewritten and nothing is left to report, runs the result on Keras 3 eagerly, inside a
traced function whose batch size is unknown, and (``LAYER``) in a Lambda layer of a
functional model, and compares values, shapes and dtypes with Keras 2.3.1's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kutils.migrate import migrate_source

FOLDER = Path(__file__).parent / "goldens" / "migrate_backend"
GOLDEN = json.loads((FOLDER / "cases.json").read_text())
CASES = GOLDEN["cases"]
LAYER_SIZES = GOLDEN["layer_sizes"]
RANDOM = sorted(name for name in CASES if name.startswith("random_"))
EXACT = sorted(name for name in CASES if name not in RANDOM)

# Where Keras 3 computes something else than Keras 2.3.1 did, by design (docs/migrate.md):
# the mean of integers is a float in Keras 3 (Keras 2 truncated it to an integer).
# Its value here is the exact mean, computed by numpy from the case's inputs.
DIFFERS = {"mean_int": lambda i: ("float32", np.mean(i, axis=1, dtype="float64").tolist())}
# The static shape of a traced tensor has None for its batch size, in Keras 2 as in 3.
NOT_TRACED = {"int_shape"}
# Cases run in a Lambda layer on a symbolic input (a single argument, batch axis kept).
LAYER = [
    "batch_dot_self",
    "batch_flatten",
    "clip",
    "argmax_axis",
    "expand_dims_default",
    "l2_normalize_last",
    "map_fn",
    "mean_negative_keepdims",
    "permute_dimensions",
    "relu_all",
    "reshape_dynamic",
    "softmax_axis",
    "sqrt_negative",
    "sum_negative",
]


ERRORS = GOLDEN["errors"]


def _migrated(name: str) -> dict:
    snippet = CASES[name]["snippet"] if name in CASES else ERRORS[name]["snippet"]
    text, findings, edits = migrate_source(snippet)
    assert findings == [], findings
    assert edits > 0
    body = text.split("def f(", 1)[1]
    assert "K." not in body, body
    scope: dict = {}
    exec(compile(text, f"<{name}>", "exec"), scope)
    return scope


def _check(name: str, value: object, arguments: tuple) -> None:
    import keras

    if keras.ops.is_tensor(value):
        value = keras.ops.convert_to_numpy(value)
    array = np.asarray(value)
    recorded = CASES[name]["result"]
    dtype, values = recorded["dtype"], recorded["values"]
    if name in DIFFERS:
        dtype, values = DIFFERS[name](*arguments)
    assert str(array.dtype) == dtype, (name, array.dtype, dtype)
    assert list(array.shape) == recorded["shape"], (name, array.shape)
    if array.dtype.kind == "f":
        np.testing.assert_allclose(array, values, rtol=1e-5, atol=1e-6, err_msg=name)
    else:
        assert array.tolist() == values, name


@pytest.mark.parametrize("name", EXACT)
def test_rewritten_call_computes_what_keras_2_3_1_computed(name):
    scope = _migrated(name)
    _check(name, scope["f"](*scope["arguments"]), scope["arguments"])


@pytest.mark.parametrize("name", sorted(set(EXACT) - NOT_TRACED))
def test_rewritten_call_computes_it_traced_with_an_unknown_batch_size(name):
    import tensorflow as tf

    scope = _migrated(name)
    arguments = scope["arguments"]
    signature = [tf.TensorSpec([None, *a.shape[1:]], a.dtype) for a in arguments]
    traced = tf.function(scope["f"], input_signature=signature)
    _check(name, traced(*arguments), arguments)


@pytest.mark.parametrize("name", LAYER)
def test_rewritten_call_computes_it_in_a_lambda_layer(name):
    import keras

    scope = _migrated(name)
    (x,) = scope["arguments"]
    inputs = keras.Input(x.shape[1:], dtype=str(x.dtype))
    model = keras.Model(inputs, keras.layers.Lambda(scope["f"])(inputs))
    _check(name, model(x), (x,))


@pytest.mark.parametrize("name", RANDOM)
def test_rewritten_random_draws_the_keras_2_3_1_distribution(name):
    scope = _migrated(name)
    recorded = CASES[name]["result"]
    array = np.asarray(scope["f"]())
    assert str(array.dtype) == recorded["dtype"]
    assert list(array.shape) == recorded["shape"]
    mean, std, low, high = recorded["statistics"]
    sample = array.astype("float64")
    # 20,000 draws: the sample mean is within 4 standard errors of the other generator's.
    tolerance = 4 * std / np.sqrt(sample.size) * np.sqrt(2)
    assert abs(sample.mean() - mean) < tolerance, (sample.mean(), mean)
    assert abs(sample.std() - std) < 0.03 * std, (sample.std(), std)
    if "uniform" in name:
        assert abs(sample.min() - low) < 0.01 * (high - low), (sample.min(), low)
        assert abs(sample.max() - high) < 0.01 * (high - low), (sample.max(), high)


def test_random_with_a_seed_draws_the_same_numbers_twice():
    first = np.asarray(_migrated("random_normal")["f"]())
    assert np.array_equal(first, np.asarray(_migrated("random_normal")["f"]()))


def test_mean_of_integers_is_the_documented_difference():
    # Keras 2.3.1 divided the int32 sum by the count in int32 (rounding towards zero);
    # Keras 3 gives the float32 mean. The recording shows it: the true means are not ints.
    scope = _migrated("mean_int")
    (i,) = scope["arguments"]
    recorded = CASES["mean_int"]["result"]
    assert recorded["dtype"] == "int32"
    assert recorded["values"] == np.trunc(i.sum(axis=1) / i.shape[1]).astype(int).tolist()
    assert not np.allclose(recorded["values"], i.mean(axis=1))


def test_rewrites_keep_the_keras_2_defaults_explicit():
    text, findings, _ = migrate_source(
        "from keras import backend as K\n"
        "y = K.concatenate([a, b])\n"
        "z = K.argmax(y)\n"
        "w = K.mean(y, axis=-1)\n"
        "f = Lambda(K.l2_normalize)\n"
        "e = K.epsilon()\n"
    )
    assert findings == []
    assert text == (
        "from keras import backend as K\n"
        "import keras\n"
        "import kutils\n"
        "y = kutils.backend.concatenate([a, b])\n"
        "z = kutils.backend.argmax(y)\n"
        "w = keras.ops.mean(y, axis=-1)\n"
        "f = Lambda(kutils.backend.l2_normalize)\n"
        "e = K.epsilon()\n"
    )


def test_backend_rewrite_uses_the_files_keras_name():
    text, _, _ = migrate_source("import keras\nimport keras.backend as K\ny = K.sum(x)\n")
    assert text == "import keras\nimport keras.backend as K\ny = keras.ops.sum(x)\n"
    text, _, _ = migrate_source("import keras as k2\ny = k2.backend.square(x)\n")
    assert text == "import keras as k2\ny = k2.ops.square(x)\n"


def test_functions_without_a_proven_rewrite_are_still_reported():
    text, findings, _ = migrate_source("from keras import backend as K\ny = K.reverse(a, 1)\n")
    assert "K.reverse" in text
    assert [m for _, m in findings] == [
        "keras.backend.reverse is not in Keras 3: use keras.ops.flip"
    ]


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_rewritten_call_refuses_what_keras_2_3_1_refused(name):
    scope = _migrated(name)
    with pytest.raises(ValueError) as info:  # every error recorded is a ValueError
        scope["f"](*scope["arguments"])
    assert type(info.value).__name__ == ERRORS[name]["error"]
    assert "Received: x.shape=" in str(info.value)


def test_batch_dot_of_keras_2_2_4_capsule_code_fails_as_in_keras_2_3_1_when_traced():
    # The failure comes while the layer is traced (static shapes), as in Keras 2.3.1,
    # before a tensor of Keras 2.3.1's larger intermediate shape is ever allocated.
    import tensorflow as tf

    scope = _migrated("batch_dot_keras_2_2_4_capsules")
    arguments = scope["arguments"]
    signature = [tf.TensorSpec([None, *a.shape[1:]], a.dtype) for a in arguments]
    with pytest.raises(ValueError, match="lengths must be equal"):
        tf.function(scope["f"], input_signature=signature).get_concrete_function()


def test_numpy_layer_sizes_are_wrapped_in_int_and_build_the_keras_2_3_1_model():
    text, findings, _ = migrate_source(LAYER_SIZES["snippet"])
    assert findings == []
    assert "Embedding(int(np.max(tokens) + 1), int(np.int64(2)), " in text
    assert "Dense(int(np.prod(shape) * 2), " in text
    scope: dict = {}
    exec(compile(text, "<layer_sizes>", "exec"), scope)
    for key, recorded in LAYER_SIZES["result"].items():
        value = np.asarray(scope["result"][key])
        assert list(value.shape) == recorded["shape"], key
        np.testing.assert_allclose(value, recorded["values"], rtol=1e-6, err_msg=key)


def test_keras_3_refuses_the_numpy_layer_sizes_left_unchanged():
    scope: dict = {}
    with pytest.raises(ValueError, match="input_dim"):
        exec(compile(LAYER_SIZES["snippet"], "<layer_sizes>", "exec"), scope)


@pytest.mark.parametrize(
    "source",
    [
        "Dense(np.sqrt(units))",  # a float: Keras 2.3.1 refused it too
        "Dense(len(x))",
        "Dense(np.prod(s) / 2)",
        "Dense(*np.prod(s))",
        "Embedding(n, np.float32(d))",
    ],
)
def test_layer_sizes_that_are_not_numpy_integers_are_left_alone(source):
    text = f"import numpy as np\nfrom keras.layers import Dense, Embedding\nl = {source}\n"
    assert migrate_source(text)[0] == text


def test_numpy_layer_size_rewrite_is_idempotent():
    text, _, _ = migrate_source(LAYER_SIZES["snippet"])
    assert migrate_source(text)[0] == text


def test_tf_keras_backend_is_rewritten_too():
    text, findings, _ = migrate_source(
        "import tensorflow as tf\ny = tf.keras.backend.sum(x, axis=-1)\nz = tf.keras.backend.clip(y, 0, 1)\n"
    )
    assert findings == []
    assert "y = keras.ops.sum(x, axis=-1)\nz = kutils.backend.clip(y, 0, 1)\n" in text
    assert "import keras\nimport kutils\n" in text


@pytest.mark.parametrize(
    ("line", "fix"),
    [
        ("keras = 3\ny = K.sum(x)\n", "use keras.ops.sum"),
        ("def kutils(): pass\ny = K.clip(x, 0, 1)\n", "use kutils.backend.clip"),
    ],
)
def test_backend_call_is_reported_when_the_file_binds_the_name_the_rewrite_needs(line, fix):
    source = "from keras import backend as K\n" + line
    text, findings, _ = migrate_source(source)
    assert text == source
    assert any(fix in message for _, message in findings), findings


# A kutils.backend case, with keras.ops's namesake put in its place, computes something
# else than Keras 2.3.1 did (or refuses the Keras 2 arguments): why each helper exists.
NEAR_MISSES = [
    "argmax_default",
    "clip_keywords",
    "clip_none",
    "concatenate_default",
    "cumsum_default",
    "expand_dims_default",
    "hard_sigmoid",
    "maximum_keywords",
    "relu_alpha",
    "sqrt_negative",
    "zeros_like_int",
]


@pytest.mark.parametrize("name", NEAR_MISSES)
def test_keras_ops_namesake_of_a_helper_would_change_the_result(name):
    text, _, _ = migrate_source(CASES[name]["snippet"])
    assert "kutils.backend." in text
    scope: dict = {}
    near_miss = "import keras\n" + text.replace("kutils.backend.", "keras.ops.")
    exec(compile(near_miss, f"<{name}>", "exec"), scope)
    try:
        value = scope["f"](*scope["arguments"])
    except (TypeError, ValueError):
        return
    with pytest.raises(AssertionError):
        _check(name, value, scope["arguments"])
