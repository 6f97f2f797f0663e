# ruff: noqa
# (kept in the style of its time: import order, %-formatting)
"""A Keras 2.2/2.3 era script, written the way the tutorials of the time were.

It imports through every legacy path of ``keras.utils`` and trains with a custom loop
fed by an ``OrderedEnqueuer`` (``train_on_batch`` and a ``Progbar``), validates through a
``GeneratorEnqueuer``, saves and reloads the model with a custom activation. It is kept
exactly as a Keras 2 user wrote it: tests/test_legacy_modules.py replaces
``keras.utils`` by ``kutils`` in its import lines only and runs it.
"""

import os
import sys

import h5py
import numpy as np
import keras
from keras.models import Sequential, load_model
from keras.layers import Dense, Dropout

from keras.utils import np_utils
from keras.utils.np_utils import to_categorical
import keras.utils.generic_utils as generic_utils
from keras.utils.io_utils import HDF5Matrix
from keras.utils.data_utils import get_file, Sequence, OrderedEnqueuer, GeneratorEnqueuer
from keras.utils.generic_utils import CustomObjectScope, Progbar
from keras.utils.vis_utils import plot_model, model_to_dot
from keras.utils.layer_utils import print_summary
from keras.utils.multi_gpu_utils import multi_gpu_model
from keras.utils.training_utils import multi_gpu_model as multi_gpu_model_keras_21
from keras.utils import Progbar as TopLevelProgbar

work_dir = sys.argv[1]
num_classes = 3
batch_size = 16
epochs = 4

# --- make a dataset, "download" it with get_file and store it in HDF5 ---
rng = np.random.RandomState(0)
centers = rng.normal(scale=4.0, size=(num_classes, 8))
labels = rng.randint(0, num_classes, size=480)
features = centers[labels] + rng.normal(size=(480, 8))
np.savez(os.path.join(work_dir, "blobs.npz"), x=features, y=labels)
path = get_file(
    "blobs.npz",
    origin="file://" + os.path.join(work_dir, "blobs.npz"),
    cache_dir=os.path.join(work_dir, "cache"),
)
data = np.load(path)
with h5py.File(os.path.join(work_dir, "blobs.h5"), "w") as f:
    f.create_dataset("x", data=data["x"].astype("float32"))
    f.create_dataset("y", data=np_utils.to_categorical(data["y"], num_classes))

x_train = HDF5Matrix(os.path.join(work_dir, "blobs.h5"), "x", start=0, end=384)
y_train = HDF5Matrix(os.path.join(work_dir, "blobs.h5"), "y", start=0, end=384)
x_val = np.asarray(data["x"][384:], dtype="float32")
y_val = to_categorical(data["y"][384:], num_classes)


class DataGenerator(Sequence):
    "Generates data for Keras"

    def __init__(self, x, y, batch_size=32, shuffle=True):
        "Initialization"
        self.x = x
        self.y = y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.epochs_seen = 0
        self.on_epoch_end()

    def __len__(self):
        "Denotes the number of batches per epoch"
        return int(np.floor(len(self.x) / self.batch_size))

    def __getitem__(self, index):
        "Generate one batch of data"
        start = index * self.batch_size
        return self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]

    def on_epoch_end(self):
        "Updates after each epoch"
        self.epochs_seen += 1


def validation_batches():
    for start in range(0, len(x_val), batch_size):
        yield x_val[start : start + batch_size], y_val[start : start + batch_size]


def scaled_tanh(x):
    return 1.7159 * keras.activations.tanh(2.0 / 3.0 * x)


generic_utils.get_custom_objects()["scaled_tanh"] = scaled_tanh

model = Sequential()
model.add(Dense(32, activation="scaled_tanh", input_shape=(8,)))
model.add(Dropout(0.1))
model.add(Dense(num_classes, activation="softmax"))
print_summary(model)
dot = model_to_dot(model, show_shapes=True)
plot_model(model, to_file=os.path.join(work_dir, "model.png"), show_shapes=True)

try:
    parallel_model = multi_gpu_model(model, gpus=2)
    print("Training using multiple GPUs..")
except ValueError:
    parallel_model = model
    print("Training using single GPU or CPU..")
assert multi_gpu_model is multi_gpu_model_keras_21

parallel_model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

train_generator = DataGenerator(x_train, y_train, batch_size=batch_size)
enqueuer = OrderedEnqueuer(train_generator, use_multiprocessing=False, shuffle=True)
enqueuer.start(workers=2, max_queue_size=10)
output_generator = enqueuer.get()
steps_per_epoch = len(train_generator)

for epoch in range(epochs):
    print("Epoch %d/%d" % (epoch + 1, epochs))
    progbar = Progbar(target=steps_per_epoch)
    for step in range(steps_per_epoch):
        x_batch, y_batch = next(output_generator)
        outs = parallel_model.train_on_batch(x_batch, y_batch)
        progbar.update(step + 1, values=[("loss", float(outs[0])), ("acc", float(outs[1]))])
enqueuer.stop()

val_enqueuer = GeneratorEnqueuer(validation_batches(), use_multiprocessing=False)
val_enqueuer.start(workers=1, max_queue_size=10)
val_bar = TopLevelProgbar(target=None)
correct = seen = 0
for x_batch, y_batch in val_enqueuer.get():
    predicted = model.predict_on_batch(x_batch)
    correct += int(np.sum(np.argmax(predicted, axis=1) == np.argmax(y_batch, axis=1)))
    seen += len(x_batch)
    val_bar.update(seen)
val_enqueuer.stop()

model.save(os.path.join(work_dir, "model.h5"))
with CustomObjectScope({"scaled_tanh": scaled_tanh}):
    reloaded = load_model(os.path.join(work_dir, "model.h5"))
reloaded_predictions = reloaded.predict(x_val, verbose=0)
assert np.allclose(reloaded_predictions, model.predict(x_val, verbose=0), atol=1e-5)

print("")
print("on_epoch_end calls: %d" % train_generator.epochs_seen)
print("validation accuracy: %.3f over %d samples" % (correct / float(seen), seen))
