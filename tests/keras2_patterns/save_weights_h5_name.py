"""Weights saved and loaded under a plain .h5/.hdf5 name (Keras 3 wants *.weights.h5)."""

import os
import tempfile

from keras.layers import Dense
from keras.models import Sequential

folder = tempfile.mkdtemp()
net = Sequential([Dense(2, input_shape=(3,))])
for step in range(2):
    name = os.path.join(folder, "net_{}.hdf5".format(step))  # noqa: UP032
    net.save_weights(name)
net.save_weights(os.path.join(folder, "final.h5"))
net.load_weights(os.path.join(folder, "final.h5"))
print("ok")
