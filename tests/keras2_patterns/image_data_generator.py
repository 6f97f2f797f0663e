"""ImageDataGenerator from keras.preprocessing.image feeding fit_generator (Keras 3: neither public)."""

import numpy as np
from keras.layers import Conv2D, Dense, Flatten
from keras.models import Sequential
from keras.preprocessing.image import ImageDataGenerator

pics = np.random.rand(16, 8, 8, 3)
tags = np.eye(2)[np.random.randint(0, 2, 16)]
augment = ImageDataGenerator(rotation_range=10, width_shift_range=0.1, horizontal_flip=True)
augment.fit(pics)
net = Sequential([Conv2D(2, 3, input_shape=(8, 8, 3)), Flatten(), Dense(2, activation="softmax")])
net.compile("adam", "categorical_crossentropy")
net.fit_generator(augment.flow(pics, tags, batch_size=4), steps_per_epoch=4, epochs=1, verbose=0)
print("ok")
