"""Ending a tf.distribute input pipeline: reading its iterator to the end.

tf.distribute reads a per-worker dataset through an ``OwnedMultiDeviceIterator``, whose
background thread fills one buffer per device; its destructor waits for that thread.
With a ``Dataset.from_generator`` inside, the thread runs Python and needs the GIL, which
the destructor holds (it runs from the garbage collector): reading the iterator to its
end first leaves the thread finished. ``ShardedInput.running``
(``kutils/_per_worker_input.py``) ends every multi-worker call this way. The iterator's
parts are TensorFlow internals, read by
``_keras_compat_training.distributed_iterator_device_parts``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import tensorflow as tf

from kutils import _keras_compat_training

_DRAIN_ERRORS_IN_A_ROW = 10


def drain_distributed_iterator(iterator: Any, timeout: float = 60.0) -> bool:
    """Read the local part of a tf.distribute iterator until its end.

    Call it only once the dataset is known to end (its generator has returned or
    will). Elements that fail (the input's own error, already raised) are skipped.
    Each device's buffer is read in its own thread: the background thread fills the
    devices' buffers in turn, so reading one device to its end while another's buffer is
    full would wait for ever.

    Returns:
        False when the iterator does not have the expected structure (nothing read) or
        was not read to its end within ``timeout`` seconds.
    """
    parts = _keras_compat_training.distributed_iterator_device_parts(iterator)
    if parts is None:
        return False
    readers = [
        threading.Thread(target=_read_to_end, args=part, name="kutils-drain", daemon=True)
        for part in parts
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    for reader in readers:
        reader.join(max(deadline - time.monotonic(), 0.0))
    return not any(reader.is_alive() for reader in readers)


def _read_to_end(iterator: Any, device: str | None) -> None:
    errors = 0
    with tf.device(device) if device else contextlib.nullcontext():
        while errors < _DRAIN_ERRORS_IN_A_ROW:
            try:
                iterator.get_next()
                errors = 0
            except tf.errors.OutOfRangeError:
                return
            except tf.errors.OpError:
                errors += 1
