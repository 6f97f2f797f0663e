"""ModelCheckpoint(save_weights_only=True) with a .h5 name (Keras 3 wants *.weights.h5)."""

import os
import tempfile

import numpy as np
from keras.callbacks import ModelCheckpoint
from keras.layers import Dense
from keras.models import Sequential

path = os.path.join(tempfile.mkdtemp(), "weights-{epoch:02d}.h5")
net = Sequential([Dense(1, input_shape=(3,))])
net.compile("adam", "mse")
keep = ModelCheckpoint(path, save_weights_only=True, verbose=0)
net.fit(np.random.rand(8, 3), np.random.rand(8, 1), epochs=2, verbose=0, callbacks=[keep])
print("ok")
