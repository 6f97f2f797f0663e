"""The loader's wire (kutils/_loader_wire.py) on a real pipe: how results travel."""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
import time

import numpy as np
import pytest

from kutils._loader_wire import FrameWriter, ResultReader, loads, send

BOUND = 20.0  # seconds within which every wait must end


def send_and_read(values, sizes=None):
    """Send ``values`` as results 0, 1, ... through a real pipe; the messages read.

    ``sizes`` (a list) gets the pipe's capacity after each read that returned messages.
    """
    receiver, sender = multiprocessing.Pipe(duplex=False)
    reader = ResultReader(receiver, None)
    writer = FrameWriter(sender.fileno())

    def write():
        for position, value in enumerate(values):
            send(writer, position, True, value)
        writer.flush()
        sender.close()

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    received = []
    deadline = time.monotonic() + BOUND
    while not reader.at_end:
        assert time.monotonic() < deadline, "the reader never saw the end of the pipe"
        messages = reader.read_available()
        if messages and sizes is not None:
            sizes.append(fcntl.fcntl(receiver.fileno(), fcntl.F_GETPIPE_SZ))
        received += messages
        time.sleep(0.001)
    thread.join(BOUND)
    reader.close()
    return received


def address(buffer):
    return np.frombuffer(buffer, "uint8").ctypes.data


def test_a_big_array_is_unpickled_in_the_memory_it_was_read_into():
    """The parent copies a big batch once (the pipe read): the array uses that buffer."""
    big = np.arange(3 * 2**20, dtype="float64")  # 24 MB: hundreds of pipe reads
    ((position, ok, data, buffers),) = send_and_read([big])
    assert (position, ok) == (0, True)
    assert len(buffers) == 1 and len(buffers[0]) == big.nbytes
    assert len(data) < 1024  # the pickle itself holds no array bytes
    got = loads(data, buffers)
    np.testing.assert_array_equal(got, big)
    assert got.ctypes.data == address(buffers[0])


def test_arrays_keep_their_writability_in_and_out_of_band():
    """As pickle in-band: a writable array arrives writable, a read-only one read-only."""
    small, big = np.ones((4, 4), "float32"), np.ones(2**20, "float32")
    frozen = big.copy()
    frozen.flags.writeable = False
    frozen_small = small.copy()
    frozen_small.flags.writeable = False
    values = [(small, big), (frozen_small, frozen)]
    got = [loads(data, buffers) for _, _, data, buffers in send_and_read(values)]
    assert [array.flags.writeable for pair in got for array in pair] == [
        True,
        True,
        False,
        False,
    ]
    for sent, received in zip(values, got, strict=True):
        for one, other in zip(sent, received, strict=True):
            np.testing.assert_array_equal(one, other)


def test_non_contiguous_and_fortran_arrays_arrive_intact():
    """A strided view goes in-band (it has no single buffer); a Fortran array out of band."""
    base = np.arange(400_000, dtype="int64").reshape(800, 500)
    values = [base[:, ::3], np.asfortranarray(base), base[::2]]
    received = send_and_read(values)
    assert [len(buffers) for _, _, _, buffers in received] == [0, 1, 0]
    got = [loads(data, buffers) for _, _, data, buffers in received]
    for sent, arrived in zip(values, got, strict=True):
        np.testing.assert_array_equal(sent, arrived)
    assert got[1].flags.f_contiguous


@pytest.mark.skipif(not hasattr(fcntl, "F_GETPIPE_SZ"), reason="Linux pipes only")
def test_a_pipe_that_carries_a_big_batch_is_widened_and_one_of_small_ones_is_not():
    """16 times fewer reads and writer wake-ups per big batch; tiny batches take no
    more kernel memory than a default pipe."""
    sizes: list[int] = []
    send_and_read([np.ones((4, 4))] * 3, sizes)
    assert sizes and max(sizes) <= 2**16  # the default (less where pipe memory is short)
    sizes.clear()
    send_and_read([np.ones((4, 4)), np.ones(2**20), np.ones((4, 4))], sizes)
    assert sizes[-1] == 2**20
