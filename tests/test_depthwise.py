"""fastconv.functional.depthwise_conv2d / depthwise_conv2d_backward against the float64 conv2d
reference with groups = C (tests/reference.py), on every ISA and float dtype.

The depthwise kernels copy each input plane into a zero-bordered buffer and vectorise along the
output rows (rows rounded up to whole vectors of 16/8 float32, 8/4 float64 lanes depending on the
ISA; four vectors per step, then single ones), with 3x3 and 5x5 at stride 1 and 2 unrolled and a
general kernel for the rest; the data gradient runs them per stride phase. So the grid crosses:
kernels 1..7 (square and not: 1x7, 7x1, 3x5, 5x3, 2x3), strides 1, 2, 3, (1, 2), (2, 1);
dilations 1, 2, (1, 2); every padding form ("valid", int, pair, asymmetric, "same" at strides 1,
2 and 3, padding wider than the kernel); depth multipliers 1, 2, 3; batch 1 and > 1; and output
widths below, at and above the vector widths and not multiples of 16 (7, 14, 16, 17, 37, 64, 70,
113), so that every row takes the 4-vector loop, the single-vector tail, the padded last vector
and the direct-store path (width a multiple of the vector). Each case runs crossed with
dtype x ISA, forward and backward.
"""
import threading
from collections import namedtuple

import numpy as np
import pytest

import fastconv
from fastconv import functional as F
from reference import (
    conv2d_abs_ref, conv2d_backward_abs_ref, conv2d_backward_ref, conv2d_output_hw, conv2d_ref, resolve_padding2d,
)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]


def rng_for(*key):
    """A deterministic generator per test case (independent of test order)."""
    seed = [sum(ord(ch) * 31**i for i, ch in enumerate(str(part))) % (2**31) for part in key]
    return np.random.default_rng(seed)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- the cases ---------------------------------------------------------------------------------

DCase = namedtuple("DCase", "name n c m h w kh kw stride padding dilation bias")


def D(name, n, c, m, h, w, kh, kw, stride=1, padding=0, dilation=1, bias=True):
    return DCase(name, n, c, m, h, w, kh, kw, stride, padding, dilation, bias)


