"""``model_to_dot`` and ``plot_model``: Keras 2.3.1 model diagrams for Keras 3 models.

The graph is the one Keras 2.3.1 drew: record-shaped nodes labelled ``name: ClassName``
(``wrapper(inner): Wrapper(Inner)`` for wrappers), input and output shapes with
``show_shapes``, nested models as dashed clusters with ``expand_nested``, and the Keras 2
defaults (``show_layer_names=True``, ``dpi=96``) where Keras 3 changed them.
``model_to_dot`` needs only pydot; ``plot_model`` also runs the graphviz program ``dot``
(except for ``.dot`` files). pydot is imported when these functions are first called.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pydot

__all__ = ["GraphvizNotFoundError", "model_to_dot", "plot_model"]

_RANKDIRS = ("TB", "LR", "BT", "RL")
# Formats written as DOT source, without running graphviz.
_SOURCE_FORMATS = ("dot", "gv")
# Formats IPython.display.Image can show.
_IMAGE_FORMATS = ("png", "jpg", "jpeg", "gif", "webp")

_INSTALL_GRAPHVIZ = (
    "Install the graphviz programs (the `graphviz` package on PyPI is only a Python "
    "interface and does not include them): `apt-get install graphviz` on Debian and "
    "Ubuntu, `brew install graphviz` on macOS, `conda install -c conda-forge graphviz` "
    "with conda, or see https://graphviz.org/download/; then make sure `dot` is on PATH."
)


class GraphvizNotFoundError(ImportError):
    """Raised by ``plot_model`` when the graphviz program ``dot`` is not on PATH.

    Attributes:
        dot_path: where the graph's DOT source was written instead, or None when that
            failed too.
    """

    def __init__(self, message: str, dot_path: str | None = None) -> None:
        super().__init__(message)
        self.dot_path = dot_path


def model_to_dot(
    model: Any,
    show_shapes: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: float = 96,
    subgraph: bool = False,
) -> pydot.Dot:
    """Convert a Keras model to a pydot graph, as Keras 2.3.1 drew it.

    Each layer is one node, its id ``str(id(layer))``, labelled ``name: ClassName``
    (only ``ClassName`` without ``show_layer_names``); a ``TimeDistributed`` or
    ``Bidirectional`` layer reads ``wrapper(inner): Wrapper(Inner)``. With
    ``show_shapes`` the label becomes a record with the input and output shapes
    (``multiple`` where a layer has more than one). Edges join each layer to the
    layers whose outputs it takes in this model. A subclassed model (or a
    ``Sequential`` without a known input shape) is one node labelled with its name.

    Args:
        model: a Keras 3 model.
        show_shapes: show input and output shapes in each node.
        show_layer_names: show layer names in the nodes.
        rankdir: graph direction: ``'TB'`` (top to bottom), ``'LR'``, ``'BT'`` or
            ``'RL'``.
        expand_nested: draw nested models (and wrappers around models) as dashed
            clusters of their layers instead of one node.
        dpi: dots per inch, set as the graph's ``dpi`` attribute.
        subgraph: return a dashed ``pydot.Cluster`` named after the model instead of a
            ``pydot.Dot``; used to draw nested models.

    Returns:
        A ``pydot.Dot`` (a ``pydot.Cluster`` with ``subgraph=True``). Only pydot is
        needed: ``.to_string()`` gives the DOT source without graphviz installed.

    Raises:
        ImportError: pydot cannot be imported (the message says how to install it).
        ValueError: ``model`` is not a Keras model, or ``rankdir`` or ``dpi`` is not
            valid.

    Differences:
        Keras 2.3.1 also demanded the graphviz programs here (and raised ``OSError``
        without them); kutils needs them only in ``plot_model``. Keras 3 draws HTML
        tables instead of records, defaults to ``dpi=200`` and refuses unbuilt models.

    Example:
        >>> dot = model_to_dot(model, show_shapes=True)  # doctest: +SKIP
        >>> dot.write("model.dot")  # doctest: +SKIP
    """
    pydot = _import_pydot()
    _check_arguments(model, rankdir, dpi)
    from kutils import _keras2_display as display
    from kutils import _keras_compat as compat

    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name)
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set_node_defaults(shape="record")

    nodes_by_depth = compat.graph_nodes_by_depth(model)
    if nodes_by_depth is None:
        dot.add_node(pydot.Node(str(id(model)), label=model.name))
        return dot

    layers = compat.all_model_layers(model)
    # id(layer) -> (first, last) node names of the cluster drawn for it (a nested
    # model, or the model inside a wrapper).
    clusters: dict[int, tuple[str, str]] = {}
    for layer in layers:
        layer_name, class_name = layer.name, display.legacy_class_name(layer)
        inner = display.wrapped_layer(layer)
        if inner is not None:
            inner_layer, inner_name = inner
            if expand_nested and display.is_model(inner_layer):
                clusters[id(layer)] = _add_cluster(
                    dot, inner_layer, show_shapes, show_layer_names, rankdir, dpi
                )
            else:
                layer_name = f"{layer_name}({inner_name})"
                class_name = f"{class_name}({display.legacy_class_name(inner_layer)})"
        if expand_nested and display.is_model(layer):
            clusters[id(layer)] = _add_cluster(
                dot, layer, show_shapes, show_layer_names, rankdir, dpi
            )
            continue
        label = f"{layer_name}: {class_name}" if show_layer_names else class_name
        if show_shapes:
            inputs = display.legacy_input_shape(layer)
            outputs = display.legacy_output_shape(layer)
            label = f"{label}\n|{{input:|output:}}|{{{{{inputs}}}|{{{outputs}}}}}"
        dot.add_node(pydot.Node(str(id(layer)), label=label))

    in_graph = {id(node) for nodes in nodes_by_depth.values() for node in nodes}
    for layer in layers:
        for call in compat.layer_calls(layer):
            if id(call.node) not in in_graph:
                continue
            for inbound, _, _ in call.inbound:
                _connect(dot, pydot, inbound, layer, clusters, display.is_model)
    return dot


def _add_cluster(
    dot: Any, model: Any, show_shapes: bool, show_layer_names: bool, rankdir: str, dpi: float
) -> tuple[str, str]:
    cluster = model_to_dot(model, show_shapes, show_layer_names, rankdir, True, dpi, subgraph=True)
    dot.add_subgraph(cluster)
    names = _node_names(cluster)
    return names[0], names[-1]


def _node_names(graph: Any) -> list[str]:
    """Names of a graph's nodes, those of nested clusters too, in drawing order."""
    names = [node.get_name() for node in graph.get_nodes()]
    if not names:
        for sub in graph.get_subgraphs():
            names.extend(_node_names(sub))
    return names


