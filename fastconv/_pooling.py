"""Pooling, forward and backward, as torch.nn.functional: max, average, adaptive and global.

NumPy arrays in (NCHW, or unbatched CHW; float32 or float64), new C-contiguous arrays out.
Arguments are checked here, with errors naming the argument, the value and what was expected;
the kernels (csrc/pool/) run one vectorised pass over the data with the GIL released."""
import operator

import numpy as np

from . import _core
from ._memory import empty
from ._convargs import pair
from ._threads import get_num_threads
from ._validate import check_float_array, check_positive_int, check_result_size

__all__ = [
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward", "global_avg_pool2d", "global_avg_pool2d_backward",
]

_KIND = _core.POOL_KINDS
_MAX_SIZE = 2**31 - 1   # plane sizes whose row/column indices fit the kernels' int32 lanes


# ---- argument checks -------------------------------------------------------------------------

def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_spatial(shape, name):
    """A (N, C, H, W) or (C, H, W) shape with C, H, W >= 1 (N may be 0) -> ((N, C, H, W), unbatched)."""
    if len(shape) not in (3, 4):
        raise ValueError(f"{name} must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {tuple(shape)}")
    unbatched = len(shape) == 3
    shape4 = (1,) + tuple(shape) if unbatched else tuple(shape)
    if min(shape4[1:]) < 1:
        raise ValueError(f"{name} must have at least one channel, row and column, got shape {tuple(shape)}")
    if max(shape4[2:]) > _MAX_SIZE:
        raise ValueError(f"{name} planes must be at most {_MAX_SIZE} along each axis, got shape {tuple(shape)}")
    return shape4, unbatched


def _input(x, name="x"):
    """x validated -> (C-contiguous (planes, H, W) view, (N, C, H, W), unbatched)."""
    x = check_float_array(x, name)
    shape4, unbatched = _check_spatial(x.shape, name)
    n, c, h, w = shape4
    return np.ascontiguousarray(x).reshape(n * c, h, w), shape4, unbatched


def _input_shape(input_shape):
    """The input_shape argument of the backward functions -> ((N, C, H, W), unbatched)."""
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"input_shape must be a tuple of ints (N, C, H, W) or (C, H, W), got "
                        f"{type(input_shape).__name__} {input_shape!r}")
    dims = []
    for i, d in enumerate(input_shape):
        if isinstance(d, (bool, np.bool_)):
            raise TypeError(f"input_shape[{i}] must be an int, got bool {d!r}")
        try:
            dims.append(operator.index(d))
        except TypeError:
            raise TypeError(f"input_shape[{i}] must be an int, got {type(d).__name__} {d!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"input_shape must not be negative, got {tuple(dims)}")
    check_result_size(dims, np.float64, "input_shape")
    return _check_spatial(tuple(dims), "input_shape")


def _grad_output(grad_output, out_shape4, unbatched, dtype=None):
    dy = check_float_array(grad_output, "grad_output")
    expected = out_shape4[1:] if unbatched else out_shape4
    if dy.shape != tuple(expected):
        raise ValueError(f"grad_output must have the output's shape {tuple(expected)}, got {dy.shape}")
    if dtype is not None and dy.dtype != dtype:
        raise TypeError(f"mixed dtypes are not allowed: grad_output is {dy.dtype}, x is {dtype}; convert explicitly")
    n, c, oh, ow = out_shape4
    return np.ascontiguousarray(dy).reshape(n * c, oh, ow)


def _indices(indices, out_shape4, unbatched):
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"indices must be a numpy.ndarray of int64, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must have an integer dtype (int64, as returned with return_indices=True), "
                        f"got {indices.dtype}")
    expected = out_shape4[1:] if unbatched else out_shape4
    if indices.shape != tuple(expected):
        raise ValueError(f"indices must have the output's shape {tuple(expected)}, got {indices.shape}")
    n, c, oh, ow = out_shape4
    return np.ascontiguousarray(indices, dtype=np.int64).reshape(n * c, oh, ow)


def _pool_output_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape along one axis (may be < 1: the caller raises)."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1   # the last window would start in the right/bottom padding
    return out


