"""Record what Keras 2.3.1 trains when ``trainable`` changes after ``compile`` (the GAN).

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_trainable.py [outdir]

Each snippet below is the Keras 2 GAN pattern on a tiny generator and discriminator
(Dense layers only, fixed weights, fixed data): the discriminator is compiled, then set
``trainable = False``, then called in a combined model compiled after that; two rounds
of ``discriminator.train_on_batch`` (or ``fit``) and ``combined.train_on_batch``. Keras 2
kept training the discriminator's own weights in its own steps (collected at its
``compile``) and the generator's only in the combined steps. The snippet leaves a dict
``result``: every weight of both models after each call, and the losses returned. This
script runs each under Keras 2.3.1 and writes ``cases.json`` into
``tests/goldens/trainable/`` (or ``outdir``). ``tests/test_trainable.py`` migrates each
snippet with ``kutils migrate`` (which rewrites the compile calls into
``compile(model, ...)``), runs it on Keras 3 and compares.
"""

from __future__ import annotations

from _snippets import record

# The two models every snippet builds: fixed weights, fixed data.
SETUP = """
import numpy as np
from keras.layers import BatchNormalization, Dense, Input
from keras.models import Model, Sequential
from keras.optimizers import SGD

rng = np.random.RandomState(5)
noise = rng.normal(0, 1, (6, 2)).astype("float32")
real = rng.normal(0.5, 1, (6, 3)).astype("float32")
ones = np.ones((6, 1), "float32")
zeros = np.zeros((6, 1), "float32")
g_weights = [
    rng.uniform(-1, 1, (2, 4)).astype("float32"),
    rng.uniform(-0.5, 0.5, 4).astype("float32"),
    rng.uniform(-1, 1, (4, 3)).astype("float32"),
    rng.uniform(-0.5, 0.5, 3).astype("float32"),
]
d_weights = [
    rng.uniform(-1, 1, (3, 4)).astype("float32"),
    rng.uniform(-0.5, 0.5, 4).astype("float32"),
    rng.uniform(-1, 1, (4, 1)).astype("float32"),
    rng.uniform(-0.5, 0.5, 1).astype("float32"),
]


def build_generator():
    model = Sequential([Dense(4, activation="tanh", input_dim=2), Dense(3)])
    model.set_weights(g_weights)
    return model


def build_discriminator():
    model = Sequential([Dense(4, activation="tanh", input_dim=3), Dense(1, activation="sigmoid")])
    model.set_weights(d_weights)
    return model


def snapshot(*models):
    return np.concatenate([w.reshape(-1) for m in models for w in m.get_weights()])


def losses(returned):
    return np.concatenate([np.asarray(r, "float32").reshape(-1) for r in returned])
"""

SNIPPETS = {
    # The Keras-GAN scripts' pattern, each model with its own SGD.
    "own_optimizers": """
discriminator = build_discriminator()
discriminator.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.1))
generator = build_generator()
z = Input(shape=(2,))
discriminator.trainable = False
combined = Model(z, discriminator(generator(z)))
combined.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.1))
result = {}
for step in range(2):
    fake = generator.predict(noise)
    d_loss = discriminator.train_on_batch(np.concatenate([real, fake]), np.concatenate([ones, zeros]))
    result["weights_after_d_%d" % step] = snapshot(discriminator, generator)
    g_loss = combined.train_on_batch(noise, ones)
    result["weights_after_g_%d" % step] = snapshot(discriminator, generator)
    result["losses_%d" % step] = losses([d_loss, g_loss])
""",
    # SGD with momentum (slots) and a metric; two discriminator steps a round. Adam is
    # left out: Keras 2.3.1's read of its step count under TensorFlow 2 varies from run
    # to run (docs/compat.md). (One optimizer instance given to
    # both compile calls, as the Keras-GAN scripts do, fails under Keras 2.3.1 with
    # TensorFlow 2: "Error while reading resource variable"; tests/test_trainable.py
    # checks Keras 2.2.4's meaning of it.)
    "momentum_and_metric": """
discriminator = build_discriminator()
discriminator.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.1, momentum=0.9), metrics=["accuracy"])
generator = build_generator()
z = Input(shape=(2,))
discriminator.trainable = False
combined = Model(z, discriminator(generator(z)))
combined.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.1, momentum=0.9))
result = {}
for step in range(2):
    fake = generator.predict(noise)
    d_real = discriminator.train_on_batch(real, ones)
    d_fake = discriminator.train_on_batch(fake, zeros)
    result["weights_after_d_%d" % step] = snapshot(discriminator, generator)
    g_loss = combined.train_on_batch(noise, ones)
    result["weights_after_g_%d" % step] = snapshot(discriminator, generator)
    result["losses_%d" % step] = losses([d_real, d_fake, g_loss])
""",
    # BatchNormalization in the discriminator: Keras 2.3.1 normalized the frozen
    # discriminator's batches with their own statistics in every training step and
    # never updated its moving statistics (a frozen model had no updates). (Not in the
    # generator: Keras 2.3.1's moving variance took the unbiased batch variance, Keras
    # 3's the biased one, another difference, in docs/compat.md.)
    "batch_normalization": """
discriminator = Sequential([Dense(4, input_dim=3), BatchNormalization(momentum=0.8), Dense(1, activation="sigmoid")])
discriminator.set_weights(d_weights[:2] + [np.array([1.5, 0.5, 1.0, 2.0], "float32"), np.array([0.1, -0.2, 0.3, 0.0], "float32"), np.zeros(4, "float32"), np.ones(4, "float32")] + d_weights[2:])
discriminator.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.1), metrics=["accuracy"])
generator = build_generator()
z = Input(shape=(2,))
discriminator.trainable = False
combined = Model(z, discriminator(generator(z)))
combined.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.1))
result = {}
for step in range(2):
    fake = generator.predict(noise)
    d_loss = discriminator.train_on_batch(np.concatenate([real, fake]), np.concatenate([ones, zeros]))
    result["weights_after_d_%d" % step] = snapshot(discriminator, generator)
    g_loss = combined.train_on_batch(noise, ones)
    result["weights_after_g_%d" % step] = snapshot(discriminator, generator)
    result["losses_%d" % step] = losses([d_loss, g_loss])
    result["predict_%d" % step] = discriminator.predict(real).reshape(-1)
""",
    # The discriminator trained with fit (one batch of all samples) after the freeze.
    "fit_after_freeze": """
discriminator = build_discriminator()
discriminator.compile(loss="binary_crossentropy", optimizer=SGD(lr=0.2))
generator = build_generator()
z = Input(shape=(2,))
discriminator.trainable = False
combined = Model(z, discriminator(generator(z)))
combined.compile(loss="mse", optimizer=SGD(lr=0.2))
result = {}
for step in range(2):
    fake = generator.predict(noise)
    discriminator.fit(np.concatenate([real, fake]), np.concatenate([ones, zeros]), batch_size=12, epochs=1, shuffle=False, verbose=0)
    result["weights_after_d_%d" % step] = snapshot(discriminator, generator)
    combined.fit(noise, ones, batch_size=6, epochs=1, shuffle=False, verbose=0)
    result["weights_after_g_%d" % step] = snapshot(discriminator, generator)
""",
}


def main():
    record("trainable", SETUP, SNIPPETS, clear_session=True)


if __name__ == "__main__":
    main()