def _connect(
    dot: Any,
    pydot: Any,
    inbound: Any,
    layer: Any,
    clusters: dict[int, tuple[str, str]],
    is_model: Any,
) -> None:
    if id(inbound) not in clusters and id(layer) not in clusters:
        # Keras 2 adds one edge per connection; concentrate=True merges repeats.
        dot.add_edge(pydot.Edge(str(id(inbound)), str(id(layer))))
        return
    source = clusters[id(inbound)][1] if id(inbound) in clusters else str(id(inbound))
    if id(layer) in clusters and is_model(layer):
        _add_edge_once(dot, pydot, source, clusters[id(layer)][0])
    elif id(layer) in clusters:  # a wrapper around a model: wrapper node, then cluster
        _add_edge_once(dot, pydot, source, str(id(layer)))
        _add_edge_once(dot, pydot, str(id(layer)), clusters[id(layer)][0])
    else:
        _add_edge_once(dot, pydot, source, str(id(layer)))


def _add_edge_once(dot: Any, pydot: Any, source: str, destination: str) -> None:
    if not dot.get_edge(source, destination):
        dot.add_edge(pydot.Edge(source, destination))


def plot_model(
    model: Any,
    to_file: str | os.PathLike[str] = "model.png",
    show_shapes: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: float = 96,
) -> Any:
    """Draw a Keras model to an image file, as Keras 2.3.1 did.

    The graph is ``model_to_dot``'s; the file's extension picks the format: ``.png``
    (also when there is no extension), ``.svg``, ``.pdf``, ``.jpg`` and any other
    format graphviz knows, rendered by the graphviz program ``dot``; ``.dot`` and
    ``.gv`` write the DOT source and need only pydot. The file is written atomically
    (a temporary file in the same folder, then renamed).

    Args:
        model: a Keras 3 model.
        to_file: where to write the drawing.
        show_shapes: show input and output shapes in each node.
        show_layer_names: show layer names in the nodes.
        rankdir: graph direction: ``'TB'``, ``'LR'``, ``'BT'`` or ``'RL'``.
        expand_nested: draw nested models as dashed clusters of their layers.
        dpi: dots per inch of raster formats.

    Returns:
        An ``IPython.display.Image`` of the file for png, jpg, jpeg, gif and webp, or an
        ``IPython.display.SVG`` for svg, when IPython is installed; otherwise (and for
        pdf, dot and other formats) None.

    Raises:
        ImportError: pydot cannot be imported.
        GraphvizNotFoundError: (an ``ImportError``) the graphviz program ``dot`` is not
            on PATH. The message says what to install; the DOT source is written next
            to ``to_file`` with the extension ``.dot`` and the message says where.
        ValueError: graphviz does not know the format named by the extension, or an
            argument is not valid.
        FileNotFoundError: the folder of ``to_file`` does not exist.
        RuntimeError: graphviz failed for another reason (its message is included).

    Differences:
        Keras 2.3.1 raised ``OSError`` without graphviz and left no file; it passed the
        extension to graphviz as written (``.PNG`` failed) and returned an IPython
        ``Image`` for svg, which IPython cannot build. Keras 3 defaults to
        ``show_layer_names=False`` and ``dpi=200``, and inside IPython prints the
        missing-graphviz message instead of raising.

    Example:
        >>> plot_model(model, to_file="model.svg", show_shapes=True)  # doctest: +SKIP
    """
    path = os.fspath(to_file)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        msg = (
            f"Cannot write the drawing: the folder {folder!r} does not exist; create it "
            f"first. Received: to_file={path!r}"
        )
        raise FileNotFoundError(msg)
    extension = os.path.splitext(path)[1]
    file_format = extension[1:].lower() if extension else "png"
    dot = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
    )
    source = dot.to_string()
    if file_format in _SOURCE_FORMATS:
        _write_atomically(path, source.encode("utf-8"))
    else:
        program = shutil.which("dot")
        if program is None:
            raise _graphviz_missing(path, file_format, source)
        _write_atomically(path, _render(program, source, file_format, path))
    return _ipython_display(path, file_format)