CASES = [
    # 3x3 stride 1 (unrolled kernel) across output widths: below, at and above the vector widths
    D("3x3_p1_w7_batch2", 2, 5, 1, 6, 7, 3, 3, padding=1),
    D("3x3_p1_w14", 1, 3, 1, 5, 14, 3, 3, padding=1),
    D("3x3_p1_w16", 1, 4, 1, 4, 16, 3, 3, padding=1),           # one AVX-512 float32 vector exactly
    D("3x3_p1_w17_batch3", 3, 3, 1, 5, 17, 3, 3, padding=1),
    D("3x3_p1_w37_m2", 1, 3, 2, 5, 37, 3, 3, padding=1),
    D("3x3_p1_w70_nobias", 2, 2, 1, 4, 70, 3, 3, padding=1, bias=False),   # 4-vector loop + tail
    D("3x3_p1_w113_m3", 1, 2, 3, 3, 113, 3, 3, padding=1),
    D("3x3_valid_w64", 1, 3, 1, 5, 66, 3, 3, padding="valid"),  # output 64 wide: direct stores, 4 vectors
    D("3x3_c16_w32", 2, 16, 1, 3, 32, 3, 3, padding=1),
    # stride 1, tall enough for the shared-row tiles of four rows (plus 1-3 rows left over)
    D("3x3_p1_h9_w57_m2", 1, 3, 2, 9, 57, 3, 3, padding=1),       # 4 vectors: two 2-vector tiles
    D("3x3_p1_h10_w37_batch2", 2, 3, 1, 10, 37, 3, 3, padding=1),  # 3 vectors: one 2-, one 1-vector tile
    D("3x3_d12_p12_h8_w40", 1, 2, 1, 8, 40, 3, 3, dilation=(1, 2), padding=(1, 2)),
    D("5x5_p2_h11_w33_m2", 1, 2, 2, 11, 33, 5, 5, padding=2),
    D("3x3_s21_p1_h11_w40", 1, 2, 1, 11, 40, 3, 3, stride=(2, 1), padding=1),  # rows shared at stride 2
    # 3x3 stride 2 (unrolled) and other strides
    D("3x3_s2_p1_w37_batch2", 2, 4, 1, 9, 37, 3, 3, stride=2, padding=1),
    D("3x3_s2_p1_w113", 1, 3, 1, 7, 113, 3, 3, stride=2, padding=1),
    D("3x3_s2_p1_w14_m2", 1, 3, 2, 6, 14, 3, 3, stride=2, padding=1),
    D("3x3_s2_w33_out16", 1, 2, 1, 5, 33, 3, 3, stride=2),      # output 16 wide at stride 2
    D("3x3_s3_p1_w37", 1, 3, 1, 10, 37, 3, 3, stride=3, padding=1),
    D("3x3_s12_p1_w37", 1, 3, 1, 6, 37, 3, 3, stride=(1, 2), padding=1),
    D("3x3_s21_p1_w17_m2", 2, 2, 2, 7, 17, 3, 3, stride=(2, 1), padding=1),
    # dilation
    D("3x3_d2_p2_w17", 1, 3, 1, 9, 17, 3, 3, dilation=2, padding=2),
    D("3x3_d2_s2_same_w37", 1, 2, 1, 10, 37, 3, 3, stride=2, dilation=2, padding="same"),
    D("3x3_d12_p12_w14_m2", 1, 3, 2, 5, 14, 3, 3, dilation=(1, 2), padding=(1, 2)),
    D("5x5_d2_p4_w16", 1, 2, 1, 9, 16, 5, 5, dilation=2, padding=4),
    # 5x5 stride 1 and 2 (unrolled)
    D("5x5_p2_w17_batch2", 2, 3, 1, 7, 17, 5, 5, padding=2),
    D("5x5_p2_w70_m3", 1, 2, 3, 5, 70, 5, 5, padding=2),
    D("5x5_s2_p2_w70_m2", 1, 3, 2, 11, 70, 5, 5, stride=2, padding=2),
    D("5x5_s2_p2_w7", 2, 3, 1, 7, 7, 5, 5, stride=2, padding=2),
    D("5x5_same_w113", 1, 2, 1, 5, 113, 5, 5, padding="same"),
    # other kernels: 1..7, non-square (general kernel)
    D("1x1_w17", 2, 3, 1, 5, 17, 1, 1),
    D("1x1_s2_w14_m2", 1, 3, 2, 7, 14, 1, 1, stride=2),         # input pixels no tap reads: zero grad_x
    D("2x2_s3_w17", 1, 4, 1, 8, 17, 2, 2, stride=3),            # stride > kernel: gaps
    D("2x3_asym_w14", 1, 3, 1, 6, 14, 2, 3, padding=((0, 1), (1, 1))),
    D("4x4_same_w16", 1, 3, 1, 6, 16, 4, 4, padding="same"),    # even kernel: (1, 2)
    D("6x6_p3_w37_m2", 1, 2, 2, 8, 37, 6, 6, padding=3),
    D("7x7_p3_w37", 1, 2, 1, 9, 37, 7, 7, padding=3),
    D("7x7_s2_p3_w14_m3", 1, 2, 3, 9, 14, 7, 7, stride=2, padding=3),
    D("1x7_p03_w70_batch2", 2, 3, 1, 4, 70, 1, 7, padding=(0, 3)),
    D("7x1_p30_w16", 1, 3, 1, 9, 16, 7, 1, padding=(3, 0)),
    D("3x5_s12_p12_w37_m2", 1, 3, 2, 7, 37, 3, 5, stride=(1, 2), padding=(1, 2)),
    D("5x3_s21_p21_w17", 1, 3, 1, 9, 17, 5, 3, stride=(2, 1), padding=(2, 1)),
    # padding forms
    D("same_3x3_s1_w7", 1, 3, 1, 7, 7, 3, 3, padding="same"),
    D("same_3x3_s2_even_w70", 2, 3, 1, 8, 70, 3, 3, stride=2, padding="same"),   # (0, 1): extra at bottom/right
    D("same_3x3_s2_odd_w16_m2", 1, 3, 2, 9, 16, 3, 3, stride=2, padding="same"),  # (1, 1) rows, (0, 1) columns
    D("same_5x5_s2_w17", 1, 2, 1, 10, 17, 5, 5, stride=2, padding="same"),
    D("same_3x3_s3_w37", 1, 2, 1, 7, 37, 3, 3, stride=3, padding="same"),
    D("asym_pad_w17_batch2", 2, 3, 1, 5, 17, 3, 3, padding=((1, 2), (0, 3))),
    D("asym_pad_s2_w14_m3", 1, 2, 3, 7, 14, 3, 3, stride=2, padding=((0, 1), (2, 0))),
    D("asym_pad_5x5_s2_w37", 1, 2, 1, 9, 37, 5, 5, stride=2, padding=((2, 1), (1, 2))),
    D("pad_larger_than_kernel", 1, 2, 1, 4, 7, 3, 3, padding=3),   # outputs that see only padding
    # inputs as small as the kernel, single channel, odd everything
    D("input_eq_kernel_5x5", 2, 3, 1, 5, 5, 5, 5),
    D("input_eq_kernel_7x7_m2", 1, 2, 2, 7, 7, 7, 7),
    D("input_1x1_p1", 1, 3, 1, 1, 1, 3, 3, padding=1),
    D("input_2x3_p1_s2_m2", 2, 2, 2, 2, 3, 3, 3, stride=2, padding=1),
    D("c1_w113_s2", 1, 1, 1, 3, 113, 3, 3, stride=2, padding=1),
    D("c1_m3_odd", 3, 1, 3, 5, 13, 3, 3, padding=1),
    # small planes with channels past one vector: the channel-blocked kernel's partial blocks
    D("3x3_c37_w14_batch2", 2, 37, 1, 14, 14, 3, 3, padding=1),
    D("5x5_s2_c21_w14", 1, 21, 1, 14, 14, 5, 5, stride=2, padding=2),
    D("3x3_s2_d2_c17_w9_batch3", 3, 17, 1, 9, 9, 3, 3, stride=2, dilation=2, padding=2),
]
CASE_IDS = [c.name for c in CASES]


def dw_kwargs(case):
    return dict(stride=case.stride, padding=case.padding, dilation=case.dilation)


def ref_kwargs(case):
    """The same arguments for the conv2d reference and conv2d."""
    return dict(dw_kwargs(case), groups=case.c)


def make_dw_inputs(case, dtype, *key):
    rng = rng_for(case.name, np.dtype(dtype).name, *key)
    x = randn(rng, (case.n, case.c, case.h, case.w), dtype)
    w = randn(rng, (case.c * case.m, 1, case.kh, case.kw), dtype)
    b = randn(rng, (case.c * case.m,), dtype) if case.bias else None
    oh, ow = conv2d_output_hw((case.h, case.w), (case.kh, case.kw), case.stride, case.padding, case.dilation)
    g = randn(rng, (case.n, case.c * case.m, oh, ow), dtype)
    return x, w, b, g


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def test_cases_cover_the_grid():
    """The case list really covers what the module docstring promises."""
    def has(pred):
        return any(pred(c) for c in CASES)

    def out_w(c):
        return conv2d_output_hw((c.h, c.w), (c.kh, c.kw), c.stride, c.padding, c.dilation)[1]

    assert has(lambda c: c.n == 1) and has(lambda c: c.n > 1)
    for k in range(1, 8):
        assert has(lambda c: (c.kh, c.kw) == (k, k)), k
    for k in [(1, 7), (7, 1), (3, 5), (5, 3), (2, 3)]:
        assert has(lambda c: (c.kh, c.kw) == k), k
    for s in [(1, 1), (2, 2), (3, 3), (1, 2), (2, 1)]:
        assert has(lambda c: _pair(c.stride) == s), s
    for k in [(3, 3), (5, 5)]:   # the unrolled kernels, at both strides, with several multipliers
        for s in [(1, 1), (2, 2)]:
            assert has(lambda c: (c.kh, c.kw) == k and _pair(c.stride) == s and c.m > 1), (k, s)
    for d in [(1, 1), (2, 2), (1, 2)]:
        assert has(lambda c: _pair(c.dilation) == d), d
    for m in (1, 2, 3):
        assert has(lambda c: c.m == m), m
    for width in (7, 14, 16, 17, 37, 64, 70, 113):
        assert has(lambda c: out_w(c) == width), width
    for s in [(1, 1), (2, 2), (3, 3)]:
        assert has(lambda c: c.padding == "same" and _pair(c.stride) == s), s
    assert has(lambda c: c.padding == "valid")
    assert has(lambda c: isinstance(c.padding, tuple) and isinstance(c.padding[0], tuple))
    assert has(lambda c: isinstance(c.padding, tuple) and isinstance(c.padding[0], int))
    assert has(lambda c: (c.h, c.w) == (c.kh, c.kw) and c.padding == 0)
    assert has(lambda c: not c.bias)
    assert has(lambda c: c.c == 1)
    # "same" really is asymmetric somewhere in the list.
    assert has(lambda c: c.padding == "same" and len(set(resolve_padding2d(
        "same", (c.h, c.w), (c.kh, c.kw), c.stride, c.dilation)[2:])) == 2)


