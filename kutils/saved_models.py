"""Keras 2 saved models on Keras 3: ``load_model``, ``model_from_json``, ``load_weights``,
``save_weights``.

Keras 2.2/2.3 (and tf.keras 1.x/2.x) users saved models with ``model.save('x.h5')`` or
``model.to_json()`` plus ``model.save_weights('x_weights.h5')``. Keras 3 reads most of
those files wrongly or not at all. These functions read them: the configuration is
translated layer by layer (``_keras2_layers``, ``_keras2_graph``), the weights are
mapped by layer and order (``_keras2_weights``), and the model is compiled as the file
says, with the optimizer state restored (``_keras2_training``,
``_keras2_optimizer_state``). Files written by Keras 3
itself (``.keras``, and ``.h5`` files whose ``keras_version`` is 3.x) go to Keras's own
loader unchanged.

A model file is data: as Keras 3's ``safe_mode``, the Python bytecode a Keras 2
``Lambda`` layer stores is never run unless the caller passes ``safe_mode=False``.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

__all__ = ["load_model", "load_weights", "model_from_json", "model_from_yaml", "save_weights"]

PathLike = str | os.PathLike[str]


def load_model(
    filepath: Any,
    custom_objects: dict[str, Any] | None = None,
    compile: bool = True,
    *,
    safe_mode: bool = True,
) -> Any:
    """Load a model saved by Keras 2 (``model.save``) or by Keras 3, compiled as saved.

    Args:
        filepath: path of a ``.h5``/``.hdf5`` file written by Keras 2.2/2.3 or tf.keras,
            an open ``h5py.File``, or a file Keras 3 wrote (``.keras`` or ``.h5``).
        custom_objects: custom layers, activations, losses, metrics and optimizers by
            name, and the functions of ``Lambda`` layers by layer name. Objects in an
            enclosing ``CustomObjectScope`` are found too.
        compile: compile the model as the file says (optimizer with its state, losses,
            loss weights, metrics). Ignored when the file was never compiled.
        safe_mode: keyword-only. ``True`` (the default) never runs Python bytecode
            stored in the file (a Keras 2 ``Lambda``'s function); such a layer needs its
            function in ``custom_objects``. ``False`` runs it, for files you trust.

    Returns:
        A Keras 3 model with the saved weights; compiled when ``compile`` and the file
        has a training configuration.

    Raises:
        ValueError: the file is not a model file (a weights-only file, say), names an
            unknown custom object, or holds a layer Keras 3 has no equivalent for.
        kutils.saved_models.LambdaNotSupplied: (a ``ValueError``) a ``Lambda`` layer's
            function was not supplied; the message names the layer.

    Differences:
        From Keras 2: ``safe_mode``; the decay of an optimizer becomes a Keras 3
        ``InverseTimeDecay`` schedule (the same values). From Keras 3: Keras 2 files
        load with their Keras 2 meaning (docs/saved_models.md lists every translation).

    Example:
        >>> model = load_model("model.h5", custom_objects={"MyLayer": MyLayer})  # doctest: +SKIP
        >>> model.fit(x, y)  # resumes with the saved optimizer state  # doctest: +SKIP
    """
    import h5py

    if not isinstance(filepath, (h5py.File, h5py.Group)):
        filepath = _existing_path(filepath)
        if zipfile.is_zipfile(filepath) or not h5py.is_hdf5(filepath):
            return _keras_load_model(filepath, custom_objects, compile, safe_mode)
        with h5py.File(filepath, "r") as file:
            if _written_by_keras3(file):
                return _keras_load_model(filepath, custom_objects, compile, safe_mode)
            return _load_keras2_file(file, custom_objects, compile, safe_mode)
    return _load_keras2_file(filepath, custom_objects, compile, safe_mode)


def _existing_path(filepath: Any) -> str:
    if not isinstance(filepath, (str, os.PathLike)):
        msg = (
            "load_model takes a file path or an open h5py.File. "
            f"Received: filepath of type {type(filepath).__name__}"
        )
        raise TypeError(msg)
    path = os.fspath(filepath)
    if os.path.isdir(path):
        msg = (
            f"{path!r} is a directory: a TensorFlow SavedModel, which Keras 3 cannot load "
            "as a model. Load it for inference with keras.layers.TFSMLayer, or load the "
            f"original .h5 file. Received: filepath={path!r}"
        )
        raise ValueError(msg)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}. Received: filepath={path!r}")
    return path


def _written_by_keras3(file: Any) -> bool:
    version = _attribute(file, "keras_version")
    return version is not None and version.split(".")[0] not in ("1", "2")


def _attribute(group: Any, name: str) -> str | None:
    value = group.attrs.get(name)
    if value is None:
        return None
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _keras_load_model(path: str, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    import keras

    from kutils._keras2_layers import register_serializables

    # A .keras file saved from a translated Keras 2 model may name kutils' own objects.
    register_serializables()

    return keras.saving.load_model(
        path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
    )


def _load_keras2_file(file: Any, custom_objects: Any, compile: bool, safe_mode: bool) -> Any:
    from kutils import _keras2_optimizer_state, _keras2_training, _keras2_weights

    model_config = _attribute(file, "model_config")
    if model_config is None:
        msg = (
            "The HDF5 file has no model configuration: it holds weights only "
            "(save_weights). Build the model and call kutils.load_weights(model, path). "
            f"Received: filepath={getattr(file, 'filename', file)!r}"
        )
        raise ValueError(msg)
    _refuse_theano(file)
    objects = _custom_objects(custom_objects)
    model = _build(json.loads(model_config), objects, safe_mode)
    weights = file.get("model_weights", file)
    _keras2_weights.load_weights_from_group(weights, model)
    training_config = _attribute(file, "training_config")
    if compile and training_config is not None:
        config = json.loads(training_config)
        version = _attribute(file, "keras_version")
        _keras2_training.compile_from_training_config(model, config, objects, version)
        if "optimizer_weights" in file:
            group = file["optimizer_weights"]
            names = [_decode(name) for name in group.attrs["weight_names"]]
            class_name = _keras2_training.optimizer_class_name(config["optimizer_config"])
            values = [group[name][()] for name in names]
            _keras2_optimizer_state.restore_optimizer_state(model, class_name, names, values)
    return model


def _decode(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _refuse_theano(file: Any) -> None:
    if _attribute(file, "backend") == "theano":
        msg = (
            "The file was written by Keras 2 with the Theano backend, whose convolution "
            "kernels are stored flipped; kutils reads TensorFlow-backend files only. "
            "Load it in Keras 2 with the TensorFlow backend and save it again. "
            "Received: backend='theano'"
        )
        raise ValueError(msg)


def _custom_objects(custom_objects: dict[str, Any] | None) -> dict[str, Any]:
    from kutils.custom_objects import get_custom_objects

    if custom_objects is not None and not hasattr(custom_objects, "keys"):
        msg = (
            "custom_objects is a dict mapping names to classes and functions. "
            f"Received: custom_objects of type {type(custom_objects).__name__}"
        )
        raise TypeError(msg)
    return {**get_custom_objects(), **(custom_objects or {})}


def _build(serialized: dict[str, Any], objects: dict[str, Any], safe_mode: bool) -> Any:
    from kutils._keras2_graph import build_model
    from kutils.custom_objects import CustomObjectScope

    # The scope lets Keras's own look-ups (activation='my_activation') find the objects.
    with CustomObjectScope(objects):
        return build_model(serialized, objects, safe_mode=safe_mode)


def model_from_json(
    json_string: str,
    custom_objects: dict[str, Any] | None = None,
    *,
    safe_mode: bool = True,
) -> Any:
    """Build a model, without weights, from ``model.to_json()`` of Keras 2 or Keras 3.

    Args:
        json_string: the JSON text Keras 2 (``{"class_name": "Sequential"|"Model",
            "config": ..., "keras_version": ...}``) or Keras 3 wrote.
        custom_objects: custom classes and functions by name; ``Lambda`` functions by
            layer name.
        safe_mode: keyword-only; as in ``load_model``.

    Returns:
        An uncompiled Keras 3 model. Load its weights with ``kutils.load_weights``.

    Raises:
        ValueError: the text is not a model configuration, or a layer cannot be built.

    Example:
        >>> with open("model.json") as f:  # doctest: +SKIP
        ...     model = model_from_json(f.read(), custom_objects={"MyLayer": MyLayer})
        >>> load_weights(model, "model_weights.h5")  # doctest: +SKIP
    """
    try:
        serialized = json.loads(json_string)
    except (TypeError, ValueError) as error:
        msg = (
            "model_from_json takes the JSON text of model.to_json(). "
            f"Received: json_string={str(json_string)[:80]!r}"
        )
        raise ValueError(msg) from error
    if not isinstance(serialized, dict) or "class_name" not in serialized:
        msg = f"Not a model configuration. Received: json_string={str(json_string)[:80]!r}"
        raise ValueError(msg)
    if "module" in serialized or "registered_name" in serialized:  # Keras 3's own format
        import keras

        with keras.saving.custom_object_scope(custom_objects or {}):
            return keras.models.model_from_json(json_string, custom_objects=custom_objects)
    return _build(serialized, _custom_objects(custom_objects), safe_mode)


def model_from_yaml(yaml_string: str, custom_objects: dict[str, Any] | None = None) -> Any:
    """Refuse YAML model configurations, as tf.keras 2.6+ and Keras 3 do.

    Keras 2.3.1 parsed them with ``yaml.load``, which can run code from the text (its
    docs warned). Convert the configuration once, in Keras 2, with ``to_json``.

    Raises:
        RuntimeError: always, saying to use ``model_from_json``.
    """
    msg = (
        "model_from_yaml is not supported: loading YAML can run arbitrary code (Keras "
        "2.3.1's own docs warned, and tf.keras 2.6 removed it). In Keras 2, load the "
        "model and save model.to_json(); then use kutils.model_from_json. "
        f"Received: a YAML string of {len(str(yaml_string))} characters"
    )
    raise RuntimeError(msg)


def load_weights(
    model: Any,
    filepath: Any,
    by_name: bool = False,
    skip_mismatch: bool = False,
    reshape: bool = False,
) -> None:
    """Load a Keras 2 (or Keras 3) weights file into a Keras 3 model, as Keras 2 did.

    Args:
        model: a built Keras 3 model (made in Keras 3 code or by ``model_from_json``).
        filepath: a Keras 2 file written by ``save_weights`` or ``model.save`` (any
            name, ``.weights.h5`` included), or a Keras 3 weights file.
        by_name: ``False``: layers with weights are matched in order, as Keras 2 did
            (the model must have the same architecture). ``True``: each layer of the
            file goes to the model layer of the same name; other layers are left alone.
        skip_mismatch: with ``by_name``, skip (with a warning) the layers whose weights
            differ in number or shape instead of raising.
        reshape: reshape a stored weight to the layer's shape when it has the same
            number of values (Keras 2's ``reshape``).

    Raises:
        kutils.saved_models.WeightsMismatch: (a ``ValueError``) the file's layers do not
            fit the model; the message names both layers.

    Differences:
        Keras 2 had this as ``model.load_weights``; Keras 3's ``model.load_weights``
        reads Keras 2 ``.h5`` files by order too, but not a Keras 2 file named
        ``*.weights.h5``, and without kutils' error messages.

    Example:
        >>> model = build_my_model()  # doctest: +SKIP
        >>> load_weights(model, "keras2_weights.h5", by_name=True)  # doctest: +SKIP
    """
    import h5py

    from kutils import _keras2_weights

    path = _existing_path(filepath)
    if not h5py.is_hdf5(path):
        model.load_weights(path, skip_mismatch=skip_mismatch)
        return
    with h5py.File(path, "r") as file:
        group = file.get("model_weights", file)
        # Keras 3's reader of its own legacy .h5 files; it refuses other names, which
        # kutils.save_weights writes: those go to kutils' reader (the same layout).
        keras3_name = path.lower().endswith((".h5", ".hdf5"))
        if "layer_names" not in group.attrs or (_written_by_keras3(file) and keras3_name):
            if _written_by_keras3(file) or by_name:
                model.load_weights(path, skip_mismatch=skip_mismatch, by_name=by_name)
            else:
                model.load_weights(path, skip_mismatch=skip_mismatch)
            return
        _refuse_theano(file)
        _keras2_weights.load_weights_from_group(
            group, model, by_name=by_name, skip_mismatch=skip_mismatch, reshape=reshape
        )


def save_weights(model: Any, filepath: PathLike, overwrite: bool = True) -> None:
    """Save ``model``'s weights to an HDF5 file of any name, as Keras 2's ``save_weights``.

    Keras 2.3.1 wrote an HDF5 weights file at whatever name it was given
    (``"gen_weights.hdf5"``, ``"model.ckpt"``); Keras 3 refuses a name that does not end
    in ``.weights.h5``. This writes Keras 2's layout (a group per layer of
    ``model.layers`` with its ``weight_names``), which Keras 2.3.1's and Keras 3's
    ``model.load_weights`` and :func:`load_weights` read. The file is written to a
    temporary file beside ``filepath`` and moved into place, so an interrupted save
    never leaves a truncated file at ``filepath``.

    Args:
        model: a Keras 3 model (or layer) with weights.
        filepath: where to write. A name ending in ``.weights.h5`` is Keras 3's own
            format, the one Keras 3's ``load_weights`` expects at such a name: the file
            is written by Keras 3's ``model.save_weights``.
        overwrite: ``True`` replaces an existing file silently. ``False`` asks on the
            terminal, as Keras 2 did (``[WARNING] ... already exists - overwrite?
            [y/n]``); on ``n`` nothing is written.

    Raises:
        TypeError: ``filepath`` is not a path.
        IsADirectoryError: ``filepath`` is a folder.
        FileExistsError: ``overwrite=False``, the file exists and there is no answer to
            the question (standard input is closed, as in a batch job).

    Differences:
        From Keras 2: weight names are the Keras 3 variable paths with ``:0`` (those of
        a nested model's layers name the layer, as in Keras 2, where TensorFlow named
        them the same way); the ``keras_version`` attribute is the running Keras's;
        weights a subclassed model holds outside its layers, which Keras 2 dropped
        silently, are saved too. From Keras 3: any file name; no ``max_shard_size``.

    Example:
        >>> save_weights(model, "saved_model/generator_weights.hdf5")  # doctest: +SKIP
        >>> load_weights(model, "saved_model/generator_weights.hdf5")  # doctest: +SKIP
    """
    if not isinstance(filepath, (str, os.PathLike)):
        msg = (
            "save_weights writes to a file path. "
            f"Received: filepath of type {type(filepath).__name__}"
        )
        raise TypeError(msg)
    path = os.fspath(filepath)
    if os.path.isdir(path):
        msg = f"{path!r} is a folder: give save_weights a file name. Received: filepath={path!r}"
        raise IsADirectoryError(msg)
    if path.lower().endswith(".weights.h5"):
        model.save_weights(path, overwrite=overwrite)
        return
    if not overwrite and os.path.isfile(path) and not _may_overwrite(path):
        return
    _write_hdf5_atomically(path, model)


def _may_overwrite(path: str) -> bool:
    from kutils._io_functions import ask_to_proceed_with_overwrite

    try:
        return ask_to_proceed_with_overwrite(path)
    except EOFError as error:
        msg = (
            f"{path!r} exists and save_weights was called with overwrite=False, but there "
            "is no terminal input to confirm overwriting it. Pass overwrite=True, or save "
            f"under another name. Received: filepath={path!r}, overwrite=False"
        )
        raise FileExistsError(msg) from error


def _write_hdf5_atomically(path: str, model: Any) -> None:
    import secrets

    import h5py

    from kutils._keras2_weights import save_weights_to_group

    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
    # Created with mode 0o666 for the umask to apply: the mode h5py.File(path, "w") gives.
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        with h5py.File(temporary, "w") as file:
            save_weights_to_group(file, model)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# The errors callers may catch, importable from here.
from kutils._keras2_layers import LambdaNotSupplied, UnsupportedKeras2Layer  # noqa: E402
from kutils._keras2_weights import WeightsMismatch  # noqa: E402

__all__ += ["LambdaNotSupplied", "UnsupportedKeras2Layer", "WeightsMismatch"]
