"""conv2d algorithm="winograd" (F(2x2, 3x3), csrc/conv/conv_winograd.inc): forward, both
gradients and conv_transpose2d against the float64 references on every ISA and dtype, the
epilogue, tile blocks split across threads, and the arguments it refuses."""
import numpy as np
import pytest

import fastconv
from fastconv import functional as F
from reference import conv2d_ref

DTYPES = [np.float32, np.float64]

# (n, c_in, c_out, h, w, padding): odd and even planes (partial tiles at the bottom/right), planes
# as small as the kernel, every padding form, channel counts off the micro-tile sizes
CASES = [
    (1, 1, 1, 3, 3, 0),
    (2, 3, 5, 7, 9, 1),
    (1, 5, 7, 8, 8, 0),
    (3, 16, 17, 6, 5, 1),
    (1, 2, 3, 4, 4, 2),
    (2, 7, 4, 5, 6, "same"),
    (1, 4, 6, 9, 7, ((0, 2), (1, 0))),
    (1, 33, 20, 11, 10, (2, 0)),
    (2, 64, 48, 14, 14, 1),
]
IDS = [f"n{c[0]}_c{c[1]}-{c[2]}_{c[3]}x{c[4]}_p{c[5]}".replace(" ", "") for c in CASES]


def _inputs(case, dtype, seed=0):
    n, cin, cout, h, w, _ = case
    rng = np.random.default_rng(seed + cin * 131 + h)
    x = rng.standard_normal((n, cin, h, w)).astype(dtype)
    wt = rng.standard_normal((cout, cin, 3, 3)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    return x, wt, b


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_winograd_forward(isa, case, dtype, assert_conv2d_close):
    x, w, b = _inputs(case, dtype)
    y = F.conv2d(x, w, b, padding=case[5], algorithm="winograd")
    assert_conv2d_close(y, x, w, b, padding=case[5], what=f"winograd {case} {isa}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_winograd_backward(isa, case, dtype, assert_conv2d_backward_close):
    """The data gradient is the same transform with the kernel flipped; the weight gradient runs
    im2col under algorithm="winograd"."""
    x, w, _ = _inputs(case, dtype)
    y_shape = F.conv2d(x, w, padding=case[5]).shape
    g = np.random.default_rng(7).standard_normal(y_shape).astype(dtype)
    grads = F.conv2d_backward(g, x, w, padding=case[5], algorithm="winograd")
    assert_conv2d_backward_close(grads, g, x, w, padding=case[5], what=f"winograd backward {case} {isa}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_winograd_conv_transpose2d(isa, padding, dtype, assert_conv_transpose2d_close):
    rng = np.random.default_rng(padding)
    x = rng.standard_normal((2, 6, 7, 8)).astype(dtype)
    w = rng.standard_normal((6, 5, 3, 3)).astype(dtype)  # (C_in, C_out, kh, kw)
    b = rng.standard_normal(5).astype(dtype)
    y = F.conv_transpose2d(x, w, b, padding=padding, algorithm="winograd")
    assert_conv_transpose2d_close(y, x, w, b, padding=padding, what=f"winograd transposed p{padding} {isa}")


@pytest.mark.parametrize("activation", [None, "relu", "relu6", "silu", "sigmoid"])
def test_winograd_epilogue(isa, activation):
    """scale, bias and activation as in the im2col epilogue (scale is folded into the transformed
    weights, bias and ReLU/ReLU6 into the output transform, SiLU/sigmoid a pass after)."""
    x, w, b = _inputs((2, 9, 12, 10, 11, 1), np.float64)
    s = np.random.default_rng(3).standard_normal(12)
    ref = conv2d_ref(x, w, padding=1) * s[:, None, None] + b[:, None, None]
    ref = {None: ref, "relu": np.maximum(ref, 0), "relu6": np.clip(ref, 0, 6), "silu": ref / (1 + np.exp(-ref)),
           "sigmoid": 1 / (1 + np.exp(-ref))}[activation]
    y = F.conv2d(x, w, b, padding=1, algorithm="winograd", scale=s, activation=activation)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)


def test_winograd_nan_propagates(isa):
    x, w, b = _inputs((1, 4, 4, 6, 6, 1), np.float32)
    x[0, 2, 3, 3] = np.nan
    y = F.conv2d(x, w, b, padding=1, algorithm="winograd", activation="relu")
    ref = np.isnan(F.conv2d(x, w, b, padding=1, algorithm="im2col", activation="relu"))
    assert ref.any() and np.array_equal(np.isnan(y), ref)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_winograd_many_blocks(isa, threads, assert_conv2d_close):
    """Several blocks of tiles (128 tiles each at 64 + 64 channels), blocks shorter than a tile
    row, the last block short, batch 1 split across threads; and with more channels and fewer
    tiles (at most one block per thread) one block with threaded GEMMs."""
    fastconv.set_num_threads(threads)
    for shape in ((1, 64, 64, 27, 25, 1), (2, 256, 96, 9, 11, 1)):
        x, w, b = _inputs(shape, np.float32)
        y = F.conv2d(x, w, b, padding=1, algorithm="winograd")
        assert_conv2d_close(y, x, w, b, padding=1, what=f"winograd blocks {shape}, {threads} threads")


@pytest.mark.parametrize("kw", [dict(stride=2), dict(dilation=2), dict(groups=2)], ids=["stride", "dilation", "groups"])
def test_winograd_refuses(kw):
    x = np.ones((1, 4, 8, 8), np.float32)
    w = np.ones((4, 4 // kw.get("groups", 1), 3, 3), np.float32)
    with pytest.raises(ValueError, match="winograd.*3x3 kernel, stride 1, dilation 1"):
        F.conv2d(x, w, algorithm="winograd", **kw)
    with pytest.raises(ValueError, match="winograd"):
        F.conv2d(x, np.ones((4, 4, 5, 5), np.float32), algorithm="winograd")
