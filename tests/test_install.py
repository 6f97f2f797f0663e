"""Installing kutils next to the TensorFlow a user has, and using it without TensorFlow.

The slow tests build real virtual environments under tmp from kutils's own wheel (pip's
cache makes the second run quick): one holding ``tensorflow-cpu``, into which kutils must
install without pulling another TensorFlow distribution and then train through
``multi_gpu_model``; one without TensorFlow (Keras on JAX or NumPy), where the features
that need TensorFlow raise kutils's error at first use and the others work. Each venv is
built once per module and shared by its tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kutils import _requirements

ROOT = Path(__file__).resolve().parent.parent

# The TensorFlow the project targets, in the distribution CPU-only machines use.
TENSORFLOW_CPU = "tensorflow-cpu==2.21.*"
# Keras's NumPy backend (Keras 3.15) imports JAX and SciPy; `jax` brings both.
JAX = "jax"

# Any distribution that installs the `tensorflow` package.
_TENSORFLOW_NAME = re.compile(r"^(tensorflow|tf-nightly|intel-tensorflow)([-_.].*)?$")
_PIP_TIMEOUT = 900  # seconds; a cold pip cache downloads ~600 MB of TensorFlow


# --- fast tests: the check itself, in this environment ------------------------------------


def test_installed_tensorflow_is_read_from_metadata_without_importing_it() -> None:
    script = (
        "import json, sys\n"
        "from kutils import _requirements\n"
        "found = _requirements.installed_tensorflow()\n"
        "print(json.dumps([found, 'tensorflow' in sys.modules, _requirements.tensorflow_problem()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    (distributions, version), imported, problem = json.loads(out.stdout)
    from importlib import metadata

    assert distributions, "no TensorFlow distribution found in an environment that has one"
    assert version == metadata.version(distributions[0])
    assert not imported, "finding the TensorFlow version imported TensorFlow"
    assert problem is None


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (None, "no TensorFlow is installed"),
        (
            (["tensorflow-cpu"], "2.15.1"),
            "TensorFlow 2.15.1 is installed (distribution tensorflow-cpu), older than the 2.16",
        ),
        ((["tensorflow"], "1.15.5"), "TensorFlow 1.15.5 is installed"),
        ((["tensorflow"], "2.16.0rc0"), None),
        ((["tensorflow-cpu"], "2.21.0"), None),
        ((["tf-nightly"], "2.22.0.dev20261101"), None),
        ((["tensorflow", "tensorflow-cpu"], "3.0.0"), None),
        ((["(no distribution)"], None), None),
    ],
)
def test_tensorflow_state_is_judged_by_its_version(found: Any, expected: str | None) -> None:
    problem = _requirements._describe(found)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


def test_error_names_feature_state_and_install_commands() -> None:
    error = _requirements.TensorFlowRequiredError(
        _requirements._message("kutils.data_parallel", "no TensorFlow is installed here"),
        name="tensorflow",
    )
    text = str(error)
    assert isinstance(error, ImportError)
    assert text.startswith("kutils.data_parallel needs TensorFlow 2.16 or newer, but no TensorFlow")
    for command in (
        'pip install "tensorflow>=2.16"',
        'pip install "tensorflow-cpu>=2.16"',
        'pip install "tensorflow[and-cuda]>=2.16"',
    ):
        assert command in text


def test_require_tensorflow_accepts_this_environments_tensorflow() -> None:
    _requirements.require_tensorflow("kutils.multi_gpu_model")  # TensorFlow 2.21 is here


# --- helpers for the slow tests ----------------------------------------------------------


def _timed(timings: dict[str, float], step: str, command: list[str], **kwargs: Any) -> str:
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    timings[step] = round(time.monotonic() - start, 1)
    if result.returncode != 0:
        pytest.fail(
            f"{step} failed ({' '.join(command)}), exit {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def _pip_env() -> dict[str, str]:
    # The project's own checkout must not shadow the kutils installed from the wheel.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_NO_CACHE_DIR")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _make_venv(path: Path, timings: dict[str, float]) -> Path:
    start = time.monotonic()
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    timings["create venv"] = round(time.monotonic() - start, 1)
    return path / "bin" / "python"


def _pip(python: Path, timings: dict[str, float], step: str, *args: str) -> str:
    command = [str(python), "-m", "pip", *args]
    return _timed(timings, step, command, env=_pip_env(), timeout=_PIP_TIMEOUT)


def _run(venv_python: Path, workdir: Path, script: str, **env: str) -> Any:
    """Run ``script`` in the venv (TensorFlow quiet, a private KERAS_HOME); its last line is JSON."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "script.py"
    path.write_text(textwrap.dedent(script))
    full_env = _pip_env()
    full_env.pop("KERAS_BACKEND", None)
    full_env.update(TF_CPP_MIN_LOG_LEVEL="2", KERAS_HOME=str(workdir / "keras_home"), **env)
    result = subprocess.run(
        [str(venv_python), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
        env=full_env,
    )
    assert result.returncode == 0, (
        f"script failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503: tensorflow_cpu is tensorflow-cpu


def _installed(python: Path, timings: dict[str, float], step: str) -> dict[str, str]:
    listing = _pip(python, timings, step, "list", "--format", "json")
    return {_normalized(item["name"]): item["version"] for item in json.loads(listing)}


@pytest.fixture(scope="module")
def kutils_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kutils built from this checkout (copied, so the build leaves nothing in it)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "kutils", source / "kutils", ignore=shutil.ignore_patterns("__pycache__")
    )
    timings: dict[str, float] = {}
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--wheel-dir",
        str(base / "dist"),
        str(source),
    ]
    _timed(timings, "build wheel", command, env=_pip_env(), timeout=_PIP_TIMEOUT)
    print(f"kutils wheel built in {timings['build wheel']} s")
    (wheel,) = (base / "dist").glob("kutils-*.whl")
    return wheel


