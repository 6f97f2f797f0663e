"""A stateful LSTM given its fixed batch by the layer arguments input_shape= and batch_size=."""

import numpy as np
from keras.layers import LSTM, Dense
from keras.models import Sequential

net = Sequential()
net.add(LSTM(6, input_shape=(4, 1), batch_size=2, stateful=True, return_sequences=False))
net.add(Dense(1))
net.compile("adam", "mse")
for _ in range(2):
    net.fit(np.random.rand(8, 4, 1), np.random.rand(8, 1), batch_size=2, shuffle=False, verbose=0)
    net.reset_states()
print("ok")
