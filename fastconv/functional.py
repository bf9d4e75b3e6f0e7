"""NumPy arrays in, NumPy arrays out: argument normalisation and validation, then _core."""
import numpy as np

from . import _core
from ._threads import get_num_threads
from ._validate import check_float_array, check_out, check_same_dtype


def matmul(a, b, out=None):
    """Matrix product of two 2-D float32 or float64 arrays, on the engine's GEMM core.

    Any strides are read in place (transposed, sliced, negative-stride or Fortran-order views
    are not copied). The result is a new C-contiguous array, or `out` if given (which must be
    C-contiguous, of shape (a.shape[0], b.shape[1]), of the inputs' dtype, and must not overlap
    them)."""
    a = check_float_array(a, "a", ndim=2)
    b = check_float_array(b, "b", ndim=2)
    check_same_dtype(a=a, b=b)
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ValueError(
            f"matmul: inner dimensions differ: a has shape {a.shape}, b has shape {b.shape} ({k} != {k2})"
        )
    if out is None:
        out = np.empty((m, n), dtype=a.dtype)
    else:
        check_out(out, (m, n), a.dtype, {"a": a, "b": b})
    if m == 0 or n == 0:
        return out
    if k == 0:
        out[...] = 0
        return out
    # NumPy allows an out whose data is not element-aligned; the kernels write typed pointers.
    target = out if out.flags.aligned else np.empty((m, n), dtype=a.dtype)
    _core.gemm(a, b, target, get_num_threads())
    if target is not out:
        out[...] = target
    return out
