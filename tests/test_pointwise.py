"""fastconv.functional.pointwise_conv2d / pointwise_conv2d_backward (1x1 convolution, stride 1,
no padding: a GEMM on the engine's core) against a float64 einsum reference, on every ISA and
float dtype.

The engine batches the pixels of small planes across images into one GEMM, so the grid has
small planes at batch 8 (7x7, 1x1, 3x5) next to large ones (40x40, 1x113), channel counts at,
under and over the micro-tile sizes (1, 3, 14, 16, 17, 33, 64) and over a reduction block
(300), and both weight forms: (C_out, C_in) and (C_out, C_in, 1, 1).
"""
from collections import namedtuple

import numpy as np
import pytest

import fastconv
from fastconv import functional as F

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]


def rng_for(*key):
    """A deterministic generator per test case (independent of test order)."""
    seed = [sum(ord(ch) * 31**i for i, ch in enumerate(str(part))) % (2**31) for part in key]
    return np.random.default_rng(seed)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- the float64 einsum reference -----------------------------------------------------------------

def _f64(a):
    return np.asarray(a).astype(np.float64)


def _w2(weight):
    w = _f64(weight)
    return w.reshape(w.shape[:2])


def pointwise_ref(x, weight, bias=None):
    """y[n, o, h, w] = sum_c weight[o, c] x[n, c, h, w] + bias[o]; x NCHW or CHW."""
    x = _f64(x)
    y = np.einsum("oc,...chw->...ohw", _w2(weight), x)
    if bias is not None:
        y += _f64(bias)[:, None, None]
    return y


def pointwise_backward_ref(grad_output, x, weight):
    """(grad_x, grad_weight as (C_out, C_in), grad_bias)."""
    gy, x = _f64(grad_output), _f64(x)
    gx = np.einsum("oc,...ohw->...chw", _w2(weight), gy)
    gy4, x4 = gy.reshape(-1, *gy.shape[-3:]), x.reshape(-1, *x.shape[-3:])
    gw = np.einsum("nohw,nchw->oc", gy4, x4)
    gb = gy4.sum(axis=(0, 2, 3))
    return gx, gw, gb


def _pixels(x):
    x = np.asarray(x)
    return (x.shape[0] if x.ndim == 4 else 1) * x.shape[-2] * x.shape[-1]


def check_forward(assert_close, got, x, weight, bias=None, what="pointwise_conv2d"):
    x = np.asarray(x)
    assert isinstance(got, np.ndarray) and got.dtype == x.dtype and got.flags.c_contiguous, what
    ref = pointwise_ref(x, weight, bias)
    scale = pointwise_ref(np.abs(_f64(x)), np.abs(_f64(weight)), None if bias is None else np.abs(_f64(bias)))
    assert_close(got, ref, scale, x.shape[-3] + (bias is not None), x.dtype, what)


def check_backward(assert_close, grads, grad_output, x, weight, flags=(True, True, True),
                   what="pointwise_conv2d_backward"):
    x, weight = np.asarray(x), np.asarray(weight)
    refs = pointwise_backward_ref(grad_output, x, weight)
    scales = pointwise_backward_ref(np.abs(_f64(grad_output)), np.abs(_f64(x)), np.abs(_f64(weight)))
    npix = _pixels(x)
    assert len(grads) == 3
    for name, got, ref, scale, n, wanted, shape in zip(
            ("grad_x", "grad_weight", "grad_bias"), grads, refs, scales, (weight.shape[0], npix, npix), flags,
            (x.shape, weight.shape, (weight.shape[0],))):
        if not wanted:
            assert got is None, f"{what}: {name} was not asked for, yet returned {type(got).__name__}"
            continue
        assert isinstance(got, np.ndarray) and got.dtype == x.dtype, f"{what} {name}: {type(got)} {got.dtype}"
        assert got.flags.c_contiguous, f"{what} {name}: not C-contiguous"
        assert got.shape == shape, f"{what} {name}: shape {got.shape}, expected {shape}"
        assert_close(got, ref.reshape(shape), scale.reshape(shape), n, x.dtype, f"{what} {name}")


