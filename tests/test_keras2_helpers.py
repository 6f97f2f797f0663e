"""predict_classes / predict_proba and kutils.preprocessing against the real Keras 2.3.1.

The goldens (tests/goldens/keras2_helpers/cases.json) were recorded by
tests/oracle/record_keras2_helpers.py under Keras 2.3.1; the same case builders run here
on Keras 3 through kutils. Regenerate with ``nox -s oracle``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "oracle"))
import record_keras2_helpers as cases  # noqa: E402

GOLDEN = json.loads((HERE / "goldens" / "keras2_helpers" / "cases.json").read_text())


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"


@pytest.fixture(scope="module")
def keras():
    import keras

    return keras


@pytest.fixture(scope="module")
def preprocessing():
    pytest.importorskip("scipy", reason="ImageDataGenerator's transforms need SciPy")
    import kutils.preprocessing

    return kutils.preprocessing


PREDICT_IDS = [
    f"{method}/{spec[0]}/batch{batch_size}"
    for spec in cases.PREDICT_MODELS
    for batch_size in cases.PREDICT_BATCH_SIZES
    for method in ("predict_classes", "predict_proba")
]


@pytest.mark.parametrize("case_id", PREDICT_IDS)
def test_predictions_are_keras_2_3_1s(keras, case_id):
    method, name, batch = case_id.split("/")
    spec = next(spec for spec in cases.PREDICT_MODELS if spec[0] == name)
    model = cases.build_predict_model(keras, spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cases.call_predict(
            keras, method, model, cases.predict_inputs(spec), int(batch.removeprefix("batch"))
        )
    expected = GOLDEN["predictions"][case_id]
    assert list(result.shape) == expected["shape"]
    assert str(result.dtype) == expected["dtype"]
    if method == "predict_classes":
        assert result.tolist() == expected["values"]
    else:
        np.testing.assert_allclose(result, expected["values"], rtol=1e-5, atol=1e-6)
    warned = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert warned == expected["warnings"]


def test_predict_classes_of_a_two_output_model_says_what_to_do(keras):
    import kutils

    inputs = keras.Input(shape=(3,))
    model = keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(1)(inputs)])
    with pytest.raises(ValueError, match=r"one output.*model\.predict"):
        kutils.predict_classes(model, np.zeros((2, 3), "float32"))


def test_predict_proba_of_something_not_a_model_names_it():
    import kutils

    with pytest.raises(TypeError, match=r"Received: model=\[1, 2\]"):
        kutils.predict_proba([1, 2], np.zeros((2, 3)))


PREPROCESSING = GOLDEN["preprocessing"]


@pytest.mark.parametrize("index", range(len(cases.TOKENIZER_OPTIONS)))
def test_tokenizer_is_keras_2_3_1s(preprocessing, index):
    result = cases.tokenizer_case(preprocessing, cases.TOKENIZER_OPTIONS[index])
    assert json.loads(json.dumps(result)) == PREPROCESSING[f"tokenizer/{index}"]


def test_text_functions_are_keras_2_3_1s(preprocessing):
    texts = [*cases.TEXTS, "Don't STOP-me now"]
    assert [preprocessing.text_to_word_sequence(t) for t in texts] == PREPROCESSING[
        "text_to_word_sequence"
    ]
    assert [
        preprocessing.hashing_trick(t, 50, hash_function="md5") for t in cases.TEXTS
    ] == PREPROCESSING["hashing_trick/md5"]


@pytest.mark.parametrize("index", range(len(cases.PAD_CASES)))
def test_pad_sequences_is_keras_2_3_1s(preprocessing, index):
    padded = preprocessing.pad_sequences(cases.PAD_SEQUENCES, **cases.PAD_CASES[index])
    expected = PREPROCESSING[f"pad_sequences/{index}"]
    assert padded.tolist() == expected["values"]
    assert str(padded.dtype) == expected["dtype"]


@pytest.mark.parametrize("index", range(len(cases.TIMESERIES_CASES)))
def test_timeseries_generator_is_keras_2_3_1s(preprocessing, index):
    result = cases.timeseries_case(preprocessing, cases.TIMESERIES_CASES[index])
    assert result == PREPROCESSING[f"timeseries/{index}"]


def test_sampling_table_is_keras_2_3_1s(preprocessing):
    table = preprocessing.make_sampling_table(20)
    # The golden is rounded to 10 decimals.
    np.testing.assert_allclose(table, PREPROCESSING["make_sampling_table"], rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", sorted(cases.IMAGE_EXACT))
def test_image_data_generator_is_keras_2_3_1s(preprocessing, name):
    batch_x, batch_y = cases.image_batch(preprocessing, cases.IMAGE_EXACT[name])
    expected = PREPROCESSING[f"image/{name}"]
    assert batch_y.tolist() == expected["y"]
    assert str(batch_x.dtype) == expected["dtype"]
    np.testing.assert_allclose(batch_x, expected["x"], rtol=1e-5, atol=2e-4)


@pytest.mark.parametrize("name", sorted(cases.IMAGE_GEOMETRIC))
def test_geometric_transforms_differ_from_keras_2_only_by_the_documented_geometry(
    preprocessing, name
):
    """docs/compat.md, kutils.preprocessing: Keras 3 transforms about the image's centre
    and in (x, y) order; Keras 2.3.1 about a point one pixel off it and in (row, column)
    order. Keras 2.3.1's own code with Keras 3's geometry put in gives kutils' result;
    Keras 2.3.1 as shipped does not."""
    batch_x, batch_y = cases.image_batch(preprocessing, cases.IMAGE_GEOMETRIC[name])
    with_keras3_centre = GOLDEN["geometric_keras3_centre"][name]
    as_shipped = GOLDEN["geometric_keras2"][name]
    assert batch_y.tolist() == with_keras3_centre["y"] == as_shipped["y"]
    np.testing.assert_allclose(batch_x, with_keras3_centre["x"], rtol=1e-4, atol=2e-3)
    assert not np.allclose(batch_x, as_shipped["x"], rtol=1e-4, atol=2e-3)


def test_compat_documents_the_geometry_of_the_transforms():
    compat = (HERE.parent / "docs" / "compat.md").read_text(encoding="utf-8")
    assert "## kutils.preprocessing" in compat.splitlines()
    assert "transform_matrix_offset_center" in compat


def test_every_keras_2_name_resolves_to_keras_s_own_object(preprocessing):
    import keras._tf_keras.keras.preprocessing.image as tf_keras_image

    for name in preprocessing.__all__:
        assert getattr(preprocessing, name) is not None, name
    assert preprocessing.ImageDataGenerator is tf_keras_image.ImageDataGenerator


def test_an_unknown_name_lists_the_offered_ones():
    import kutils.preprocessing

    with pytest.raises(AttributeError, match=r"offers Keras 2\.3\.1's keras\.preprocessing names"):
        kutils.preprocessing.ImageGenerator  # noqa: B018
