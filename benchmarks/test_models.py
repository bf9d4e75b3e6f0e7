"""Inference latency of the classic networks (fastconv.models, eval mode, float32, 224x224 input)
at batch 1 and 8, 2 threads: fastconv vs PyTorch eager, NCHW and channels_last (when installed).

    pytest benchmarks/test_models.py                      # table at the end: GFLOP/s, %peak, ratios
    pytest benchmarks/test_models.py -k resnet50          # one network
    pytest benchmarks/test_models.py -k "n1 and not cl"   # batch 1, no channels_last peer
    pytest benchmarks/test_models.py --benchmark-disable  # CI smoke run: batch 1, one call each

One group per network and batch, "model <name> n<N>", holding fastconv (``model(x)`` on a NumPy
array), torch (the same network as a torch.nn.Module, called under torch.inference_mode()) and
torch-cl (that module and the input in channels_last memory format). torchvision does not load
against the torch installed here, so the torch peer is the fastconv model's twin built by
_torch_mirror.py: torch.nn layers of the same arguments, torchvision's forward for each block, and
a copy of the same weights (a strict state-dict load, the keys being torchvision's). Every torch
result is checked against fastconv's logits for the same input (max |diff| / max |logit| < RTOL),
so the peer computes the same network. The BatchNorm layers get random running statistics and
affine parameters (as a trained network has), so the check covers them too.

flops = 2 x the multiply-adds of the convolutions and Linear layers (fastconv.summary's total)
x batch; each case also records model, batch, implementation, images/s and the median in ms.
"""
import copy
import functools
import os
import re
import sys

import numpy as np
import pytest

import fastconv
import fastconv.models as models
from fastconv import nn

# --import-mode=importlib puts no test folder on sys.path: add this one for the shared plumbing.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _small_conv_bench import THREADS, time_one_call, torch_threads  # noqa: E402,F401  (torch_threads: autouse fixture)

try:
    import torch

    from _torch_mirror import torch_mirror
except ImportError:  # torch is an optional peer: its cases are simply left out
    torch = None

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "googlenet", "alexnet", "vgg16")
BATCHES = (1, 8)            # --benchmark-disable (smoke run) keeps batch 1 only
IMAGE = (3, 224, 224)
TARGET_SECONDS = 2.0        # per benchmark (at least 5 rounds): rounds = TARGET_SECONDS / one call
RTOL = 1e-3                 # torch vs fastconv logits: max |diff| / max |logit|, fp32 through a deep net


class Network:
    """One fastconv model in eval mode, its multiply-adds per image and (lazily) its torch twins."""

    def __init__(self, name):
        fastconv.manual_seed(0)
        self.name = name
        self.model = getattr(models, name)().eval()
        rng = np.random.default_rng(0)
        for m in self.model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean[...] = rng.normal(0.0, 0.1, c)
                m.running_var[...] = rng.uniform(0.5, 1.5, c)
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
                m.bias.data[...] = rng.normal(0.0, 0.1, c)
        text = fastconv.summary(self.model, IMAGE, print_table=False)
        self.macs = int(re.search(r"Total mult-adds: ([\d,]+)", text).group(1).replace(",", ""))

    @functools.cached_property
    def torch(self):
        return torch_mirror(self.model)

    @functools.cached_property
    def torch_cl(self):
        return copy.deepcopy(self.torch).to(memory_format=torch.channels_last)


@functools.lru_cache(maxsize=1)   # the cases run network by network: keep one network only
def network(name):
    return Network(name)


class Batch:
    """The input of one network at one batch size, and fastconv's logits for it (the reference
    for the torch peers: stored by the fastconv case, or computed when it did not run)."""

    def __init__(self, net, n):
        self.net, self.n = net, n
        self.x = np.random.default_rng(1).standard_normal((n,) + IMAGE, dtype=np.float32)
        self.ref = None

    def reference(self):
        if self.ref is None:
            with fastconv.threads(THREADS):
                self.ref = self.net.model(self.x)
        return self.ref


@functools.lru_cache(maxsize=1)
def batch(name, n):
    return Batch(network(name), n)


# ------------------------------------------------------------------------- the implementations
# Each maker takes a Batch and returns a zero-argument callable giving the logits.

def fastconv_impl(b):
    model, x = b.net.model, b.x
    return lambda: model(x)


def torch_impl(channels_last):
    def make(b):
        if channels_last:
            model, x = b.net.torch_cl, torch.from_numpy(b.x).contiguous(memory_format=torch.channels_last)
        else:
            model, x = b.net.torch, torch.from_numpy(b.x)

        def call():
            with torch.inference_mode():
                return model(x)
        return call
    return make


IMPLS = {"fastconv": fastconv_impl}
if torch is not None:
    IMPLS["torch"] = torch_impl(False)
    IMPLS["torch-cl"] = torch_impl(True)

CASES = [pytest.param(name, n, impl, id=f"{name}-n{n}-{impl}")
         for name in MODELS for n in BATCHES for impl in IMPLS]


@pytest.mark.parametrize("name,n,impl", CASES)
def test_model(run_bench, benchmark, request, name, n, impl):
    smoke = request.config.getoption("benchmark_disable")
    if smoke and n != 1:
        pytest.skip("smoke run (--benchmark-disable): batch 1 only")
    b = batch(name, n)
    fn = IMPLS[impl](b)
    last = []

    def call():
        last[:] = [fn()]

    flops = 2.0 * b.net.macs * n
    target = TARGET_SECONDS
    if not smoke:
        # run_bench sizes its rounds for 100 GFLOP/s per thread: size them from one call instead.
        target = TARGET_SECONDS * (flops / 100e9 / THREADS) / time_one_call(call)
    benchmark.extra_info.update(model=name, batch=n, implementation=impl)
    run_bench(call, group=f"model {name} n{n}", impl=impl, flops=flops, threads=THREADS, target_seconds=target)
    if benchmark.stats is not None:
        median = benchmark.stats.stats.median
        benchmark.extra_info.update(ms=round(1e3 * median, 2), images_per_s=round(n / median, 1))

    if impl == "fastconv":
        got = b.ref = last[0]
    else:
        got = last[0].numpy()
    ref = b.reference()
    assert got.shape == (n, 1000) and got.dtype == np.float32, f"logits {got.shape} {got.dtype}"
    assert np.isfinite(got).all(), "non-finite logits"
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    assert err < RTOL, f"{impl} vs fastconv logits: max |diff| / max |logit| = {err:.2e} (tolerance {RTOL:.0e})"
