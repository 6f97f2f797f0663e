"""model_to_dot and plot_model: Keras 2.3.1 graphs, real graphviz renders, fallbacks."""

from __future__ import annotations

import os
import stat
import struct
import sys
import threading
import time

import keras
import pytest
from conftest import nested_model
from keras import Input, layers

from kutils import model_to_dot, plot_model
from kutils.plotting import GraphvizNotFoundError

# ---------------------------------------------------------------------------------------
# Models and helpers
# ---------------------------------------------------------------------------------------


def functional_model():
    a = Input((3,), name="input_a")
    b = Input((3,), name="input_b")
    shared = layers.Dense(3, name="shared")
    merged = layers.Concatenate(name="merge")([shared(a), shared(b)])
    main = layers.Dense(1, name="main_output")(merged)
    aux = layers.Dense(2, name="aux_output")(merged)
    return keras.Model([a, b], [main, aux], name="two_towers")


def wrapper_model():
    steps = Input((4, 5), name="steps")
    x = layers.TimeDistributed(layers.Dense(2, name="td_dense"), name="td")(steps)
    x = layers.Bidirectional(layers.LSTM(3, name="lstm"), name="bi")(x)
    return keras.Model(steps, x, name="wrappers")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="my_subclassed")
        self.dense = layers.Dense(2, name="dense")

    def call(self, x):
        return self.dense(x)


def labels(graph) -> dict[str, str]:
    """Node name -> label, for the graph and its clusters."""
    found = {node.get_name(): node.get("label") for node in graph.get_nodes()}
    for sub in graph.get_subgraphs():
        found.update(labels(sub))
    return {name: label.strip('"') for name, label in found.items() if label is not None}


def edges(graph) -> set[tuple[str, str]]:
    """Edges as (source label, destination label)."""
    names = labels(graph)
    found = set()
    for graph_or_sub in [graph, *graph.get_subgraphs()]:
        for edge in graph_or_sub.get_edges():
            found.add((names[edge.get_source()], names[edge.get_destination()]))
    return found


