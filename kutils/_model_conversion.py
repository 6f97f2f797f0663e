"""``kutils migrate --convert-models``: Keras 2 model files saved again as ``.keras``.

Each Keras 2 model file (``.h5``/``.hdf5`` written by ``model.save`` in Keras 2.2/2.3 or
tf.keras 1.x/2.x) is loaded with :func:`kutils.load_model`, saved in Keras 3's format
beside the original (``model.h5`` gives ``model.keras``), loaded back with Keras's own
loader, and kept only when both models predict the same on a probe input. Nothing is
overwritten: an existing ``.keras`` file is left alone and reported, and a conversion
that fails at any step leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MODEL_SUFFIXES", "Conversion", "convert_model_file", "is_keras2_model_file"]

MODEL_SUFFIXES = (".h5", ".hdf5")
# Predictions of the converted model must match the loaded one within this tolerance:
# the same weights and graph, so only the order of floating-point operations may differ.
_RTOL, _ATOL = 1e-5, 1e-6
_PROBE_SAMPLES = 4


@dataclass
class Conversion:
    """What happened to one model file: ``target`` written, or ``error`` saying why not.

    ``needs_kutils``: the ``.keras`` file names kutils' own objects (Keras 2's activity
    regularization), so it loads with ``kutils.load_model``, not Keras alone.
    """

    path: str
    target: str | None = None
    error: str | None = None
    needs_kutils: bool = False


def is_keras2_model_file(path: str) -> bool:
    """True for an HDF5 file holding a whole model (``model_config``) saved by Keras 1/2."""
    import h5py

    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as file:
            if "model_config" not in file.attrs:
                return False
            version = file.attrs.get("keras_version", b"2")
    except OSError:
        return False
    version = version.decode("utf8") if isinstance(version, bytes) else str(version)
    return version.split(".")[0] in ("1", "2")


def convert_model_file(path: str, custom_objects: dict[str, Any] | None = None) -> Conversion:
    """Save the Keras 2 model file ``path`` as ``.keras`` beside it, checked; never raises."""
    target = os.path.splitext(path)[0] + ".keras"
    result = Conversion(path)
    if os.path.lexists(target):
        result.error = f"{target!r} already exists and was left alone"
        return result
    try:
        result.needs_kutils = _convert(path, target, custom_objects)
    except Exception as error:  # reported per file; the run goes on
        result.error = f"{type(error).__name__}: {_one_line(error)}"
    else:
        result.target = target
    return result


def _convert(path: str, target: str, custom_objects: dict[str, Any] | None) -> bool:
    """Write ``target``; True when it names kutils' own objects."""
    import json

    from kutils.saved_models import load_model

    model = load_model(path, custom_objects=custom_objects)
    probe = _probe(model)
    expected = model.predict(probe, verbose=0)
    folder = os.path.dirname(os.path.abspath(target))
    fd, temporary = tempfile.mkstemp(prefix=".kutils-convert-", suffix=".keras", dir=folder)
    os.close(fd)
    try:
        model.save(temporary)
        converted = load_model(temporary, custom_objects=custom_objects)
        _check_same(expected, converted.predict(probe, verbose=0))
        # A hard link never replaces a file: a .keras file made meanwhile is kept.
        os.link(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
    return '"kutils>' in json.dumps(model.get_config())


def _probe(model: Any) -> Any:
    """A fixed input for every model input: uniform [0, 1) floats, or zeros for integers
    (indices valid for any Embedding); unknown dimensions are 3."""
    rng = np.random.default_rng(0)
    probe = []
    for tensor in model.inputs:
        shape = [_PROBE_SAMPLES] + [3 if size is None else size for size in tensor.shape[1:]]
        dtype = np.dtype(getattr(tensor, "dtype", "float32") or "float32")
        if np.issubdtype(dtype, np.floating):
            probe.append(rng.uniform(0, 1, shape).astype(dtype))
        else:
            probe.append(np.zeros(shape, dtype))
    return probe[0] if len(probe) == 1 else probe


def _check_same(expected: Any, actual: Any) -> None:
    expected_list = expected if isinstance(expected, (list, tuple)) else [expected]
    actual_list = actual if isinstance(actual, (list, tuple)) else [actual]
    if len(expected_list) != len(actual_list):
        msg = f"the saved model has {len(actual_list)} outputs, the loaded one {len(expected_list)}"
        raise ValueError(msg)
    for index, (want, got) in enumerate(zip(expected_list, actual_list, strict=True)):
        if not np.allclose(want, got, rtol=_RTOL, atol=_ATOL):
            worst = float(np.max(np.abs(np.asarray(want) - np.asarray(got))))
            msg = (
                f"output {index} of the saved .keras model differs from the loaded model "
                f"by up to {worst:.3g} on a probe input; nothing was written"
            )
            raise ValueError(msg)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
