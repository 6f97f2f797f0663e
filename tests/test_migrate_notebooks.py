"""kutils migrate on notebooks: code cells migrated, every other byte of the file kept."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kutils.migrate import main

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = {
    "name": "stdout",
    "output_type": "stream",
    "text": ["Epoch 1/2 — loss: 0.3\n", "saving model to w.h5\n"],
}


def _cell(source: list[str] | str, kind: str = "code", **extra: object) -> dict:
    cell: dict = {"cell_type": kind, "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    cell.update(extra)
    return cell


def _write(path: Path, cells: list[dict], **dumps: object) -> bytes:
    """A notebook in nbformat's own layout: indent 1, sorted keys, non-ASCII kept, final newline."""
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    options = {"indent": 1, "sort_keys": True, "ensure_ascii": False, **dumps}
    data = (json.dumps(notebook, **options) + "\n").encode()  # type: ignore[arg-type]
    path.write_bytes(data)
    return data


def _training_notebook(path: Path) -> bytes:
    return _write(
        path,
        [
            _cell(["# Entraînement\n", "Keras 2 notebook."], kind="markdown"),
            _cell(
                [
                    "%matplotlib inline\n",
                    "import numpy as np\n",
                    "from keras.utils import np_utils\n",
                    "!pip install keras==2.3.1\n",
                    "y = np_utils.to_categorical(np.array([0, 2]))  # étiquettes",
                ],
                execution_count=1,
                outputs=[OUTPUT],
                metadata={"scrolled": True, "tags": ["setup"]},
            ),
            _cell(["history = model.fit_generator(gen, 10)\n", "files = !ls\n", "history"]),
        ],
    )


def _sources(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(path.read_bytes())["cells"]]


def test_code_cells_are_migrated_and_magic_and_shell_lines_kept(tmp_path, capsys):
    notebook = tmp_path / "train.ipynb"
    _training_notebook(notebook)
    assert main([str(notebook)]) == 0
    sources = _sources(notebook)
    # The cells run as one program: the import the rewrites need goes to the first one.
    assert sources[1] == (
        "from kutils import fit_generator\n"
        "%matplotlib inline\n"
        "import numpy as np\n"
        "from kutils import np_utils\n"
        "!pip install keras==2.3.1\n"
        "y = np_utils.to_categorical(np.array([0, 2]))  # étiquettes"
    )
    assert sources[2] == ("history = fit_generator(model, gen, 10)\nfiles = !ls\nhistory")


def test_only_the_changed_sources_change_byte_for_byte(tmp_path, capsys):
    notebook = tmp_path / "train.ipynb"
    before = _training_notebook(notebook)
    main([str(notebook)])
    after = notebook.read_bytes()
    # Build the expected bytes by hand: the two source lists, in the same layout.
    expected = (
        before.replace(
            b'    "%matplotlib inline\\n",\n',
            b'    "from kutils import fit_generator\\n",\n    "%matplotlib inline\\n",\n',
        )
        .replace(
            b'    "from keras.utils import np_utils\\n",\n',
            b'    "from kutils import np_utils\\n",\n',
        )
        .replace(
            b'    "history = model.fit_generator(gen, 10)\\n",\n',
            b'    "history = fit_generator(model, gen, 10)\\n",\n',
        )
    )
    assert expected != before
    assert after == expected


def test_a_notebook_in_another_layout_keeps_it(tmp_path, capsys):
    notebook = tmp_path / "compact.ipynb"
    before = _write(
        notebook,
        [_cell("import keras\nmodel.fit_generator(gen, 10)\n"), _cell(["print('ü')"])],
        indent=None,
        sort_keys=False,
        ensure_ascii=True,
    )
    assert b"\\u00fc" in before
    main([str(notebook)])
    after = notebook.read_bytes()
    assert after == before.replace(
        b'"import keras\\nmodel.fit_generator(gen, 10)\\n"',
        b'"import keras\\nimport kutils\\nkutils.fit_generator(model, gen, 10)\\n"',
    ) or after == before.replace(
        b'"import keras\\nmodel.fit_generator(gen, 10)\\n"',
        b'"import keras\\nfrom kutils import fit_generator\\nfit_generator(model, gen, 10)\\n"',
    )
    assert after != before


def test_cells_are_one_program_an_import_binds_the_next_cells(tmp_path, capsys):
    notebook = tmp_path / "program.ipynb"
    _write(
        notebook,
        [
            _cell(["import keras\n"]),
            _cell(["Labels:"], kind="markdown"),
            _cell(["y = keras.utils.to_categorical([0, 1])\n"]),
        ],
    )
    main([str(notebook)])
    sources = _sources(notebook)
    assert sources[0] == "import keras\nimport kutils\n"
    assert sources[2] == "y = kutils.to_categorical([0, 1])\n"


