"""A two-output discriminator (real/fake and class) trained with one dict of class weights
per output and one list of metrics for both outputs, as semi-supervised GANs did."""

import numpy as np
from keras.layers import Dense, Input
from keras.models import Model

images = Input((8,))
hidden = Dense(6, activation="relu")(images)
real = Dense(1, activation="sigmoid", name="real")(hidden)
digit = Dense(4, activation="softmax", name="digit")(hidden)
critic = Model(images, [real, digit])
critic.compile(
    loss=["binary_crossentropy", "categorical_crossentropy"],
    loss_weights=[0.5, 0.5],
    optimizer="adam",
    metrics=["accuracy"],
)
batch = np.random.rand(10, 8)
is_real = np.ones((10, 1))
digits = np.eye(4)[np.random.randint(0, 4, 10)]
weights_real = {0: 1, 1: 1}
weights_digit = {i: 0.8 for i in range(3)}
weights_digit[3] = 0.1
logs = critic.train_on_batch(batch, [is_real, digits], class_weight=[weights_real, weights_digit])
assert len(logs) == 5  # loss, two output losses, two accuracies
print("ok")
