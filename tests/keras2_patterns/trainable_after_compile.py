"""A GAN's discriminator frozen after its own compile, for the combined model: Keras 2
kept training it in its own steps (it collected its weights when compiled)."""

import numpy as np
from keras.layers import Dense, Input
from keras.models import Model, Sequential

critic = Sequential([Dense(5, activation="tanh", input_dim=3), Dense(1, activation="sigmoid")])
critic.compile(loss="binary_crossentropy", optimizer="sgd")
maker = Sequential([Dense(3, input_dim=2)])
seed = Input((2,))
critic.trainable = False
stacked = Model(seed, critic(maker(seed)))
stacked.compile(loss="binary_crossentropy", optimizer="sgd")

samples = np.random.rand(8, 3)
labels = np.ones((8, 1))


def flat(model):
    return np.concatenate([w.reshape(-1) for w in model.get_weights()])


before_critic, before_maker = flat(critic), flat(maker)
critic.train_on_batch(samples, labels)
after_critic = flat(critic)
assert not np.array_equal(before_critic, after_critic), "the discriminator did not train"
stacked.train_on_batch(np.random.rand(8, 2), labels)
assert np.array_equal(after_critic, flat(critic)), "the frozen discriminator trained"
assert not np.array_equal(before_maker, flat(maker)), "the generator did not train"
print("ok")
