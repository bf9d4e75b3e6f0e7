"""Robustness of every public function: argument validation before any C code runs, sizes at
and beyond 32-bit index range, allocation failures, zero-size dimensions, NaN and infinities on
every ISA path, and concurrent use from several Python threads.

The random-argument (hypothesis) fuzzing of the same functions lives in tests/test_fuzz.py; the
memory-leak check is the script .ci/leakcheck."""
import mmap
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _core
from fastconv import functional as F
from conftest import (
    assert_close_bound, check_conv2d, check_conv2d_backward, check_conv_transpose2d, check_conv_transpose2d_backward,
)
import reference as R

DTYPES = [np.float32, np.float64]
INT32_MAX = 2**31 - 1


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _as_tuple(r):
    return tuple(r) if isinstance(r, tuple) else (r,)


def _exact(got, ref, what):
    ref = np.asarray(ref)
    assert got.shape == ref.shape, what
    same = (got == ref.astype(got.dtype)) | (np.isnan(got) & np.isnan(ref))
    assert same.all(), f"{what}: first difference at {tuple(np.argwhere(~same)[0])}"


# ---- one valid call of every public function, keyword arguments only ------------------------------
#
# Each entry: name -> (function, keyword arguments of a valid call). The tests below break one
# argument at a time.

def _valid_calls(dtype=np.float32):
    x = _rand((2, 4, 7, 7), dtype, 1)
    w = _rand((6, 4, 3, 3), dtype, 2)
    b = _rand((6,), dtype, 3)
    wt = _rand((4, 3, 3, 3), dtype, 4)          # conv_transpose2d: (C_in, C_out/groups, kh, kw)
    wd = _rand((8, 1, 3, 3), dtype, 5)          # depthwise, multiplier 2
    wp = _rand((6, 4), dtype, 6)                # pointwise
    conv_args = dict(stride=2, padding=1, dilation=1, groups=1)
    t_args = dict(stride=2, padding=1, output_padding=1, groups=1, dilation=1)
    dw_args = dict(stride=1, padding=1, dilation=1)
    pool_args = dict(kernel_size=3, stride=2, padding=1)
    g_conv = np.ones((2, 6, 4, 4), dtype)
    g_t = np.ones((2, 3, 14, 14), dtype)
    g_dw = np.ones((2, 8, 7, 7), dtype)
    g_pw = np.ones((2, 6, 7, 7), dtype)
    g_pool = np.ones((2, 4, 4, 4), dtype)
    g_ad = np.ones((2, 4, 3, 3), dtype)
    g_gl = np.ones((2, 4, 1, 1), dtype)
    return {
        "matmul": (fastconv.matmul, dict(a=_rand((3, 5), dtype), b=_rand((5, 4), dtype))),
        "conv2d": (F.conv2d, dict(x=x, weight=w, bias=b, **conv_args)),
        "conv2d_backward": (F.conv2d_backward, dict(grad_output=g_conv, x=x, weight=w, **conv_args)),
        "conv_transpose2d": (F.conv_transpose2d, dict(x=x, weight=wt, bias=b[:3], **t_args)),
        "conv_transpose2d_backward": (F.conv_transpose2d_backward, dict(grad_output=g_t, x=x, weight=wt, **t_args)),
        "depthwise_conv2d": (F.depthwise_conv2d, dict(x=x, weight=wd, bias=np.ones(8, dtype), **dw_args)),
        "depthwise_conv2d_backward": (F.depthwise_conv2d_backward, dict(grad_output=g_dw, x=x, weight=wd, **dw_args)),
        "pointwise_conv2d": (F.pointwise_conv2d, dict(x=x, weight=wp, bias=b)),
        "pointwise_conv2d_backward": (F.pointwise_conv2d_backward, dict(grad_output=g_pw, x=x, weight=wp)),
        "max_pool2d": (F.max_pool2d, dict(x=x, dilation=1, **pool_args)),
        "max_pool2d_backward": (F.max_pool2d_backward, dict(grad_output=g_pool, x=x, dilation=1, **pool_args)),
        "avg_pool2d": (F.avg_pool2d, dict(x=x, divisor_override=5, **pool_args)),
        "avg_pool2d_backward": (F.avg_pool2d_backward, dict(grad_output=g_pool, input_shape=x.shape,
                                                            divisor_override=5, **pool_args)),
        "adaptive_avg_pool2d": (F.adaptive_avg_pool2d, dict(x=x, output_size=3)),
        "adaptive_avg_pool2d_backward": (F.adaptive_avg_pool2d_backward, dict(grad_output=g_ad, input_shape=x.shape)),
        "adaptive_max_pool2d": (F.adaptive_max_pool2d, dict(x=x, output_size=3)),
        "adaptive_max_pool2d_backward": (F.adaptive_max_pool2d_backward, dict(grad_output=g_ad, x=x, output_size=3)),
        "global_avg_pool2d": (F.global_avg_pool2d, dict(x=x)),
        "global_avg_pool2d_backward": (F.global_avg_pool2d_backward, dict(grad_output=g_gl, input_shape=x.shape)),
    }


CALLS = _valid_calls()
ARRAY_ARGS = [(op, name) for op, (_, kw) in CALLS.items() for name, v in kw.items() if isinstance(v, np.ndarray)]
INT_ARGS = [(op, name) for op, (_, kw) in CALLS.items() for name, v in kw.items()
            if isinstance(v, int) and not isinstance(v, bool)]
KERNEL_FUNCTIONS = ["gemm", "conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight", "pool2d_forward",
                    "pool2d_backward"]


@pytest.fixture
def no_kernels(monkeypatch):
    """Every entry point of _core that runs a kernel fails the test if called: the argument
    checks must raise first."""
    def forbidden(name):
        def call(*args, **kwargs):
            raise AssertionError(f"_core.{name} was called: the arguments were not rejected before the C code")
        return call
    for name in KERNEL_FUNCTIONS:
        monkeypatch.setattr(_core, name, forbidden(name))


def _call(op, **changes):
    fn, kw = CALLS[op]
    return fn(**{**kw, **changes})


def _raises(exc, words, op, **changes):
    with pytest.raises(exc) as info:
        _call(op, **changes)
    assert type(info.value) in (exc if isinstance(exc, tuple) else (exc,)), \
        f"{op}: {type(info.value).__name__}: {info.value}"
    for w in ([words] if isinstance(words, str) else words):
        assert w in str(info.value), f"{op}: message {str(info.value)!r} lacks {w!r}"
    return info.value


@pytest.mark.parametrize("op", list(CALLS))
def test_valid_calls_run(op):
    """The baseline the error tests break one argument of is itself valid."""
    _call(op)


@pytest.mark.parametrize("op", list(CALLS))
def test_valid_calls_run_in_float64(op):
    fn, kw = _valid_calls(np.float64)[op]
    out = fn(**kw)
    for a in (out if isinstance(out, tuple) else (out,)):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            assert a.dtype == np.float64


# ---- arrays: type, dtype, ndim, mixed dtypes ----------------------------------------------------------

