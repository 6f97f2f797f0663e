"""keras.preprocessing.text.Tokenizer (the module is gone from Keras 3's public API)."""

import numpy as np
from keras.layers import Dense
from keras.models import Sequential
from keras.preprocessing.text import Tokenizer

notes = ["the cat sat", "the dog ran far", "a cat and a dog"]
words = Tokenizer(num_words=20)
words.fit_on_texts(notes)
bags = words.texts_to_matrix(notes, mode="binary")
coded = words.sequences_to_matrix(words.texts_to_sequences(notes), mode="count")
net = Sequential([Dense(1, input_shape=(20,))])
net.compile("sgd", "mse")
net.fit(bags, np.ones((3, 1)), epochs=1, verbose=0)
assert bags.shape == coded.shape == (3, 20)
print("ok")
