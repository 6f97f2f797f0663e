"""Every Keras callable kutils replaces at run time: one table, and the two installs.

kutils changes Keras in exactly the places listed in ``REPLACEMENTS``, and only from
here. Each row names the callable replaced, the accessor of ``kutils/_keras_compat.py``
that finds the object holding it, the function below that writes its wrapper (from
Keras's own callable), the family behaviour the wrapper calls, the Keras releases the
replacement was tested on, and its canary test in ``tests/test_keras_internals.py``.
A wrapper only calls Keras's own callable and the family's behaviour: what a Sequence
does in an epoch lives in ``kutils/_sequence_hooks.py``, not here.

Two installs, each once per process and never at import:

* ``install_fit_hooks()`` (11 replacements): the data-adapter router, two
  ``EpochIterator`` hooks and eight ``CallbackList`` hooks. Called when the first kutils
  input that needs them is made (a ``Sequence``, a streamed ``HDF5Matrix``, a sharded
  input).
* ``install_identifier_lookups()`` (14 replacements): each Keras ``get(identifier)``,
  in ``keras.src.<module>`` and in the public ``keras.<module>``, also finds custom
  objects by name. Called by the custom-object functions of ``custom_objects.py``.

Both check every target before they replace any, so a Keras whose internals moved gets
``KerasInternalsChanged`` and an unchanged Keras.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

from kutils import _keras_compat, _sequence_hooks

Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]


def once_per_process(install: Callable[..., None]) -> Callable[..., None]:
    """Make ``install`` run to completion at most once per process, from any thread.

    A call that raises leaves nothing recorded, so a later call tries again. The flag is
    the wrapper's ``installed`` attribute (tests reset it).
    """
    lock = threading.Lock()

    @functools.wraps(install)
    def once(*args: Any, **kwargs: Any) -> None:
        if once.installed:  # type: ignore[attr-defined]
            return
        with lock:
            if not once.installed:  # type: ignore[attr-defined]
                install(*args, **kwargs)
                once.installed = True  # type: ignore[attr-defined]

    once.installed = False  # type: ignore[attr-defined]
    return once


@dataclasses.dataclass(frozen=True)
class Replacement:
    """One Keras callable that kutils replaces.

    Attributes:
        target: the callable, as a reader finds it in Keras's source.
        owner: the ``_keras_compat`` accessor (or a call of one) that returns the object
            holding it; it raises ``KerasInternalsChanged`` when that moved.
        attribute: the name the callable has on ``owner()``.
        wrap: writes the replacement from Keras's own callable (defined in this module).
        behaviour: what the replacement adds, and where that lives.
        tested: the oldest and newest Keras (major, minor) it was tested on.
        canary: its canary test in tests/test_keras_internals.py.
    """

    target: str
    owner: Callable[[], Any]
    attribute: str
    wrap: Wrapper
    behaviour: str
    tested: tuple[tuple[int, int], tuple[int, int]]
    canary: str


# -- the wrappers ---------------------------------------------------------------------------


def _marked(replacement: Callable[..., Any]) -> Callable[..., Any]:
    replacement._kutils_wraps = True  # type: ignore[attr-defined]
    return replacement


def _router(original: Callable[..., Any]) -> Callable[..., Any]:
    """``get_data_adapter``: the first family route that claims ``x``, else Keras's own."""

    @functools.wraps(original)
    def get_data_adapter(
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: Any = None,
        steps_per_epoch: Any = None,
        shuffle: Any = False,
        class_weight: Any = None,
    ) -> Any:
        arguments = {
            "y": y,
            "sample_weight": sample_weight,
            "batch_size": batch_size,
            "steps_per_epoch": steps_per_epoch,
            "shuffle": shuffle,
            "class_weight": class_weight,
        }
        adapter = _sequence_hooks.routed_adapter(x, arguments)
        return adapter if adapter is not None else original(x, **arguments)

    return _marked(get_data_adapter)


