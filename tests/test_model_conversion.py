"""``kutils migrate --convert-models``: Keras 2.3.1 model files saved again as ``.keras``.

The model files are the zoo recorded with the real Keras 2.3.1 (tests/goldens/saved_models,
see tests/oracle/record_saved_models.py); each ``.npz`` holds the probe inputs and Keras
2.3.1's predictions on them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ZOO = Path(__file__).resolve().parent / "goldens" / "saved_models"
# Several layer kinds and graph shapes, none needing custom objects.
CONVERTED = ["mlp_adam", "cnn_layers", "embedding_lstm", "functional_two_in_two_out"]


def migrate(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _inputs(golden) -> list[np.ndarray]:
    return [golden[key] for key in sorted(golden.files) if key.startswith("x")]


def _predictions(golden) -> list[np.ndarray]:
    return [golden[key] for key in sorted(golden.files) if key.startswith("pred")]


@pytest.fixture(scope="module")
def converted_tree(tmp_path_factory):
    tree = tmp_path_factory.mktemp("project")
    for name in CONVERTED:
        shutil.copy(ZOO / f"{name}.h5", tree / f"{name}.h5")
    shutil.copy(ZOO / "mlp_adam_weights.h5", tree / "weights_only.h5")
    (tree / "train.py").write_text("from keras.utils import to_categorical\n")
    result = migrate("--convert-models", tree, cwd=tree)
    return tree, result


def test_each_keras2_model_file_gets_a_keras_file_with_keras_2_predictions(converted_tree):
    import keras

    tree, result = converted_tree
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONVERTED:
        assert f"{name}.h5: converted to" in result.stdout
        model = keras.saving.load_model(tree / f"{name}.keras")
        golden = np.load(ZOO / f"{name}.npz")
        inputs = _inputs(golden)
        predicted = model.predict(inputs[0] if len(inputs) == 1 else inputs, verbose=0)
        predicted = predicted if isinstance(predicted, list) else [predicted]
        for want, got in zip(_predictions(golden), predicted, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert "converted 4 model file(s)" in result.stderr


def test_originals_stay_and_weights_only_files_are_left_alone(converted_tree):
    tree, _ = converted_tree
    for name in CONVERTED:
        assert (tree / f"{name}.h5").read_bytes() == (ZOO / f"{name}.h5").read_bytes()
    assert not (tree / "weights_only.keras").exists()
    assert sorted(p.name for p in tree.glob(".kutils-convert-*")) == []
    assert (tree / "train.py").read_text() == "from kutils import to_categorical\n"


def test_an_existing_keras_file_is_never_overwritten(tmp_path):
    shutil.copy(ZOO / "mlp_sgd.h5", tmp_path / "model.h5")
    (tmp_path / "model.keras").write_bytes(b"the user's own file")
    result = migrate("--convert-models", tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert "model.h5: model not converted:" in result.stdout
    assert "already exists and was left alone" in result.stdout
    assert (tmp_path / "model.keras").read_bytes() == b"the user's own file"


def test_a_model_that_cannot_load_is_reported_and_nothing_is_written(tmp_path):
    shutil.copy(ZOO / "custom_layer.h5", tmp_path / "custom.h5")
    result = migrate("--convert-models", tmp_path / "custom.h5", cwd=tmp_path)
    assert result.returncode == 1
    assert "custom.h5: model not converted:" in result.stdout
    assert "ScaledDense" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.h5"]


def test_a_lambda_model_is_not_converted_unless_its_code_is_trusted(tmp_path):
    shutil.copy(ZOO / "lambda_marker.h5", tmp_path / "lambda.h5")
    result = migrate("--convert-models", tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert "lambda.h5: model not converted:" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lambda.h5"]


def test_diff_lists_the_conversions_and_writes_nothing(tmp_path):
    shutil.copy(ZOO / "mlp_sgd.h5", tmp_path / "model.h5")
    result = migrate("--diff", "--convert-models", tmp_path, cwd=tmp_path)
    assert result.returncode == 1
    assert "model.h5: would convert to .keras" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.h5"]


LOAD_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
import kutils
model = kutils.load_model(sys.argv[1])
golden = np.load(sys.argv[2])
print(float(np.abs(model.predict(golden["x0"], verbose=0) - golden["pred0"]).max()))
"""


def test_a_model_with_keras_2_activity_regularization_converts_and_loads_with_kutils(tmp_path):
    """Its .keras file names kutils' Keras 2 activity regularizer: the report says to load
    it with kutils.load_model, which does so in a fresh process, with Keras 2's output."""
    shutil.copy(ZOO / "mlp_regularized.h5", tmp_path / "model.h5")
    result = migrate("--convert-models", tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(load it with kutils.load_model)" in result.stdout
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS, "model.keras", ZOO / "mlp_regularized.npz"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert float(loaded.stdout.strip().splitlines()[-1]) < 1e-5