BAD_DTYPES = [np.int32, np.int64, np.float16, np.complex64, np.bool_, np.dtype(">f4"), np.dtype(">f8"), object,
              np.uint8, np.longdouble]


@pytest.mark.parametrize("op,name", ARRAY_ARGS, ids=[f"{o}-{n}" for o, n in ARRAY_ARGS])
def test_array_arguments_must_be_ndarrays(no_kernels, op, name):
    value = CALLS[op][1][name]
    for bad in (value.tolist(), 3.0, "bias" if name == "bias" else None):
        _raises(TypeError, name, op, **{name: bad})


@pytest.mark.parametrize("op,name", ARRAY_ARGS, ids=[f"{o}-{n}" for o, n in ARRAY_ARGS])
@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).str)
def test_array_arguments_reject_other_dtypes(no_kernels, op, name, dtype):
    """float32/float64 (native byte order) only: a TypeError naming the argument and the dtype,
    never a silent cast."""
    value = CALLS[op][1][name]
    bad = value.astype(dtype)
    err = _raises(TypeError, name, op, **{name: bad})
    assert str(np.dtype(dtype)) in str(err) or np.dtype(dtype).str in str(err) or "dtype" in str(err)


@pytest.mark.parametrize("op,name", [(o, n) for o, n in ARRAY_ARGS if not (o == "matmul" and n == "a")],
                         ids=[f"{o}-{n}" for o, n in ARRAY_ARGS if not (o == "matmul" and n == "a")])
def test_mixed_float_dtypes_are_a_type_error(no_kernels, op, name):
    """One argument float64 while the others are float32: a TypeError, never a silent cast
    (avg/adaptive/global backward have one array: the result takes its dtype instead)."""
    fn, kw = CALLS[op]
    arrays = [n for n, v in kw.items() if isinstance(v, np.ndarray)]
    if len(arrays) == 1:
        pytest.skip("a single array argument: nothing to mix")
    _raises(TypeError, ["mixed dtypes", name], op, **{name: kw[name].astype(np.float64)})


@pytest.mark.parametrize("op,name", ARRAY_ARGS, ids=[f"{o}-{n}" for o, n in ARRAY_ARGS])
def test_array_arguments_wrong_ndim(no_kernels, op, name):
    value = CALLS[op][1][name]
    for bad in (value[..., None][None], value.reshape(-1)[:1].reshape(()), value.reshape(value.shape[0], -1)):
        if bad.ndim == value.ndim or (op.startswith("pointwise") and name == "weight" and bad.ndim in (2, 4)):
            continue
        if name in ("x", "grad_output") and bad.ndim == 3 and op not in ("matmul",):
            continue  # 3-D is the unbatched form
        _raises(ValueError, name, op, **{name: bad})


# ---- shapes and channels -----------------------------------------------------------------------------

@pytest.mark.parametrize("call,words", [
    (lambda: _call("matmul", b=_rand((4, 4))), ["inner dimensions", "(3, 5)", "(4, 4)"]),
    (lambda: _call("conv2d", weight=_rand((6, 3, 3, 3))), ["channels", "weight"]),
    (lambda: _call("conv2d", groups=4, weight=_rand((6, 1, 3, 3))), ["groups=4", "6"]),
    (lambda: _call("conv2d", groups=3, weight=_rand((6, 1, 3, 3))), ["groups=3", "4"]),
    (lambda: _call("conv2d", bias=_rand((5,))), ["bias", "(6,)"]),
    (lambda: _call("conv2d_backward", grad_output=np.ones((2, 6, 4, 5), np.float32)), ["grad_output", "(2, 6, 4, 4)"]),
    (lambda: _call("conv_transpose2d", weight=_rand((3, 3, 3, 3))), ["weight.shape[0]", "4"]),
    (lambda: _call("conv_transpose2d", groups=3), ["groups=3", "4"]),
    (lambda: _call("conv_transpose2d_backward", grad_output=np.ones((2, 3, 13, 14), np.float32)),
     ["grad_output", "(2, 3, 14, 14)"]),
    (lambda: _call("depthwise_conv2d", weight=_rand((6, 1, 3, 3))), ["depthwise weight", "C=4"]),
    (lambda: _call("depthwise_conv2d", weight=_rand((8, 2, 3, 3))), ["depthwise weight"]),
    (lambda: _call("pointwise_conv2d", weight=_rand((6, 4, 3, 3))), ["pointwise weight"]),
    (lambda: _call("pointwise_conv2d", weight=_rand((6, 5))), ["channels"]),
    (lambda: _call("max_pool2d_backward", indices=np.zeros((2, 4, 4, 3), np.int64)), ["indices", "(2, 4, 4, 4)"]),
    (lambda: _call("avg_pool2d_backward", input_shape=(2, 4, 9, 9)), ["grad_output", "(2, 4, 5, 5)"]),
    (lambda: _call("adaptive_max_pool2d_backward", output_size=2), ["grad_output", "(2, 4, 2, 2)"]),
    (lambda: _call("global_avg_pool2d_backward", input_shape=(2, 5, 7, 7)), ["grad_output", "(2, 5, 1, 1)"]),
], ids=lambda v: "" if callable(v) else v[0])
def test_shape_and_channel_mismatches(no_kernels, call, words):
    with pytest.raises(ValueError) as info:
        call()
    assert type(info.value) is ValueError
    for w in words:
        assert w in str(info.value), f"message {str(info.value)!r} lacks {w!r}"


# ---- integer arguments ---------------------------------------------------------------------------------

# (value, exception): bools, floats, strings and None are a TypeError; out-of-range ints
# (negative, beyond int32: they would overflow the kernels' index arithmetic) a ValueError.
BAD_INTS = [(True, TypeError), (np.True_, TypeError), (2.0, TypeError), (np.float32(2), TypeError), ("2", TypeError),
            (-1, ValueError), (-2**63, ValueError), (2**31, ValueError), (2**32 + 1, ValueError),
            (2**62, ValueError), (2**63, ValueError), (2**64, ValueError), (np.uint64(2**63), ValueError)]


@pytest.mark.parametrize("op,name", INT_ARGS, ids=[f"{o}-{n}" for o, n in INT_ARGS])
@pytest.mark.parametrize("value,exc", BAD_INTS, ids=lambda v: repr(v) if not isinstance(v, type) else "")
def test_integer_arguments_reject_bad_values(no_kernels, op, name, value, exc):
    """Bools, floats, strings and out-of-range values of every integer argument: TypeError or
    ValueError (never OverflowError, never a crash) whose message names the argument."""
    string_padding = name == "padding" and op.startswith(("conv2d", "depthwise"))
    # conv2d's padding may be a string ("valid" or "same"): another string is a ValueError
    _raises(ValueError if string_padding and isinstance(value, str) else exc, [name, str(value)], op,
            **{name: value})
    if name not in ("groups", "divisor_override", "input_shape"):
        _raises(exc, [name, str(value)], op, **{name: (1, value)})   # one entry of an (h, w) pair


@pytest.mark.parametrize("op,name", [(o, n) for o, n in INT_ARGS if n in ("stride", "dilation", "groups",
                                                                              "kernel_size", "output_size",
                                                                              "divisor_override")],
                         ids=lambda v: v)
