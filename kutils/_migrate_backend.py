"""Where ``kutils migrate`` points each ``keras.backend`` function it rewrites.

A ``K.f`` use (called or passed on, as in ``Lambda(K.square)``) is rewritten to the
Keras 3 function named here. A function is in :data:`KERAS_OPS` or :data:`KERAS_RANDOM`
only when its Keras 3 counterpart takes the same arguments under the same names, with
the same defaults, and computes the same values of the same dtype on float input
(tests/test_migrate_backend.py, against Keras 2.3.1's recordings); a function whose
counterpart differs in any of these is rewritten to its ``kutils.backend`` helper, which
keeps the Keras 2 meaning. The differences that remain on non-float input are in
docs/migrate.md.
"""

from __future__ import annotations

from kutils import backend

# Same name, arguments, defaults and float results in keras.ops.
KERAS_OPS = frozenset(
    {
        "abs",
        "all",
        "any",
        "binary_crossentropy",
        "cast",
        "categorical_crossentropy",
        "dot",
        "elu",
        "exp",
        "log",
        "logsumexp",
        "max",
        "mean",
        "min",
        "prod",
        "round",
        "sigmoid",
        "sign",
        "softmax",
        "softplus",
        "softsign",
        "sparse_categorical_crossentropy",
        "square",
        "squeeze",
        "stack",
        "std",
        "sum",
        "tanh",
        "transpose",
        "var",
    }
)

# keras.backend.random_X -> keras.random.X: same arguments, defaults and dtype; the
# generators differ, so equal seeds draw other numbers of the same distribution.
KERAS_RANDOM = {"random_normal": "normal", "random_uniform": "uniform"}

# Keras 2 meaning kept by a kutils.backend function of the same name.
HELPERS = frozenset(backend.__all__)


def target(function: str) -> str | None:
    """The Keras 3 path ``keras.backend.<function>`` is rewritten to, or None."""
    if function in KERAS_OPS:
        return f"keras.ops.{function}"
    if function in KERAS_RANDOM:
        return f"keras.random.{KERAS_RANDOM[function]}"
    if function in HELPERS:
        return f"kutils.backend.{function}"
    return None
