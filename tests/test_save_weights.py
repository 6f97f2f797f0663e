"""kutils.save_weights (Keras 2's ``save_weights`` at any file name) against Keras 2.3.1.

The goldens in tests/goldens/save_weights/ were recorded by
tests/oracle/record_save_weights.py under Keras 2.3.1: ``keras2_weights.hdf5``, the file
Keras 2.3.1's ``model.save_weights`` wrote, and ``cases.json``, what Keras 2 snippets
computed (among them Keras 2.3.1 loading ``kutils_weights.hdf5``, which kutils wrote).
Each snippet is migrated with ``kutils migrate`` and run on Keras 3 here.

``python tests/test_save_weights.py`` rewrites ``kutils_weights.hdf5`` (then re-record).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import kutils
from kutils._migrate_model_calls import ORDER_NOTE
from kutils.migrate import main as migrate_main
from kutils.migrate import migrate_source

HERE = Path(__file__).resolve().parent
FOLDER = HERE / "goldens" / "save_weights"
GOLDEN = json.loads((FOLDER / "cases.json").read_text())
CASES = GOLDEN["cases"]
KERAS2_FILE = FOLDER / "keras2_weights.hdf5"
KUTILS_FILE = FOLDER / "kutils_weights.hdf5"
KUTILS_FILE_SEED = 5  # the weights kutils_weights.hdf5 holds (fixed_weights(model, 5))


def test_the_goldens_come_from_keras_2_3_1():
    assert GOLDEN["keras"] == "2.3.1"
    with h5py.File(KERAS2_FILE, "r") as file:
        assert file.attrs["keras_version"] == "2.3.1"


def _migrated(name: str, path: str | None, extra: str = "") -> dict:
    text, findings, _ = migrate_source(CASES[name]["snippet"] + extra)
    assert [m for _, m in findings if m != ORDER_NOTE] == []
    assert any(m == ORDER_NOTE for _, m in findings) == name.startswith("metrics")
    scope: dict = {"path": path}
    exec(compile(text, f"<{name}>", "exec"), scope)
    return scope


def _close(value, recorded, what):
    value = np.asarray(value)
    assert value.dtype == np.dtype(recorded["dtype"]), what
    assert list(value.shape) == recorded["shape"], what
    np.testing.assert_allclose(value, recorded["values"], rtol=1e-5, atol=1e-6, err_msg=what)


def _tree(file: h5py.File) -> dict:
    """Every group's attributes and every dataset's dtype, shape and values, by path."""

    def attributes(item) -> dict:
        # The stored type too: Keras 2 wrote names as fixed-length bytes (|S5).
        return {
            key: (str(item.attrs.get_id(key).dtype), np.asarray(value).tolist())
            for key, value in item.attrs.items()
        }

    found: dict = {"/": attributes(file)}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            found[name] = (str(item.dtype), item.shape, item[()].tolist())
        else:
            found[name] = attributes(item)

    file.visititems(visit)
    return found


# -- the file kutils writes is the file Keras 2.3.1 wrote ----------------------------------


def test_migrated_save_writes_the_hdf5_layout_keras_2_3_1_wrote(tmp_path):
    path = tmp_path / "discriminator_weights.hdf5"
    scope = _migrated("save", str(path))
    assert "save_weights(model, path)" in migrate_source(CASES["save"]["snippet"])[0]
    with h5py.File(KERAS2_FILE, "r") as keras2, h5py.File(path, "r") as ours:
        expected, written = _tree(keras2), _tree(ours)
    # The version of the Keras that wrote it differs, as it should; nothing else.
    assert expected["/"].pop("keras_version") == ("object", "2.3.1")
    assert written["/"].pop("keras_version") == ("object", keras.__version__)
    assert sorted(written) == sorted(expected)
    for name in expected:
        assert written[name] == expected[name], name
    _close(scope["result"]["predict"][0], CASES["save"]["result"]["predict"][0], "predict 0")
    _close(scope["result"]["predict"][1], CASES["save"]["result"]["predict"][1], "predict 1")


def test_a_kept_literal_h5_name_is_saved_through_kutils_as_keras_2_3_1_saved_it(
    tmp_path, monkeypatch, capsys
):
    # `model.save_weights("discriminator.h5")`, a name the script also gives
    # os.path.exists: migrate keeps it and routes the save and the load through kutils.
    case = CASES["save_literal_name_kept"]
    project = tmp_path / "project"
    project.mkdir()
    script = project / "train.py"
    script.write_text(case["snippet"])
    assert migrate_main([str(project)]) == 0  # nothing left to change by hand
    text = script.read_text()
    save, load = 'save_weights("discriminator.h5")', 'load_weights("discriminator.h5")'
    expected = case["snippet"].replace(f"model.{save}", 'save_weights(model, "discriminator.h5")')
    expected = expected.replace(f"fresh.{load}", 'load_weights(fresh, "discriminator.h5")')
    expected = expected.replace("fresh.predict(x)", "predict(fresh, x)")
    imports = "from kutils import load_weights, predict, save_weights\n"
    assert imports in text and text.replace(imports, "", 1) == expected  # the rest as it was
    capsys.readouterr()
    assert migrate_main([str(project)]) == 0
    assert script.read_text() == text  # a second run changes nothing
    assert "rewrote 0," in capsys.readouterr().err
    monkeypatch.chdir(project)
    scope: dict = {}
    exec(compile(text, "<save_literal_name_kept>", "exec"), scope)
    recorded = case["result"]
    assert bool(scope["result"]["saved"]) is recorded["saved"]["values"] is True
    for index in range(2):  # the first model's weights, loaded into the second
        _close(scope["result"]["predict"][index], recorded["predict"][index], f"predict {index}")
    # The same model and weights as the `save` case: the file Keras 2.3.1 wrote there.
    with h5py.File(KERAS2_FILE, "r") as keras2, h5py.File("discriminator.h5", "r") as ours:
        expected_tree, written = _tree(keras2), _tree(ours)
    expected_tree["/"].pop("keras_version"), written["/"].pop("keras_version")
    assert written == expected_tree


@pytest.mark.parametrize("name", ["load_kutils_file", "load_kutils_file_by_name"])
def test_keras_2_3_1_loaded_the_file_kutils_wrote(name):
    # Keras 2.3.1 loaded kutils_weights.hdf5 and predicted; Keras 3 does the same here.
    recorded = CASES[name]["result"]
    scope = _migrated(name, str(KUTILS_FILE))
    result = scope["result"]
    for index in range(2):
        _close(result["predict"][index], recorded["predict"][index], f"predict {index}")
    for layer, values in recorded["weights"].items():
        for index, value in enumerate(values):
            _close(result["weights"][layer][index], value, f"{layer} weight {index}")
    # The file's weights are not those the model was built with: loading changed them.
    model = scope["build"]()
    scope["fixed_weights"](model, 1)
    assert not np.allclose(model.predict(scope["x"], verbose=0)[1], result["predict"][1])


def test_committed_kutils_file_is_what_kutils_writes_today(tmp_path):
    path = tmp_path / "again.hdf5"
    _write_kutils_file(path)
    with h5py.File(KUTILS_FILE, "r") as committed, h5py.File(path, "r") as today:
        old, new = _tree(committed), _tree(today)
    old["/"].pop("keras_version"), new["/"].pop("keras_version")
    assert repr(new) == repr(old)


def _write_kutils_file(path) -> None:
    model, _, _ = _two_outputs(KUTILS_FILE_SEED)
    kutils.save_weights(model, path)


# -- Keras 3 reads what kutils writes ---------------------------------------------------------


def _two_outputs(seed: int):
    """The recording script's model, with its fixed weights of ``seed``, on Keras 3."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_record", HERE / "oracle" / "record_save_weights.py"
    )
    assert spec is not None and spec.loader is not None
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    text, findings, _ = migrate_source(
        record.SETUP + f"model = build()\nfixed_weights(model, {seed})\n"
    )
    assert findings == []
    scope: dict = {}
    exec(compile(text, "<setup>", "exec"), scope)
    return scope["model"], scope["build"], scope["x"]


