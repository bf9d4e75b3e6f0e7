"""Pointwise (1x1) convolution forward and backward on projection layers of MobileNetV2 at batch
1 and 8: fastconv vs NumPy (np.matmul, one BLAS GEMM per image) vs PyTorch NCHW and
channels_last (when installed), fp32, 2 threads.

    pytest benchmarks/test_pointwise.py                     # table at the end: GFLOP/s, GB/s, ratios
    pytest benchmarks/test_pointwise.py -k 960to160         # one layer
    pytest benchmarks/test_pointwise.py --benchmark-disable # smoke run: batch 1, one call each

Per layer and batch, two groups: "pw-fwd <layer> n<N>" and "pw-bwd <layer> n<N>" (all three
gradients), each with fastconv, numpy, torch (NCHW) and torch-cl (x, weight and grad_output in
channels_last memory format). flops = 2*N*Cout*Cin*H*W for the forward, twice that for the
backward (data and weight gradients). bytes = inputs + outputs + weights of one call go to
run_bench too, which records GB/s and % of the measured copy bandwidth (these layers have little
reuse per byte: 7x7 planes at batch 1 are mostly weight traffic). Every timed result is checked
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
    c_in: int
    c_out: int
    h: int
    w: int

    def flops(self, n):
        """One forward at batch n: 2 * outputs * C_in."""
        return 2.0 * n * self.c_out * self.c_in * self.h * self.w

    def bytes(self, n, pass_):
        """Bytes read and written by one pass: fwd x, weight, bias -> y; bwd grad_output, x,
        weight -> grad_x, grad_weight, grad_bias."""
        x, y = n * self.c_in * self.h * self.w, n * self.c_out * self.h * self.w
        w, b = self.c_out * self.c_in, self.c_out
        elems = x + y + w + b if pass_ == "fwd" else 2 * x + y + 2 * w + b
        return elems * np.dtype(DTYPE).itemsize


LAYERS = [Layer(**row) for row in load_table("pointwise_layers.csv", folder=os.path.dirname(os.path.abspath(__file__)))]


# ---------------------------------------------------------------------------------- NumPy peer

# ---------------------------------------------------------------------------------- the data

class LayerData:
    """Inputs of one layer at one batch size, and the NumPy peer's results (lazily)."""

    def __init__(self, layer, n):
        self.layer, self.n = layer, n
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((n, layer.c_in, layer.h, layer.w), dtype=DTYPE)
        self.weight = rng.standard_normal((layer.c_out, layer.c_in), dtype=DTYPE) * DTYPE(layer.c_in ** -0.5)
        self.bias = rng.standard_normal(layer.c_out, dtype=DTYPE)
        self.grad_output = rng.standard_normal((n, layer.c_out, layer.h, layer.w), dtype=DTYPE)

    @functools.cached_property
    def ref_forward(self):
        return npp.pointwise_forward(self.x, self.weight, self.bias)

    @functools.cached_property
    def ref_backward(self):
        return npp.pointwise_backward(self.grad_output, self.x, self.weight)


@functools.lru_cache(maxsize=1)
def layer_data(layer, n):
    return LayerData(layer, n)


# ------------------------------------------------------------------------- the implementations

def fastconv_impl():
    def fwd(d):
        x, w, b = d.x, d.weight, d.bias
        return lambda: F.pointwise_conv2d(x, w, b)

    def bwd(d):
        gy, x, w = d.grad_output, d.x, d.weight
        return lambda: F.pointwise_conv2d_backward(gy, x, w)

    return {"fwd": fwd, "bwd": bwd}


def numpy_impl():
    def fwd(d):
        x, w, b = d.x, d.weight, d.bias
        return lambda: npp.pointwise_forward(x, w, b)

    def bwd(d):
        gy, x, w = d.grad_output, d.x, d.weight
        return lambda: npp.pointwise_backward(gy, x, w)

    return {"fwd": fwd, "bwd": bwd}


def torch_impl(channels_last):
    """F.conv2d with the (Cout, Cin, 1, 1) weight; aten.convolution_backward for the gradients
    (grad_weight comes back 4-D and is compared as (Cout, Cin))."""
    conv2d, conv_bwd = torch.nn.functional.conv2d, torch.ops.aten.convolution_backward
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def tensors(d):
        w4 = d.weight.reshape(d.weight.shape + (1, 1))
        return (*(torch.from_numpy(a).contiguous(memory_format=fmt) for a in (d.grad_output, d.x, w4)),
                torch.from_numpy(d.bias))

    def fwd(d):
        _, x, w, b = tensors(d)
        return lambda: conv2d(x, w, b)

    def bwd(d):
        gy, x, w, _ = tensors(d)
        params = ([1, 1], [0, 0], [1, 1], False, [0, 0], 1)

        def step():
            gx, gw, gb = conv_bwd(gy, x, w, [w.shape[0]], *params, [True, True, True])
            return gx, gw.reshape(gw.shape[:2]), gb
        return step

    return {"fwd": fwd, "bwd": bwd}


IMPLS = {"fastconv": fastconv_impl(), "numpy": numpy_impl()}
if torch is not None:
    IMPLS["torch"] = torch_impl(False)
    IMPLS["torch-cl"] = torch_impl(True)

PASSES = {"fwd": 1, "bwd": 2}    # pass -> flops multiplier


CASES = [pytest.param(layer, n, pass_, impl, id=f"{layer.name}-n{n}-{pass_}-{impl}")
         for layer in LAYERS for n in BATCHES for pass_ in PASSES for impl in IMPLS]


@pytest.mark.parametrize("layer,n,pass_,impl", CASES)
def test_pointwise(run_bench, request, layer, n, pass_, impl):
    run_case(run_bench, request, IMPLS, PASSES, layer_data, layer, n, pass_, impl, "pw")
