"""Recording Keras 2 snippets: each runs after a shared set-up and leaves ``result``.

Used by the recording scripts whose cases are source text (``record_add_loss.py``,
``record_class_weight.py``, ``record_trainable.py``): the tests run the same text through
``kutils migrate`` on Keras 3 and compare with what is written here. Runs under Python 3.7.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np


def run(setup, snippet, clear_session=False):
    """Run ``setup + snippet``; its ``result``. ``clear_session``: a graph of its own."""
    if clear_session:
        import keras

        keras.backend.clear_session()
    scope = {}
    exec(compile(setup + snippet, "<snippet>", "exec"), scope)
    return scope["result"]


def describe(value):
    array = np.asarray(value)
    return {"values": array.tolist(), "dtype": str(array.dtype), "shape": list(array.shape)}


def record(area, setup, snippets, clear_session=False):
    """Run every snippet under Keras 2.3.1; write ``tests/goldens/<area>/cases.json``.

    The folder can be given as the first command-line argument instead.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "goldens", area)
    os.makedirs(outdir, exist_ok=True)
    warnings.simplefilter("ignore")
    import keras

    assert keras.__version__ == "2.3.1", keras.__version__
    cases = {}
    for name, snippet in snippets.items():
        result = run(setup, snippet, clear_session)
        cases[name] = {
            "snippet": setup + snippet,
            "result": {key: describe(value) for key, value in sorted(result.items())},
        }
        print(name, "recorded")
    with open(os.path.join(outdir, "cases.json"), "w") as handle:
        json.dump({"keras": keras.__version__, "cases": cases}, handle, indent=1, sort_keys=True)
