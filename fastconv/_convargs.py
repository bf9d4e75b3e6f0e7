"""Normalisation of the convolution arguments PyTorch accepts (ints or pairs, padding forms) into
plain tuples, with errors that name the argument, the value and what was expected."""
import math

import numpy as np

from ._validate import INT32_MAX, check_positive_int


def _check_int(value, name, minimum):
    """An int (not a bool) in [minimum, 2**31 - 1]: window geometry beyond int32 is refused here,
    so that no size or offset the kernels derive from it can overflow their 64-bit arithmetic."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if value > INT32_MAX:
        raise ValueError(f"{name} must be at most {INT32_MAX}, got {value}")
    return int(value)


def pair(value, name, minimum=1):
    """An int or a (h, w) pair of ints, each >= minimum -> (h, w)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return (_check_int(value[0], f"{name}[0]", minimum), _check_int(value[1], f"{name}[1]", minimum))
    v = _check_int(value, name, minimum)
    return (v, v)


def conv_padding(padding, in_hw, kernel_hw, stride, dilation):
    """-> ((top, bottom), (left, right)) for every padding form: int, (h, w),
    ((top, bottom), (left, right)), "valid", "same" (output ceil(in/stride), extra on the
    bottom/right as Keras/TF do)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            out = []
            for n, k, s, d in zip(in_hw, kernel_hw, stride, dilation):
                total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ValueError(f"padding must be 'valid', 'same', an int or pairs, got {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(
                f"padding must be an int, (h, w) or ((top, bottom), (left, right)), got {padding!r}")
        axes = []
        for axis, p in zip("hw", padding):
            if isinstance(p, (tuple, list)):
                if len(p) != 2:
                    raise ValueError(f"padding[{axis}] must be an int or a (before, after) pair, got {p!r}")
                axes.append((_check_int(p[0], "padding", 0), _check_int(p[1], "padding", 0)))
            else:
                v = _check_int(p, "padding", 0)
                axes.append((v, v))
        return tuple(axes)
    v = _check_int(padding, "padding", 0)
    return ((v, v), (v, v))


def conv_output_hw(in_hw, kernel_hw, stride, padding, dilation):
    """PyTorch's output size; a ValueError if the (dilated) kernel does not fit the padded input."""
    out = []
    for n, k, s, (p0, p1), d in zip(in_hw, kernel_hw, stride, padding, dilation):
        span = (k - 1) * d + 1
        if n + p0 + p1 < span:
            raise ValueError(
                f"kernel size {tuple(kernel_hw)} (dilation {tuple(dilation)}) is larger than the padded "
                f"input {tuple(in_hw)} with padding {tuple(padding)}: the output would be empty")
        out.append((n + p0 + p1 - span) // s + 1)
    return tuple(out)


ALGORITHMS = {"im2col": 0, "direct": 1, "winograd": 2}


def check_algorithm(algorithm):
    if algorithm not in ("auto", "im2col", "direct", "winograd"):
        raise ValueError(f"algorithm must be 'auto', 'im2col', 'direct' or 'winograd', got {algorithm!r}")
    return algorithm


def check_groups(groups, c_in, c_out, what_in="x", what_out="weight"):
    groups = check_positive_int(groups, "groups")
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the {c_in} input channels of {what_in}")
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide the {c_out} output channels of {what_out}")
    return groups
