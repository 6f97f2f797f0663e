"""The main job: a Keras 2.2/2.3 era training script, run unchanged on Keras 3 through kutils.

The script has two parts:

* The KERAS 2 SCRIPT (everything above the RUNNER marker) is written the way the Keras 2
  API documentation showed: ``get_file`` fetches and extracts a dataset archive, labels go
  through ``to_categorical`` and inputs through ``normalize``, the training data is
  written to an HDF5 file and read back through ``HDF5Matrix``, the validation data comes
  from a ``Sequence`` subclass written the Keras 2 way (no ``super().__init__()``), a
  custom activation is saved and loaded back inside ``CustomObjectScope``, the model is
  shown with ``print_summary`` and ``plot_model``, and it trains through
  ``multi_gpu_model`` with the documentation's ``try``/``except ValueError`` fallback,
  saving the template. Against the Keras 2 script, only its imports changed:
  ``from keras.utils import ...`` became ``from kutils import ...`` and
  ``from keras import backend as K`` became ``from keras import ops as K``. Training
  passes the Sequence to ``fit(validation_data=...)``, as tf.keras 2 scripts did
  (Keras 3 has no ``fit_generator``).
* The RUNNER (below the marker) is not part of the Keras 2 script. It makes the dataset
  archive and serves it from a loopback HTTP server (no internet needed), and on a
  machine without a GPU splits the CPU into 2 logical devices before TensorFlow starts
  and sets ``KUTILS_MULTI_GPU_DEVICE_TYPE=CPU`` so that the unchanged
  ``multi_gpu_model(model, gpus=2)`` replicates on them. It says which devices it used.

Run it with ``nox -s demo``, or from a clone: ``python examples/legacy_training.py``
(``--epochs``, ``--samples`` and ``--output-dir`` choose a smaller setting or where the
files go). The last line printed is the validation accuracy of the reloaded model.
"""

import argparse
import hashlib
import http.server
import io
import os
import tarfile
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import numpy as np
from keras import ops as K  # Keras 2: from keras import backend as K
from keras.layers import Activation, Dense, Dropout
from keras.models import Sequential, load_model

# Keras 2: from keras.utils import (...)
from kutils import (
    CustomObjectScope,
    HDF5Matrix,
    Sequence,
    get_file,
    multi_gpu_model,
    normalize,
    plot_model,
    print_summary,
    to_categorical,
)

# ================================ KERAS 2 SCRIPT ================================

NUM_CLASSES = 4
BATCH_SIZE = 32


def lecun_tanh(x):
    """LeCun's scaled tanh: a custom activation, saved by name and restored by scope."""
    return 1.7159 * K.tanh(2.0 / 3.0 * x)


class ValidationSequence(Sequence):
    """Keras 2 style: no super().__init__(), just __len__ and __getitem__."""

    def __init__(self, x, y, batch_size):
        self.x, self.y = x, y
        self.batch_size = batch_size

    def __len__(self):
        return int(np.ceil(len(self.x) / float(self.batch_size)))

    def __getitem__(self, idx):
        batch_x = self.x[idx * self.batch_size : (idx + 1) * self.batch_size]
        batch_y = self.y[idx * self.batch_size : (idx + 1) * self.batch_size]
        return batch_x, batch_y


def load_data(origin, file_hash):
    path = get_file("blobs.tar.gz", origin=origin, file_hash=file_hash, extract=True)
    data_dir = os.path.join(os.path.dirname(path), "blobs")
    with np.load(os.path.join(data_dir, "train.npz")) as f:
        x_train, y_train = f["x"], f["y"]
    with np.load(os.path.join(data_dir, "val.npz")) as f:
        x_val, y_val = f["x"], f["y"]
    return (x_train, y_train), (x_val, y_val)


