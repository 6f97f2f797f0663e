"""The enqueuers' hand-off of one batch (kutils/_handoff.py), with real threads."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from kutils._handoff import HandOff


def test_a_second_put_waits_until_the_first_item_is_taken():
    handoff = HandOff()
    assert handoff.put("a", 1.0)
    assert not handoff.put("b", 0.05)  # the slot is full: Keras 2's queue of one
    assert handoff.get(1.0) == "a"
    assert handoff.put("b", 0.05)
    assert handoff.get(1.0) == "b"


def test_get_waits_for_an_item_and_raises_empty_when_none_comes():
    handoff = HandOff()
    with pytest.raises(queue.Empty):
        handoff.get(0.05)
    threading.Timer(0.05, handoff.put, ("late", 1.0)).start()
    assert handoff.get(5.0) == "late"


def test_wait_taken_returns_once_the_consumer_took_the_item():
    handoff = HandOff()
    assert handoff.wait_taken(0.01)  # nothing handed over: nothing to wait for
    handoff.put("batch", 1.0)
    assert not handoff.wait_taken(0.05)
    taken = []
    threading.Timer(0.1, lambda: taken.append(handoff.get(1.0))).start()
    began = time.monotonic()
    assert handoff.wait_taken(5.0)
    assert taken == ["batch"] and time.monotonic() - began < 5.0


def test_drain_drops_the_waiting_item_and_frees_the_slot():
    handoff = HandOff()
    handoff.put("batch", 1.0)
    handoff.drain()
    assert handoff.empty() and handoff.qsize() == 0
    assert handoff.put("next", 0.05)
    handoff.drain()
    handoff.drain()  # nothing left: no error, and the slot is not released twice
    assert handoff.put("again", 0.05) and not handoff.put("more", 0.05)


def test_items_arrive_in_order_between_two_threads():
    handoff = HandOff()
    count = 2000

    def produce():
        for number in range(count):
            assert handoff.put(number, 5.0)

    thread = threading.Thread(target=produce)
    thread.start()
    got = [handoff.get(5.0) for _ in range(count)]
    thread.join(5.0)
    assert got == list(range(count))
