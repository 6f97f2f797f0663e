"""predict() on a two-input model whose second array has more rows than the first.

Keras 2 took the number of samples from the first input and sliced the others by it;
Keras 3 refuses arrays of different lengths ("Data cardinality is ambiguous").
"""

import numpy as np
from keras.layers import Dense, Input, concatenate
from keras.models import Model

left, right = Input(shape=(3,)), Input(shape=(2,))
net = Model([left, right], Dense(1)(concatenate([left, right])))
net.compile("adam", "mse")
out = net.predict([np.random.rand(4, 3), np.random.rand(10, 2)])
assert out.shape == (4, 1)
print("ok")
