"""kutils migrate: the corpus of Keras 2 files, byte-exact rewrites, report, exit status."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kutils.__main__ import main as cli_main
from kutils.migrate import main, migrate_source

CORPUS = Path(__file__).parent / "migrate_corpus"
CASES = sorted(path.name[: -len(".py.in")] for path in CORPUS.glob("*.py.in"))
ROOT = Path(__file__).resolve().parent.parent


def _tree(tmp_path: Path, cases: list[str] = CASES) -> Path:
    tree = tmp_path / "project"
    (tree / "pkg").mkdir(parents=True)
    for case in cases:
        shutil.copyfile(CORPUS / f"{case}.py.in", tree / "pkg" / f"{case}.py")
    return tree


def _expected(case: str) -> bytes:
    return (CORPUS / f"{case}.py.out").read_bytes()


@pytest.mark.parametrize("case", CASES)
def test_corpus_file_is_rewritten_to_its_expected_output(tmp_path, capsys, case):
    tree = _tree(tmp_path, [case])
    main([str(tree)])
    assert (tree / "pkg" / f"{case}.py").read_bytes() == _expected(case)


def test_report_lists_each_finding_with_file_and_line(tmp_path, capsys):
    tree = _tree(tmp_path)
    status = main([str(tree)])
    out = capsys.readouterr().out
    prefix = str(tree / "pkg") + os.sep
    lines = [line.replace(prefix, "") for line in out.splitlines()]
    assert lines == (CORPUS / "report.txt").read_text().splitlines()
    assert status == 1


def test_second_run_changes_nothing(tmp_path, capsys):
    tree = _tree(tmp_path)
    main([str(tree)])
    first = {p.name: p.read_bytes() for p in (tree / "pkg").iterdir()}
    capsys.readouterr()
    main([str(tree)])
    assert {p.name: p.read_bytes() for p in (tree / "pkg").iterdir()} == first
    assert "rewrote 0," in capsys.readouterr().err


def test_exit_status_is_0_when_nothing_is_left_to_do_by_hand(tmp_path, capsys):
    tree = _tree(tmp_path, ["imports", "generators", "untouched"])
    assert main([str(tree)]) == 0
    assert main([str(tree)]) == 0  # and again, with nothing left to rewrite


def test_exit_status_is_1_for_a_file_that_does_not_parse(tmp_path, capsys):
    tree = _tree(tmp_path, ["broken"])
    assert main([str(tree)]) == 1
    assert "does not parse (line 3" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["--no-such-option", "x.py"], ["missing_file.py"]])
def test_exit_status_is_2_on_usage_errors(tmp_path, capsys, argv):
    os.chdir(tmp_path)
    assert main(argv) == 2
    assert "kutils migrate" in capsys.readouterr().err


def test_unparsable_file_is_left_alone_and_the_others_rewritten(tmp_path, capsys):
    tree = _tree(tmp_path, ["broken", "imports"])
    main([str(tree)])
    assert (tree / "pkg" / "broken.py").read_bytes() == (CORPUS / "broken.py.in").read_bytes()
    assert (tree / "pkg" / "imports.py").read_bytes() == _expected("imports")


def test_diff_shows_the_change_and_writes_nothing(tmp_path, capsys):
    tree = _tree(tmp_path, ["generators"])
    status = main(["--diff", str(tree)])
    out = capsys.readouterr().out
    assert (tree / "pkg" / "generators.py").read_bytes() == (
        CORPUS / "generators.py.in"
    ).read_bytes()
    assert "-        return self.model.fit_generator(batches(x, y), 4," in out
    assert "+        return fit_generator(self.model, batches(x, y), 4," in out
    assert "+from kutils import evaluate_generator, fit_generator, predict_generator" in out
    assert status == 1  # changes are pending: a CI gate fails (docs/migrate.md, issue 24)


def test_crlf_line_endings_are_kept(tmp_path, capsys):
    source = (CORPUS / "imports.py.in").read_bytes().replace(b"\n", b"\r\n")
    target = tmp_path / "crlf.py"
    target.write_bytes(source)
    main([str(target)])
    assert target.read_bytes() == _expected("imports").replace(b"\n", b"\r\n")


def test_crlf_file_gets_crlf_in_inserted_lines(tmp_path, capsys):
    source = (CORPUS / "generators.py.in").read_bytes().replace(b"\n", b"\r\n")
    target = tmp_path / "crlf.py"
    target.write_bytes(source)
    main([str(target)])
    assert target.read_bytes() == _expected("generators").replace(b"\n", b"\r\n")


def test_declared_encoding_and_bom_are_kept(tmp_path, capsys):
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        b"# -*- coding: latin-1 -*-\n# caf\xe9\nfrom keras.utils import to_categorical\n"
    )
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbfimport keras\ny = keras.utils.to_categorical([0])  # \xc3\xa9\n")
    main([str(tmp_path)])
    assert (
        latin.read_bytes()
        == b"# -*- coding: latin-1 -*-\n# caf\xe9\nfrom kutils import to_categorical\n"
    )
    assert bom.read_bytes() == (
        b"\xef\xbb\xbfimport keras\nimport kutils\ny = kutils.to_categorical([0])  # \xc3\xa9\n"
    )


def test_file_without_final_newline(tmp_path, capsys):
    target = tmp_path / "nonl.py"
    target.write_bytes(b"import keras\nmodel.fit_generator(g, 2)")
    main([str(target)])
    assert target.read_bytes() == (
        b"import keras\nfrom kutils import fit_generator\nfit_generator(model, g, 2)"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # tf.keras 2 spelling through `from tensorflow import keras`
        (
            "from tensorflow import keras\nx = keras.utils.to_categorical(y)\n",
            "from tensorflow import keras\nimport kutils\nx = kutils.to_categorical(y)\n",
        ),
        # the import of a legacy module without an alias keeps the name `keras` bound
        (
            "import keras.utils.np_utils\nkeras.utils.np_utils.normalize(x)\n",
            "import keras, kutils.np_utils\nkutils.np_utils.normalize(x)\n",
        ),
        # code in a class body and a nested function, receiver with calls and subscripts
        (
            "class A:\n    def f(self):\n        return get()[0].predict_generator(g, steps=2)\n",
            "from kutils import predict_generator\nclass A:\n    def f(self):\n        return predict_generator(get()[0], g, steps=2)\n",
        ),
        # a star import
        ("from keras.utils import *\n", "from kutils import *\n"),
        # `from keras import utils`
        (
            "from keras import utils as U\nU.to_categorical(y)\n",
            "import kutils as U\nU.to_categorical(y)\n",
        ),
    ],
)
def test_rewrite_forms(source, expected):
    assert migrate_source(source)[0] == expected


def test_names_kutils_does_not_offer_are_reported_not_rewritten():
    source = "from keras.utils import to_categorical, conv_utils\n"
    new, findings, changes = migrate_source(source)
    assert new == source and changes == 0
    assert findings == [
        (
            1,
            "kutils does not offer keras.utils.conv_utils: this import was left "
            "unchanged; use the Keras 3 replacement, if any, by hand",
        )
    ]


def test_names_keras_3_still_has_stay_in_keras_utils():
    source = (
        "import keras\n"
        "from keras.utils import register_keras_serializable\n"
        "keras.utils.set_random_seed(1)\n"
    )
    assert migrate_source(source) == (source, [], 0)


def test_an_import_of_kutils_and_keras_3_names_is_split():
    source = (
        "if True:\r\n    from keras.utils import to_categorical as tc, set_random_seed  # x\r\n"
    )
    expected = (
        "if True:\r\n    from kutils import to_categorical as tc\r\n"
        "    from keras.utils import set_random_seed  # x\r\n"
    )
    new, findings, _ = migrate_source(source)
    assert (new, findings) == (expected, [])
    assert migrate_source(new) == (new, [], 0)


def test_python_m_kutils_migrate_and_the_console_entry_point(tmp_path):
    tree = _tree(tmp_path, ["generators"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", str(tree)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (tree / "pkg" / "generators.py").read_bytes() == _expected("generators")
    # The `kutils` console script is kutils.__main__:main.
    assert cli_main(["migrate", "--diff", str(tree)]) == 0


def test_migrate_is_listed_in_the_cli_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    assert "migrate" in capsys.readouterr().out


def _run_script(path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=path.parent,
        timeout=300,
    )


def test_rewritten_scripts_run_on_keras_3(tmp_path, capsys):
    tree = _tree(tmp_path, ["imports", "generators"])
    original = _run_script(tree / "pkg" / "generators.py")
    assert original.returncode != 0
    assert "has no attribute 'fit_generator'" in original.stderr
    assert main([str(tree)]) == 0
    for case in ("imports", "generators"):
        done = _run_script(tree / "pkg" / f"{case}.py")
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"{case} ok" in done.stdout


def test_a_large_tree_is_read_in_worker_processes_with_the_same_result(tmp_path, capsys):
    from kutils._migrate_file import _PARALLEL_FROM

    tree = tmp_path / "many"
    tree.mkdir()
    count = _PARALLEL_FROM + 6
    for index in range(count):
        shutil.copyfile(CORPUS / "generators.py.in", tree / f"g{index}.py")
    shutil.copyfile(CORPUS / "broken.py.in", tree / "zz_broken.py")
    assert main([str(tree)]) == 1
    for index in range(count):
        assert (tree / f"g{index}.py").read_bytes() == _expected("generators")
    assert (tree / "zz_broken.py").read_bytes() == (CORPUS / "broken.py.in").read_bytes()
    assert f"{count + 1} file(s) read, rewrote {count}," in capsys.readouterr().err


def test_a_file_named_twice_is_migrated_once(tmp_path, capsys):
    tree = _tree(tmp_path, ["generators"])
    target = tree / "pkg" / "generators.py"
    assert main([str(target), str(tree), str(target)]) == 0
    assert target.read_bytes() == _expected("generators")
    assert "1 file(s) read, rewrote 1," in capsys.readouterr().err