@pytest.mark.parametrize("name", ["w.h5", "w.hdf5", "model.ckpt", "weights"])
def test_keras_3_load_weights_and_kutils_load_weights_read_it(tmp_path, name):
    model, build, x = _two_outputs(7)
    path = tmp_path / name
    kutils.save_weights(model, path)
    expected = model.predict(x, verbose=0)
    loaders = [kutils.load_weights]
    if name.endswith((".h5", ".hdf5")):  # Keras 3 reads only these names
        loaders.append(lambda target, where: target.load_weights(where))
    for load in loaders:
        fresh = build()
        load(fresh, str(path))
        for got, want in zip(fresh.predict(x, verbose=0), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_weights_h5_name_gets_keras_3_format(tmp_path):
    model, build, x = _two_outputs(8)
    path = tmp_path / "w.weights.h5"
    kutils.save_weights(model, path)
    fresh = build()
    fresh.load_weights(path)  # Keras 3's own reader of that name
    np.testing.assert_array_equal(fresh.predict(x, verbose=0)[1], model.predict(x, verbose=0)[1])
    with h5py.File(path, "r") as file:
        assert "layer_names" not in file.attrs  # Keras 3's layout, not Keras 2's


def test_weights_outside_the_layers_are_saved_too(tmp_path):
    # Keras 2 left a subclassed model's own weights out of the file; kutils keeps them.
    class Scaled(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2, name="dense")
            self.scale = self.add_weight(shape=(2,), initializer="ones", name="scale")

        def call(self, inputs):
            return self.dense(inputs) * self.scale

    x = np.ones((3, 4), "float32")
    model = Scaled()
    model(x)
    model.scale.assign([2.0, -3.0])
    path = tmp_path / "scaled.h5"
    kutils.save_weights(model, path)
    fresh = Scaled()
    fresh(x)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.scale.numpy(), [2.0, -3.0])
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


