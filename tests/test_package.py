"""The package itself: cheap import, exports, version, and Keras 2 signature parity."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from importlib import metadata

import pytest

import kutils

# The newest documented Keras 2 signature of each public callable: (name, parameters),
# each parameter as (name, default) with inspect.Parameter.empty for "no default".
# Extra keyword-only parameters may follow the legacy ones.
_ = inspect.Parameter.empty
LEGACY_SIGNATURES = {
    "to_categorical": [("y", _), ("num_classes", None), ("dtype", "float32")],
    "normalize": [("x", _), ("axis", -1), ("order", 2)],
    "custom_object_scope": [("args", _)],
    "CustomObjectScope": [("args", _)],
    "get_custom_objects": [],
    "print_summary": [("model", _), ("line_length", None), ("positions", None), ("print_fn", None)],
    "model_to_dot": [
        ("model", _),
        ("show_shapes", False),
        ("show_layer_names", True),
        ("rankdir", "TB"),
        ("expand_nested", False),
        ("dpi", 96),
        ("subgraph", False),
    ],
    "plot_model": [
        ("model", _),
        ("to_file", "model.png"),
        ("show_shapes", False),
        ("show_layer_names", True),
        ("rankdir", "TB"),
        ("expand_nested", False),
        ("dpi", 96),
    ],
    "multi_gpu_model": [
        ("model", _),
        ("gpus", None),
        ("cpu_merge", True),
        ("cpu_relocation", False),
    ],
    "HDF5Matrix": [
        ("datapath", _),
        ("dataset", _),
        ("start", 0),
        ("end", None),
        ("normalizer", None),
    ],
    "Sequence": [],
    "get_file": [
        ("fname", _),
        ("origin", _),
        ("untar", False),
        ("md5_hash", None),
        ("file_hash", None),
        ("cache_subdir", "datasets"),
        ("hash_algorithm", "auto"),
        ("extract", False),
        ("archive_format", "auto"),
        ("cache_dir", None),
    ],
    "Progbar": [
        ("target", _),
        ("width", 30),
        ("verbose", 1),
        ("interval", 0.05),
        ("stateful_metrics", None),
    ],
    "SequenceEnqueuer": [("sequence", _), ("use_multiprocessing", False)],
    "OrderedEnqueuer": [("sequence", _), ("use_multiprocessing", False), ("shuffle", False)],
    "GeneratorEnqueuer": [
        ("sequence", _),
        ("use_multiprocessing", False),
        ("wait_time", None),
        ("random_seed", None),
    ],
    "serialize_keras_object": [("instance", _)],
    "deserialize_keras_object": [
        ("identifier", _),
        ("module_objects", None),
        ("custom_objects", None),
        ("printable_module_name", "object"),
    ],
    "get_source_inputs": [("tensor", _), ("layer", None), ("node_index", None)],
    "convert_all_kernels_in_model": [("model", _)],
    "load_model": [("filepath", _), ("custom_objects", None), ("compile", True)],
    "model_from_json": [("json_string", _), ("custom_objects", None)],
    "model_from_yaml": [("yaml_string", _), ("custom_objects", None)],
    # Keras 2.3.1's Model methods, with the model as first argument.
    "load_weights": [
        ("model", _),
        ("filepath", _),
        ("by_name", False),
        ("skip_mismatch", False),
        ("reshape", False),
    ],
    # Network.save_weights(filepath, overwrite=True), with the model first.
    "save_weights": [("model", _), ("filepath", _), ("overwrite", True)],
    "fit_generator": [
        ("model", _),
        ("generator", _),
        ("steps_per_epoch", None),
        ("epochs", 1),
        ("verbose", 1),
        ("callbacks", None),
        ("validation_data", None),
        ("validation_steps", None),
        ("validation_freq", 1),
        ("class_weight", None),
        ("max_queue_size", 10),
        ("workers", 1),
        ("use_multiprocessing", False),
        ("shuffle", True),
        ("initial_epoch", 0),
    ],
    "evaluate_generator": [
        ("model", _),
        ("generator", _),
        ("steps", None),
        ("callbacks", None),
        ("max_queue_size", 10),
        ("workers", 1),
        ("use_multiprocessing", False),
        ("verbose", 0),
    ],
    # Sequential's methods, taken as functions of the model (the model comes first).
    # Model.predict, taken as a function of the model (for Keras 2's reading of x).
    "predict": [
        ("model", _),
        ("x", _),
        ("batch_size", None),
        ("verbose", 0),
        ("steps", None),
        ("callbacks", None),
        ("max_queue_size", 10),
        ("workers", 1),
        ("use_multiprocessing", False),
    ],
    "predict_classes": [("model", _), ("x", _), ("batch_size", 32), ("verbose", 0)],
    "predict_proba": [("model", _), ("x", _), ("batch_size", 32), ("verbose", 0)],
    # Network.reset_states() and RNN.reset_states(states=None), taken as a function.
    "reset_states": [("obj", _), ("states", None)],
    # Network.add_loss(losses, inputs=None), taken as a function of the model.
    "add_loss": [("model", _), ("losses", _), ("inputs", None)],
    # Model.compile, taken as a function of the model (for the weights it collected).
    "compile": [
        ("model", _),
        ("optimizer", _),
        ("loss", None),
        ("metrics", None),
        ("loss_weights", None),
        ("sample_weight_mode", None),
        ("weighted_metrics", None),
        ("target_tensors", None),
    ],
    # Model.fit, taken as a function of the model (for its class_weight).
    "fit": [
        ("model", _),
        ("x", None),
        ("y", None),
        ("batch_size", None),
        ("epochs", 1),
        ("verbose", 1),
        ("callbacks", None),
        ("validation_split", 0.0),
        ("validation_data", None),
        ("shuffle", True),
        ("class_weight", None),
        ("sample_weight", None),
        ("initial_epoch", 0),
        ("steps_per_epoch", None),
        ("validation_steps", None),
        ("validation_freq", 1),
        ("max_queue_size", 10),
        ("workers", 1),
        ("use_multiprocessing", False),
    ],
    # Model.train_on_batch, taken as a function of the model (for its class_weight).
    "train_on_batch": [
        ("model", _),
        ("x", _),
        ("y", _),
        ("sample_weight", None),
        ("class_weight", None),
        ("reset_metrics", True),
    ],
    "predict_generator": [
        ("model", _),
        ("generator", _),
        ("steps", None),
        ("callbacks", None),
        ("max_queue_size", 10),
        ("workers", 1),
        ("use_multiprocessing", False),
        ("verbose", 0),
    ],
}

# Public names with no Keras 2 counterpart: the data-parallel core behind multi_gpu_model
# and the streamed PyDataset over HDF5Matrix data.
NEW_PUBLIC = {"data_parallel", "HDF5Dataset"}


def test_import_does_not_load_heavy_dependencies():
    code = (
        "import sys, kutils; "
        "heavy = [m for m in ('tensorflow', 'keras', 'h5py', 'pydot', 'requests') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.strip() == "[]"


# Public, importable by name, but not given by `from kutils import *`: a builtin's name.
NOT_STARRED = {"compile"}
PUBLIC = sorted({"__version__", *kutils._EXPORTS})


def test_all_lists_exactly_the_names_that_resolve():
    for name in PUBLIC:
        assert getattr(kutils, name) is not None
    assert set(PUBLIC) == {"__version__", *LEGACY_SIGNATURES, *NEW_PUBLIC}
    assert set(kutils.__all__) == set(PUBLIC) - NOT_STARRED
    assert set(dir(kutils)) >= set(PUBLIC)


def test_star_import_hides_no_builtin():
    import builtins

    namespace: dict = {}
    exec("from kutils import *", namespace)
    hidden = {name for name in namespace if name != "__builtins__"} & set(dir(builtins))
    assert hidden == set()
    assert "to_categorical" in namespace


def test_no_submodule_shadows_a_public_name():
    import importlib
    import pkgutil
    import types

    for module in pkgutil.iter_modules(kutils.__path__):
        if module.name != "__main__":
            importlib.import_module(f"kutils.{module.name}")
    for name in PUBLIC:
        assert not isinstance(getattr(kutils, name), types.ModuleType), name


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'multi_gpu_models'"):
        kutils.multi_gpu_models  # noqa: B018


def test_one_version_string():
    assert kutils.__version__.count(".") == 2
    try:
        installed = metadata.version("kutils")
    except metadata.PackageNotFoundError:
        pytest.skip("kutils is not installed, only importable from the source tree")
    assert installed == kutils.__version__


def test_py_typed_is_shipped():
    from importlib import resources

    assert resources.files("kutils").joinpath("py.typed").is_file()


@pytest.mark.parametrize("name", sorted(LEGACY_SIGNATURES))
def test_signature_matches_keras_2(name):
    obj = getattr(kutils, name)
    params = list(inspect.signature(obj).parameters.values())
    legacy = LEGACY_SIGNATURES[name]
    assert [(p.name, p.default) for p in params[: len(legacy)]] == legacy
    for extra in params[len(legacy) :]:
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY, (
            f"{name}: {extra.name} must be keyword-only"
        )


def test_public_signatures_are_type_hinted():
    for name in PUBLIC:
        obj = getattr(kutils, name)
        if not callable(obj):
            continue
        target = obj.__init__ if inspect.isclass(obj) else obj
        hints = inspect.signature(target).parameters
        for param in hints.values():
            if param.name == "self":
                continue
            assert param.annotation is not inspect.Parameter.empty, (
                f"{name}({param.name}) has no type hint"
            )


# Functions allowed over the limit, each with its reason (docs/development.md: no function
# over 60 lines of code).
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}


def _lines_of_code(lines: list[str], function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = function.body
    docstring: set[int] = set()
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        docstring = set(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return sum(
        1
        for number in range(function.lineno, (function.end_lineno or function.lineno) + 1)
        if number not in docstring
        and lines[number - 1].strip()
        and not lines[number - 1].strip().startswith("#")
    )


def test_no_function_has_over_60_lines_of_code():
    from pathlib import Path

    package = Path(kutils.__file__).parent
    too_long = {}
    for path in sorted(package.glob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                count = _lines_of_code(lines, node)
                if count > 60 and f"{path.name}:{node.name}" not in LONG_FUNCTIONS_ALLOWED:
                    too_long[f"{path.name}:{node.name}"] = count
    assert too_long == {}, "split these functions (docs/development.md)"


# Modules allowed over the limit, each with its reason (docs/development.md: no module over
# about 500 lines; physical lines, blank and comment lines included).
LONG_MODULES_ALLOWED: dict[str, str] = {}


def test_no_module_has_over_500_lines():
    from pathlib import Path

    package = Path(kutils.__file__).parent
    too_long = {}
    for path in sorted(package.rglob("*.py")):
        count = len(path.read_text().splitlines())
        name = path.relative_to(package).as_posix()
        if count > 500 and name not in LONG_MODULES_ALLOWED:
            too_long[name] = count
    assert too_long == {}, "split these modules by responsibility (docs/development.md)"
