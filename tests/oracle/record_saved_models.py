"""Record the saved-model zoo with the real Keras 2.3.1 (the oracle of issue 27).

Run under the Keras 2.3.1 Python, never under Keras 3::

    /work/k2/bin/python tests/oracle/record_saved_models.py [outdir]

``outdir`` defaults to tests/goldens/saved_models/. For every model of the zoo this writes,
each the way a Keras 2 user saves a model:

- ``<name>.h5``: ``model.save()`` (architecture, weights and, when compiled, the
  training configuration and the optimizer state);
- ``<name>.json`` and ``<name>_weights.h5``: ``model.to_json()`` and
  ``model.save_weights()``;
- ``<name>.npz``: the fixed inputs ``x<i>`` and targets ``y<i>``, Keras 2.3.1's
  predictions ``pred<i>`` on the inputs, and, for compiled models, every layer's weights
  after one further ``train_on_batch(x, y)`` (``next/<layer>/<i>``, in Keras 2's order of
  ``layer.weights``).

``manifest.json`` lists the models with what a loader needs to know (custom objects by
name, whether the training step is random, the optimizer). Compiled models are trained for
a few steps before they are saved, so their files carry optimizer state.
"""

import json
import os
import shutil
import sys
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import keras
import tensorflow as tf
from keras import backend as K
from keras import layers as L
from keras import optimizers as O

assert keras.__version__ == "2.3.1", "run this script with the Keras 2.3.1 Python"

BATCH = 8
ZOO = []


def zoo(name, compiled=True, stochastic=False, custom=(), lambdas=()):
    """Register a zoo entry: a function returning ``(model, inputs, targets)``."""

    def register(build):
        ZOO.append(
            {
                "name": name,
                "build": build,
                "compiled": compiled,
                "stochastic": stochastic,
                "custom_objects": list(custom),
                "lambda_layers": list(lambdas),
            }
        )
        return build

    return register


def rng(seed):
    return np.random.RandomState(seed)


def floats(seed, *shape):
    return rng(seed).uniform(-1, 1, size=(BATCH, *shape)).astype("float32")


def one_hot(seed, classes):
    return np.eye(classes, dtype="float32")[rng(seed).randint(0, classes, BATCH)]


def tokens(seed, length, vocab):
    values = rng(seed).randint(1, vocab, size=(BATCH, length))
    values[:, :2] = 0  # leading padding, masked by mask_zero
    return values.astype("int32")


# -- custom objects (tests/test_saved_models.py defines the same ones for Keras 3) -------


