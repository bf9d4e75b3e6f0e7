"""fastconv.functional.conv2d / conv2d_backward / conv_transpose2d / conv_transpose2d_backward
against the float64 references of tests/reference.py, on every ISA, algorithm and float dtype.

The grid is a list of named cases (not a cartesian product) chosen so that every value the
feature has to handle appears at least once: batch 1 and > 1; 1, 3, odd channel counts and
counts at, under and over multiples of the SIMD width (16 float32 lanes on AVX-512); kernels
1x1, 3x3, 5x5, 7x7, 11x11 and non-square; strides 1, 2, 4, (1, 2); dilations 1, 2, (2, 1);
groups 1, 2, 3 and depthwise; every padding form ("valid", "same" at strides 1, 2 and 4, int,
pair, asymmetric); inputs as small as the (dilated) kernel. Each case runs crossed with
algorithm x dtype x ISA, forward and backward.
"""
import threading
from collections import namedtuple

import numpy as np
import pytest

import fastconv
from fastconv import functional as F
from reference import (
    conv2d_abs_ref, conv2d_backward_abs_ref, conv2d_backward_ref, conv2d_output_hw, conv2d_ref,
    conv_transpose2d_output_hw, resolve_padding2d,
)

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]
ALGORITHMS = ["im2col", "direct", "auto"]


def rng_for(*key):
    """A deterministic generator per test case (independent of test order)."""
    seed = [sum(ord(ch) * 31**i for i, ch in enumerate(str(part))) % (2**31) for part in key]
    return np.random.default_rng(seed)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- the cases ---------------------------------------------------------------------------------

Case = namedtuple("Case", "name n cin cout h w kh kw stride padding dilation groups bias")


def C(name, n, cin, cout, h, w, kh, kw, stride=1, padding=0, dilation=1, groups=1, bias=True):
    return Case(name, n, cin, cout, h, w, kh, kw, stride, padding, dilation, groups, bias)


CASES = [
    # kernels and channel counts
    C("1x1", 1, 3, 5, 6, 7, 1, 1),
    C("1x1_c20_c24_batch2", 2, 20, 24, 4, 5, 1, 1),
    C("1x1_s2", 2, 6, 4, 7, 8, 1, 1, stride=2),                 # skips input pixels: zero input grad there
    C("3x3_c1", 1, 1, 1, 5, 5, 3, 3),
    C("3x3_p1_batch2", 2, 3, 4, 8, 8, 3, 3, padding=1),
    C("3x3_c16", 1, 16, 16, 6, 6, 3, 3, padding=1),            # a SIMD width exactly
    C("3x3_c17_c15", 2, 17, 15, 5, 6, 3, 3, padding=1),         # one over, one under
    C("3x3_c8_c32", 1, 8, 32, 5, 5, 3, 3, padding=1),           # two SIMD widths of output channels
    C("3x3_c7_c33_nobias", 1, 7, 33, 4, 7, 3, 3, bias=False),
    C("3x3_c32_c20_k288", 1, 32, 20, 6, 6, 3, 3, padding=1),    # reduction 288: over one 256 block
    C("1x1_c300_c290", 1, 300, 290, 5, 6, 1, 1),               # reduction and output channels over a block
    C("3x3_out_w16", 1, 4, 6, 3, 18, 3, 3),                     # output width a SIMD width
    C("3x3_out_w17", 2, 3, 5, 4, 19, 3, 3),
    C("5x5_s2_p2", 2, 4, 6, 11, 9, 5, 5, stride=2, padding=2),
    C("7x7_s2_p3", 1, 3, 8, 14, 13, 7, 7, stride=2, padding=3),  # ResNet stem, small
    C("11x11_s4_p2", 1, 3, 4, 15, 15, 11, 11, stride=4, padding=2),  # AlexNet stem, small
    C("1x7_p03", 2, 4, 5, 6, 9, 1, 7, padding=(0, 3)),
    C("7x1_p30", 1, 4, 5, 9, 6, 7, 1, padding=(3, 0)),
    C("3x5_s12_p12", 1, 3, 4, 7, 9, 3, 5, stride=(1, 2), padding=(1, 2)),
    # strides and dilations
    C("3x3_s4_p1", 2, 3, 5, 13, 11, 3, 3, stride=4, padding=1),
    C("2x2_s3", 1, 3, 4, 8, 9, 2, 2, stride=3),                 # stride > kernel: gaps
    C("1x1_s8_single_output", 2, 3, 4, 5, 6, 1, 1, stride=8),   # stride > input: one output pixel
    C("3x3_d2_p2", 1, 3, 4, 9, 9, 3, 3, dilation=2, padding=2),
    C("3x3_d21_p21", 1, 3, 4, 9, 8, 3, 3, dilation=(2, 1), padding=(2, 1)),
    C("3x3_d2_s2_p1", 2, 4, 4, 10, 11, 3, 3, stride=2, dilation=2, padding=1),
    # groups
    C("3x3_g2", 2, 4, 6, 6, 7, 3, 3, padding=1, groups=2),
    C("1x1_g2", 1, 6, 4, 5, 5, 1, 1, groups=2),
    C("5x5_g3_s2_d12_asym", 1, 9, 6, 11, 10, 5, 5, stride=2, dilation=(1, 2), groups=3,
      padding=((1, 2), (0, 3))),
    C("3x3_depthwise", 2, 8, 8, 6, 6, 3, 3, padding=1, groups=8),
    C("3x3_depthwise_c17_s2", 1, 17, 17, 7, 8, 3, 3, stride=2, padding=1, groups=17),
    C("5x5_depthwise_c16_same", 1, 16, 16, 6, 7, 5, 5, padding="same", groups=16),
    C("3x3_depthwise_mult2", 1, 5, 10, 6, 6, 3, 3, padding=1, groups=5),
    C("7x7_depthwise_s2_p3_nobias", 1, 3, 3, 9, 9, 7, 7, stride=2, padding=3, groups=3, bias=False),
    # padding forms
    C("same_3x3_s1", 1, 3, 4, 7, 6, 3, 3, padding="same"),
    C("same_3x3_s2_even", 2, 3, 4, 8, 8, 3, 3, stride=2, padding="same"),    # (0, 1): extra at the bottom
    C("same_5x5_s2_odd", 1, 3, 4, 9, 7, 5, 5, stride=2, padding="same"),
    C("same_4x4_s1", 1, 2, 3, 6, 5, 4, 4, padding="same"),                   # even kernel: (1, 2)
    C("same_2x2_s2", 1, 3, 2, 7, 6, 2, 2, stride=2, padding="same"),         # (0, 1) and (0, 0)
    C("same_3x3_d2_s2", 1, 3, 4, 9, 8, 3, 3, stride=2, dilation=2, padding="same"),
    C("same_1x7_s12", 1, 2, 3, 5, 9, 1, 7, stride=(1, 2), padding="same"),
    C("same_4x4_s4", 1, 3, 4, 9, 10, 4, 4, stride=4, padding="same"),
    C("valid_3x3", 1, 3, 4, 6, 7, 3, 3, padding="valid"),
    C("asym_pad", 2, 3, 4, 5, 6, 3, 3, padding=((1, 2), (0, 3))),
    C("asym_pad_s2", 1, 3, 4, 7, 6, 3, 3, stride=2, padding=((0, 1), (2, 0))),
    C("pad_larger_than_kernel", 1, 2, 3, 4, 4, 3, 3, padding=3),           # outputs that see only padding
    # inputs as small as the kernel
    C("input_eq_kernel_3x3", 2, 3, 4, 3, 3, 3, 3),
    C("input_eq_kernel_7x7", 1, 3, 5, 7, 7, 7, 7),
    C("input_eq_kernel_11x11_c1", 1, 1, 2, 11, 12, 11, 11),
    C("input_eq_dilated_kernel", 1, 3, 4, 5, 5, 3, 3, dilation=2),
    C("input_1x1_p1", 1, 3, 4, 1, 1, 3, 3, padding=1),
    C("input_2x3_p1_s2", 1, 2, 3, 2, 3, 3, 3, stride=2, padding=1),
]
CASE_IDS = [c.name for c in CASES]