# ---- the checker on depthwise results -------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_error_bound_rejects_wrong_depthwise_results(dtype, assert_conv2d_close, assert_conv2d_backward_close):
    """The conv2d checkers (groups=C) accept the rounded reference and reject what a depthwise
    kernel gets wrong: the multiplier's channel order swapped (output j*C + c instead of c*m + j),
    one tap missing, the row's last output column or a vector's lane shifted, a gradient with one
    stride phase missing."""
    case = CASES[CASE_IDS.index("3x3_s2_p1_w14_m2")]
    x, w, b, g = make_dw_inputs(case, dtype, "bound")
    kw = ref_kwargs(case)
    good = conv2d_ref(x, w, b, **kw).astype(dtype)
    assert_conv2d_close(good, x, w, b, **kw)
    c, m = case.c, case.m
    order = np.arange(c * m).reshape(c, m).T.ravel()         # j*C + c <-> c*m + j
    w_no_tap = w.copy()
    w_no_tap[:, :, 2, 1] = 0
    last_col = good.copy()
    last_col[..., -1] = good[..., -2]
    wrong = {
        "channel order": good[:, order],
        "missing tap": conv2d_ref(x, w_no_tap, b, **kw),
        "last column": last_col,
        "shifted": np.roll(good, 1, axis=3),
    }
    for name, bad in wrong.items():
        with pytest.raises(AssertionError, match="outside the error bound"):
            assert_conv2d_close(np.ascontiguousarray(bad, dtype=dtype), x, w, b, **kw)
    gx, gw, gb = (r.astype(dtype) for r in conv2d_backward_ref(g, x, w, **kw))
    assert_conv2d_backward_close((gx, gw, gb), g, x, w, **kw)
    gx_phase = gx.copy()
    gx_phase[:, :, 1::2, ::2] = 0                            # one of the four stride phases not written
    with pytest.raises(AssertionError, match="grad_x.*outside the error bound"):
        assert_conv2d_backward_close((gx_phase, gw, gb), g, x, w, **kw)


# ---- forward and backward over the grid ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_depthwise_forward(isa, case, dtype, assert_conv2d_close):
    x, w, b, _ = make_dw_inputs(case, dtype)
    inputs = [a for a in (x, w, b) if a is not None]
    copies = [a.copy() for a in inputs]
    y = F.depthwise_conv2d(x, w, b, **dw_kwargs(case))
    assert_conv2d_close(y, x, w, b, **ref_kwargs(case), what=f"depthwise_conv2d {case.name} {isa}")
    for a, a0 in zip(inputs, copies):
        np.testing.assert_array_equal(a, a0, err_msg="depthwise_conv2d modified an input")
        assert not np.shares_memory(y, a)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_depthwise_backward(isa, case, dtype, assert_conv2d_backward_close):
    x, w, _, g = make_dw_inputs(case, dtype)
    copies = [a.copy() for a in (g, x, w)]
    grads = F.depthwise_conv2d_backward(g, x, w, **dw_kwargs(case))
    assert_conv2d_backward_close(grads, g, x, w, **ref_kwargs(case),
                                 what=f"depthwise_conv2d_backward {case.name} {isa}")
    assert grads[1].shape == w.shape and grads[2].shape == (case.c * case.m,)
    for a, a0 in zip((g, x, w), copies):
        np.testing.assert_array_equal(a, a0, err_msg="depthwise_conv2d_backward modified an input")