def main(origin, file_hash, epochs):
    (x_train, y_train), (x_val, y_val) = load_data(origin, file_hash)
    print(x_train.shape[0], "train samples,", x_val.shape[0], "validation samples")

    x_train = normalize(x_train, axis=-1, order=2)
    x_val = normalize(x_val, axis=-1, order=2)
    y_train = to_categorical(y_train, NUM_CLASSES)
    y_val = to_categorical(y_val, NUM_CLASSES)

    with h5py.File("train.h5", "w") as f:
        f.create_dataset("x", data=x_train)
        f.create_dataset("y", data=y_train)
    x_train = HDF5Matrix("train.h5", "x")
    y_train = HDF5Matrix("train.h5", "y")
    validation = ValidationSequence(x_val, y_val, BATCH_SIZE)

    model = Sequential()
    model.add(Dense(64, input_shape=(x_train.shape[1],)))
    model.add(Activation(lecun_tanh))
    model.add(Dropout(0.1))
    model.add(Dense(NUM_CLASSES, activation="softmax"))
    print_summary(model)
    plot_model(model, to_file="model.png", show_shapes=True)

    try:
        parallel_model = multi_gpu_model(model, gpus=2, cpu_relocation=True)
        print("Training using multiple GPUs..")
    except ValueError:
        parallel_model = model
        print("Training using single GPU or CPU..")
    parallel_model.compile(
        loss="categorical_crossentropy", optimizer="rmsprop", metrics=["accuracy"]
    )
    parallel_model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        verbose=2,
        shuffle="batch",
        validation_data=validation,
    )

    model.save("model.h5")  # the template holds the trained weights
    with CustomObjectScope({"lecun_tanh": lecun_tanh}):
        restored = load_model("model.h5")
    restored.compile(loss="categorical_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    score = restored.evaluate(x_val, y_val, verbose=0)
    print("Validation accuracy of the reloaded model:", score[1])
    return parallel_model, score[1]


# ============= RUNNER: not part of the Keras 2 script (set-up for this machine) =============


def _make_archive(samples, seed=0):
    """A tar.gz of 4 Gaussian blobs in 16 dimensions: blobs/train.npz and blobs/val.npz."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.6, size=(NUM_CLASSES, 16))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, count in (("train", samples), ("val", max(samples // 4, BATCH_SIZE))):
            labels = rng.integers(0, NUM_CLASSES, size=count)
            x = (centers[labels] + rng.normal(size=(count, 16))).astype("float32")
            member = io.BytesIO()
            np.savez(member, x=x, y=labels)
            info = tarfile.TarInfo(f"blobs/{name}.npz")
            info.size = member.tell()
            member.seek(0)
            tar.addfile(info, member)
    return buffer.getvalue()


def _serve(payload):
    """Serve ``payload`` at http://127.0.0.1:<port>/blobs.tar.gz from a daemon thread."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/blobs.tar.gz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/blobs.tar.gz"


def _choose_devices():
    """With no GPU, split the CPU into 2 logical devices for multi_gpu_model (before TF starts)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"{len(gpus)} GPU(s)"
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    os.environ["KUTILS_MULTI_GPU_DEVICE_TYPE"] = "CPU"
    return "no GPU found: 2 logical CPU devices (/cpu:0, /cpu:1) stand in for 2 GPUs"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--samples", type=int, default=4000, help="training samples")
    parser.add_argument(
        "--output-dir", default="legacy_training_output", help="model.png, model.h5, train.h5"
    )
    args = parser.parse_args()

    print("Devices:", _choose_devices())
    payload = _make_archive(args.samples)
    server, url = _serve(payload)
    os.makedirs(args.output_dir, exist_ok=True)
    os.chdir(args.output_dir)
    try:
        parallel, accuracy = main(url, hashlib.sha256(payload).hexdigest(), args.epochs)
    finally:
        server.shutdown()
        server.server_close()
    used = getattr(parallel, "devices", None) or ["the default device (no replication)"]
    print("multi_gpu_model replicas ran on:", ", ".join(used))
    chance = 1.0 / NUM_CLASSES
    print(f"Files written to {os.getcwd()}: model.png, model.h5, train.h5")
    print(f"accuracy after {args.epochs} epochs: {accuracy:.3f} (chance: {chance:.3f})")
    if accuracy <= chance + 0.2:
        raise SystemExit("the model did not learn: accuracy is close to chance")
