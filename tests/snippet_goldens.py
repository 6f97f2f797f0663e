"""Comparing what a migrated snippet computed on Keras 3 with its Keras 2.3.1 golden.

The goldens are written by the recording scripts built on ``tests/oracle/_snippets.py``:
for each name the snippet left in ``result``, its values, dtype and shape.
"""

from __future__ import annotations

import numpy as np


def assert_like_golden(
    result: dict, expected: dict, rtol: float = 1e-5, atol: float = 1e-6
) -> None:
    """Same names, dtypes and shapes as the golden; values equal (text) or close (numbers)."""
    assert sorted(result) == sorted(expected)
    for key, recorded in expected.items():
        value = np.asarray(result[key])
        assert value.dtype == np.dtype(recorded["dtype"]), key
        assert list(value.shape) == recorded["shape"], key
        if value.dtype.kind == "U":
            assert value.tolist() == recorded["values"], key
        else:
            np.testing.assert_allclose(value, recorded["values"], rtol=rtol, atol=atol, err_msg=key)
