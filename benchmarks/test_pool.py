"""Pooling forward on the pooling layers of real networks: fastconv vs a NumPy sliding-window
peer vs PyTorch (NCHW and channels_last, when installed), fp32, 2 threads, batch 1 and 8.

    pytest benchmarks/test_pool.py                    # table at the end: GB/s, % of copy bandwidth, ratios
    pytest benchmarks/test_pool.py -k resnet          # one layer
    pytest benchmarks/test_pool.py --benchmark-disable  # CI smoke run: batch 1, one call each

Pooling does almost no arithmetic, so the figure of merit is memory traffic: GB/s = (bytes of x
read + bytes of y written) / median time, against the copy bandwidth of a large NumPy copy
measured in the same run (benchmarks/conftest.py). The torch channels_last peer is timed on an
input already in that layout (its conversion is not counted). Every timed result is checked
against the NumPy peer.
"""
import os
import time
from typing import NamedTuple

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv.bench import load_table, numpy_peers as npp

try:
    import torch
except ImportError:  # torch is an optional peer: its cases are simply left out
    torch = None

THREADS = 2
TARGET_SECONDS = 0.25   # per benchmark: rounds sized from one untimed call, 5..200
DTYPE = np.float32


class PoolLayer(NamedTuple):
    name: str
    kind: str        # "max", "avg" or "global_avg"
    c: int
    h: int
    w: int
    k: int = 0
    s: int = 0
    p: int = 0

    def label(self, n):
        what = "global avg" if self.kind == "global_avg" else f"{self.kind} {self.k}x{self.k}/{self.s} p{self.p}"
        return f"pool {self.name} {what} {n}x{self.c}x{self.h}x{self.w}"


LAYERS = [PoolLayer(**row) for row in load_table("pool_layers.csv", folder=os.path.dirname(os.path.abspath(__file__)))]
BATCHES = [1, 8]


# ---- the implementations: each maps x (NCHW float32) to a callable returning y ----------------

def fastconv_impl(layer, x):
    if layer.kind == "max":
        return lambda: F.max_pool2d(x, layer.k, layer.s, layer.p)
    if layer.kind == "avg":
        return lambda: F.avg_pool2d(x, layer.k, layer.s, layer.p)
    return lambda: F.global_avg_pool2d(x)


def numpy_impl(layer, x):
    """Idiomatic NumPy (fastconv.bench.numpy_peers.pool2d): pad (with -inf for max), a strided
    sliding-window view, one reduction."""
    return lambda: npp.pool2d(x, layer.kind, layer.k, layer.s, layer.p)


def torch_impl(channels_last):
    def make(layer, x):
        t = torch.from_numpy(x)
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        TF = torch.nn.functional
        if layer.kind == "max":
            return lambda: TF.max_pool2d(t, layer.k, layer.s, layer.p)
        if layer.kind == "avg":
            return lambda: TF.avg_pool2d(t, layer.k, layer.s, layer.p)
        return lambda: TF.adaptive_avg_pool2d(t, 1)
    return make


IMPLS = {"fastconv": fastconv_impl, "numpy": numpy_impl}
if torch is not None:
    IMPLS["torch"] = torch_impl(False)
    IMPLS["torch-cl"] = torch_impl(True)


def as_numpy(y):
    if torch is not None and isinstance(y, torch.Tensor):
        return y.contiguous().numpy()
    return np.asarray(y)


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    if torch is not None:
        old = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        yield
        torch.set_num_threads(old)
    else:
        yield


def _data(layer, n):
    return np.random.default_rng(0).standard_normal((n, layer.c, layer.h, layer.w)).astype(DTYPE)


CASES = [pytest.param(layer, n, impl, id=f"{layer.name}-n{n}-{impl}")
         for layer in LAYERS for n in BATCHES for impl in IMPLS]


@pytest.mark.parametrize("layer,n,impl", CASES)
def test_pool(run_bench, request, layer, n, impl):
    smoke = request.config.getoption("benchmark_disable")
    if smoke and n > 1:
        pytest.skip("the smoke run (--benchmark-disable) covers batch 1 only")
    x = _data(layer, n)
    fn = IMPLS[impl](layer, x)
    last = []

    def call():
        last[:] = [fn()]

    with fastconv.threads(THREADS):
        call()   # warm-up, and the result's size
    nbytes = x.nbytes + as_numpy(last[0]).nbytes
    target = TARGET_SECONDS
    if not smoke:
        # run_bench sizes its rounds for 20 GB/s; size them from one call instead.
        with fastconv.threads(THREADS):
            t0 = time.perf_counter()
            call()
            seconds = time.perf_counter() - t0
        target = TARGET_SECONDS * (nbytes / 20e9) / max(seconds, 1e-6)
    run_bench(call, group=layer.label(n), impl=impl, flops=0, bytes=nbytes, threads=THREADS,
              target_seconds=target)

    got, ref = as_numpy(last[0]), numpy_impl(layer, x)()
    assert got.shape == ref.shape, f"{impl}: shape {got.shape}, expected {ref.shape}"
    if layer.kind == "max":
        np.testing.assert_array_equal(got, ref, err_msg=impl)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6, err_msg=impl)