# -- writing: atomic, overwrite, errors -------------------------------------------------------


def test_an_existing_file_is_replaced_whole_and_no_temporary_is_left(tmp_path):
    model, _, _ = _two_outputs(9)
    path = tmp_path / "w.hdf5"
    path.write_bytes(b"not a weights file" * 1000)
    kutils.save_weights(model, path)
    assert h5py.is_hdf5(path)
    assert sorted(os.listdir(tmp_path)) == ["w.hdf5"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "w.hdf5"
    path.write_bytes(b"the old file")

    class Broken(keras.Model):
        @property
        def layers(self):
            raise RuntimeError("cannot list the layers")

    with pytest.raises(RuntimeError, match="cannot list the layers"):
        kutils.save_weights(Broken(), path)
    assert path.read_bytes() == b"the old file"
    assert os.listdir(tmp_path) == ["w.hdf5"]


@pytest.mark.parametrize(("answer", "written"), [("y\n", True), ("n\n", False)])
def test_overwrite_false_asks_as_keras_2_did(tmp_path, monkeypatch, capsys, answer, written):
    import io

    model, _, _ = _two_outputs(10)
    path = tmp_path / "w.hdf5"
    path.write_bytes(b"the old file")
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    kutils.save_weights(model, path, overwrite=False)
    assert h5py.is_hdf5(path) is written
    assert "already exists - overwrite? [y/n]" in capsys.readouterr().out


def test_overwrite_false_without_an_answer_raises_and_keeps_the_file(tmp_path, monkeypatch):
    import io

    model, _, _ = _two_outputs(10)
    path = tmp_path / "w.hdf5"
    path.write_bytes(b"the old file")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        kutils.save_weights(model, path, overwrite=False)
    assert path.read_bytes() == b"the old file"


def test_overwrite_false_writes_a_new_file_without_asking(tmp_path):
    model, _, _ = _two_outputs(10)
    kutils.save_weights(model, tmp_path / "new.hdf5", overwrite=False)
    assert h5py.is_hdf5(tmp_path / "new.hdf5")


def test_bad_paths_are_refused_clearly(tmp_path):
    model, _, _ = _two_outputs(10)
    with pytest.raises(TypeError, match="Received: filepath of type int"):
        kutils.save_weights(model, 3)  # type: ignore[arg-type]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        kutils.save_weights(model, tmp_path)


# -- compile(loss=[two], metrics=[...]): Keras 2's values on Keras 3 ---------------------------

# Keras 2.3.1's metric names -> Keras 3's (output layers named valid and label).
KERAS3_NAMES = {
    "loss": "loss",
    "valid_loss": "valid_loss",
    "label_loss": "label_loss",
    "valid_accuracy": "valid_accuracy",
    "label_accuracy": "label_accuracy",
    "valid_mse": "valid_mse",
    "label_mse": "label_mse",
}


@pytest.mark.parametrize(
    "name",
    [
        "metrics_flat_list",
        "metrics_through_a_name",
        "metrics_positional",
        "metrics_positional_named_optimizer",
    ],
)
def test_migrated_metrics_give_keras_2_3_1_values(name):
    text = migrate_source(CASES[name]["snippet"])[0]
    assert "metrics=[[" in text
    if name == "metrics_positional_named_optimizer":  # Keras 3 takes loss_weights third
        assert "Adadelta(learning_rate=1.0)" in text
        assert 'metrics=[["accuracy", "mse"], ["accuracy", "mse"]], loss_weights=[1.0' in text
    assert migrate_source(text)[0] == text  # a second run changes nothing
    recorded = CASES[name]["result"]
    scope = _migrated(name, None)
    result, model = scope["result"], scope["model"]
    keras2_names = recorded["metrics_names"]
    # Keras 3 lists the metric values sorted by name after the losses; by name they agree.
    for key in ("evaluate", "test_on_batch", "train_on_batch"):
        if key not in recorded:
            continue
        values = dict(zip(keras2_names, recorded[key]["values"], strict=True))
        order = _keras3_order(model, keras2_names)
        got = dict(zip(order, np.asarray(result[key], "float32").tolist(), strict=True))
        for metric, value in values.items():
            np.testing.assert_allclose(got[KERAS3_NAMES[metric]], value, rtol=1e-5, atol=1e-6)
    if "history" in recorded:
        for metric, series in recorded["history"].items():
            _close(np.asarray(result["history"][KERAS3_NAMES[metric]], "float32"), series, metric)


def test_positional_metrics_through_kutils_compile_give_keras_2_3_1_values():
    # The file sets trainable, so compile becomes kutils.compile, which takes Keras 2's
    # positions: the frozen-at-compile layer stays frozen, the metrics are per output.
    name = "metrics_positional_trainable"
    text = migrate_source(CASES[name]["snippet"])[0]
    assert "compile(model, SGD(learning_rate=0.1), [" in text
    assert 'metrics=[["accuracy"], ["accuracy"]])' in text
    assert migrate_source(text)[0] == text
    recorded = CASES[name]["result"]
    scope = _migrated(name, None)
    result = scope["result"]
    values = dict(zip(recorded["metrics_names"], recorded["train_on_batch"]["values"], strict=True))
    order = _keras3_order(scope["model"], recorded["metrics_names"])
    got = dict(zip(order, np.asarray(result["train_on_batch"], "float32").tolist(), strict=True))
    for metric, value in values.items():
        np.testing.assert_allclose(got[KERAS3_NAMES[metric]], value, rtol=1e-5, atol=1e-6)
    label = scope["model"].get_layer("label")
    assert len(label.trainable_weights) == 2  # trainable again, but not trained
    for layer, weights in recorded["weights"].items():
        for index, value in enumerate(weights):
            if (layer, index) == ("bn", 3):
                # moving_variance: Keras 2.3.1 averaged in the unbiased batch variance,
                # Keras 3 the biased one (docs/compat.md), a part in a thousand here.
                got = np.asarray(result["weights"][layer][index])
                np.testing.assert_allclose(got, value["values"], rtol=2e-3)
                continue
            _close(result["weights"][layer][index], value, f"{layer} weight {index}")


def _keras3_order(model, keras2_names: list[str]) -> list[str]:
    """The order Keras 3 lists the values in: the losses, then the metrics by name."""
    losses = [name for name in keras2_names if name.endswith("loss")]
    return losses + sorted(name for name in keras2_names if name not in losses)


if __name__ == "__main__":
    _write_kutils_file(KUTILS_FILE)
    print(f"wrote {KUTILS_FILE}; now re-record with tests/oracle/record_save_weights.py")
