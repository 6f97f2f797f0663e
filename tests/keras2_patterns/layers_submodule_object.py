"""A Keras 2 layer module imported as an object and used as a namespace (recurrent.LSTM)."""

import numpy as np
from keras.layers import Dense, recurrent
from keras.models import Sequential

cell_kind = recurrent.GRU
net = Sequential([cell_kind(4, input_shape=(5, 2)), Dense(1)])
net.compile("adam", "mse")
net.fit(np.random.rand(6, 5, 2), np.random.rand(6, 1), epochs=1, verbose=0)
print("ok")
