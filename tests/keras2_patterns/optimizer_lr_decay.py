"""Optimizers built with Keras 2's lr= and decay= arguments (Keras 3 rejects both)."""

import numpy as np
from keras.layers import Dense
from keras.models import Sequential
from keras.optimizers import SGD, Adam, RMSprop

for opt in (
    SGD(lr=0.05, decay=1e-4, momentum=0.9, nesterov=True),
    RMSprop(lr=0.001),
    Adam(lr=2e-4, decay=1e-6),
):
    net = Sequential([Dense(1, input_shape=(3,))])
    net.compile(optimizer=opt, loss="mse")
    net.fit(np.random.rand(8, 3), np.random.rand(8, 1), epochs=1, verbose=0)
print("ok")