def _window_geometry(shape4, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad=True,
                     divisor_override=None):
    """Checked max/avg pooling geometry -> (geom tuple for _core, output (N, C, OH, OW))."""
    n, c, h, w = shape4
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else pair(stride, "stride")
    p = pair(padding, "padding", minimum=0)
    d = pair(dilation, "dilation")
    ceil_mode = _check_bool(ceil_mode, "ceil_mode")
    count_include_pad = _check_bool(count_include_pad, "count_include_pad")
    divisor = 0 if divisor_override is None else check_positive_int(divisor_override, "divisor_override")
    for axis, ki, pi in zip("hw", k, p):
        if 2 * pi > ki:
            raise ValueError(f"padding ({pi} along {axis}) must be at most half of kernel_size ({ki}): "
                             f"padding={tuple(p)}, kernel_size={tuple(k)}")
    out = tuple(_pool_output_size(i, ki, si, pi, di, ceil_mode) for i, ki, si, pi, di in zip((h, w), k, s, p, d))
    if min(out) < 1:
        raise ValueError(f"kernel_size {tuple(k)} (dilation {tuple(d)}) is larger than the padded input "
                         f"{(h, w)} with padding {tuple(p)}: the output would be {out}")
    geom = (n * c, h, w, out[0], out[1], k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1],
            int(count_include_pad), divisor)
    return geom, (n, c) + out


def _adaptive_geometry(shape4, output_size):
    n, c, h, w = shape4
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair (h, w) (entries may be None), got {output_size!r}")
        sizes = [size if o is None else pair(o, f"output_size[{i}]")[0]
                 for i, (o, size) in enumerate(zip(output_size, (h, w)))]
    else:
        sizes = list(pair(output_size, "output_size"))
    for v in sizes:
        if v > _MAX_SIZE:
            raise ValueError(f"output_size must be at most {_MAX_SIZE}, got {output_size!r}")
    oh, ow = sizes
    return (n * c, h, w, oh, ow, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0), (n, c, oh, ow)


def _result(a, shape4, unbatched):
    return a.reshape(shape4[1:] if unbatched else shape4)


def _forward(kind, x, geom, out4, unbatched, with_indices):
    check_result_size(out4, np.int64 if with_indices else x.dtype, f"{kind} pooling's output")
    y = empty(out4, dtype=x.dtype)
    idx = empty(out4, dtype=np.int64) if with_indices else None
    if x.shape[0]:
        planes = (x.shape[0],) + out4[2:]
        _core.pool2d_forward(_KIND[kind], x, y.reshape(planes), None if idx is None else idx.reshape(planes),
                             geom, get_num_threads())
    if with_indices:
        return _result(y, out4, unbatched), _result(idx, out4, unbatched)
    return _result(y, out4, unbatched)


def _backward(kind, dy, idx, geom, in4, unbatched, dtype):
    dx = empty(in4, dtype=dtype)
    if dy.shape[0]:
        _core.pool2d_backward(_KIND[kind], dy, idx, dx.reshape((dy.shape[0],) + in4[2:]), geom, get_num_threads())
    return _result(dx, in4, unbatched)


# ---- max pooling -----------------------------------------------------------------------------

def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling, as torch.nn.functional.max_pool2d.

    x: (N, C, H, W) or (C, H, W), float32 or float64. kernel_size, stride (default kernel_size),
    padding (at most half the kernel; padding is never a candidate), dilation: int or (h, w).
    ceil_mode: PyTorch's rounding (a window that would start in the right/bottom padding is
    dropped). NaN propagates; among equal maxima the first in raster order wins.
    return_indices: also return int64 flat indices (ih * W + iw) into each input plane."""
    return_indices = _check_bool(return_indices, "return_indices")
    xp, shape4, unbatched = _input(x)
    geom, out4 = _window_geometry(shape4, kernel_size, stride, padding, dilation, ceil_mode)
    return _forward("max", xp, geom, out4, unbatched, return_indices)


def max_pool2d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                        indices=None):
    """Gradient of max_pool2d with respect to x: grad_output scattered (summed) to each window's
    maximum. `indices` (from return_indices=True) is used when given, else recomputed from x.
    An index outside [0, H*W) contributes nothing (PyTorch reports such an index for a dilated
    window lying wholly in the padding, whose maximum is -inf)."""
    xp, shape4, unbatched = _input(x)
    geom, out4 = _window_geometry(shape4, kernel_size, stride, padding, dilation, ceil_mode)
    dy = _grad_output(grad_output, out4, unbatched, xp.dtype)
    if indices is None:
        _, idx = _forward("max", xp, geom, out4, False, True)
        idx = idx.reshape((xp.shape[0],) + out4[2:])
    else:
        idx = _indices(indices, out4, unbatched)
    return _backward("max", dy, idx, geom, shape4, unbatched, xp.dtype)


# ---- average pooling -------------------------------------------------------------------------

def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling, as torch.nn.functional.avg_pool2d.

    The divisor is divisor_override (a positive int) when given; else the window's size clipped
    to the padded input (count_include_pad=True) or to the input (False)."""
    xp, shape4, unbatched = _input(x)
    geom, out4 = _window_geometry(shape4, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                                  divisor_override)
    return _forward("avg", xp, geom, out4, unbatched, False)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d with respect to its input, of shape input_shape (N, C, H, W) or
    (C, H, W), in grad_output's dtype."""
    shape4, unbatched = _input_shape(input_shape)
    geom, out4 = _window_geometry(shape4, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                                  divisor_override)
    dy = _grad_output(grad_output, out4, unbatched)
    return _backward("avg", dy, None, geom, shape4, unbatched, dy.dtype)


