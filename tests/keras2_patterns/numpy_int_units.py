"""Layer sizes computed with numpy: np.prod(shape) and np.max(labels) + 1 are numpy integers.

Keras 2 took any integer; Keras 3's Dense(units=...), Embedding(input_dim=..., output_dim=...),
LSTM(units=...) and RepeatVector(n) want a Python int. The sizes reach the layers written
in the call, through a module name (as in the Keras 2.3.1 example reuters_mlp.py) and
through attributes set in __init__ (as in Keras-GAN's scripts).
"""

import numpy as np
from keras.layers import LSTM, Dense, Embedding, Flatten, Input, RepeatVector, Reshape, multiply
from keras.models import Model, Sequential

picture = (4, 3)
labels = np.array([0, 3, 1, 2])
classes = np.max(labels) + 1


class Generator:
    def __init__(self):
        self.picture = picture
        self.flat = np.prod(self.picture)

    def build(self):
        flat = Input(shape=(int(np.prod(self.picture)),))
        label = Input(shape=(1,), dtype="int32")
        code = Flatten()(Embedding(classes, self.flat)(label))
        out = Reshape(self.picture)(Dense(np.prod(self.picture))(multiply([flat, code])))
        return Model([flat, label], out)


net = Generator().build()
net.compile("adam", "mse")
net.fit([np.random.rand(4, 12), labels.reshape(-1, 1)], np.random.rand(4, 4, 3), verbose=0)

steps = np.prod(picture[:1])
classifier = Sequential()
classifier.add(RepeatVector(steps, input_shape=(12,)))
classifier.add(LSTM(classes))
classifier.add(Dense(classes, activation="softmax"))
classifier.compile("adam", "categorical_crossentropy")
classifier.fit(np.random.rand(4, 12), np.eye(4)[labels], verbose=0)
print("ok")
