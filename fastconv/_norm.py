"""Per-channel elementwise kernels (csrc/norm/) for the layers: batch normalisation and the
ReLU/ReLU6/SiLU/Sigmoid activations, one threaded pass each with the GIL released.

Internal: callers (fastconv.nn, fastconv.functional) pass C-contiguous float arrays of one
dtype, channels in axis 1 (any number of trailing axes, flattened into one plane); per-channel
vectors are converted here."""
import numpy as np

from . import _core
from ._memory import empty, empty_like
from ._threads import get_num_threads

ACTIVATIONS = _core.ACTIVATIONS   # None / "relu" / "relu6" -> the kernels' codes


def _planes(x):
    """x viewed as (n, c, plane) without a copy."""
    n = x.shape[0] if x.ndim else 1
    c = x.shape[1] if x.ndim > 1 else 1
    return x.reshape(n, c, -1) if x.size else None


def _vec(v, dtype):
    return None if v is None else np.ascontiguousarray(v, dtype=dtype)


def channel_affine(x, mean=None, scale=None, shift=None, act=None, out=None):
    """act((x - mean[c]) * scale[c] + shift[c]) along axis 1 (None: 0 / 1 / 0); out may be x."""
    y = empty_like(x) if out is None else out
    if x.size:
        _core.channel_affine(_planes(x), _planes(y), _vec(mean, x.dtype), _vec(scale, x.dtype),
                             _vec(shift, x.dtype), ACTIVATIONS[act], get_num_threads())
    return y


def plane_scale(x, s):
    """x * s for x (N, C, ...) and a gate s (N, C, 1, ...), as squeeze-excitation multiplies:
    one threaded pass with each (image, channel) plane scaled (numpy's broadcast multiply runs on
    one core); other shapes, dtypes or layouts take numpy's multiply."""
    if (isinstance(x, np.ndarray) and isinstance(s, np.ndarray) and x.ndim >= 2 and s.ndim == x.ndim
            and s.shape[:2] == x.shape[:2] and s.size == x.shape[0] * x.shape[1] and x.dtype == s.dtype
            and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous and x.size):
        return channel_affine(x.reshape(1, x.shape[0] * x.shape[1], -1), scale=s.reshape(-1)).reshape(x.shape)
    return x * s


def activation(x, act):
    """relu / relu6 / silu / sigmoid of x (any shape): a new array."""
    flat = x.reshape(1, 1, -1)
    y = empty_like(x)
    if x.size:
        _core.channel_affine(flat, y.reshape(1, 1, -1), None, None, None, ACTIVATIONS[act], get_num_threads())
    return y


def activation_backward(grad_output, y, act):
    """grad_output * act'(.): y is the output for relu / relu6 (the gradient passes where it has
    slope 1, PyTorch's rule), the input for silu / sigmoid."""
    g = np.ascontiguousarray(grad_output, dtype=y.dtype)
    if g.shape != y.shape:
        raise ValueError(f"grad_output must have the output's shape {y.shape}, got {g.shape}")
    out = empty_like(y)
    if y.size:
        _core.act_backward(g.reshape(-1), y.reshape(-1), out.reshape(-1), ACTIVATIONS[act], get_num_threads())
    return out


def channel_stats(x):
    """Per-channel mean and biased variance of x over every axis but 1, in float64."""
    c = x.shape[1]
    mean, var = np.zeros(c), np.zeros(c)
    if x.size:
        _core.channel_stats(_planes(x), mean, var, get_num_threads())
    return mean, var


def channel_dot(g, x, mean):
    """Per channel, in float64: (sum of g, sum of g * (x - mean))."""
    c = x.shape[1]
    sum_g, sum_gx = np.zeros(c), np.zeros(c)
    if x.size:
        _core.channel_dot(_planes(g), _planes(x), _vec(mean, np.float64), sum_g, sum_gx, get_num_threads())
    return sum_g, sum_gx


def channel_axpby(g, a, x=None, b=None, mean=None, d=None):
    """a[c] * g + b[c] * (x - mean[c]) + d[c] along axis 1 (b None: x is not read)."""
    out = empty_like(g)
    if g.size:
        dt = g.dtype
        _core.channel_axpby(_planes(g), None if b is None else _planes(x), _planes(out), _vec(a, dt),
                            _vec(b, dt), _vec(mean, dt), _vec(d, dt), get_num_threads())
    return out