def test_reference_agrees_with_conv2d_reference():
    """The einsum reference is conv2d_ref with a 1x1 kernel (and its backward)."""
    from reference import conv2d_backward_ref, conv2d_ref

    rng = rng_for("pwref")
    x, w, b, g = (rng.standard_normal(s) for s in [(2, 5, 3, 4), (6, 5), (6,), (2, 6, 3, 4)])
    w4 = w[:, :, None, None]
    np.testing.assert_allclose(pointwise_ref(x, w, b), conv2d_ref(x, w4, b), rtol=1e-12, atol=1e-12)
    for a, r in zip(pointwise_backward_ref(g, x, w), conv2d_backward_ref(g, x, w4)):
        np.testing.assert_allclose(a.reshape(r.shape), r, rtol=1e-12, atol=1e-12)


def test_checker_rejects_wrong_results(assert_close):
    """The bound catches a result with one input channel dropped, or one image's pixels taken
    from another image (what a wrong cross-image pixel batching would do)."""
    rng = rng_for("pwbound")
    x, w, b = randn(rng, (8, 16, 7, 7), np.float32), randn(rng, (12, 16), np.float32), randn(rng, (12,), np.float32)
    good = np.ascontiguousarray(pointwise_ref(x, w, b), dtype=np.float32)
    check_forward(assert_close, good, x, w, b)
    w_drop = w.copy()
    w_drop[:, 9] = 0
    swapped = good.copy()
    swapped[3, :, 6, 6] = good[4, :, 6, 6]
    for bad in (pointwise_ref(x, w_drop, b).astype(np.float32), swapped):
        with pytest.raises(AssertionError, match="outside the error bound"):
            check_forward(assert_close, np.ascontiguousarray(bad), x, w, b)


# ---- the cases ---------------------------------------------------------------------------------

PCase = namedtuple("PCase", "name n cin cout h w bias")


def P(name, n, cin, cout, h, w, bias=True):
    return PCase(name, n, cin, cout, h, w, bias)


CASES = [
    P("c1_c1", 1, 1, 1, 5, 5),
    P("c3_c5_7x7_n8", 8, 3, 5, 7, 7),
    P("c16_c16_7x7_n8", 8, 16, 16, 7, 7),
    P("c17_c33_7x7_n8_nobias", 8, 17, 33, 7, 7, bias=False),
    P("c64_c14_7x7_n8", 8, 64, 14, 7, 7),
    P("c33_c17_3x5_n5", 5, 33, 17, 3, 5),
    P("c5_c7_1x1_n8", 8, 5, 7, 1, 1),                 # one pixel per image
    P("c24_c40_40x40_n1", 1, 24, 40, 40, 40),
    P("c32_c16_40x40_n2", 2, 32, 16, 40, 40),
    P("c8_c3_1x113_n3", 3, 8, 3, 1, 113),
    P("c300_c290_5x6", 1, 300, 290, 5, 6),            # reduction and output channels over a block
    P("c96_c24_14x14_n4_nobias", 4, 96, 24, 14, 14, bias=False),
]
CASE_IDS = [c.name for c in CASES]
WEIGHT_FORMS = ["2d", "4d"]


def make_pw_inputs(case, dtype, form="2d", *key):
    rng = rng_for(case.name, np.dtype(dtype).name, form, *key)
    x = randn(rng, (case.n, case.cin, case.h, case.w), dtype)
    w = randn(rng, (case.cout, case.cin), dtype)
    if form == "4d":
        w = w.reshape(case.cout, case.cin, 1, 1)
    b = randn(rng, (case.cout,), dtype) if case.bias else None
    g = randn(rng, (case.n, case.cout, case.h, case.w), dtype)
    return x, w, b, g


