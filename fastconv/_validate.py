"""Argument checks shared by the public functions: they raise before any C code runs, with a
message naming the argument, the value and what was expected."""
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INT32_MAX = 2**31 - 1


def check_positive_int(value, name, maximum=INT32_MAX):
    """value must be an int in [1, maximum] (bool and float rejected); returns it as int."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    if not 1 <= value <= maximum:
        raise ValueError(f"{name} must be an int in [1, {maximum}], got {value}")
    return value


def check_float_array(x, name, ndim=None):
    """x must be a float32/float64 ndarray (of `ndim` dimensions); returns it unchanged, or an
    aligned copy when its data is not element-aligned or its strides are not whole elements
    (the kernels read typed pointers and index in elements)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64 (native byte order), got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got a {x.ndim}-D array of shape {x.shape}")
    if not x.flags.aligned or any(s % x.itemsize for s in x.strides):
        x = x.copy(order="C")  # fresh allocation: aligned, whole-element strides
    return x


def check_same_dtype(**arrays):
    dtypes = {name: a.dtype for name, a in arrays.items()}
    if len(set(dtypes.values())) > 1:
        described = ", ".join(f"{name} is {dt}" for name, dt in dtypes.items())
        raise TypeError(f"mixed dtypes are not allowed: {described}; convert explicitly")


def check_out(out, shape, dtype, inputs):
    """`out` must be a writeable C-contiguous array of the result's shape and dtype that
    shares no memory with the inputs."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    for name, x in inputs.items():
        if np.shares_memory(out, x):
            raise ValueError(f"out shares memory with {name}; pass a separate array")
    return out


def check_result_size(shape, dtype, what):
    """A result of `shape` must be addressable: its element count and byte size must fit a signed
    64-bit integer (NumPy's limit, and the kernels' index type). Returns shape as a tuple."""
    shape = tuple(int(d) for d in shape)
    count = 1
    for d in shape:
        count *= d
    if count * np.dtype(dtype).itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"{what} would have shape {shape}: {count} elements of {np.dtype(dtype).itemsize} bytes, "
                         "too large to allocate or index")
    return shape
