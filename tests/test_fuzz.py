"""Fuzzing every public function with hypothesis (derandomized: every run checks the same
examples). Valid argument combinations, on a randomly chosen ISA path, must match the float64
references of tests/reference.py within the rounding bound; invalid ones (one argument broken at a
time) must raise ValueError or TypeError before any kernel runs, never crash or raise anything
else."""
import numpy as np
import pytest

import fastconv
from fastconv import _core, _runtime
from fastconv import functional as F

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import reference as R  # noqa: E402
from conftest import (  # noqa: E402
    assert_close_bound, check_conv2d, check_conv2d_backward, check_conv_transpose2d, check_conv_transpose2d_backward,
    check_matmul,
)

ISAS = _core.supported_isas()


def _settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.filter_too_much])


dtypes = st.sampled_from([np.float32, np.float64])
isas = st.sampled_from(ISAS)


def _array(draw, shape, dtype, layout=True):
    """Random values in an array of `shape`: C order, or (when layout) a Fortran, strided or
    reversed view holding the same values."""
    seed = draw(st.integers(0, 2**16))
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    kind = draw(st.sampled_from(["c", "f", "strided", "reversed"])) if layout and a.ndim else "c"
    if kind == "f":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if kind == "reversed":
        return a[..., ::-1].copy()[..., ::-1]
    return a


def one_or_pair(lo, hi):
    """(argument, (h, w)): an int or an (h, w) pair, each in [lo, hi]."""
    return st.one_of(st.integers(lo, hi).map(lambda v: (v, (v, v))),
                     st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(lambda p: (p, p)))


# ---- matmul --------------------------------------------------------------------------------------------------

@_settings(60)
@given(data=st.data(), isa=isas, dtype=dtypes, m=st.integers(0, 40), k=st.integers(0, 70), n=st.integers(0, 40))
def test_fuzz_matmul(data, isa, dtype, m, k, n):
    a = _array(data.draw, (m, k), dtype)
    b = _array(data.draw, (k, n), dtype)
    if data.draw(st.booleans(), label="transpose a"):
        a = np.ascontiguousarray(a.T).T
    with _runtime.use_isa(isa):
        check_matmul(fastconv.matmul(a, b), a, b)


# ---- conv2d and friends ------------------------------------------------------------------------------------------

@st.composite
def conv2d_case(draw):
    """(x, weight, bias, args dict) of a valid conv2d, output at least 1x1."""
    dtype = draw(dtypes)
    groups = draw(st.integers(1, 3))
    cg = draw(st.integers(1, 3))
    og = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, s = draw(one_or_pair(1, 3))
    dilation, d = draw(one_or_pair(1, 3))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    form = draw(st.sampled_from(["int", "pair", "nested", "valid", "same"]))
    if form == "int":
        padding = draw(st.integers(0, 3))
    elif form == "pair":
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    elif form == "nested":
        padding = tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(2))
    else:
        padding = form
    oh, ow = R.conv2d_output_hw((h, w), (kh, kw), s, R.pads_as_nested(R.resolve_padding2d(padding, (h, w), (kh, kw),
                                                                                            s, d)), d)
    assume(oh >= 1 and ow >= 1)
    n = draw(st.sampled_from([0, 1, 2, 3, None]))     # None: unbatched (C, H, W)
    xshape = (cg * groups, h, w) if n is None else (n, cg * groups, h, w)
    x = _array(draw, xshape, dtype)
    weight = _array(draw, (og * groups, cg, kh, kw), dtype)
    bias = _array(draw, (og * groups,), dtype) if draw(st.booleans()) else None
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, weight, bias, args