def conv_kwargs(case):
    return dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups)


def make_conv_inputs(case, dtype, *key):
    rng = rng_for(case.name, np.dtype(dtype).name, *key)
    x = randn(rng, (case.n, case.cin, case.h, case.w), dtype)
    w = randn(rng, (case.cout, case.cin // case.groups, case.kh, case.kw), dtype)
    b = randn(rng, (case.cout,), dtype) if case.bias else None
    oh, ow = conv2d_output_hw((case.h, case.w), (case.kh, case.kw), case.stride, case.padding, case.dilation)
    g = randn(rng, (case.n, case.cout, oh, ow), dtype)
    return x, w, b, g


def test_cases_cover_the_grid():
    """The case list really covers what the module docstring promises (so a later edit of the
    list cannot silently drop a value)."""
    def has(pred):
        return any(pred(c) for c in CASES)

    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    assert has(lambda c: c.n == 1) and has(lambda c: c.n > 1)
    for ch in (1, 3, 15, 16, 17, 32, 33):
        assert has(lambda c: ch in (c.cin, c.cout)), ch
    for k in [(1, 1), (3, 3), (5, 5), (7, 7), (11, 11), (1, 7), (7, 1), (3, 5)]:
        assert has(lambda c: (c.kh, c.kw) == k), k
    for s in [(1, 1), (2, 2), (4, 4), (1, 2)]:
        assert has(lambda c: pair(c.stride) == s), s
    for d in [(1, 1), (2, 2), (2, 1)]:
        assert has(lambda c: pair(c.dilation) == d), d
    assert has(lambda c: c.groups == 2) and has(lambda c: c.groups == c.cin == c.cout > 1)
    assert has(lambda c: c.padding == "same" and pair(c.stride) == (2, 2))
    assert has(lambda c: c.padding == "valid")
    assert has(lambda c: isinstance(c.padding, tuple) and isinstance(c.padding[0], tuple))
    assert has(lambda c: (c.h, c.w) == (c.kh, c.kw) and c.padding == 0)
    assert has(lambda c: not c.bias)
    # "same" really is asymmetric somewhere in the list.
    assert has(lambda c: c.padding == "same" and len(set(resolve_padding2d(
        "same", (c.h, c.w), (c.kh, c.kw), c.stride, c.dilation)[:2])) == 2)


# ---- the checker itself ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_error_bound_rejects_wrong_convolutions(dtype, assert_conv2d_close, assert_conv2d_backward_close):
    """The bound accepts the reference rounded to the working dtype and rejects convolutions that
    are wrong the ways a kernel goes wrong: a kernel tap missing, the kernel flipped
    (convolution instead of correlation), padding moved by one pixel, one output channel from
    the wrong group, outputs shifted by one, one element off by 0.1% of its scale; and
    gradients with one batch element missing or one tap missing."""
    case = C("bound", 2, 4, 6, 7, 8, 3, 3, padding=1, groups=2)
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype)
    good = conv2d_ref(x, w, b, **kw).astype(dtype)
    assert_conv2d_close(good, x, w, b, **kw)

    w_no_tap = w.copy()
    w_no_tap[:, :, 1, 2] = 0
    mixed = good.copy()
    mixed[:, 0] = good[:, 3]
    perturbed = good.copy()
    perturbed[1, 2, 3, 4] += dtype(1e-3 * conv2d_abs_ref(x, w, b, **kw)[1, 2, 3, 4])
    wrong = {
        "missing tap": conv2d_ref(x, w_no_tap, b, **kw),
        "flipped kernel": conv2d_ref(x, w[:, :, ::-1, ::-1], b, **kw),
        "padding moved": conv2d_ref(x, w, b, **{**kw, "padding": ((0, 2), (1, 1))}),
        "wrong group": mixed,
        "shifted": np.roll(good, 1, axis=3),
        "one element perturbed": perturbed,
    }
    for name, bad in wrong.items():
        with pytest.raises(AssertionError, match="outside the error bound"):
            assert_conv2d_close(np.ascontiguousarray(bad, dtype=dtype), x, w, b, **kw)

    gx, gw, gb = (r.astype(dtype) for r in conv2d_backward_ref(g, x, w, **kw))
    assert_conv2d_backward_close((gx, gw, gb), g, x, w, **kw)
    _, gw_one_image, gb_one_image = conv2d_backward_ref(g[:1], x[:1], w, **kw)
    gx_no_tap, _, _ = conv2d_backward_ref(g, x, w_no_tap, **kw)
    for bad in [(gx, gw_one_image.astype(dtype), gb), (gx, gw, gb_one_image.astype(dtype)),
                (gx_no_tap.astype(dtype), gw, gb)]:
        with pytest.raises(AssertionError, match="outside the error bound"):
            assert_conv2d_backward_close(bad, g, x, w, **kw)
    with pytest.raises(AssertionError, match="was not asked for"):
        assert_conv2d_backward_close((gx, gw, gb), g, x, w, flags=(True, True, False), **kw)


def test_error_bound_rejects_a_perturbed_fastconv_result(assert_conv2d_close, assert_conv2d_backward_close):
    """The same, on the library's own output: accepted as is, rejected after one element moves."""
    case = CASES[CASE_IDS.index("3x3_c17_c15")]
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, np.float32)
    y = F.conv2d(x, w, b, **kw)
    assert_conv2d_close(y, x, w, b, **kw)
    scale = conv2d_abs_ref(x, w, b, **kw)
    y[0, 7, 2, 3] += np.float32(1e-4 * scale[0, 7, 2, 3])
    with pytest.raises(AssertionError, match="outside the error bound"):
        assert_conv2d_close(y, x, w, b, **kw)

    grads = F.conv2d_backward(g, x, w, **kw)
    assert_conv2d_backward_close(grads, g, x, w, **kw)
    gx, gw, gb = (a.copy() for a in grads)
    gw[3, 5, 1, 1] += np.float32(1e-4 * conv2d_backward_abs_ref(g, x, w, **kw)[1][3, 5, 1, 1])
    with pytest.raises(AssertionError, match="grad_weight.*outside the error bound"):
        assert_conv2d_backward_close((gx, gw, gb), g, x, w, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_error_bound_rejects_wrong_transposed_convolutions(dtype, assert_conv_transpose2d_close,
                                                           assert_conv_transpose2d_backward_close):
    """The transposed checkers: the rounded reference passes; the output cropped at the wrong
    offset, the kernel flipped, or a gradient with one tap missing do not."""
    from reference import conv_transpose2d_backward_ref, conv_transpose2d_ref

    rng = rng_for("tbound", np.dtype(dtype).name)
    kw = dict(stride=2, padding=1, output_padding=1, groups=1, dilation=1)
    x, w, b = randn(rng, (2, 3, 4, 4), dtype), randn(rng, (3, 5, 3, 3), dtype), randn(rng, (5,), dtype)
    good = conv_transpose2d_ref(x, w, b, **kw)
    assert_conv_transpose2d_close(good.astype(dtype), x, w, b, **kw)
    shifted = conv_transpose2d_ref(x, w, b, **{**kw, "padding": 0})[:, :, 1:9, :8]   # cropped at (1, 0)
    for bad in (shifted, conv_transpose2d_ref(x, w[:, :, ::-1, ::-1], b, **kw)):
        with pytest.raises(AssertionError, match="outside the error bound"):
            assert_conv_transpose2d_close(np.ascontiguousarray(bad, dtype=dtype), x, w, b, **kw)
    g = randn(rng, good.shape, dtype)
    grads = [r.astype(dtype) for r in conv_transpose2d_backward_ref(g, x, w, **kw)]
    assert_conv_transpose2d_backward_close(tuple(grads), g, x, w, **kw)
    w_no_tap = w.copy()
    w_no_tap[:, :, 0, 1] = 0
    grads[0] = conv_transpose2d_backward_ref(g, x, w_no_tap, **kw)[0].astype(dtype)
    with pytest.raises(AssertionError, match="grad_x.*outside the error bound"):
        assert_conv_transpose2d_backward_close(tuple(grads), g, x, w, **kw)


# ---- conv2d: forward and backward over the grid -------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv2d_forward(isa, case, algorithm, dtype, assert_conv2d_close):
    kw = conv_kwargs(case)
    x, w, b, _ = make_conv_inputs(case, dtype)
    copies = [a.copy() for a in (x, w, b) if a is not None]
    y = F.conv2d(x, w, b, algorithm=algorithm, **kw)
    assert_conv2d_close(y, x, w, b, **kw, what=f"conv2d {case.name} {algorithm} {isa}")
    for a, a0 in zip([a for a in (x, w, b) if a is not None], copies):
        np.testing.assert_array_equal(a, a0, err_msg="conv2d modified an input")
        assert not np.shares_memory(y, a)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv2d_backward(isa, case, algorithm, dtype, assert_conv2d_backward_close):
    kw = conv_kwargs(case)
    x, w, _, g = make_conv_inputs(case, dtype)
    copies = [a.copy() for a in (g, x, w)]
    grads = F.conv2d_backward(g, x, w, algorithm=algorithm, **kw)
    assert_conv2d_backward_close(grads, g, x, w, **kw, what=f"conv2d_backward {case.name} {algorithm} {isa}")
    for a, a0 in zip((g, x, w), copies):
        np.testing.assert_array_equal(a, a0, err_msg="conv2d_backward modified an input")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_conv2d_direct_and_im2col_agree(case, dtype, assert_close):
    """Both algorithms, forward and backward, on the default ISA: each within the rounding bound
    of the reference, hence within twice that bound of each other."""
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype, "agree")
    y_d = F.conv2d(x, w, b, algorithm="direct", **kw)
    y_i = F.conv2d(x, w, b, algorithm="im2col", **kw)
    k = case.cin // case.groups * case.kh * case.kw + 1
    assert_close(y_d, y_i.astype(np.float64), conv2d_abs_ref(x, w, b, **kw), 2 * k, what="direct vs im2col")
    gd = F.conv2d_backward(g, x, w, algorithm="direct", **kw)
    gi = F.conv2d_backward(g, x, w, algorithm="im2col", **kw)
    scales = conv2d_backward_abs_ref(g, x, w, **kw)
    npix = g.shape[0] * g.shape[2] * g.shape[3]
    for name, a, c, s, n in zip(("grad_x", "grad_weight", "grad_bias"), gd, gi, scales,
                                (case.cout // case.groups * case.kh * case.kw, npix, npix)):
        assert_close(a, c.astype(np.float64), s, 2 * n, what=f"{name}: direct vs im2col")


# The direct kernels' padded-row path (unit stride along rows, csrc/conv/conv_direct.inc): whole
# planes per (image, group) job, bands of rows when there are few jobs, channel blocks of 8, 4 and
# 1, one- and two-vector tiles, row strides, and the fallback to in-place reads when a band's
# padded rows would not fit the per-thread buffer (96 channels x 3 rows x 2134 > 2^19 elements).
PADDED_ROW_CASES = [
    C("bands_batch1", 1, 6, 16, 19, 40, 3, 3, padding=1),
    C("groups_of_4", 3, 16, 16, 13, 21, 3, 3, padding=1, groups=4),
    C("one_channel_out", 2, 5, 1, 9, 33, 3, 3, padding=1),
    C("narrow_rows_dil2", 2, 5, 3, 11, 9, 3, 5, padding=((2, 1), (3, 0)), dilation=2),
    C("row_stride_only", 2, 4, 8, 17, 18, 3, 3, stride=(2, 1), padding=1),
    C("wide_rows_fallback", 1, 96, 2, 3, 2100, 3, 3, padding=(0, 1)),
]


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("case", PADDED_ROW_CASES, ids=[c.name for c in PADDED_ROW_CASES])
def test_conv2d_direct_padded_rows(isa, case, nthreads, assert_conv2d_close, assert_conv2d_backward_close):
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, np.float32, "padded")
    with fastconv.threads(nthreads):
        y = F.conv2d(x, w, b, algorithm="direct", **kw)
        grads = F.conv2d_backward(g, x, w, algorithm="direct", **kw)
    what = f"direct {case.name} {isa} {nthreads} threads"
    assert_conv2d_close(y, x, w, b, **kw, what=what)
    assert_conv2d_backward_close(grads, g, x, w, **kw, what=what)


# The im2col weight gradient lays each thread's images side by side along the GEMM's k: image
# boundaries inside a k block (7 images x 49 pixels on one thread is two blocks of 172), several
# images per thread, groups, a stride phase, and fewer images than threads.
WGRAD_BATCH_CASES = [
    C("wgrad_7x7_planes", 7, 6, 10, 7, 7, 3, 3, padding=1),
    C("wgrad_groups_s2", 5, 8, 6, 11, 9, 3, 3, stride=2, padding=1, groups=2),
    C("wgrad_1x1", 4, 9, 5, 6, 5, 1, 1),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("nthreads", [1, 2, 3, 8])
@pytest.mark.parametrize("case", WGRAD_BATCH_CASES, ids=[c.name for c in WGRAD_BATCH_CASES])
def test_conv2d_weight_grad_images_along_k(isa, case, nthreads, dtype, assert_conv2d_backward_close):
    kw = conv_kwargs(case)
    x, w, _, g = make_conv_inputs(case, dtype, "wgrad")
    with fastconv.threads(nthreads):
        grads = F.conv2d_backward(g, x, w, algorithm="im2col", input_grad=False, **kw)
    assert_conv2d_backward_close(grads, g, x, w, **kw, flags=(False, True, True), what=f"im2col wgrad {case.name} {isa} {nthreads} threads")


def test_conv2d_direct_padded_rows_infinite_weight(isa):
    """An infinite weight times the zero padding is NaN, as in the im2col GEMM: the padded-row
    tiles must read the padding rows then, not skip them."""
    x = np.ones((1, 2, 5, 20), np.float32)
    w = np.ones((8, 2, 3, 3), np.float32)
    w[3, 1, 0, 0] = np.inf
    y_d = F.conv2d(x, w, padding=1, algorithm="direct")
    y_i = F.conv2d(x, w, padding=1, algorithm="im2col")
    np.testing.assert_array_equal(np.isnan(y_d), np.isnan(y_i))
    assert np.isnan(y_d[0, 3]).any() and not np.isnan(y_d[0, :3]).any()


@pytest.mark.parametrize("where", ["x", "dy"])
def test_conv2d_direct_weight_grad_non_finite(isa, where):
    """A NaN or infinity in x or dy gives the weight gradient the same NaN/inf pattern as the im2col
    GEMM (the padded-row kernel finds it while copying and hands over to the in-place kernel)."""
    rng = rng_for("wgrad-nonfinite", where)
    x = rng.standard_normal((2, 4, 9, 20)).astype(np.float32)
    w = rng.standard_normal((8, 2, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 8, 9, 20)).astype(np.float32)
    (x if where == "x" else g)[1, 1, 4, 7] = np.inf
    kw = dict(padding=1, groups=2)
    gw_d = F.conv2d_backward(g, x, w, algorithm="direct", input_grad=False, bias_grad=False, **kw)[1]
    gw_i = F.conv2d_backward(g, x, w, algorithm="im2col", input_grad=False, bias_grad=False, **kw)[1]
    np.testing.assert_array_equal(np.isnan(gw_d), np.isnan(gw_i))
    np.testing.assert_array_equal(np.isinf(gw_d), np.isinf(gw_i))
    assert not np.isfinite(gw_i).all() and np.isfinite(gw_i).any()


# The im2col GEMM's shifted-tap path (outputs 24 or more wide, taps per output at least twice the
# output channels, csrc/conv/conv_im2col.inc), whose B rows the AVX-512 float32 kernel reads in
# place: partial last panels, output channels not a multiple of the 8-row tile, reductions over
# several K blocks, source rows used in place (no padding), stride phases, dilation, batch 1 bands.
SHIFT_CASES = [
    C("shift_c20_c13", 2, 20, 13, 26, 50, 3, 3, padding=1),
    C("shift_two_k_blocks", 1, 40, 9, 12, 30, 3, 3, padding=1),
    C("shift_rows_in_place", 2, 16, 8, 14, 40, 3, 3),
    C("shift_stride2", 1, 12, 6, 30, 60, 3, 3, stride=2, padding=1),
    C("shift_5x5_dil2", 1, 8, 5, 20, 40, 5, 5, padding=4, dilation=2, bias=False),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", SHIFT_CASES, ids=[c.name for c in SHIFT_CASES])
def test_conv2d_shifted_taps(isa, case, dtype, assert_conv2d_close):
    kw = conv_kwargs(case)
    x, w, b, _ = make_conv_inputs(case, dtype, "shift")
    oh, ow = conv2d_output_hw((case.h, case.w), (case.kh, case.kw), case.stride, case.padding, case.dilation)
    assert ow >= 24 and case.cin * case.kh * case.kw >= 2 * case.cout  # the path's own condition
    for nthreads in (1, 2):
        with fastconv.threads(nthreads):
            y = F.conv2d(x, w, b, algorithm="im2col", **kw)
        assert_conv2d_close(y, x, w, b, **kw, what=f"shifted taps {case.name} {isa} {nthreads} threads")
    if b is not None:  # the epilogue fused into the in-place kernel: bias and ReLU
        y = F.conv2d(x, w, b, algorithm="im2col", activation="relu", **kw)
        np.testing.assert_allclose(y, np.maximum(F.conv2d(x, w, b, algorithm="im2col", **kw), 0), rtol=0, atol=0)


# Layer shapes of real networks (batch and spatial size cut down), big enough to cross the GEMM's
# cache blocks (K over KC = 256, M over MC, many micro-tiles) and to be split over threads.
# Slow: run with --runslow.
SLOW_CASES = [
    C("resnet_3x3_c64", 2, 64, 64, 28, 28, 3, 3, padding=1),
    C("alexnet_11x11_s4", 2, 3, 64, 63, 63, 11, 11, stride=4, padding=2),
    C("resnet_stem_7x7_s2", 1, 3, 64, 64, 64, 7, 7, stride=2, padding=3),
    C("mobilenet_depthwise_s2", 2, 96, 96, 28, 28, 3, 3, stride=2, padding=1, groups=96),
    C("pointwise_c300_c290", 1, 300, 290, 14, 14, 1, 1),
    C("inception_1x7_same", 1, 40, 48, 17, 17, 1, 7, padding="same"),
    C("resnext_g32_s2", 1, 128, 128, 14, 14, 3, 3, stride=2, padding=1, groups=32),
]


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", SLOW_CASES, ids=[c.name for c in SLOW_CASES])
def test_conv2d_network_layers(isa, case, algorithm, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype, "slow")
    assert_conv2d_close(F.conv2d(x, w, b, algorithm=algorithm, **kw), x, w, b, **kw)
    assert_conv2d_backward_close(F.conv2d_backward(g, x, w, algorithm=algorithm, **kw), g, x, w, **kw)


# ---- conv_transpose2d ---------------------------------------------------------------------------

TCase = namedtuple("TCase", "name n cin cout h w kh kw stride padding output_padding groups dilation bias")


def T(name, n, cin, cout, h, w, kh, kw, stride=1, padding=0, output_padding=0, groups=1, dilation=1, bias=True):
    return TCase(name, n, cin, cout, h, w, kh, kw, stride, padding, output_padding, groups, dilation, bias)


TCASES = [
    T("1x1_nobias", 2, 5, 3, 3, 4, 1, 1, bias=False),
    T("3x3", 1, 3, 4, 4, 5, 3, 3),
    T("3x3_s2_p1_op1", 2, 4, 3, 4, 4, 3, 3, stride=2, padding=1, output_padding=1),
    T("4x4_s2_p1", 1, 8, 4, 3, 4, 4, 4, stride=2, padding=1),           # DCGAN upsampling
    T("2x2_s2", 2, 4, 6, 3, 3, 2, 2, stride=2),                           # U-Net upsampling
    T("2x2_s3_op1_gaps", 1, 3, 4, 3, 3, 2, 2, stride=3, output_padding=1),  # outputs no input reaches
    T("3x3_s12_p10_op01", 1, 3, 5, 4, 3, 3, 3, stride=(1, 2), padding=(1, 0), output_padding=(0, 1)),
    T("3x3_s3_op2", 1, 2, 3, 3, 3, 3, 3, stride=3, output_padding=2),
    T("1x3_s2_p01_op1", 1, 3, 2, 3, 4, 1, 3, stride=2, padding=(0, 1), output_padding=1),
    T("3x3_g2_p1", 1, 4, 6, 4, 4, 3, 3, padding=1, groups=2),
    T("3x3_depthwise_s2", 1, 6, 6, 4, 5, 3, 3, stride=2, padding=1, output_padding=1, groups=6),
    T("3x3_d2_p1", 1, 3, 4, 4, 4, 3, 3, dilation=2, padding=1),
    T("3x3_d3_op2", 1, 2, 3, 3, 4, 3, 3, dilation=3, output_padding=2),  # output_padding >= stride, < dilation
    T("3x3_d21_s2_op1", 2, 3, 4, 3, 4, 3, 3, stride=2, dilation=(2, 1), output_padding=(1, 1)),
    T("5x5_s2_p2_op1_c17_c16", 1, 17, 16, 3, 3, 5, 5, stride=2, padding=2, output_padding=1),
    T("7x7_s4_p3_op3", 1, 2, 3, 2, 2, 7, 7, stride=4, padding=3, output_padding=3),
    T("input_1x1", 1, 3, 4, 1, 1, 3, 3),
    T("crops_to_1x1", 1, 3, 4, 1, 1, 3, 3, padding=1),
]
TCASE_IDS = [c.name for c in TCASES]


def tconv_kwargs(case):
    return dict(stride=case.stride, padding=case.padding, output_padding=case.output_padding, groups=case.groups,
                dilation=case.dilation)


def make_tconv_inputs(case, dtype, *key):
    rng = rng_for("T", case.name, np.dtype(dtype).name, *key)
    x = randn(rng, (case.n, case.cin, case.h, case.w), dtype)
    w = randn(rng, (case.cin, case.cout // case.groups, case.kh, case.kw), dtype)
    b = randn(rng, (case.cout,), dtype) if case.bias else None
    oh, ow = conv_transpose2d_output_hw((case.h, case.w), (case.kh, case.kw), case.stride, case.padding,
                                        case.output_padding, case.dilation)
    g = randn(rng, (case.n, case.cout, oh, ow), dtype)
    return x, w, b, g


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", TCASES, ids=TCASE_IDS)
def test_conv_transpose2d_forward(isa, case, algorithm, dtype, assert_conv_transpose2d_close):
    kw = tconv_kwargs(case)
    x, w, b, _ = make_tconv_inputs(case, dtype)
    y = F.conv_transpose2d(x, w, b, algorithm=algorithm, **kw)
    assert_conv_transpose2d_close(y, x, w, b, **kw, what=f"conv_transpose2d {case.name} {algorithm} {isa}")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", TCASES, ids=TCASE_IDS)
def test_conv_transpose2d_backward(isa, case, algorithm, dtype, assert_conv_transpose2d_backward_close):
    kw = tconv_kwargs(case)
    x, w, _, g = make_tconv_inputs(case, dtype)
    grads = F.conv_transpose2d_backward(g, x, w, algorithm=algorithm, **kw)
    assert_conv_transpose2d_backward_close(grads, g, x, w, **kw,
                                           what=f"conv_transpose2d_backward {case.name} {algorithm} {isa}")


@pytest.mark.parametrize("flags", [(i, w, b) for i in (True, False) for w in (True, False) for b in (True, False)],
                         ids=lambda f: "".join("xwb"[i] if on else "-" for i, on in enumerate(f)))
def test_conv_transpose2d_backward_flags(flags, assert_conv_transpose2d_backward_close):
    case = TCASES[TCASE_IDS.index("3x3_s2_p1_op1")]
    kw = tconv_kwargs(case)
    x, w, _, g = make_tconv_inputs(case, np.float64)
    i, wg, bg = flags
    grads = F.conv_transpose2d_backward(g, x, w, input_grad=i, weight_grad=wg, bias_grad=bg, **kw)
    assert_conv_transpose2d_backward_close(grads, g, x, w, flags=flags, **kw)


def test_conv_transpose2d_is_the_input_gradient_of_conv2d(assert_close):
    """conv_transpose2d(g, w) with conv2d's stride/padding/dilation/groups is conv2d's grad_x
    (output_padding chosen to restore the input size), on the library's own results."""
    rng = rng_for("adjoint")
    x = randn(rng, (2, 6, 9, 8), np.float64)
    w = randn(rng, (4, 3, 3, 3), np.float64)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    g = randn(rng, (2, 4, 5, 4), np.float64)
    gx = F.conv2d_backward(g, x, w, weight_grad=False, bias_grad=False, **kw)[0]
    # (5-1)*2 - 2 + 2 + 1 = 9 rows; (4-1)*2 - 2 + 2 + 1 = 7 columns, +1 output_padding = 8
    y = F.conv_transpose2d(g, w, None, stride=2, padding=1, output_padding=(0, 1), groups=2, dilation=1)
    assert y.shape == x.shape
    assert_close(y, gx, conv2d_backward_abs_ref(g, x, w, **kw)[0], 2 * 2 * 9, what="transpose vs grad_x")


# ---- argument forms ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv2d_equivalent_argument_forms(dtype):
    """int, pair, nested pair, numpy integers and "valid" spell the same convolution, bit for bit."""
    rng = rng_for("forms", np.dtype(dtype).name)
    x, w, b = randn(rng, (2, 3, 9, 8), dtype), randn(rng, (4, 3, 3, 3), dtype), randn(rng, (4,), dtype)
    base = F.conv2d(x, w, b, stride=2, padding=1, dilation=2)
    for kw in [dict(stride=(2, 2), padding=(1, 1), dilation=(2, 2)),
               dict(stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(2, 2)),
               dict(stride=np.int64(2), padding=np.int32(1), dilation=np.int64(2))]:
        np.testing.assert_array_equal(F.conv2d(x, w, b, **kw), base, err_msg=str(kw))
    np.testing.assert_array_equal(F.conv2d(x, w, b, padding="valid"), F.conv2d(x, w, b, padding=0))
    np.testing.assert_array_equal(F.conv2d(x, w, b, padding="valid"), F.conv2d(x, w, b))
    # "same" at stride 1 with an odd kernel is padding (k-1)/2 * dilation.
    np.testing.assert_array_equal(F.conv2d(x, w, b, padding="same", dilation=2), F.conv2d(x, w, b, padding=2,
                                                                                          dilation=2))


@pytest.mark.parametrize("stride", [1, 2, 3, 4, (2, 1)])
def test_conv2d_same_output_size(stride):
    """padding="same" gives ceil(in / stride) at any stride (Keras/TF convention), for odd and
    even kernels and inputs smaller than the kernel."""
    s = (stride, stride) if isinstance(stride, int) else stride
    for hw in [(7, 7), (8, 8), (1, 1), (9, 2), (5, 16)]:
        for k in [1, 2, 3, 4, 5]:
            x = np.ones((1, 1) + hw, np.float32)
            w = np.ones((1, 1, k, k), np.float32)
            y = F.conv2d(x, w, padding="same", stride=stride)
            assert y.shape[2:] == (-(-hw[0] // s[0]), -(-hw[1] // s[1])), (hw, k)
            np.testing.assert_array_equal(y, conv2d_ref(x, w, padding="same", stride=stride).astype(np.float32),
                                          err_msg=f"hw={hw} k={k}")


# ---- gradients not asked for, unbatched input -----------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("flags", [(i, w, b) for i in (True, False) for w in (True, False) for b in (True, False)],
                         ids=lambda f: "".join("xwb"[i] if on else "-" for i, on in enumerate(f)))
def test_conv2d_backward_flags(flags, algorithm, assert_conv2d_backward_close):
    case = CASES[CASE_IDS.index("5x5_g3_s2_d12_asym")]
    kw = conv_kwargs(case)
    x, w, _, g = make_conv_inputs(case, np.float32, "flags")
    i, wg, bg = flags
    grads = F.conv2d_backward(g, x, w, input_grad=i, weight_grad=wg, bias_grad=bg, algorithm=algorithm, **kw)
    assert_conv2d_backward_close(grads, g, x, w, flags=flags, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_unbatched_input(isa, algorithm, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    """A 3-D (C, H, W) input gives a 3-D output (and a 3-D grad_x), equal to the batch-of-one result."""
    case = CASES[CASE_IDS.index("5x5_g3_s2_d12_asym")]
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype, "unbatched")
    x3, g3 = x[0], g[0]
    y = F.conv2d(x3, w, b, algorithm=algorithm, **kw)
    assert y.ndim == 3
    assert_conv2d_close(y, x3, w, b, **kw)
    np.testing.assert_array_equal(y, F.conv2d(x, w, b, algorithm=algorithm, **kw)[0])
    grads = F.conv2d_backward(g3, x3, w, algorithm=algorithm, **kw)
    assert grads[0].shape == x3.shape
    assert_conv2d_backward_close(grads, g3, x3, w, **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv_transpose2d_unbatched_input(dtype, assert_conv_transpose2d_close,
                                          assert_conv_transpose2d_backward_close):
    case = TCASES[TCASE_IDS.index("3x3_s2_p1_op1")]
    kw = tconv_kwargs(case)
    x, w, b, g = make_tconv_inputs(case, dtype, "unbatched")
    y = F.conv_transpose2d(x[0], w, b, **kw)
    assert y.ndim == 3
    assert_conv_transpose2d_close(y, x[0], w, b, **kw)
    grads = F.conv_transpose2d_backward(g[0], x[0], w, **kw)
    assert grads[0].shape == x[0].shape
    assert_conv_transpose2d_backward_close(grads, g[0], x[0], w, **kw)


# ---- layouts --------------------------------------------------------------------------------------

def relayout(a, layout):
    """The values of a (C-contiguous) in another memory layout."""
    if layout == "C":
        return a
    if layout == "F":
        r = np.asfortranarray(a)
        assert a.ndim == 1 or a.size <= 1 or not r.flags.c_contiguous or a.shape.count(1) >= a.ndim - 1
        return r
    if layout == "channels_last":  # NHWC memory, NCHW view
        if a.ndim != 4:
            return np.asfortranarray(a)
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "sliced":  # every other element along the last axis, every third along the first
        if a.ndim == 1:
            big = np.full(2 * a.shape[0], np.nan, a.dtype)
            big[1::2] = a
            return big[1::2]
        big = np.full((3 * a.shape[0],) + a.shape[1:-1] + (2 * a.shape[-1],), np.nan, a.dtype)
        idx = (slice(None, None, 3),) + (slice(None),) * (a.ndim - 2) + (slice(1, None, 2),)
        big[idx] = a
        return big[idx]
    if layout == "reversed":  # negative strides on every axis
        return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[(slice(None, None, -1),) * a.ndim]
    if layout == "readonly":
        r = a.copy()
        r.flags.writeable = False
        return r
    if layout == "misaligned":  # element-multiple strides, data pointer one byte off
        buf = np.zeros(a.nbytes + 1, np.uint8)
        r = np.ndarray(a.shape, dtype=a.dtype, buffer=buf, offset=1)
        r[...] = a
        assert not r.flags.aligned or a.size == 0
        return r
    if layout == "broadcast":  # stride 0 along the first axis (all its entries equal)
        return np.broadcast_to(a[:1], a.shape)
    raise ValueError(layout)


LAYOUTS = ["F", "channels_last", "sliced", "reversed", "readonly", "misaligned", "broadcast"]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("which", ["x", "weight", "all"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv2d_input_layouts(layout, which, algorithm, dtype, assert_conv2d_close, assert_conv2d_backward_close):
    case = CASES[CASE_IDS.index("3x3_g2")]
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype, "layout")
    xs, ws, bs, gs = (relayout(a, layout) if which in (name, "all") else a
                      for name, a in (("x", x), ("weight", w), ("bias", b), ("grad_output", g)))
    x0, w0, b0, g0 = (np.array(a) for a in (xs, ws, bs, gs))   # the values actually passed
    y = F.conv2d(xs, ws, bs, algorithm=algorithm, **kw)
    assert_conv2d_close(y, x0, w0, b0, **kw)
    grads = F.conv2d_backward(gs, xs, ws, algorithm=algorithm, **kw)
    assert_conv2d_backward_close(grads, g0, x0, w0, **kw)
    for a, a0 in zip((xs, ws, bs, gs), (x0, w0, b0, g0)):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_conv_transpose2d_input_layouts(layout, dtype, assert_conv_transpose2d_close,
                                        assert_conv_transpose2d_backward_close):
    case = TCASES[TCASE_IDS.index("3x3_s2_p1_op1")]
    kw = tconv_kwargs(case)
    x, w, b, g = make_tconv_inputs(case, dtype, "layout")
    xs, ws, bs, gs = (relayout(a, layout) for a in (x, w, b, g))
    x0, w0, b0, g0 = (np.array(a) for a in (xs, ws, bs, gs))
    assert_conv_transpose2d_close(F.conv_transpose2d(xs, ws, bs, **kw), x0, w0, b0, **kw)
    assert_conv_transpose2d_backward_close(F.conv_transpose2d_backward(gs, xs, ws, **kw), g0, x0, w0, **kw)


# ---- out= -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_out(isa, algorithm, dtype, assert_conv2d_close):
    case = CASES[CASE_IDS.index("3x3_c17_c15")]
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype, "out")
    out = np.full(g.shape, np.nan, dtype)      # garbage in out must not leak into the result
    r = F.conv2d(x, w, b, out=out, algorithm=algorithm, **kw)
    assert_conv2d_close(out, x, w, b, **kw)
    r2 = F.conv2d(x, w, None, out=out, algorithm=algorithm, **kw)   # overwrites, not accumulates
    assert_conv2d_close(out, x, w, None, **kw)
    assert r is out and r2 is out, "conv2d(..., out=out) must return out itself"


def test_conv2d_out_view_of_a_bigger_array(assert_conv2d_close):
    """A C-contiguous out that is a slice of a bigger buffer: only its own elements change."""
    rng = rng_for("outview")
    x, w, b = randn(rng, (2, 3, 6, 6), np.float32), randn(rng, (4, 3, 3, 3), np.float32), randn(rng, (4,), np.float32)
    buf = np.full((4, 4, 4, 4), -7.0, np.float32)
    out = buf[1:3]
    assert out.flags.c_contiguous
    r = F.conv2d(x, w, b, out=out)
    assert_conv2d_close(buf[1:3], x, w, b)
    np.testing.assert_array_equal(buf[0], -7.0)
    np.testing.assert_array_equal(buf[3], -7.0)
    assert r is out


def test_conv2d_out_unbatched(assert_conv2d_close):
    rng = rng_for("out3d")
    x, w = randn(rng, (3, 6, 6), np.float64), randn(rng, (4, 3, 3, 3), np.float64)
    out = np.zeros((4, 4, 4), np.float64)
    r = F.conv2d(x, w, out=out)
    assert_conv2d_close(out, x, w)
    assert r is out


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_conv2d_out_misaligned(dtype, assert_conv2d_close):
    """A C-contiguous out whose data pointer is not element-aligned (legal in NumPy)."""
    rng = rng_for("misout", np.dtype(dtype).name)
    x, w, b = randn(rng, (2, 3, 6, 7), dtype), randn(rng, (5, 3, 3, 3), dtype), randn(rng, (5,), dtype)
    isz = np.dtype(dtype).itemsize
    buf = np.zeros(2 * 5 * 4 * 5 * isz + 1, np.uint8)
    out = np.ndarray((2, 5, 4, 5), dtype=dtype, buffer=buf, offset=1)
    assert out.flags.c_contiguous and not out.flags.aligned
    F.conv2d(x, w, b, out=out)
    assert_conv2d_close(np.array(out), x, w, b)


def _out_args(dtype=np.float32):
    rng = rng_for("outerr", np.dtype(dtype).name)
    return randn(rng, (2, 3, 6, 6), dtype), randn(rng, (4, 3, 3, 3), dtype), randn(rng, (4,), dtype)


@pytest.mark.parametrize("bad_shape", [(2, 4, 4, 5), (2, 4, 4), (1, 4, 4, 4), (2, 4, 16), (2, 3, 4, 4), (4, 4, 4)])
def test_conv2d_out_wrong_shape(bad_shape):
    x, w, b = _out_args()
    out = np.zeros(bad_shape, np.float32)
    with pytest.raises(ValueError, match="out"):
        F.conv2d(x, w, b, out=out)
    assert not out.any()


@pytest.mark.parametrize("bad_dtype", [np.float64, np.float16, np.int32])
def test_conv2d_out_wrong_dtype(bad_dtype):
    x, w, b = _out_args()
    out = np.zeros((2, 4, 4, 4), bad_dtype)
    with pytest.raises(TypeError, match="out"):
        F.conv2d(x, w, b, out=out)
    assert not out.any()


@pytest.mark.parametrize("kind", ["F", "strided", "channels_last", "reversed"])
def test_conv2d_out_not_c_contiguous(kind):
    x, w, b = _out_args()
    if kind == "F":
        out = np.zeros((2, 4, 4, 4), np.float32, order="F")
    elif kind == "strided":
        out = np.zeros((2, 4, 4, 8), np.float32)[..., ::2]
    elif kind == "channels_last":
        out = np.zeros((2, 4, 4, 4), np.float32).transpose(0, 2, 3, 1)
    else:
        out = np.zeros((2, 4, 4, 4), np.float32)[::-1]
    with pytest.raises(ValueError, match="out"):
        F.conv2d(x, w, b, out=out)
    assert not out.any()


def test_conv2d_out_read_only():
    x, w, b = _out_args()
    out = np.zeros((2, 4, 4, 4), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        F.conv2d(x, w, b, out=out)


@pytest.mark.parametrize("value", [[0.0] * 4, 3.0, "out"], ids=["list", "float", "str"])
def test_conv2d_out_not_an_array(value):
    x, w, b = _out_args()
    with pytest.raises(TypeError, match="out"):
        F.conv2d(x, w, b, out=value)


def test_conv2d_out_overlapping_an_input():
    """out may not share memory with x, weight or bias (the kernels read them while writing it)."""
    rng = rng_for("overlap")
    # 1x1 convolution with as many outputs as inputs: out could be x itself.
    x = randn(rng, (2, 4, 5, 5), np.float32)
    w = randn(rng, (4, 4, 1, 1), np.float32)
    x0 = x.copy()
    with pytest.raises(ValueError, match="out"):
        F.conv2d(x, w, out=x)
    np.testing.assert_array_equal(x, x0)
    # out overlapping part of x (both views of one buffer).
    buf = randn(rng, (3, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match="out"):
        F.conv2d(buf[:2], w, out=buf[1:])
    # out = the weight's (or the bias's) memory, reinterpreted.
    w2 = randn(rng, (2, 4, 3, 3), np.float32)          # 72 elements
    xs = randn(rng, (1, 4, 8, 11), np.float32)         # output (1, 2, 6, 9): 108 elements
    big = np.zeros(200, np.float32)
    big[:72] = w2.ravel()
    wv = big[:72].reshape(2, 4, 3, 3)
    with pytest.raises(ValueError, match="out"):
        F.conv2d(xs, wv, out=big[50:158].reshape(1, 2, 6, 9))
    bb = np.zeros(108, np.float32)
    with pytest.raises(ValueError, match="out"):
        F.conv2d(xs, w2, bb[:2], out=bb.reshape(1, 2, 6, 9))


def test_conv2d_out_adjacent_but_disjoint_is_fine(assert_conv2d_close):
    rng = rng_for("disjoint")
    buf = randn(rng, (4, 4, 5, 5), np.float64)
    x, out = buf[:2], buf[2:]
    w = randn(rng, (4, 4, 1, 1), np.float64)
    x0 = x.copy()
    r = F.conv2d(x, w, out=out)
    assert_conv2d_close(out, x0, w)
    np.testing.assert_array_equal(x, x0)
    assert r is out


# ---- threads --------------------------------------------------------------------------------------

def test_conv2d_from_several_python_threads(assert_conv2d_close, assert_conv2d_backward_close):
    """Several Python threads calling conv2d / conv2d_backward at once (the kernels release the
    GIL and share caches and workspaces): every result correct."""
    cases = [CASES[CASE_IDS.index(n)] for n in ("3x3_p1_batch2", "5x5_g3_s2_d12_asym", "3x3_depthwise_c17_s2",
                                               "same_3x3_s2_even", "1x1_c20_c24_batch2", "7x7_s2_p3")]
    inputs = [(c, dtype, make_conv_inputs(c, dtype, "threads")) for c in cases for dtype in DTYPES]
    errors, results = [], {}
    start = threading.Barrier(len(inputs))

    def work(i):
        case, _, (x, w, b, g) = inputs[i]
        kw = conv_kwargs(case)
        try:
            start.wait(timeout=30)
            for rep in range(4):
                algorithm = ALGORITHMS[(i + rep) % 3]
                results[i, rep] = (F.conv2d(x, w, b, algorithm=algorithm, **kw),
                                   F.conv2d_backward(g, x, w, algorithm=algorithm, **kw))
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
    for (i, rep), (y, grads) in results.items():
        case, dtype, (x, w, b, g) = inputs[i]
        kw = conv_kwargs(case)
        assert_conv2d_close(y, x, w, b, **kw, what=f"thread {i} rep {rep} {case.name}")
        assert_conv2d_backward_close(grads, g, x, w, **kw, what=f"thread {i} rep {rep} {case.name}")
    assert len(results) == 4 * len(inputs)


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_thread_counts(isa, nthreads, algorithm, assert_conv2d_close, assert_conv2d_backward_close):
    """fastconv's own thread count (1, 2, and 3 on this 2-core machine): results are right, on a
    problem big enough to be split (more pixels, channels and batch than the grid cases)."""
    rng = rng_for("nthreads", nthreads, algorithm)
    x = randn(rng, (3, 12, 20, 18), np.float32)
    w = randn(rng, (20, 6, 3, 3), np.float32)
    b = randn(rng, (20,), np.float32)
    kw = dict(stride=1, padding=1, dilation=1, groups=2)
    g = randn(rng, (3, 20, 20, 18), np.float32)
    with fastconv.threads(nthreads):
        y = F.conv2d(x, w, b, algorithm=algorithm, **kw)
        grads = F.conv2d_backward(g, x, w, algorithm=algorithm, **kw)
    assert_conv2d_close(y, x, w, b, **kw)
    assert_conv2d_backward_close(grads, g, x, w, **kw)


# ---- from a zero-bordered band (conv_im2col.inc, "Every tap's im2col row is the image shifted") --
#
# im2col runs layers whose output rows are at least 24 wide (and whose taps per output outnumber
# twice the output channels) from a band of source rows copied into a zero-bordered buffer, stride
# phases apart, on an output grid as wide as the buffer. These cases have such rows, every padding
# form (none at all: the source rows read in place), strides 2, 4 and (1, 2), dilation, groups, and
# enough input channels (16) that the data gradient of stride 1 takes the same path; 1-3 threads
# cut batch 1 into 1-3 bands.
SHIFT_CASES = [
    C("shift_3x3_s2_p1", 1, 6, 5, 7, 50, 3, 3, stride=2, padding=1),
    C("shift_7x7_s2_p3", 1, 3, 4, 9, 52, 7, 7, stride=2, padding=3),
    C("shift_3x3_s12_p1", 1, 4, 3, 6, 51, 3, 3, stride=(1, 2), padding=1),
    C("shift_11x11_s4_p2", 1, 3, 4, 13, 107, 11, 11, stride=4, padding=2),
    C("shift_3x3_s2_d2", 2, 4, 3, 8, 53, 3, 3, stride=2, padding=2, dilation=2),
    C("shift_same_s2", 1, 5, 4, 6, 49, 3, 3, stride=2, padding="same"),
    C("shift_3x3_p1", 1, 6, 5, 6, 26, 3, 3, padding=1),
    C("shift_5x5_valid_batch2", 2, 3, 4, 5, 30, 5, 5),                 # valid: rows read in place
    C("shift_3x3_rows_padded_only", 1, 3, 2, 7, 28, 3, 3, padding=(1, 0)),
    C("shift_3x5_asym_d21", 1, 4, 3, 9, 31, 3, 5, padding=((2, 0), (1, 3)), dilation=(2, 1)),
    C("shift_7x1_same", 1, 4, 4, 8, 25, 7, 1, padding="same"),
    C("shift_3x3_g2", 2, 8, 6, 5, 27, 3, 3, padding=1, groups=2),
    C("shift_3x3_c16_c8", 1, 16, 8, 5, 26, 3, 3, padding=1),            # data gradient too
    C("shift_3x3_c20_c16_d2_batch3", 3, 20, 16, 6, 29, 3, 3, padding=2, dilation=2),
]


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", SHIFT_CASES, ids=[c.name for c in SHIFT_CASES])
def test_conv2d_shifted_bands(isa, case, dtype, nthreads, assert_conv2d_close, assert_conv2d_backward_close):
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, dtype, "shift")
    scale = np.linspace(-1.5, 2.0, case.cout).astype(dtype)
    with fastconv.threads(nthreads):
        y = F.conv2d(x, w, b, algorithm="im2col", **kw)
        y_nobias = F.conv2d(x, w, algorithm="im2col", **kw)
        fused = F.conv2d(x, w, b, algorithm="im2col", scale=scale, activation="relu6", **kw)
        grads = F.conv2d_backward(g, x, w, algorithm="im2col", **kw)
    assert_conv2d_close(y, x, w, b, **kw)
    assert_conv2d_close(y_nobias, x, w, None, **kw)
    # the epilogue in the micro-kernel, on the same sums: only its own rounding differs
    want = np.clip(y_nobias * scale[:, None, None] + b[:, None, None], 0, 6)
    np.testing.assert_allclose(fused, want, rtol=1e-5, atol=1e-5 * 6)
    assert_conv2d_backward_close(grads, g, x, w, **kw)


# ---- finite differences -----------------------------------------------------------------------------
#
# The loss L = sum(conv(x, w, b) * g) is linear in each argument, so a central difference is
# exact up to rounding whatever the step: with step h, the error is about
# (rounding error of L) / h. These tests check the library's backward against its own forward
# (float64), independently of the reference.

FD_CASES = [CASES[CASE_IDS.index(n)] for n in (
    "3x3_p1_batch2", "2x2_s3", "5x5_g3_s2_d12_asym", "3x3_depthwise_mult2", "same_3x3_s2_even",
    "3x3_d21_p21", "input_2x3_p1_s2", "pad_larger_than_kernel")]


def _central_differences(loss, arrays, rng, count=10, h=0.5):
    """d loss / d a[i] for `count` elements of every array in `arrays` (the first, the last and
    random others; modified in place, then restored). Returns [(flat indices, derivatives)]."""
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


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("case", FD_CASES, ids=[c.name for c in FD_CASES])
def test_conv2d_gradients_by_finite_differences(case, algorithm):
    kw = conv_kwargs(case)
    x, w, b, g = make_conv_inputs(case, np.float64, "fd")
    if b is None:
        b = np.zeros(case.cout)
    x, w = x[:1], w                     # one image is enough here
    g = g[:1]

    def loss():
        return float(np.sum(F.conv2d(x, w, b, algorithm=algorithm, **kw) * g))

    fx, fw, fb = _central_differences(loss, [x, w, b], rng_for('fd', case.name, algorithm))
    gx, gw, gb = F.conv2d_backward(g, x, w, algorithm=algorithm, **kw)
    _assert_fd_close(gx, fx, "grad_x")
    _assert_fd_close(gw, fw, "grad_weight")
    _assert_fd_close(gb, fb, "grad_bias")


FD_TCASES = [TCASES[TCASE_IDS.index(n)] for n in ("3x3_s2_p1_op1", "3x3_d3_op2", "3x3_depthwise_s2",
                                                  "3x3_s12_p10_op01")]


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("case", FD_TCASES, ids=[c.name for c in FD_TCASES])
def test_conv_transpose2d_gradients_by_finite_differences(case, algorithm):
    kw = tconv_kwargs(case)
    x, w, b, g = make_tconv_inputs(case, np.float64, "fd")
    x, g = x[:1], g[:1]

    def loss():
        return float(np.sum(F.conv_transpose2d(x, w, b, algorithm=algorithm, **kw) * g))

    fx, fw, fb = _central_differences(loss, [x, w, b], rng_for('tfd', case.name, algorithm))
    gx, gw, gb = F.conv_transpose2d_backward(g, x, w, algorithm=algorithm, **kw)
    _assert_fd_close(gx, fx, "grad_x")
    _assert_fd_close(gw, fw, "grad_weight")
    _assert_fd_close(gb, fb, "grad_bias")


# ---- special values ----------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_exact_small_integers(isa, algorithm):
    """Small integers multiply and add exactly in any order: forward and gradients are exact."""
    rng = rng_for("ints", algorithm)
    for dtype in DTYPES:
        x = rng.integers(-4, 5, size=(2, 6, 7, 8)).astype(dtype)
        w = rng.integers(-4, 5, size=(4, 3, 3, 3)).astype(dtype)
        b = rng.integers(-4, 5, size=(4,)).astype(dtype)
        kw = dict(stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1), groups=2)
        y = F.conv2d(x, w, b, algorithm=algorithm, **kw)
        np.testing.assert_array_equal(y, conv2d_ref(x, w, b, **kw).astype(dtype))
        g = rng.integers(-4, 5, size=y.shape).astype(dtype)
        for got, ref in zip(F.conv2d_backward(g, x, w, algorithm=algorithm, **kw),
                            conv2d_backward_ref(g, x, w, **kw)):
            np.testing.assert_array_equal(got, ref.astype(dtype))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_nan_and_inf_propagate(isa, algorithm):
    """A NaN or infinity in x reaches exactly the outputs whose window covers it (no more: the
    padding is not computed as 0 * something-infinite)."""
    x = np.ones((1, 2, 6, 6), np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 4, 4] = np.inf
    w = np.ones((3, 2, 3, 3), np.float32)
    kw = dict(padding=1)
    y = F.conv2d(x, w, algorithm=algorithm, **kw)
    ref = conv2d_ref(x, w, **kw)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    assert np.isnan(ref).sum() == 3 * 9 and np.isinf(ref).sum() == 3 * 9
