"""Depthwise convolution forward and backward on the depthwise layers of MobileNetV2 and
EfficientNet-B0 (depthwise_layers.csv) at batch 1 and 8: fastconv vs a NumPy per-tap peer vs
PyTorch NCHW and channels_last (when installed), fp32, 2 threads.

    pytest benchmarks/test_depthwise.py                     # table at the end: GFLOP/s, GB/s, ratios
    pytest benchmarks/test_depthwise.py -k mbv2_dw96        # one layer
    pytest benchmarks/test_depthwise.py -k "fwd and n8"     # forward at batch 8 only
    pytest benchmarks/test_depthwise.py --benchmark-disable # smoke run: batch 1, one call each

Per layer and batch, two groups: "dw-fwd <layer> n<N>" and "dw-bwd <layer> n<N>" (all three
gradients: input, weight, bias), each with fastconv, numpy, torch (NCHW) and torch-cl (x, weight
and grad_output in channels_last memory format). flops = 2*N*C*m*OH*OW*kh*kw for the forward (the
usual 2 * outputs * taps), twice that for the backward (data and weight gradients). Depthwise is
memory-bound, so each benchmark also passes bytes = inputs + outputs + weights of one call to
run_bench, which records GB/s and % of the measured copy bandwidth (benchmark.extra_info "gbps",
"pct_of_copy_bw", and the GB/s and %bw columns of the summary table). At batch 1 the layers fit in
the caches, so GB/s above the DRAM copy bandwidth is possible. Every timed result is checked
against the NumPy peer.
"""
import functools
import os
import sys
from typing import NamedTuple

import numpy as np
import pytest

import fastconv.functional as F
from fastconv.bench import load_table, numpy_peers as npp

# --import-mode=importlib puts no test folder on sys.path: add this one for the shared plumbing.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _small_conv_bench import run_case, torch_threads  # noqa: E402,F401  (torch_threads: autouse fixture)

try:
    import torch
except ImportError:  # torch is an optional peer: its cases are simply left out
    torch = None

DTYPE = np.float32
BATCHES = (1, 8)            # --benchmark-disable (smoke run) keeps batch 1 only


class Layer(NamedTuple):
    name: str
    network: str
    c: int
    h: int
    w: int
    m: int
    k: int
    stride: int
    padding: int

    def out_hw(self):
        return tuple((size + 2 * self.padding - self.k) // self.stride + 1 for size in (self.h, self.w))

    def flops(self, n):
        """One forward at batch n: 2 * outputs * taps."""
        oh, ow = self.out_hw()
        return 2.0 * n * self.c * self.m * oh * ow * self.k * self.k

    def bytes(self, n, pass_):
        """Bytes read and written by one pass: fwd x, weight, bias -> y; bwd grad_output, x,
        weight -> grad_x, grad_weight, grad_bias."""
        oh, ow = self.out_hw()
        x, y = n * self.c * self.h * self.w, n * self.c * self.m * oh * ow
        w, b = self.c * self.m * self.k * self.k, self.c * self.m
        elems = x + y + w + b if pass_ == "fwd" else 2 * x + y + 2 * w + b
        return elems * np.dtype(DTYPE).itemsize


LAYERS = [Layer(**row) for row in load_table("depthwise_layers.csv", folder=os.path.dirname(os.path.abspath(__file__)))]

# NumPy peer: fastconv.bench.numpy_peers (one padded copy of x, one multiply-add per tap over the
# whole batch, the weight gradient one einsum per tap).

# ---------------------------------------------------------------------------------- the data

class LayerData:
    """Inputs of one layer at one batch size, and the NumPy peer's results (lazily)."""

    def __init__(self, layer, n):
        self.layer, self.n = layer, n
        rng = np.random.default_rng(0)
        oh, ow = layer.out_hw()
        cm = layer.c * layer.m
        self.x = rng.standard_normal((n, layer.c, layer.h, layer.w), dtype=DTYPE)
        self.weight = rng.standard_normal((cm, 1, layer.k, layer.k), dtype=DTYPE) / layer.k
        self.bias = rng.standard_normal(cm, dtype=DTYPE)
        self.grad_output = rng.standard_normal((n, cm, oh, ow), dtype=DTYPE)
        self.args = dict(stride=layer.stride, padding=layer.padding)

    @functools.cached_property
    def ref_forward(self):
        return npp.depthwise_forward(self.x, self.weight, self.bias, **self.args)

    @functools.cached_property
    def ref_backward(self):
        return npp.depthwise_backward(self.grad_output, self.x, self.weight, **self.args)


@functools.lru_cache(maxsize=1)   # the cases run layer by layer: keep one layer's arrays only
def layer_data(layer, n):
    return LayerData(layer, n)


# ------------------------------------------------------------------------- the implementations
# Each maker takes LayerData and returns a zero-argument callable: y (fwd) or
# (grad_x, grad_w, grad_b) (bwd). Torch results are converted after timing (as_numpy).

def fastconv_impl():
    def fwd(d):
        x, w, b, a = d.x, d.weight, d.bias, d.args
        return lambda: F.depthwise_conv2d(x, w, b, **a)

    def bwd(d):
        gy, x, w, a = d.grad_output, d.x, d.weight, d.args
        return lambda: F.depthwise_conv2d_backward(gy, x, w, **a)

    return {"fwd": fwd, "bwd": bwd}


def numpy_impl():
    def fwd(d):
        x, w, b, a = d.x, d.weight, d.bias, d.args
        return lambda: npp.depthwise_forward(x, w, b, **a)

    def bwd(d):
        gy, x, w, a = d.grad_output, d.x, d.weight, d.args
        return lambda: npp.depthwise_backward(gy, x, w, **a)

    return {"fwd": fwd, "bwd": bwd}


def torch_impl(channels_last):
    """F.conv2d(groups=C) forward; aten.convolution_backward (what autograd calls) for the
    gradients. channels_last: x, weight and grad_output converted once, outside the timing."""
    conv2d, conv_bwd = torch.nn.functional.conv2d, torch.ops.aten.convolution_backward
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def tensors(d):
        return tuple(torch.from_numpy(a).contiguous(memory_format=fmt) if a.ndim == 4 else torch.from_numpy(a)
                     for a in (d.grad_output, d.x, d.weight, d.bias))

    def fwd(d):
        _, x, w, b = tensors(d)
        s, p, g = d.layer.stride, d.layer.padding, d.layer.c
        return lambda: conv2d(x, w, b, s, p, 1, g)

    def bwd(d):
        gy, x, w, _ = tensors(d)
        lay = d.layer
        params = ([lay.stride] * 2, [lay.padding] * 2, [1, 1], False, [0, 0], lay.c)
        return lambda: conv_bwd(gy, x, w, [w.shape[0]], *params, [True, True, True])

    return {"fwd": fwd, "bwd": bwd}


IMPLS = {"fastconv": fastconv_impl(), "numpy": numpy_impl()}
if torch is not None:
    IMPLS["torch"] = torch_impl(False)
    IMPLS["torch-cl"] = torch_impl(True)

PASSES = {"fwd": 1, "bwd": 2}    # pass -> flops multiplier


CASES = [pytest.param(layer, n, pass_, impl, id=f"{layer.name}-n{n}-{pass_}-{impl}")
         for layer in LAYERS for n in BATCHES for pass_ in PASSES for impl in IMPLS]


@pytest.mark.parametrize("layer,n,pass_,impl", CASES)
def test_depthwise(run_bench, request, layer, n, pass_, impl):
    run_case(run_bench, request, IMPLS, PASSES, layer_data, layer, n, pass_, impl, "dw")
