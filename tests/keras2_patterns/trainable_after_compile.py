"""A GAN's discriminator frozen after its own compile, for the combined model: Keras 2
kept training it in its own steps (it collected its weights when compiled)."""

import numpy as np
from keras.layers import Dense, Input
from keras.models import Model, Sequential

critic = Sequential([Dense(5, activation="relu", input_dim=3), Dense(1, activation="sigmoid")])
critic.compile(loss="binary_crossentropy", optimizer="sgd")
maker = Sequential([Dense(3, input_dim=2)])
seed = Input((2,))
critic.trainable = False
stacked = Model(seed, critic(maker(seed)))
stacked.compile(loss="binary_crossentropy", optimizer="sgd")

samples = np.random.rand(8, 3)
labels = np.ones((8, 1))
before_critic = [w.copy() for w in critic.get_weights()]
before_maker = [w.copy() for w in maker.get_weights()]
critic.train_on_batch(samples, labels)
changed = [not np.array_equal(a, b) for a, b in zip(before_critic, critic.get_weights())]
assert all(changed), "the discriminator did not train in its own train_on_batch"
after_critic = [w.copy() for w in critic.get_weights()]
stacked.train_on_batch(np.random.rand(8, 2), labels)
assert all(np.array_equal(a, b) for a, b in zip(after_critic, critic.get_weights()))
assert not all(np.array_equal(a, b) for a, b in zip(before_maker, maker.get_weights()))
print("ok")
