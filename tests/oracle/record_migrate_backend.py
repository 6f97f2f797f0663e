"""Record what Keras 2.3.1's ``keras.backend`` functions compute, for ``kutils migrate``.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_migrate_backend.py [outdir]

Each case below is a Keras 2 function ``f`` of fixed numpy inputs that calls one
``keras.backend`` function with one combination of arguments (axis, keepdims, negative
axes, dtypes). This script runs each under Keras 2.3.1 and writes ``cases.json`` into
``tests/goldens/migrate_backend/`` (or ``outdir``): the snippet and the value, dtype and
shape of its result. The random functions draw other numbers in Keras 3 for the same
seed, so their cases record the shape, dtype and statistics of a large sample.
``tests/test_migrate_backend.py`` migrates each snippet, runs it on Keras 3 (eagerly, in
a traced function with an unknown batch size and, for the ``LAYER`` cases, in a Lambda
layer of a functional model) and compares.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

_SETUP = """
import numpy as np
from keras import backend as K
rng = np.random.RandomState(7)
a = rng.normal(0, 1, (2, 3, 4)).astype("float32")
b = rng.normal(0, 1, (2, 3, 4)).astype("float32")
c = rng.normal(0, 1, (2, 4, 5)).astype("float32")
m = rng.normal(0, 1, (3, 4)).astype("float32")
n = rng.normal(0, 1, (4, 5)).astype("float32")
p = rng.uniform(0.1, 3, (2, 3)).astype("float32")
i = rng.randint(-5, 6, (2, 3)).astype("int32")
h = np.array([[0.5, 1.5, 2.5], [-0.5, -1.5, 3.49]], "float32")
t = np.eye(3, dtype="float32")[[0, 2]]
l = np.array([0, 2], "int32")
q = (p / 3.1).astype("float32")
s = (p / p.sum(axis=1, keepdims=True)).astype("float32")
"""

# name -> (the arguments of f, its body's expression)
CASES = {
    "mean_all": ("a", "K.mean(a)"),
    "mean_axis": ("a", "K.mean(a, axis=1)"),
    "mean_negative_keepdims": ("a", "K.mean(a, axis=-1, keepdims=True)"),
    "mean_tuple_axis": ("a", "K.mean(a, axis=(0, 2))"),
    "mean_int": ("i", "K.mean(i, axis=1)"),
    "sum_negative": ("a", "K.sum(a, axis=-2)"),
    "sum_positional_keepdims": ("a", "K.sum(a, 1, True)"),
    "sum_int": ("i", "K.sum(i)"),
    "square": ("a", "K.square(a)"),
    "sqrt_negative": ("a", "K.sqrt(a)"),
    "sqrt_positive": ("p", "K.sqrt(p)"),
    "abs": ("a", "K.abs(a)"),
    "exp": ("a", "K.exp(a)"),
    "log": ("p", "K.log(p)"),
    "maximum": ("a, b", "K.maximum(a, b)"),
    "minimum_scalar": ("a", "K.minimum(a, 0.5)"),
    "maximum_keywords": ("a, b", "K.maximum(x=a, y=b)"),
    "concatenate_default": ("a, b", "K.concatenate([a, b])"),
    "concatenate_axis": ("a, b", "K.concatenate([a, b], axis=1)"),
    "concatenate_zero": ("a, b", "K.concatenate([a, b], 0)"),
    "concatenate_negative": ("a, b", "K.concatenate((a, b), axis=-2)"),
    "flatten": ("a", "K.flatten(a)"),
    "batch_flatten": ("a", "K.batch_flatten(a)"),
    "l2_normalize_last": ("a", "K.l2_normalize(a, axis=-1)"),
    "l2_normalize_all": ("a", "K.l2_normalize(a)"),
    "l2_normalize_zero": ("a", "K.l2_normalize(a * 0.0, axis=1)"),
    "int_shape": ("a", "np.array(K.int_shape(a))"),
    "shape": ("a", "K.shape(a)"),
    "reshape": ("a", "K.reshape(a, (6, 4))"),
    "reshape_dynamic": ("a", "K.reshape(a, (K.shape(a)[0], -1))"),
    "reshape_keyword": ("a", "K.reshape(a, shape=(-1, 2))"),
    "expand_dims_default": ("a", "K.expand_dims(a)"),
    "expand_dims_axis": ("a", "K.expand_dims(a, 1)"),
    "expand_dims_negative": ("a", "K.expand_dims(a, axis=-3)"),
    "squeeze": ("a", "K.squeeze(K.expand_dims(a, 1), 1)"),
    "squeeze_negative": ("a", "K.squeeze(K.expand_dims(a), axis=-1)"),
    "dot_2d": ("m, n", "K.dot(m, n)"),
    "dot_3d_2d": ("a, n", "K.dot(a, n)"),
    "dot_3d_3d": ("a, c", "K.dot(a, c)"),
    "transpose_2d": ("m", "K.transpose(m)"),
    "transpose_3d": ("a", "K.transpose(a)"),
    "permute_dimensions": ("a", "K.permute_dimensions(a, (0, 2, 1))"),
    "permute_dimensions_list": ("a", "K.permute_dimensions(a, pattern=[2, 0, 1])"),
    "clip": ("a", "K.clip(a, -0.5, 0.5)"),
    "clip_max_below_min": ("a", "K.clip(a, 0.5, 0.2)"),
    "clip_none": ("a", "K.clip(a, None, 0.3)"),
    "clip_keywords": ("a", "K.clip(a, min_value=-0.1, max_value=0.1)"),
    "stack": ("a, b", "K.stack([a, b])"),
    "stack_negative": ("a, b", "K.stack([a, b], axis=-1)"),
    "cast_to_int": ("a", "K.cast(a * 3, 'int32')"),
    "cast_to_float": ("i", "K.cast(i, dtype='float32')"),
    "cast_to_half": ("a", "K.cast(a, 'float16')"),
    "ones_like": ("a", "K.ones_like(a)"),
    "zeros_like_int": ("i", "K.zeros_like(i)"),
    "ones_like_dtype": ("a", "K.ones_like(a, dtype='int32')"),
    "argmax_default": ("a", "K.argmax(a)"),
    "argmax_axis": ("a", "K.argmax(a, axis=1)"),
    "argmax_zero": ("a", "K.argmax(a, 0)"),
    "argmin_negative": ("a", "K.argmin(a, -2)"),
    "max_all": ("a", "K.max(a)"),
    "max_axis": ("a", "K.max(a, axis=1)"),
    "max_keepdims": ("a", "K.max(a, -1, True)"),
    "min_tuple": ("a", "K.min(a, axis=(1, 2))"),
    "min_int": ("i", "K.min(i, 1)"),
    "pow_square": ("a", "K.pow(a, 2)"),
    "pow_half": ("p", "K.pow(p, 0.5)"),
    "pow_keyword": ("a", "K.pow(a, a=3)"),
    "sigmoid": ("a", "K.sigmoid(a)"),
    "softmax": ("a", "K.softmax(a)"),
    "softmax_axis": ("a", "K.softmax(a, axis=1)"),
    "relu": ("a", "K.relu(a)"),
    "relu_alpha": ("a", "K.relu(a, alpha=0.1)"),
    "relu_max_value": ("a", "K.relu(a, max_value=0.5)"),
    "relu_six": ("a", "K.relu(a * 10, max_value=6)"),
    "relu_all": ("a", "K.relu(a, 0.2, 1.0, 0.3)"),
    "relu_threshold": ("a", "K.relu(a, threshold=0.5)"),
    "tanh": ("a", "K.tanh(a)"),
    "std": ("a", "K.std(a, axis=1)"),
    "var_keepdims": ("a", "K.var(a, -1, True)"),
    "prod": ("a", "K.prod(a, axis=2)"),
    "elu": ("a", "K.elu(a)"),
    "elu_alpha": ("a", "K.elu(a, 0.5)"),
    "softplus": ("a", "K.softplus(a)"),
    "sign": ("a", "K.sign(a)"),
    "gather": ("m", "K.gather(m, [2, 0])"),
    "repeat_elements": ("a", "K.repeat_elements(a, 2, axis=1)"),
    "round": ("h", "K.round(h)"),
    "logsumexp_axis": ("a", "K.logsumexp(a, axis=1)"),
    "logsumexp_keepdims": ("a", "K.logsumexp(a, -1, True)"),
    "any": ("a", "K.any(K.greater(a, 1.0), axis=1)"),
    "all_keepdims": ("a", "K.all(K.greater(a, -1.0), -1, True)"),
    "softsign": ("a", "K.softsign(a)"),
    "hard_sigmoid": ("a", "K.hard_sigmoid(a * 3)"),
    "categorical_crossentropy": ("t, s", "K.categorical_crossentropy(t, s)"),
    "categorical_crossentropy_unnormalized": ("t, p", "K.categorical_crossentropy(t, p)"),
    "categorical_crossentropy_logits": (
        "t, p",
        "K.categorical_crossentropy(t, p, from_logits=True)",
    ),
    "binary_crossentropy": ("t, q", "K.binary_crossentropy(t, q)"),
    "binary_crossentropy_logits": ("t, p", "K.binary_crossentropy(t, p - 1.5, from_logits=True)"),
    "sparse_categorical_crossentropy": ("l, s", "K.sparse_categorical_crossentropy(l, s)"),
    "sparse_categorical_crossentropy_logits": (
        "l, p",
        "K.sparse_categorical_crossentropy(l, p, from_logits=True)",
    ),
    "tile": ("m", "K.tile(m, (2, 1))"),
    "tile_list": ("a", "K.tile(a, n=[1, 2, 1])"),
    "one_hot": ("l", "K.one_hot(l, 4)"),
    "one_hot_matrix": ("i", "K.one_hot(i + 5, num_classes=11)"),
    "equal": ("i", "K.equal(i, 0)"),
    "not_equal": ("i", "K.not_equal(i, 1)"),
    "greater": ("a, b", "K.greater(a, b)"),
    "greater_equal": ("a, b", "K.greater_equal(x=a, y=b)"),
    "less": ("a, b", "K.less(a, b)"),
    "less_equal": ("a", "K.less_equal(a, 0.0)"),
    "cumsum_default": ("a", "K.cumsum(a)"),
    "cumsum_negative": ("a", "K.cumsum(a, axis=-1)"),
    "cumsum_int": ("i", "K.cumsum(i, 1)"),
    "batch_dot_default": ("a, c", "K.batch_dot(a, c)"),
    "batch_dot_int_axes": ("a, b", "K.batch_dot(a, b, axes=1)"),
    "batch_dot_self": ("a", "K.batch_dot(a, a, axes=(2, 2))"),
    "batch_dot_negative_axes": ("a, c", "K.batch_dot(a, c, axes=[-1, -2])"),
    "batch_dot_matrices": ("m", "K.batch_dot(m, m * 2.0)"),
    "batch_dot_matrix_first": ("a, c", "K.batch_dot(a[:, 0], c, axes=(1, 1))"),
    "batch_dot_matrix_second": ("a, c", "K.batch_dot(c, a[:, 0], (1, 1))"),
    "batch_dot_rank_3_4": (
        "a, c",
        "K.batch_dot(a, K.stack([c, c * 2.0, c - 1.0], axis=1), [2, 2])",
    ),
    "batch_dot_rank_4_3": ("a, c", "K.batch_dot(K.stack([c, c + 1.0], axis=3), a, axes=(1, 2))"),
    "map_fn": ("a", "K.map_fn(lambda r: K.sum(r, axis=0) * 2.0, a)"),
    "map_fn_dtype": ("a", "K.map_fn(lambda r: K.cast(K.argmax(r), 'int32'), a, dtype='int32')"),
    "map_fn_keywords": ("a", "K.map_fn(fn=lambda r: K.batch_dot(r, r, [1, 1]), elems=a, name='m')"),
    "random_normal": ("", "K.random_normal((200, 100), mean=1.0, stddev=2.0, seed=5)"),
    "random_normal_default": ("", "K.random_normal(shape=(200, 100))"),
    "random_normal_double": ("", "K.random_normal((200, 100), 0.5, 1.5, dtype='float64')"),
    "random_uniform": ("", "K.random_uniform((200, 100), -2.0, 3.0, seed=1)"),
    "random_uniform_default": ("", "K.random_uniform((200, 100))"),
}

# numpy integers as layer sizes (Keras 3 refuses them; migrate wraps them in int()):
# a snippet leaving a dict ``result`` of arrays.
LAYER_SIZES = """
import numpy as np
from keras.layers import Dense, Embedding, Flatten, Input
from keras.models import Model
shape = (2, 3)
tokens = np.array([[1, 4, 2], [0, 3, 4]])
inputs = Input((3,))
embed = Embedding(np.max(tokens) + 1, np.int64(2), embeddings_initializer="glorot_uniform")
dense = Dense(np.prod(shape) * 2, kernel_initializer="glorot_uniform")
model = Model(inputs, dense(Flatten()(embed(inputs))))
weights = [np.arange(w.size, dtype="float32").reshape(w.shape) / w.size for w in model.get_weights()]
model.set_weights(weights)
result = {
    "embeddings": np.array(embed.get_weights()[0].shape),
    "kernel": np.array(dense.get_weights()[0].shape),
    "bias": np.array(dense.get_weights()[1].shape),
    "out": model.predict(tokens),
}
"""

# Calls Keras 2.3.1 refused: name -> (the arguments of f, its body's expression); the
# type of the exception is recorded.
ERRORS = {
    "batch_dot_lengths_differ": ("a, b", "K.batch_dot(a, b, axes=(2, 1))"),
    "batch_dot_batch_axis": ("a, b", "K.batch_dot(a, b, axes=0)"),
    "batch_dot_rank_1": ("a", "K.batch_dot(a[0, 0], a[0, 0])"),
    "batch_dot_two_axes": ("a, b", "K.batch_dot(a, b, axes=[(1, 2), (1, 2)])"),
    # A capsule layer's routing step written for Keras 2.2.4's batch_dot: Keras 2.3.1
    # sums other axes, and the third product's lengths differ.
    "batch_dot_keras_2_2_4_capsules": (
        "a, c",
        "K.batch_dot(K.batch_dot(a, K.stack([c, c], 1), [2, 2]), K.stack([c, c], 1), [2, 3])",
    ),
}

# Cases whose result is a sample: recorded by its statistics.
RANDOM = tuple(name for name in CASES if name.startswith("random_"))


def snippet(name):
    args, expression = CASES[name] if name in CASES else ERRORS[name]
    return f"{_SETUP}\ndef f({args}):\n    return {expression}\n\narguments = ({args}{',' if args else ''})\n"


def statistics(sample):
    """What two generators of one distribution agree on."""
    sample = np.asarray(sample, dtype="float64")
    return [sample.mean(), sample.std(), sample.min(), sample.max()]


def run(name):
    import keras.backend as K

    scope = {}
    exec(compile(snippet(name), f"<{name}>", "exec"), scope)
    tensors = [K.constant(v, dtype=str(v.dtype)) for v in scope["arguments"]]
    out = scope["f"](*tensors)
    value = K.eval(out) if K.is_tensor(out) else np.asarray(out)
    return np.asarray(value)


def describe(name, value):
    record = {"dtype": str(value.dtype), "shape": list(value.shape)}
    if name in RANDOM:
        record["statistics"] = statistics(value)
    else:
        record["values"] = value.tolist()
    return record


def main():
    outdir = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.path.join(os.path.dirname(__file__), "..", "goldens", "migrate_backend")
    )
    os.makedirs(outdir, exist_ok=True)
    warnings.simplefilter("ignore")
    import keras

    assert keras.__version__ == "2.3.1", keras.__version__
    cases = {}
    for name in CASES:
        cases[name] = {"snippet": snippet(name), "result": describe(name, run(name))}
    errors = {}
    for name in ERRORS:
        try:
            run(name)
        except Exception as error:  # the type is what is recorded
            errors[name] = {"snippet": snippet(name), "error": type(error).__name__}
        else:
            raise AssertionError(f"Keras 2.3.1 accepted {name}")
    scope = {}
    exec(compile(LAYER_SIZES, "<layer_sizes>", "exec"), scope)
    layers = {key: describe(key, np.asarray(v)) for key, v in sorted(scope["result"].items())}
    golden = {
        "cases": cases,
        "errors": errors,
        "layer_sizes": {"snippet": LAYER_SIZES, "result": layers},
    }
    with open(os.path.join(outdir, "cases.json"), "w") as handle:
        json.dump({"keras": keras.__version__, **golden}, handle, indent=1, sort_keys=True)
    print(len(cases), "cases recorded")


if __name__ == "__main__":
    main()