# --- slow: next to tensorflow-cpu --------------------------------------------------------


@pytest.fixture(scope="module")
def tensorflow_cpu_venv(
    tmp_path_factory: pytest.TempPathFactory, kutils_wheel: Path
) -> Iterator[SimpleNamespace]:
    """A venv holding tensorflow-cpu; pip's plan for the kutils wheel; then kutils installed."""
    base = tmp_path_factory.mktemp("tf-cpu")
    timings: dict[str, float] = {}
    python = _make_venv(base / "venv", timings)
    _pip(python, timings, "install tensorflow-cpu", "install", TENSORFLOW_CPU)
    before = _installed(python, timings, "pip list before")
    report_path = base / "report.json"
    _pip(
        python,
        timings,
        "dry-run install of the kutils wheel",
        "install",
        "--dry-run",
        "--report",
        str(report_path),
        str(kutils_wheel),
    )
    report = json.loads(report_path.read_text())
    _pip(python, timings, "install the kutils wheel", "install", str(kutils_wheel))
    after = _installed(python, timings, "pip list after")
    print(f"tensorflow-cpu venv set-up times (s): {timings}")
    yield SimpleNamespace(
        python=python, base=base, report=report, before=before, after=after, timings=timings
    )
    shutil.rmtree(base / "venv", ignore_errors=True)  # about 1.3 GB


@pytest.mark.slow
def test_wheel_installs_no_other_tensorflow_next_to_tensorflow_cpu(
    tensorflow_cpu_venv: SimpleNamespace,
) -> None:
    planned = {
        _normalized(item["metadata"]["name"]) for item in tensorflow_cpu_venv.report["install"]
    }
    assert "kutils" in planned, f"pip did not plan to install kutils: {sorted(planned)}"
    assert "tensorflow-cpu" in tensorflow_cpu_venv.before
    assert not {name for name in planned if _TENSORFLOW_NAME.match(name)}, (
        f"installing kutils would add a TensorFlow distribution: {sorted(planned)}"
    )
    tensorflows_after = {n for n in tensorflow_cpu_venv.after if _TENSORFLOW_NAME.match(n)}
    assert tensorflows_after == {"tensorflow-cpu"}
    assert (
        tensorflow_cpu_venv.after["tensorflow-cpu"] == tensorflow_cpu_venv.before["tensorflow-cpu"]
    )


