"""Keras 2 code that leaves an argument at a default Keras 3 changed: no error, other numbers.

Adadelta() and Adagrad() (also named in compile) and GRU(units) are checked against the
Keras 2.3.1 formulas written out in numpy below: one training step of a linear model, and
a GRU's outputs for fixed weights.
"""

import numpy as np
from keras.layers import GRU, Dense
from keras.models import Sequential
from keras.optimizers import Adadelta, Adagrad

rng = np.random.RandomState(0)
x = rng.normal(0, 1, (8, 3)).astype("float32")
y = rng.normal(0, 1, (8, 2)).astype("float32")
kernel = rng.uniform(-1, 1, (3, 2)).astype("float32")
bias = np.zeros(2, "float32")
# The gradient of Keras 2's mse (mean over outputs, then over the batch) for the kernel.
gradient = 2.0 * x.T.dot(x.dot(kernel) + bias - y) / y.size
eps = 1e-7
keras2_step = {
    # Adadelta, learning rate 1.0, rho 0.95, from zero accumulators.
    "adadelta": 1.0 * gradient * np.sqrt(eps) / np.sqrt(0.05 * gradient**2 + eps),
    # Adagrad, learning rate 0.01, from zero accumulators.
    "adagrad": 0.01 * gradient / (np.abs(gradient) + eps),
}


def one_step(build):
    net = Sequential([Dense(2, input_shape=(3,))])
    net.set_weights([kernel, bias])
    build(net)
    net.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return kernel - net.get_weights()[0]


for name, build in [
    ("adadelta", lambda net: net.compile(optimizer=Adadelta(), loss="mse")),
    ("adagrad", lambda net: net.compile(optimizer=Adagrad(), loss="mse")),
    ("adadelta", lambda net: net.compile(optimizer="adadelta", loss="mse")),
    ("adagrad", lambda net: net.compile(loss="mse", optimizer="adagrad")),
]:
    step = one_step(build)
    # Keras 3's Adagrad adds eps under the square root: a step of a tiny gradient
    # (0.006 here) is 0.1 % shorter than Keras 2's, whatever the arguments.
    assert np.allclose(step, keras2_step[name], rtol=2e-3, atol=1e-6), (name, step)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def keras2_gru(seq, w, u, b, units):
    """Keras 2.3.1's GRU (reset_after=False): the reset gate applies before U_h."""
    h = np.zeros((seq.shape[0], units), "float32")
    for t in range(seq.shape[1]):
        z = sigmoid(seq[:, t].dot(w[:, :units]) + h.dot(u[:, :units]) + b[:units])
        r = sigmoid(seq[:, t].dot(w[:, units:-units]) + h.dot(u[:, units:-units]) + b[units:-units])
        candidate = np.tanh(seq[:, t].dot(w[:, -units:]) + (r * h).dot(u[:, -units:]) + b[-units:])
        h = z * h + (1 - z) * candidate
    return h


units = 4
seq = rng.normal(0, 1, (2, 5, 3)).astype("float32")
net = Sequential([GRU(units, input_shape=(5, 3))])
weights = [rng.uniform(-1, 1, w.shape).astype("float32") for w in net.get_weights()]
assert weights[2].shape == (3 * units,), weights[2].shape  # Keras 2's bias: one row
net.set_weights(weights)
assert np.allclose(net.predict(seq), keras2_gru(seq, *weights, units), atol=1e-5)
print("ok")
