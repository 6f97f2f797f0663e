"""kutils migrate renames weights files to .weights.h5 only where the whole run agrees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kutils.migrate import main

ROOT = Path(__file__).resolve().parent.parent


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    tree = tmp_path / "project"
    for name, text in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tree


def _read(tree: Path, name: str) -> str:
    return (tree / name).read_text()


def test_a_name_saved_and_loaded_only_at_rewritable_sites_is_renamed_everywhere(tmp_path, capsys):
    tree = _project(
        tmp_path,
        {
            "train.py": "model.save_weights('out/model.h5')\n",
            "callbacks.py": (
                "from keras.callbacks import ModelCheckpoint\n"
                'best = ModelCheckpoint("out/model.h5", save_best_only=True,\n'
                "                       save_weights_only=True)\n"
            ),
            "serve/predict.py": "model.load_weights(filepath='out/model.h5')\n",
        },
    )
    status = main([str(tree)])
    captured = capsys.readouterr()
    assert _read(tree, "train.py") == "model.save_weights('out/model.weights.h5')\n"
    assert _read(tree, "callbacks.py") == (
        "from keras.callbacks import ModelCheckpoint\n"
        'best = ModelCheckpoint("out/model.weights.h5", save_best_only=True,\n'
        "                       save_weights_only=True)\n"
    )
    assert _read(tree, "serve/predict.py") == (
        "model.load_weights(filepath='out/model.weights.h5')\n"
    )
    assert "model.h5" not in captured.out  # nothing left to report
    assert status == 0


def test_a_name_also_used_elsewhere_is_kept_and_saved_and_loaded_through_kutils(tmp_path, capsys):
    # Keras 3 refuses to save at 'w.h5'; kutils' functions keep Keras 2's file there.
    files = {
        "train.py": "model.save_weights('w.h5')\n",
        "predict.py": "import os\nif os.path.exists('w.h5'):\n    model.load_weights('w.h5')\n",
    }
    tree = _project(tmp_path, files)
    status = main([str(tree)])
    out = capsys.readouterr().out
    assert (
        _read(tree, "train.py") == "from kutils import save_weights\nsave_weights(model, 'w.h5')\n"
    )
    assert _read(tree, "predict.py") == (
        "import os\n"
        "from kutils import load_weights\n"
        "if os.path.exists('w.h5'):\n"
        "    load_weights(model, 'w.h5')\n"
    )
    assert out == ""  # nothing left to do by hand
    assert status == 0


def test_a_kept_name_that_no_kutils_call_can_save_is_reported_in_every_file(tmp_path, capsys):
    # ModelCheckpoint(save_weights_only=True) has no kutils form: reported, with the files
    # that keep the name; the save_weights beside it goes through kutils.
    files = {
        "train.py": (
            "model.save_weights('w.h5')\nbest = ModelCheckpoint('w.h5', save_weights_only=True)\n"
        ),
        "predict.py": "import os\nfound = os.path.exists('w.h5')\n",
    }
    tree = _project(tmp_path, files)
    status = main([str(tree)])
    out = capsys.readouterr().out
    assert _read(tree, "train.py") == (
        "from kutils import save_weights\n"
        "save_weights(model, 'w.h5')\n"
        "best = ModelCheckpoint('w.h5', save_weights_only=True)\n"
    )
    assert _read(tree, "predict.py") == files["predict.py"]
    reported = [line for line in out.splitlines() if "not renamed" in line]
    assert len(reported) == 1
    assert reported[0].startswith(f"{tree / 'train.py'}:2: weights file 'w.h5' not renamed")
    assert str(tree / "predict.py") in reported[0]
    assert status == 1


def test_a_name_built_around_the_literal_keeps_it(tmp_path, capsys):
    files = {
        "train.py": "model.save_weights('w.h5')\n",
        "load.py": "import os\nmodel.load_weights(os.path.join(folder, 'w.h5'))\n",
    }
    tree = _project(tmp_path, files)
    assert main([str(tree)]) == 0
    assert (
        _read(tree, "train.py") == "from kutils import save_weights\nsave_weights(model, 'w.h5')\n"
    )
    # Keras 3's load_weights reads the Keras 2 file kutils writes at an .h5 name.
    assert _read(tree, "load.py") == files["load.py"]
    assert "not renamed" not in capsys.readouterr().out


def test_a_whole_model_saved_under_the_same_name_keeps_it(tmp_path, capsys):
    files = {
        "train.py": "model.save_weights('m.hdf5')\nmodel.save('m.hdf5')\n",
    }
    tree = _project(tmp_path, files)
    main([str(tree)])
    assert _read(tree, "train.py") == (
        "from kutils import save_weights\nsave_weights(model, 'm.hdf5')\nmodel.save('m.hdf5')\n"
    )
    out = capsys.readouterr().out
    assert "not renamed" not in out
    assert f"{tree / 'train.py'}:2: Keras 3 saves models in the .keras format" in out


def test_a_name_only_loaded_is_left_alone_keras_3_still_loads_it(tmp_path, capsys):
    tree = _project(tmp_path, {"predict.py": "model.load_weights('keras2_weights.h5')\n"})
    assert main([str(tree)]) == 0
    assert _read(tree, "predict.py") == "model.load_weights('keras2_weights.h5')\n"


def test_a_model_checkpoint_saving_whole_models_is_not_a_weights_site(tmp_path, capsys):
    files = {
        "train.py": "from keras.callbacks import ModelCheckpoint\ncb = ModelCheckpoint('b.h5')\n",
    }
    tree = _project(tmp_path, files)
    main([str(tree)])
    assert _read(tree, "train.py") == files["train.py"]
    assert "Keras 3 saves models in the .keras format" in capsys.readouterr().out


def test_a_name_a_notebook_loads_is_renamed_in_the_notebook_too(tmp_path, capsys):
    tree = _project(tmp_path, {"train.py": "model.save_weights('nb.h5')\n"})
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 2,
                "metadata": {},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["nb.h5\n"]}],
                "source": ["!ls\n", "model.load_weights('nb.h5')"],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    before = json.dumps(notebook, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (tree / "look.ipynb").write_text(before)
    assert main([str(tree)]) == 0
    assert _read(tree, "train.py") == "model.save_weights('nb.weights.h5')\n"
    # The output that prints the old name is an output: it stays as it was.
    assert _read(tree, "look.ipynb") == before.replace(
        "\"model.load_weights('nb.h5')\"", "\"model.load_weights('nb.weights.h5')\""
    )


def test_a_kept_name_in_a_notebook_goes_through_kutils_or_is_reported_with_its_cell(
    tmp_path, capsys
):
    tree = _project(tmp_path, {"check.py": "assert 'x.h5'\n"})
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["Save"]},
            {
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": [
                    "model.save_weights('x.h5')\n",
                    "cb = ModelCheckpoint('x.h5', save_weights_only=True)\n",
                ],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tree / "save.ipynb").write_text(json.dumps(notebook, indent=1))
    main([str(tree)])
    out = capsys.readouterr().out
    expected = f"{tree / 'save.ipynb'}: cell 2, line 2: weights file 'x.h5' not renamed"
    assert expected in out
    assert "line 1: weights file" not in out
    cell = json.loads(_read(tree, "save.ipynb"))["cells"][1]
    assert cell["source"] == [
        "from kutils import save_weights\n",
        "save_weights(model, 'x.h5')\n",
        "cb = ModelCheckpoint('x.h5', save_weights_only=True)\n",
    ]


def test_second_run_changes_nothing(tmp_path, capsys):
    tree = _project(
        tmp_path,
        {"a.py": "model.save_weights('w.h5')\n", "b.py": "model.load_weights('w.h5')\n"},
    )
    main([str(tree)])
    once = {name: _read(tree, name) for name in ("a.py", "b.py")}
    assert once["a.py"] == "model.save_weights('w.weights.h5')\n"
    capsys.readouterr()
    assert main([str(tree)]) == 0
    assert {name: _read(tree, name) for name in ("a.py", "b.py")} == once
    assert "rewrote 0," in capsys.readouterr().err


def test_second_run_after_kept_names_went_through_kutils_changes_nothing(tmp_path, capsys):
    files = {
        "a.py": (
            "import os\n"
            "if not os.path.exists('out/w.h5'):\n"
            "    net.save_weights(filepath='out/w.h5', overwrite=True)\n"
        ),
        "b.py": "import keras\nnet.load_weights('w.h5', by_name=True)  # Keras 2 file\n",
    }
    tree = _project(tmp_path, files)
    assert main([str(tree)]) == 0
    once = {name: _read(tree, name) for name in files}
    assert once["a.py"] == (
        "import os\n"
        "from kutils import save_weights\n"
        "if not os.path.exists('out/w.h5'):\n"
        "    save_weights(net, filepath='out/w.h5', overwrite=True)\n"
    )
    assert once["b.py"] == (
        "import keras\n"
        "from kutils import load_weights\n"
        "load_weights(net, 'w.h5', by_name=True)  # Keras 2 file\n"
    )
    capsys.readouterr()
    assert main([str(tree)]) == 0
    assert {name: _read(tree, name) for name in files} == once
    captured = capsys.readouterr()
    assert "rewrote 0," in captured.err and captured.out == ""


def test_diff_shows_the_renames_and_writes_nothing(tmp_path, capsys):
    files = {"a.py": "model.save_weights('w.h5')\n", "b.py": "model.load_weights('w.h5')\n"}
    tree = _project(tmp_path, files)
    assert main(["--diff", str(tree)]) == 1
    out = capsys.readouterr().out
    assert "+model.save_weights('w.weights.h5')" in out
    assert "+model.load_weights('w.weights.h5')" in out
    assert {name: _read(tree, name) for name in files} == files


def test_the_renamed_names_are_what_keras_3_saves_and_loads(tmp_path):
    """The migrated scripts run on Keras 3 and load back the weights they saved."""
    tree = _project(
        tmp_path,
        {
            "train.py": (
                "import numpy as np\n"
                "import keras\n"
                "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
                "model.save_weights('saved.h5')\n"
                "np.save('expected.npy', model.predict(np.ones((1, 3)), verbose=0))\n"
            ),
            "predict.py": (
                "import numpy as np\n"
                "import keras\n"
                "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])\n"
                "model.load_weights('saved.h5')\n"
                "got = model.predict(np.ones((1, 3)), verbose=0)\n"
                "assert np.array_equal(got, np.load('expected.npy'))\n"
            ),
        },
    )
    main([str(tree)])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    both = "for s in ('train.py', 'predict.py'): exec(open(s).read(), {})"
    done = subprocess.run(
        [sys.executable, "-c", both], cwd=tree, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert (tree / "saved.weights.h5").is_file()


@pytest.mark.parametrize(
    "literal",
    ["'''w.h5'''", "'w.\\x68\\x35'"],
    ids=["triple-quoted", "escaped"],
)
def test_a_literal_that_cannot_be_rewritten_as_written_keeps_the_name(tmp_path, capsys, literal):
    files = {"a.py": f"model.save_weights({literal})\n", "b.py": "model.load_weights('w.h5')\n"}
    tree = _project(tmp_path, files)
    main([str(tree)])
    assert (
        _read(tree, "a.py") == f"from kutils import save_weights\nsave_weights(model, {literal})\n"
    )
    assert _read(tree, "b.py") == "from kutils import load_weights\nload_weights(model, 'w.h5')\n"
    assert "not renamed" not in capsys.readouterr().out


def test_reports_name_the_original_lines_when_the_rewrite_adds_an_import(tmp_path, capsys):
    # load_weights(model, name) adds `from kutils import load_weights` above: the saves'
    # reports and the renamed saves are on the lines of the file as it was.
    tree = _project(
        tmp_path,
        {
            "vae.py": (
                "import keras\nvae.load_weights(args.weights)\nvae.save_weights('vae.h5')\n"
            ),
            "gan.py": (
                "import os, keras\n"
                "gan.load_weights(args.weights)\n"
                "cb = ModelCheckpoint('gan.h5', save_weights_only=True)\n"
                "found = os.path.exists('gan.h5')\n"
            ),
        },
    )
    status = main([str(tree)])
    out = capsys.readouterr().out
    assert _read(tree, "vae.py").splitlines()[1:] == [
        "from kutils import load_weights",
        "load_weights(vae, args.weights)",
        "vae.save_weights('vae.weights.h5')",
    ]
    assert "vae.py:" not in out  # renamed: nothing to report
    gan = [line for line in out.splitlines() if line.startswith(str(tree / "gan.py"))]
    assert len(gan) == 1 and gan[0].startswith(f"{tree / 'gan.py'}:3: weights file 'gan.h5'")
    assert status == 1