TRAIN_THROUGH_MULTI_GPU_MODEL = """
    import json, sys
    import kutils
    cheap_import = "tensorflow" not in sys.modules and "keras" not in sys.modules

    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    import numpy as np
    from kutils import _requirements, multi_gpu_model, to_categorical

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = to_categorical((x[:, 0] + x[:, 1] > 0).astype(int), 2)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")]
    )
    before = [w.copy() for w in model.get_weights()]
    parallel = multi_gpu_model(model, gpus=2)  # KUTILS_MULTI_GPU_DEVICE_TYPE=CPU
    parallel.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.2), metrics=["accuracy"])
    history = parallel.fit(x, y, batch_size=32, epochs=4, verbose=0)
    changed = all(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    print(json.dumps({
        "cheap_import": cheap_import,
        "kutils_file": kutils.__file__,
        "tensorflow_version": tf.__version__,
        "found": _requirements.installed_tensorflow(),
        "devices": parallel.devices,
        "loss": history.history["loss"],
        "accuracy": history.history["accuracy"][-1],
        "template_weights_changed": changed,
    }))
"""


@pytest.mark.slow
def test_kutils_trains_through_multi_gpu_model_on_tensorflow_cpu(
    tensorflow_cpu_venv: SimpleNamespace,
) -> None:
    out = _run(
        tensorflow_cpu_venv.python,
        tensorflow_cpu_venv.base / "train",
        TRAIN_THROUGH_MULTI_GPU_MODEL,
        KUTILS_MULTI_GPU_DEVICE_TYPE="CPU",
    )
    assert Path(out["kutils_file"]).is_relative_to(tensorflow_cpu_venv.base / "venv")
    assert out["cheap_import"]
    assert out["found"] == [["tensorflow-cpu"], out["tensorflow_version"]]
    assert out["tensorflow_version"].startswith("2.21.")
    assert out["devices"] == ["/cpu:0", "/cpu:1"]
    assert out["template_weights_changed"]
    assert out["loss"][-1] < out["loss"][0]
    assert out["accuracy"] > 0.8, out


# --- slow: without TensorFlow ------------------------------------------------------------


@pytest.fixture(scope="module")
def no_tensorflow_venv(
    tmp_path_factory: pytest.TempPathFactory, kutils_wheel: Path
) -> Iterator[SimpleNamespace]:
    """A venv with the kutils wheel and JAX (for Keras's JAX and NumPy backends), no TensorFlow."""
    base = tmp_path_factory.mktemp("no-tf")
    timings: dict[str, float] = {}
    python = _make_venv(base / "venv", timings)
    _pip(python, timings, "install kutils wheel and jax", "install", str(kutils_wheel), JAX)
    installed = _installed(python, timings, "pip list")
    print(f"no-TensorFlow venv set-up times (s): {timings}")
    yield SimpleNamespace(python=python, base=base, installed=installed)
    shutil.rmtree(base / "venv", ignore_errors=True)  # about 0.7 GB


CLEAR_ERROR_AT_FIRST_CALL = """
    import json, sys
    import keras
    from kutils import *  # every public name, data_parallel included
    from kutils import data_parallel

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    try:
        data_parallel(model, ["/cpu:0", "/cpu:0"])
    except ImportError as error:
        caught = {"type": type(error).__name__, "name": error.name, "message": str(error)}
    else:
        caught = None
    try:
        import kutils.parallel
    except ImportError as error:
        module = {"type": type(error).__name__, "message": str(error)}
    else:
        module = None
    print(json.dumps({
        "caught": caught, "module": module, "tensorflow_imported": "tensorflow" in sys.modules
    }))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_without_tensorflow_data_parallel_raises_clear_error_at_first_call(
    no_tensorflow_venv: SimpleNamespace, backend: str
) -> None:
    assert not {n for n in no_tensorflow_venv.installed if _TENSORFLOW_NAME.match(n)}
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / f"error-{backend}",
        CLEAR_ERROR_AT_FIRST_CALL,
        KERAS_BACKEND=backend,
    )
    caught = out["caught"]
    assert caught is not None, "data_parallel ran without TensorFlow"
    assert caught["type"] == "TensorFlowRequiredError"
    assert caught["name"] == "tensorflow"
    message = caught["message"]
    assert message.startswith(
        "kutils.data_parallel needs TensorFlow 2.16 or newer, but no TensorFlow is installed"
    )
    assert str(no_tensorflow_venv.python.parent) in message
    for command in ('"tensorflow>=2.16"', '"tensorflow-cpu>=2.16"', '"tensorflow[and-cuda]>=2.16"'):
        assert command in message
    assert out["module"] is not None, "kutils.parallel imported without TensorFlow"
    assert out["module"]["type"] == "TensorFlowRequiredError"
    assert out["module"]["message"].startswith("kutils.parallel needs TensorFlow 2.16 or newer")
    assert not out["tensorflow_imported"]


MULTI_GPU_MODEL_ON_JAX = """
    import json
    import keras
    from kutils import multi_gpu_model

    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(2)(inp))
    try:
        multi_gpu_model(model, gpus=2)
    except ValueError as error:  # the Keras 2 way to fall back to one device
        caught = {"type": type(error).__name__, "message": str(error)}
    else:
        caught = None
    print(json.dumps({"caught": caught}))
