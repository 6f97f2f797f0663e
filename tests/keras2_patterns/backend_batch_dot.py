"""A layer computing with K.batch_dot and K.map_fn, gone from keras.backend in Keras 3."""

import numpy as np
from keras import backend as K
from keras.layers import Input, Lambda
from keras.models import Model


def attend(pair):
    queries, keys = pair
    scores = K.batch_dot(queries, keys, axes=[2, 2])  # (batch, 3, 3)
    return K.map_fn(lambda sample: K.sum(sample, axis=0), scores)


queries, keys = Input((3, 4)), Input((3, 4))
model = Model([queries, keys], Lambda(attend)([queries, keys]))
rng = np.random.RandomState(0)
a, b = rng.rand(2, 3, 4).astype("float32"), rng.rand(2, 3, 4).astype("float32")
expected = np.einsum("bik,bjk->bij", a, b).sum(axis=1)
assert np.allclose(model.predict([a, b]), expected, atol=1e-5)
print("ok")
