"""Record what Keras 2.3.1 computes for the snippets of each ``kutils migrate`` rewrite rule.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_migrate_rules.py [outdir]

Each snippet below is Keras 2 code that uses what one rewrite rule changes; run as it
is, it leaves a dict ``result`` of numpy arrays (and numbers). This script runs each
snippet under Keras 2.3.1 and writes ``cases.json`` into ``tests/goldens/migrate_rules/``
(or ``outdir``): the snippet's text and, for each result, its values, dtype and shape.
``tests/test_migrate_rules.py`` migrates each snippet with ``kutils migrate``, runs the
rewritten text on Keras 3 and compares.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

# The model the training snippets share: fixed weights, fixed data.
_SETUP = """
import numpy as np
rng = np.random.RandomState(3)
x = rng.normal(0, 1, (16, 4)).astype("float32")
y = rng.normal(0, 1, (16, 2)).astype("float32")
w0 = rng.uniform(-1, 1, (4, 2)).astype("float32")
b0 = np.zeros(2, "float32")
"""

SNIPPETS = {
    "module_paths": """
from keras.layers.core import Dense, Activation
from keras.layers.advanced_activations import LeakyReLU
from keras.layers import merge
from keras.models import Sequential, Model
from keras.layers import Input
inputs = Input((4,))
hidden = Dense(2)(inputs)
a = LeakyReLU(0.3)(hidden)
b = Activation("tanh")(hidden)
model = Model(inputs, merge.concatenate([a, b]))
model.layers[1].set_weights([w0, b0])
result = {"out": model.predict(x)}
""",
    "preprocessing": """
from keras.preprocessing.text import Tokenizer
from keras.preprocessing.sequence import pad_sequences
from keras.preprocessing import sequence
tokenizer = Tokenizer(num_words=20)
tokenizer.fit_on_texts(["the cat sat", "the dog sat down", "a cat"])
seqs = tokenizer.texts_to_sequences(["the cat sat down", "a dog"])
result = {
    "padded": pad_sequences(seqs, maxlen=5),
    "padded_post": sequence.pad_sequences(seqs, maxlen=3, padding="post"),
}
""",
    "loss_aliases": """
from keras.models import Sequential
from keras.layers import Dense
from keras.losses import mse, mae, mape, msle, kld, cosine, logcosh
from keras import metrics
# Positive targets and outputs, so that every loss is defined.
t = np.abs(y) + 0.1
result = {}
for name, loss in [("mse", mse), ("mae", mae), ("mape", mape), ("msle", msle),
                   ("kld", kld), ("cosine", cosine), ("logcosh", logcosh)]:
    model = Sequential([Dense(2, activation="softplus", input_shape=(4,))])
    model.set_weights([w0, b0])
    model.compile("sgd", loss, metrics=[metrics.mse, metrics.mae])
    result[name] = np.array(model.evaluate(x, t, batch_size=16, verbose=0))
""",
    "optimizer_decay": """
from keras.models import Sequential
from keras.layers import Dense
from keras import optimizers
from keras.optimizers import SGD
result = {}
for name, make in [("momentum", lambda: SGD(lr=0.1, decay=0.05, momentum=0.5)),
                   ("default_lr", lambda: SGD(decay=0.5, nesterov=True, momentum=0.9)),
                   ("lr_only", lambda: optimizers.SGD(lr=0.2)),
                   ("no_decay", lambda: SGD(lr=0.1, momentum=0.5))]:
    model = Sequential([Dense(2, input_shape=(4,))])
    model.set_weights([w0, b0])
    model.compile(make(), "mse")
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    result[name] = model.get_weights()[0]
""",
    "callback_mode": """
from keras.models import Sequential
from keras.layers import Dense
from keras.callbacks import EarlyStopping
# A made-up history: the accuracy-like value rises, then falls; only the inferred mode
# decides when training stops.
values = [0.1, 0.5, 0.9, 0.4, 0.3, 0.2, 0.1, 0.05]

