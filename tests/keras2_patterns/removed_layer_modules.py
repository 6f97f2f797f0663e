"""Layers imported from the per-family modules of Keras 2 (gone in Keras 3)."""

import numpy as np
from keras.layers.advanced_activations import LeakyReLU
from keras.layers.convolutional import Conv1D, UpSampling1D
from keras.layers.core import Dense, Flatten
from keras.layers.embeddings import Embedding
from keras.layers.normalization import BatchNormalization
from keras.layers.pooling import MaxPooling1D
from keras.layers.recurrent import LSTM
from keras.models import Sequential

net = Sequential()
net.add(Embedding(50, 8, input_length=12))
net.add(Conv1D(4, 3, padding="same"))
net.add(LeakyReLU(alpha=0.1))
net.add(BatchNormalization())
net.add(MaxPooling1D(2))
net.add(UpSampling1D(2))
net.add(LSTM(5, return_sequences=True))
net.add(Flatten())
net.add(Dense(1, activation="sigmoid"))
net.compile("adam", "binary_crossentropy")
net.fit(np.random.randint(0, 50, (16, 12)), np.random.randint(0, 2, (16, 1)), epochs=1, verbose=0)
print("ok")
