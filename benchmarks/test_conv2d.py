"""conv2d forward and backward on the conv layers of the classic networks (conv_layers.csv):
fastconv vs a NumPy im2col peer (fastconv/bench/numpy_peers.py) vs PyTorch (when installed), fp32, 2 threads.

    pytest benchmarks/test_conv2d.py                   # table at the end: GFLOP/s, %peak, ratios
    pytest benchmarks/test_conv2d.py -k vgg16_conv3_2  # one layer
    pytest benchmarks/test_conv2d.py -k "fwd- and not numpy"  # forward only, no NumPy peer
    pytest benchmarks/test_conv2d.py --benchmark-disable      # CI smoke run: batch 1, one call each

Per layer, four groups: "conv2d-fwd <layer>" (fastconv with algorithm auto, im2col, direct and,
on 3x3 stride-1 layers, winograd; numpy, torch), "conv2d-bwd-data <layer>", "conv2d-bwd-weight <layer>" and "conv2d-fwd+bwd
<layer>" (fastconv auto, numpy, torch). flops = 2*N*Cout*OH*OW*(Cin/groups)*kh*kw per pass, three
times that for fwd+bwd (for winograd too, which does 2.25x fewer multiply-adds: its GFLOP/s are
effective, comparable across algorithms, and may exceed the FMA peak). Every timed result is also checked against the NumPy reference.
"""
import functools
import os
import sys
from typing import NamedTuple

import numpy as np
import pytest

import fastconv.functional as F

# pyproject sets --import-mode=importlib, which puts no test folder on sys.path: add this one so
# the NumPy peers import the same way whatever the rootdir or invocation.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fastconv.bench import load_table, numpy_peers as npconv  # noqa: E402
from _small_conv_bench import TARGET_SECONDS, THREADS, time_one_call, torch_threads  # noqa: E402,F401  (torch_threads: autouse fixture)

try:
    import torch
except ImportError:  # torch is an optional peer: its cases are simply left out
    torch = None
DTYPE = np.float32
# Under --benchmark-disable (CI smoke run) every layer runs at batch 1, and the NumPy peer is
# left out for the layers whose batch-1 forward is bigger than this (the reference still runs).
SMOKE_NUMPY_MAX_FLOPS = 1e9
# fastconv's direct algorithm is benchmarked only where one forward stays well under a second.
DIRECT_MAX_FLOPS = 12e9
RTOL = 1e-4                 # max |got - ref| / max |ref|, fp32

HAVE_FASTCONV_CONV = hasattr(F, "conv2d") and hasattr(F, "conv2d_backward")


