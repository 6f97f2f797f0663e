"""Short loss and metric aliases imported as functions (keras.losses.mse, mae, ...: gone in Keras 3)."""

import numpy as np
from keras.layers import Dense, Input
from keras.losses import mae, mse
from keras.models import Model

inp = Input(shape=(4,))
out = Dense(4)(inp)
net = Model(inp, out)
net.compile(optimizer="adam", loss=mse, metrics=[mae])
net.fit(np.random.rand(8, 4), np.random.rand(8, 4), epochs=1, verbose=0)
print("ok")
