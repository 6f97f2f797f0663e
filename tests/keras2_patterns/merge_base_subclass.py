"""A layer subclassing Keras 2's private keras.layers.merge._Merge (WGAN-GP's random average)."""

import numpy as np
from keras import backend as K
from keras.layers import Dense, Input
from keras.layers.merge import _Merge
from keras.models import Model


class MixTwo(_Merge):
    def _merge_function(self, inputs):
        share = K.random_uniform((K.shape(inputs[0])[0], 1))
        return share * inputs[0] + (1 - share) * inputs[1]


a, b = Input(shape=(4,)), Input(shape=(4,))
net = Model([a, b], Dense(1)(MixTwo()([a, b])))
net.compile("adam", "mse")
net.fit([np.random.rand(8, 4), np.random.rand(8, 4)], np.random.rand(8, 1), epochs=1, verbose=0)
print("ok")
