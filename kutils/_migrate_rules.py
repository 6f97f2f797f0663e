"""The rules of ``kutils migrate``: what it looks for in Keras 2 code, one entry per rule.

Each :class:`Rule` names the syntactic position it matches (its ``kind``), the Keras 2
thing it matches there, the fix it reports, and, when the rule rewrites the code, the
Keras 3 form it writes. The engine (``kutils._migrate_engine`` and the modules it calls)
knows how to find and rewrite each kind; adding a rule of a known kind is one entry in
one of the two tables, ``kutils._migrate_rules_names`` (module paths, classes and
functions, ``keras.backend``, aliases) or ``kutils._migrate_rules_calls`` (methods,
keywords, defaults, callbacks, saving, compile), and one test. This module joins them
into :data:`RULES`. Paths are written in their ``keras.`` form; ``tensorflow.keras.`` and
``tensorflow.python.keras.`` are matched too.

The kinds:

- ``module``: a module path Keras 3 no longer has, and everything under it (imports and
  uses). With ``keras3`` set to the module's Keras 3 home, an import of names that home
  offers (``kutils._migrate_tables``) is pointed there (``kutils._migrate_rewrites``).
- ``name``: a class or function, by its full path. With ``keras3`` set, its import and
  uses are renamed: a bare name (``mean_squared_error``) in the same module, a
  ``kutils.`` path to kutils.
- ``numpy``: a numpy alias of a builtin (``numpy.float``), rewritten to ``keras3``.
- ``backend``: a ``keras.backend`` function, by its name. Those of
  ``kutils._migrate_backend`` are rewritten to their ``keras.ops``, ``keras.random`` or
  ``kutils.backend`` form; the others are reported.
- ``method``: a method called on any receiver. With ``keras3`` set to a kutils function,
  ``x.method(args)`` becomes ``function(x, args)``; otherwise it is reported.
- ``method-keyword``: a method called with one of the keyword arguments ``within``
  names (or with as many positional arguments as put the first of them in place): with
  ``keras3`` set to a kutils function, rewritten like a ``method`` rule; calls without
  it are left alone.
- ``keyword``: a keyword argument of the calls ``within`` names: a path prefix ending in
  ``.`` (``keras.optimizers.``: calls resolved to that path) or ``.method`` (calls of that
  method on any receiver). The optimizer rules ``lr`` and ``decay`` are rewritten
  (``kutils._migrate_rewrites.optimizer_keywords``); the others are reported.
- ``callback-mode``: a callback class whose ``mode='auto'`` Keras 2 inferred from the
  monitored name (``max`` when a word of ``within`` is in it): the mode is written out.
- ``outside-method``: a method called on anything but ``self`` (or ``super()``): with
  ``keras3`` set to a kutils function, rewritten like a ``method`` rule; otherwise
  reported. With ``within`` set to the Keras 2 method's parameters, only the calls that
  pass the first and nothing the method did not take (no ``*args``/``**kwargs``).
- ``saving-built``: like ``saving``, for a file name built at run time.
- ``saving``: a file name ending in ``.h5`` or ``.hdf5`` (not ``.weights.h5``) given to
  the functions or methods ``within`` names.
- ``weights-call``: ``x.save_weights(name)`` or ``x.load_weights(name)`` whose name is
  not a literal the weights-name rule renames (built at run time, a variable, or a
  literal without an ``.h5``/``.hdf5``/``.weights.h5`` suffix): rewritten to the kutils
  function ``keras3`` names, ``save_weights(x, name)``, which keeps Keras 2's meaning
  at any name (``kutils._migrate_model_calls``).
- ``compile-metrics``: ``compile(loss=<n losses>, metrics=[...])`` with a flat metrics
  list, which Keras 2 applied to every output: with ``n`` known from the code (a list,
  tuple or dict literal of losses, or a name assigned one once in the same scope), the
  list is given per output; otherwise reported (``kutils._migrate_model_calls``).
- ``trainable-compile``: ``x.compile(...)`` in a file that assigns ``.trainable`` on
  something: rewritten to ``compile(x, ...)`` (``keras3``), which trains the weights
  trainable when it ran, as Keras 2 did; compile calls of other files are left alone.
- ``default``: an argument whose Keras 2.3.1 default Keras 3 changed, of the class
  ``keras2`` names: ``within`` is the keyword, Keras 2's position of the argument (or
  ``""``) and the Keras 2 keywords that give it too (``lr``); ``keras3`` is Keras 2's
  value, written out when the call leaves the argument out
  (``kutils._migrate_defaults``); without ``keras3`` (or ``within``) it is reported.
  Only for standalone ``keras``: ``tf.keras`` 2.x already had Keras 3's defaults.
- ``optimizer-name``: an optimizer named by a string in ``compile`` whose defaults
  changed: rewritten to ``keras3``, the class, with the ``default`` arguments written out.
- ``custom-object``: a subclass of one of :data:`CUSTOM_OBJECT_BASES` whose ``__init__``
  takes arguments but which has no ``get_config``.
- ``ignored-keyword``: an argument that Keras 2.3.1 accepted and ignored under
  TensorFlow 2 in the calls ``within`` names (full paths) and that Keras 3 rejects:
  removed, and the call's other Keras 2 positional arguments written as keywords
  (``kutils._migrate_rewrites.ignored_keywords``); ``keras3`` is ``""``.
- ``iterator-next``: ``x.next()`` where ``x`` holds a flow of one of the classes
  ``within`` names: rewritten to ``next(x)`` (``kutils._migrate_iterators``).
"""

