"""model.add_loss on a symbolic tensor built from the model's inputs and outputs (Keras 2 VAE style)."""

import numpy as np
from keras import backend as K
from keras.layers import Dense, Input
from keras.models import Model

inp = Input(shape=(5,))
code = Dense(2)(inp)
rebuilt = Dense(5)(code)
net = Model(inp, rebuilt)
net.add_loss(K.mean(K.square(inp - rebuilt)) + 1e-3 * K.mean(K.square(code)))
net.compile(optimizer="adam")
net.fit(np.random.rand(8, 5), epochs=1, verbose=0)
print("ok")
