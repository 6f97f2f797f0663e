"""keras.backend math used in layers, losses and Lambda (Keras 3 moved it to keras.ops/keras.random)."""

import numpy as np
from keras import backend as K
from keras.layers import Dense, Input, Lambda
from keras.models import Model


def centred_relu_pair(t):
    t = t - K.mean(t, axis=1, keepdims=True)
    t = K.l2_normalize(t, axis=1)
    return K.concatenate([K.relu(t), K.relu(-t)], axis=1)


def sample_around(args):
    mean, log_var = args
    batch = K.shape(mean)[0]
    width = K.int_shape(mean)[1]
    noise = K.random_normal(shape=(batch, width))
    return mean + K.exp(0.5 * log_var) * noise


def rms_loss(y_true, y_pred):
    return K.sqrt(K.mean(K.square(y_pred - y_true), axis=-1) + K.epsilon())


src = Input(shape=(6,))
mean = Dense(3)(src)
log_var = Dense(3)(src)
z = Lambda(sample_around, output_shape=(3,))([mean, log_var])
out = Dense(2)(Lambda(centred_relu_pair, output_shape=(6,))(z))
net = Model(src, out)
net.compile("adam", rms_loss)
net.fit(np.random.rand(8, 6), np.random.rand(8, 2), epochs=1, verbose=0)
print("ok")
