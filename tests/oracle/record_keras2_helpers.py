"""Record what Keras 2.3.1 computes for the helpers `kutils migrate` rewrites calls to.

Run with the Keras 2.3.1 Python (``nox -s oracle``, or by hand)::

    python3.7 tests/oracle/record_keras2_helpers.py [outdir]

It writes ``cases.json`` into ``tests/goldens/keras2_helpers/`` (or ``outdir``): for each
case its inputs (made from fixed seeds, so the test rebuilds them) and Keras 2.3.1's
outputs, dtypes and shapes. ``tests/test_keras2_helpers.py`` runs the same cases through
kutils on Keras 3 and compares. The cases cover Sequential's ``predict_classes`` and
``predict_proba`` and the preprocessing classes kutils hands out
(``kutils.preprocessing``).

The case builders below run on both sides: ``keras`` is Keras 2.3.1 here and Keras 3
in the test, and each builder uses only what both have.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

# The models of predict_classes / predict_proba: (name, input size, hidden units, output
# units, output activation). A linear output gives values outside [0, 1].
PREDICT_MODELS = [
    ("softmax3", 5, 8, 3, "softmax"),
    ("sigmoid1", 4, 6, 1, "sigmoid"),
    ("sigmoid3", 4, 6, 3, "sigmoid"),
    ("linear2", 3, 4, 2, "linear"),
    ("linear1", 3, 4, 1, "linear"),
]
PREDICT_BATCH_SIZES = [32, 7]


def predict_model_weights(spec):
    """The weights of a PREDICT_MODELS model, from a seed of its own."""
    name, inputs, hidden, outputs, _ = spec
    rng = np.random.RandomState(sum(map(ord, name)))
    return [
        rng.uniform(-1.5, 1.5, (inputs, hidden)).astype("float32"),
        rng.uniform(-0.5, 0.5, (hidden,)).astype("float32"),
        rng.uniform(-1.5, 1.5, (hidden, outputs)).astype("float32"),
        rng.uniform(-0.5, 0.5, (outputs,)).astype("float32"),
    ]


def predict_inputs(spec):
    name, inputs = spec[0], spec[1]
    return np.random.RandomState(7 + len(name)).normal(0, 2, (23, inputs)).astype("float32")


def build_predict_model(keras, spec):
    _, inputs, hidden, outputs, activation = spec
    model = keras.models.Sequential()
    if keras.__version__.startswith("2."):
        model.add(keras.layers.Dense(hidden, activation="tanh", input_shape=(inputs,)))
    else:
        model.add(keras.Input(shape=(inputs,)))
        model.add(keras.layers.Dense(hidden, activation="tanh"))
    model.add(keras.layers.Dense(outputs, activation=activation))
    model.set_weights(predict_model_weights(spec))
    return model


TEXTS = [
    "The cat sat on the mat.",
    "The dog sat down; the cat ran!",
    "A bird, a cat and a dog",
    "Nothing here is new",
]
TOKENIZER_OPTIONS = [
    {},
    {"num_words": 6},
    {"num_words": 8, "oov_token": "<oov>"},
    {"lower": False, "filters": ""},
    {"char_level": True, "num_words": 12},
]
MATRIX_MODES = ["binary", "count", "tfidf", "freq"]
PAD_CASES = [
    {},
    {"maxlen": 3},
    {"maxlen": 3, "padding": "post"},
    {"maxlen": 3, "truncating": "post"},
    {"maxlen": 6, "value": -1},
    {"maxlen": 4, "dtype": "float32", "padding": "post", "truncating": "post", "value": 0.5},
]
PAD_SEQUENCES = [[1, 2, 3, 4, 5], [6, 7], [], [8, 9, 10]]
TIMESERIES_CASES = [
    {"length": 3, "batch_size": 4},
    {"length": 4, "sampling_rate": 2, "batch_size": 3},
    {"length": 3, "stride": 2, "batch_size": 2},
    {"length": 2, "start_index": 3, "end_index": 15, "batch_size": 5},
    {"length": 3, "reverse": True, "batch_size": 4},
]
# ImageDataGenerator options with no randomness, or with randomness that numpy's seed
# fixes and no geometric transform (flips).
IMAGE_EXACT = {
    "plain": {},
    "rescale": {"rescale": 1.0 / 255},
    "samplewise": {"samplewise_center": True, "samplewise_std_normalization": True},
    "featurewise": {"featurewise_center": True, "featurewise_std_normalization": True},
    "flips": {"horizontal_flip": True, "vertical_flip": True},
    "channel_shift": {"channel_shift_range": 0.3},
}
# Geometric transforms: Keras 3 turns about the image's centre and in (x, y) order,
# Keras 2.3.1 about a point one pixel off the centre and in (row, column) order
# (docs/compat.md). Recorded both as Keras 2.3.1 computed them and with Keras 3's
# geometry put into Keras 2.3.1's own code.
IMAGE_GEOMETRIC = {
    "rotation": {"rotation_range": 40},
    "shift": {"width_shift_range": 0.25, "height_shift_range": 0.2},
    "shear": {"shear_range": 20},
    "zoom": {"zoom_range": 0.3},
}


def images():
    return np.random.RandomState(3).uniform(0, 255, (6, 9, 7, 3)).astype("float32")


def image_batch(preprocessing, options):
    """The first batch of a seeded flow over images() with these options."""
    x = images()
    generator = preprocessing.ImageDataGenerator(**options)
    if options.get("featurewise_center") or options.get("featurewise_std_normalization"):
        generator.fit(x)
    np.random.seed(11)
    batch_x, batch_y = next(generator.flow(x, np.arange(6), batch_size=4, shuffle=True, seed=5))
    return batch_x, batch_y


def tokenizer_case(preprocessing, options):
    tokenizer = preprocessing.Tokenizer(**options)
    tokenizer.fit_on_texts(TEXTS)
    sequences = tokenizer.texts_to_sequences([*TEXTS, "an unknown cat"])
    case = {
        "word_index": tokenizer.word_index,
        "word_counts": dict(tokenizer.word_counts),
        "sequences": sequences,
        "texts": tokenizer.sequences_to_texts(sequences),
        "matrices": {
            mode: np.round(tokenizer.texts_to_matrix(TEXTS[:2], mode=mode), 6).tolist()
            for mode in MATRIX_MODES
        },
    }
    copy = preprocessing.tokenizer_from_json(tokenizer.to_json())
    case["from_json_sequences"] = copy.texts_to_sequences(TEXTS[:2])
    return case


def timeseries_case(preprocessing, options):
    data = np.arange(40).reshape(20, 2)
    generator = preprocessing.TimeseriesGenerator(data, np.arange(20), **options)
    batches = [generator[i] for i in range(len(generator))]
    return {
        "length": len(generator),
        "x": [b[0].tolist() for b in batches],
        "y": [b[1].tolist() for b in batches],
    }


def call_predict(keras, method, model, x, batch_size):
    """The one difference between the sides: Keras 2's method, or kutils' function."""
    if keras.__version__.startswith("2."):
        return getattr(model, method)(x, batch_size=batch_size)
    import kutils

    return getattr(kutils, method)(model, x, batch_size=batch_size)


def record_predictions(keras):
    cases = {}
    for spec in PREDICT_MODELS:
        model = build_predict_model(keras, spec)
        x = predict_inputs(spec)
        for batch_size in PREDICT_BATCH_SIZES:
            for method in ("predict_classes", "predict_proba"):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    result = call_predict(keras, method, model, x, batch_size)
                warned = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
                cases[f"{method}/{spec[0]}/batch{batch_size}"] = {
                    "values": result.tolist(),
                    "dtype": str(result.dtype),
                    "shape": list(result.shape),
                    "warnings": warned,
                }
    return cases


def record_preprocessing(preprocessing):
    cases = {}
    for index, options in enumerate(TOKENIZER_OPTIONS):
        cases[f"tokenizer/{index}"] = tokenizer_case(preprocessing, options)
    cases["text_to_word_sequence"] = [
        preprocessing.text_to_word_sequence(text) for text in [*TEXTS, "Don't STOP-me now"]
    ]
    cases["hashing_trick/md5"] = [
        preprocessing.hashing_trick(text, 50, hash_function="md5") for text in TEXTS
    ]
    for index, options in enumerate(PAD_CASES):
        padded = preprocessing.pad_sequences(PAD_SEQUENCES, **options)
        cases[f"pad_sequences/{index}"] = {
            "values": padded.tolist(),
            "dtype": str(padded.dtype),
        }
    for index, options in enumerate(TIMESERIES_CASES):
        cases[f"timeseries/{index}"] = timeseries_case(preprocessing, options)
    table = preprocessing.make_sampling_table(20)
    cases["make_sampling_table"] = np.round(table, 10).tolist()
    for name, options in IMAGE_EXACT.items():
        batch_x, batch_y = image_batch(preprocessing, options)
        cases[f"image/{name}"] = {
            "x": np.round(batch_x, 4).tolist(),
            "y": batch_y.tolist(),
            "dtype": str(batch_x.dtype),
        }
    return cases


def record_geometric(preprocessing, centre_module=None):
    """The geometric image cases; with ``centre_module``, Keras 3's geometry patched in."""
    cases = {}
    original = None
    if centre_module is not None:
        original = centre_module.transform_matrix_offset_center

        def keras3_centre(matrix, x, y):
            # Keras 3 turns about the centre of the pixel grid (size / 2 - 0.5), then
            # swaps the matrix's first two axes (P M P), as its transform works in
            # (x, y) order where numpy indexes (row, column).
            o_x, o_y = float(x) / 2 - 0.5, float(y) / 2 - 0.5
            offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
            reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
            swap = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
            return swap.dot(offset.dot(matrix).dot(reset)).dot(swap)

        centre_module.transform_matrix_offset_center = keras3_centre
    try:
        for name, options in IMAGE_GEOMETRIC.items():
            batch_x, batch_y = image_batch(preprocessing, options)
            cases[name] = {"x": np.round(batch_x, 3).tolist(), "y": batch_y.tolist()}
    finally:
        if original is not None:
            centre_module.transform_matrix_offset_center = original
    return cases


def main():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    out = (
        sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "goldens", "keras2_helpers")
    )
    import keras

    if not keras.__version__.startswith("2.3"):
        sys.exit("record with Keras 2.3.1 (Python 3.7): see tests/oracle/record_keras2_helpers.py")
    import keras.preprocessing.image as image
    import keras.preprocessing.sequence as sequence
    import keras.preprocessing.text as text
    from keras_preprocessing.image import affine_transformations

    class Preprocessing:
        pass

    preprocessing = Preprocessing()
    for module in (image, text, sequence):
        for name in dir(module):
            if not name.startswith("_"):
                setattr(preprocessing, name, getattr(module, name))
    golden = {
        "keras": keras.__version__,
        "predictions": record_predictions(keras),
        "preprocessing": record_preprocessing(preprocessing),
        "geometric_keras2": record_geometric(preprocessing),
        "geometric_keras3_centre": record_geometric(preprocessing, affine_transformations),
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "cases.json"), "w") as file:
        json.dump(golden, file, sort_keys=True, separators=(",", ":"))
        file.write("\n")
    print("wrote", os.path.join(out, "cases.json"))


if __name__ == "__main__":
    main()