@pytest.mark.parametrize("form", WEIGHT_FORMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_forward(isa, case, dtype, form, assert_close):
    x, w, b, _ = make_pw_inputs(case, dtype, form)
    inputs = [a for a in (x, w, b) if a is not None]
    copies = [a.copy() for a in inputs]
    y = F.pointwise_conv2d(x, w, b)
    assert y.shape == (case.n, case.cout, case.h, case.w)
    check_forward(assert_close, y, x, w, b, what=f"pointwise_conv2d {case.name} {form} {isa}")
    for a, a0 in zip(inputs, copies):
        np.testing.assert_array_equal(a, a0, err_msg="pointwise_conv2d modified an input")
        assert not np.shares_memory(y, a)


@pytest.mark.parametrize("form", WEIGHT_FORMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_backward(isa, case, dtype, form, assert_close):
    x, w, _, g = make_pw_inputs(case, dtype, form)
    copies = [a.copy() for a in (g, x, w)]
    grads = F.pointwise_conv2d_backward(g, x, w)
    check_backward(assert_close, grads, g, x, w, what=f"pointwise_conv2d_backward {case.name} {form} {isa}")
    for a, a0 in zip((g, x, w), copies):
        np.testing.assert_array_equal(a, a0, err_msg="pointwise_conv2d_backward modified an input")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_weight_forms_agree(case, dtype):
    """(C_out, C_in) and (C_out, C_in, 1, 1) weights give the same results bit for bit; grad_w
    comes back in the weight's own form."""
    x, w, b, g = make_pw_inputs(case, dtype, "2d", "forms")
    w4 = w.reshape(w.shape + (1, 1))
    np.testing.assert_array_equal(F.pointwise_conv2d(x, w, b), F.pointwise_conv2d(x, w4, b))
    g2, g4 = F.pointwise_conv2d_backward(g, x, w), F.pointwise_conv2d_backward(g, x, w4)
    assert g2[1].shape == (case.cout, case.cin) and g4[1].shape == (case.cout, case.cin, 1, 1)
    for a, c in zip(g2, g4):
        np.testing.assert_array_equal(a, c.reshape(a.shape))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_pointwise_is_conv2d_1x1(case, dtype, assert_close):
    """pointwise_conv2d is conv2d with the (C_out, C_in, 1, 1) weight: bit for bit what conv2d
    runs for a 1x1 stride-1 unpadded layer by default ("auto" routes it to the pointwise GEMM) and
    with algorithm="im2col"; within the rounding bound of the "direct" kernels."""
    x, w, b, g = make_pw_inputs(case, dtype, "4d", "conv2d")
    y = F.pointwise_conv2d(x, w, b)
    grads = F.pointwise_conv2d_backward(g, x, w)
    for algorithm in ("auto", "im2col"):
        np.testing.assert_array_equal(y, F.conv2d(x, w, b, algorithm=algorithm),
                                      err_msg=f"pointwise vs conv2d {algorithm}")
        for name, a, c in zip(("grad_x", "grad_weight", "grad_bias"), grads,
                              F.conv2d_backward(g, x, w, algorithm=algorithm)):
            np.testing.assert_array_equal(a, c, err_msg=f"{name}: pointwise vs conv2d {algorithm}")
    check_forward(assert_close, F.conv2d(x, w, b, algorithm="direct"), x, w, b, what="conv2d 1x1 direct")
    check_backward(assert_close, F.conv2d_backward(g, x, w, algorithm="direct"), g, x, w,
                   what="conv2d_backward 1x1 direct")


def test_pointwise_batched_equals_per_image(assert_close):
    """Batching the pixels of small planes across images changes no image's result beyond
    rounding: the batch-of-8 result is each image's own, within the bound (and image order is
    kept)."""
    case = CASES[CASE_IDS.index("c17_c33_7x7_n8_nobias")]
    x, w, b, g = make_pw_inputs(case, np.float32, "2d", "perimage")
    b = randn(rng_for("pwb"), (case.cout,), np.float32)
    y = F.pointwise_conv2d(x, w, b)
    for i in range(case.n):
        yi = F.pointwise_conv2d(x[i:i + 1], w, b)
        check_forward(assert_close, yi, x[i:i + 1], w, b)
        check_forward(assert_close, y[i:i + 1].copy(), x[i:i + 1], w, b, what=f"image {i} of the batch")


# ---- gradients not asked for, unbatched input, empty batch ----------------------------------------

@pytest.mark.parametrize("form", WEIGHT_FORMS)
@pytest.mark.parametrize("flags", [(i, w, b) for i in (True, False) for w in (True, False) for b in (True, False)],
                         ids=lambda f: "".join("xwb"[i] if on else "-" for i, on in enumerate(f)))
def test_pointwise_backward_flags(flags, form, assert_close):
    case = CASES[CASE_IDS.index("c33_c17_3x5_n5")]
    x, w, _, g = make_pw_inputs(case, np.float32, form, "flags")
    i, wg, bg = flags
    grads = F.pointwise_conv2d_backward(g, x, w, input_grad=i, weight_grad=wg, bias_grad=bg)
    check_backward(assert_close, grads, g, x, w, flags=flags)


@pytest.mark.parametrize("form", WEIGHT_FORMS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_pointwise_unbatched_input(isa, dtype, form, assert_close):
    case = CASES[CASE_IDS.index("c33_c17_3x5_n5")]
    x, w, b, g = make_pw_inputs(case, dtype, form, "unbatched")
    y = F.pointwise_conv2d(x[0], w, b)
    assert y.shape == (case.cout, case.h, case.w)
    check_forward(assert_close, y, x[0], w, b)
    np.testing.assert_array_equal(y, F.pointwise_conv2d(x[:1], w, b)[0])
    grads = F.pointwise_conv2d_backward(g[0], x[0], w)
    assert grads[0].shape == x[0].shape
    check_backward(assert_close, grads, g[0], x[0], w)


def test_pointwise_empty_batch():
    x = np.ones((0, 3, 4, 5), np.float64)
    w = np.ones((2, 3), np.float64)
    y = F.pointwise_conv2d(x, w, np.ones(2))
    assert y.shape == (0, 2, 4, 5) and y.dtype == np.float64
    gx, gw, gb = F.pointwise_conv2d_backward(np.ones((0, 2, 4, 5)), x, w)
    assert gx.shape == x.shape and gw.shape == (2, 3) and gb.shape == (2,)
    assert not gw.any() and not gb.any()


# ---- layouts, threads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("layout", ["weight_transposed", "weight_F_4d", "x_channels_last", "x_F", "x_sliced",
                                    "grad_output_channels_last", "readonly"])
def test_pointwise_input_layouts(layout, dtype, assert_close):
    case = CASES[CASE_IDS.index("c17_c33_7x7_n8_nobias")]
    x, w, _, g = make_pw_inputs(case, dtype, "2d", "layout")
    b = randn(rng_for("layoutb"), (case.cout,), dtype)
    xs, ws, gs = x, w, g
    if layout == "weight_transposed":       # a (C_in, C_out) array's transpose: Fortran-ordered view
        ws = np.ascontiguousarray(w.T).T
    elif layout == "weight_F_4d":
        ws = np.asfortranarray(w.reshape(w.shape + (1, 1)))
    elif layout == "x_channels_last":
        xs = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "x_F":
        xs = np.asfortranarray(x)
    elif layout == "x_sliced":
        big = np.full(x.shape[:-1] + (2 * x.shape[-1],), np.nan, dtype)
        big[..., ::2] = x
        xs = big[..., ::2]
    elif layout == "grad_output_channels_last":
        gs = np.ascontiguousarray(g.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    else:
        xs, ws, gs = (a.copy() for a in (x, w, g))
        for a in (xs, ws, gs):
            a.flags.writeable = False
    check_forward(assert_close, F.pointwise_conv2d(xs, ws, b), x, w, b)
    check_backward(assert_close, F.pointwise_conv2d_backward(gs, xs, ws), g, x, ws)


@pytest.mark.parametrize("nthreads", [1, 2, 3])
@pytest.mark.parametrize("n,hw", [(1, (40, 40)), (8, (7, 7))], ids=["batch1_40x40", "batch8_7x7"])
def test_pointwise_thread_counts(isa, nthreads, n, hw, assert_close):
    rng = rng_for("pwthreads", nthreads, n)
    x = randn(rng, (n, 48, *hw), np.float32)
    w = randn(rng, (40, 48), np.float32)
    b = randn(rng, (40,), np.float32)
    g = randn(rng, (n, 40, *hw), np.float32)
    with fastconv.threads(nthreads):
        y = F.pointwise_conv2d(x, w, b)
        grads = F.pointwise_conv2d_backward(g, x, w)
    check_forward(assert_close, y, x, w, b)
    check_backward(assert_close, grads, g, x, w)


# ---- finite differences, special values ----------------------------------------------------------------

@pytest.mark.parametrize("name", ["c3_c5_7x7_n8", "c5_c7_1x1_n8", "c33_c17_3x5_n5"])
@pytest.mark.parametrize("form", WEIGHT_FORMS)
def test_pointwise_gradients_by_finite_differences(name, form):
    """L = sum(pointwise_conv2d(x, w, b) * g) is linear in each argument: central differences
    are exact up to rounding; the library's backward against its own forward, float64."""
    case = CASES[CASE_IDS.index(name)]
    x, w, b, g = make_pw_inputs(case, np.float64, form, "fd")
    rng = rng_for("pwfd", name, form)

    def loss():
        return float(np.sum(F.pointwise_conv2d(x, w, b) * g))

    gx, gw, gb = F.pointwise_conv2d_backward(g, x, w)
    for a, got, what in ((x, gx, "grad_x"), (w, gw, "grad_weight"), (b, gb, "grad_bias")):
        assert got.shape == a.shape
        picks = np.unique(np.concatenate([[0, a.size - 1], rng.integers(0, a.size, 8)]))
        for flat in picks:
            idx = np.unravel_index(flat, a.shape)
            v = a[idx]
            a[idx] = v + 0.5
            up = loss()
            a[idx] = v - 0.5
            down = loss()
            a[idx] = v
            fd = up - down
            tol = 1e-9 * (1.0 + abs(fd))
            assert abs(got[idx] - fd) <= tol, f"{what}{idx}: backward {got[idx]!r}, finite differences {fd!r}"


def test_pointwise_exact_small_integers(isa):
    rng = rng_for("pwints")
    for dtype in DTYPES:
        for n, hw in [(8, (7, 7)), (1, (20, 23))]:
            x = rng.integers(-4, 5, size=(n, 19, *hw)).astype(dtype)
            w = rng.integers(-4, 5, size=(23, 19)).astype(dtype)
            b = rng.integers(-4, 5, size=(23,)).astype(dtype)
            y = F.pointwise_conv2d(x, w, b)
            np.testing.assert_array_equal(y, pointwise_ref(x, w, b).astype(dtype))
            g = rng.integers(-4, 5, size=y.shape).astype(dtype)
            for got, ref in zip(F.pointwise_conv2d_backward(g, x, w), pointwise_backward_ref(g, x, w)):
                np.testing.assert_array_equal(got, ref.astype(dtype))


@pytest.mark.parametrize("n,hw", [(8, (7, 7)), (2, (40, 40))], ids=["batch8_7x7", "batch2_40x40"])
def test_pointwise_nan_stays_in_its_pixel(isa, n, hw):
    """A NaN / infinity in one pixel of one image reaches that pixel's outputs only: pixels batched
    across images (and the GEMM's padded tiles) do not mix them."""
    x = np.ones((n, 20, *hw), np.float32)
    x[1, 3, 2, 5] = np.nan
    x[n - 1, 7, hw[0] - 1, hw[1] - 1] = np.inf
    w = np.abs(randn(rng_for("pwnan"), (18, 20), np.float32)) + 0.5
    y = F.pointwise_conv2d(x, w, np.ones(18, np.float32))
    ref = pointwise_ref(x, w, np.ones(18))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    assert np.isnan(y[1, :, 2, 5]).all() and np.isinf(y[n - 1, :, -1, -1]).all()
    assert np.isfinite(y).sum() == y.size - 2 * 18
    g = np.ones(y.shape, np.float32)
    g[0, 4, 1, 1] = np.nan
    gx = F.pointwise_conv2d_backward(g, np.ones_like(x), w, weight_grad=False, bias_grad=False)[0]
    np.testing.assert_array_equal(np.isnan(gx), np.isnan(pointwise_backward_ref(g, x, w)[0]))
    assert np.isnan(gx).sum() == 20


# ---- bad arguments ---------------------------------------------------------------------------------

def _pw_args(dtype=np.float32):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 4, 5, 6)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype),
            rng.standard_normal(3).astype(dtype), np.ones((2, 3, 5, 6), dtype))