class ScaledDense(L.Layer):
    """A custom layer with get_config: ``scale * (x @ kernel)``."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.scale = scale

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(int(input_shape[-1]), self.units), initializer="glorot_uniform"
        )
        super().build(input_shape)

    def call(self, inputs):
        return self.scale * K.dot(inputs, self.kernel)

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape[:-1]), self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "scale": self.scale})
        return config


def swish_k2(x):
    return x * K.sigmoid(x)


def weighted_mse(y_true, y_pred):
    return 2.0 * K.mean(K.square(y_pred - y_true), axis=-1)


def mean_pred(y_true, y_pred):
    return K.mean(y_pred)


CUSTOM = {
    "ScaledDense": ScaledDense,
    "swish_k2": swish_k2,
    "weighted_mse": weighted_mse,
    "mean_pred": mean_pred,
}


# -- the zoo -----------------------------------------------------------------------------


def mlp(activation="softmax", out=3, **dense):
    return keras.Sequential(
        [
            L.Dense(6, activation="relu", input_shape=(4,), **dense),
            L.Dense(out, activation=activation),
        ]
    )


def classifier(optimizer, loss="categorical_crossentropy", metrics=("accuracy",), seed=0):
    model = mlp()
    model.compile(optimizer, loss, metrics=list(metrics))
    return model, [floats(seed, 4)], [one_hot(seed + 1, 3)]


def regressor(optimizer, loss="mse", metrics=("mae",), seed=0):
    model = mlp(activation="linear", out=2)
    model.compile(optimizer, loss, metrics=list(metrics))
    return model, [floats(seed, 4)], [floats(seed + 1, 2)]


@zoo("mlp_sgd")
def _():
    return classifier(O.SGD(lr=0.1))


@zoo("mlp_sgd_nesterov_decay")
def _():
    return classifier(O.SGD(lr=0.05, momentum=0.9, nesterov=True, decay=0.01), seed=1)


@zoo("mlp_sgd_momentum")
def _():
    return regressor(O.SGD(learning_rate=0.05, momentum=0.5), seed=2)


@zoo("mlp_adam")
def _():
    return regressor(O.Adam(), seed=3)


@zoo("mlp_adam_amsgrad_decay")
def _():
    return classifier(O.Adam(lr=0.01, amsgrad=True, decay=1e-3), seed=4)


@zoo("mlp_adam_betas")
def _():
    return regressor(O.Adam(lr=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-5), seed=5)


@zoo("mlp_rmsprop_decay")
def _():
    return regressor(O.RMSprop(lr=0.01, rho=0.8, decay=0.01), loss="mae", metrics=["mse"], seed=6)


@zoo("mlp_adagrad")
def _():
    return classifier(O.Adagrad(lr=0.05, decay=1e-3), seed=7)


@zoo("mlp_adadelta")
def _():
    return regressor(O.Adadelta(lr=1.0, rho=0.9), seed=8)


@zoo("mlp_adamax")
def _():
    return classifier(O.Adamax(lr=0.01, decay=1e-3), seed=9)


@zoo("mlp_nadam")
def _():
    return regressor(O.Nadam(lr=0.005), seed=10)


@zoo("mlp_sgd_clipnorm")
def _():
    return regressor(O.SGD(lr=0.1, clipnorm=0.05), seed=11)


@zoo("mlp_adam_clipvalue")
def _():
    return classifier(O.Adam(lr=0.01, clipvalue=0.01), seed=12)


@zoo("mlp_loss_by_function")
def _():
    metrics = [keras.metrics.mean_absolute_error, "acc"]
    return regressor(O.SGD(lr=0.05), loss=keras.losses.mean_squared_error, metrics=metrics)


@zoo("mlp_loss_by_class")
def _():
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)
    metrics = [keras.metrics.CategoricalAccuracy(), "categorical_crossentropy"]
    return classifier(O.RMSprop(lr=0.01), loss=loss, metrics=metrics, seed=13)


@zoo("mlp_binary")
def _():
    model = mlp(activation="sigmoid", out=1)
    model.compile(O.SGD(lr=0.2), "binary_crossentropy", metrics=["accuracy", "binary_accuracy"])
    targets = (rng(15).uniform(size=(BATCH, 1)) > 0.5).astype("float32")
    return model, [floats(14, 4)], [targets]


@zoo("mlp_sparse")
def _():
    model = mlp()
    metrics = ["sparse_categorical_accuracy", "acc"]
    model.compile(O.Adam(lr=0.01), "sparse_categorical_crossentropy", metrics=metrics)
    targets = rng(17).randint(0, 3, size=(BATCH, 1)).astype("float32")
    return model, [floats(16, 4)], [targets]


@zoo("mlp_regularized")
def _():
    model = mlp(
        kernel_regularizer=keras.regularizers.l2(0.01),
        bias_regularizer=keras.regularizers.l1(0.01),
        activity_regularizer=keras.regularizers.l1_l2(0.001, 0.001),
        kernel_constraint=keras.constraints.max_norm(2.0),
        bias_constraint=keras.constraints.non_neg(),
    )
    model.compile(O.SGD(lr=0.1), "categorical_crossentropy", metrics=["accuracy"])
    return model, [floats(18, 4)], [one_hot(19, 3)]


@zoo("mlp_initializers", compiled=False)
def _():
    model = keras.Sequential(
        [
            L.Dense(5, kernel_initializer="he_normal", input_shape=(4,)),
            L.Dense(5, kernel_initializer="lecun_uniform", bias_initializer="ones"),
            L.Dense(5, kernel_initializer=keras.initializers.Orthogonal(gain=0.5)),
            L.Dense(5, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.1)),
            L.Dense(
                3,
                kernel_initializer="glorot_normal",
                bias_initializer=keras.initializers.Constant(0.1),
            ),
        ]
    )
    return model, [floats(20, 4)], None


@zoo("mlp_activations")
def _():
    model = keras.Sequential(
        [
            L.Dense(6, activation="elu", input_shape=(4,)),
            L.Dense(6, activation="selu"),
            L.Dense(6, activation="tanh"),
            L.Dense(6, activation="hard_sigmoid"),
            L.Dense(6, activation="softsign"),
            L.Dense(6, activation="softplus"),
            L.LeakyReLU(alpha=0.2),
            L.Dense(6),
            L.PReLU(),
            L.ELU(alpha=0.5),
            L.ThresholdedReLU(theta=0.1),
            L.ReLU(max_value=6.0, negative_slope=0.1),
            L.Dense(3),
            L.Softmax(),
        ]
    )
    model.compile(O.SGD(lr=0.1), "categorical_crossentropy", metrics=["accuracy"])
    return model, [floats(21, 4) * 3], [one_hot(22, 3)]


@zoo("mlp_uncompiled", compiled=False)
def _():
    return mlp(), [floats(23, 4)], None


@zoo("mlp_batchnorm_dropout", stochastic=True)
def _():
    model = keras.Sequential(
        [
            L.Dense(6, input_shape=(4,)),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dropout(0.3),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(O.Adam(lr=0.01), "categorical_crossentropy", metrics=["accuracy"])
    return model, [floats(24, 4)], [one_hot(25, 3)]


@zoo("mlp_batchnorm")
def _():
    model = keras.Sequential(
        [
            L.Dense(6, input_shape=(4,)),
            L.BatchNormalization(momentum=0.9, epsilon=1e-3),
            L.Activation("relu"),
            L.Dense(2),
        ]
    )
    model.compile(O.RMSprop(lr=0.01), "mse", metrics=["mae"])
    return model, [floats(26, 4)], [floats(27, 2)]


@zoo("mlp_frozen_layer")
def _():
    model = mlp()
    model.layers[0].trainable = False
    model.compile(O.SGD(lr=0.1, momentum=0.9), "categorical_crossentropy", metrics=["acc"])
    return model, [floats(28, 4)], [one_hot(29, 3)]


@zoo("cnn_conv2d")
def _():
    model = keras.Sequential(
        [
            L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(O.Adam(lr=0.01), "categorical_crossentropy", metrics=["accuracy"])
    return model, [floats(30, 8, 8, 1)], [one_hot(31, 3)]


@zoo("cnn_layers")
def _():
    model = keras.Sequential(
        [
            L.ZeroPadding2D(1, input_shape=(8, 8, 2)),
            L.Conv2D(3, 3, dilation_rate=2, padding="same"),
            L.Cropping2D(((1, 0), (0, 1))),
            L.SeparableConv2D(4, 3, depth_multiplier=2),
            L.DepthwiseConv2D(2, strides=1),
            L.AveragePooling2D(2, padding="same"),
            L.Conv2DTranspose(2, 2, strides=2),
            L.UpSampling2D(2),
            L.GlobalAveragePooling2D(),
            L.Dense(2),
        ]
    )
    model.compile(O.SGD(lr=0.05, momentum=0.8), "mse", metrics=["mae"])
    return model, [floats(32, 8, 8, 2)], [floats(33, 2)]


@zoo("cnn_conv1d")
def _():
    model = keras.Sequential(
        [
            L.Conv1D(4, 3, padding="causal", activation="relu", input_shape=(10, 3)),
            L.MaxPooling1D(2),
            L.Conv1D(4, 2, strides=2),
            L.GlobalMaxPooling1D(),
            L.Dense(2),
        ]
    )
    model.compile(O.RMSprop(lr=0.005), "mse", metrics=["mae"])
    return model, [floats(34, 10, 3)], [floats(35, 2)]


@zoo("cnn_batchnorm")
def _():
    model = keras.Sequential(
        [
            L.Conv2D(3, 3, input_shape=(6, 6, 1)),
            L.BatchNormalization(axis=-1),
            L.GlobalMaxPooling2D(),
            L.Dense(2, activation="softmax"),
        ]
    )
    model.compile(O.SGD(lr=0.1), "categorical_crossentropy", metrics=["accuracy"])
    return model, [floats(36, 6, 6, 1)], [one_hot(37, 2)]


@zoo("cnn_conv3d", compiled=False)
def _():
    model = keras.Sequential(
        [
            L.Conv3D(2, 2, input_shape=(4, 4, 4, 1)),
            L.MaxPooling3D(),
            L.Flatten(),
            L.Dense(2),
        ]
    )
    return model, [floats(38, 4, 4, 4, 1)], None


@zoo("embedding_lstm")
def _():
    model = keras.Sequential(
        [
            L.Embedding(20, 4, input_length=6, mask_zero=True),
            L.LSTM(5),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(O.Adam(lr=0.01), "binary_crossentropy", metrics=["accuracy"])
    targets = (rng(40).uniform(size=(BATCH, 1)) > 0.5).astype("float32")
    return model, [tokens(39, 6, 20)], [targets]


@zoo("bidirectional_gru_timedistributed")
def _():
    model = keras.Sequential(
        [
            L.Embedding(15, 4, input_length=5),
            L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="concat"),
            L.TimeDistributed(L.Dense(2, activation="softmax")),
        ]
    )
    model.compile(O.RMSprop(lr=0.01), "categorical_crossentropy", metrics=["accuracy"])
    targets = np.eye(2, dtype="float32")[rng(42).randint(0, 2, size=(BATCH, 5))]
    return model, [tokens(41, 5, 15)], [targets]


@zoo("gru_reset_after")
def _():
    model = keras.Sequential(
        [L.GRU(4, reset_after=True, input_shape=(5, 3)), L.Dense(2)],
    )
    model.compile(O.Adam(lr=0.01), "mse", metrics=["mae"])
    return model, [floats(43, 5, 3)], [floats(44, 2)]


@zoo("simplernn_after_reshape")
def _():
    model = keras.Sequential(
        [
            L.Reshape((4, 3), input_shape=(12,)),
            L.SimpleRNN(4, activation="tanh"),
            L.Dense(2),
        ]
    )
    model.compile(O.SGD(lr=0.1), "mse", metrics=["mae"])
    return model, [floats(45, 12)], [floats(46, 2)]


@zoo("lstm_stacked")
def _():
    model = keras.Sequential(
        [
            L.LSTM(4, return_sequences=True, implementation=1, input_shape=(5, 3)),
            L.LSTM(3, go_backwards=True, unit_forget_bias=False, recurrent_activation="sigmoid"),
            L.Dense(2),
        ]
    )
    model.compile(O.Adagrad(lr=0.05), "mse", metrics=["mae"])
    return model, [floats(47, 5, 3)], [floats(48, 2)]


@zoo("conv_lstm2d", compiled=False)
def _():
    model = keras.Sequential(
        [L.ConvLSTM2D(2, 2, input_shape=(3, 5, 5, 1)), L.Flatten(), L.Dense(2)],
    )
    return model, [floats(49, 3, 5, 5, 1)], None


@zoo("sequence_layers", compiled=False)
def _():
    model = keras.Sequential(
        [
            L.Masking(mask_value=0.0, input_shape=(4, 3)),
            L.SimpleRNN(3),
            L.RepeatVector(2),
            L.Permute((2, 1)),
            L.GaussianNoise(0.1),
            L.GaussianDropout(0.1),
            L.SpatialDropout1D(0.1),
            L.AlphaDropout(0.1),
            L.ActivityRegularization(l1=0.01),
            L.GlobalAveragePooling1D(),
        ]
    )
    return model, [floats(50, 4, 3)], None


@zoo("functional_two_in_two_out")
def _():
    a = L.Input((4,), name="in_a")
    b = L.Input((3,), name="in_b")
    merged = L.concatenate([L.Dense(5, activation="relu")(a), L.Dense(5, activation="relu")(b)])
    out_a = L.Dense(2, name="out_a")(merged)
    out_b = L.Dense(3, activation="softmax", name="out_b")(merged)
    model = keras.Model([a, b], [out_a, out_b])
    model.compile(
        O.Adam(lr=0.01),
        loss={"out_a": "mse", "out_b": "categorical_crossentropy"},
        loss_weights={"out_a": 0.3, "out_b": 1.0},
        metrics={"out_a": "mae", "out_b": "accuracy"},
    )
    return model, [floats(51, 4), floats(52, 3)], [floats(53, 2), one_hot(54, 3)]


@zoo("functional_loss_lists")
def _():
    a = L.Input((4,))
    hidden = L.Dense(5, activation="tanh")(a)
    model = keras.Model(a, [L.Dense(2)(hidden), L.Dense(1, activation="sigmoid")(hidden)])
    model.compile(
        O.SGD(lr=0.1, momentum=0.9),
        loss=["mae", "binary_crossentropy"],
        loss_weights=[1.0, 0.5],
        metrics=["mse", "accuracy"],
    )
    targets = (rng(57).uniform(size=(BATCH, 1)) > 0.5).astype("float32")
    return model, [floats(55, 4)], [floats(56, 2), targets]


@zoo("functional_merges")
def _():
    a = L.Input((4,))
    b = L.Input((4,))
    parts = [
        L.add([a, b]),
        L.subtract([a, b]),
        L.multiply([a, b]),
        L.average([a, b]),
        L.maximum([a, b]),
        L.minimum([a, b]),
        L.dot([a, b], axes=1, normalize=True),
    ]
    merged = L.Concatenate(axis=-1)(parts)
    model = keras.Model([a, b], L.Dense(2)(merged))
    model.compile(O.Adam(lr=0.01), "mse")
    return model, [floats(58, 4), floats(59, 4)], [floats(60, 2)]


@zoo("functional_shared_layer")
def _():
    a = L.Input((4,))
    b = L.Input((4,))
    shared = L.Dense(3, activation="tanh", name="shared")
    model = keras.Model([a, b], L.Dense(1)(L.concatenate([shared(a), shared(b)])))
    model.compile(O.SGD(lr=0.1), "mse", metrics=["mae"])
    return model, [floats(61, 4), floats(62, 4)], [floats(63, 1)]


@zoo("functional_shared_nested_sequential")
def _():
    tower = keras.Sequential(
        [L.Dense(4, activation="relu", input_shape=(5,)), L.Dense(3)], name="tower"
    )
    a = L.Input((5,))
    b = L.Input((5,))
    model = keras.Model([a, b], L.Dense(1, activation="sigmoid")(L.subtract([tower(a), tower(b)])))
    model.compile(O.Adam(lr=0.01), "binary_crossentropy", metrics=["accuracy"])
    targets = (rng(66).uniform(size=(BATCH, 1)) > 0.5).astype("float32")
    return model, [floats(64, 5), floats(65, 5)], [targets]


@zoo("functional_nested_model")
def _():
    inner_in = L.Input((4,))
    inner = keras.Model(inner_in, L.Dense(3, activation="relu")(inner_in), name="inner")
    outer_in = L.Input((4,))
    model = keras.Model(outer_in, L.Dense(2)(inner(outer_in)))
    model.compile(O.RMSprop(lr=0.01), "mse", metrics=["mae"])
    return model, [floats(67, 4)], [floats(68, 2)]


@zoo("sequential_in_sequential")
def _():
    inner = keras.Sequential([L.Dense(5, activation="relu", input_shape=(4,)), L.Dense(3)])
    model = keras.Sequential([inner, L.Dense(2)])
    model.compile(O.Adamax(lr=0.01), "mse", metrics=["mae"])
    return model, [floats(69, 4)], [floats(70, 2)]


@zoo("functional_batchnorm_nested", compiled=True)
def _():
    inner = keras.Sequential(
        [L.Dense(4, input_shape=(3,)), L.BatchNormalization(), L.Dense(2)], name="bn_tower"
    )
    x = L.Input((3,))
    model = keras.Model(x, L.Dense(1)(inner(x)))
    model.compile(O.SGD(lr=0.05), "mse")
    return model, [floats(71, 3)], [floats(72, 1)]


@zoo("custom_layer", custom=["ScaledDense"])
def _():
    model = keras.Sequential([ScaledDense(4, scale=0.5, input_shape=(3,)), L.Dense(2)])
    model.compile(O.Adam(lr=0.01), "mse", metrics=["mae"])
    return model, [floats(73, 3)], [floats(74, 2)]


@zoo("custom_activation", custom=["swish_k2"])
def _():
    model = keras.Sequential([L.Dense(5, activation=swish_k2, input_shape=(4,)), L.Dense(2)])
    model.compile(O.SGD(lr=0.1), "mse", metrics=["mae"])
    return model, [floats(75, 4)], [floats(76, 2)]


@zoo("custom_loss_metric", custom=["weighted_mse", "mean_pred"])
def _():
    model = mlp(activation="linear", out=2)
    model.compile(O.Adam(lr=0.01), weighted_mse, metrics=[mean_pred, "mae"])
    return model, [floats(77, 4)], [floats(78, 2)]


@zoo("lambda_layer", compiled=False, lambdas=["double"])
def _():
    model = keras.Sequential(
        [L.Dense(3, input_shape=(4,)), L.Lambda(lambda x: x * 2.0 + 1.0, name="double")]
    )
    return model, [floats(79, 4)], None


def _marker_function(x):
    # Writes a marker file when it runs: a loader that executes the stored bytecode leaves
    # the marker behind (the environment variable names where).
    path = __import__("os").environ.get("KUTILS_LAMBDA_MARKER", "kutils_lambda_marker")
    with open(path, "w") as handle:
        handle.write("the stored Lambda bytecode ran")
    return x * 3.0


@zoo("lambda_marker", compiled=False, lambdas=["marker"])
def _():
    model = keras.Sequential(
        [L.Dense(2, input_shape=(4,)), L.Lambda(_marker_function, name="marker")]
    )
    return model, [floats(80, 4)], None


@zoo("checkpoint_model", custom=[])
def _():
    return classifier(O.Adam(lr=0.01), seed=81)


@zoo("multi_gpu_template")
def _():
    # The Keras 2 recipe: build the template on the CPU, train a multi_gpu_model replica
    # of it, save the template. Keras 2.3.1 refuses multi_gpu_model without GPUs (see the
    # manifest), so the template is trained directly: the file is the same.
    with tf.device("/cpu:0"):
        model = mlp()
    model.compile(O.SGD(lr=0.05, momentum=0.9), "categorical_crossentropy", metrics=["acc"])
    return model, [floats(83, 4)], [one_hot(84, 3)]


# -- recording ---------------------------------------------------------------------------


def layer_weights(model):
    """Each layer's weights in Keras 2's order, by layer name."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def record(entry, outdir, scratch):
    np.random.seed(0)
    tf.compat.v1.set_random_seed(0)
    name = entry["name"]
    model, inputs, targets = entry["build"]()
    arrays = {}
    for i, x in enumerate(inputs):
        arrays[f"x{i}"] = x
    if entry["compiled"]:
        for i, y in enumerate(targets):
            arrays[f"y{i}"] = y
        callbacks = []
        if name == "checkpoint_model":
            callbacks = [
                keras.callbacks.ModelCheckpoint(os.path.join(scratch, "ckpt.h5")),
                keras.callbacks.ModelCheckpoint(
                    os.path.join(scratch, "ckpt_weights.h5"), save_weights_only=True
                ),
            ]
        model.fit(inputs, targets, batch_size=BATCH, epochs=3, verbose=0, callbacks=callbacks)
    extra = {}
    if name == "checkpoint_model":
        shutil.copy(os.path.join(scratch, "ckpt.h5"), os.path.join(outdir, name + ".h5"))
        extra["weights_file"] = os.path.join(scratch, "ckpt_weights.h5")
    else:
        model.save(os.path.join(outdir, name + ".h5"))
    with open(os.path.join(outdir, name + ".json"), "w") as handle:
        handle.write(model.to_json())
    weights_path = os.path.join(outdir, name + "_weights.h5")
    if "weights_file" in extra:
        shutil.copy(extra["weights_file"], weights_path)
    else:
        model.save_weights(weights_path)
    predictions = model.predict(inputs, batch_size=BATCH)
    if not isinstance(predictions, list):
        predictions = [predictions]
    for i, prediction in enumerate(predictions):
        arrays[f"pred{i}"] = prediction
    if entry["compiled"]:
        model.train_on_batch(inputs, targets)
        for layer, values in layer_weights(model).items():
            for i, value in enumerate(values):
                arrays[f"next/{layer}/{i}"] = value
    np.savez_compressed(os.path.join(outdir, name + ".npz"), **arrays)
    summary = {key: entry[key] for key in ("name", "compiled", "stochastic", "custom_objects")}
    summary["lambda_layers"] = entry["lambda_layers"]
    summary["class_name"] = type(model).__name__
    summary["optimizer"] = type(model.optimizer).__name__ if entry["compiled"] else None
    summary["files"] = {"h5": name + ".h5", "json": name + ".json", "weights": name + "_weights.h5"}
    return summary


