"""kutils migrate never corrupts or loses a user's file: each fault of issue 24, for real.

Real files, links, owners, extended attributes, mounts (a full tmpfs, a read-only one),
a real editor-like process saving while the command runs, real ``git apply``, real
subprocesses with a strict standard output.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kutils.migrate import main, migrate_source

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "migrate_corpus"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

GENERATOR_CALL = b"import keras\nmodel.fit_generator(gen, 10)\n"
GENERATOR_DONE = b"import keras\nfrom kutils import fit_generator\nfit_generator(model, gen, 10)\n"


def _compiles(text: str) -> bool:
    try:
        compile(text, "<rewritten>", "exec", dont_inherit=True)
    except SyntaxError:
        return False
    return True


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", *args],
        capture_output=True,
        text=True,
        env=kwargs.pop("env", ENV),
        timeout=120,
        **kwargs,
    )


# -- 1. edit spans are whole expressions ------------------------------------------------


SPAN_CASES = [
    (
        "h = (model).fit_generator(gen, 10)\n",
        "from kutils import fit_generator\nh = fit_generator((model), gen, 10)\n",
    ),
    (
        "h = (a if c else b).fit_generator(gen, 10)\n",
        "from kutils import fit_generator\nh = fit_generator((a if c else b), gen, 10)\n",
    ),
    (
        "h = (m := f()).evaluate_generator(gen, 2)\n",
        "from kutils import evaluate_generator\nh = evaluate_generator((m := f()), gen, 2)\n",
    ),
    (
        "async def run():\n    return (await g()).predict_generator(gen, 2)\n",
        "from kutils import predict_generator\n"
        "async def run():\n    return predict_generator((await g()), gen, 2)\n",
    ),
    (
        "h = (models[0]).fit_generator(gen, 10)\n",
        "from kutils import fit_generator\nh = fit_generator((models[0]), gen, 10)\n",
    ),
    (
        "h = (build(\n    1)).fit_generator(gen,\n    10)\n",
        "from kutils import fit_generator\nh = fit_generator((build(\n    1)), gen,\n    10)\n",
    ),
    (
        "h = ((model)  # the model\n     .fit_generator(gen, 10))\n",
        "from kutils import fit_generator\nh = (fit_generator((model)  # the model\n, gen, 10))\n",
    ),
    (
        "h = model \\\n    .fit_generator(gen, 10)\n",
        "from kutils import fit_generator\nh = fit_generator(model, gen, 10)\n",
    ),
    (
        "import keras\ny = (keras).utils.to_categorical([0])\n",
        "import keras\nimport kutils\ny = kutils.to_categorical([0])\n",
    ),
    (
        "import keras\ny = (keras.utils).to_categorical([0])\n",
        "import keras\nimport kutils\ny = kutils.to_categorical([0])\n",
    ),
]


@pytest.mark.parametrize(("source", "expected"), SPAN_CASES)
def test_rewritten_spans_are_whole_expressions_and_the_result_compiles(source, expected):
    new, findings, changes = migrate_source(source)
    assert _compiles(new), new
    assert (new, findings) == (expected, [])
    assert changes >= 1
    assert migrate_source(new) == (new, [], 0)


# -- 2. every rewritten file is compiled again before it is written ----------------------


def test_a_rewrite_that_would_not_compile_is_reported_and_the_file_left_alone(tmp_path, capsys):
    # It parses (ast) but does not compile; nothing kutils writes may turn into such a file.
    source = b"import keras\nx = 1\nglobal x\nmodel.fit_generator(gen, 10)\n"
    target = tmp_path / "bad_scope.py"
    target.write_bytes(source)
    status = main([str(target)])
    captured = capsys.readouterr()
    assert target.read_bytes() == source
    assert f"{target}: not migrated: " in captured.out
    assert "would not compile" in captured.out
    assert "rewrote 0," in captured.err and "1 file(s) not migrated" in captured.err
    assert status == 1


# -- 2. a file changed since it was read is not overwritten ---------------------------


_IN_CLOSE_NOWRITE = 0x10


@contextlib.contextmanager
def _closed_after_reading(path: Path) -> Iterator[threading.Event]:
    """An event set when any process closes ``path`` after reading it (inotify)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        pytest.skip("inotify is not available")
    libc.inotify_add_watch(fd, str(path).encode(), _IN_CLOSE_NOWRITE)
    event = threading.Event()

    def wait() -> None:
        data = os.read(fd, 4096)
        if len(data) >= 16 and struct.unpack_from("iIII", data)[1] & _IN_CLOSE_NOWRITE:
            event.set()

    watcher = threading.Thread(target=wait, daemon=True)
    watcher.start()
    try:
        yield event
    finally:
        os.close(fd)