class Layer(NamedTuple):
    name: str
    network: str
    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    stride: int
    padding: int
    dilation: int
    groups: int

    def out_hw(self):
        oh = (self.h + 2 * self.padding - self.dilation * (self.kh - 1) - 1) // self.stride + 1
        ow = (self.w + 2 * self.padding - self.dilation * (self.kw - 1) - 1) // self.stride + 1
        return oh, ow

    def flops(self, n):
        """One pass (forward, backward-data or backward-weight) at batch n."""
        oh, ow = self.out_hw()
        return 2.0 * n * self.c_out * oh * ow * (self.c_in // self.groups) * self.kh * self.kw

    @property
    def conv_args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


LAYERS = [Layer(**row) for row in load_table("conv_layers.csv", folder=os.path.dirname(os.path.abspath(__file__)))]


# ---------------------------------------------------------------------------------- the data

class LayerData:
    """Inputs of one layer at one batch size, and the NumPy reference results (lazily)."""

    def __init__(self, layer, n):
        self.layer = layer
        rng = np.random.default_rng(0)
        oh, ow = layer.out_hw()
        self.x = rng.standard_normal((n, layer.c_in, layer.h, layer.w), dtype=DTYPE)
        self.weight = rng.standard_normal(
            (layer.c_out, layer.c_in // layer.groups, layer.kh, layer.kw), dtype=DTYPE)
        self.weight *= 1 / np.sqrt(self.weight[0].size)
        self.bias = rng.standard_normal(layer.c_out, dtype=DTYPE)
        self.grad_output = rng.standard_normal((n, layer.c_out, oh, ow), dtype=DTYPE)

    @functools.cached_property
    def ref_forward(self):
        return npconv.conv2d_forward(self.x, self.weight, self.bias, **self.layer.conv_args)

    @functools.cached_property
    def ref_backward(self):
        return npconv.conv2d_backward(self.grad_output, self.x, self.weight,
                                      **self.layer.conv_args)


@functools.lru_cache(maxsize=1)   # the cases run layer by layer: keep one layer's arrays only
def layer_data(layer, n):
    return LayerData(layer, n)


def check(name, got, ref):
    assert got.shape == ref.shape, f"{name}: shape {got.shape}, expected {ref.shape}"
    assert got.dtype == ref.dtype, f"{name}: dtype {got.dtype}, expected {ref.dtype}"
    err = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-30))
    assert err < RTOL, f"{name}: max |got - ref| / max |ref| = {err:.2e} (tolerance {RTOL:.0e})"


# ------------------------------------------------------------------------- the implementations
# Each maker takes (LayerData) and returns a zero-argument callable whose result is
# y (fwd), grad_x (bwd-data), grad_w (bwd-weight) or (y, grad_x, grad_w, grad_b) (fwd+bwd),
# as NumPy arrays (torch results are converted after timing, by `as_numpy`).

def fastconv_impl(algorithm):
    def fwd(d):
        x, w, b, a = d.x, d.weight, d.bias, d.layer.conv_args
        return lambda: F.conv2d(x, w, b, **a, algorithm=algorithm)

    def bwd_data(d):
        gy, x, w, a = d.grad_output, d.x, d.weight, d.layer.conv_args
        return lambda: F.conv2d_backward(gy, x, w, **a, weight_grad=False, bias_grad=False,
                                         algorithm=algorithm)[0]

    def bwd_weight(d):
        gy, x, w, a = d.grad_output, d.x, d.weight, d.layer.conv_args
        return lambda: F.conv2d_backward(gy, x, w, **a, input_grad=False, bias_grad=False,
                                         algorithm=algorithm)[1]

    def fwd_bwd(d):
        gy, x, w, b, a = d.grad_output, d.x, d.weight, d.bias, d.layer.conv_args

        def step():
            y = F.conv2d(x, w, b, **a, algorithm=algorithm)
            return (y, *F.conv2d_backward(gy, x, w, **a, algorithm=algorithm))
        return step

    return {"fwd": fwd, "bwd-data": bwd_data, "bwd-weight": bwd_weight, "fwd+bwd": fwd_bwd}


def numpy_impl():
    def fwd(d):
        x, w, b, a = d.x, d.weight, d.bias, d.layer.conv_args
        return lambda: npconv.conv2d_forward(x, w, b, **a)

    def bwd_data(d):
        gy, w, shape, a = d.grad_output, d.weight, d.x.shape, d.layer.conv_args
        return lambda: npconv.conv2d_backward_data(gy, w, shape, **a)

    def bwd_weight(d):
        gy, x, shape, a = d.grad_output, d.x, d.weight.shape, d.layer.conv_args
        return lambda: npconv.conv2d_backward_weight(gy, x, shape, **a)

    def fwd_bwd(d):
        gy, x, w, b, a = d.grad_output, d.x, d.weight, d.bias, d.layer.conv_args

        def step():   # the forward's im2col matrix is kept for the weight gradient
            y, cols = npconv.conv2d_forward(x, w, b, **a, return_cols=True)
            return (y, *npconv.conv2d_backward(gy, x, w, **a, cols=cols))
        return step

    return {"fwd": fwd, "bwd-data": bwd_data, "bwd-weight": bwd_weight, "fwd+bwd": fwd_bwd}


def torch_impl():
    """F.conv2d forward; aten.convolution_backward (what autograd calls) for the gradients."""
    conv2d, conv_bwd = torch.nn.functional.conv2d, torch.ops.aten.convolution_backward

    def tensors(d):
        return tuple(torch.from_numpy(a) for a in (d.grad_output, d.x, d.weight, d.bias))

    def params(d):
        lay = d.layer
        return ([lay.stride] * 2, [lay.padding] * 2, [lay.dilation] * 2, False, [0, 0],
                lay.groups)

    def fwd(d):
        _, x, w, b = tensors(d)
        a = d.layer.conv_args
        return lambda: conv2d(x, w, b, a["stride"], a["padding"], a["dilation"], a["groups"])

    def bwd_data(d):
        gy, x, w, _ = tensors(d)
        p = params(d)
        return lambda: conv_bwd(gy, x, w, None, *p, [True, False, False])[0]

    def bwd_weight(d):
        gy, x, w, _ = tensors(d)
        p = params(d)
        return lambda: conv_bwd(gy, x, w, None, *p, [False, True, False])[1]

    def fwd_bwd(d):
        gy, x, w, b = tensors(d)
        a, p = d.layer.conv_args, params(d)

        def step():
            y = conv2d(x, w, b, a["stride"], a["padding"], a["dilation"], a["groups"])
            return (y, *conv_bwd(gy, x, w, [w.shape[0]], *p, [True, True, True]))
        return step

    return {"fwd": fwd, "bwd-data": bwd_data, "bwd-weight": bwd_weight, "fwd+bwd": fwd_bwd}


IMPLS = {
    "fastconv": fastconv_impl("auto"),
    "fastconv-im2col": fastconv_impl("im2col"),
    "fastconv-direct": fastconv_impl("direct"),
    "fastconv-winograd": fastconv_impl("winograd"),
    "numpy": numpy_impl(),
}
if torch is not None:
    IMPLS["torch"] = torch_impl()

PASSES = {  # pass -> (impls benchmarked, flops multiplier)
    "fwd": (["fastconv", "fastconv-im2col", "fastconv-direct", "fastconv-winograd", "numpy", "torch"], 1),
    "bwd-data": (["fastconv", "numpy", "torch"], 1),
    "bwd-weight": (["fastconv", "numpy", "torch"], 1),
    "fwd+bwd": (["fastconv", "numpy", "torch"], 3),
}


def as_numpy(r):
    if isinstance(r, (tuple, list)):
        return tuple(as_numpy(v) for v in r)
    if torch is not None and isinstance(r, torch.Tensor):
        return r.detach().numpy()
    return r


CASES = [pytest.param(layer, pass_, impl, id=f"{layer.name}-{pass_}-{impl}")
         for layer in LAYERS for pass_, (impls, _) in PASSES.items()
         for impl in impls if impl in IMPLS]


@pytest.mark.parametrize("layer,pass_,impl", CASES)
def test_conv2d(run_bench, request, layer, pass_, impl):
    smoke = request.config.getoption("benchmark_disable")
    n = 1 if smoke else layer.n
    if impl.startswith("fastconv") and not HAVE_FASTCONV_CONV:
        pytest.skip("fastconv.functional has no conv2d / conv2d_backward yet")
    if impl == "fastconv-direct" and layer.flops(n) > DIRECT_MAX_FLOPS:
        pytest.skip(f"direct algorithm left out above {DIRECT_MAX_FLOPS / 1e9:g} GFLOP per call")
    if impl == "fastconv-winograd" and not (layer.kh == layer.kw == 3 and layer.stride == layer.dilation
                                            == layer.groups == 1):
        pytest.skip("winograd runs 3x3 kernels at stride 1, dilation 1, groups 1 only")
    if impl == "numpy" and smoke and layer.flops(1) > SMOKE_NUMPY_MAX_FLOPS:
        pytest.skip("NumPy peer left out of the smoke run for big layers")

    data = layer_data(layer, n)
    fn = IMPLS[impl][pass_](data)
    last = []

    def call():
        last[:] = [fn()]

    _, mult = PASSES[pass_]
    flops = mult * layer.flops(n)
    target = TARGET_SECONDS
    if not smoke:
        # run_bench sizes its rounds for 100 GFLOP/s per thread; the peers (and the small or
        # grouped layers) run far from that. Size them from one call instead, so that each
        # benchmark takes about TARGET_SECONDS whatever its speed.
        seconds = time_one_call(call)
        target = TARGET_SECONDS * (flops / 100e9 / THREADS) / seconds
    run_bench(call, group=f"conv2d-{pass_} {layer.name}", impl=impl,
              flops=flops, threads=THREADS, target_seconds=target)

    got = as_numpy(last[0])
    if pass_ == "fwd":
        check("y", got, data.ref_forward)
    elif pass_ == "bwd-data":
        check("grad_x", got, data.ref_backward[0])
    elif pass_ == "bwd-weight":
        check("grad_w", got, data.ref_backward[1])
    else:
        for name, g, r in zip(("y", "grad_x", "grad_w", "grad_b"), got,
                              (data.ref_forward, *data.ref_backward)):
            check(name, g, r)
