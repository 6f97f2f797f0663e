"""Is a usable TensorFlow installed? Asked at the first use of a feature that needs one.

kutils does not require the ``tensorflow`` distribution: TensorFlow ships under several
names (``tensorflow``, ``tensorflow-cpu``, ``tf-nightly``, vendor builds), all of which
install the same ``tensorflow`` package, and a user of Keras's JAX, PyTorch or NumPy
backend needs none of them for most of kutils. Features that do need TensorFlow call
:func:`require_tensorflow` first, which raises :class:`TensorFlowRequiredError` (an
``ImportError``) naming the feature, what is installed and the commands that fix it.

The installed version is read from the distributions' metadata, so the check costs no
TensorFlow import unless the ``tensorflow`` package has no metadata (a source build).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import re
import sys
from typing import Any

__all__ = [
    "MINIMUM_TENSORFLOW",
    "TENSORFLOW_DISTRIBUTIONS",
    "TensorFlowRequiredError",
    "install_instructions",
    "installed_tensorflow",
    "require_tensorflow",
    "tensorflow_problem",
    "unavailable",
]

#: The oldest TensorFlow kutils supports (the first release paired with Keras 3).
MINIMUM_TENSORFLOW = (2, 16)

#: Distributions known to install the ``tensorflow`` package. Any other that does is
#: found through ``importlib.metadata.packages_distributions`` (slower, so asked last).
TENSORFLOW_DISTRIBUTIONS = (
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tensorflow-aarch64",
    "tensorflow-cpu-aws",
    "tensorflow-rocm",
    "intel-tensorflow",
    "tf-nightly",
    "tf-nightly-cpu",
    "tf-nightly-gpu",
    "tf-nightly-intel",
    "tf-nightly-macos",
)

_INSTALL_COMMANDS = (
    ("the full package; the same as kutils[tensorflow]", 'pip install "tensorflow>=2.16"'),
    ("CPU only, a smaller download", 'pip install "tensorflow-cpu>=2.16"'),
    ("NVIDIA GPUs on Linux, with CUDA", 'pip install "tensorflow[and-cuda]>=2.16"'),
)


class TensorFlowRequiredError(ImportError):
    """A kutils feature that needs TensorFlow was used without a supported TensorFlow."""


def require_tensorflow(feature: str) -> None:
    """Raise TensorFlowRequiredError unless TensorFlow 2.16 or newer is installed.

    Args:
        feature: what the user called, as they would write it (``"multi_gpu_model"``);
            the message starts with it.

    Raises:
        TensorFlowRequiredError: no TensorFlow is installed, or one older than 2.16.
    """
    problem = tensorflow_problem()
    if problem is not None:
        raise TensorFlowRequiredError(_message(feature, problem), name="tensorflow")


def tensorflow_problem() -> str | None:
    """What is wrong with the installed TensorFlow, in words; None when it is usable."""
    return _describe(installed_tensorflow())


def _describe(found: tuple[list[str], str | None] | None) -> str | None:
    if found is None:
        return f"no TensorFlow is installed in this environment ({sys.executable})"
    distributions, version = found
    if version is None:
        return None  # a build without a version string: let TensorFlow itself decide
    if _major_minor(version) < MINIMUM_TENSORFLOW:
        low = ".".join(map(str, MINIMUM_TENSORFLOW))
        return (
            f"TensorFlow {version} is installed (distribution {', '.join(distributions)}), "
            f"older than the {low} kutils needs"
        )
    return None


def installed_tensorflow() -> tuple[list[str], str | None] | None:
    """The distributions providing the ``tensorflow`` package and its version, or None.

    Reads package metadata only; TensorFlow is imported just when its package exists
    but no distribution claims it (a source build or a copied folder), to read
    ``tf.__version__``. The version is None when even that gives none. A ``tensorflow``
    folder without ``__init__.py`` (what an uninstall can leave) counts as no TensorFlow.
    """
    module = sys.modules.get("tensorflow")
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return _owners(), module.__version__
    spec = importlib.util.find_spec("tensorflow")
    if spec is None:
        return None
    owners = _owners()
    if owners:
        return owners, importlib.metadata.version(owners[0])
    if spec.origin is None:
        # A namespace package: a tensorflow/ folder without __init__.py, such as what is
        # left when one of two TensorFlow distributions sharing it is uninstalled.
        return None
    try:
        tf = importlib.import_module("tensorflow")
    except Exception:
        return ["(no distribution)"], None  # its own error will tell, when it is used
    return ["(no distribution)"], getattr(tf, "__version__", None)


def unavailable(feature: str, module_name: str, name: str) -> Any:
    """A stand-in for ``module_name.name`` that checks for TensorFlow when first called.

    ``kutils.__getattr__`` hands it out, when TensorFlow is missing, for public names
    whose module imports TensorFlow: ``from kutils import *`` and
    ``from kutils import data_parallel`` then work without TensorFlow, and the error
    comes at the first call. Once TensorFlow is usable, the call goes to the real function.
    """

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        require_tensorflow(feature)
        return getattr(importlib.import_module(module_name), name)(*args, **kwargs)

    stand_in.__name__ = stand_in.__qualname__ = name
    stand_in.__module__ = module_name
    stand_in.__doc__ = f"{feature}: needs TensorFlow, which was not usable when it was imported."
    return stand_in


def install_instructions() -> str:
    """The lines telling how to install a TensorFlow that kutils supports."""
    commands = "\n".join(f"    {command:42}  # {what}" for what, command in _INSTALL_COMMANDS)
    return (
        "Install one TensorFlow distribution (one only: they share the tensorflow package "
        f"folder):\n{commands}\n"
        "An environment that already has TensorFlow in another distribution (tf-nightly, "
        "a vendor build) needs no other."
    )


def _owners() -> list[str]:
    owners = []
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        owners.append(name)
    if not owners:
        owners = sorted(set(importlib.metadata.packages_distributions().get("tensorflow", [])))
    return owners


def _major_minor(version: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return MINIMUM_TENSORFLOW  # unparsable: do not block on it
    return int(match.group(1)), int(match.group(2))


def _message(feature: str, problem: str) -> str:
    low = ".".join(map(str, MINIMUM_TENSORFLOW))
    return (
        f"{feature} needs TensorFlow {low} or newer, but {problem}. "
        f"{install_instructions()} kutils's other features work without TensorFlow on "
        "Keras's JAX, PyTorch or NumPy backend (see docs/install.md in kutils)."
    )