def feed(callback):
    original = callback.on_epoch_end
    callback.on_epoch_end = lambda epoch, logs=None: original(
        epoch, {callback.monitor: values[epoch]})
    return callback

callbacks = {
    "val_acc": EarlyStopping(monitor="val_acc", patience=2),
    "my_accuracy": EarlyStopping(monitor="my_accuracy", patience=2, mode="auto"),
    "val_score": EarlyStopping(monitor="val_score", patience=2),
}
stopped = {}
for monitor, callback in callbacks.items():
    model = Sequential([Dense(2, input_shape=(4,))])
    model.compile("sgd", "mse")
    history = model.fit(x, y, epochs=len(values), verbose=0, callbacks=[feed(callback)])
    stopped[monitor] = len(history.history["loss"])

import os
import shutil
import tempfile
from keras.callbacks import ModelCheckpoint
folders = {"fmeasure_score": tempfile.mkdtemp(), "val_error": tempfile.mkdtemp()}
checkpoints = {
    "fmeasure_score": ModelCheckpoint(
        os.path.join(folders["fmeasure_score"], "w{epoch}.weights.h5"),
        monitor="fmeasure_score", save_best_only=True, save_weights_only=True),
    "val_error": ModelCheckpoint(
        os.path.join(folders["val_error"], "w{epoch}.weights.h5"),
        monitor="val_error", save_best_only=True, save_weights_only=True),
}
saved = {}
for monitor, checkpoint in checkpoints.items():
    model = Sequential([Dense(2, input_shape=(4,))])
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=len(values), verbose=0, callbacks=[feed(checkpoint)])
    names = os.listdir(folders[monitor])
    saved[monitor] = sorted(int(name[1:].split(".")[0]) for name in names)
    shutil.rmtree(folders[monitor])
result = {k: np.array(v) for k, v in stopped.items()}
result.update({"saved_" + k: np.array(v) for k, v in saved.items()})
""",
    "predict_classes": """
from keras.models import Sequential
from keras.layers import Dense
model = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
model.set_weights([rng.uniform(-1, 1, (4, 3)).astype("float32"), np.zeros(3, "float32")])
result = {"classes": model.predict_classes(x), "proba": model.predict_proba(x, batch_size=5)}
""",
    "load_model": """
import os
from keras.models import load_model, model_from_json
# Written by Keras 2.3.1 (see save_model below): a compiled model and its JSON.
loaded = load_model(os.path.join(folder, "keras2_model.h5"))
with open(os.path.join(folder, "keras2_model.json")) as handle:
    rebuilt = model_from_json(handle.read())
rebuilt.set_weights(loaded.get_weights())
result = {
    "predicted": loaded.predict(x),
    "rebuilt": rebuilt.predict(x),
    "evaluated": np.array(loaded.evaluate(x, np.abs(y[:, :1]), verbose=0)),
}
""",
    "layer_sizes_by_name": """
from keras.models import Model
from keras.layers import Dense, Embedding, Flatten, Input, LSTM, LSTMCell, RNN, RepeatVector
from keras.layers import concatenate
labels = rng.randint(0, 4, (16, 1))
# Layer sizes computed with numpy and handed on by a name: numpy integers.
num_classes = np.max(labels) + 1
steps = np.prod((1, 3))


class Classifier:
    def __init__(self, picture):
        self.picture = picture
        self.units = np.prod(picture) * 2
        self.codes = np.int64(3)

    def build(self):
        inputs = Input((4,))
        self.dense = Dense(self.units)
        self.repeat = RepeatVector(steps)
        self.lstm = LSTM(units=self.units)
        self.cell = RNN(LSTMCell(steps))
        repeated = self.repeat(self.dense(inputs))
        hidden = concatenate([self.lstm(repeated), self.cell(repeated)])
        label = Input((1,), dtype="int32")
        self.embed = Embedding(num_classes, self.codes)
        code = Flatten()(self.embed(label))
        self.out = Dense(num_classes, activation="softmax")
        return Model([inputs, label], self.out(concatenate([hidden, code])))