@pytest.mark.parametrize("shape", [(3, 4, 3, 3), (3, 4, 1, 2), (3, 4, 2, 1), (3, 4, 1), (3, 4, 1, 1, 1), (12,), (),
                                   (3, 5), (3, 3), (3, 5, 1, 1), (3, 8)],
                         ids=["3x3", "1x2", "2x1", "3d", "5d", "1d", "0d", "cin5", "cin3", "cin5_4d", "cin8"])
def test_pointwise_bad_weight_shape(shape):
    x, _, _, g = _pw_args()
    w = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match="weight"):
        F.pointwise_conv2d(x, w)
    with pytest.raises(ValueError, match="weight"):
        F.pointwise_conv2d_backward(g, x, w)


@pytest.mark.parametrize("shape", [(5, 6), (4,), (), (1, 2, 4, 5, 6)], ids=["2d", "1d", "0d", "5d"])
def test_pointwise_x_wrong_ndim(shape):
    _, w, b, g = _pw_args()
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.pointwise_conv2d(np.ones(shape, np.float32), w, b)
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.pointwise_conv2d_backward(g, np.ones(shape, np.float32), w)


@pytest.mark.parametrize("bias_shape", [(4,), (2,), (3, 1), (1, 3), (), (1,)])
def test_pointwise_wrong_bias_shape(bias_shape):
    x, w, _, _ = _pw_args()
    with pytest.raises(ValueError, match="bias"):
        F.pointwise_conv2d(x, w, np.ones(bias_shape, np.float32))