def multi_gpu_attempt():
    """Whether Keras 2.3.1 writes a multi_gpu_model here (it needs two GPUs)."""
    from keras.utils import multi_gpu_model

    try:
        multi_gpu_model(mlp(), gpus=2)
    except (ValueError, AttributeError) as error:
        # AttributeError: Keras 2.3.1 lists devices with an API TensorFlow 2.1 removed.
        return f"Keras 2.3.1 could not build multi_gpu_model here: {type(error).__name__}: {error}"
    return "multi_gpu_model built"


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, os.pardir, "goldens", "saved_models")
    outdir = os.path.abspath(argv[1] if len(argv) > 1 else default)
    if not os.path.isdir(outdir):
        os.makedirs(outdir)
    scratch = tempfile.mkdtemp()
    os.environ["KUTILS_LAMBDA_MARKER"] = os.path.join(scratch, "marker")
    models = []
    try:
        for entry in ZOO:
            K.clear_session()
            models.append(record(entry, outdir, scratch))
            print("recorded", entry["name"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    manifest = {
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "batch_size": BATCH,
        "multi_gpu_model": multi_gpu_attempt(),
        "models": models,
    }
    with open(os.path.join(outdir, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
    print(f"recorded {len(models)} models into {outdir}")


if __name__ == "__main__":
    main(sys.argv)
