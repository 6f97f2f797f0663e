"""Oracle cases for ``print_summary`` (every zoo model, seven layouts) and ``model_to_dot``.

``model_to_dot`` graphs are compared in a normalised form: node ids are ``id(layer)`` and
differ between runs, so nodes are numbered in order of appearance; labels, edges, the
graph's attributes and clusters are kept.
"""

from __future__ import annotations

import _models
import _oracle
import _shim

AREA = "summary"

LAYOUTS = {
    "default": {},
    "line-60": {"line_length": 60},
    "line-120": {"line_length": 120},
    "positions-3": {"positions": [0.5, 0.8, 1.0]},
    "positions-4": {"positions": [0.3, 0.5, 0.7, 1.0]},
    "absolute-4": {"positions": [30, 60, 70, 100]},
    "line-100-quarters": {"line_length": 100, "positions": [0.25, 0.5, 0.75, 1.0]},
}

DOT_OPTIONS = {
    "default": {},
    "shapes": {"show_shapes": True},
    "no-names-LR": {"show_layer_names": False, "rankdir": "LR"},
    "expand-nested": {"expand_nested": True, "show_shapes": True},
}


def _summary(builder, layout):
    lines = []
    print_summary = _shim.legacy("layer_utils").print_summary
    print_summary(_models.get(builder), print_fn=lines.append, **layout)
    return lines


def _dot(builder, options):
    dot = _shim.utils.model_to_dot(_models.get(builder), **options)
    return normalised_dot(dot)


def normalised_dot(graph):
    numbers = {}

    def number(name):
        name = _unquote(name)
        if name not in numbers:
            numbers[name] = f"n{len(numbers)}"
        return numbers[name]

    def walk(g):
        nodes = [
            [number(n.get_name()), _unquote(n.get("label") or "")]
            for n in g.get_nodes()
            if _unquote(n.get_name()) not in ("node", "edge", "graph")
        ]
        edges = [[number(e.get_source()), number(e.get_destination())] for e in g.get_edges()]
        attributes = {k: _unquote(str(v)) for k, v in g.get_attributes().items()}
        clusters = [walk(sub) for sub in g.get_subgraphs()]
        return {"attributes": attributes, "nodes": nodes, "edges": edges, "clusters": clusters}

    return walk(graph)


def _unquote(text):
    text = str(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def _errors():
    layer_utils = _shim.legacy("layer_utils")
    unbuilt = lambda: _shim.keras.Sequential([_shim.layers.Dense(2)], name="unbuilt")  # noqa: E731
    yield "summary/error/unbuilt-sequential", lambda: layer_utils.print_summary(unbuilt())
    yield "summary/error/not-a-model", lambda: layer_utils.print_summary(object())
    yield (
        "summary/error/too-few-positions",
        lambda: _summary(_models.two_towers, {"positions": [0.5]}),
    )
    yield "dot/error/not-a-model", lambda: _shim.utils.model_to_dot(object())
    yield "summary/print-default", lambda: layer_utils.print_summary(_models.get(_models.tiny))
    yield "summary/same-object", lambda: layer_utils.print_summary is _shim.utils.print_summary
    vis_utils = _shim.legacy("vis_utils")
    yield "dot/same-object", lambda: vis_utils.model_to_dot is _shim.utils.model_to_dot
    yield "dot/dpi", lambda: _dot(_models.tiny, {"dpi": 300})


def cases():
    for builder in _models.MODELS:
        for layout_name, layout in LAYOUTS.items():
            yield (
                f"summary/{builder.__name__}/{layout_name}",
                lambda b=builder, la=layout: _summary(b, la),
            )
        for option_name, options in DOT_OPTIONS.items():
            yield (
                f"dot/{builder.__name__}/{option_name}",
                lambda b=builder, o=options: _dot(b, o),
            )
    yield from _errors()


_oracle.main(__name__, AREA, cases)
