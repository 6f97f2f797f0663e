"""A stateful LSTM given its fixed batch by the layer arguments input_shape= and batch_size=,
and a stateful SimpleRNN given it by batch_input_shape= in a Sequential's layer list."""

import numpy as np
from keras.layers import LSTM, Dense, SimpleRNN
from keras.models import Sequential

net = Sequential()
net.add(LSTM(6, input_shape=(4, 1), batch_size=2, stateful=True, return_sequences=False))
net.add(Dense(1))
net.compile("adam", "mse")
for _ in range(2):
    net.fit(np.random.rand(8, 4, 1), np.random.rand(8, 1), batch_size=2, shuffle=False, verbose=0)
    net.reset_states()

other = Sequential([SimpleRNN(3, batch_input_shape=(2, 4, 1), stateful=True), Dense(1)])
first = other.predict(np.ones((2, 4, 1)))
other.layers[0].reset_states()
assert np.allclose(other.predict(np.ones((2, 4, 1))), first)
print("ok")