net = Classifier((1, 2))
model = net.build()
result = {}
for name in ("dense", "lstm", "cell", "embed", "out"):
    layer = getattr(net, name)
    shapes = [w.shape for w in layer.get_weights()]
    layer.set_weights([np.linspace(-1, 1, np.prod(s)).reshape(s) for s in shapes])
    result[name + "_weights"] = np.array([d for s in shapes for d in s])
result["out"] = model.predict([x, labels])
result["sizes"] = np.array([int(num_classes), int(steps), int(net.units), int(net.codes)])
""",
    "numpy_aliases": """
values = [1.7, -2.2, 3.0]
result = {
    "float": np.array(values, dtype=np.float),
    "int": np.array(values).astype(np.int),
    "bool": np.array([0, 2, 0]).astype(np.bool),
    "complex": np.array(values, dtype=np.complex),
    "object_kind": np.array(np.dtype(np.object).kind),
    "str_len": np.array(len(np.array(["ab", "c"], dtype=np.str)[0])),
}
""",
    "tensorboard_ignored_arguments": """
from keras.callbacks import TensorBoard
# Keras 2.3.1 under TensorFlow 2 warned that these arguments were ignored. (Its
# TensorBoard then fails in fit under TensorFlow 2.1, keras-team/keras issue 13737: the
# settings each call makes are what is compared.)
by_keyword = TensorBoard(log_dir="logs", histogram_freq=1, batch_size=4, write_grads=True, embeddings_freq=1, embeddings_layer_names=["emb"], embeddings_metadata=None, embeddings_data=x, update_freq="epoch")
# Keras 2.3.1's order: log_dir, histogram_freq, batch_size, write_graph, write_grads,
# write_images (Keras 3 has no batch_size and write_grads).
by_position = TensorBoard("logs", 0, 8, False, True, True)
only_ignored = TensorBoard(batch_size=8, embeddings_freq=2)
two_lines = TensorBoard(log_dir="logs",
                        batch_size=8, histogram_freq=2)
result = {}
for name, callback in [("keyword", by_keyword), ("position", by_position),
                       ("only_ignored", only_ignored), ("two_lines", two_lines)]:
    result[name] = np.array([
        callback.histogram_freq, callback.embeddings_freq,
        int(callback.write_graph), int(callback.write_images)])
""",
    "iterator_next": """
from keras.preprocessing.image import ImageDataGenerator
images = rng.uniform(0, 1, (6, 4, 4, 1)).astype("float32")
labels = np.arange(6)
flow = ImageDataGenerator(rescale=2.0).flow(images, labels, batch_size=4, shuffle=False)
first_x, first_y = flow.next()
second_x, second_y = flow.next()  # the 2 samples left


def batches(data):
    augment = ImageDataGenerator(samplewise_center=True)
    stream = augment.flow(data, batch_size=3, shuffle=False)
    return [stream.next() for _ in range(3)]


result = {"first_x": first_x, "first_y": first_y, "second_x": second_x,
          "second_y": second_y, "centred": np.stack(batches(images))}
""",
    "stateful_batch_size": """
from keras.models import Sequential
from keras.layers import LSTM, Dense
seq = rng.normal(0, 1, (4, 3, 2)).astype("float32")
targets = rng.normal(0, 1, (4, 1)).astype("float32")
initial = [rng.normal(0, 1, (2, 3)).astype("float32") for _ in range(2)]

def build():
    model = Sequential()
    # A fixed batch of 2 for the stateful layer (Keras 2's layer arguments).
    model.add(LSTM(3,
                   input_shape=(3, 2),
                   batch_size=2,
                   stateful=True))
    model.add(Dense(1))
    return model

