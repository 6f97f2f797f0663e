"""A Sequential built with input_dim=N, then called on a (batch, 1, N) tensor.

Keras 2 applied Dense to the last axis and let Reshape absorb the extra axis (the ACGAN
example multiplies a (batch, N) noise by a (batch, 1, N) embedding); Keras 3 checks the
input shape of a built Sequential strictly.
"""

import numpy as np
from keras.layers import Dense, Embedding, Input, Reshape, multiply
from keras.models import Model, Sequential

body = Sequential([Dense(12, input_dim=6), Reshape((3, 4))])
noise = Input(shape=(6,))
label = Input(shape=(1,), dtype="int32")
mixed = multiply([noise, Embedding(5, 6)(label)])
net = Model([noise, label], body(mixed))
net.compile("adam", "mse")
net.fit([np.random.rand(8, 6), np.random.randint(0, 5, (8, 1))], np.random.rand(8, 3, 4), verbose=0)
print("ok")