"""


@pytest.mark.slow
def test_without_tensorflow_multi_gpu_model_keeps_keras2_value_error_with_install_hint(
    no_tensorflow_venv: SimpleNamespace,
) -> None:
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / "multi-gpu-jax",
        MULTI_GPU_MODEL_ON_JAX,
        KERAS_BACKEND="jax",
    )
    caught = out["caught"]
    assert caught is not None and caught["type"] == "ValueError"
    message = caught["message"]
    assert message.startswith("`multi_gpu_model` is only available with the TensorFlow backend.")
    assert "Received: backend='jax'" in message
    assert "no TensorFlow is installed" in message
    assert '"tensorflow-cpu>=2.16"' in message


DATA_TOOLS_ON_DEFAULT_BACKEND = """
    import functools, hashlib, http.server, io, json, os, sys, tarfile, threading
    import h5py
    import numpy as np
    from kutils import HDF5Matrix, data_parallel, get_file, normalize, to_categorical

    result = {
        "to_categorical": to_categorical([0, 2, 1]).tolist(),
        "normalize": normalize(np.array([[3.0, 4.0]])).tolist(),
    }
    with h5py.File("data.h5", "w") as f:
        f["x"] = np.arange(20, dtype="float32").reshape(10, 2)
    matrix = HDF5Matrix("data.h5", "x", start=2, end=8)
    result["hdf5"] = [matrix[0].tolist(), matrix[1:3].tolist(), matrix[[3, 0]].tolist(), list(matrix.shape)]
    result["hdf5_whole"] = [len(matrix), np.asarray(matrix)[:, 0].tolist()]

    os.makedirs("served")
    payload = b"served on loopback"
    with tarfile.open("served/archive.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("archive/hello.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with open("served/archive.tar.gz", "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="served")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/archive.tar.gz"
        path = get_file("archive.tar.gz", url, file_hash=digest, extract=True, cache_dir=os.path.abspath("cache"))
    finally:
        server.shutdown()
    with open(os.path.join(os.path.dirname(path), "archive", "hello.txt"), "rb") as handle:
        result["get_file"] = [os.path.basename(path), handle.read().decode()]

    try:
        data_parallel(None, ["/cpu:0"])
    except ImportError as error:
        result["data_parallel"] = type(error).__name__
    try:
        import keras  # noqa: F401
    except ImportError as error:
        result["keras"] = f"{type(error).__name__}: {error}"
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(result))
"""


@pytest.mark.slow
def test_without_tensorflow_data_tools_work_on_the_default_backend(
    no_tensorflow_venv: SimpleNamespace,
) -> None:
    # No KERAS_BACKEND and a fresh KERAS_HOME: Keras's backend is TensorFlow, which is
    # missing, so Keras itself cannot be imported; these tools must not need it.
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / "default",
        DATA_TOOLS_ON_DEFAULT_BACKEND,
    )
    assert out["to_categorical"] == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert out["normalize"] == [[pytest.approx(0.6), pytest.approx(0.8)]]
    assert out["hdf5"] == [[4.0, 5.0], [[6.0, 7.0], [8.0, 9.0]], [[10.0, 11.0], [4.0, 5.0]], [6, 2]]
    assert out["hdf5_whole"] == [6, [4.0, 6.0, 8.0, 10.0, 12.0, 14.0]]
    assert out["get_file"] == ["archive.tar.gz", "served on loopback"]
    assert out["data_parallel"] == "TensorFlowRequiredError"
    assert "tensorflow" in out["keras"], "Keras loaded: this run did not test a missing backend"
    assert not out["tensorflow_imported"]


def _small_model_summary_script() -> str:
    return """
        import keras
        from kutils import CustomObjectScope, get_custom_objects, model_to_dot, plot_model, print_summary

        def my_act(x):
            return keras.ops.relu(x)

        inp = keras.Input((4,), name="features")
        with CustomObjectScope({"my_act": my_act}):
            hidden = keras.layers.Dense(3, activation="my_act", name="hidden")(inp)
            in_scope = get_custom_objects().get("my_act") is my_act
        out = keras.layers.Dense(2, activation="softmax", name="out")(hidden)
        model = keras.Model(inp, out, name="small")
        lines = []
        print_summary(model, print_fn=lines.append)
        dot = model_to_dot(model, show_shapes=True).to_string()
    """


MODEL_TOOLS = (
    _small_model_summary_script()
    + """
        import json, os, subprocess, sys
        plot_model(model, to_file="model.png")
        plain = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(2, name="y")], name="plain")
        plain.save("plain.keras")
        cli = subprocess.run(
            [sys.executable, "-m", "kutils", "summary", "plain.keras"], capture_output=True, text=True, timeout=120
        )
        cli_plot = subprocess.run(
            [sys.executable, "-m", "kutils", "plot", "plain.keras", "-o", "plain.svg"],
            capture_output=True, text=True, timeout=120,
        )
        print(json.dumps({
            "backend": keras.backend.backend(),
            "activation": model.get_layer("hidden").activation.__name__,
            "summary": lines,
            "dot": dot,
            "png": open("model.png", "rb").read(8).hex(),
            "cli": [cli.returncode, cli.stdout, cli.stderr[-2000:]],
            "cli_plot": [cli_plot.returncode, cli_plot.stderr[-2000:]],
            "svg": open("plain.svg").read() if cli_plot.returncode == 0 else "",
            "in_scope": in_scope,
            "after_scope": "my_act" in get_custom_objects(),
            "tensorflow_imported": "tensorflow" in sys.modules,
        }))
    """
)


def _without_ids(dot: str) -> str:
    return re.sub(r"\b\d{6,}\b", "<id>", dot)  # pydot node names are Python object ids


@pytest.fixture(scope="module")
def tensorflow_summary() -> tuple[list[str], str]:
    """print_summary lines and model_to_dot source of the same model on TensorFlow, here."""
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(_small_model_summary_script()), namespace)
    return namespace["lines"], namespace["dot"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "numpy"])
def test_without_tensorflow_summary_plot_and_custom_objects_work(
    no_tensorflow_venv: SimpleNamespace, backend: str, tensorflow_summary: tuple[list[str], str]
) -> None:
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / f"tools-{backend}",
        MODEL_TOOLS,
        KERAS_BACKEND=backend,
    )
    lines, dot = tensorflow_summary
    assert out["backend"] == backend
    assert out["activation"] == "my_act"
    assert out["in_scope"] and not out["after_scope"]
    assert out["summary"] == lines  # the same Keras 2 table as on TensorFlow
    assert "hidden (Dense)" in "\n".join(lines)
    assert _without_ids(out["dot"]) == _without_ids(dot)
    assert out["png"] == "89504e470d0a1a0a"
    returncode, stdout, stderr = out["cli"]
    assert returncode == 0, stderr
    assert "y (Dense)" in stdout and "Total params: 10" in stdout
    returncode, stderr = out["cli_plot"]
    assert returncode == 0, stderr
    assert "<svg" in out["svg"] and "y: Dense" in out["svg"]
    assert not out["tensorflow_imported"]


DATA_PIPELINE = """
    import json, sys
    import h5py
    import keras
    import numpy as np
    from kutils import HDF5Dataset, HDF5Matrix, Sequence, to_categorical
    from kutils import hdf5_dataset

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4)).astype("float32")
    labels = (x[:, 0] > 0).astype(int)
    with h5py.File("data.h5", "w") as f:
        f["x"] = x
        f["y"] = to_categorical(labels, 2)

    class Batches(Sequence):  # Keras 2 style: no super().__init__()
        def __init__(self):
            self.epochs_ended = 0

        def __len__(self):
            return 6

        def __getitem__(self, i):
            return x[i * 16 : (i + 1) * 16], to_categorical(labels[i * 16 : (i + 1) * 16], 2)

        def on_epoch_end(self):
            self.epochs_ended += 1

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"])
    result = {"backend": keras.backend.backend()}
    x_h5, y_h5 = HDF5Matrix("data.h5", "x"), HDF5Matrix("data.h5", "y")
    result["predict_sequence"] = list(model.predict(Batches(), verbose=0).shape)
    result["predict_hdf5_dataset"] = list(model.predict(HDF5Dataset(x_h5, batch_size=16), verbose=0).shape)
    try:
        seq = Batches()
        seq.workers = 2  # threads
        history = model.fit(seq, epochs=3, verbose=0)  # the model's first fit
        result["sequence_fit_loss"] = history.history["loss"]
        result["epochs_ended_first_fit"] = seq.epochs_ended
        seq = Batches()
        model.fit(seq, epochs=3, verbose=0)
        result["epochs_ended_second_fit"] = seq.epochs_ended
        history = model.fit(x_h5, y_h5, batch_size=16, epochs=2, shuffle="batch", verbose=0)
        result["hdf5_fit_loss"] = history.history["loss"]
        result["hdf5_streaming_installed"] = hdf5_dataset.install_hdf5_streaming.installed
        history = model.fit(HDF5Dataset(x_h5, y_h5, batch_size=16, shuffle=True, seed=1), epochs=2, verbose=0)
        result["hdf5_dataset_fit_accuracy"] = history.history["accuracy"][-1]
    except NotImplementedError as error:
        result["fit"] = str(error)
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    print(json.dumps(result))
"""


@pytest.mark.slow
def test_without_tensorflow_sequence_and_hdf5_train_on_jax(
    no_tensorflow_venv: SimpleNamespace,
) -> None:
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / "data-jax",
        DATA_PIPELINE,
        KERAS_BACKEND="jax",
    )
    assert out["backend"] == "jax"
    assert out["predict_sequence"] == [96, 2]
    assert out["predict_hdf5_dataset"] == [96, 2]
    assert out["epochs_ended_second_fit"] == 3  # once per epoch, as in Keras 2
    assert out["sequence_fit_loss"][-1] < out["sequence_fit_loss"][0]
    assert out["hdf5_streaming_installed"]
    assert len(out["hdf5_fit_loss"]) == 2
    assert out["hdf5_dataset_fit_accuracy"] > 0.8, out
    assert not out["tensorflow_imported"]


@pytest.mark.slow
def test_without_tensorflow_numpy_backend_predicts_but_keras_cannot_fit(
    no_tensorflow_venv: SimpleNamespace,
) -> None:
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / "data-numpy",
        DATA_PIPELINE,
        KERAS_BACKEND="numpy",
    )
    assert out["backend"] == "numpy"
    assert out["predict_sequence"] == [96, 2]
    assert out["predict_hdf5_dataset"] == [96, 2]
    assert out["fit"] == "fit not implemented for NumPy backend."  # Keras's own limit
    assert not out["tensorflow_imported"]


@pytest.mark.slow
@pytest.mark.xfail(
    reason="Keras 3.15's JAX trainer calls EpochIterator.reset() after building an unbuilt "
    "model, so on_epoch_end runs once before the first epoch of a model's first fit",
    strict=False,
)
def test_without_tensorflow_first_fit_on_jax_ends_each_epoch_once(
    no_tensorflow_venv: SimpleNamespace,
) -> None:
    out = _run(
        no_tensorflow_venv.python,
        no_tensorflow_venv.base / "epochs-jax",
        DATA_PIPELINE,
        KERAS_BACKEND="jax",
    )
    assert out["epochs_ended_first_fit"] == 3
