"""Plain NumPy float64 reference implementations of fastconv's operations.

Every function here is deliberately simple (no tiling, no threading, no cleverness): it
converts its inputs to float64 and computes the textbook formula with NumPy, so that a test
can compare a fastconv result against it with an error bound (see conftest.py). Keep it a
plain module of functions: later op families add their references here.
"""
import numpy as np


def _as_float64(x):
    """x as a float64 ndarray (values taken as given, whatever the layout or dtype)."""
    return np.asarray(x).astype(np.float64, copy=True)


def matmul_ref(a, b):
    """a @ b for 2-D a (m x k) and b (k x n), computed in float64.

    The result has shape (m, n) and dtype float64 whatever the input dtype; an empty inner
    dimension (k == 0) gives zeros, as numpy.matmul does."""
    a = _as_float64(a)
    b = _as_float64(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul_ref takes 2-D arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_ref: inner dimensions differ: {a.shape} @ {b.shape}")
    return np.matmul(a, b)


def matmul_abs_ref(a, b):
    """|a| @ |b| in float64: the sum of absolute products behind each output element, which
    scales the rounding-error bound of a float summation (see conftest.assert_close_bound)."""
    return matmul_ref(np.abs(_as_float64(a)), np.abs(_as_float64(b)))