@pytest.mark.parametrize("bad", [np.int32, np.float16, np.complex64, ">f4"], ids=["int32", "float16", "complex64",
                                                                                   "f4-byteswapped"])
@pytest.mark.parametrize("which", ["x", "weight", "bias", "grad_output"])
def test_pointwise_bad_dtype(which, bad):
    x, w, b, g = _pw_args()
    args = {"x": x, "weight": w, "bias": b, "grad_output": g}
    args[which] = args[which].astype(bad)
    if which != "grad_output":
        with pytest.raises(TypeError, match=rf"\b{which}\b"):
            F.pointwise_conv2d(args["x"], args["weight"], args["bias"])
    if which != "bias":
        with pytest.raises(TypeError, match=rf"\b{which}\b"):
            F.pointwise_conv2d_backward(args["grad_output"], args["x"], args["weight"])


@pytest.mark.parametrize("which", ["x", "weight", "bias", "grad_output"])
def test_pointwise_mixed_dtypes(which):
    x, w, b, g = _pw_args()
    args = {"x": x, "weight": w, "bias": b, "grad_output": g}
    args[which] = args[which].astype(np.float64)
    if which != "grad_output":
        with pytest.raises(TypeError, match=rf"dtype.*\b{which}\b|\b{which}\b.*dtype"):
            F.pointwise_conv2d(args["x"], args["weight"], args["bias"])
    if which != "bias":
        with pytest.raises(TypeError, match=rf"dtype.*\b{which}\b|\b{which}\b.*dtype"):
            F.pointwise_conv2d_backward(args["grad_output"], args["x"], args["weight"])


