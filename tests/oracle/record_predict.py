"""Record what Keras 2.3.1's ``Model.predict`` computes from the inputs Keras 3 reads otherwise.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_predict.py [outdir]

Each snippet below is Keras 2 code calling ``model.predict`` on a small model with fixed
weights: two inputs (an integer label of shape ``(1,)`` through an ``Embedding``, and a
vector), or one. The inputs are what Keras 2 accepted and Keras 3 refuses: a 1-D array
for an input of shape ``(1,)`` (turned into a column by Keras 2), inputs of different
lengths (Keras 2 predicted the first input's samples), with and without ``batch_size``;
and, for comparison, inputs Keras 3 reads the same way. Each leaves a dict ``result``
with the predictions, or the name of the error Keras 2 raised. This script runs each
under Keras 2.3.1 and writes ``cases.json`` into ``tests/goldens/predict/`` (or
``outdir``). ``tests/test_predict.py`` migrates each snippet with ``kutils migrate``
(which rewrites ``model.predict(...)`` into ``predict(model, ...)``), runs it on Keras 3
and compares.
"""

from __future__ import annotations

from _snippets import record

# The models every snippet builds: fixed weights, fixed data.
SETUP = """
import numpy as np
from keras.layers import Dense, Embedding, Flatten, Input, concatenate, multiply
from keras.models import Model, Sequential

rng = np.random.RandomState(23)
labels = np.array([0, 2, 1, 3, 2, 0, 1, 3, 3, 1], "int32")
vectors = rng.normal(0, 1, (10, 4)).astype("float32")
longer = rng.normal(0, 1, (25, 4)).astype("float32")
numbers = rng.normal(0, 1, 10).astype("float32")


def two_inputs():
    label = Input(shape=(1,), dtype="int32", name="label")
    vector = Input(shape=(4,), name="vector")
    code = Flatten()(Embedding(4, 3)(label))
    hidden = Dense(5, activation="tanh")(concatenate([code, vector]))
    model = Model([label, vector], Dense(2)(hidden))
    model.set_weights([
        rng.uniform(-1, 1, (4, 3)).astype("float32"),
        rng.uniform(-1, 1, (7, 5)).astype("float32"),
        rng.uniform(-0.5, 0.5, 5).astype("float32"),
        rng.uniform(-1, 1, (5, 2)).astype("float32"),
        rng.uniform(-0.5, 0.5, 2).astype("float32"),
    ])
    return model


def conditional():
    # A conditional GAN's generator: noise times the label's embedding, through a
    # Sequential model nested in the functional one (Keras-GAN's acgan).
    noise = Input(shape=(4,))
    label = Input(shape=(1,), dtype="int32")
    code = multiply([noise, Flatten()(Embedding(4, 4)(label))])
    inner = Sequential([Dense(3, activation="tanh", input_dim=4)])
    model = Model([noise, label], inner(code))
    model.set_weights([
        rng.uniform(-1, 1, (4, 4)).astype("float32"),
        rng.uniform(-1, 1, (4, 3)).astype("float32"),
        rng.uniform(-0.5, 0.5, 3).astype("float32"),
    ])
    return model


def one_input():
    model = Sequential([Dense(3, activation="relu", input_shape=(1,)), Dense(1)])
    model.set_weights([
        rng.uniform(-1, 1, (1, 3)).astype("float32"),
        rng.uniform(-0.5, 0.5, 3).astype("float32"),
        rng.uniform(-1, 1, (3, 1)).astype("float32"),
        rng.uniform(-0.5, 0.5, 1).astype("float32"),
    ])
    return model


def error_of(call):
    try:
        call()
    except Exception as error:  # the type is what is compared
        return {"error": np.array(type(error).__name__)}
    return {"error": np.array("none")}
"""

SNIPPETS = {
    # The conditional GAN's call: the labels a 1-D integer array (Keras-GAN's acgan).
    "one_d_int_labels": """
model = two_inputs()
result = {"predict": model.predict([labels, vectors])}
""",
    # A conditional GAN's generator: first columns of labels (the training loop), then a
    # 1-D array (the sample images): Keras 3 alone fails on the second call (as_list()
    # is not defined on an unknown TensorShape), having traced the first.
    "conditional_columns_then_one_d": """
model = conditional()
result = {
    "columns": model.predict([vectors, labels.reshape(-1, 1)]),
    "one_d": model.predict([vectors, labels]),
}
""",
    # The same with the column Keras 3 accepts as it is.
    "column_labels": """
model = two_inputs()
result = {"predict": model.predict([labels.reshape(-1, 1), vectors], batch_size=4)}
""",
    # The second input longer than the first (the seq2seq example's decoder inputs):
    # the first input's 10 samples are predicted, the other rows are not used.
    "second_input_longer": """
model = two_inputs()
result = {"predict": model.predict([labels, longer])}
""",
    # The same with a batch size that does not divide the samples.
    "second_input_longer_batch_size": """
model = two_inputs()
result = {"predict": model.predict([labels.reshape(-1, 1), longer], batch_size=3, verbose=0)}
""",
    # The first input longer than the second: Keras 2 indexed past the second's end.
    "first_input_longer": """
model = two_inputs()
result = error_of(lambda: model.predict([np.concatenate([labels, labels]), vectors]))
""",
    # A dict by input name (the first input is the model's first, whatever the order).
    "dict_by_name": """
model = two_inputs()
result = {"predict": model.predict({"vector": longer, "label": labels}, batch_size=8)}
""",
    # A Sequential of input shape (1,) given a 1-D float array.
    "sequential_one_d": """
model = one_input()
result = {"predict": model.predict(numbers, batch_size=4)}
""",
    # The same without a batch size.
    "sequential_one_d_default_batch": """
model = one_input()
result = {"predict": model.predict(numbers)}
""",
}


def main():
    record("predict", SETUP, SNIPPETS)


if __name__ == "__main__":
    main()