from __future__ import annotations

from collections.abc import Iterable

from kutils import _migrate_backend
from kutils._migrate_rule import Rule
from kutils._migrate_rules_calls import CALL_RULES
from kutils._migrate_rules_names import NAME_RULES

__all__ = ["BACKEND_KEPT", "CUSTOM_OBJECT_BASES", "RULES", "Rule", "by_kind"]


def _backend_rewrite(rule: Rule) -> Rule:
    """A ``backend`` rule with its Keras 3 form (``kutils._migrate_backend``), if any."""
    keras3 = _migrate_backend.target(rule.keras2) if rule.kind == "backend" else None
    if keras3 is None:
        return rule
    return Rule(rule.kind, rule.keras2, f"use {keras3}", keras3=keras3)


RULES: tuple[Rule, ...] = tuple(_backend_rewrite(rule) for rule in NAME_RULES + CALL_RULES)


def by_kind(kind: str, rules: Iterable[Rule] = RULES) -> dict[str, Rule]:
    """The rules of one kind, by what they match."""
    return {rule.keras2: rule for rule in rules if rule.kind == kind}


# Names of Keras 3.15's keras.utils: those kutils does not offer stay in keras.utils
# (``keras.utils.set_random_seed``, ``register_keras_serializable``...) without a report.
KERAS3_UTILS = frozenset(
    [
        "Config",
        "CustomObjectScope",
        "FeatureSpace",
        "Progbar",
        "PyDataset",
        "Sequence",
        "array_to_img",
        "audio_dataset_from_directory",
        "bounding_boxes",
        "clear_session",
        "custom_object_scope",
        "deserialize_keras_object",
        "disable_interactive_logging",
        "enable_interactive_logging",
        "get_custom_objects",
        "get_file",
        "get_registered_name",
        "get_registered_object",
        "get_source_inputs",
        "image_dataset_from_directory",
        "img_to_array",
        "is_interactive_logging_enabled",
        "is_keras_tensor",
        "legacy",
        "load_img",
        "model_to_dot",
        "normalize",
        "pack_x_y_sample_weight",
        "pad_sequences",
        "plot_model",
        "register_keras_serializable",
        "save_img",
        "serialize_keras_object",
        "set_random_seed",
        "split_dataset",
        "standardize_dtype",
        "text_dataset_from_directory",
        "timeseries_dataset_from_array",
        "to_categorical",
        "unpack_x_y_sample_weight",
    ]
)

# keras.backend functions that Keras 3 keeps in keras.backend: not reported.
BACKEND_KEPT = frozenset(
    {
        "backend",
        "clear_session",
        "epsilon",
        "floatx",
        "get_uid",
        "image_data_format",
        "is_float_dtype",
        "is_int_dtype",
        "is_keras_tensor",
        "result_type",
        "set_epsilon",
        "set_floatx",
        "set_image_data_format",
        "standardize_dtype",
    }
)

# Base classes of custom objects that Keras 3 rebuilds from get_config() on loading.
CUSTOM_OBJECT_BASES = frozenset(
    {
        "keras.Layer",
        "keras.Model",
        "keras.engine.Layer",
        "keras.engine.Model",
        "keras.engine.base_layer.Layer",
        "keras.engine.topology.Layer",
        "keras.engine.training.Model",
        "keras.layers.Layer",
        "keras.models.Model",
    }
)
