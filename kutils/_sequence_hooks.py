"""What the Sequence family adds to Keras's fit loop: routes, epoch hooks, call hooks.

Keras 3 gives every fit/evaluate/predict input to one function,
``keras.src.trainers.data_adapters.get_data_adapter``; kutils's router (installed by
``kutils/_keras_patches.py``) asks the routes registered here first. Each family
registers one route for its own input types (``register_data_adapter``): the Sequence
family (``sequence.py``), the HDF5 family (``hdf5_dataset.py``) and sharded input
(``_shards.py``). The types are disjoint, so the order of the routes does not matter.

The hooks below act only on adapters that ask for them, which the Sequence adapter
(``_sequence_adapter.py``) does:

* an adapter with ``_kutils_rereads_length`` has its ``num_batches`` read again each
  epoch (Keras reads it once per fit; Keras 2 read ``len()`` every epoch), and the
  callbacks are given the new ``steps`` when it changed, as Keras 2.3.1's
  ``fit_generator`` did;
* an adapter with ``_kutils_owns_errors`` re-raises its input's own exception
  (``pop_error()``) where TensorFlow shows a generic one, and is closed on the way out;
* an adapter with ``end_call()`` keeps its workers for the whole call: they are stopped
  when the call ends (``on_train_end``, ``on_predict_end``, ``on_test_end`` outside fit)
  or fails.

Nothing here changes Keras: these are the behaviours the wrappers of
``_keras_patches.py`` call. The Keras attributes read here (``data_adapter``,
``steps_per_epoch``, ``params``, ``set_params``) are public ones of the objects Keras
passes; the one private attribute written goes through ``_keras_compat``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from kutils import _keras_compat

# family -> route(x, y=, sample_weight=, batch_size=, steps_per_epoch=, shuffle=,
# class_weight=) returning an adapter, or None to leave the input to the next route.
ROUTES: dict[str, Callable[..., Any]] = {}


def register_data_adapter(family: str, route: Callable[..., Any]) -> None:
    """Register the data-adapter route of ``family`` (at the family's import).

    ``route`` takes ``x`` and the keywords of Keras's ``get_data_adapter`` and returns
    an adapter or None. Registering changes nothing in Keras:
    ``_keras_patches.install_fit_hooks`` does.
    """
    ROUTES[family] = route


def routed_adapter(x: Any, arguments: dict[str, Any]) -> Any:
    """The adapter the first route that claims ``x`` makes, or None (Keras's own then)."""
    for route in list(ROUTES.values()):
        adapter = route(x, **arguments)
        if adapter is not None:
            return adapter
    return None


# -- EpochIterator ------------------------------------------------------------------------


def epoch_starting(iterator: Any) -> None:
    """``EpochIterator.__iter__``, before Keras's own: an epoch of ``iterator`` begins."""
    adapter = iterator.data_adapter
    rereads = getattr(adapter, "_kutils_rereads_length", False)
    if rereads and not iterator.steps_per_epoch:
        _keras_compat.set_epoch_batches(iterator, adapter.num_batches)
    # The first iterator after a fit's on_epoch_begin is that fit's training one.
    callbacks = getattr(_call_state, "epoch_callbacks", None)
    _call_state.epoch_callbacks = None
    if hasattr(adapter, "end_call"):
        _remember_call_adapter(adapter)
        if callbacks is not None:
            callbacks._kutils_train_iterator = weakref.ref(iterator)


@contextlib.contextmanager
def owning_errors(
    iterator: Any, original_catch: Callable[[Any], contextlib.AbstractContextManager[None]]
) -> Iterator[None]:
    """``EpochIterator.catch_stop_iteration``: the input's own error, workers stopped."""
    adapter = iterator.data_adapter
    if not getattr(adapter, "_kutils_owns_errors", False):
        with original_catch(iterator):
            yield
        return
    failed = True
    try:
        with original_catch(iterator):
            yield
        failed = False
    except Exception:
        original = adapter.pop_error()
        if original is None:
            raise
        # The error TensorFlow made of it adds nothing: show the original only.
        original.__suppress_context__ = True
        raise original  # noqa: B904
    finally:
        adapter.close(final=failed)
        if failed:  # the call ends here: stop the workers of its other inputs too
            _end_call_adapters()


# -- CallbackList -------------------------------------------------------------------------


def fit_beginning(callbacks: Any) -> None:
    """``CallbackList.on_train_begin``: the validation inside this fit is not a call's end."""
    callbacks._kutils_in_fit = True


def epoch_beginning(callbacks: Any) -> None:
    """``CallbackList.on_epoch_begin``: give the callbacks the epoch's new ``steps``."""
    reference = getattr(callbacks, "_kutils_train_iterator", None)
    iterator = reference() if reference is not None else None
    if iterator is not None and not iterator.steps_per_epoch:
        steps = iterator.data_adapter.num_batches
        params = dict(getattr(callbacks, "params", None) or {})
        if params and params.get("steps") != steps:
            params["steps"] = steps
            callbacks.set_params(params)
    _call_state.epoch_callbacks = callbacks


def call_ending(callbacks: Any, method: str) -> None:
    """After ``on_train_end``/``on_predict_end``/``on_test_end``: stop the call's workers.

    ``on_test_end`` inside a fit ends its validation only, not the call.
    """
    if method != "on_test_end" or not getattr(callbacks, "_kutils_in_fit", False):
        call_failed(callbacks)


def call_failed(callbacks: Any) -> None:
    """A callback raised outside the epoch's batches: the call ends, so do its workers."""
    callbacks._kutils_in_fit = False
    _end_call_adapters()


# The adapters whose workers live for one fit/evaluate/predict call, per calling thread.
_call_state = threading.local()


def _remember_call_adapter(adapter: Any) -> None:
    adapters = getattr(_call_state, "adapters", None)
    if adapters is None:
        adapters = _call_state.adapters = weakref.WeakSet()
    adapters.add(adapter)


def _end_call_adapters() -> None:
    """Stop the workers of every adapter used by the calls of this thread."""
    adapters = list(getattr(_call_state, "adapters", None) or ())
    _call_state.adapters = None
    for adapter in adapters:
        adapter.end_call()
