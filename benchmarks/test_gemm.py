"""fastconv.matmul vs numpy.matmul, side by side, fp32 (and one fp64 row).

    pytest benchmarks/test_gemm.py                # table at the end: GFLOP/s, % of peak, ratios
    pytest benchmarks/test_gemm.py -k square      # only the square sizes
"""
import numpy as np
import pytest

import fastconv

SQUARE = [256, 512, 1024, 2048]
# (name, m, k, n) of the GEMMs conv layers make: m = out channels, k = in channels * kh * kw,
# n = output pixels (im2col), for ResNet-50-like layers at 224x224 and a Linear layer at batch 8.
CONV_SHAPES = [
    ("conv1_7x7_64", 64, 147, 12544),
    ("res2_3x3_64", 64, 576, 3136),
    ("res3_3x3_128", 128, 1152, 784),
    ("res4_3x3_256", 256, 2304, 196),
    ("res5_3x3_512", 512, 4608, 49),
    ("res2_1x1_256x64", 256, 64, 3136),
    ("fc_1000x2048_b8", 1000, 2048, 8),
]
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
