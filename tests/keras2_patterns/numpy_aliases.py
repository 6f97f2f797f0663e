"""numpy's removed aliases (np.float, np.int, np.bool) as Keras 2 era scripts used them."""

import numpy as np
from keras.layers import Dense
from keras.models import Sequential

x = np.zeros((8, 3), dtype=np.float)
y = np.ones((8, 1), dtype=np.int).astype(np.float)
mask = np.array([1, 0, 1], dtype=np.bool)
net = Sequential([Dense(1, input_shape=(3,))])
net.compile("sgd", "mse")
net.fit(x[:, mask.astype(np.int) >= 0], y, epochs=1, verbose=0)
print("ok")