@pytest.mark.parametrize("which", ["x", "weight", "bias"])
@pytest.mark.parametrize("value", [[[1.0]], 1.0, "x"], ids=["list", "float", "str"])
def test_pointwise_non_array_inputs(which, value):
    x, w, b, _ = _pw_args()
    args = {"x": x, "weight": w, "bias": b}
    args[which] = value
    with pytest.raises((TypeError, ValueError), match=rf"\b{which}\b"):
        F.pointwise_conv2d(args["x"], args["weight"], args["bias"])


def test_pointwise_backward_wrong_grad_output_shape():
    x, w, _, g = _pw_args()
    for shape in [(2, 3, 5, 5), (2, 4, 5, 6), (1, 3, 5, 6), (3, 5, 6), (2, 3, 30)]:
        with pytest.raises(ValueError, match="grad_output"):
            F.pointwise_conv2d_backward(np.ones(shape, np.float32), x, w)
    F.pointwise_conv2d_backward(g, x, w)


# ---- property tests (hypothesis, derandomized) ------------------------------------------------------

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    given = None

if given is None:  # pragma: no cover
    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_pointwise_random_arguments():
        pass
else:
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(n=st.integers(0, 9), unbatched=st.booleans(), cin=st.integers(1, 40), cout=st.integers(1, 40),
           h=st.integers(1, 12), w=st.integers(1, 12), form=st.sampled_from(WEIGHT_FORMS), bias=st.booleans(),
           dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
    def test_pointwise_random_arguments(isa, n, unbatched, cin, cout, h, w, form, bias, dtype, seed, assert_close):
        rng = np.random.default_rng(seed)
        xshape = (cin, h, w) if unbatched else (n, cin, h, w)
        x = rng.standard_normal(xshape).astype(dtype)
        wt = rng.standard_normal((cout, cin) if form == "2d" else (cout, cin, 1, 1)).astype(dtype)
        b = rng.standard_normal(cout).astype(dtype) if bias else None
        y = F.pointwise_conv2d(x, wt, b)
        assert y.shape == xshape[:-3] + (cout, h, w)
        if y.size:
            check_forward(assert_close, y, x, wt, b)
        g = rng.standard_normal(y.shape).astype(dtype)
        flags = tuple(bool(v) for v in rng.integers(0, 2, 3)) if seed % 3 == 0 else (True, True, True)
        grads = F.pointwise_conv2d_backward(g, x, wt, input_grad=flags[0], weight_grad=flags[1], bias_grad=flags[2])
        check_backward(assert_close, grads, g, x, wt, flags=flags)