# ---- adaptive and global pooling -------------------------------------------------------------

def adaptive_avg_pool2d(x, output_size):
    """Adaptive average pooling, as torch.nn.functional.adaptive_avg_pool2d: output (OH, OW) from
    output_size (an int, or a pair whose None entries keep the input's size); window i covers
    rows floor(i*H/OH) .. ceil((i+1)*H/OH) (exclusive), columns likewise."""
    xp, shape4, unbatched = _input(x)
    geom, out4 = _adaptive_geometry(shape4, output_size)
    return _forward("adaptive_avg", xp, geom, out4, unbatched, False)


def adaptive_avg_pool2d_backward(grad_output, input_shape):
    """Gradient of adaptive_avg_pool2d with respect to its input of shape input_shape; the output
    size is grad_output's."""
    shape4, unbatched = _input_shape(input_shape)
    dy0 = check_float_array(grad_output, "grad_output")
    if dy0.ndim != (3 if unbatched else 4):
        raise ValueError(f"grad_output must be {'3' if unbatched else '4'}-D like input_shape "
                         f"{tuple(input_shape)}, got shape {dy0.shape}")
    geom, out4 = _adaptive_geometry(shape4, tuple(dy0.shape[-2:]))
    dy = _grad_output(dy0, out4, unbatched)
    return _backward("adaptive_avg", dy, None, geom, shape4, unbatched, dy.dtype)


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Adaptive max pooling, as torch.nn.functional.adaptive_max_pool2d (windows as in
    adaptive_avg_pool2d; NaN, ties and indices as in max_pool2d)."""
    return_indices = _check_bool(return_indices, "return_indices")
    xp, shape4, unbatched = _input(x)
    geom, out4 = _adaptive_geometry(shape4, output_size)
    return _forward("adaptive_max", xp, geom, out4, unbatched, return_indices)


def adaptive_max_pool2d_backward(grad_output, x, output_size, indices=None):
    """Gradient of adaptive_max_pool2d with respect to x (indices recomputed when not given)."""
    xp, shape4, unbatched = _input(x)
    geom, out4 = _adaptive_geometry(shape4, output_size)
    dy = _grad_output(grad_output, out4, unbatched, xp.dtype)
    if indices is None:
        _, idx = _forward("adaptive_max", xp, geom, out4, False, True)
        idx = idx.reshape((xp.shape[0],) + out4[2:])
    else:
        idx = _indices(indices, out4, unbatched)
    return _backward("adaptive_max", dy, idx, geom, shape4, unbatched, xp.dtype)


def global_avg_pool2d(x):
    """Mean over each plane: (N, C, H, W) -> (N, C, 1, 1) (or (C, H, W) -> (C, 1, 1)), the same
    as adaptive_avg_pool2d(x, 1)."""
    xp, shape4, unbatched = _input(x)
    geom, out4 = _adaptive_geometry(shape4, 1)
    return _forward("global_avg", xp, geom, out4, unbatched, False)


def global_avg_pool2d_backward(grad_output, input_shape):
    """Gradient of global_avg_pool2d: grad_output (N, C, 1, 1) spread evenly over input_shape."""
    shape4, unbatched = _input_shape(input_shape)
    geom, out4 = _adaptive_geometry(shape4, 1)
    dy = _grad_output(grad_output, out4, unbatched)
    return _backward("global_avg", dy, None, geom, shape4, unbatched, dy.dtype)