def _import_pydot() -> Any:
    try:
        import pydot
    except ImportError as error:
        msg = (
            "Failed to import `pydot`. Please install `pydot`. For example with "
            "`pip install pydot` (kutils lists it as a dependency, so reinstalling kutils "
            f"also works). plot_model needs the graphviz programs as well. {_INSTALL_GRAPHVIZ}"
        )
        raise ImportError(msg) from error
    return pydot


def _check_arguments(model: Any, rankdir: str, dpi: float) -> None:
    from kutils import _keras2_display

    if not _keras2_display.is_model(model):
        msg = (
            "model_to_dot and plot_model take a Keras model (keras.Model, "
            f"keras.Sequential). Received: model of type {type(model).__name__}"
        )
        raise ValueError(msg)
    if rankdir not in _RANKDIRS:
        msg = f"rankdir must be one of {', '.join(map(repr, _RANKDIRS))}. Received: rankdir={rankdir!r}"
        raise ValueError(msg)
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0:
        msg = f"dpi must be a positive number. Received: dpi={dpi!r}"
        raise ValueError(msg)


def _graphviz_missing(path: str, file_format: str, source: str) -> GraphvizNotFoundError:
    message = (
        f"plot_model needs the graphviz program `dot` to write {path!r} "
        f"(format {file_format!r}), and `dot` is not on PATH. {_INSTALL_GRAPHVIZ}"
    )
    wanted = os.path.splitext(path)[0] + ".dot"
    dot_path: str | None
    try:
        dot_path = _write_new_file(wanted, source.encode("utf-8"))
    except OSError as error:
        message += f" The DOT source could not be written next to it either: {error}"
        dot_path = None
    else:
        if dot_path != wanted:
            message += f" {wanted!r} already exists and was left as it is."
        message += (
            f" The graph was written as DOT source to {dot_path!r}; with graphviz "
            f"installed, `dot -T{file_format} {dot_path} -o {path}` draws it."
        )
    return GraphvizNotFoundError(message, dot_path)


