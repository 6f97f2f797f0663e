"""The command line: python -m kutils summary / plot on real saved models."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import pytest
from keras import Input, layers

from kutils.__main__ import main

ROOT = Path(__file__).resolve().parents[1]

SUMMARY = [
    'Model: "sequential_1"',
    "_" * 65,
    "Layer (type)                 Output Shape              Param #   ",
    "=" * 65,
    "dense_1 (Dense)              (None, 32)                25120     ",
    "_" * 65,
    "dense_2 (Dense)              (None, 10)                330       ",
    "=" * 65,
    "Total params: 25,450",
    "Trainable params: 25,450",
    "Non-trainable params: 0",
    "_" * 65,
]


def _run(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "kutils", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model = keras.Sequential(
        [Input((784,)), layers.Dense(32, name="dense_1"), layers.Dense(10, name="dense_2")],
        name="sequential_1",
    )
    model.save(folder / "model.keras")
    model.save(folder / "model.h5")
    return folder


def test_help_documents_both_commands():
    result = _run("--help")
    assert result.returncode == 0
    assert "summary" in result.stdout and "plot" in result.stdout
    assert "Exit status" in result.stdout


def test_summary_of_a_keras_file_prints_the_keras_2_text(saved_models):
    result = _run("summary", str(saved_models / "model.keras"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "\n".join(SUMMARY) + "\n"
    assert "cuda" not in result.stderr.lower()  # TensorFlow's native start-up logs are hidden


def test_missing_file_is_one_line_error_with_status_2(tmp_path):
    result = _run("summary", str(tmp_path / "absent.keras"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"python -m kutils: error: cannot read model file '{tmp_path / 'absent.keras'}': no such file"
    ]


@pytest.mark.parametrize("name", ["garbage.keras", "garbage.h5"])
def test_unreadable_model_file_is_one_line_error_with_status_2(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(b"not a model at all")
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith(f"python -m kutils: error: cannot load a Keras model from '{path}'")


def test_directory_is_one_line_error_with_status_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"python -m kutils: error: cannot read model file '{tmp_path}': it is a directory, "
        "not a .keras or .h5 file"
    ]


def test_summary_of_an_h5_file(saved_models, capsys):
    assert main(["summary", str(saved_models / "model.h5")]) == 0
    assert capsys.readouterr().out.splitlines() == SUMMARY


def test_summary_line_length_and_positions(saved_models, capsys):
    args = ["summary", str(saved_models / "model.keras"), "--line-length", "50"]
    assert main([*args, "--positions", "20", "35", "45"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "_" * 50
    assert lines[4] == "dense_1 (Dense)     (None, 32)     25120     "


def test_plot_writes_the_requested_file_with_flags(saved_models, tmp_path, capsys):
    target = tmp_path / "model.svg"
    argv = ["plot", str(saved_models / "model.keras"), "-o", str(target)]
    argv += ["--show-shapes", "--rankdir", "LR", "--dpi", "72"]
    assert main(argv) == 0
    svg = target.read_text()
    assert "dense_1: Dense" in svg and "(None, 32)" in svg
    assert capsys.readouterr().out == f"Wrote {target}\n"


def test_plot_hide_layer_names_and_dot_output(saved_models, tmp_path):
    target = tmp_path / "model.dot"
    argv = ["plot", str(saved_models / "model.keras"), "-o", str(target), "--hide-layer-names"]
    assert main(argv) == 0
    source = target.read_text()
    assert "[label=Dense]" in source and "dense_1" not in source
    assert "rankdir=TB" in source and "dpi=96" in source


def test_plot_without_graphviz_is_one_line_error_with_status_1(
    saved_models, tmp_path, capsys, monkeypatch
):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the graphviz programs are hidden
    target = tmp_path / "model.png"
    status = main(["plot", str(saved_models / "model.keras"), "-o", str(target)])
    assert status == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "apt-get install graphviz" in err[0] and str(tmp_path / "model.dot") in err[0]
    assert (tmp_path / "model.dot").exists()


CUSTOM_MODULE = """
    import keras


    class Doubling(keras.layers.Layer):
        def call(self, x):
            return x * 2.0
