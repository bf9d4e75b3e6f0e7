"""Pooling against the float64 NumPy references (tests/reference.py): grids over kernel sizes,
strides, paddings, dilations, ceil_mode, count_include_pad and divisor_override, on every ISA
path, both dtypes; NaN, ties and infinities; layouts and threads; finite-difference gradients.

Max pooling is exact (a comparison, no arithmetic): values and indices must equal the
reference's. Sums (average pooling, every backward pass) are checked with the elementwise
rounding bound of conftest.assert_close_bound."""
import functools
import itertools

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from conftest import assert_close_bound
import reference
from reference import adaptive_avg_pool2d_backward_ref, adaptive_avg_pool2d_ref, avg_pool2d_ref, max_pool2d_ref

DTYPES = [np.float32, np.float64]
# Square 1..7 and non-square kernels; the planes are wide enough for whole vectors of every ISA
# (16 float32 lanes on AVX-512) at stride 1 and 2, odd, and small for the big kernels too.
KERNELS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 7), (1, 3), (3, 1), (2, 5), (7, 4)]
STRIDES = [None, 1, 2, 3, (2, 1)]
SHAPES = {"wide": (1, 2, 23, 41), "odd": (2, 3, 9, 13)}


def _data(shape, dtype, seed=0, ties=False):
    """Random values exactly representable in float32 (so both dtypes share one reference)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    if ties:
        x = np.round(x * 2) / 2   # many equal values in every window
    return x.astype(dtype)


@functools.lru_cache(maxsize=None)
def _ref(name, inputs, args=(), absolute=False):
    """reference.<name>(*arrays, *args), the arrays made by _data from the (shape, seed, ties)
    keys in `inputs`, the first one made absolute when asked (for the error bound's scale).
    Cached: every ISA and both dtypes of a case share one reference computation."""
    arrays = [_data(shape, np.float64, seed, ties) for shape, seed, ties in inputs]
    if absolute:
        arrays[0] = np.abs(arrays[0])
    out = getattr(reference, name)(*arrays, *args)
    for a in (out if isinstance(out, tuple) else (out,)):
        a.setflags(write=False)
    return out


def _assert_exact(got, ref, what):
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    bad = ~((got == ref) | (np.isnan(got) & np.isnan(ref)))
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} differ, first at {i}: got {got[i]!r}, "
                             f"expected {ref[i]!r}")


def _check_max(key, dtype, kernel, stride, padding, dilation=1, ceil_mode=False, *, what):
    """max_pool2d of the _data(*key) array, with and without indices, against the reference."""
    x = _data(key[0], dtype, *key[1:])
    y, idx = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    ref_y, ref_idx = _ref("max_pool2d_ref", (key,), (kernel, stride, padding, dilation, ceil_mode))
    assert y.dtype == x.dtype and y.flags.c_contiguous and idx.dtype == np.int64 and idx.flags.c_contiguous
    _assert_exact(y, ref_y, f"{what} values")
    _assert_exact(idx, ref_idx, f"{what} indices")
    _assert_exact(F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode), ref_y, f"{what} values only")


def _pool_cases(kernel, with_dilation):
    """(stride, padding, dilation, ceil_mode, mode index) over the grid for one kernel: every
    stride x padding x ceil_mode, the dilations (and the caller's modes) taken in turn."""
    half = (kernel[0] // 2, kernel[1] // 2)
    pads = [0, half] if half != (0, 0) else [0]
    dils = [1, 2, (1, 3)] if with_dilation else [1]
    for i, (stride, padding, ceil_mode) in enumerate(itertools.product(STRIDES, pads, (False, True))):
        yield stride, padding, dils[i % len(dils)], ceil_mode, i


def _fits(shape, kernel, padding, dilation):
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    return shape[-2] + 2 * ph >= (kernel[0] - 1) * dh + 1 and shape[-1] + 2 * pw >= (kernel[1] - 1) * dw + 1


# ---- max pooling ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", KERNELS, ids=str)
def test_max_pool2d_grid(isa, kernel, dtype):
    for name, shape in SHAPES.items():
        key = (shape, sum(kernel), name == "odd")
        for stride, padding, dilation, ceil_mode, _ in _pool_cases(kernel, True):
            if not _fits(shape, kernel, padding, dilation):
                continue
            _check_max(key, dtype, kernel, stride, padding, dilation, ceil_mode,
                       what=f"max_pool2d {name} {shape} k={kernel} s={stride} p={padding} d={dilation} ceil={ceil_mode}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_pool2d_real_layers(isa, dtype):
    """ResNet's 3x3/2 pad 1 and VGG's 2x2/2 at sizes with whole and partial vectors."""
    for shape, args in [((1, 3, 112, 112), (3, 2, 1)), ((2, 2, 56, 57), (2, 2, 0)), ((1, 2, 35, 35), (3, 1, 1)),
                        ((1, 2, 33, 70), (3, 2, 0)), ((1, 2, 17, 65), (2, 2, 0, 1, True))]:
        _check_max((shape, shape[-1], False), dtype, *args, what=f"max_pool2d {shape} {args}")


def test_max_pool2d_nan_ties_and_infinities(isa):
    x = _data((1, 2, 20, 37), np.float32, seed=3, ties=True)
    x[0, 0, 3, 5] = np.nan
    x[0, 0, 3, 7] = np.nan          # two NaN in one window: PyTorch reports the last
    x[0, 1, 10:, :] = -np.inf       # windows of only -inf: the first valid index
    x[0, 1, 0, 0] = np.inf
    for args in [(3, 1, 1), (3, 2, 1), (2, 2, 0), (5, 3, 2), (3, 1, 0, 2)]:
        y, idx = F.max_pool2d(x, *args, return_indices=True)
        ref_y, ref_idx = max_pool2d_ref(x, *args)
        _assert_exact(y, ref_y, f"max_pool2d nan/inf {args}")
        _assert_exact(idx, ref_idx, f"max_pool2d nan/inf {args} indices")
        _assert_exact(F.max_pool2d(x, *args), ref_y, f"max_pool2d nan/inf {args} values only")
    y = F.max_pool2d(x, 3, 1, 1)
    assert np.isnan(y[0, 0, 2:5, 4:9]).all(), "NaN must propagate to every window holding it"
    y, idx = F.max_pool2d(np.zeros((1, 1, 5, 20), np.float64), 3, 1, 1, return_indices=True)
    ref_y, ref_idx = max_pool2d_ref(np.zeros((1, 1, 5, 20)), 3, 1, 1)
    _assert_exact(idx, ref_idx, "all-equal windows: first index")


def test_max_pool2d_window_in_padding_only():
    """A dilated window can lie wholly in the padding: -inf, as PyTorch, and a zero gradient."""
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    y, idx = F.max_pool2d(x, 2, 1, 1, 3, return_indices=True)
    ref_y, ref_idx = max_pool2d_ref(x, 2, 1, 1, 3)
    _assert_exact(y, ref_y, "values")
    assert np.isneginf(y).all()
    gx = F.max_pool2d_backward(np.ones_like(y), x, 2, 1, 1, 3)
    assert (gx == 0).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (5, 2), (7, 7)], ids=str)
def test_max_pool2d_backward_grid(isa, kernel, dtype):
    shape = (2, 2, 15, 37)
    x = _data(shape, dtype, seed=5, ties=True)
    for stride, padding, dilation, ceil_mode, _ in _pool_cases(kernel, True):
        if not _fits(shape, kernel, padding, dilation):
            continue
        args = (kernel, stride, padding, dilation, ceil_mode)
        y, idx = F.max_pool2d(x, *args, return_indices=True)
        dy = _data(y.shape, dtype, seed=6)
        keys = ((y.shape, 6, False), (shape, 5, True))
        ref = _ref("max_pool2d_backward_ref", keys, args)
        scale = _ref("max_pool2d_backward_ref", keys, args, absolute=True)
        n_terms = kernel[0] * kernel[1]   # at most this many windows share an input
        what = f"max_pool2d_backward k={kernel} s={stride} p={padding} d={dilation} ceil={ceil_mode}"
        for gx in (F.max_pool2d_backward(dy, x, *args), F.max_pool2d_backward(dy, x, *args, indices=idx)):
            assert gx.dtype == x.dtype and gx.shape == x.shape
            assert_close_bound(gx, ref, scale, n_terms, dtype, what)


# ---- average pooling --------------------------------------------------------------------------

AVG_MODES = [(True, None), (False, None), (True, 7), (False, 1)]   # (count_include_pad, divisor_override)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", KERNELS, ids=str)
def test_avg_pool2d_grid(isa, kernel, dtype):
    for name, shape in SHAPES.items():
        key = (shape, sum(kernel), False)
        x = _data(shape, dtype, seed=sum(kernel))
        for stride, padding, _, ceil_mode, i in _pool_cases(kernel, False):
            if not _fits(shape, kernel, padding, 1):
                continue
            args = (kernel, stride, padding, ceil_mode, *AVG_MODES[(i + len(name)) % len(AVG_MODES)])
            y = F.avg_pool2d(x, *args)
            assert y.dtype == x.dtype and y.flags.c_contiguous
            assert_close_bound(y, _ref("avg_pool2d_ref", (key,), args), _ref("avg_pool2d_ref", (key,), args, True),
                               kernel[0] * kernel[1], dtype, f"avg_pool2d {name} {shape} {args}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (1, 3), (5, 4), (7, 7)], ids=str)
def test_avg_pool2d_backward_grid(isa, kernel, dtype):
    shape = (2, 2, 15, 37)
    for stride, padding, _, ceil_mode, i in _pool_cases(kernel, False):
        args = (kernel, stride, padding, ceil_mode, *AVG_MODES[i % len(AVG_MODES)])
        y_shape = F.avg_pool2d(np.zeros(shape, dtype), *args).shape
        dy = _data(y_shape, dtype, seed=7)
        gx = F.avg_pool2d_backward(dy, shape, *args)
        assert gx.dtype == dtype and gx.shape == shape
        n_terms = kernel[0] * kernel[1]   # at most this many windows share an input
        key = ((y_shape, 7, False),)
        assert_close_bound(gx, _ref("avg_pool2d_backward_ref", key, (shape, *args)),
                           _ref("avg_pool2d_backward_ref", key, (shape, *args), True), n_terms, dtype,
                           f"avg_pool2d_backward {args}")


def test_avg_pool2d_real_layers(isa):
    for shape, args in [((1, 3, 35, 35), (3, 1, 1)), ((1, 2, 17, 17), (3, 1, 1, False, False)),
                        ((2, 2, 56, 56), (2, 2)), ((1, 2, 8, 8), (8,))]:
        for dtype in DTYPES:
            x = _data(shape, dtype)
            y = F.avg_pool2d(x, *args)
            assert_close_bound(y, avg_pool2d_ref(x, *args), avg_pool2d_ref(np.abs(x), *args), 64, dtype,
                               f"avg_pool2d {shape} {args}")


def test_avg_pool2d_nan_and_inf(isa):
    x = _data((1, 1, 9, 40), np.float32)
    x[0, 0, 4, 20] = np.nan
    x[0, 0, 0, 0] = np.inf
    y = F.avg_pool2d(x, 3, 1, 1)
    ref = avg_pool2d_ref(x, 3, 1, 1)
    assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.array_equal(np.isinf(y), np.isinf(ref))


# ---- adaptive and global pooling --------------------------------------------------------------

ADAPTIVE_CASES = [((1, 2, 7, 7), 1), ((2, 3, 13, 40), (5, 7)), ((1, 2, 10, 10), (3, 4)),
                  ((1, 1, 5, 6), (8, 9)), ((1, 2, 9, 33), (None, 4)), ((1, 2, 9, 33), (2, None)),
                  ((1, 1, 12, 12), 12), ((3, 4, 6, 20), (6, 1)), ((2, 20, 9, 9), 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_adaptive_pool2d_grid(isa, dtype):
    for shape, size in ADAPTIVE_CASES:
        key = ((shape, shape[-1], True),)
        x = _data(shape, dtype, shape[-1], True)
        full = tuple(s if o is None else o for o, s in zip(size if isinstance(size, tuple) else (size, size),
                                                              shape[-2:]))
        what = f"adaptive {shape} -> {size}"
        y = F.adaptive_avg_pool2d(x, size)
        assert y.shape == shape[:2] + full and y.dtype == dtype
        bound_terms = shape[-1] * shape[-2]
        assert_close_bound(y, _ref("adaptive_avg_pool2d_ref", key, (full,)),
                           _ref("adaptive_avg_pool2d_ref", key, (full,), True), bound_terms, dtype, what)
        m, idx = F.adaptive_max_pool2d(x, size, return_indices=True)
        ref_m, ref_idx = _ref("adaptive_max_pool2d_ref", key, (full,))
        _assert_exact(m, ref_m, what + " max")
        _assert_exact(idx, ref_idx, what + " indices")
        _assert_exact(F.adaptive_max_pool2d(x, size), ref_m, what + " max values only")
        dy_key = ((y.shape, 1, False),)
        dy = _data(y.shape, dtype, seed=1)
        assert_close_bound(F.adaptive_avg_pool2d_backward(dy, shape),
                           _ref("adaptive_avg_pool2d_backward_ref", dy_key, (shape,)),
                           _ref("adaptive_avg_pool2d_backward_ref", dy_key, (shape,), True), bound_terms, dtype,
                           what + " avg backward")
        ref_g = _ref("adaptive_max_pool2d_backward_ref", dy_key + key, (full,))
        scale = _ref("adaptive_max_pool2d_backward_ref", dy_key + key, (full,), True)
        for gx in (F.adaptive_max_pool2d_backward(dy, x, size), F.adaptive_max_pool2d_backward(dy, x, size, idx)):
            assert_close_bound(gx, ref_g, scale, bound_terms, dtype, what + " max backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_global_avg_pool2d(isa, dtype):
    # blocks of VLEN planes (4/8/16 float32 lanes) with a ragged rest, plane sizes below, at and
    # just over a vector, and a masked last vector: every lane of the pairwise fold is checked
    for shape in [(2, 5, 7, 7), (1, 3, 1, 1), (1, 2, 33, 65), (4, 3, 2, 3), (3, 14, 14), (2, 37, 7, 7),
                  (1, 40, 4, 4), (1, 33, 3, 5), (1, 20, 8, 8), (3, 17, 1, 17)]:
        x = _data(shape, dtype)
        y = F.global_avg_pool2d(x)
        assert y.shape == shape[:-2] + (1, 1) and y.dtype == dtype
        n = shape[-1] * shape[-2]
        assert_close_bound(y, adaptive_avg_pool2d_ref(x, 1), adaptive_avg_pool2d_ref(np.abs(x), 1), n, dtype,
                           f"global_avg_pool2d {shape}")
        dy = _data(y.shape, dtype, seed=2)
        gx = F.global_avg_pool2d_backward(dy, shape)
        assert_close_bound(gx, adaptive_avg_pool2d_backward_ref(dy, shape),
                           adaptive_avg_pool2d_backward_ref(np.abs(dy), shape), 1, dtype, "global backward")


# ---- layouts, batch, threads ------------------------------------------------------------------

def test_unbatched_and_empty_batch():
    x = _data((3, 11, 20), np.float64)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    ref_y, ref_idx = max_pool2d_ref(x, 3, 2, 1)
    assert y.shape == ref_y.shape == (3, 6, 10)
    _assert_exact(y, ref_y, "unbatched")
    _assert_exact(idx, ref_idx, "unbatched indices")
    assert F.max_pool2d_backward(np.ones_like(y), x, 3, 2, 1, indices=idx).shape == x.shape
    assert F.avg_pool2d(x, 2).shape == (3, 5, 10)
    assert F.avg_pool2d_backward(np.ones((3, 5, 10)), (3, 11, 20), 2).shape == (3, 11, 20)
    assert F.adaptive_avg_pool2d(x, 4).shape == (3, 4, 4)
    assert F.adaptive_max_pool2d(x, (4, None)).shape == (3, 4, 20)
    assert F.global_avg_pool2d(x).shape == (3, 1, 1)
    e = np.zeros((0, 3, 8, 8), np.float32)
    y, idx = F.max_pool2d(e, 2, return_indices=True)
    assert y.shape == idx.shape == (0, 3, 4, 4)
    assert F.avg_pool2d_backward(np.zeros((0, 3, 4, 4), np.float32), e.shape, 2).shape == e.shape
    assert F.max_pool2d_backward(y, e, 2).shape == e.shape
    assert F.adaptive_avg_pool2d(e, 3).shape == (0, 3, 3, 3)
    assert F.global_avg_pool2d_backward(np.zeros((0, 3, 1, 1), np.float32), e.shape).shape == e.shape


def test_any_layout_is_read_and_input_untouched():
    base = _data((2, 3, 30, 40), np.float32)
    for x in (base[:, ::2, ::-1, 1::2], np.asfortranarray(base), base.transpose(1, 0, 2, 3)):
        x.setflags(write=False)
        before = x.copy()
        _assert_exact(F.max_pool2d(x, 3, 2, 1), max_pool2d_ref(x, 3, 2, 1)[0], "strided max")
        assert_close_bound(F.avg_pool2d(x, 3, 1, 1), avg_pool2d_ref(x, 3, 1, 1), avg_pool2d_ref(np.abs(x), 3, 1, 1),
                           9, np.float32, "strided avg")
        assert_close_bound(F.global_avg_pool2d(x), adaptive_avg_pool2d_ref(x, 1),
                           adaptive_avg_pool2d_ref(np.abs(x), 1), 600, np.float32, "strided global")
        assert np.array_equal(x, before)


def test_same_result_for_any_thread_count():
    # big enough for 3 threads (the kernels start one per 16K elements read and written)
    x = _data((2, 8, 64, 72), np.float64, seed=9, ties=True)
    results = []
    for n in (1, 2, 3):
        with fastconv.threads(n):
            results.append((F.max_pool2d(x, 3, 2, 1, return_indices=True), F.avg_pool2d(x, 3, 1, 1),
                            F.adaptive_avg_pool2d(x, 7), F.avg_pool2d_backward(x[:, :, :32, :36], x.shape, 2),
                            F.global_avg_pool2d(x), F.max_pool2d_backward(x[:, :, :32, :36], x, 2)))
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
                assert np.array_equal(u, v)


def test_every_isa_gives_the_same_max():
    from fastconv import _core, _runtime
    x = _data((2, 3, 31, 70), np.float32, seed=4, ties=True)
    got = {}
    for isa in _core.supported_isas():
        with _runtime.use_isa(isa):
            got[isa] = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    for isa, (y, idx) in got.items():
        assert np.array_equal(y, got[_core.supported_isas()[0]][0]) and np.array_equal(idx, got[_core.supported_isas()[0]][1]), isa


# ---- finite differences (float64) -------------------------------------------------------------

def _numeric_grad(f, x, dy, eps=1e-6):
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = np.vdot(f(x), dy)
        flat[i] = old - eps
        minus = np.vdot(f(x), dy)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return g


@pytest.mark.parametrize("case", [
    ("avg", dict(kernel_size=3, stride=2, padding=1)),
    ("avg", dict(kernel_size=(2, 3), stride=1, padding=(1, 0), ceil_mode=True, count_include_pad=False)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, divisor_override=4)),
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1), ceil_mode=True)),
    ("adaptive_avg", dict(output_size=(3, 4))),
    ("adaptive_max", dict(output_size=(4, 3))),
    ("global_avg", dict()),
], ids=lambda c: f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items())}")
def test_gradients_by_finite_differences(case):
    kind, kw = case
    rng = np.random.default_rng(11)
    shape = (2, 2, 7, 9)
    # distinct values with gaps far above eps: no ties, so max pooling is differentiable
    x = (rng.permutation(np.prod(shape)).reshape(shape) * 0.01 + rng.uniform(0, 1e-3, shape)).astype(np.float64)
    fwd = {"avg": F.avg_pool2d, "max": F.max_pool2d, "adaptive_avg": F.adaptive_avg_pool2d,
           "adaptive_max": F.adaptive_max_pool2d, "global_avg": F.global_avg_pool2d}[kind]
    f = lambda a: fwd(a, **kw)  # noqa: E731
    dy = rng.standard_normal(f(x).shape)
    if kind == "avg":
        got = F.avg_pool2d_backward(dy, shape, **kw)
    elif kind == "max":
        got = F.max_pool2d_backward(dy, x, **kw)
    elif kind == "adaptive_avg":
        got = F.adaptive_avg_pool2d_backward(dy, shape)
    elif kind == "adaptive_max":
        got = F.adaptive_max_pool2d_backward(dy, x, **kw)
    else:
        got = F.global_avg_pool2d_backward(dy, shape)
    np.testing.assert_allclose(got, _numeric_grad(f, x.copy(), dy), rtol=1e-6, atol=1e-7)