@pytest.fixture
def no_graphviz(tmp_path, monkeypatch):
    """Hide the graphviz programs: PATH holds only an empty folder."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


# ---------------------------------------------------------------------------------------
# model_to_dot: labels, shapes, edges, attributes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("show_layer_names", "expected"),
    [
        (True, {"input_a: InputLayer", "shared: Dense", "merge: Concatenate"}),
        (False, {"InputLayer", "Dense", "Concatenate"}),
    ],
)
def test_labels_are_name_and_class(show_layer_names, expected):
    dot = model_to_dot(functional_model(), show_layer_names=show_layer_names)
    assert expected <= set(labels(dot).values())


def test_wrappers_are_labelled_with_the_inner_layer():
    found = set(labels(model_to_dot(wrapper_model())).values())
    assert "td(td_dense): TimeDistributed(Dense)" in found
    assert "bi(lstm): Bidirectional(LSTM)" in found


@pytest.mark.parametrize(
    "expected",
    [
        "input_a: InputLayer\n|{input:|output:}|{{(None, 3)}|{(None, 3)}}",
        "merge: Concatenate\n|{input:|output:}|{{[(None, 3), (None, 3)]}|{(None, 6)}}",
        "aux_output: Dense\n|{input:|output:}|{{(None, 6)}|{(None, 2)}}",
    ],
)
def test_show_shapes_makes_records_of_input_and_output_shapes(expected):
    found = set(labels(model_to_dot(functional_model(), show_shapes=True)).values())
    assert expected in found


def test_layer_with_calls_of_different_shapes_shows_multiple():
    shared = layers.Dense(2, name="shared")
    flat, steps = Input((3,), name="flat"), Input((4, 3), name="steps")
    model = keras.Model([flat, steps], [shared(flat), shared(steps)])
    found = set(labels(model_to_dot(model, show_shapes=True)).values())
    assert "shared: Dense\n|{input:|output:}|{{multiple}|{multiple}}" in found


def test_graph_attributes_default_to_keras_2():
    dot = model_to_dot(functional_model())
    assert dot.get("rankdir") == "TB"
    assert dot.get("dpi") == 96
    assert dot.get("concentrate") is True
    assert "node [shape=record];" in dot.to_string()


@pytest.mark.parametrize(("rankdir", "dpi"), [("LR", 200), ("BT", 72), ("RL", 96)])
def test_rankdir_and_dpi_are_set_on_the_graph(rankdir, dpi):
    dot = model_to_dot(functional_model(), rankdir=rankdir, dpi=dpi)
    assert (dot.get("rankdir"), dot.get("dpi")) == (rankdir, dpi)


def test_sequential_graph_shows_its_input_layer():
    model = keras.Sequential([Input((3,), name="x"), layers.Dense(2, name="y")], name="seq")
    dot = model_to_dot(model)
    assert set(labels(dot).values()) == {"x: InputLayer", "y: Dense"}
    assert edges(dot) == {("x: InputLayer", "y: Dense")}


def test_edges_join_each_layer_to_its_inputs():
    found = edges(model_to_dot(functional_model()))
    assert found == {
        ("input_a: InputLayer", "shared: Dense"),
        ("input_b: InputLayer", "shared: Dense"),
        ("shared: Dense", "merge: Concatenate"),
        ("merge: Concatenate", "main_output: Dense"),
        ("merge: Concatenate", "aux_output: Dense"),
    }


def test_subclassed_model_is_one_node_named_after_the_model():
    model = Subclassed()
    model(keras.ops.ones((1, 3)))
    dot = model_to_dot(model)
    assert list(labels(dot).values()) == ["my_subclassed"]


def test_nested_models_are_single_nodes_without_expand_nested():
    dot = model_to_dot(nested_model())
    assert edges(dot) == {
        ("features: InputLayer", "encoder: Sequential"),
        ("encoder: Sequential", "head: Model"),
    }
    assert dot.get_subgraphs() == []


def test_expand_nested_draws_dashed_clusters_wired_to_their_ends():
    dot = model_to_dot(nested_model(), expand_nested=True)
    clusters = {sub.get_name(): sub for sub in dot.get_subgraphs()}
    assert set(clusters) == {"cluster_encoder", "cluster_head"}
    assert clusters["cluster_encoder"].get("style") == "dashed"
    assert clusters["cluster_encoder"].get("label") == "encoder"
    assert edges(dot) == {
        ("features: InputLayer", "enc_input: InputLayer"),
        ("enc_input: InputLayer", "enc_dense: Dense"),
        ("enc_dense: Dense", "head_input: InputLayer"),
        ("head_input: InputLayer", "head_dense: Dense"),
    }


def test_expand_nested_keeps_a_wrapper_node_before_the_wrapped_model():
    step_input = Input((5,), name="step_input")
    step = keras.Model(step_input, layers.Dense(2, name="step_dense")(step_input), name="step")
    steps = Input((4, 5), name="steps")
    model = keras.Model(steps, layers.TimeDistributed(step, name="td")(steps))
    found = edges(model_to_dot(model, expand_nested=True))
    assert ("steps: InputLayer", "td: TimeDistributed") in found
    assert ("td: TimeDistributed", "step_input: InputLayer") in found


def test_model_to_dot_needs_no_graphviz(no_graphviz):
    source = model_to_dot(functional_model()).to_string()
    assert "shared: Dense" in source


def test_model_to_dot_without_pydot_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydot", None)  # import pydot now fails
    with pytest.raises(ImportError, match=r"Failed to import `pydot`.*`pip install pydot`"):
        model_to_dot(functional_model())


@pytest.mark.parametrize(
    ("argument", "match"),
    [
        ({"rankdir": "XY"}, r"Received: rankdir='XY'"),
        ({"dpi": 0}, r"Received: dpi=0"),
        ({"dpi": "96"}, r"Received: dpi='96'"),
    ],
)
def test_bad_arguments_raise_value_error(argument, match):
    with pytest.raises(ValueError, match=match):
        model_to_dot(functional_model(), **argument)


def test_not_a_model_raises_value_error():
    with pytest.raises(ValueError, match="Received: model of type Dense"):
        model_to_dot(layers.Dense(2))


# ---------------------------------------------------------------------------------------
# plot_model: real renders
# ---------------------------------------------------------------------------------------

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-", "svg": b"<?xml"}


@pytest.mark.parametrize("file_format", sorted(MAGIC))
def test_renders_a_valid_file_of_the_extension_type(tmp_path, file_format):
    target = tmp_path / f"model.{file_format}"
    plot_model(functional_model(), to_file=str(target), show_shapes=True)
    data = target.read_bytes()
    assert data.startswith(MAGIC[file_format])
    if file_format == "svg":
        assert b"<svg" in data and data.rstrip().endswith(b"</svg>")
    if file_format == "pdf":
        assert data.rstrip().endswith(b"%%EOF")
    assert os.listdir(tmp_path) == [target.name]  # no temporary file left behind


def test_svg_contains_every_layer_name(tmp_path):
    model = nested_model()
    target = tmp_path / "model.svg"
    plot_model(model, to_file=target, expand_nested=True)
    text = target.read_text()
    names = ["features", "encoder", "enc_input", "enc_dense", "head", "head_input", "head_dense"]
    assert [name for name in names if name not in text] == []


@pytest.mark.parametrize("name", ["model", "model.PNG"])
def test_no_or_uppercase_extension_renders_png(tmp_path, name):
    target = tmp_path / name
    plot_model(functional_model(), to_file=str(target))
    assert target.read_bytes().startswith(MAGIC["png"])


def test_dpi_scales_the_png(tmp_path):
    def width(dpi):
        target = tmp_path / f"model-{dpi}.png"
        plot_model(functional_model(), to_file=str(target), dpi=dpi)
        return struct.unpack(">I", target.read_bytes()[16:20])[0]

    assert width(192) > 1.8 * width(96)


def test_dot_extension_writes_the_source_without_graphviz(tmp_path, no_graphviz):
    target = tmp_path / "model.dot"
    assert plot_model(functional_model(), to_file=str(target)) is None
    source = target.read_text()
    assert source.startswith("digraph G {")
    assert 'label="shared: Dense"' in source


@pytest.mark.parametrize(
    ("extension", "display_class"),
    [("png", "Image"), ("svg", "SVG"), ("pdf", None), ("dot", None)],
)
def test_returns_an_ipython_display_object_where_ipython_can_show_the_format(
    tmp_path, extension, display_class
):
    result = plot_model(functional_model(), to_file=str(tmp_path / f"m.{extension}"))
    if display_class is None:
        assert result is None
    else:
        from IPython import display

        assert isinstance(result, getattr(display, display_class))


def test_returns_none_without_ipython(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)  # import IPython now fails
    assert plot_model(functional_model(), to_file=str(tmp_path / "m.png")) is None
    assert (tmp_path / "m.png").exists()


def test_missing_graphviz_says_what_to_install_and_writes_dot_source(tmp_path, no_graphviz):
    target = tmp_path / "model.png"
    with pytest.raises(ImportError) as caught:
        plot_model(functional_model(), to_file=str(target))
    message = str(caught.value)
    for hint in [
        "apt-get install graphviz",
        "brew install graphviz",
        "conda install -c conda-forge graphviz",
        str(tmp_path / "model.dot"),
    ]:
        assert hint in message
    assert isinstance(caught.value, GraphvizNotFoundError)
    assert caught.value.dot_path == str(tmp_path / "model.dot")
    assert not target.exists()
    source = (tmp_path / "model.dot").read_text()
    assert source.startswith("digraph G {")
    assert 'label="merge: Concatenate"' in source


def test_unknown_format_raises_value_error_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"format 'xyz'.*Received: to_file='.*model\.xyz'"):
        plot_model(functional_model(), to_file=str(tmp_path / "model.xyz"))
    assert os.listdir(tmp_path) == []


def test_missing_folder_raises_file_not_found_naming_it(tmp_path):
    target = tmp_path / "absent" / "model.png"
    with pytest.raises(FileNotFoundError, match=r"folder .*absent' does not exist"):
        plot_model(functional_model(), to_file=str(target))


# ---------------------------------------------------------------------------------------
# The DOT fallback never overwrites; file modes come from the umask, left untouched
# ---------------------------------------------------------------------------------------


def test_dot_fallback_keeps_an_existing_dot_file_byte_for_byte(tmp_path, no_graphviz):
    hand_edited = b'digraph G { a -> b [label="mine"]; }\n\x00\xff'
    (tmp_path / "model.dot").write_bytes(hand_edited)
    with pytest.raises(GraphvizNotFoundError) as first:
        plot_model(functional_model(), to_file=str(tmp_path / "model.png"))
    with pytest.raises(GraphvizNotFoundError) as second:
        plot_model(functional_model(), to_file=str(tmp_path / "model.png"))
    assert (tmp_path / "model.dot").read_bytes() == hand_edited
    assert first.value.dot_path == str(tmp_path / "model-1.dot")
    assert second.value.dot_path == str(tmp_path / "model-2.dot")
    message = str(first.value)
    assert f"{str(tmp_path / 'model.dot')!r} already exists and was left as it is" in message
    assert f"written as DOT source to {str(tmp_path / 'model-1.dot')!r}" in message
    for name in ("model-1.dot", "model-2.dot"):
        assert (tmp_path / name).read_text().startswith("digraph G {")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty-bin",
        "model-1.dot",
        "model-2.dot",
        "model.dot",
    ]


@pytest.mark.parametrize("mask", [0o077, 0o022, 0o002])
def test_output_mode_follows_the_umask_without_changing_it(tmp_path, monkeypatch, mask):
    calls = []
    real_umask = os.umask
    old = real_umask(mask)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: calls.append(a) or real_umask(*a))
        plot_model(functional_model(), to_file=str(tmp_path / "model.dot"))
        plot_model(functional_model(), to_file=str(tmp_path / "model.png"))
    finally:
        real_umask(old)
    assert calls == []
    for name in ("model.dot", "model.png"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~mask


def test_files_created_by_another_thread_keep_the_umask_mode(tmp_path):
    """A thread creating files under umask 077 while plot_model writes, repeatedly."""
    old = os.umask(0o077)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    stop = threading.Event()
    modes = set()
    created = [0]

    def create_files():
        folder = tmp_path / "other"
        folder.mkdir()
        while not stop.is_set():
            path = folder / f"f{created[0] % 50}"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            os.close(descriptor)
            modes.add(stat.S_IMODE(os.stat(path).st_mode))
            os.remove(path)
            created[0] += 1

    thread = threading.Thread(target=create_files)
    model = functional_model()
    try:
        thread.start()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            plot_model(model, to_file=str(tmp_path / "model.dot"))
    finally:
        stop.set()
        thread.join(30)
        sys.setswitchinterval(old_interval)
        os.umask(old)
    assert not thread.is_alive()
    assert created[0] > 100
    assert modes == {0o600}
    assert stat.S_IMODE(os.stat(tmp_path / "model.dot").st_mode) == 0o600
