"""Layer sizes computed with numpy: np.prod(shape) and np.max(labels) + 1 are numpy integers.

Keras 2 took any integer; Keras 3's Dense(units=...) and Embedding(output_dim=...) want a
Python int.
"""

import numpy as np
from keras.layers import Dense, Embedding, Flatten, Input, Reshape, multiply
from keras.models import Model

picture = (4, 3)
labels = np.array([0, 3, 1, 2])
classes = np.max(labels) + 1
flat = Input(shape=(int(np.prod(picture)),))
label = Input(shape=(1,), dtype="int32")
code = Flatten()(Embedding(classes, np.prod(picture))(label))
out = Reshape(picture)(Dense(np.prod(picture))(multiply([flat, code])))
net = Model([flat, label], out)
net.compile("adam", "mse")
net.fit([np.random.rand(4, 12), labels.reshape(-1, 1)], np.random.rand(4, 4, 3), verbose=0)
print("ok")
