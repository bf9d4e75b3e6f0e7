"""Weight initialisation, as torch.nn.init, and the random generator layers draw from.

Every random number in fastconv.nn (initial weights, Dropout masks) comes from a NumPy
Generator: the module's own when it was built with ``rng=`` (an int seed or a Generator), else
this module's global one, which ``manual_seed(s)`` reseeds (unseeded it is seeded from the OS,
NumPy's habit). So::

    fastconv.nn.init.manual_seed(0)
    model = build()          # the same initial weights every run
    ...                      # and the same dropout masks, given the same sequence of calls

The functions below fill an array or a Parameter in place (trailing underscore, PyTorch's
names and formulas) and return it. Values are drawn in float64 and then cast to the array's
dtype, so a float32 and a float64 model built from the same seed hold the same weights up to
rounding.
"""
import math

import numpy as np

__all__ = [
    "manual_seed", "get_rng", "resolve_rng", "calculate_gain", "uniform_", "normal_", "constant_",
    "zeros_", "ones_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
    "trunc_normal_",
]

_global_rng = np.random.default_rng()


def manual_seed(seed):
    """Reseed the global generator (initial weights and Dropout masks of modules built without
    their own ``rng``); returns it."""
    global _global_rng
    _global_rng = np.random.default_rng(seed)
    return _global_rng


def get_rng():
    """The global generator (read at each use, so ``manual_seed`` takes effect immediately)."""
    return _global_rng


def resolve_rng(rng):
    """None -> None (use the global generator at each draw); int or SeedSequence -> a new
    Generator; a Generator -> itself."""
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError("rng must be None, an int seed or a numpy.random.Generator, got a bool")
    if isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def _rng(rng):
    rng = resolve_rng(rng)
    return _global_rng if rng is None else rng


def _array(a):
    """The ndarray behind a Parameter (or the array itself)."""
    data = a if isinstance(a, np.ndarray) else getattr(a, "data", a)
    if not isinstance(data, np.ndarray) or not np.issubdtype(data.dtype, np.floating):
        raise TypeError(f"expected a floating-point numpy array or Parameter, got {type(a).__name__}")
    return data


def _fill(a, values):
    _array(a)[...] = values
    return a


def calculate_gain(nonlinearity, param=None):
    """torch.nn.init.calculate_gain."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fans(a):
    """(fan_in, fan_out) as PyTorch computes them: dim 1 x receptive field, dim 0 x receptive field."""
    shape = _array(a).shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need an array of 2 or more dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def uniform_(a, low=0.0, high=1.0, rng=None):
    return _fill(a, _rng(rng).uniform(low, high, _array(a).shape))


def normal_(a, mean=0.0, std=1.0, rng=None):
    return _fill(a, _rng(rng).normal(mean, std, _array(a).shape))


def trunc_normal_(a, mean=0.0, std=1.0, low=-2.0, high=2.0, rng=None):
    """Normal values redrawn until they fall in [low, high]."""
    g, shape = _rng(rng), _array(a).shape
    values = g.normal(mean, std, shape)
    bad = (values < low) | (values > high)
    while bad.any():
        values[bad] = g.normal(mean, std, int(bad.sum()))
        bad = (values < low) | (values > high)
    return _fill(a, values)


def constant_(a, value):
    return _fill(a, value)


def zeros_(a):
    return _fill(a, 0)


def ones_(a):
    return _fill(a, 1)


def kaiming_uniform_(a, alpha=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """U(-bound, bound), bound = gain * sqrt(3 / fan). (PyTorch calls the slope ``a``; here the
    array is ``a`` and the slope ``alpha``.) The default of Conv2d/Linear is alpha=sqrt(5),
    which gives bound = 1/sqrt(fan_in)."""
    fan = _fans(a)[0 if mode == "fan_in" else 1]
    bound = calculate_gain(nonlinearity, alpha) * math.sqrt(3.0 / fan) if fan else 0.0
    return uniform_(a, -bound, bound, rng)


def kaiming_normal_(a, alpha=0.0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """N(0, std^2), std = gain / sqrt(fan) (torchvision's ResNet: mode="fan_out", nonlinearity="relu")."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = _fans(a)[0 if mode == "fan_in" else 1]
    std = calculate_gain(nonlinearity, alpha) / math.sqrt(fan) if fan else 0.0
    return normal_(a, 0.0, std, rng)


def xavier_uniform_(a, gain=1.0, rng=None):
    fan_in, fan_out = _fans(a)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(a, -bound, bound, rng)


def xavier_normal_(a, gain=1.0, rng=None):
    fan_in, fan_out = _fans(a)
    return normal_(a, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng)


def default_layer_init_(weight, bias, fan_in, rng=None):
    """What PyTorch's Conv2d/ConvTranspose2d/Linear reset_parameters do: weight kaiming_uniform
    with a=sqrt(5) (U(+-1/sqrt(fan_in))), bias U(+-1/sqrt(fan_in)); weight drawn first."""
    kaiming_uniform_(weight, alpha=math.sqrt(5), rng=rng)
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound, rng)