@_settings(150)
@given(case=conv2d_case(), isa=isas, algorithm=st.sampled_from(["auto", "im2col", "direct"]), data=st.data())
def test_fuzz_conv2d(case, isa, algorithm, data):
    x, weight, bias, args = case
    flags = tuple(data.draw(st.booleans(), label=f"flag {i}") for i in range(3))
    with _runtime.use_isa(isa):
        y = F.conv2d(x, weight, bias, **args, algorithm=algorithm)
        check_conv2d(y, x, weight, bias, **args)
        gy = _array(data.draw, y.shape, x.dtype)
        grads = F.conv2d_backward(gy, x, weight, **args, algorithm=algorithm, input_grad=flags[0],
                                  weight_grad=flags[1], bias_grad=flags[2])
        check_conv2d_backward(grads, gy, x, weight, **args, flags=flags)


@st.composite
def conv_transpose2d_case(draw):
    dtype = draw(dtypes)
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, s = draw(one_or_pair(1, 3))
    dilation, d = draw(one_or_pair(1, 3))
    padding, p = draw(one_or_pair(0, 3))
    op = (draw(st.integers(0, max(s[0], d[0]) - 1)), draw(st.integers(0, max(s[1], d[1]) - 1)))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    oh, ow = R.conv_transpose2d_output_hw((h, w), (kh, kw), s, p, op, d)
    assume(oh >= 1 and ow >= 1)
    n = draw(st.sampled_from([0, 1, 2, None]))
    xshape = (cg * groups, h, w) if n is None else (n, cg * groups, h, w)
    x = _array(draw, xshape, dtype)
    weight = _array(draw, (cg * groups, og, kh, kw), dtype)
    bias = _array(draw, (og * groups,), dtype) if draw(st.booleans()) else None
    args = dict(stride=stride, padding=padding, output_padding=op, groups=groups, dilation=dilation)
    return x, weight, bias, args


@_settings(100)
@given(case=conv_transpose2d_case(), isa=isas, data=st.data())
def test_fuzz_conv_transpose2d(case, isa, data):
    x, weight, bias, args = case
    flags = tuple(data.draw(st.booleans(), label=f"flag {i}") for i in range(3))
    with _runtime.use_isa(isa):
        y = F.conv_transpose2d(x, weight, bias, **args)
        check_conv_transpose2d(y, x, weight, bias, **args)
        gy = _array(data.draw, y.shape, x.dtype)
        grads = F.conv_transpose2d_backward(gy, x, weight, **args, input_grad=flags[0], weight_grad=flags[1],
                                            bias_grad=flags[2])
        check_conv_transpose2d_backward(grads, gy, x, weight, **args, flags=flags)


@_settings(80)
@given(data=st.data(), isa=isas, dtype=dtypes)
def test_fuzz_depthwise_and_pointwise(data, isa, dtype):
    c, m = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    h, w = data.draw(st.integers(1, 20)), data.draw(st.integers(1, 20))
    k, ks = data.draw(one_or_pair(1, 5))
    stride, s = data.draw(one_or_pair(1, 3))
    padding, p = data.draw(one_or_pair(0, 2))
    assume(h + 2 * p[0] >= ks[0] and w + 2 * p[1] >= ks[1])
    n = data.draw(st.sampled_from([0, 1, 2]))
    x = _array(data.draw, (n, c, h, w), dtype)
    wd = _array(data.draw, (c * m, 1) + ks, dtype)
    bias = _array(data.draw, (c * m,), dtype) if data.draw(st.booleans()) else None
    with _runtime.use_isa(isa):
        y = F.depthwise_conv2d(x, wd, bias, stride=stride, padding=padding)
        check_conv2d(y, x, wd, bias, stride=stride, padding=padding, groups=c)
        gy = _array(data.draw, y.shape, dtype)
        grads = F.depthwise_conv2d_backward(gy, x, wd, stride=stride, padding=padding)
        check_conv2d_backward(grads, gy, x, wd, stride=stride, padding=padding, groups=c)
        cout = data.draw(st.integers(1, 6))
        wp = _array(data.draw, (cout, c), dtype)
        y = F.pointwise_conv2d(x, wp, None)
        check_conv2d(y, x, wp[:, :, None, None])
        gy = _array(data.draw, y.shape, dtype)
        gx, gw, gb = F.pointwise_conv2d_backward(gy, x, wp)
        assert gw.shape == wp.shape
        check_conv2d_backward((gx, gw[:, :, None, None], gb), gy, x, wp[:, :, None, None])