def _slow_tree(tree: Path) -> None:
    """Files read after ``a_edited.py``, long enough to parse for an editor to save it."""
    block = "".join(
        f"def f{i}(model, g):\n    return model.fit_generator(g, {i})\n" for i in range(4000)
    )
    for index in range(3):
        (tree / f"z{index}.py").write_text("import keras\n" + block)


@pytest.mark.parametrize("save", ["rename", "in_place"])
def test_an_edit_saved_while_the_command_runs_is_kept_byte_for_byte(tmp_path, save):
    tree = tmp_path / "tree"
    tree.mkdir()
    target = tree / "a_edited.py"
    target.write_bytes(GENERATOR_CALL)
    _slow_tree(tree)
    edit = b"import keras\nmodel.fit_generator(gen, 99)  # saved by the editor meanwhile\n"
    with _closed_after_reading(target) as read:
        process = subprocess.Popen(
            [sys.executable, "-m", "kutils", "migrate", str(tree)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert read.wait(60), "the command never read the file"
        if save == "rename":  # as most editors and git checkout do
            temporary = tree / ".a_edited.py.swp"
            temporary.write_bytes(edit)
            os.replace(temporary, target)
        else:  # as `echo ... > file` does
            with open(target, "r+b") as stream:
                stream.truncate(0)
                stream.write(edit)
        out, _ = process.communicate(timeout=120)
    assert target.read_bytes() == edit
    assert f"{target}: not migrated: it changed since it was read" in out
    assert process.returncode == 1
    assert (tree / "z0.py").read_text().startswith("import keras\nfrom kutils import fit_generator")


# -- 3. links, owner, mode and extended attributes ------------------------------------


def test_a_symlink_stays_a_link_and_its_target_is_migrated_once(tmp_path, capsys):
    outside = tmp_path / "shared"
    outside.mkdir()
    real = outside / "real.py"
    real.write_bytes(GENERATOR_CALL)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.py").symlink_to(real)
    (tree / "second_link.py").symlink_to(real)
    assert main([str(tree)]) == 0
    for name in ("link.py", "second_link.py"):
        assert (tree / name).is_symlink()
        assert os.readlink(tree / name) == str(real)
    assert real.read_bytes() == GENERATOR_DONE
    assert "1 file(s) read, rewrote 1," in capsys.readouterr().err


def test_a_hard_link_stays_one_file(tmp_path, capsys):
    tree = tmp_path / "tree"
    tree.mkdir()
    first = tree / "first.py"
    first.write_bytes(GENERATOR_CALL)
    other = tmp_path / "other_name.py"
    os.link(first, other)
    assert main([str(tree)]) == 0
    assert os.stat(first).st_ino == os.stat(other).st_ino
    assert os.stat(first).st_nlink == 2
    assert other.read_bytes() == GENERATOR_DONE


def test_two_hard_links_in_the_tree_are_one_file_migrated_once(tmp_path, capsys):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a.py").write_bytes(GENERATOR_CALL)
    os.link(tree / "a.py", tree / "b.py")
    assert main([str(tree)]) == 0
    assert (tree / "b.py").read_bytes() == GENERATOR_DONE
    assert os.stat(tree / "a.py").st_ino == os.stat(tree / "b.py").st_ino
    assert "1 file(s) read, rewrote 1, 0 thing(s) to change by hand, 0 file(s) not migrated" in (
        capsys.readouterr().err
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_owner_and_group_and_mode_are_kept(tmp_path, capsys):
    target = tmp_path / "owned.py"
    target.write_bytes(GENERATOR_CALL)
    os.chown(target, 1234, 5678)
    os.chmod(target, 0o2754)
    assert main([str(target)]) == 0
    info = os.stat(target)
    assert (info.st_uid, info.st_gid) == (1234, 5678)
    assert stat.S_IMODE(info.st_mode) == 0o2754
    assert target.read_bytes() == GENERATOR_DONE


def test_mode_is_kept(tmp_path, capsys):
    target = tmp_path / "script.py"
    target.write_bytes(GENERATOR_CALL)
    os.chmod(target, 0o751)
    assert main([str(target)]) == 0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o751


def test_extended_attributes_are_kept(tmp_path, capsys):
    target = tmp_path / "tagged.py"
    target.write_bytes(GENERATOR_CALL)
    try:
        os.setxattr(target, "user.kutils.origin", b"notebook export")
    except OSError as error:
        pytest.skip(f"this filesystem has no user extended attributes ({error.strerror})")
    assert main([str(target)]) == 0
    assert os.getxattr(target, "user.kutils.origin") == b"notebook export"
    assert target.read_bytes() == GENERATOR_DONE


# -- 4. the meaning of the code is kept ----------------------------------------------


MEANING_CASES = [
    # an imported fit_generator keeps its meaning: the kutils one is called qualified
    (
        "from mylib import fit_generator\nmodel.fit_generator(gen, 2)\nfit_generator(1)\n",
        "from mylib import fit_generator\nimport kutils\n"
        "kutils.fit_generator(model, gen, 2)\nfit_generator(1)\n",
    ),
    # a parameter named fit_generator is not called
    (
        "def train(model, gen, fit_generator=True):\n    model.fit_generator(gen, 2)\n",
        "import kutils\ndef train(model, gen, fit_generator=True):\n"
        "    kutils.fit_generator(model, gen, 2)\n",
    ),
    # `import kutils` goes before the first use, also on a line shared with `;`
    (
        "import keras; y = keras.utils.to_categorical([0])\n",
        "import keras; import kutils; y = kutils.to_categorical([0])\n",
    ),
    # an `import kutils` below the first use does not count
    (
        "import keras\ny = keras.utils.to_categorical([0])\nimport kutils\n",
        "import keras\nimport kutils\ny = kutils.to_categorical([0])\nimport kutils\n",
    ),
    # a decorator above the first statement keeps its function
    (
        "@decorate\ndef f(model):\n    model.fit_generator(g, 1)\n",
        "from kutils import fit_generator\n@decorate\ndef f(model):\n"
        "    fit_generator(model, g, 1)\n",
    ),
    # a parameter named like an imported module is not that module
    (
        "import keras\ndef f(keras):\n    return keras.utils.to_categorical([0])\n",
        "import keras\ndef f(keras):\n    return keras.utils.to_categorical([0])\n",
    ),
    # a comprehension's variable shadows the import inside the comprehension only
    (
        "import keras\nz = [keras.utils.to_categorical(1) for keras in xs]\n"
        "y = keras.utils.to_categorical([0])\n",
        "import keras\nimport kutils\nz = [keras.utils.to_categorical(1) for keras in xs]\n"
        "y = kutils.to_categorical([0])\n",
    ),
    # a name assigned in a function shadows the module's import
    (
        "from keras import backend as K\ndef f(x):\n    K = x\n    return K.mean(x)\n",
        "from keras import backend as K\ndef f(x):\n    K = x\n    return K.mean(x)\n",
    ),
]


@pytest.mark.parametrize(("source", "expected"), MEANING_CASES)
def test_rewrites_keep_what_each_name_means(source, expected):
    new, findings, _ = migrate_source(source)
    assert _compiles(new)
    assert (new, findings) == (expected, [])
    assert migrate_source(new) == (new, [], 0)


def test_star_import_of_tf_keras_utils_keeps_the_names_only_keras_3_has():
    source = (
        "from tensorflow.keras.utils import *\nset_random_seed(1)\ny = to_categorical([0, 1])\n"
    )
    new, findings, _ = migrate_source(source)
    assert new == (
        "from kutils import *\n"
        "from tensorflow.keras.utils import set_random_seed\n"
        "set_random_seed(1)\n"
        "y = to_categorical([0, 1])\n"
    )
    assert findings == []
    assert migrate_source(new) == (new, [], 0)


OWN_CLASS_CASES = [
    # the issue's own example
    "class Wrapper:\n    def fit_generator(self, x, n):\n        return x * n\n\n"
    "y = Wrapper().fit_generator(x, 3)\n",
    # an instance kept in a name, and a call on self
    "class Wrapper:\n    def fit_generator(self, x, n):\n        return x * n\n"
    "    def twice(self, x):\n        return self.fit_generator(x, 2)\n\n"
    "w = Wrapper()\ny = w.fit_generator(x, 3)\n",
    # a subclass inherits the method
    "class Base:\n    def predict_generator(self, g, steps):\n        return g\n"
    "class Child(Base):\n    pass\n\nChild().predict_generator(g, 1)\n",
]


@pytest.mark.parametrize("source", OWN_CLASS_CASES)
def test_a_user_class_own_generator_method_is_not_rewritten(source):
    assert migrate_source(source) == (source, [], 0)


# -- 5. Keras 2 code in every syntactic position is rewritten or reported --------------


POSITION_CASES = [
    (
        "try:\n    import foo\nexcept ImportError:\n    from keras.utils import to_categorical\n",
        "try:\n    import foo\nexcept ImportError:\n    from kutils import to_categorical\n",
    ),
    (
        "match x:\n    case 1:\n        from keras.utils import to_categorical\n"
        "        model.fit_generator(g, 1)\n",
        "from kutils import fit_generator\nmatch x:\n    case 1:\n"
        "        from kutils import to_categorical\n        fit_generator(model, g, 1)\n",
    ),
    (
        "class Trainer:\n    def fit_generator(self, gen):\n"
        "        return self.model.fit_generator(gen, 10)\n",
        "import kutils\nclass Trainer:\n    def fit_generator(self, gen):\n"
        "        return kutils.fit_generator(self.model, gen, 10)\n",
    ),
    (
        "# def fit_generator(model, gen): was our own once\nmodel.fit_generator(gen, 1)\n",
        "# def fit_generator(model, gen): was our own once\n"
        "from kutils import fit_generator\nfit_generator(model, gen, 1)\n",
    ),
    (
        "import keras\rmodel.fit_generator(g, 2)\ry = keras.utils.to_categorical([0])\r",
        "import keras\rimport kutils\rfrom kutils import fit_generator\r"
        "fit_generator(model, g, 2)\ry = kutils.to_categorical([0])\r",
    ),
]


@pytest.mark.parametrize(("source", "expected"), POSITION_CASES)
def test_keras_2_code_is_found_in_every_position(source, expected):
    new, findings, _ = migrate_source(source)
    assert (new, findings) == (expected, [])
    assert migrate_source(new) == (new, [], 0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is Python 3.11+")
def test_keras_2_import_under_except_star_is_rewritten():
    source = "try:\n    pass\nexcept* ValueError:\n    from keras.utils import to_categorical\n"
    assert migrate_source(source)[0] == source.replace("keras.utils", "kutils")


def _notebook(path: Path, code: str) -> bytes:
    cell = {
        "cell_type": "code",
        "metadata": {},
        "source": code,
        "outputs": [],
        "execution_count": None,
    }
    data = json.dumps(
        {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    ).encode()
    path.write_bytes(data)
    return data


def test_keras_2_code_in_a_decorator_above_its_function_is_reported():
    source = "@model.fit_generator\ndef f():\n    pass\n"
    assert migrate_source(source)[1] == [
        (
            1,
            "fit_generator used without a call: Keras 3 models have no fit_generator; "
            "call kutils.fit_generator(model, ...) instead",
        )
    ]


def test_notebooks_are_migrated_never_skipped_or_parsed_as_python(tmp_path, capsys):
    tree = tmp_path / "tree"
    tree.mkdir()
    folder_notebook = tree / "train.ipynb"
    folder_data = _notebook(folder_notebook, "model.fit_generator(gen, 10)")
    named = tmp_path / "named.ipynb"
    named_data = _notebook(named, "from keras.utils import to_categorical")
    plain = tree / "plain.ipynb"
    plain_data = _notebook(plain, "print(1)")
    status = main([str(tree), str(named)])
    captured = capsys.readouterr()
    assert folder_notebook.read_bytes() == folder_data.replace(
        b'"model.fit_generator(gen, 10)"',
        b'"from kutils import fit_generator\\nfit_generator(model, gen, 10)"',
    )
    assert named.read_bytes() == named_data.replace(b"keras.utils", b"kutils")
    assert plain.read_bytes() == plain_data  # no Keras in it: nothing to do
    assert "not migrated" not in captured.out
    assert "does not parse" not in captured.out
    assert "rewrote 2," in captured.err
    assert status == 0


def test_diff_with_pending_changes_exits_1(tmp_path, capsys):
    target = tmp_path / "pending.py"
    target.write_bytes(GENERATOR_CALL)
    assert main(["--diff", str(target)]) == 1
    assert target.read_bytes() == GENERATOR_CALL
    main([str(target)])
    assert main(["--diff", str(target)]) == 0


# -- 6. one bad file never stops the run ------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "error"),
    [("+".join(["1"] * 200000), "RecursionError"), ("-" * 100000 + "1", "MemoryError")],
)
def test_a_file_too_deep_for_the_parser_is_reported_and_the_others_migrated(
    tmp_path, capsys, expression, error
):
    deep = tmp_path / "deep.py"
    deep.write_text(f"import keras\nx = {expression}\n")
    good = tmp_path / "good.py"
    good.write_bytes(GENERATOR_CALL)
    status = main([str(tmp_path)])
    captured = capsys.readouterr()
    assert good.read_bytes() == GENERATOR_DONE
    assert f"{deep}: not migrated: " in captured.out and error in captured.out
    assert "2 file(s) read, rewrote 1," in captured.err
    assert status == 1


def test_a_file_name_that_is_not_utf8_with_a_strict_stdout(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    odd = os.path.join(os.fsencode(tree), b"caf\xe9.py")
    with open(odd, "wb") as stream:
        stream.write(b"import keras\nmodel._make_predict_function()\n" + GENERATOR_CALL[13:])
    (tree / "good.py").write_bytes(GENERATOR_CALL)
    env = {**ENV, "PYTHONIOENCODING": "utf-8:strict"}
    done = _run([str(tree)], env=env)
    assert "Traceback" not in done.stderr, done.stderr
    assert (tree / "good.py").read_bytes() == GENERATOR_DONE
    with open(odd, "rb") as stream:
        assert b"fit_generator(model, gen, 10)" in stream.read()
    assert "caf\\xe9.py:2: Keras 3 has no _make_predict_function" in done.stdout
    assert done.returncode == 1


def test_main_called_from_a_script_without_a_main_guard_on_70_files(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(70):
        (tree / f"g{index}.py").write_bytes(GENERATOR_CALL)
    script = tmp_path / "unguarded.py"
    script.write_text(
        f"import sys\nfrom kutils.migrate import main\nsys.exit(main([{str(tree)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=ENV, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BrokenProcessPool" not in done.stderr
    assert "70 file(s) read, rewrote 70," in done.stderr
    assert all((tree / f"g{i}.py").read_bytes() == GENERATOR_DONE for i in range(70))


# -- 7. the summary is true, and --diff applies ---------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_every_count_of_the_summary_is_true(tmp_path, capsys):
    with _tmpfs(tmp_path / "small", "64k") as disk:
        for index in range(3):
            (disk / f"s{index}.py").write_bytes(GENERATOR_CALL)
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        status = main([str(disk)])
        captured = capsys.readouterr()
        for index in range(3):
            assert (disk / f"s{index}.py").read_bytes() == GENERATOR_CALL
            assert f"s{index}.py: not migrated: cannot write it" in captured.out
        assert not [p for p in disk.iterdir() if p.name.startswith(".kutils")]
    assert "3 file(s) read, rewrote 0, 0 thing(s) to change by hand, 3 file(s) not migrated" in (
        captured.err
    )
    assert status == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_read_only_mount_every_count_of_the_summary_is_true(tmp_path, capsys):
    with _tmpfs(tmp_path / "ro", "1m") as disk:
        for index in range(3):
            (disk / f"r{index}.py").write_bytes(GENERATOR_CALL)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        status = main([str(disk)])
        captured = capsys.readouterr()
        for index in range(3):
            assert (disk / f"r{index}.py").read_bytes() == GENERATOR_CALL
    assert "3 file(s) read, rewrote 0, 0 thing(s) to change by hand, 3 file(s) not migrated" in (
        captured.err
    )
    assert "Read-only file system" in captured.out
    assert status == 1


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_is_utf8_and_applies_with_git_apply(tmp_path):
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    files = {
        "src/utf8.py": "# café, naïve: ünïcode\nimport keras\nmodel.fit_generator(gen, 10)  # é\n".encode(),
        "src/crlf.py": b"import keras\r\ny = keras.utils.to_categorical([0])\r\n",
        "src/no_final_newline.py": b"import keras\nmodel.fit_generator(gen, 1)",
    }
    for name, data in files.items():
        (work / name).write_bytes(data)
    expected = tmp_path / "expected"
    shutil.copytree(work, expected)
    assert _run([str(expected / "src")]).returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "kutils", "migrate", "--diff", "src"],
        capture_output=True,
        env=ENV,
        cwd=work,
        timeout=120,
    )
    assert done.returncode == 1
    patch = done.stdout
    assert "+fit_generator(model, gen, 10)  # é\n".encode() in patch
    assert " # café, naïve: ünïcode\n".encode() in patch
    (tmp_path / "change.patch").write_bytes(patch)
    for name, data in files.items():  # --diff wrote nothing
        assert (work / name).read_bytes() == data
    applied = subprocess.run(
        ["git", "apply", "--verbose", str(tmp_path / "change.patch")],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert applied.returncode == 0, applied.stderr
    for name in files:
        assert (work / name).read_bytes() == (expected / name).read_bytes(), name


# -- all of it at once ------------------------------------------------------------------


def test_a_tree_holding_every_case_leaves_only_compiling_files_and_reports_the_rest(
    tmp_path, capsys
):
    tree = tmp_path / "tree"
    tree.mkdir()
    sources = [
        *(source for source, _ in SPAN_CASES + MEANING_CASES + POSITION_CASES),
        *OWN_CLASS_CASES,
        "import keras\nx = 1\nglobal x\nmodel.fit_generator(gen, 10)\n",  # does not compile
        "import keras\nx = " + "+".join(["1"] * 200000) + "\n",  # too deep
        (CORPUS / "broken.py.in").read_text(),  # does not parse
        (CORPUS / "report.py.in").read_text(),
        "from tensorflow.keras.utils import *\nset_random_seed(1)\n",
    ]
    for index, source in enumerate(sources):
        (tree / f"case{index:02d}.py").write_bytes(source.encode())
    _notebook(tree / "notebook.ipynb", "model.fit_generator(gen, 10)")
    before = {path.name: path.read_bytes() for path in tree.iterdir()}
    status = main([str(tree)])
    out = capsys.readouterr().out
    not_migrated = {
        line.split(": not migrated: ")[0] for line in out.splitlines() if ": not migrated: " in line
    }
    for path in sorted(tree.iterdir()):
        if f"{path}" in not_migrated:
            assert path.read_bytes() == before[path.name], path.name
        elif path.suffix == ".py" and path.read_bytes() != before[path.name]:
            assert _compiles(path.read_text()), path.read_text()
    assert {os.path.basename(p) for p in not_migrated} == {
        f"case{len(sources) - 5:02d}.py",
        f"case{len(sources) - 4:02d}.py",
        f"case{len(sources) - 3:02d}.py",
    }
    assert b"fit_generator(model, gen, 10)" in (tree / "notebook.ipynb").read_bytes()
    assert status == 1
    # A second run changes nothing more.
    after = {path.name: path.read_bytes() for path in tree.iterdir()}
    main([str(tree)])
    assert {path.name: path.read_bytes() for path in tree.iterdir()} == after
