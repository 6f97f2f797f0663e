"""Developer tasks. ``pip install nox`` once, then ``nox -s <session>``.

Each session installs what it needs into its own virtual environment under ``.nox/``,
kept between runs, so a fresh machine with only Python and pip needs nothing else
(plus Debian's ``graphviz`` package for the plot-rendering tests: see .ci/run).
kutils itself does not require TensorFlow (it is the ``tensorflow`` extra), so every
session that imports TensorFlow installs ``.[tensorflow]``.
"""

from __future__ import annotations

import os
import pathlib

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

TEST_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: ``nox -s tests`` (pass pytest options after ``--``)."""
    session.install("-e", ".[test,tensorflow]")
    session.run("pytest", *session.posargs, env=TEST_ENV)


@nox.session
def slow(session: nox.Session) -> None:
    """Run only the tests marked slow (none selected is not a failure)."""
    session.install("-e", ".[test,tensorflow]")
    session.run("pytest", "-m", "slow", *session.posargs, env=TEST_ENV, success_codes=[0, 5])


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a Keras 2.3 era training script run unchanged on Keras 3 through kutils.

    Options after ``--`` go to the script: ``nox -s demo -- --epochs 2 --samples 1000``.
    """
    session.install("-e", ".[tensorflow]")
    session.run("python", "examples/legacy_training.py", *session.posargs, env=TEST_ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy on kutils/."""
    session.install("-e", ".[tensorflow]", "mypy>=1.10", "types-requests")
    session.run("mypy")


# The documentation's languages: English, the source, and its translations (catalogues
# under docs/locale/<lang>/LC_MESSAGES/). Each site is built into build/docs/<lang>/,
# English into build/docs/.
DOC_LANGUAGES = ["en", "ja", "zh_CN", "ko"]


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site in its four languages, warnings as errors."""
    session.install("-e", ".[docs,tensorflow]")
    for language in DOC_LANGUAGES:
        out = "build/docs" if language == "en" else f"build/docs/{language}"
        session.run(
            "sphinx-build", "-W", "--keep-going", "-b", "html", "-D", f"language={language}",
            "docs", out, env=TEST_ENV,
        )  # fmt: skip


@nox.session
def translations(session: nox.Session) -> None:
    """Update the translation catalogues from the English pages (then translate what is new).

    Changed English sentences come back as fuzzy or untranslated entries, which
    tests/test_translations.py reports until they are translated.
    """
    session.install("-e", ".[docs,tensorflow]")
    session.run("sphinx-build", "-q", "-b", "gettext", "docs", "build/gettext", env=TEST_ENV)
    languages = [arg for language in DOC_LANGUAGES[1:] for arg in ("-l", language)]
    session.run("sphinx-intl", "update", "-p", "build/gettext", "-d", "docs/locale", *languages)


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark under benchmarks/ and print its figures and ratios."""
    session.install("-e", ".[tensorflow]")
    import pathlib

    scripts = sorted(pathlib.Path("benchmarks").glob("bench_*.py"))
    if session.posargs:
        scripts = [s for s in scripts if any(arg in s.name for arg in session.posargs)]
    for script in scripts:
        session.log(f"--- {script}")
        session.run("python", str(script), env=TEST_ENV)


# The compatibility matrix: the oldest and the newest stack kutils supports, each in its
# own virtual environment. TensorFlow is installed explicitly (the CPU build) with the
# exact Keras and numpy of the stack, then kutils with an ordinary install; the constraints
# keep pip from replacing any of them while it resolves kutils's own requirements.
COMPAT_STACKS = {
    "oldest": {
        "python": "3.10",
        "pins": ["tensorflow-cpu==2.16.2", "keras==3.8.0", "numpy==1.26.4"],
    },
    "newest": {
        "python": "3.13",
        "pins": ["tensorflow-cpu==2.21.0", "keras==3.15.1", "numpy>=2.0,<3"],
    },
}

# The tests that touch Keras or TensorFlow internals (the canaries first), and those of
# the functions giving models Keras 2's methods and of fit_generator's Keras 2 loop, whose
# values Keras releases have changed (kutils/_batch_steps.py); the rest of the suite does
# not depend on the Keras release.
COMPAT_TESTS = [
    "tests/test_keras_internals.py",
    "tests/test_sequence.py",
    "tests/test_parallel.py",
    "tests/test_multi_gpu.py",
    "tests/test_hdf5_dataset.py",
    "tests/test_summary.py",
    "tests/test_plotting.py",
    "tests/test_custom_objects.py",
    "tests/test_model_losses.py",
    "tests/test_class_weights.py",
    "tests/test_trainable.py",
    "tests/test_generators.py",
    "tests/test_generators_keras2_loop.py",
]


@nox.session
@nox.parametrize(
    ("python", "stack"),
    [(spec["python"], name) for name, spec in COMPAT_STACKS.items()],
    ids=list(COMPAT_STACKS),
)
def compat(session: nox.Session, stack: str) -> None:
    """The Keras/TensorFlow internals tests on the oldest and newest supported stacks.

    ``nox -s compat`` runs both; ``nox -s "compat(oldest)"`` or ``"compat(newest)"`` one.
    """
    pins = COMPAT_STACKS[stack]["pins"]
    tf_version = pins[0].split("==")[1]
    constraints = pathlib.Path(session.create_tmp()) / "constraints.txt"
    # ``tensorflow`` pinned too, in case the extra ``kutils[tensorflow]`` is asked for.
    constraints.write_text("\n".join([*pins, f"tensorflow=={tf_version}"]) + "\n")
    session.install(*pins)
    session.install("-c", str(constraints), ".[test]")
    session.run("python", "-c", VERSIONS_REPORT)
    deselect = [f"--deselect={test}" for test in COMPAT_STACKS[stack].get("deselect", [])]
    session.run(
        "pytest",
        "-m",
        "slow or not slow",
        *deselect,
        *COMPAT_TESTS,
        *session.posargs,
        env=TEST_ENV,
    )


VERSIONS_REPORT = (
    "import sys, keras, numpy, tensorflow as tf; "
    "print('compat stack: python', sys.version.split()[0], 'tensorflow', tf.__version__, "
    "'keras', keras.__version__, 'numpy', numpy.__version__)"
)


# The oracle: the real Keras 2.3.1 (Python 3.7, TensorFlow 2.1) records the goldens under
# tests/goldens/ that the default test run compares kutils with (tests/test_oracle.py).
ORACLE_PINS = [
    "tensorflow-cpu==2.1.4",
    "keras==2.3.1",
    "h5py<3",
    "numpy<1.19",
    "protobuf<3.21",
    "pydot",
    "requests",
]


@nox.session(venv_backend="none")
def oracle(session: nox.Session) -> None:
    """Record the Keras 2.3.1 goldens: ``nox -s oracle`` (not in the default sessions).

    Builds ``.nox/oracle-keras2`` with ``python3.7 -m venv`` (virtualenv may refuse 3.7):
    set ``KUTILS_ORACLE_PYTHON`` to another Python 3.7, or ``KUTILS_ORACLE_VENV`` to an
    existing Keras 2.3.1 environment to use it as is. Then runs every
    ``tests/oracle/record_*.py`` (``-- name`` runs those whose file name contains it).
    Afterwards, ``python tests/oracle/_testing.py AREA record_AREA`` under kutils lists
    the cases that differ, for tests/goldens/AREA/differences.txt.
    """
    venv = os.environ.get("KUTILS_ORACLE_VENV")
    if not venv:
        venv = os.path.join(".nox", "oracle-keras2")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            interpreter = os.environ.get("KUTILS_ORACLE_PYTHON", "python3.7")
            session.run(interpreter, "-m", "venv", venv, external=True)
            session.run(python, "-m", "pip", "install", "pip<24", external=True)
            session.run(python, "-m", "pip", "install", *ORACLE_PINS, external=True)
    python = os.path.join(venv, "bin", "python")
    scripts = sorted(pathlib.Path("tests/oracle").glob("record_*.py"))
    if session.posargs:
        scripts = [s for s in scripts if any(arg in s.name for arg in session.posargs)]
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "PYTHONHASHSEED": "0"}
    for script in scripts:
        session.log(f"--- {script}")
        # From the script's folder's parent, so that relative paths are the repository's.
        session.run(python, str(script), env=env, external=True)