"""


@pytest.fixture
def custom_model(tmp_path, monkeypatch):
    (tmp_path / "my_custom_layers.py").write_text(textwrap.dedent(CUSTOM_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_custom_layers

    inputs = Input((3,), name="x")
    model = keras.Model(inputs, my_custom_layers.Doubling(name="double")(inputs), name="custom")
    path = tmp_path / "custom.keras"
    model.save(path)
    yield path
    sys.modules.pop("my_custom_layers", None)


def test_custom_objects_named_as_module_attribute(custom_model, capsys):
    assert main(["summary", str(custom_model), "-c", "my_custom_layers:Doubling"]) == 0
    out = capsys.readouterr().out
    assert "double (Doubling)            (None, 3)                 0         " in out


def test_model_needing_a_custom_object_fails_with_status_2_without_it(custom_model, capsys):
    sys.modules.pop("my_custom_layers", None)
    assert main(["summary", str(custom_model)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Doubling" in err[0]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "--custom-object takes MODULE:ATTRIBUTE"),
        ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
        ("os:no_such_attribute", "module 'os' has no attribute 'no_such_attribute'"),
    ],
)
def test_bad_custom_object_spec_is_status_2(saved_models, capsys, spec, message):
    assert main(["summary", str(saved_models / "model.keras"), "-c", spec]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and message in err[0]


def test_bad_flag_value_is_status_2(saved_models):
    with pytest.raises(SystemExit) as exit_info:
        main(["plot", str(saved_models / "model.keras"), "--rankdir", "UP"])
    assert exit_info.value.code == 2


def test_help_does_not_import_keras():
    code = (
        "import sys\n"
        "from kutils.__main__ import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'pydot', 'h5py') if m in sys.modules]\n"
        "print(heavy, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert result.stderr.strip() == "[]"


# -- bad argument values and TensorFlow's start-up log ----------------------------------

NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl)|oneDNN|cpu_feature")


def _run_without_log_level(*args, level=None, cwd=ROOT, pythonpath=()):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, pythonpath)])
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    return subprocess.run(
        [sys.executable, "-m", "kutils", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=cwd,
        check=False,
    )


def _one_error_line(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "error:" in lines[0] and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


def test_too_few_positions_for_the_model_exit_2_with_one_line(saved_models):
    result = _run_without_log_level(
        "summary", str(saved_models / "model.keras"), "--positions", "0.5"
    )
    _one_error_line(result, "--positions", "3 for this model", "Received: positions=[0.5]")


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        (["nan"], "expected a positive number"),
        (["-1"], "expected a positive number"),
        (["abc"], "received 'abc'"),
        (["inf"], "expected a positive number"),
        (["0.5", "0.4", "0.9"], "must increase"),
        (["0.3", "0.6", "50"], "not both"),
    ],
)
def test_bad_positions_values_exit_2_with_one_line_before_loading(saved_models, values, fragment):
    result = _run_without_log_level(
        "summary", str(saved_models / "model.keras"), "--positions", *values
    )
    _one_error_line(result, "--positions", fragment)


@pytest.mark.parametrize(
    "args",
    [
        ["plot", "model.keras", "--rankdir", "UP"],
        ["plot", "model.keras", "--dpi", "0"],
        ["summary", "model.keras", "--line-length", "wide"],
        ["bogus"],
    ],
)
def test_argparse_errors_are_one_line_with_status_2(args):
    _one_error_line(_run_without_log_level(*args), "see python -m kutils")


def test_custom_object_import_prints_no_tensorflow_start_up_lines(custom_model):
    result = _run_without_log_level(
        "summary",
        str(custom_model),
        "-c",
        "my_custom_layers:Doubling",
        pythonpath=[custom_model.parent],
    )
    assert result.returncode == 0, result.stderr
    assert "double (Doubling)" in result.stdout
    assert [line for line in result.stderr.splitlines() if NATIVE_LOG.search(line)] == []


def test_tensorflow_log_level_set_by_the_user_is_kept(custom_model):
    code = (
        "import os, sys\n"
        "from kutils.__main__ import main\n"
        "main(['summary', sys.argv[1], '-c', 'my_custom_layers:Doubling'])\n"
        "print('level', os.environ['TF_CPP_MIN_LOG_LEVEL'])\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(custom_model.parent)])
    result = subprocess.run(
        [sys.executable, "-c", code, str(custom_model)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "level 1"