# ---- pooling ------------------------------------------------------------------------------------------------------

@st.composite
def window_case(draw, avg):
    """(x, kwargs) of a valid max_pool2d (avg=False) or avg_pool2d (avg=True) call."""
    dtype = draw(dtypes)
    h, w = draw(st.integers(1, 14)), draw(st.integers(1, 40))
    kernel, k = draw(one_or_pair(1, 5))
    stride_arg = draw(st.one_of(st.none(), one_or_pair(1, 4)))
    stride, s = (None, k) if stride_arg is None else stride_arg
    padding, p = draw(one_or_pair(0, 2))
    assume(2 * p[0] <= k[0] and 2 * p[1] <= k[1])
    dilation, d = ((1, (1, 1)) if avg else draw(one_or_pair(1, 3)))
    ceil_mode = draw(st.booleans())
    out = [R.pool_output_size(n_, k_, s_, p_, d_, ceil_mode) for n_, k_, s_, p_, d_ in zip((h, w), k, s, p, d)]
    assume(min(out) >= 1)
    n = draw(st.sampled_from([0, 1, 2, None]))
    c = draw(st.integers(1, 3))
    x = _array(draw, (c, h, w) if n is None else (n, c, h, w), dtype)
    if draw(st.booleans()):   # ties, infinities and NaN
        x = np.round(x * 2) / 2
        if x.size:
            place = np.unravel_index(draw(st.integers(0, x.size - 1)), x.shape)
            x[place] = draw(st.sampled_from([np.inf, -np.inf, np.nan]))
    kw = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if avg:
        kw["count_include_pad"] = draw(st.booleans())
        kw["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 7)))
    else:
        kw["dilation"] = dilation
    return x, kw


def _exact(got, ref, what):
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    same = (got == ref.astype(got.dtype)) | (np.isnan(got) & np.isnan(ref))
    assert same.all(), f"{what}: first difference at {tuple(np.argwhere(~same)[0])}"


@_settings(120)
@given(case=window_case(avg=False), isa=isas, data=st.data())
def test_fuzz_max_pool2d(case, isa, data):
    x, kw = case
    with np.errstate(invalid="ignore"), _runtime.use_isa(isa):
        ref_y, ref_i = R.max_pool2d_ref(x, **kw)
        y, idx = F.max_pool2d(x, **kw, return_indices=True)
        _exact(y, ref_y, "max_pool2d")
        _exact(idx, ref_i, "max_pool2d indices")
        _exact(F.max_pool2d(x, **kw), ref_y, "max_pool2d values only")
        gy = _array(data.draw, y.shape, x.dtype)
        given_idx = data.draw(st.booleans(), label="pass indices")
        gx = F.max_pool2d_backward(gy, x, **kw, indices=idx if given_idx else None)
        k = kw["kernel_size"]
        taps = k * k if isinstance(k, int) else k[0] * k[1]
        assert_close_bound(gx, R._scatter_to_indices(gy, ref_i, x.shape),
                           R._scatter_to_indices(np.abs(gy), ref_i, x.shape), taps, x.dtype, "max_pool2d_backward")


@_settings(120)
@given(case=window_case(avg=True), isa=isas, data=st.data())
def test_fuzz_avg_pool2d(case, isa, data):
    x, kw = case
    k = kw["kernel_size"]
    taps = k * k if isinstance(k, int) else k[0] * k[1]
    with np.errstate(invalid="ignore"), _runtime.use_isa(isa):
        y = F.avg_pool2d(x, **kw)
        assert_close_bound(y, R.avg_pool2d_ref(x, **kw), R.avg_pool2d_ref(np.abs(x), **kw), taps, x.dtype, "avg_pool2d")
        gy = _array(data.draw, y.shape, x.dtype)
        gx = F.avg_pool2d_backward(gy, x.shape, **kw)
        assert gx.shape == x.shape and gx.dtype == x.dtype
        assert_close_bound(gx, R.avg_pool2d_backward_ref(gy, x.shape, **kw),
                           R.avg_pool2d_backward_ref(np.abs(gy), x.shape, **kw), taps, x.dtype, "avg_pool2d_backward")


@_settings(80)
@given(data=st.data(), isa=isas, dtype=dtypes)
def test_fuzz_adaptive_and_global_pool2d(data, isa, dtype):
    h, w = data.draw(st.integers(1, 13)), data.draw(st.integers(1, 30))
    n = data.draw(st.sampled_from([0, 1, 2, None]))
    c = data.draw(st.integers(1, 3))
    x = _array(data.draw, (c, h, w) if n is None else (n, c, h, w), dtype)
    oh, ow = data.draw(st.integers(1, 2 * h)), data.draw(st.integers(1, 2 * w))
    output_size = data.draw(st.sampled_from([oh, (oh, ow), (None, ow), (oh, None)]))
    size = (h if output_size[0] is None else output_size[0], w if output_size[1] is None else output_size[1]) \
        if isinstance(output_size, tuple) else (oh, oh)
    terms = h * w
    with np.errstate(invalid="ignore"), _runtime.use_isa(isa):
        ref_y, ref_i = R.adaptive_max_pool2d_ref(x, size)
        y, idx = F.adaptive_max_pool2d(x, output_size, return_indices=True)
        _exact(y, ref_y, "adaptive_max_pool2d")
        _exact(idx, ref_i, "adaptive_max_pool2d indices")
        gy = _array(data.draw, y.shape, dtype)
        assert_close_bound(F.adaptive_max_pool2d_backward(gy, x, output_size),
                           R._scatter_to_indices(gy, ref_i, x.shape), R._scatter_to_indices(np.abs(gy), ref_i, x.shape),
                           terms, dtype, "adaptive_max_pool2d_backward")
        y = F.adaptive_avg_pool2d(x, output_size)
        assert_close_bound(y, R.adaptive_avg_pool2d_ref(x, size), R.adaptive_avg_pool2d_ref(np.abs(x), size), terms,
                           dtype, "adaptive_avg_pool2d")
        assert_close_bound(F.adaptive_avg_pool2d_backward(gy, x.shape), R.adaptive_avg_pool2d_backward_ref(gy, x.shape),
                           R.adaptive_avg_pool2d_backward_ref(np.abs(gy), x.shape), terms, dtype,
                           "adaptive_avg_pool2d_backward")
        y = F.global_avg_pool2d(x)
        assert_close_bound(y, R.adaptive_avg_pool2d_ref(x, 1), R.adaptive_avg_pool2d_ref(np.abs(x), 1), terms, dtype,
                           "global_avg_pool2d")
        g1 = _array(data.draw, y.shape, dtype)
        assert_close_bound(F.global_avg_pool2d_backward(g1, x.shape), R.adaptive_avg_pool2d_backward_ref(g1, x.shape),
                           R.adaptive_avg_pool2d_backward_ref(np.abs(g1), x.shape), 1, dtype,
                           "global_avg_pool2d_backward")


# ---- invalid arguments: one broken at a time ------------------------------------------------------------------------

KERNEL_FUNCTIONS = ["gemm", "conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight", "pool2d_forward",
                    "pool2d_backward"]


@pytest.fixture
def no_kernels(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a kernel ran: the arguments were not rejected first")
    for name in KERNEL_FUNCTIONS:
        monkeypatch.setattr(_core, name, forbidden)


# Never a valid int argument: other types, negative, or beyond the int32 range the kernels index with.
BAD_INT = st.one_of(
    st.sampled_from([True, False, np.True_, 1.0, 2.5, np.float64(3), "1", b"1", None, [1, 2, 3], (1,), (1, 2, 3),
                     np.uint64(2**64 - 1), np.int64(-5), complex(1, 0)]),
    st.integers(min_value=2**31, max_value=2**70),
    st.integers(min_value=-2**70, max_value=-1),
)
BAD_POSITIVE = st.one_of(BAD_INT, st.just(0), st.just((1, 0)), st.just((0, 1)))
BAD_ARRAY = st.sampled_from(["list", "int32", "int64", "float16", "complex", "bool", "object", "big-endian", "0-d",
                             "1-d", "5-d", "scalar", "none-or-str"])


def _break_array(a, how):
    if how == "list":
        return a.tolist()
    if how in ("int32", "int64", "float16", "bool"):
        return a.astype(how)
    if how == "complex":
        return a.astype(np.complex64)
    if how == "object":
        return a.astype(object)
    if how == "big-endian":
        return a.astype(a.dtype.newbyteorder(">"))
    if how == "0-d":
        return np.asarray(a.reshape(-1)[:1].reshape(()) if a.size else 1.0, a.dtype)
    if how == "1-d":
        return a.reshape(-1)
    if how == "5-d":
        return a[None, None] if a.ndim <= 3 else a[None]
    if how == "scalar":
        return 1.0
    return "x"


def _expect_rejected(fn, *args, **kwargs):
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    assert type(info.value) in (ValueError, TypeError), f"{type(info.value).__name__}: {info.value}"
    assert str(info.value), "an empty error message"


@_settings(300)
@given(case=conv2d_case(), data=st.data())
def test_fuzz_conv2d_invalid(no_kernels, case, data):
    x, weight, bias, args = case
    kind = data.draw(st.sampled_from(["stride", "dilation", "groups", "padding", "x", "weight", "bias", "channels",
                                      "kernel", "grad_output", "algorithm", "mixed"]))
    backward = data.draw(st.booleans(), label="backward") and kind != "bias"
    call = dict(x=x, weight=weight, **args)
    if not backward:
        call["bias"] = bias
    gy = np.ones(_out_shape(x, weight, args), x.dtype)
    if kind in ("stride", "dilation", "groups"):
        call[kind] = data.draw(BAD_POSITIVE, label=kind)
    elif kind == "padding":
        call["padding"] = data.draw(st.one_of(BAD_INT, st.sampled_from(["full", "SAME", ((1, 2), (3, -1)),
                                                                         ((1,), (1, 1)), (1, 2**33)])),
                                    label="padding")
    elif kind in ("x", "weight", "bias"):
        how = data.draw(BAD_ARRAY, label="how")
        if kind == "bias" and how == "1-d":
            how = "5-d"
        call[kind] = _break_array(bias if bias is not None else np.ones(weight.shape[0], x.dtype), how) \
            if kind == "bias" else _break_array(call[kind], how)
    elif kind == "channels":
        call["weight"] = np.ones((weight.shape[0], weight.shape[1] + 1) + weight.shape[2:], x.dtype)
    elif kind == "kernel":
        call["padding"] = 0
        call["weight"] = np.ones(weight.shape[:2] + (x.shape[-2] + 1, x.shape[-1] + 1), x.dtype)
    elif kind == "algorithm":
        call["algorithm"] = data.draw(st.sampled_from(["fft", "", None, 1, "IM2COL"]), label="algorithm")
    elif kind == "mixed":
        other = np.float64 if x.dtype == np.float32 else np.float32
        which = data.draw(st.sampled_from(["x", "weight"] + (["grad_output"] if backward else ["bias"])),
                          label="which")
        if which == "grad_output":
            gy = gy.astype(other)
        elif which == "bias":
            call["bias"] = np.ones(weight.shape[0], other)
        else:
            call[which] = call[which].astype(other)
    elif kind == "grad_output":
        backward = True
        call.pop("bias", None)
        gy = np.ones(gy.shape[:-1] + (gy.shape[-1] + 1,), x.dtype)
    if backward:
        _expect_rejected(F.conv2d_backward, gy, **call)
    else:
        _expect_rejected(F.conv2d, **call)


def _out_shape(x, weight, args):
    """conv2d's output shape for a valid (x, weight, args), from the reference formulas."""
    h, w = x.shape[-2:]
    kh, kw = weight.shape[2:]
    pads = R.resolve_padding2d(args["padding"], (h, w), (kh, kw), args["stride"], args["dilation"])
    oh, ow = R.conv2d_output_hw((h, w), (kh, kw), args["stride"], R.pads_as_nested(pads), args["dilation"])
    return x.shape[:-3] + (weight.shape[0], oh, ow)


@_settings(200)
@given(case=conv_transpose2d_case(), data=st.data())
def test_fuzz_conv_transpose2d_invalid(no_kernels, case, data):
    x, weight, bias, args = case
    kind = data.draw(st.sampled_from(["stride", "dilation", "groups", "padding", "output_padding", "x", "weight",
                                      "channels", "too_much_padding", "grad_output"]))
    h, w = x.shape[-2:]
    oh, ow = R.conv_transpose2d_output_hw((h, w), weight.shape[2:], args["stride"], args["padding"],
                                          args["output_padding"], args["dilation"])
    gy = np.ones(x.shape[:-3] + (weight.shape[1] * args["groups"], oh, ow), x.dtype)
    call = dict(x=x, weight=weight, **args)
    if kind in ("stride", "dilation", "groups"):
        call[kind] = data.draw(BAD_POSITIVE, label=kind)
    elif kind in ("padding", "output_padding"):
        call[kind] = data.draw(BAD_INT, label=kind)
    elif kind in ("x", "weight"):
        call[kind] = _break_array(call[kind], data.draw(BAD_ARRAY, label="how"))
    elif kind == "channels":
        call["weight"] = np.ones((weight.shape[0] + 1,) + weight.shape[1:], x.dtype)
    elif kind == "too_much_padding":
        call["padding"] = 100
    elif kind == "grad_output":
        gy = np.ones(gy.shape[:-1] + (gy.shape[-1] + 1,), x.dtype)
    if kind == "grad_output" or data.draw(st.booleans(), label="backward"):
        _expect_rejected(F.conv_transpose2d_backward, gy, **call)
    else:
        _expect_rejected(F.conv_transpose2d, bias=bias, **call)


POOL_OPS = ["max", "avg", "max_backward", "avg_backward", "adaptive_avg", "adaptive_max", "adaptive_max_backward",
            "adaptive_avg_backward", "global", "global_backward"]


@_settings(400)
@given(case=window_case(avg=False), op=st.sampled_from(POOL_OPS), data=st.data())
def test_fuzz_pooling_invalid(no_kernels, case, op, data):
    """A valid pooling call of `op` built from a random max-pool case, then one argument broken."""
    x, kw = case
    dtype = x.dtype
    windowed = op in ("max", "avg", "max_backward", "avg_backward")
    kwargs = dict(kw)
    if op.startswith("avg"):
        del kwargs["dilation"]
        kwargs["count_include_pad"] = True
        kwargs["divisor_override"] = None
    output_size = 2
    if windowed:
        k, st_, p, d = R._pool_args(kw["kernel_size"], kw["stride"], kw["padding"], kw["dilation"])
        y_shape = x.shape[:-2] + tuple(R.pool_output_size(n, *a, kw["ceil_mode"])
                                       for n, a in zip(x.shape[-2:], zip(k, st_, p, d)))
    elif op.startswith("global"):
        y_shape = x.shape[:-2] + (1, 1)
    else:
        y_shape = x.shape[:-2] + (2, 2)
    args = dict(x=x, grad_output=np.ones(y_shape, dtype), input_shape=x.shape)

    kinds = {"max_backward": ["x", "grad_output"], "adaptive_max_backward": ["x", "grad_output"],
             "avg_backward": ["grad_output", "input_shape"], "adaptive_avg_backward": ["grad_output", "input_shape"],
             "global_backward": ["grad_output", "input_shape"]}.get(op, ["x"])
    if windowed:
        kinds += ["kernel_size", "stride", "padding", "ceil_mode"] + (["dilation"] if "dilation" in kwargs else []) \
            + (["divisor_override", "count_include_pad"] if op.startswith("avg") else [])
    if op in ("adaptive_avg", "adaptive_max", "adaptive_max_backward"):
        kinds += ["output_size"]
    if op in ("max", "adaptive_max"):
        kinds += ["return_indices"]
    kind = data.draw(st.sampled_from(kinds), label="kind")

    if kind == "x":
        args["x"] = _break_array(x, data.draw(BAD_ARRAY, label="how"))
    elif kind == "grad_output":
        how = data.draw(st.sampled_from(["shape", "int64", "list", "mixed"] if op in ("max_backward",
                                                                                 "adaptive_max_backward")
                                        else ["shape", "int64", "list"]), label="how")
        g = args["grad_output"]
        if how == "shape" and op == "adaptive_avg_backward":   # its output size is grad_output's: break ndim
            g = g[..., None]
        args["grad_output"] = (np.ones(g.shape[:-1] + (g.shape[-1] + 1,), dtype) if how == "shape" else
                               g.astype(np.int64) if how == "int64" else g.tolist() if how == "list" else
                               g.astype(np.float64 if dtype == np.float32 else np.float32))
    elif kind == "input_shape":
        args["input_shape"] = data.draw(st.sampled_from([x.shape[:-1] + (4.0,), "shape", x.shape[:-3] + (-2, 3, 3),
                                                         x.shape[:-3] + (2, 0, 3), (2**62, 2**62, 3, 3),
                                                         x.shape[:-1] + (2**31,), None, x.shape[-1]]),
                                        label="input_shape")
    elif kind in ("kernel_size", "stride", "dilation", "divisor_override", "output_size"):
        kwargs[kind] = data.draw(BAD_POSITIVE.filter(lambda v: v is not None), label=kind)
    elif kind == "padding":
        kwargs[kind] = data.draw(BAD_INT.filter(lambda v: v is not None), label=kind)
    else:  # flags
        kwargs[kind] = data.draw(st.sampled_from([1, 0, None, "yes", np.int64(1), 1.0]), label=kind)
    os_ = kwargs.pop("output_size", output_size)
    ri = {k: kwargs.pop(k) for k in ("return_indices",) if k in kwargs}
    xx, gy, shape = args["x"], args["grad_output"], args["input_shape"]
    calls = {
        "max": lambda: F.max_pool2d(xx, **kwargs, **ri),
        "avg": lambda: F.avg_pool2d(xx, **kwargs),
        "max_backward": lambda: F.max_pool2d_backward(gy, xx, **kwargs),
        "avg_backward": lambda: F.avg_pool2d_backward(gy, shape, **kwargs),
        "adaptive_avg": lambda: F.adaptive_avg_pool2d(xx, os_),
        "adaptive_max": lambda: F.adaptive_max_pool2d(xx, os_, **ri),
        "adaptive_max_backward": lambda: F.adaptive_max_pool2d_backward(gy, xx, os_),
        "adaptive_avg_backward": lambda: F.adaptive_avg_pool2d_backward(gy, shape),
        "global": lambda: F.global_avg_pool2d(xx),
        "global_backward": lambda: F.global_avg_pool2d_backward(gy, shape),
    }
    _expect_rejected(calls[op])
