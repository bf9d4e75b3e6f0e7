"""Shared benchmark plumbing: measured peak, thread limits for every library, and a summary
table (median GFLOP/s, % of the measured FMA peak, speedup over each other implementation in
the group; GB/s and % of the measured copy bandwidth for the benchmarks that give bytes=)
printed at the end of the run."""
import contextlib
import time
from collections import defaultdict

import numpy as np
import pytest

import fastconv

_results = defaultdict(dict)   # group -> {impl: (median_seconds, flops, threads, bytes)}
_peak = {}                     # threads -> GFLOP/s, measured on first use
_copy_bw = []                  # [GB/s] of a large NumPy copy, measured on first use


def measured_peak(threads):
    if threads not in _peak:
        _peak[threads] = fastconv.peak_gflops(threads=threads, seconds=0.5)
    return _peak[threads]


def measured_copy_bandwidth(mib=256, repeats=7):
    """GB/s (bytes read + written / best time) of a single-threaded NumPy copy of `mib` MiB,
    far beyond the caches: the denominator for "% of bandwidth" figures."""
    if not _copy_bw:
        src = np.ones(mib * 2**20 // 4, np.float32)
        dst = np.empty_like(src)
        np.copyto(dst, src)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.copyto(dst, src)
            best = min(best, time.perf_counter() - t0)
        _copy_bw.append(2 * src.nbytes / best / 1e9)
    return _copy_bw[0]


@contextlib.contextmanager
def limit_threads(n):
    """n threads for fastconv, NumPy's BLAS and (if loaded) PyTorch."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is in the test extra
        threadpool_limits = None
    with contextlib.ExitStack() as stack:
        if threadpool_limits is not None:
            stack.enter_context(threadpool_limits(n))
        stack.enter_context(fastconv.threads(n))
        yield


def run_benchmark(benchmark, fn, *, group, impl, flops, threads, target_seconds=1.0, bytes=None):
    """Time fn() with pytest-benchmark (rounds sized to about target_seconds) and record it.
    bytes: memory traffic of one call (read + written), for memory-bound kernels: GB/s and % of
    the measured copy bandwidth are recorded too (flops may then be 0)."""
    benchmark.group = group
    with limit_threads(threads):
        est = max(flops / 100e9 / threads, (bytes or 0) / 20e9, 1e-5)
        rounds = int(min(200, max(5, target_seconds / est)))
        benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: ran once as a smoke test, nothing to record
        return
    median = benchmark.stats.stats.median
    gflops = flops / median / 1e9
    benchmark.extra_info.update(gflops=round(gflops, 1), threads=threads,
                                pct_of_peak=round(100 * gflops / measured_peak(threads), 1))
    if bytes:
        gbps = bytes / median / 1e9
        benchmark.extra_info.update(gbps=round(gbps, 1),
                                    pct_of_copy_bw=round(100 * gbps / measured_copy_bandwidth(), 1))
    _results[group][impl] = (median, flops, threads, bytes)


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    tr = terminalreporter
    tr.section("GFLOP/s (median), % of measured FMA peak, speedup over the group's other impls")
    tr.write_line(f"measured fp32 FMA peak ({fastconv.config()['isa']}): "
                  + ", ".join(f"{t} thread(s) {p:.0f} GFLOP/s" for t, p in sorted(_peak.items())))
    if _copy_bw:
        tr.write_line(f"measured copy bandwidth (NumPy, 1 thread, 256 MiB): {_copy_bw[0]:.1f} GB/s")
    tr.write_line(f"{'group':<44} {'impl':<12} {'GFLOP/s':>8} {'%peak':>6} {'GB/s':>6} {'%bw':>5} "
                  f"{'x vs others':>12}")
    for group, impls in _results.items():
        for impl, (median, flops, threads, nbytes) in impls.items():
            gf = flops / median / 1e9
            bw = f"{nbytes / median / 1e9:6.1f} {100 * nbytes / median / 1e9 / _copy_bw[0]:5.0f}" if nbytes \
                else f"{'':6} {'':5}"
            others = [f"{o}:{m / median:.2f}" for o, (m, *_) in impls.items() if o != impl]
            fl = f"{gf:8.1f} {100 * gf / measured_peak(threads):6.1f}" if flops else f"{'-':>8} {'-':>6}"
            tr.write_line(f"{group:<44} {impl:<12} {fl} {bw} {' '.join(others):>12}")


@pytest.fixture
def run_bench(benchmark):
    """run_bench(fn, group=..., impl=..., flops=..., threads=...): see run_benchmark."""
    return lambda fn, **kw: run_benchmark(benchmark, fn, **kw)

