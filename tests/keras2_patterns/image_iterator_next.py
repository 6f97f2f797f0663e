"""A training generator that pulls batches with the image iterator's next() method."""

import numpy as np
from keras.preprocessing.image import ImageDataGenerator


def shifted_pairs(images, size):
    augment = ImageDataGenerator(width_shift_range=0.1, height_shift_range=0.1)
    batches = augment.flow(images, images, batch_size=size)
    while True:
        moved, original = batches.next()
        yield moved, original


pairs = shifted_pairs(np.random.rand(10, 8, 8, 1).astype("float32"), 4)
moved, original = next(pairs)
assert moved.shape == original.shape == (4, 8, 8, 1)
print("ok")
