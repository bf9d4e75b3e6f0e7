"""fastconv.matmul vs numpy.matmul, side by side, fp32 (and one fp64 row).

    pytest benchmarks/test_gemm.py                # table at the end: GFLOP/s, % of peak, ratios
    pytest benchmarks/test_gemm.py -k square      # only the square sizes
"""
import os

import numpy as np
import pytest

import fastconv
from fastconv.bench import load_table

# squares and the GEMMs conv layers make: gemm_shapes.csv (shared with `fastconv bench --op gemm`)
_TABLE = load_table("gemm_shapes.csv", folder=os.path.dirname(os.path.abspath(__file__)))
SQUARE = [r["m"] for r in _TABLE if r["name"].startswith("square_")]
CONV_SHAPES = [(r["name"], r["m"], r["k"], r["n"]) for r in _TABLE if not r["name"].startswith("square_")]
IMPLS = {"fastconv": fastconv.matmul, "numpy": np.matmul}


def operands(m, k, n, dtype):
    rng = np.random.default_rng(0)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("size", SQUARE)
def test_square(run_bench, size, threads, impl):
    a, b = operands(size, size, size, np.float32)
    out = np.empty((size, size), np.float32)
    fn = IMPLS[impl]
    run_bench(lambda: fn(a, b, out=out), group=f"square f32 {size} t{threads}",
                  impl=impl, flops=2.0 * size**3, threads=threads)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", CONV_SHAPES, ids=[s[0] for s in CONV_SHAPES])
def test_conv_shapes(run_bench, shape, threads, impl):
    name, m, k, n = shape
    a, b = operands(m, k, n, np.float32)
    out = np.empty((m, n), np.float32)
    fn = IMPLS[impl]
    run_bench(lambda: fn(a, b, out=out), group=f"{name} f32 t{threads}",
                  impl=impl, flops=2.0 * m * k * n, threads=threads)


@pytest.mark.parametrize("impl", IMPLS)
def test_square_f64(run_bench, impl):
    a, b = operands(1024, 1024, 1024, np.float64)
    out = np.empty((1024, 1024), np.float64)
    fn = IMPLS[impl]
    run_bench(lambda: fn(a, b, out=out), group="square f64 1024 t1",
                  impl=impl, flops=2.0 * 1024**3, threads=1)


@pytest.mark.parametrize("impl", IMPLS)
def test_transposed_operands(run_bench, impl):
    """a.T @ b.T read in place by fastconv (numpy's BLAS also takes transposed operands)."""
    a, b = operands(1024, 1024, 1024, np.float32)
    out = np.empty((1024, 1024), np.float32)
    fn = IMPLS[impl]
    run_bench(lambda: fn(a.T, b.T, out=out), group="transposed f32 1024 t1",
                  impl=impl, flops=2.0 * 1024**3, threads=1)
