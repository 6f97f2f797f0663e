"""keras.wrappers.scikit_learn.KerasClassifier with a build_fn (gone in Keras 3)."""

import numpy as np
from keras.layers import Dense
from keras.models import Sequential
from keras.wrappers.scikit_learn import KerasClassifier


def build(units=4):
    net = Sequential(
        [Dense(units, activation="relu", input_shape=(5,)), Dense(3, activation="softmax")]
    )
    net.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return net


clf = KerasClassifier(build_fn=build, units=6, epochs=1, verbose=0)
clf.fit(np.random.rand(12, 5), np.random.randint(0, 3, 12))
print(clf.predict(np.random.rand(3, 5)).shape)
print("ok")
