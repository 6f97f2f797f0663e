# ruff: noqa
# (kept in the style of its time: import order, %-formatting)
"""A Keras 2.2/2.3 era multi-GPU script, written the way the tutorials of the time were.

The template is built on the CPU, ``multi_gpu_model`` replicates it, and a callback
saves the template, ``self.model.layers[-2]``, after every epoch (the widely copied
work-around for ModelCheckpoint saving the parallel model). tests/test_multi_gpu.py
replaces ``keras.utils`` by ``kutils`` in its import lines only and runs it on 2 logical
CPUs with KUTILS_MULTI_GPU_DEVICE_TYPE=CPU.
"""

import os
import sys

import numpy as np
import tensorflow as tf
import keras
from keras.models import Sequential, load_model
from keras.layers import Dense, Dropout
from keras.callbacks import Callback

from keras.utils import multi_gpu_model, to_categorical

out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
num_classes = 3

np.random.seed(7)
x_train = np.random.rand(480, 8).astype("float32")
labels = np.argmax(x_train[:, :num_classes], axis=1)
y_train = to_categorical(labels, num_classes)

with tf.device("/cpu:0"):
    model = Sequential()
    model.add(Dense(32, activation="relu", input_shape=(8,)))
    model.add(Dropout(0.1))
    model.add(Dense(num_classes, activation="softmax"))


class TemplateCheckpoint(Callback):
    """Save the single-GPU template, not the parallel model, after each epoch."""

    def __init__(self, filepath):
        super(TemplateCheckpoint, self).__init__()
        self.filepath = filepath

    def on_epoch_end(self, epoch, logs=None):
        template = self.model.layers[-2]
        template.save(self.filepath % (epoch + 1))


try:
    parallel_model = multi_gpu_model(model, gpus=2)
except ValueError:
    parallel_model = model
    print("Training using single GPU or CPU..")

parallel_model.summary()
print("parallel inputs: %s" % ([tuple(t.shape) for t in parallel_model.inputs],))
print("parallel output: %s" % (tuple(parallel_model.output.shape),))
parallel_model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
checkpoint = TemplateCheckpoint(os.path.join(out_dir, "template_%02d.h5"))
parallel_model.fit(x_train, y_train, batch_size=32, epochs=8, verbose=2, callbacks=[checkpoint])

restored = load_model(os.path.join(out_dir, "template_08.h5"))
predicted = np.argmax(restored.predict(x_train, verbose=0), axis=1)
print("restored accuracy: %.3f" % np.mean(predicted == labels))
