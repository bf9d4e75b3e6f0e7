"""Eval-mode fusion: Conv2d (-> BatchNorm2d) (-> ReLU / ReLU6 / SiLU) as one convolution.

In eval mode a BatchNorm2d with running statistics is a per-channel scale and shift, so the
three layers are ``act(conv(x) * s + b)`` with ``s = gamma / sqrt(running_var + eps)`` and
``b = beta + (conv_bias - running_mean) * s``: the convolution's GEMM applies it while it writes
its output (fastconv.functional.conv2d's ``scale``/``activation``), instead of two more passes
over the activations. Sequential and the classic networks' blocks call ``conv_bn_act``; the
result equals the layer-by-layer one up to float rounding. Conv2d -> activation with no
BatchNorm2d between (VGG, AlexNet) fuses the same way, with the convolution's own bias. Train
mode never fuses (BatchNorm then needs the batch's statistics and backward needs each layer's
input).

``with fastconv.nn.fusion(False): ...`` turns it off (summary and the per-layer profiler do,
so that every layer shows up in their tables)."""
from contextlib import contextmanager

import numpy as np

from .. import functional as F
from .layers import BatchNorm2d, Conv2d, ReLU, ReLU6, SiLU

__all__ = ["fusion", "fusion_enabled", "conv_bn_act", "conv_act", "forward_sequence"]

_enabled = True
_ACTS = {ReLU: "relu", ReLU6: "relu6", SiLU: "silu"}


@contextmanager
def fusion(enabled=True):
    """Within the block, eval-mode Conv2d -> BatchNorm2d (-> ReLU/ReLU6/SiLU) fuse (True) or not."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def fusion_enabled():
    return _enabled


def _plain(m, cls):
    """m is exactly a cls, in eval mode, with its class's forward (not a wrapped one)."""
    return type(m) is cls and not m.training and "forward" not in m.__dict__


def _fusable(conv, act, x):
    return (_enabled and _plain(conv, Conv2d) and (act is None or _plain(act, type(act)) and type(act) in _ACTS)
            and isinstance(x, np.ndarray) and x.ndim == 4 and x.dtype == conv.dtype)


def conv_bn_act(conv, bn, act, x):
    """act(bn(conv(x))) in one convolution when the three can fuse (see the module docstring),
    else None (the caller runs them one by one). act may be None."""
    if not (_fusable(conv, act, x) and _plain(bn, BatchNorm2d) and bn.track_running_stats
            and bn.num_features == conv.out_channels and bn.dtype == conv.dtype):
        return None
    s = 1.0 / np.sqrt(bn.running_var + bn.eps)
    if bn.affine:
        s = s * bn.weight.data
    b = -bn.running_mean if conv.bias is None else conv.bias.data - bn.running_mean
    b = b * s
    if bn.bias is not None:
        b = b + bn.bias.data
    return F.conv2d(x, conv.weight.data, b.astype(conv.dtype), **conv._args(), scale=s.astype(conv.dtype),
                    activation=None if act is None else _ACTS[type(act)])


def conv_act(conv, act, x):
    """act(conv(x)) in one convolution (its bias and the activation in the GEMM's epilogue) when
    the two can fuse, else None."""
    if not _fusable(conv, act, x) or act is None:
        return None
    bias = None if conv.bias is None else conv.bias.data
    return F.conv2d(x, conv.weight.data, bias, **conv._args(), activation=_ACTS[type(act)])


def forward_sequence(modules, x):
    """x through the modules in order, fusing each Conv2d (-> BatchNorm2d) (-> ReLU/ReLU6/SiLU) run."""
    i, n = 0, len(modules)
    while i < n:
        m = modules[i]
        if _enabled and type(m) is Conv2d and i + 1 < n:
            bn = modules[i + 1] if type(modules[i + 1]) is BatchNorm2d else None
            j = i + 1 + (bn is not None)  # where an activation would be
            act = modules[j] if j < n and type(modules[j]) in _ACTS else None
            y = conv_bn_act(m, bn, act, x) if bn is not None else conv_act(m, act, x)
            if y is not None:
                x, i = y, j + (act is not None)
                continue
        x = m(x)
        i += 1
    return x
