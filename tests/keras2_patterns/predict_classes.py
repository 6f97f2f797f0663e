"""Sequential.predict_classes / predict_proba, removed from Keras 3 (and from tf_keras)."""

import numpy as np
from keras.layers import Dense
from keras.models import Sequential

clf = Sequential([Dense(3, activation="softmax", input_shape=(4,))])
clf.compile("sgd", "categorical_crossentropy")
points = np.random.rand(6, 4)
labels = clf.predict_classes(points, verbose=0)
scores = clf.predict_proba(points, verbose=0)
assert labels.shape == (6,) and scores.shape == (6, 3)
print("ok")
