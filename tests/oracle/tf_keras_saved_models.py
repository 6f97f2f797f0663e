"""Record tf.keras (the Keras 2 line kept alive as tf-keras) saved models for kutils' tests.

Not one of the Keras 2.3.1 recorders (``record_*.py``, run by the ``oracle`` session):
this one needs a Python with tf-keras installed (``pip install tf-keras``)::

    /path/to/tf-keras/python tests/oracle/tf_keras_saved_models.py [outdir]

``outdir`` defaults to tests/goldens/saved_models_tf_keras/. Each model is compiled,
trained two steps, saved with ``model.save('<name>.h5')`` and as ``to_json()`` +
``save_weights('<name>_weights.h5')``; ``<name>.npz`` holds the inputs ``x<i>``, the
targets ``y<i>``, tf.keras's predictions ``pred0`` and each layer's weights after one
more ``train_on_batch`` (``next/<layer>/<i>``, ``layer.get_weights()`` order).
"""

import json
import os
import sys

import numpy as np
import tf_keras as keras

L = keras.layers
MODELS = []


def zoo(build):
    MODELS.append(build)
    return build


@zoo
def gru_batchnorm_adam(rng):
    model = keras.Sequential([L.GRU(4, input_shape=(5, 3)), L.BatchNormalization(), L.Dense(2)])
    model.compile(keras.optimizers.Adam(learning_rate=0.01), "mse", metrics=["mae"])
    return model, [rng.uniform(size=(8, 5, 3))], [rng.uniform(size=(8, 2))]


@zoo
def shared_tower_sgd(rng):
    tower = keras.Sequential([L.Dense(4, activation="relu", input_shape=(3,)), L.Dense(2)])
    a, b = L.Input((3,)), L.Input((3,))
    model = keras.Model([a, b], L.Dense(1)(L.concatenate([tower(a), tower(b)])))
    model.compile(keras.optimizers.SGD(learning_rate=0.1, momentum=0.9), "mae")
    return model, [rng.uniform(size=(8, 3)), rng.uniform(size=(8, 3))], [np.ones((8, 1))]


@zoo
def embedding_bilstm_rmsprop(rng):
    model = keras.Sequential(
        [
            L.Embedding(10, 3, input_length=4),
            L.Bidirectional(L.LSTM(3, return_sequences=True)),
            L.TimeDistributed(L.Dense(2)),
            L.Flatten(),
            L.Dense(1),
        ]
    )
    model.compile(keras.optimizers.RMSprop(learning_rate=0.01, momentum=0.5), "mse")
    return model, [rng.randint(0, 10, size=(8, 4))], [rng.uniform(size=(8, 1))]


@zoo
def mlp_legacy_adam_clipnorm(rng):
    model = keras.Sequential([L.Dense(5, activation="tanh", input_shape=(4,)), L.Dense(3)])
    optimizer = keras.optimizers.legacy.Adam(learning_rate=0.01, clipnorm=0.1, decay=0.01)
    model.compile(optimizer, "mse")
    return model, [rng.uniform(size=(8, 4))], [rng.uniform(size=(8, 3))]


def record(build, outdir):
    name = build.__name__
    keras.utils.set_random_seed(0)
    model, inputs, targets = build(np.random.RandomState(0))
    inputs = [x.astype("int32" if x.dtype.kind == "i" else "float32") for x in inputs]
    targets = [y.astype("float32") for y in targets]
    x = inputs if len(inputs) > 1 else inputs[0]
    model.fit(x, targets[0], batch_size=8, epochs=2, verbose=0)
    model.save(os.path.join(outdir, f"{name}.h5"))
    with open(os.path.join(outdir, f"{name}.json"), "w") as handle:
        handle.write(model.to_json())
    model.save_weights(os.path.join(outdir, f"{name}_weights.h5"))
    arrays = {f"x{i}": value for i, value in enumerate(inputs)}
    arrays.update({f"y{i}": value for i, value in enumerate(targets)})
    arrays["pred0"] = model.predict(x, verbose=0)
    model.train_on_batch(x, targets[0])
    for layer in model.layers:
        for i, value in enumerate(layer.get_weights()):
            arrays[f"next/{layer.name}/{i}"] = value
    np.savez_compressed(os.path.join(outdir, f"{name}.npz"), **arrays)
    return {"name": name, "optimizer": type(model.optimizer).__name__}


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, os.pardir, "goldens", "saved_models_tf_keras")
    outdir = os.path.abspath(argv[1] if len(argv) > 1 else default)
    os.makedirs(outdir, exist_ok=True)
    models = [record(build, outdir) for build in MODELS]
    manifest = {"tf_keras_version": keras.__version__, "models": models}
    with open(os.path.join(outdir, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
    print(f"recorded {len(models)} models into {outdir}")


if __name__ == "__main__":
    main(sys.argv)