def test_report_names_the_cell_and_its_line(tmp_path, capsys):
    notebook = tmp_path / "report.ipynb"
    _write(
        notebook,
        [
            _cell(["Notes"], kind="markdown"),
            _cell(["from keras.layers import Dense\n"]),
            _cell(["x = 1\n", "layer = Dense(2, weights=[x])\n"]),
        ],
    )
    status = main([str(notebook)])
    out = capsys.readouterr().out
    assert f"{notebook}: cell 3, line 2: Keras 3 layers reject weights=" in out
    assert status == 1


def test_a_cell_that_does_not_parse_is_left_alone_and_reported(tmp_path, capsys):
    notebook = tmp_path / "broken.ipynb"
    before = _write(
        notebook,
        [
            _cell(["from keras.utils import to_categorical\n", "def f(:\n"]),
            _cell(["from keras.utils import np_utils\n"]),
        ],
    )
    status = main([str(notebook)])
    out = capsys.readouterr().out
    assert f"{notebook}: cell 1, line 1: cell not migrated: it does not parse (line 2" in out
    assert _sources(notebook) == [
        "from keras.utils import to_categorical\ndef f(:\n",
        "from kutils import np_utils\n",
    ]
    assert notebook.read_bytes() != before
    assert status == 1


def test_a_cell_magic_cell_is_left_alone_and_reported_when_it_uses_keras(tmp_path, capsys):
    notebook = tmp_path / "magic.ipynb"
    before = _write(notebook, [_cell(["%%time\n", "model.fit_generator(gen, 10)\n"])])
    status = main([str(notebook)])
    assert "cell 1, line 1: cell not migrated: it is a cell magic" in capsys.readouterr().out
    assert notebook.read_bytes() == before
    assert status == 1


def test_second_run_changes_nothing(tmp_path, capsys):
    notebook = tmp_path / "train.ipynb"
    _training_notebook(notebook)
    main([str(notebook)])
    once = notebook.read_bytes()
    capsys.readouterr()
    assert main([str(notebook)]) == 0
    assert notebook.read_bytes() == once
    assert "rewrote 0," in capsys.readouterr().err


def test_diff_shows_the_change_and_applies_with_git(tmp_path):
    tree = tmp_path / "repo"
    tree.mkdir()
    notebook = tree / "train.ipynb"
    before = _training_notebook(notebook)
    done = subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", "--diff", "train.ipynb"],
        cwd=tree,
        capture_output=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert b'-    "from keras.utils import np_utils\\n",' in done.stdout
    assert b'+    "from kutils import np_utils\\n",' in done.stdout
    assert notebook.read_bytes() == before
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(["git", "apply"], cwd=tree, input=done.stdout, check=True)
    migrated = tmp_path / "migrated.ipynb"
    migrated.write_bytes(before)
    main([str(migrated)])
    assert notebook.read_bytes() == migrated.read_bytes()


def test_a_notebook_link_is_followed_and_stays_a_link(tmp_path, capsys):
    target = tmp_path / "real.ipynb"
    _training_notebook(target)
    link = tmp_path / "tree" / "link.ipynb"
    link.parent.mkdir()
    link.symlink_to(target)
    main([str(link.parent)])
    assert link.is_symlink()
    assert "from kutils import np_utils" in _sources(target)[1]


def test_a_notebook_without_keras_is_not_touched(tmp_path, capsys):
    notebook = tmp_path / "plain.ipynb"
    before = _write(notebook, [_cell(["print(1)\n"]), _cell(["!ls"])])
    assert main([str(notebook)]) == 0
    assert notebook.read_bytes() == before


def test_a_file_named_ipynb_that_is_not_a_notebook_is_reported(tmp_path, capsys):
    notebook = tmp_path / "odd.ipynb"
    notebook.write_bytes(b"from keras.utils import np_utils\n")
    assert main([str(notebook)]) == 1
    assert "not migrated: a notebook that cannot be read as one" in capsys.readouterr().out
    assert notebook.read_bytes() == b"from keras.utils import np_utils\n"


def test_top_level_await_which_ipython_runs_does_not_stop_the_migration(tmp_path, capsys):
    notebook = tmp_path / "await.ipynb"
    _write(
        notebook,
        [
            _cell(["import keras\n", "y = keras.utils.to_categorical([1])\n"]),
            _cell(["await fetch()"]),
        ],
    )
    assert main([str(notebook)]) == 0
    assert _sources(notebook) == [
        "import keras\nimport kutils\ny = kutils.to_categorical([1])\n",
        "await fetch()",
    ]


def test_windows_line_breaks_in_the_cells_are_kept(tmp_path, capsys):
    notebook = tmp_path / "crlf.ipynb"
    _write(notebook, [_cell(["import keras\r\n", "y = keras.utils.to_categorical([1])"])])
    main([str(notebook)])
    assert _sources(notebook) == ["import keras\r\nimport kutils\r\ny = kutils.to_categorical([1])"]