model = build()
model.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in model.get_weights()])
first = model.predict(seq[:2], batch_size=2)
carried = model.predict(seq[:2], batch_size=2)
model.reset_states()
after_reset = model.predict(seq[:2], batch_size=2)
model.reset_states()
both = model.predict(seq, batch_size=2)
model.layers[0].reset_states(states=initial)
from_states = model.predict(seq[:2], batch_size=2)
model.reset_states()
model.compile("sgd", "mse")
model.fit(seq, targets, batch_size=2, epochs=2, shuffle=False, verbose=0)
result = {
    "first": first,
    "carried": carried,
    "after_reset": after_reset,
    "both": both,
    "from_states": from_states,
    "trained_kernel": model.get_weights()[0],
    "after_fit": model.predict(seq[:2], batch_size=2),
    "batch_shape": np.array([-1 if d is None else d for d in model.input_shape]),
}
""",
    "stateful_batch_input_shape": """
from keras.models import Sequential
from keras.layers import SimpleRNN, LSTM, Dense
seq = rng.normal(0, 1, (2, 3, 2)).astype("float32")
model = Sequential([SimpleRNN(3, batch_input_shape=(2, 3, 2), stateful=True,
                              return_sequences=True),
                    LSTM(2, stateful=True),
                    Dense(1)])
model.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in model.get_weights()])
first = model.predict(seq)
carried = model.predict(seq)
# Only the LSTM: the SimpleRNN keeps its state.
model.layers[1].reset_states()
partly = model.predict(seq)
model.reset_states()
result = {
    "first": first,
    "carried": carried,
    "partly": partly,
    "after_reset": model.predict(seq),
    "batch_shape": np.array(model.input_shape),
}
""",
}


# Keras 2.3.1 reads the optimizer's iteration count for decay= without ordering the read
# after the count's increment in the same step, so a run decays some steps by one
# iteration more than the formula: the same code gives one of a few results. These cases
# are run this many times and every distinct result is recorded.
REPEAT = {"optimizer_decay": 10}


def save_model(folder):
    """The Keras 2.3.1 model files the load_model snippet reads."""
    from keras.layers import Dense
    from keras.models import Sequential

    rng = np.random.RandomState(11)
    model = Sequential([Dense(5, activation="relu", input_shape=(4,)), Dense(1)])
    model.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in model.get_weights()])
    model.compile("adam", "mae", metrics=["mse"])
    model.save(os.path.join(folder, "keras2_model.h5"))
    with open(os.path.join(folder, "keras2_model.json"), "w") as handle:
        handle.write(model.to_json())


def run(snippet, folder):
    """Run a snippet with the shared set-up; its ``result``."""
    scope = {"folder": folder}
    exec(compile(_SETUP + snippet, "<snippet>", "exec"), scope)
    return scope["result"]


def describe(value):
    array = np.asarray(value)
    data = array.tolist() if array.dtype.kind != "c" else [array.real.tolist(), array.imag.tolist()]
    return {"values": data, "dtype": str(array.dtype), "shape": list(array.shape)}


def main():
    outdir = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.path.join(os.path.dirname(__file__), "..", "goldens", "migrate_rules")
    )
    os.makedirs(outdir, exist_ok=True)
    warnings.simplefilter("ignore")
    import keras

    assert keras.__version__ == "2.3.1", keras.__version__
    save_model(outdir)
    cases = {}
    for name, snippet in SNIPPETS.items():
        result = run(snippet, outdir)
        described = {key: describe(value) for key, value in sorted(result.items())}
        for _ in range(REPEAT.get(name, 1) - 1):
            for key, value in run(snippet, outdir).items():
                other = describe(value)["values"]
                known = [described[key]["values"], *described[key].get("alternatives", [])]
                if not any(np.allclose(other, seen, rtol=0, atol=1e-6) for seen in known):
                    described[key].setdefault("alternatives", []).append(other)
        cases[name] = {"snippet": _SETUP + snippet, "result": described}
        print(name, "recorded")
    with open(os.path.join(outdir, "cases.json"), "w") as handle:
        json.dump({"keras": keras.__version__, "cases": cases}, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