# How many numbered names (model-1.dot, model-2.dot, ...) the DOT fallback tries.
_FRESH_NAMES = 1000


def _write_new_file(path: str, data: bytes) -> str:
    """Write ``data`` to ``path``, or to ``stem-N.ext`` if it exists; never replace a file.

    Returns the path written. The file appears whole: it is written under a temporary
    name and then hard-linked to its name, which fails instead of replacing a file that
    appeared meanwhile.
    """
    stem, extension = os.path.splitext(path)
    temporary = _write_temporary(path, data)
    try:
        for number in range(_FRESH_NAMES):
            candidate = path if number == 0 else f"{stem}-{number}{extension}"
            try:
                os.link(temporary, candidate)
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: exclusive creation
                try:
                    with open(candidate, "xb") as handle:
                        handle.write(data)
                except FileExistsError:
                    continue
            return candidate
    finally:
        os.remove(temporary)
    msg = f"{path!r} and {_FRESH_NAMES - 1} numbered names after it all exist"
    raise FileExistsError(errno.EEXIST, msg, path)


def _render(program: str, source: str, file_format: str, path: str) -> bytes:
    result = subprocess.run(
        [program, f"-T{file_format}"],
        input=source.encode("utf-8"),
        capture_output=True,
        check=False,
    )
    if result.returncode == 0:
        return result.stdout
    stderr = result.stderr.decode("utf-8", "replace").strip()
    if "not recognized" in stderr:
        msg = (
            f"graphviz cannot write the format {file_format!r}, taken from the file "
            f"extension; use .png, .svg, .pdf or .dot. graphviz said: {stderr.splitlines()[0]} "
            f"Received: to_file={path!r}"
        )
        raise ValueError(msg)
    msg = f"graphviz `dot` failed with exit status {result.returncode} drawing {path!r}: {stderr}"
    raise RuntimeError(msg)


def _write_atomically(path: str, data: bytes) -> None:
    temporary = _write_temporary(path, data)
    try:
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _write_temporary(path: str, data: bytes) -> str:
    """A new hidden file beside ``path`` holding ``data``; returns its path.

    It is created with mode 0o666 for the kernel to apply the process umask, so it gets
    the mode ``open(path, 'w')`` would give, without reading the umask (setting it to
    read it would change the mode of files other threads create meanwhile).
    """
    folder = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            descriptor = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
        except BaseException:
            os.remove(temporary)
            raise
        return temporary
    msg = f"Could not create a temporary file in {folder!r}: 100 random names were taken"
    raise FileExistsError(errno.EEXIST, msg, folder)


def _ipython_display(path: str, file_format: str) -> Any:
    try:
        from IPython import display
    except ImportError:
        return None
    if file_format in _IMAGE_FORMATS:
        return display.Image(filename=path, format=file_format)
    if file_format == "svg":
        return display.SVG(filename=path)
    return None
