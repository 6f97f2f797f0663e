"""K.gradients inside a loss (the gradient penalty of WGAN-GP): graph-mode only, gone in Keras 3."""

from functools import partial

import numpy as np
from keras import backend as K
from keras.layers import Dense, Input
from keras.models import Model


def penalty(y_true, y_pred, points):
    grads = K.gradients(y_pred, points)[0]
    norm = K.sqrt(K.sum(K.square(grads), axis=1))
    return K.mean(K.square(y_pred - y_true)) + K.mean(K.square(1 - norm))


inp = Input(shape=(3,))
net = Model(inp, Dense(1)(inp))
loss = partial(penalty, points=inp)
loss.__name__ = "penalty"
net.compile("adam", loss)
net.fit(np.random.rand(8, 3), np.random.rand(8, 1), epochs=1, verbose=0)
print("ok")