def test_integer_arguments_reject_zero(no_kernels, op, name):
    _raises(ValueError, name, op, **{name: 0})


@pytest.mark.parametrize("op,name", INT_ARGS, ids=[f"{o}-{n}" for o, n in INT_ARGS])
@pytest.mark.parametrize("itype", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_integer_arguments_accept_numpy_integers(op, name, itype):
    value = CALLS[op][1][name]
    expected = _call(op)
    got = _call(op, **{name: itype(value)})
    for g, e in zip(_as_tuple(got), _as_tuple(expected)):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("op", ["avg_pool2d_backward", "adaptive_avg_pool2d_backward", "global_avg_pool2d_backward"])
@pytest.mark.parametrize("shape,exc", [((2, 4, 7, 7.0), TypeError), ((2, 4, 7, True), TypeError),
                                       ((2, 4, 7, -7), ValueError), ((2, 4, 7, 2**31), ValueError),
                                       ((2, 4, 7, 2**64), ValueError), ((2**63, 4, 7, 7), ValueError),
                                       ([2, 4, "7", 7], TypeError), (7, TypeError)])
def test_input_shape_is_checked(no_kernels, op, shape, exc):
    _raises(exc, ["input_shape"], op, input_shape=shape)


@pytest.mark.parametrize("call,exc,words", [
    (lambda: _call("conv2d", stride=(1, 2, 3)), ValueError, "stride"),
    (lambda: _call("conv2d", padding=((1, 2), (3,))), ValueError, "padding"),
    (lambda: _call("conv2d", padding=((1, 2**40), (0, 0))), ValueError, "padding"),
    (lambda: _call("conv2d", padding=((1, True), (0, 0))), TypeError, "padding"),
    (lambda: _call("conv2d", padding="full"), ValueError, "padding"),
    (lambda: _call("conv2d", algorithm="fft"), ValueError, "algorithm"),
    (lambda: _call("max_pool2d", ceil_mode=1), TypeError, "ceil_mode"),
    (lambda: _call("max_pool2d", return_indices=None), TypeError, "return_indices"),
    (lambda: _call("avg_pool2d", count_include_pad="yes"), TypeError, "count_include_pad"),
    (lambda: _call("adaptive_avg_pool2d", output_size=(3, 2.0)), TypeError, "output_size[1]"),
    (lambda: _call("adaptive_max_pool2d", output_size=(None, 2**31)), ValueError, "output_size[1]"),
    (lambda: _call("max_pool2d_backward", indices=np.zeros((2, 4, 4, 4), np.float32)), TypeError, "indices"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_other_arguments(no_kernels, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) is exc and words in str(info.value), str(info.value)


# ---- output sizes that would be zero or negative ---------------------------------------------------------

@pytest.mark.parametrize("op,changes,words", [
    ("conv2d", dict(padding=0, x=_rand((2, 4, 2, 7))), "larger than the padded input"),
    ("conv2d", dict(dilation=4, padding=0), "larger than the padded input"),
    ("conv2d_backward", dict(dilation=(1, 5), padding=0), "larger than the padded input"),
    ("conv_transpose2d", dict(padding=8, stride=1, output_padding=0), "output size would be"),
    ("conv_transpose2d_backward", dict(padding=(0, 9), stride=1, output_padding=0), "output size would be"),
    ("depthwise_conv2d", dict(padding=0, dilation=4), "larger than the padded input"),
    ("max_pool2d", dict(kernel_size=9, padding=0), "larger than the padded input"),
    ("max_pool2d", dict(kernel_size=3, padding=0, dilation=(1, 4)), "larger than the padded input"),
    ("avg_pool2d_backward", dict(kernel_size=(1, 8), padding=0, stride=1), "larger than the padded input"),
])
def test_output_size_below_one(no_kernels, op, changes, words):
    _raises(ValueError, words, op, **changes)


# ---- out= --------------------------------------------------------------------------------------------------

def _out_cases():
    x, w, b = CALLS["conv2d"][1]["x"], CALLS["conv2d"][1]["weight"], CALLS["conv2d"][1]["bias"]
    shape = F.conv2d(x, w, b, stride=2, padding=1).shape
    big = np.empty((2,) + shape, np.float32)
    buf = np.empty(x.size + int(np.prod(shape)), np.float32)
    x_in_buf = buf[:x.size].reshape(x.shape)
    x_in_buf[...] = x
    wb = np.empty(w.size + 6, np.float32)
    w_in_wb = wb[6:].reshape(w.shape)
    w_in_wb[...] = w
    n_out = int(np.prod(shape))
    ro = np.empty(shape, np.float32)
    ro.flags.writeable = False
    return [
        ("wrong shape", dict(out=np.empty(shape[:-1] + (5,), np.float32)), ValueError, "out has shape"),
        ("unbatched shape for batched x", dict(out=np.empty(shape[1:], np.float32)), ValueError, "out has shape"),
        ("wrong dtype", dict(out=np.empty(shape, np.float64)), TypeError, "out has dtype"),
        ("int dtype", dict(out=np.empty(shape, np.int32)), TypeError, "out has dtype"),
        ("not contiguous", dict(out=big[:, 0]), ValueError, "C-contiguous"),
        ("fortran", dict(out=np.empty(shape, np.float32, order="F")), ValueError, "C-contiguous"),
        ("read-only", dict(out=ro), ValueError, "read-only"),
        ("list", dict(out=np.empty(shape).tolist()), TypeError, "out must be a numpy.ndarray"),
        ("aliases x", dict(x=x_in_buf, out=buf[x.size - 3:x.size - 3 + int(np.prod(shape))].reshape(shape)),
         ValueError, "shares memory with x"),
        ("aliases weight", dict(weight=w_in_wb, out=wb[:n_out].reshape(shape)), ValueError,
         "shares memory with weight"),
    ]


@pytest.mark.parametrize("case", _out_cases(), ids=lambda c: c[0])
def test_conv2d_out_is_checked(no_kernels, case):
    _, changes, exc, words = case
    _raises(exc, words, "conv2d", **changes)


def test_conv2d_out_aliasing_bias(no_kernels):
    shape = (2, 6, 4, 4)
    buf = np.zeros(int(np.prod(shape)), np.float32)
    _raises(ValueError, "shares memory with bias", "conv2d", bias=buf[:6], out=buf.reshape(shape))


def test_matmul_out_overlapping_a_through_a_shared_buffer(no_kernels):
    buf = np.zeros(40, np.float32)
    a = buf[:15].reshape(3, 5)
    out = buf[12:24].reshape(3, 4)
    _raises(ValueError, "shares memory with a", "matmul", a=a, out=out)


def test_out_given_and_correct_when_arguments_are_valid(assert_conv2d_close):
    fn, kw = CALLS["conv2d"]
    expected = fn(**kw)
    out = np.full(expected.shape, np.nan, np.float32)
    assert fn(**kw, out=out) is out
    np.testing.assert_array_equal(out, expected)
    a, b = CALLS["matmul"][1]["a"], CALLS["matmul"][1]["b"]
    out = np.full((3, 4), np.nan, np.float32)
    assert fastconv.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, fastconv.matmul(a, b))


# ---- sizes beyond 32-bit index range -------------------------------------------------------------------------

def _huge_zero_buffer(nbytes):
    """A read-write anonymous mapping of nbytes that reserves no memory: untouched pages read as
    zero from the shared zero page, so a view at offsets beyond 2**31 elements costs a few pages."""
    flags = mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", 0x20) | getattr(mmap, "MAP_NORESERVE", 0x4000)
    try:
        return mmap.mmap(-1, nbytes, flags=flags)
    except (OSError, OverflowError, ValueError) as exc:  # pragma: no cover - depends on the OS
        pytest.skip(f"cannot map {nbytes} bytes of address space: {exc}")


def _close(mm):
    try:
        mm.close()
    except BufferError:  # an array still points into it (a failed assertion's traceback): let it be
        pass


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matmul_reads_views_whose_offsets_exceed_int32(isa, dtype):
    """matmul reads strided inputs in place: operands whose row stride is more than 2**31
    elements (byte offsets beyond 2**34) are indexed with 64-bit arithmetic, with positive and
    negative strides. The buffer is a reserve-nothing mapping; only a few pages are touched."""
    itemsize = np.dtype(dtype).itemsize
    stride = 2**31 + 7                                     # elements between rows
    rows = 3
    mm = _huge_zero_buffer(rows * stride * itemsize + 4096)
    try:
        buf = np.frombuffer(mm, dtype=dtype, count=rows * stride + 16)
        rng = np.random.default_rng(0)
        a_vals = rng.standard_normal((rows, 5)).astype(dtype)
        b_vals = rng.standard_normal((5, 4)).astype(dtype)
        a = np.lib.stride_tricks.as_strided(buf, shape=(rows, 5), strides=(stride * itemsize, itemsize))
        a[...] = a_vals
        assert a.strides[0] // itemsize > INT32_MAX
        assert_close_bound(fastconv.matmul(a, b_vals), R.matmul_ref(a_vals, b_vals),
                           R.matmul_abs_ref(a_vals, b_vals), 5, dtype, "matmul, rows 2**31 elements apart")
        # the same rows read backwards (negative row stride), and a transposed view (huge column stride)
        a_rev = a[::-1]
        assert_close_bound(fastconv.matmul(a_rev, b_vals), R.matmul_ref(a_vals[::-1], b_vals),
                           R.matmul_abs_ref(a_vals[::-1], b_vals), 5, dtype, "matmul, negative huge stride")
        c_vals = rng.standard_normal((2, rows)).astype(dtype)
        assert_close_bound(fastconv.matmul(c_vals, a), R.matmul_ref(c_vals, a_vals), R.matmul_abs_ref(c_vals, a_vals),
                           rows, dtype, "matmul, b with huge row stride")
        assert_close_bound(fastconv.matmul(a.T, c_vals.T), R.matmul_ref(a_vals.T, c_vals.T),
                           R.matmul_abs_ref(a_vals.T, c_vals.T), rows, dtype, "matmul, a with huge column stride")
        del a, a_rev, buf
    finally:
        _close(mm)


def test_conv_and_pool_accept_views_whose_offsets_exceed_int32(isa):
    """conv2d and pooling copy non-contiguous inputs to contiguous ones first: huge strides are
    fine there too."""
    itemsize = 4
    stride = 2**31 + 3
    mm = _huge_zero_buffer(4 * stride * itemsize + 4096)
    try:
        buf = np.frombuffer(mm, dtype=np.float32, count=4 * stride + 16)
        x = np.lib.stride_tricks.as_strided(buf, shape=(1, 1, 4, 4), strides=(0, 0, stride * itemsize, itemsize))
        vals = _rand((1, 1, 4, 4))
        x[...] = vals
        w = _rand((2, 1, 3, 3))
        check_conv2d(F.conv2d(x, w, padding=1), vals, w, padding=1)
        np.testing.assert_array_equal(F.max_pool2d(x, 2), R.max_pool2d_ref(vals, 2)[0].astype(np.float32))
        del x, buf
    finally:
        _close(mm)


@pytest.mark.parametrize("call", [
    lambda: F.conv2d(_rand((1, 1, 4, 4)), _rand((1, 1, 3, 3)), padding=2**30),
    lambda: F.conv2d(_rand((1, 1, 4, 4)), _rand((1, 1, 3, 3)), padding=((INT32_MAX, 1), (0, INT32_MAX))),
    lambda: F.conv_transpose2d(_rand((1, 1, 4, 4)), _rand((1, 1, 3, 3)), stride=2**30),
    lambda: F.conv_transpose2d(_rand((1, 2, 4, 4)), _rand((2, 1, 3, 3)), dilation=INT32_MAX),
    lambda: F.adaptive_avg_pool2d(_rand((1, 1, 4, 4)), INT32_MAX),
    lambda: F.adaptive_max_pool2d(_rand((1, 2, 4, 4)), (2**30, 2**30)),
    lambda: F.global_avg_pool2d_backward(np.broadcast_to(np.float32(1), (2**30, 2**30, 1, 1)),
                                         (2**30, 2**30, 2**31 - 1, 2**31 - 1)),
    lambda: F.avg_pool2d_backward(np.broadcast_to(np.float32(1), (2**20, 2**20, 4, 4)), (2**20, 2**20, 8, 8), 2),
    lambda: F.adaptive_avg_pool2d_backward(np.broadcast_to(np.float32(1), (2**20, 2**20, 1, 1)), (2**20, 2**20, 8, 8)),
    lambda: fastconv.matmul(np.empty((2**40, 0), np.float32), np.empty((0, 2**40), np.float32)),
], ids=["conv2d-padding", "conv2d-asym-padding", "convT-stride", "convT-dilation", "adaptive-avg", "adaptive-max",
        "global-avg-backward", "avg-backward", "adaptive-avg-backward", "matmul-empty-inner"])
def test_results_too_large_to_allocate_are_refused(no_kernels, call):
    """Outputs whose element count or byte size cannot be allocated: a ValueError naming the
    shape, or NumPy's MemoryError; never an overflow in the kernels (they are never called)."""
    with pytest.raises((ValueError, MemoryError)) as info:
        call()
    if isinstance(info.value, ValueError):
        assert "too large" in str(info.value) or "would be" in str(info.value), str(info.value)


def _run_limited(code, tmp_path, timeout=120):
    """Run `code` in a fresh interpreter, which may call limit(extra_mb) to cap its address space
    at what it uses then plus extra_mb (so a runaway allocation fails instead of eating the
    machine)."""
    prelude = textwrap.dedent("""
        import resource, sys, numpy as np, fastconv
        from fastconv import functional as F
        def limit(extra_mb):
            with open("/proc/self/status") as f:
                vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
            resource.setrlimit(resource.RLIMIT_AS, (vm + extra_mb * 2**20, resource.RLIM_INFINITY))
    """)
    body = prelude + textwrap.dedent(code)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "2")
    r = subprocess.run([sys.executable, "-c", body], cwd=str(tmp_path), env=env, capture_output=True, text=True,
                       timeout=timeout)
    return r


def test_pooling_with_huge_kernel_stride_and_padding_uses_little_memory(tmp_path):
    """Windows far larger than the input (PyTorch's rule allows padding up to half the kernel,
    any stride): the kernels clip to the input instead of allocating or sweeping the padding.
    Run with 256 MB of address space to spare: before the fix these needed gigabytes."""
    code = """
        x = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6) % 7 - 3
        F.max_pool2d(x, 2); F.avg_pool2d(x, 2)        # start the thread pool before the limit
        limit(256)
        k, p = 2**31 - 1, 2**30 - 1
        y = F.max_pool2d(x, k, stride=1, padding=p)
        assert y.shape == (2, 3, 5, 6), y.shape
        assert (y == x.max(axis=(2, 3), keepdims=True)).all()
        y, idx = F.max_pool2d(x, (3, k), stride=(1, 1), padding=(1, p), return_indices=True)
        assert y.shape == (2, 3, 5, 6)
        y = F.avg_pool2d(x, k, stride=1, padding=p, count_include_pad=False)
        assert np.allclose(y, x.mean(axis=(2, 3), keepdims=True), atol=1e-5), y
        y = F.avg_pool2d(x, 1, stride=2**31 - 1)
        assert y.shape == (2, 3, 1, 1) and (y == x[:, :, :1, :1]).all()
        y = F.max_pool2d(x, 1, stride=10**8)
        assert y.shape == (2, 3, 1, 1) and (y == x[:, :, :1, :1]).all()
        y = F.max_pool2d(x, (1, 2), stride=(1, 5), ceil_mode=True)
        assert y.shape == (2, 3, 5, 2)
        g = F.avg_pool2d_backward(np.ones((2, 3, 5, 6), np.float32), x.shape, k, stride=1, padding=p,
                                  count_include_pad=False)
        assert np.allclose(g, 1.0), g
        g = F.max_pool2d_backward(np.ones((2, 3, 5, 6), np.float32), x, k, stride=1, padding=p)
        assert g.sum() == 2 * 3 * 30
        print("ok")
    """
    r = _run_limited(code, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("args,w", [
    (dict(kernel_size=(1, 1201), stride=1, padding=(0, 600)), 40),              # kernel far wider than the row
    (dict(kernel_size=(2, 1201), stride=(1, 2), padding=(1, 600)), 40),         # ... at stride 2
    (dict(kernel_size=(3, 1203), stride=(2, 5), padding=(1, 601), ceil_mode=True), 45),
    (dict(kernel_size=3, stride=(1, 150), padding=1), 300),                     # lanes a huge stride apart
    (dict(kernel_size=(2, 4), stride=(1, 151), padding=(0, 2), ceil_mode=True), 300),
], ids=["k1201", "k1201-s2", "k1203-s5-ceil", "s150", "s151-ceil"])
def test_pooling_far_beyond_the_row_matches_reference(isa, dtype, args, w):
    """Geometries whose window or stride reach dwarfs the row take the clipped row buffer (taps
    that miss the row skipped, lanes gathered with a bounds check): same results as the
    reference, NaN included."""
    x = _rand((2, 3, 5, w), dtype, 11)
    x[0, 1, 2, w // 2] = np.nan
    x[1, 2, 0, 0] = np.inf
    ref_y, ref_i = R.max_pool2d_ref(x, **args)
    _exact(F.max_pool2d(x, **args), ref_y, f"max_pool2d {args}")
    y, idx = F.max_pool2d(x, **args, return_indices=True)
    _exact(y, ref_y, f"max_pool2d with indices {args}")
    _exact(idx, ref_i, f"max_pool2d indices {args}")
    for count_include_pad in (True, False):
        kw = dict(args, count_include_pad=count_include_pad)
        k = args["kernel_size"]
        taps = k * k if isinstance(k, int) else k[0] * k[1]
        with np.errstate(invalid="ignore"):
            assert_close_bound(F.avg_pool2d(x, **kw), R.avg_pool2d_ref(x, **kw), R.avg_pool2d_ref(np.abs(x), **kw),
                               taps, dtype, f"avg_pool2d {kw}")
            gy = _rand(ref_y.shape, dtype, 12)
            assert_close_bound(F.avg_pool2d_backward(gy, x.shape, **kw), R.avg_pool2d_backward_ref(gy, x.shape, **kw),
                               R.avg_pool2d_backward_ref(np.abs(gy), x.shape, **kw), taps, dtype, f"avg backward {kw}")


def test_depthwise_with_huge_padding_and_stride_uses_little_memory(tmp_path):
    """A depthwise layer whose padding dwarfs the input: the padded-copy kernel would need
    gigabytes; the layer still runs, in little memory."""
    code = """
        x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
        w = np.random.default_rng(1).standard_normal((2, 1, 3, 3)).astype(np.float32)
        F.depthwise_conv2d(x, w)
        limit(256)

        def naive(x, w, s, p):
            # y[c, i, j] = sum over taps inside x of w[c, ki, kj] * x[c, i*s - p + ki, j*s - p + kj]
            (sh, sw), (ph, pw) = s, p
            oh, ow = (8 + 2 * ph - 3) // sh + 1, (8 + 2 * pw - 3) // sw + 1
            y = np.zeros((1, 2, oh, ow))
            for c in range(2):
                for i in range(oh):
                    for j in range(ow):
                        for ki in range(3):
                            for kj in range(3):
                                r, q = i * sh - ph + ki, j * sw - pw + kj
                                if 0 <= r < 8 and 0 <= q < 8:
                                    y[0, c, i, j] += w[c, 0, ki, kj] * x[0, c, r, q]
            return y

        for p, s in [((4096, 4096), (4096, 4096)), ((2**20, 2**20), (2**20, 2**20)), ((3000, 1), (3000, 1))]:
            y = F.depthwise_conv2d(x, w, stride=s, padding=p)
            assert np.allclose(y, naive(x, w, s, p), atol=1e-5), (p, s)
            gy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
            got = F.depthwise_conv2d_backward(gy, x, w, stride=s, padding=p)
            ref = F.conv2d_backward(gy, x, w, stride=s, padding=p, groups=2, algorithm="im2col")
            for g, r in zip(got, ref):
                assert np.allclose(g, r, atol=1e-4), (p, s)
        print("ok")
    """
    r = _run_limited(code, tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_failed_workspace_allocations_raise_memory_error(tmp_path):
    """With the address space capped just above what the inputs and outputs need, the kernels'
    own workspaces cannot be allocated: each call raises MemoryError (no crash, no hang), and
    the library keeps working once memory is available again."""
    code = """
        import resource
        x = np.ones((1, 1, 3000, 3000), np.float32)       # 36 MB
        wd = np.ones((1, 1, 3, 3), np.float32)
        out = np.empty((1, 1, 3000, 3000), np.float32)
        row = np.ones((1, 1, 1, 2**23), np.float32)       # one 32 MB row
        F.depthwise_conv2d(x[:, :, :64, :64], wd, padding=1); F.max_pool2d(row[..., :64], (1, 2))
        F.conv2d(x[:, :, :64, :64], wd, padding=1, out=out[:, :, :64, :64].copy())
        limit(24)
        results = []
        for name, call in [
            ("depthwise", lambda: F.conv2d(x, wd, padding=1, groups=1, algorithm="direct", out=out)),
            ("maxpool", lambda: F.max_pool2d(row, (1, 3), stride=(1, 2))),
            ("avgpool", lambda: F.avg_pool2d(row, (1, 3), stride=(1, 2))),
            ("conv_im2col_out", lambda: F.conv2d(x, wd, padding=1, algorithm="im2col", out=out)),
        ]:
            try:
                call()
                results.append(name + ":ok")
            except MemoryError:
                results.append(name + ":MemoryError")
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        y = F.conv2d(x, wd, padding=1)
        assert np.allclose(y[0, 0, 1:-1, 1:-1], 9.0)
        print(" ".join(results))
    """
    r = _run_limited(code, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.split()
    assert all(s.endswith((":ok", ":MemoryError")) for s in out), out
    assert any(s.endswith(":MemoryError") for s in out), out


# ---- zero-size dimensions ---------------------------------------------------------------------------------

def _batch0(kw):
    return {k: (v[:0] if isinstance(v, np.ndarray) and k in ("x", "grad_output") else
                (0,) + tuple(v[1:]) if k == "input_shape" else v) for k, v in kw.items()}


@pytest.mark.parametrize("op", [op for op in CALLS if op != "matmul"])
def test_batch_of_zero_images(isa, op):
    """N = 0: empty results of the right shapes (grad_x empty too), and zero weight and bias
    gradients (empty sums), as PyTorch gives."""
    fn, kw = CALLS[op]
    full = fn(**kw)
    got = fn(**_batch0(kw))
    full = full if isinstance(full, tuple) else (full,)
    got = got if isinstance(got, tuple) else (got,)
    for f, g in zip(full, got):
        assert isinstance(g, np.ndarray)
        if g.dtype.kind == "f" and g.shape == f.shape:       # weight / bias gradients
            assert (g == 0).all() and g.dtype == f.dtype
        else:
            assert g.shape == (0,) + f.shape[1:] and g.dtype == f.dtype and g.size == 0


def test_batch_of_zero_with_out():
    x, w = _rand((0, 3, 5, 5)), _rand((4, 3, 3, 3))
    out = np.empty((0, 4, 3, 3), np.float32)
    assert F.conv2d(x, w, out=out) is out


@pytest.mark.parametrize("m,k,n", [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0), (0, 5, 0), (1, 0, 1)])
def test_matmul_zero_sizes(isa, m, k, n):
    """As numpy.matmul: an empty inner dimension gives zeros."""
    a, b = _rand((m, k)), _rand((k, n))
    c = fastconv.matmul(a, b)
    assert c.shape == (m, n) and c.dtype == np.float32 and c.flags.c_contiguous
    np.testing.assert_array_equal(c, np.matmul(a, b))
    out = np.full((m, n), np.nan, np.float32)
    fastconv.matmul(a, b, out=out)
    np.testing.assert_array_equal(out, np.matmul(a, b))


@pytest.mark.parametrize("op,changes,words", [
    ("conv2d", dict(x=_rand((2, 0, 7, 7)), weight=_rand((6, 0, 3, 3))), "at least one channel"),
    ("conv2d", dict(weight=_rand((0, 4, 3, 3)), bias=None), "non-empty output channels"),
    ("conv2d", dict(x=_rand((2, 4, 0, 7))), "at least one channel, row and column"),
    ("conv2d", dict(x=_rand((4, 7, 0))), "at least one channel, row and column"),
    ("conv2d", dict(weight=_rand((6, 4, 0, 3))), "non-empty output channels and kernel"),
    ("conv2d_backward", dict(x=_rand((2, 0, 7, 7)), weight=_rand((6, 0, 3, 3))), "at least one channel"),
    ("conv_transpose2d", dict(x=_rand((2, 4, 7, 0))), "non-empty"),
    ("conv_transpose2d", dict(weight=_rand((4, 0, 3, 3)), bias=None), "non-empty"),
    ("depthwise_conv2d", dict(x=_rand((2, 0, 7, 7)), weight=_rand((0, 1, 3, 3)), bias=None), "depthwise weight"),
    ("pointwise_conv2d", dict(weight=_rand((0, 4)), bias=None), "non-empty output channels"),
    ("max_pool2d", dict(x=_rand((2, 0, 7, 7))), "at least one channel"),
    ("avg_pool2d", dict(x=_rand((2, 4, 7, 0))), "at least one channel, row and column"),
    ("avg_pool2d_backward", dict(input_shape=(2, 0, 7, 7)), "at least one channel"),
    ("adaptive_avg_pool2d", dict(x=_rand((0, 7, 7))), "at least one channel"),
    ("adaptive_max_pool2d", dict(x=_rand((2, 4, 0, 0))), "at least one channel"),
    ("global_avg_pool2d", dict(x=_rand((2, 0, 1, 1))), "at least one channel"),
    ("global_avg_pool2d_backward", dict(input_shape=(4, 7, 0)), "at least one channel"),
])
def test_empty_channels_or_planes_raise_clearly(no_kernels, op, changes, words):
    """No channels, rows or columns (other than the batch): a ValueError saying so (PyTorch
    raises for these too, or returns shapes that depend on the op)."""
    _raises(ValueError, words, op, **changes)


# ---- NaN and infinities, every op and ISA path ----------------------------------------------------------------

def _sprinkle(a, seed, count=3):
    """a copy of a with NaN, +inf and -inf at `count` random places each."""
    a = a.copy()
    rng = np.random.default_rng(seed)
    count = min(count, a.size // 3)
    flat = a.reshape(-1)
    places = rng.choice(flat.size, size=3 * count, replace=False)
    flat[places[:count]] = np.nan
    flat[places[count:2 * count]] = np.inf
    flat[places[2 * count:]] = -np.inf
    return a


CONV_CASES = [
    dict(stride=1, padding=1, dilation=1, groups=1),
    dict(stride=2, padding=(1, 2), dilation=1, groups=2),
    dict(stride=(1, 2), padding="same", dilation=2, groups=1),
    dict(stride=1, padding=0, dilation=1, groups=4),          # depthwise
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_nonfinite_inputs_propagate(isa, dtype, algorithm, case):
    """NaN and infinities in x (forward and both gradients) and in grad_output (input gradient)
    give exactly the reference's NaN/inf pattern, on every ISA and algorithm."""
    with np.errstate(invalid="ignore", over="ignore"):
        x = _sprinkle(_rand((2, 4, 9, 11), dtype, 1), 7)
        w = _rand((8, 4 // case["groups"], 3, 3), dtype, 2)
        b = _rand((8,), dtype, 3)
        y = F.conv2d(x, w, b, **case, algorithm=algorithm)
        check_conv2d(y, x, w, b, **case, what=f"conv2d {algorithm} {case}")
        gy = _sprinkle(_rand(y.shape, dtype, 4), 8, 2)
        gx, _, gb = F.conv2d_backward(gy, x, w, **case, algorithm=algorithm, weight_grad=False)
        check_conv2d_backward((gx, None, gb), gy, x, w, **case, flags=(True, False, True),
                              what=f"conv2d_backward {algorithm} {case}")
        gy = _rand(y.shape, dtype, 5)
        _, gw, _ = F.conv2d_backward(gy, x, w, **case, algorithm=algorithm, input_grad=False, bias_grad=False)
        check_conv2d_backward((None, gw, None), gy, x, w, **case, flags=(False, True, False),
                              what=f"conv2d weight gradient {algorithm} {case}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_nonfinite_weights_and_grad_output_propagate(isa, dtype, algorithm, case):
    """NaN and infinities in the weight (forward) and in grad_output (weight gradient): the
    zero padding is a real zero in both sums (0 * inf = NaN, as in the reference and in
    PyTorch's conv2d), whichever algorithm runs."""
    with np.errstate(invalid="ignore", over="ignore"):
        x = _rand((2, 4, 9, 11), dtype, 1)
        w = _sprinkle(_rand((8, 4 // case["groups"], 3, 3), dtype, 2), 9, 1)
        y = F.conv2d(x, w, None, **case, algorithm=algorithm)
        check_conv2d(y, x, w, None, **case, what=f"conv2d {algorithm} {case}")
        gy = _sprinkle(_rand(y.shape, dtype, 4), 10, 2)
        _, gw, gb = F.conv2d_backward(gy, x, w, **case, algorithm=algorithm, input_grad=False)
        check_conv2d_backward((None, gw, gb), gy, x, w, **case, flags=(False, True, True),
                              what=f"conv2d weight gradient {algorithm} {case}")


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_conv2d_weight_gradient_taps_that_never_reach_the_input(isa, algorithm):
    """Dilation and padding such that some kernel columns only ever read padding: their weight
    gradient is the sum of dy * 0 over the plane, NaN exactly where that plane holds a NaN -- and
    nothing is read past the rows of grad_output (a NaN in the next plane must not leak in)."""
    args = dict(stride=1, padding=(1, 6), dilation=(1, 6), groups=1)
    x = _rand((2, 2, 3, 2), np.float64, 1)      # (2 input channels: not the depthwise kernels)
    w = _rand((2, 2, 3, 3), np.float64, 2)
    gy = _rand((2, 2, 3, 2), np.float64, 3)
    gy[1, 1, 0, 0] = np.nan                      # the first element of the last plane (channel 1)
    with np.errstate(invalid="ignore"):
        grads = F.conv2d_backward(gy, x, w, **args, algorithm=algorithm)
        check_conv2d_backward(grads, gy, x, w, **args, what=f"conv2d_backward {algorithm}")
    assert np.isfinite(grads[1][0]).all() and np.isnan(grads[1][1]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_conv_transpose2d_nonfinite_inputs_propagate(isa, dtype):
    args = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    with np.errstate(invalid="ignore", over="ignore"):
        x = _sprinkle(_rand((2, 4, 5, 6), dtype, 1), 3)
        w = _rand((4, 3, 3, 3), dtype, 2)
        b = _rand((6,), dtype, 3)
        y = F.conv_transpose2d(x, w, b, **args)
        check_conv_transpose2d(y, x, w, b, **args)
        gy = _sprinkle(_rand(y.shape, dtype, 4), 5)
        gx, gw, gb = F.conv_transpose2d_backward(gy, x, w, **args)
        check_conv_transpose2d_backward((gx, gw, gb), gy, x, w, **args)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_and_pointwise_nonfinite_propagate(isa, dtype, stride):
    with np.errstate(invalid="ignore", over="ignore"):
        x = _sprinkle(_rand((2, 3, 10, 19), dtype, 1), 2)
        w = _rand((6, 1, 3, 3), dtype, 2)
        y = F.depthwise_conv2d(x, w, None, stride=stride, padding=1)
        check_conv2d(y, x, w, None, stride=stride, padding=1, groups=3, what="depthwise")
        gy = _sprinkle(_rand(y.shape, dtype, 3), 4)
        grads = F.depthwise_conv2d_backward(gy, x, w, stride=stride, padding=1)
        check_conv2d_backward(grads, gy, x, w, stride=stride, padding=1, groups=3, what="depthwise backward")
        wp = _sprinkle(_rand((5, 3), dtype, 5), 6, 1)
        y = F.pointwise_conv2d(x, wp)
        check_conv2d(y, x, wp[:, :, None, None], what="pointwise")
        gy = _sprinkle(_rand(y.shape, dtype, 7), 8)
        gx, gw, gb = F.pointwise_conv2d_backward(gy, x, wp)
        check_conv2d_backward((gx, gw[:, :, None, None], gb), gy, x, wp[:, :, None, None], what="pointwise backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(2, 3, 9, 37), (1, 2, 5, 5)], ids=["wide", "small"])
def test_pooling_nonfinite_propagate(isa, dtype, shape):
    """NaN wins every max window holding it (vector and scalar paths, with and without
    indices, PyTorch's last-NaN index), infinities are compared as values, and the averages
    carry NaN/inf as the reference's sums do."""
    with np.errstate(invalid="ignore", over="ignore"):
        x = _sprinkle(_rand(shape, dtype, 1), 2, 4)
        for args in [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=(2, 3), stride=2, padding=(1, 1)),
                     dict(kernel_size=3, stride=1, padding=0, dilation=2)]:
            ref_y, ref_i = R.max_pool2d_ref(x, **args)
            y, idx = F.max_pool2d(x, **args, return_indices=True)
            _exact(y, ref_y, f"max_pool2d {args}")
            _exact(idx, ref_i, f"max_pool2d indices {args}")
            _exact(F.max_pool2d(x, **args), ref_y, f"max_pool2d values only {args}")
            gy = _sprinkle(_rand(y.shape, dtype, 3), 4, 1)
            gx = F.max_pool2d_backward(gy, x, **args)
            assert_close_bound(gx, R._scatter_to_indices(gy, ref_i, x.shape),
                               R._scatter_to_indices(np.abs(gy), ref_i, x.shape), 9, dtype, "max_pool2d_backward")
            if "dilation" not in args:
                ya = F.avg_pool2d(x, **args)
                ref = R.avg_pool2d_ref(x, **args)
                assert_close_bound(ya, ref, R.avg_pool2d_ref(np.abs(x), **args), 9, dtype, f"avg_pool2d {args}")
                ga = F.avg_pool2d_backward(gy, x.shape, **args)
                assert_close_bound(ga, R.avg_pool2d_backward_ref(gy, x.shape, **args),
                                   R.avg_pool2d_backward_ref(np.abs(gy), x.shape, **args), 9, dtype, "avg backward")
        for out in [1, 2, (3, 5)]:
            ref_y, ref_i = R.adaptive_max_pool2d_ref(x, out)
            y, idx = F.adaptive_max_pool2d(x, out, return_indices=True)
            _exact(y, ref_y, f"adaptive_max_pool2d {out}")
            _exact(idx, ref_i, f"adaptive_max_pool2d indices {out}")
            n = x.shape[2] * x.shape[3]
            assert_close_bound(F.adaptive_avg_pool2d(x, out), R.adaptive_avg_pool2d_ref(x, out),
                               R.adaptive_avg_pool2d_ref(np.abs(x), out), n, dtype, "adaptive_avg_pool2d")
            gy = _sprinkle(_rand(y.shape, dtype, 5), 6, 1)
            assert_close_bound(F.adaptive_avg_pool2d_backward(gy, x.shape),
                               R.adaptive_avg_pool2d_backward_ref(gy, x.shape),
                               R.adaptive_avg_pool2d_backward_ref(np.abs(gy), x.shape), n, dtype, "adaptive backward")
        n = x.shape[2] * x.shape[3]
        assert_close_bound(F.global_avg_pool2d(x), R.adaptive_avg_pool2d_ref(x, 1),
                           R.adaptive_avg_pool2d_ref(np.abs(x), 1), n, dtype, "global_avg_pool2d")


def test_max_pool2d_nan_matches_torch(isa):
    torch = pytest.importorskip("torch")
    x = _rand((2, 3, 11, 40), np.float32, 3)
    x[0, 0, 2, 3] = x[0, 0, 2, 5] = x[1, 2, 10, 39] = x[1, 1, 0, 0] = np.nan
    x[0, 1, 4, 4] = np.inf
    x[0, 2] = -np.inf
    for args in [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2), dict(kernel_size=3, stride=2,
                                                                                        dilation=2, ceil_mode=True)]:
        y, idx = F.max_pool2d(x, **args, return_indices=True)
        ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), **args, return_indices=True)
        _exact(y, ty.numpy(), f"values {args}")
        np.testing.assert_array_equal(idx, tidx.numpy())
        _exact(F.max_pool2d(x, **args), ty.numpy(), f"values only {args}")


# ---- threads ---------------------------------------------------------------------------------------------------

def _thread_workloads():
    """(name, function of no arguments) pairs, each big enough to use the kernels' threading."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    xd = rng.standard_normal((2, 8, 20, 20))
    wd = rng.standard_normal((8, 1, 5, 5))
    gy = rng.standard_normal((4, 32, 24, 24)).astype(np.float32)
    a = rng.standard_normal((150, 300))
    b = rng.standard_normal((300, 170))
    xp = rng.standard_normal((3, 8, 50, 50)).astype(np.float32)
    return [
        ("conv2d", lambda: F.conv2d(x, w, padding=1)),
        ("conv2d-direct", lambda: F.conv2d(x[:, :4], w[:8, :4], padding=1, algorithm="direct")),
        ("conv2d_backward", lambda: F.conv2d_backward(gy, x, w, padding=1)),
        ("depthwise", lambda: F.depthwise_conv2d(xd, wd, padding=2)),
        ("matmul", lambda: fastconv.matmul(a, b)),
        ("max_pool2d", lambda: F.max_pool2d(xp, 3, stride=2, padding=1, return_indices=True)),
        ("avg_pool2d_backward", lambda: F.avg_pool2d_backward(xp[:, :, :25, :25], xp.shape, 2)),
        ("adaptive_max_pool2d", lambda: F.adaptive_max_pool2d(xp, 7)),
        ("conv_transpose2d", lambda: F.conv_transpose2d(x, w.transpose(1, 0, 2, 3).copy()[:, :16], stride=2)),
    ]


def test_concurrent_python_threads_get_correct_results():
    """Six Python threads run every kind of kernel at once (the GIL is released inside), each
    with its own thread count: every result equals, bit for bit, the same call made alone with
    the same thread count."""
    work = _thread_workloads()
    counts = [1, 2]
    expected = {}
    for n in counts:
        with fastconv.threads(n):
            for name, fn in work:
                expected[name, n] = _as_tuple(fn())
    errors, done = [], []
    barrier = threading.Barrier(6)

    def worker(i):
        try:
            n = counts[i % 2]
            barrier.wait(timeout=60)
            with fastconv.threads(n):
                for rep in range(3):
                    for name, fn in work[i % 3:] + work[:i % 3]:
                        got = _as_tuple(fn())
                        for g, e in zip(got, expected[name, n]):
                            if g is None:
                                continue
                            if not np.array_equal(g, e, equal_nan=True):
                                errors.append(f"thread {i} ({n} kernel threads), {name}, round {rep}: differs")
            done.append(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    assert not errors, errors[:5]
    assert sorted(done) == list(range(6))


def test_threadpoolctl_limits_nest_with_threads_context():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not _core.openmp_enabled():
        pytest.skip("built without OpenMP")
    original = fastconv.get_num_threads()
    x, w = _rand((2, 8, 16, 16)), _rand((16, 8, 3, 3))
    expected = F.conv2d(x, w, padding=1)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastconv.get_num_threads() == 1
        np.testing.assert_allclose(F.conv2d(x, w, padding=1), expected, rtol=1e-5, atol=1e-5)
        with fastconv.threads(3):
            assert fastconv.get_num_threads() == 3
            with threadpoolctl.threadpool_limits(2, user_api="openmp"):
                assert fastconv.get_num_threads() == 2
                np.testing.assert_allclose(F.conv2d(x, w, padding=1), expected, rtol=1e-5, atol=1e-5)
            assert fastconv.get_num_threads() == 3
        assert fastconv.get_num_threads() == 1
    assert fastconv.get_num_threads() == original


def test_threadpoolctl_limit_of_one_starts_no_kernel_threads(tmp_path):
    """Under threadpool_limits(1) the kernels run on the calling thread alone: no OpenMP worker
    thread is ever created (counted in /proc/self/task); without the limit they are."""
    if not _core.openmp_enabled() or not os.path.isdir("/proc/self/task"):
        pytest.skip("needs OpenMP and /proc")
    pytest.importorskip("threadpoolctl")
    code = """
        import os, threadpoolctl
        def nthreads(): return len(os.listdir("/proc/self/task"))
        x = np.ones((8, 32, 32, 32), np.float32); w = np.ones((32, 32, 3, 3), np.float32)
        a = np.ones((400, 400))
        before = nthreads()
        with threadpoolctl.threadpool_limits(1, user_api="openmp"):
            F.conv2d(x, w, padding=1); fastconv.matmul(a, a); F.max_pool2d(x, 3); F.conv2d_backward(x, x, w, padding=1)
            inside = nthreads()
        F.conv2d(x, w, padding=1)
        print(before, inside, nthreads())
    """
    env_threads = max(2, os.cpu_count() or 2)
    r = subprocess.run([sys.executable, "-c", "import numpy as np, fastconv\nfrom fastconv import functional as F\n"
                        + textwrap.dedent(code)], cwd=str(tmp_path), capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": str(env_threads)})
    assert r.returncode == 0, r.stderr
    before, inside, after = map(int, r.stdout.split())
    assert inside == before, f"threads created under threadpool_limits(1): {before} -> {inside}"
    assert after > inside, "the kernels never started worker threads without the limit"
