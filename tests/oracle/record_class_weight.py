"""Record what Keras 2.3.1 computes with ``class_weight`` in ``train_on_batch``.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_class_weight.py [outdir]

Each snippet below is Keras 2 code calling ``model.train_on_batch(..., class_weight=...)``
on a small model with fixed weights (two outputs, a sigmoid and a softmax head, as the
discriminator of a semi-supervised GAN; or one output), compiled with SGD of a fixed
learning rate. It leaves a dict ``result``: what two ``train_on_batch`` calls return (the
total loss and each output's loss), every weight after them, and the predictions; or the
name of the error Keras 2 raised. One snippet compiles with one list of metrics for both
outputs (returned output by output in Keras 2). This script runs each under Keras 2.3.1 and writes
``cases.json`` into ``tests/goldens/class_weight/`` (or ``outdir``).
``tests/test_class_weights.py`` migrates each snippet with ``kutils migrate`` (which
rewrites the calls into ``train_on_batch(model, ...)``), runs it on Keras 3 and compares.
"""

from __future__ import annotations

from _snippets import record

# The models every snippet builds: fixed weights, fixed data.
SETUP = """
import numpy as np
from keras.layers import Dense, Input
from keras.models import Model
from keras.optimizers import SGD

rng = np.random.RandomState(11)
x = rng.normal(0, 1, (8, 4)).astype("float32")
valid = np.array([[1], [0], [1], [1], [0], [0], [1], [0]], "float32")
classes = np.array([0, 1, 2, 0, 1, 2, 0, 1])
labels = np.eye(3, dtype="float32")[classes]
weights = [
    rng.uniform(-1, 1, (4, 3)).astype("float32"),
    rng.uniform(-0.5, 0.5, 3).astype("float32"),
    rng.uniform(-1, 1, (3, 1)).astype("float32"),
    rng.uniform(-0.5, 0.5, 1).astype("float32"),
    rng.uniform(-1, 1, (3, 3)).astype("float32"),
    rng.uniform(-0.5, 0.5, 3).astype("float32"),
]
cw_valid = {0: 1.0, 1: 3.0}
cw_label = {0: 0.5, 1: 2.0, 2: 1.5}


def build(label_loss="categorical_crossentropy", outputs=2):
    inputs = Input((4,))
    code = Dense(3, activation="tanh")(inputs)
    heads = [
        Dense(1, activation="sigmoid", name="valid")(code),
        Dense(3, activation="softmax", name="label")(code),
    ]
    model = Model(inputs, heads[:outputs])
    model.set_weights(weights[: 2 + 2 * outputs])
    losses = ["binary_crossentropy", label_loss][:outputs]
    model.compile(optimizer=SGD(lr=0.1), loss=losses, loss_weights=[0.5, 0.5][:outputs])
    return model


def measure(model, steps):
    returned = [np.asarray(step(model), "float32").reshape(-1) for step in steps]
    return {
        "train_on_batch": np.stack(returned),
        "weights": np.concatenate([w.reshape(-1) for w in model.get_weights()]),
        "predict": np.concatenate([p.reshape(-1) for p in outputs_of(model.predict(x))]),
    }


def outputs_of(predicted):
    return predicted if isinstance(predicted, list) else [predicted]


def error_of(step):
    try:
        step()
    except Exception as error:  # the type is what is compared
        return {"error": np.array(type(error).__name__)}
    return {"error": np.array("none")}
"""

SNIPPETS = {
    # The GAN discriminator's call: one dict per output, in the order of the outputs.
    "list_per_output": """
model = build()
result = measure(model, [
    lambda m: m.train_on_batch(x, [valid, labels], class_weight=[cw_valid, cw_label]),
    lambda m: m.train_on_batch(x, [1 - valid, labels], class_weight=[cw_valid, cw_label]),
])
""",
    # A dict by output name; the output it leaves out is not weighted.
    "dict_by_output_name": """
model = build()
result = measure(model, [
    lambda m: m.train_on_batch(x, {"valid": valid, "label": labels}, class_weight={"label": cw_label}),
    lambda m: m.train_on_batch(x, [valid, labels], class_weight={"valid": cw_valid}),
])
""",
    # Keras 2.3.1 multiplies class and sample weights (2.2.4 dropped the class weights).
    "with_sample_weight": """
model = build()
sw = np.linspace(0.5, 2.0, 8)
result = measure(model, [
    lambda m: m.train_on_batch(x, [valid, labels], sample_weight=[sw, sw[::-1]], class_weight=[cw_valid, cw_label]),
    lambda m: m.train_on_batch(x, [valid, labels], sample_weight={"label": sw}, class_weight=[None, cw_label]),
])
""",
    # Integer targets of shape (n, 1): the class is the value.
    "sparse_targets": """
model = build("sparse_categorical_crossentropy")
result = measure(model, [
    lambda m: m.train_on_batch(x, [valid, classes.reshape(-1, 1)], class_weight=[cw_valid, cw_label]),
    lambda m: m.train_on_batch(x, [valid, classes[::-1].reshape(-1, 1)], class_weight=[None, cw_label]),
])
""",
    # One output and a list of two dicts (the GAN's combined model): Keras 2 applied none.
    "one_output_list_of_two": """
model = build(outputs=1)
result = measure(model, [
    lambda m: m.train_on_batch(x, valid, class_weight=[cw_valid, cw_label]),
    lambda m: m.train_on_batch(x, 1 - valid, class_weight=[cw_valid]),
])
""",
    # One output, one dict, and sample weights: multiplied (Keras 3 alone refuses both).
    "one_output_dict_and_sample_weight": """
model = build(outputs=1)
result = measure(model, [
    lambda m: m.train_on_batch(x, valid, sample_weight=np.linspace(2.0, 0.5, 8), class_weight=cw_valid),
    lambda m: m.train_on_batch(x, valid, class_weight=cw_valid),
])
""",
    # One list of metrics for a model with two outputs: Keras 2 put each on each output
    # (the GAN discriminator's metrics=['accuracy']); with the class weights.
    "flat_metrics": """
model = build()
model.compile(
    optimizer=SGD(lr=0.1),
    loss=["binary_crossentropy", "categorical_crossentropy"],
    loss_weights=[0.5, 0.5],
    metrics=["accuracy", "mae"],
)
result = measure(model, [
    lambda m: m.train_on_batch(x, [valid, labels], class_weight=[cw_valid, cw_label]),
    lambda m: m.train_on_batch(x, [1 - valid, labels], class_weight={"label": cw_label}),
])
""",
    # A class of the data without a weight: Keras 2's ValueError.
    "missing_class": """
model = build()
result = error_of(lambda: model.train_on_batch(x, [valid, labels], class_weight=[cw_valid, {0: 1.0, 1: 2.0}]))
""",
    # A list that is not one dict per output: Keras 2's ValueError.
    "list_of_wrong_length": """
model = build()
result = error_of(lambda: model.train_on_batch(x, [valid, labels], class_weight=[cw_valid]))
""",
}


def main():
    record("class_weight", SETUP, SNIPPETS)


if __name__ == "__main__":
    main()
