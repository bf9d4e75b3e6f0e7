"""Shared benchmark plumbing: measured peak, thread limits for every library, and a summary
table (median GFLOP/s, % of the measured FMA peak, speedup over each other implementation in
the group; GB/s and % of the measured copy bandwidth for the benchmarks that give bytes=)
printed at the end of the run."""
from collections import defaultdict

import pytest

import fastconv
from fastconv.bench import copy_bandwidth, settle, thread_limits

_results = defaultdict(dict)   # group -> {impl: (median_seconds, flops, threads, bytes)}
_peak = {}                     # threads -> GFLOP/s, measured on first use


def measured_peak(threads):
    if threads not in _peak:
        _peak[threads] = fastconv.peak_gflops(threads=threads, seconds=0.5)
    return _peak[threads]


def run_benchmark(benchmark, fn, *, group, impl, flops, threads, target_seconds=1.0, bytes=None):
    """Time fn() with pytest-benchmark (rounds sized to about target_seconds) and record it.
    bytes: memory traffic of one call (read + written), for memory-bound kernels: GB/s and % of
    the measured copy bandwidth are recorded too (flops may then be 0)."""
    benchmark.group = group
    with thread_limits(threads):
        est = max(flops / 100e9 / threads, (bytes or 0) / 20e9, 1e-5)
        rounds = int(min(200, max(5, target_seconds / est)))
        if not benchmark.disabled:  # the previous peer's BLAS threads stop spinning first
            settle()
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
                                    pct_of_copy_bw=round(100 * gbps / copy_bandwidth(), 1))
    _results[group][impl] = (median, flops, threads, bytes)


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    tr = terminalreporter
    tr.section("GFLOP/s (median), % of measured FMA peak, speedup over the group's other impls")
    tr.write_line(f"measured fp32 FMA peak ({fastconv.config()['isa']}): "
                  + ", ".join(f"{t} thread(s) {p:.0f} GFLOP/s" for t, p in sorted(_peak.items())))
    with_bytes = any(r[3] for impls in _results.values() for r in impls.values())
    if with_bytes:
        tr.write_line(f"measured copy bandwidth (NumPy, 1 thread, 256 MiB): {copy_bandwidth():.1f} GB/s")
    tr.write_line(f"{'group':<44} {'impl':<12} {'GFLOP/s':>8} {'%peak':>6} {'GB/s':>6} {'%bw':>5} "
                  f"{'x vs others':>12}")
    for group, impls in _results.items():
        for impl, (median, flops, threads, nbytes) in impls.items():
            gf = flops / median / 1e9
            bw = f"{nbytes / median / 1e9:6.1f} {100 * nbytes / median / 1e9 / copy_bandwidth():5.0f}" if nbytes \
                else f"{'':6} {'':5}"
            others = [f"{o}:{m / median:.2f}" for o, (m, *_) in impls.items() if o != impl]
            fl = f"{gf:8.1f} {100 * gf / measured_peak(threads):6.1f}" if flops else f"{'-':>8} {'-':>6}"
            tr.write_line(f"{group:<44} {impl:<12} {fl} {bw} {' '.join(others):>12}")


@pytest.fixture
def run_bench(benchmark):
    """run_bench(fn, group=..., impl=..., flops=..., threads=...): see run_benchmark."""
    return lambda fn, **kw: run_benchmark(benchmark, fn, **kw)

