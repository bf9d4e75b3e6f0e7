"""Plumbing shared by the conv2d, depthwise and pointwise benchmark modules: timing a case under the
thread limits, recording it with run_bench, and checking its result against the NumPy peer."""
import time

import numpy as np
import pytest

from fastconv.bench import thread_limits

try:
    import torch
except ImportError:  # torch is an optional peer
    torch = None

THREADS = 2
TARGET_SECONDS = 0.25       # per benchmark: rounds = TARGET_SECONDS / (one untimed call), 5..200
RTOL = 1e-4                 # max |got - ref| / max |ref|, fp32


def check(name, got, ref):
    assert got.shape == ref.shape, f"{name}: shape {got.shape}, expected {ref.shape}"
    assert got.dtype == ref.dtype, f"{name}: dtype {got.dtype}, expected {ref.dtype}"
    err = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-30))
    assert err < RTOL, f"{name}: max |got - ref| / max |ref| = {err:.2e} (tolerance {RTOL:.0e})"


def as_numpy(r):
    if isinstance(r, (tuple, list)):
        return tuple(as_numpy(v) for v in r)
    if torch is not None and isinstance(r, torch.Tensor):
        return r.detach().contiguous().numpy()
    return r


# ------------------------------------------------------------------------------------ plumbing

def time_one_call(fn):
    """Seconds of one fn() call, under the thread limits run_bench uses."""
    with thread_limits(THREADS):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


@pytest.fixture(scope="module", autouse=True)
def torch_threads():
    if torch is not None:
        old = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        yield
        torch.set_num_threads(old)
    else:
        yield


# ------------------------------------------------------------------------------------ the benchmark

def run_case(run_bench, request, impls, passes, layer_data, layer, n, pass_, impl, prefix):
    """One benchmark: time impls[impl][pass_] on layer_data(layer, n), record it in group
    "<prefix>-<pass> <layer> n<n>", then check its result against the NumPy reference."""
    smoke = request.config.getoption("benchmark_disable")
    if smoke and n != 1:
        pytest.skip("smoke run (--benchmark-disable): batch 1 only")
    data = layer_data(layer, n)
    fn = impls[impl][pass_](data)
    last = []

    def call():
        last[:] = [fn()]

    flops = passes[pass_] * layer.flops(n)
    nbytes = layer.bytes(n, pass_)
    target = TARGET_SECONDS
    if not smoke:
        # run_bench sizes its rounds from an estimate of one call (flops at 100 GFLOP/s per thread,
        # bytes at 20 GB/s); the peers run far from that. Scale the target by the measured time of
        # one call instead, so that each benchmark takes about TARGET_SECONDS whatever its speed.
        estimate = max(flops / 100e9 / THREADS, nbytes / 20e9, 1e-5)
        target = TARGET_SECONDS * estimate / time_one_call(call)
    group = f"{prefix}-{pass_} {layer.name} n{n}"
    run_bench(call, group=group, impl=impl, flops=flops, threads=THREADS, target_seconds=target,
              bytes=nbytes)

    got = as_numpy(last[0])
    if pass_ == "fwd":
        check("y", got, data.ref_forward)
    else:
        for name, g, r in zip(("grad_x", "grad_w", "grad_b"), got, data.ref_backward):
            check(name, g, r)