def _before(hook: Callable[[Any], None]) -> Wrapper:
    """A method that runs ``hook(self)`` and then Keras's own."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            hook(self)
            return original(self, *args, **kwargs)

        return _marked(method)

    return wrap


def _around(hook: Callable[[Any, Callable[..., Any]], Any]) -> Wrapper:
    """A method that hands ``self`` and Keras's own method to ``hook``."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def method(self: Any) -> Any:
            return hook(self, original)

        return _marked(method)

    return wrap


def _after(hook: Callable[[Any, str], None], name: str) -> Wrapper:
    """A method that runs Keras's own and then, also when it raised, ``hook(self, name)``."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                hook(self, name)

        return _marked(method)

    return wrap


def _on_error(hook: Callable[[Any], None], then: Wrapper | None = None) -> Wrapper:
    """A method that runs ``hook(self)`` when it raises (over ``then``'s wrapper, if any)."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        inner = then(original) if then is not None else original

        @functools.wraps(inner)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return inner(self, *args, **kwargs)
            except BaseException:
                hook(self)
                raise

        return _marked(method)

    return wrap


def _registered_first(module: str) -> Wrapper:
    """``get(identifier)``: a string naming a registered custom object finds that object.

    The object then goes through Keras's own ``get`` as if passed directly; every other
    identifier goes to Keras unchanged. Classes are instantiated with no arguments first,
    as Keras 2 did for every module but ``activations``.
    """
    instantiate_classes = module != "activations"

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        import keras

        find = keras.saving.get_registered_object

        @functools.wraps(original)
        def get(identifier: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(identifier, str):
                found = find(identifier)
                if found is not None:
                    if instantiate_classes and inspect.isclass(found):
                        found = found()
                    return original(found, *args, **kwargs)
            return original(identifier, *args, **kwargs)

        return _marked(get)

    return wrap


def _same_as_internal(module: str) -> Wrapper:
    """The public ``keras.<module>.get``: the replaced internal one when it is Keras's own.

    The public namespace binds Keras's function by name, a second reference to it; any
    other function found there is wrapped on its own.
    """

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        internal = _keras_compat.identifier_getter(module)
        if inspect.unwrap(original) is inspect.unwrap(internal):
            return internal
        return _registered_first(module)(original)

    return wrap


# -- the table --------------------------------------------------------------------------------

_TESTED = ((3, 8), (3, 15))
_CANARY = "test_canary_"
_SEQUENCE = "kutils/_sequence_hooks.py"
_CALLBACKS = "keras.callbacks.CallbackList"
_IDENTIFIERS = "keras_src_module_get", "keras_module_get"


def _callback_hook(method: str, wrap: Wrapper, behaviour: str) -> Replacement:
    return Replacement(
        f"{_CALLBACKS}.{method}",
        _keras_compat.callback_list_class,
        method,
        wrap,
        behaviour,
        _TESTED,
        f"{_CANARY}keras_callbacks_CallbackList_call_order_and_set_params",
    )


_CALL_FAILED = "a raising callback ends the call's workers (call_failed)"

FIT_HOOKS: tuple[Replacement, ...] = (
    Replacement(
        "keras.src.trainers.data_adapters.get_data_adapter",
        _keras_compat.routed_data_adapters_module,
        "get_data_adapter",
        _router,
        f"each family's route first ({_SEQUENCE}: routed_adapter)",
        _TESTED,
        f"{_CANARY}keras_src_trainers_data_adapters_get_data_adapter",
    ),
    Replacement(
        "keras.src.trainers.epoch_iterator.EpochIterator.__iter__",
        _keras_compat.hooked_epoch_iterator_class,
        "__iter__",
        _before(_sequence_hooks.epoch_starting),
        f"len() read every epoch, the call's adapters kept ({_SEQUENCE}: epoch_starting)",
        _TESTED,
        f"{_CANARY}keras_src_trainers_epoch_iterator_EpochIterator___iter__",
    ),
    Replacement(
        "keras.src.trainers.epoch_iterator.EpochIterator.catch_stop_iteration",
        _keras_compat.hooked_epoch_iterator_class,
        "catch_stop_iteration",
        _around(_sequence_hooks.owning_errors),
        f"the input's own error, the adapter closed ({_SEQUENCE}: owning_errors)",
        _TESTED,
        f"{_CANARY}keras_src_trainers_epoch_iterator_EpochIterator_catch_stop_iteration",
    ),
    _callback_hook(
        "on_train_begin",
        _on_error(_sequence_hooks.call_failed, _before(_sequence_hooks.fit_beginning)),
        f"marks a fit ({_SEQUENCE}: fit_beginning); {_CALL_FAILED}",
    ),
    _callback_hook(
        "on_epoch_begin",
        _on_error(_sequence_hooks.call_failed, _before(_sequence_hooks.epoch_beginning)),
        f"callbacks get a changed len() as steps ({_SEQUENCE}: epoch_beginning); {_CALL_FAILED}",
    ),
    *(
        _callback_hook(method, _on_error(_sequence_hooks.call_failed), _CALL_FAILED)
        for method in ("on_epoch_end", "on_test_begin", "on_predict_begin")
    ),
    *(
        _callback_hook(
            method,
            _after(_sequence_hooks.call_ending, method),
            f"the call is over: its workers stop ({_SEQUENCE}: call_ending)",
        )
        for method in ("on_train_end", "on_test_end", "on_predict_end")
    ),
)

IDENTIFIER_LOOKUPS: tuple[Replacement, ...] = tuple(
    row
    for module in _keras_compat.IDENTIFIER_MODULES
    for row in (
        Replacement(
            f"keras.src.{module}.get",
            functools.partial(_keras_compat.identifier_module, module),
            "get",
            _registered_first(module),
            "string identifiers find custom objects, as in Keras 2 (custom_objects.py)",
            _TESTED,
            f"{_CANARY}{_IDENTIFIERS[0]}[{module}]",
        ),
        Replacement(
            f"keras.{module}.get",
            functools.partial(_keras_compat.public_identifier_namespace, module),
            "get",
            _same_as_internal(module),
            "the same, for user code calling the public name",
            _TESTED,
            f"{_CANARY}{_IDENTIFIERS[1]}[{module}]",
        ),
    )
)

REPLACEMENTS: tuple[Replacement, ...] = FIT_HOOKS + IDENTIFIER_LOOKUPS


# -- the installs -----------------------------------------------------------------------------


@once_per_process
def install_fit_hooks() -> None:
    """Replace the 11 callables of ``FIT_HOOKS`` (once per process, never at import).

    Raises KerasInternalsChanged, touching nothing, when one of them, its parameters or
    the ``EpochIterator`` look-up of ``get_data_adapter`` is not what kutils was written
    for; on a Keras older than the floor, the error says that and how to upgrade.
    """
    try:
        _replace(FIT_HOOKS)
    except _keras_compat.KerasInternalsChanged:
        _keras_compat.check_keras_version("data-adapter routing")
        raise


@once_per_process
def install_identifier_lookups() -> None:
    """Replace the 14 callables of ``IDENTIFIER_LOOKUPS`` (once per process)."""
    _keras_compat.check_keras_version("custom-object string look-ups")
    _replace(IDENTIFIER_LOOKUPS)


def _replace(rows: tuple[Replacement, ...]) -> None:
    """Find every row's owner first (each accessor checks it), then replace in order."""
    owners = [row.owner() for row in rows]
    for row, owner in zip(rows, owners, strict=True):
        original = getattr(owner, row.attribute)
        if not getattr(original, "_kutils_wraps", False):
            setattr(owner, row.attribute, row.wrap(original))