# Planes whose rows fit one vector with at least half of it used, 144 pixels or more: the row
# kernels' whole-plane path (conv.c, dw_rows_narrow), for every vector width (16, 8, 4 and 2
# lanes: float32/float64 on AVX-512, AVX2 and the portable build), with a multiplier, odd row
# counts (the last tile's rows past the plane), asymmetric padding and the data gradient (flipped).
NARROW_CASES = [
    D("narrow_3x3_14x14_m2", 2, 3, 2, 14, 14, 3, 3, padding=1),
    D("narrow_5x5_13x12", 1, 4, 1, 13, 12, 5, 5, padding=2),
    D("narrow_5x5_valid_w14", 1, 2, 1, 19, 18, 5, 5, padding="valid"),
    D("narrow_3x3_19x8_asym", 2, 3, 1, 19, 8, 3, 3, padding=((1, 1), (0, 2))),
    D("narrow_5x5_25x7", 1, 3, 1, 25, 7, 5, 5, padding=2),
    D("narrow_3x3_40x4", 1, 2, 1, 40, 4, 3, 3, padding=1),
    D("narrow_3x3_50x3_nobias", 1, 2, 1, 50, 3, 3, 3, padding=1, bias=False),
    D("narrow_3x3_75x2", 1, 2, 1, 75, 2, 3, 3, padding=1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", NARROW_CASES, ids=[c.name for c in NARROW_CASES])
def test_depthwise_narrow_planes(isa, case, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    x, w, b, g = make_dw_inputs(case, dtype, "narrow")
    what = f"depthwise {case.name} {isa}"
    assert_conv2d_close(F.depthwise_conv2d(x, w, b, **dw_kwargs(case)), x, w, b, **ref_kwargs(case), what=what)
    assert_conv2d_backward_close(F.depthwise_conv2d_backward(g, x, w, **dw_kwargs(case)), g, x, w,
                                 **ref_kwargs(case), what=what)
    y = F.depthwise_conv2d(x, w, b, **dw_kwargs(case))
    y6 = F.conv2d(x, w, b, **ref_kwargs(case), activation="relu6")  # the epilogue over the plane
    np.testing.assert_array_equal(y6, np.clip(y, 0, 6), err_msg=what + " relu6")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_depthwise_is_conv2d_with_groups_c(case, dtype, assert_close):
    """depthwise_conv2d is conv2d(..., groups=C): bit for bit what conv2d's routing (auto and
    direct) runs, and within the rounding bound of the im2col GEMM path (each within the
    reference's bound, hence within twice that of each other), forward and backward."""
    x, w, b, g = make_dw_inputs(case, dtype, "conv2d")
    kw, rkw = dw_kwargs(case), ref_kwargs(case)
    y = F.depthwise_conv2d(x, w, b, **kw)
    for algorithm in ("auto", "direct"):
        np.testing.assert_array_equal(y, F.conv2d(x, w, b, algorithm=algorithm, **rkw),
                                      err_msg=f"depthwise_conv2d vs conv2d(groups=C, algorithm={algorithm})")
    y_i = F.conv2d(x, w, b, algorithm="im2col", **rkw)
    taps = case.kh * case.kw + (b is not None)
    assert_close(y, y_i.astype(np.float64), conv2d_abs_ref(x, w, b, **rkw), 2 * taps,
                 what="depthwise vs conv2d im2col")

    grads = F.depthwise_conv2d_backward(g, x, w, **kw)
    scales = conv2d_backward_abs_ref(g, x, w, **rkw)
    npix = g.shape[0] * g.shape[2] * g.shape[3]
    terms = (case.m * case.kh * case.kw, npix, npix)
    # With C = 1, groups=C is groups=1: conv2d's "auto" rule then treats the weight gradient as
    # an ordinary convolution's (im2col), so only "direct" is bit for bit there.
    for algorithm in ("auto", "direct") if case.c > 1 else ("direct",):
        for name, a, c in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                              F.conv2d_backward(g, x, w, algorithm=algorithm, **rkw)):
            np.testing.assert_array_equal(a, c, err_msg=f"{name}: depthwise vs conv2d {algorithm}")
    for algorithm in ("im2col", "auto"):
        for name, a, c, s, n in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                                    F.conv2d_backward(g, x, w, algorithm=algorithm, **rkw), scales, terms):
            assert_close(a, c.astype(np.float64), s, 2 * n, what=f"{name}: depthwise vs conv2d {algorithm}")


# Layer shapes of MobileNetV2 / EfficientNet-B0 depthwise layers (channels and planes cut down),
# big enough to be split over threads and to run long rows. Slow: run with --runslow.
SLOW_CASES = [
    D("mbv2_96ch_3x3_s2", 2, 48, 1, 56, 56, 3, 3, stride=2, padding=1),
    D("mbv2_144ch_3x3_s1", 1, 72, 1, 28, 28, 3, 3, padding=1),
    D("effb0_240ch_5x5_s1", 1, 40, 1, 28, 28, 5, 5, padding=2),
    D("effb0_672ch_5x5_s2", 2, 96, 1, 14, 14, 5, 5, stride=2, padding=2),
    D("m2_7x7_s2_w113", 1, 8, 2, 21, 113, 7, 7, stride=2, padding=3),
]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", SLOW_CASES, ids=[c.name for c in SLOW_CASES])
def test_depthwise_network_layers(isa, case, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    x, w, b, g = make_dw_inputs(case, dtype, "slow")
    assert_conv2d_close(F.depthwise_conv2d(x, w, b, **dw_kwargs(case)), x, w, b, **ref_kwargs(case))
    assert_conv2d_backward_close(F.depthwise_conv2d_backward(g, x, w, **dw_kwargs(case)), g, x, w,
                                 **ref_kwargs(case))


# ---- gradients not asked for, unbatched input, empty batch, argument forms -----------------------

@pytest.mark.parametrize("flags", [(i, w, b) for i in (True, False) for w in (True, False) for b in (True, False)],
                         ids=lambda f: "".join("xwb"[i] if on else "-" for i, on in enumerate(f)))
def test_depthwise_backward_flags(flags, assert_conv2d_backward_close):
    case = CASES[CASE_IDS.index("asym_pad_s2_w14_m3")]
    x, w, _, g = make_dw_inputs(case, np.float32, "flags")
    i, wg, bg = flags
    grads = F.depthwise_conv2d_backward(g, x, w, input_grad=i, weight_grad=wg, bias_grad=bg, **dw_kwargs(case))
    assert_conv2d_backward_close(grads, g, x, w, flags=flags, **ref_kwargs(case))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_depthwise_unbatched_input(isa, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    """A 3-D (C, H, W) input gives a 3-D output (and grad_x), equal to the batch-of-one result."""
    case = CASES[CASE_IDS.index("3x5_s12_p12_w37_m2")]
    x, w, b, g = make_dw_inputs(case, dtype, "unbatched")
    kw = dw_kwargs(case)
    y = F.depthwise_conv2d(x[0], w, b, **kw)
    assert y.ndim == 3
    assert_conv2d_close(y, x[0], w, b, **ref_kwargs(case))
    np.testing.assert_array_equal(y, F.depthwise_conv2d(x, w, b, **kw)[0])
    grads = F.depthwise_conv2d_backward(g[0], x[0], w, **kw)
    assert grads[0].shape == x[0].shape
    assert_conv2d_backward_close(grads, g[0], x[0], w, **ref_kwargs(case))


def test_depthwise_empty_batch():
    x = np.ones((0, 3, 6, 7), np.float32)
    w = np.ones((6, 1, 3, 3), np.float32)
    y = F.depthwise_conv2d(x, w, np.ones(6, np.float32), stride=2, padding=1)
    assert y.shape == (0, 6, 3, 4) and y.dtype == np.float32
    gx, gw, gb = F.depthwise_conv2d_backward(np.ones((0, 6, 3, 4), np.float32), x, w, stride=2, padding=1)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (6,)
    assert not gw.any() and not gb.any()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_depthwise_equivalent_argument_forms(dtype):
    """int, pair, nested pair, numpy integers and "valid"/"same" spell the same depthwise
    convolution, bit for bit."""
    rng = rng_for("dwforms", np.dtype(dtype).name)
    x, w, b = randn(rng, (2, 3, 9, 17), dtype), randn(rng, (6, 1, 3, 3), dtype), randn(rng, (6,), dtype)
    base = F.depthwise_conv2d(x, w, b, stride=2, padding=1, dilation=2)
    for kw in [dict(stride=(2, 2), padding=(1, 1), dilation=(2, 2)),
               dict(stride=[2, 2], padding=((1, 1), (1, 1)), dilation=(2, 2)),
               dict(stride=np.int64(2), padding=np.int32(1), dilation=np.int64(2))]:
        np.testing.assert_array_equal(F.depthwise_conv2d(x, w, b, **kw), base, err_msg=str(kw))
    np.testing.assert_array_equal(F.depthwise_conv2d(x, w, b, padding="valid"), F.depthwise_conv2d(x, w, b))
    np.testing.assert_array_equal(F.depthwise_conv2d(x, w, b, padding="same", dilation=2),
                                  F.depthwise_conv2d(x, w, b, padding=2, dilation=2))
    # positional arguments in PyTorch's order
    np.testing.assert_array_equal(F.depthwise_conv2d(x, w, b, 2, 1, 2), base)


@pytest.mark.parametrize("stride", [1, 2, 3, (2, 1)])
def test_depthwise_same_output_size(stride):
    """padding="same" gives ceil(in / stride) at any stride, odd and even kernels, inputs smaller
    than the kernel."""
    s = _pair(stride)
    for hw in [(7, 7), (8, 16), (1, 1), (9, 2), (5, 17)]:
        for k in [1, 2, 3, 4, 5, 7]:
            x = np.arange(2 * hw[0] * hw[1], dtype=np.float32).reshape((1, 2) + hw) % 7 - 3
            w = np.ones((2, 1, k, k), np.float32)
            y = F.depthwise_conv2d(x, w, padding="same", stride=stride)
            assert y.shape[2:] == (-(-hw[0] // s[0]), -(-hw[1] // s[1])), (hw, k)
            np.testing.assert_array_equal(
                y, conv2d_ref(x, w, padding="same", stride=stride, groups=2).astype(np.float32),
                err_msg=f"hw={hw} k={k}")


# ---- layouts --------------------------------------------------------------------------------------

def relayout(a, layout):
    """The values of a (C-contiguous) in another memory layout."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "channels_last":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if a.ndim == 4 else a
    if layout == "sliced":
        big = np.full(a.shape[:-1] + (2 * a.shape[-1],), np.nan, a.dtype)
        big[..., 1::2] = a
        return big[..., 1::2]
    if layout == "reversed":
        rev = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[rev])[rev]
    if layout == "readonly":
        r = a.copy()
        r.flags.writeable = False
        return r
    if layout == "misaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        r = np.ndarray(a.shape, dtype=a.dtype, buffer=buf, offset=1)
        r[...] = a
        return r
    raise ValueError(layout)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("layout", ["F", "channels_last", "sliced", "reversed", "readonly", "misaligned"])
def test_depthwise_input_layouts(layout, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    case = CASES[CASE_IDS.index("3x3_s2_p1_w14_m2")]
    x, w, b, g = make_dw_inputs(case, dtype, "layout")
    xs, ws, bs, gs = (relayout(a, layout) for a in (x, w, b, g))
    assert_conv2d_close(F.depthwise_conv2d(xs, ws, bs, **dw_kwargs(case)), x, w, b, **ref_kwargs(case))
    assert_conv2d_backward_close(F.depthwise_conv2d_backward(gs, xs, ws, **dw_kwargs(case)), g, x, w,
                                 **ref_kwargs(case))


# ---- threads --------------------------------------------------------------------------------------

@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("n,c", [(1, 24), (3, 5)], ids=["batch1_c24", "batch3_c5"])
def test_depthwise_thread_counts(isa, nthreads, n, c, assert_conv2d_close, assert_conv2d_backward_close):
    """Threads over batch and channels (batch 1 must split over channels): right results at 1, 2
    and 3 threads."""
    rng = rng_for("dwthreads", nthreads, n, c)
    x = randn(rng, (n, c, 19, 37), np.float32)
    w = randn(rng, (2 * c, 1, 3, 3), np.float32)
    b = randn(rng, (2 * c,), np.float32)
    g = randn(rng, (n, 2 * c, 10, 19), np.float32)
    kw = dict(stride=2, padding=1)
    with fastconv.threads(nthreads):
        y = F.depthwise_conv2d(x, w, b, **kw)
        grads = F.depthwise_conv2d_backward(g, x, w, **kw)
    assert_conv2d_close(y, x, w, b, groups=c, **kw)
    assert_conv2d_backward_close(grads, g, x, w, groups=c, **kw)


def test_depthwise_from_several_python_threads(assert_conv2d_close, assert_conv2d_backward_close):
    """Several Python threads calling the depthwise functions at once (GIL released, per-thread
    buffers): every result correct."""
    names = ("3x3_p1_w70_nobias", "5x5_s2_p2_w70_m2", "same_3x3_s2_even_w70", "7x7_s2_p3_w14_m3")
    inputs = [(c, make_dw_inputs(c, dtype, "pythreads")) for c in (CASES[CASE_IDS.index(n)] for n in names)
              for dtype in DTYPES]
    errors, results = [], {}
    start = threading.Barrier(len(inputs))

    def work(i):
        case, (x, w, b, g) = inputs[i]
        try:
            start.wait(timeout=30)
            for rep in range(3):
                results[i, rep] = (F.depthwise_conv2d(x, w, b, **dw_kwargs(case)),
                                   F.depthwise_conv2d_backward(g, x, w, **dw_kwargs(case)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    assert len(results) == 3 * len(inputs)
    for (i, rep), (y, grads) in results.items():
        case, (x, w, b, g) = inputs[i]
        assert_conv2d_close(y, x, w, b, **ref_kwargs(case), what=f"thread {i} rep {rep}")
        assert_conv2d_backward_close(grads, g, x, w, **ref_kwargs(case), what=f"thread {i} rep {rep}")


# ---- finite differences -----------------------------------------------------------------------------
#
# L = sum(depthwise_conv2d(x, w, b) * g) is linear in each argument: a central difference is exact
# up to rounding whatever the step. These check the library's backward against its own forward.

FD_CASES = [CASES[CASE_IDS.index(n)] for n in (
    "3x3_s2_p1_w14_m2", "same_3x3_s2_odd_w16_m2", "7x7_s2_p3_w14_m3", "3x5_s12_p12_w37_m2", "2x2_s3_w17",
    "3x3_d2_s2_same_w37", "asym_pad_s2_w14_m3", "pad_larger_than_kernel", "5x5_s2_p2_w7")]


def _central_differences(loss, arrays, rng, count=10, h=0.5):
    result = []
    for a in arrays:
        picks = np.unique(np.concatenate([[0, a.size - 1], rng.integers(0, a.size, count - 2)]))
        derivs = np.zeros(len(picks))
        for k, flat in enumerate(picks):
            idx = np.unravel_index(flat, a.shape)
            v = a[idx]
            a[idx] = v + h
            up = loss()
            a[idx] = v - h
            down = loss()
            a[idx] = v
            derivs[k] = (up - down) / (2 * h)
        result.append((picks, derivs))
    return result


def _assert_fd_close(got, fd, what):
    picks, derivs = fd
    got = np.asarray(got).ravel()[picks]
    tol = 1e-9 * (1.0 + np.abs(derivs).max())
    err = np.abs(got - derivs).max()
    assert err <= tol, f"{what}: finite differences differ by {err:.3g} (tolerance {tol:.3g}) at {picks}"


@pytest.mark.parametrize("case", FD_CASES, ids=[c.name for c in FD_CASES])
def test_depthwise_gradients_by_finite_differences(case):
    x, w, b, g = make_dw_inputs(case, np.float64, "fd")
    if b is None:
        b = np.zeros(case.c * case.m)
    kw = dw_kwargs(case)

    def loss():
        return float(np.sum(F.depthwise_conv2d(x, w, b, **kw) * g))

    fx, fw, fb = _central_differences(loss, [x, w, b], rng_for("dwfd", case.name))
    gx, gw, gb = F.depthwise_conv2d_backward(g, x, w, **kw)
    _assert_fd_close(gx, fx, "grad_x")
    _assert_fd_close(gw, fw, "grad_weight")
    _assert_fd_close(gb, fb, "grad_bias")


# ---- special values ----------------------------------------------------------------------------------

def test_depthwise_exact_small_integers(isa):
    """Small integers multiply and add exactly in any order: forward and gradients are exact."""
    rng = rng_for("dwints")
    for dtype in DTYPES:
        for kw in [dict(stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1)),
                   dict(stride=2, padding=2), dict(padding=1)]:
            for k in (3, 5):
                x = rng.integers(-4, 5, size=(2, 3, 9, 37)).astype(dtype)
                w = rng.integers(-4, 5, size=(6, 1, k, k)).astype(dtype)
                b = rng.integers(-4, 5, size=(6,)).astype(dtype)
                y = F.depthwise_conv2d(x, w, b, **kw)
                np.testing.assert_array_equal(y, conv2d_ref(x, w, b, groups=3, **kw).astype(dtype))
                g = rng.integers(-4, 5, size=y.shape).astype(dtype)
                for got, ref in zip(F.depthwise_conv2d_backward(g, x, w, **kw),
                                    conv2d_backward_ref(g, x, w, groups=3, **kw)):
                    np.testing.assert_array_equal(got, ref.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("stride,k", [(1, 3), (2, 3), (1, 5), (2, 5), (1, 4)], ids=["3x3_s1", "3x3_s2", "5x5_s1",
                                                                                 "5x5_s2", "4x4_s1"])
def test_depthwise_nan_and_inf_propagate(isa, stride, k, dtype):
    """A NaN or infinity in x reaches exactly the outputs whose window covers it, in its own
    channel only (no more: the zero border is not 0 * something-infinite, and the lanes past the
    row end do not leak into the next row); likewise for grad_output in the data gradient."""
    c, m, hw = 3, 2, (7, 19)
    x = np.ones((2, c) + hw, dtype)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 0, hw[1] - 1] = np.inf       # on the border: taps reaching it through the padding
    x[1, 2, 5, 16] = -np.inf             # past a 16-lane vector in the second image
    w = np.ones((c * m, 1, k, k), dtype)
    kw = dict(stride=stride, padding=k // 2)
    y = F.depthwise_conv2d(x, w, **kw)
    ref = conv2d_ref(x, w, groups=c, **kw)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
    assert np.isnan(ref).any() and np.isposinf(ref).any() and np.isneginf(ref).any()
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(y[finite], ref[finite].astype(dtype))

    g = np.ones(y.shape, dtype)
    g[0, 1, 1, 2] = np.nan
    g[1, 5, y.shape[2] - 1, y.shape[3] - 1] = np.inf
    gx = F.depthwise_conv2d_backward(g, np.ones_like(x), w, weight_grad=False, bias_grad=False, **kw)[0]
    rx = conv2d_backward_ref(g, np.ones_like(x), w, groups=c, **kw)[0]
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(rx))
    np.testing.assert_array_equal(np.isinf(gx), np.isinf(rx))
    assert np.isnan(rx).any() and np.isinf(rx).any()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("stride,k", [(1, 3), (2, 3), (1, 5), (2, 5)], ids=["3x3_s1", "3x3_s2", "5x5_s1", "5x5_s2"])
def test_depthwise_weight_grad_nan_stays_in_its_taps(isa, stride, k, dtype):
    """Rows wider than the channel-blocked kernels' limit: a NaN in x reaches exactly the taps
    whose windows cover it in the weight gradient; the lanes past the last output column (which
    read x columns no output uses) must not turn 0 * NaN into NaN."""
    c, m = 2, 2
    x = np.ones((1, c, 13, 70), dtype)
    x[0, 0, 3, 69] = np.nan      # last column: unused at stride 2, one tap column at stride 1
    x[0, 1, 12, 40] = np.nan     # last row: unused at stride 2 with k 3
    x[0, 1, 5, 68] = np.inf
    w = np.ones((c * m, 1, k, k), dtype)
    g = np.ones(F.depthwise_conv2d(x, w, stride=stride).shape, dtype)
    assert g.shape[3] > 32
    gw = F.depthwise_conv2d_backward(g, x, w, stride=stride, input_grad=False, bias_grad=False)[1]
    rw = conv2d_backward_ref(g, x, w, groups=c, stride=stride)[1]
    np.testing.assert_array_equal(np.isnan(gw), np.isnan(rw))
    np.testing.assert_array_equal(np.isinf(gw), np.isinf(rw))
    assert np.isfinite(rw).any()
    finite = np.isfinite(rw)
    np.testing.assert_allclose(gw[finite], rw[finite], rtol=1e-5)


# ---- bad arguments --------------------------------------------------------------------------------

def _dw_args(dtype=np.float32, n=2, c=4, m=2, hw=(7, 9), k=(3, 3)):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    w = rng.standard_normal((c * m, 1) + k).astype(dtype)
    b = rng.standard_normal(c * m).astype(dtype)
    g = np.ones((n, c * m, hw[0] - k[0] + 1, hw[1] - k[1] + 1), dtype)
    return x, w, b, g


@pytest.mark.parametrize("shape", [(8, 2, 3, 3), (8, 4, 3, 3), (6, 1, 3, 3), (2, 1, 3, 3), (9, 1, 3, 3),
                                   (0, 1, 3, 3), (8, 0, 3, 3)],
                         ids=["in2", "in4", "6_not_multiple", "2_fewer_than_C", "9_not_multiple", "no_out",
                              "in0"])
def test_depthwise_weight_not_c_times_m(shape):
    """weight must be (C*m, 1, kh, kw) for the C = 4 channels of x."""
    x, _, _, g = _dw_args()
    w = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match="weight"):
        F.depthwise_conv2d(x, w)
    with pytest.raises(ValueError, match="weight"):
        F.depthwise_conv2d_backward(g, x, w)


@pytest.mark.parametrize("shape", [(8, 1, 3), (8, 9), (8, 1, 3, 3, 1), (8,)], ids=["3d", "2d", "5d", "1d"])
def test_depthwise_weight_wrong_ndim(shape):
    x, _, b, g = _dw_args()
    w = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match="weight"):
        F.depthwise_conv2d(x, w, b)
    with pytest.raises(ValueError, match="weight"):
        F.depthwise_conv2d_backward(g, x, w)


@pytest.mark.parametrize("shape", [(7, 9), (4,), (), (1, 2, 4, 7, 9)], ids=["2d", "1d", "0d", "5d"])
def test_depthwise_x_wrong_ndim(shape):
    _, w, b, g = _dw_args()
    x = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.depthwise_conv2d(x, w, b)
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.depthwise_conv2d_backward(g, x, w)


def test_depthwise_x_without_channels_or_pixels():
    _, w, _, _ = _dw_args()
    for shape in [(1, 0, 7, 9), (1, 4, 0, 9), (1, 4, 7, 0)]:
        with pytest.raises(ValueError, match=r"\bx\b|weight|size|kernel"):
            F.depthwise_conv2d(np.ones(shape, np.float32), w)


@pytest.mark.parametrize("bias_shape", [(4,), (9,), (8, 1), (1, 8), (), (1,)])
def test_depthwise_wrong_bias_shape(bias_shape):
    """bias is one value per output channel: C*m = 8, not C = 4."""
    x, w, _, _ = _dw_args()
    with pytest.raises(ValueError, match="bias"):
        F.depthwise_conv2d(x, w, np.ones(bias_shape, np.float32))


BAD_DTYPES = [np.int32, np.int64, np.float16, np.complex64, np.bool_, ">f4"]
BAD_DTYPE_IDS = ["int32", "int64", "float16", "complex64", "bool", "f4-byteswapped"]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["x", "weight", "bias", "grad_output"])
def test_depthwise_bad_dtype(which, bad):
    good = np.float32 if np.dtype(bad).itemsize <= 4 else np.float64
    x, w, b, g = _dw_args(good)
    args = {"x": x, "weight": w, "bias": b, "grad_output": g}
    args[which] = args[which].astype(bad)
    if which != "grad_output":
        with pytest.raises(TypeError, match=rf"\b{which}\b"):
            F.depthwise_conv2d(args["x"], args["weight"], args["bias"])
    if which != "bias":
        with pytest.raises(TypeError, match=rf"\b{which}\b"):
            F.depthwise_conv2d_backward(args["grad_output"], args["x"], args["weight"])


@pytest.mark.parametrize("which", ["x", "weight", "bias", "grad_output"])
def test_depthwise_mixed_dtypes(which):
    x, w, b, g = _dw_args(np.float32)
    args = {"x": x, "weight": w, "bias": b, "grad_output": g}
    args[which] = args[which].astype(np.float64)
    if which != "grad_output":
        with pytest.raises(TypeError, match=rf"dtype.*\b{which}\b|\b{which}\b.*dtype"):
            F.depthwise_conv2d(args["x"], args["weight"], args["bias"])
    if which != "bias":
        with pytest.raises(TypeError, match=rf"dtype.*\b{which}\b|\b{which}\b.*dtype"):
            F.depthwise_conv2d_backward(args["grad_output"], args["x"], args["weight"])


@pytest.mark.parametrize("which", ["x", "weight", "bias"])
@pytest.mark.parametrize("value", [[[1.0]], 1.0, "x"], ids=["list", "float", "str"])
def test_depthwise_non_array_inputs(which, value):
    x, w, b, _ = _dw_args()
    args = {"x": x, "weight": w, "bias": b}
    args[which] = value
    with pytest.raises((TypeError, ValueError), match=rf"\b{which}\b"):
        F.depthwise_conv2d(args["x"], args["weight"], args["bias"])


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (0, 1), (1, 0), (2, -2)])
def test_depthwise_stride_dilation_out_of_range(name, value):
    x, w, b, g = _dw_args()
    with pytest.raises(ValueError, match=name):
        F.depthwise_conv2d(x, w, b, **{name: value})
    with pytest.raises(ValueError, match=name):
        F.depthwise_conv2d_backward(g, x, w, **{name: value})


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [True, 1.0, (1.0, 1), "1", None], ids=["bool", "float", "float_in_pair", "str",
                                                                          "None"])
def test_depthwise_stride_dilation_wrong_type(name, value):
    x, w, b, _ = _dw_args()
    with pytest.raises(TypeError, match=name):
        F.depthwise_conv2d(x, w, b, **{name: value})


@pytest.mark.parametrize("value", [-1, (0, -1), (-1, 0), ((0, 0), (0, -1)), ((-1, 1), (1, 1))])
def test_depthwise_negative_padding(value):
    x, w, b, g = _dw_args()
    with pytest.raises(ValueError, match="padding"):
        F.depthwise_conv2d(x, w, b, padding=value)
    with pytest.raises(ValueError, match="padding"):
        F.depthwise_conv2d_backward(g, x, w, padding=value)


@pytest.mark.parametrize("value", ["full", "SAME", (1, 2, 3), ((1, 2), (3,)), 1.5, None],
                         ids=["full", "SAME", "three", "nested_short", "float", "None"])
def test_depthwise_bad_padding(value):
    x, w, b, _ = _dw_args()
    with pytest.raises((ValueError, TypeError), match="padding"):
        F.depthwise_conv2d(x, w, b, padding=value)


@pytest.mark.parametrize("args", [dict(k=(8, 3)), dict(k=(3, 10)), dict(hw=(2, 9)),
                                  dict(k=(3, 3), dilation=4), dict(k=(5, 5), padding=(0, 1), hw=(4, 9))],
                         ids=["kh_large", "kw_large", "h_small", "dilated", "padded_still_small"])
def test_depthwise_kernel_larger_than_padded_input(args):
    args = dict(args)
    shape = dict(hw=args.pop("hw", (7, 9)), k=args.pop("k", (3, 3)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4) + shape["hw"]).astype(np.float32)
    w = rng.standard_normal((4, 1) + shape["k"]).astype(np.float32)
    with pytest.raises(ValueError, match=r"(?i)kernel|weight|padding|input|output|size"):
        F.depthwise_conv2d(x, w, **args)


def test_depthwise_backward_wrong_grad_output_shape():
    x, w, _, g = _dw_args()                        # output (2, 8, 5, 7)
    for shape in [(2, 8, 5, 6), (2, 4, 5, 7), (1, 8, 5, 7), (2, 8, 7, 9), (8, 5, 7), (2, 8, 35)]:
        with pytest.raises(ValueError, match="grad_output"):
            F.depthwise_conv2d_backward(np.ones(shape, np.float32), x, w)
    F.depthwise_conv2d_backward(g, x, w)


# ---- property tests (hypothesis, derandomized) ------------------------------------------------------

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    given = None

if given is None:  # pragma: no cover
    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_depthwise_random_arguments():
        pass
else:
    SETTINGS = dict(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

    def one_or_pair(lo, hi):
        return st.one_of(st.integers(lo, hi), st.tuples(st.integers(lo, hi), st.integers(lo, hi)))

    @st.composite
    def depthwise_args(draw):
        kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
        stride, dilation = draw(one_or_pair(1, 3)), draw(one_or_pair(1, 2))
        (dh, dw) = _pair(dilation)
        form = draw(st.sampled_from(["int", "pair", "nested", "valid", "same"]))
        if form == "int":
            p = draw(st.integers(0, 3))
            padding, pads = p, (p, p, p, p)
        elif form == "pair":
            ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            padding, pads = (ph, pw), (ph, ph, pw, pw)
        elif form == "nested":
            pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
            padding = ((pads[0], pads[1]), (pads[2], pads[3]))
        else:
            padding, pads = form, (0, 0, 0, 0)
        min_h = 1 if form == "same" else max(1, dh * (kh - 1) + 1 - pads[0] - pads[1])
        min_w = 1 if form == "same" else max(1, dw * (kw - 1) + 1 - pads[2] - pads[3])
        h = draw(st.integers(min_h, min_h + 7))
        w = draw(st.integers(min_w, min_w + 40))      # rows below and above the vector widths
        n = draw(st.integers(1, 3))
        return dict(n=n, unbatched=n == 1 and draw(st.booleans()), c=draw(st.integers(1, 4)),
                    m=draw(st.integers(1, 3)), h=h, w=w, kh=kh, kw=kw,
                    kwargs=dict(stride=stride, padding=padding, dilation=dilation))

    @settings(**SETTINGS)
    @given(args=depthwise_args(), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
           seed=st.integers(0, 2**32 - 1))
    def test_depthwise_random_arguments(isa, args, bias, dtype, seed, assert_conv2d_close,
                                        assert_conv2d_backward_close):
        rng = np.random.default_rng(seed)
        kw, c, m = args["kwargs"], args["c"], args["m"]
        xshape = (c, args["h"], args["w"]) if args["unbatched"] else (args["n"], c, args["h"], args["w"])
        x = rng.standard_normal(xshape).astype(dtype)
        w = rng.standard_normal((c * m, 1, args["kh"], args["kw"])).astype(dtype)
        b = rng.standard_normal(c * m).astype(dtype) if bias else None
        y = F.depthwise_conv2d(x, w, b, **kw)
        oh, ow = conv2d_output_hw((args["h"], args["w"]), (args["kh"], args["kw"]), kw["stride"], kw["padding"],
                                  kw["dilation"])
        assert y.shape == xshape[:-3] + (c * m, oh, ow)
        assert_conv2d_close(y, x, w, b, groups=c, **kw)
        g = rng.standard_normal(y.shape).astype(dtype)
        flags = tuple(bool(v) for v in rng.integers(0, 2, 3)) if seed % 3 == 0 else (True, True, True)
        grads = F.depthwise_conv2d_backward(g, x, w, input_grad=flags[0], weight_grad=flags[1],
                                            bias_grad=flags[2], **kw)
        assert_conv2d_backward_close(grads, g, x, w, flags=flags, groups=c, **kw)
