"""Property tests: pooling forward and backward on random valid argument combinations
(hypothesis, derandomized so every run checks the same examples) against the float64
references, plus identities that hold for any input."""
import numpy as np
import pytest

from fastconv import functional as F

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import assert_close_bound  # noqa: E402
from reference import (  # noqa: E402
    adaptive_avg_pool2d_ref, adaptive_max_pool2d_ref, avg_pool2d_backward_ref, avg_pool2d_ref,
    max_pool2d_backward_ref, max_pool2d_ref, pool_output_size,
)

SETTINGS = dict(max_examples=20, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def one_or_pair(lo, hi):
    """An int or an (h, w) pair in [lo, hi]; returned as (argument, (h, w))."""
    return st.one_of(st.integers(lo, hi).map(lambda v: (v, (v, v))),
                     st.tuples(st.integers(lo, hi), st.integers(lo, hi)).map(lambda p: (p, p)))


@st.composite
def pool_args(draw, dilation=True):
    kernel, (kh, kw) = draw(one_or_pair(1, 6))
    stride, (sh, sw) = draw(st.one_of(st.just((None, (kh, kw))), one_or_pair(1, 4)))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    padding = (ph, pw) if ph != pw or draw(st.booleans()) else ph
    dil, (dh, dw) = draw(one_or_pair(1, 3)) if dilation else (1, (1, 1))
    ceil_mode = draw(st.booleans())
    min_h, min_w = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(min_h, min_h + 12)), draw(st.integers(min_w, min_w + 40))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    shape = (c, h, w) if n == 1 and draw(st.booleans()) else (n, c, h, w)
    return shape, dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                       **({"dilation": dil} if dilation else {}))


def _x(shape, dtype, seed, ties):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return (np.round(x) if ties else x).astype(dtype)


@settings(**SETTINGS)
@given(args=pool_args(), dtype=st.sampled_from([np.float32, np.float64]), ties=st.booleans(),
       seed=st.integers(0, 2**16))
def test_max_pool2d_property(isa, args, dtype, ties, seed):
    shape, kw = args
    x = _x(shape, dtype, seed, ties)
    y, idx = F.max_pool2d(x, **kw, return_indices=True)
    ref_y, ref_idx = max_pool2d_ref(x, **kw)
    assert np.array_equal(y, ref_y, equal_nan=True) and np.array_equal(idx, ref_idx)
    # the values are the input's values at the indices
    planes = x.reshape(-1, shape[-2] * shape[-1])
    ok = (idx >= 0) & (idx < shape[-2] * shape[-1])
    picked = np.take_along_axis(planes, np.where(ok, idx, 0).reshape(planes.shape[0], -1), 1).reshape(y.shape)
    inside = y != -np.inf   # (a dilated window wholly in the padding has -inf and no true argmax)
    assert np.array_equal(np.where(inside, picked, y), y, equal_nan=True)
    dy = _x(y.shape, dtype, seed + 1, False)
    gx = F.max_pool2d_backward(dy, x, **kw, indices=idx)
    k = kw["kernel_size"]
    n_terms = (k * k) if isinstance(k, int) else k[0] * k[1]
    assert_close_bound(gx, max_pool2d_backward_ref(dy, x, **kw), max_pool2d_backward_ref(np.abs(dy), x, **kw),
                       n_terms, dtype, f"max_pool2d_backward {shape} {kw}")
    # the gradient's total is the total of grad_output over windows that have an argmax
    np.testing.assert_allclose(gx.sum(), np.where(ok, dy, 0).sum(dtype=np.float64), rtol=1e-4, atol=1e-3)


@settings(**SETTINGS)
@given(args=pool_args(dilation=False), dtype=st.sampled_from([np.float32, np.float64]),
       cip=st.booleans(), divisor=st.one_of(st.none(), st.integers(1, 50)), seed=st.integers(0, 2**16))
def test_avg_pool2d_property(isa, args, dtype, cip, divisor, seed):
    shape, kw = args
    kw.update(count_include_pad=cip, divisor_override=divisor)
    x = _x(shape, dtype, seed, False)
    y = F.avg_pool2d(x, **kw)
    k = kw["kernel_size"]
    n_terms = (k * k) if isinstance(k, int) else k[0] * k[1]
    assert_close_bound(y, avg_pool2d_ref(x, **kw), avg_pool2d_ref(np.abs(x), **kw), n_terms, dtype,
                       f"avg_pool2d {shape} {kw}")
    dy = _x(y.shape, dtype, seed + 1, False)
    gx = F.avg_pool2d_backward(dy, shape, **kw)
    assert_close_bound(gx, avg_pool2d_backward_ref(dy, shape, **kw), avg_pool2d_backward_ref(np.abs(dy), shape, **kw),
                       n_terms, dtype, f"avg_pool2d_backward {shape} {kw}")
    # adjointness: <avg(x), dy> == <x, avg_backward(dy)>
    lhs, rhs = np.vdot(y.astype(np.float64), dy), np.vdot(x.astype(np.float64), gx)
    assert abs(lhs - rhs) <= 1e-4 * (np.abs(y).sum() * np.abs(dy).max() + 1)


@settings(**SETTINGS)
@given(h=st.integers(1, 20), w=st.integers(1, 40), oh=st.integers(1, 12), ow=st.integers(1, 12),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_adaptive_pool2d_property(isa, h, w, oh, ow, dtype, seed):
    x = _x((2, 2, h, w), dtype, seed, True)
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    assert_close_bound(y, adaptive_avg_pool2d_ref(x, (oh, ow)), adaptive_avg_pool2d_ref(np.abs(x), (oh, ow)),
                       h * w, dtype, f"adaptive_avg_pool2d {(h, w)} -> {(oh, ow)}")
    m, idx = F.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
    ref_m, ref_idx = adaptive_max_pool2d_ref(x, (oh, ow))
    assert np.array_equal(m, ref_m) and np.array_equal(idx, ref_idx)
    if oh == h and ow == w:   # one pixel per window: the identity
        assert np.array_equal(y, x) and np.array_equal(m, x)


@settings(**SETTINGS)
@given(k=st.integers(1, 5), h=st.integers(5, 30), w=st.integers(5, 30))
def test_avg_equals_adaptive_when_windows_tile(k, h, w):
    """Non-overlapping windows that tile the input: avg_pool2d == adaptive_avg_pool2d."""
    h, w = h // k * k, w // k * k
    x = _x((1, 2, h, w), np.float64, h * w, False)
    assert pool_output_size(h, k, k, 0) == h // k
    np.testing.assert_allclose(F.avg_pool2d(x, k), F.adaptive_avg_pool2d(x, (h // k, w // k)), rtol=1e-12)
    np.testing.assert_array_equal(F.max_pool2d(x, k), F.adaptive_max_pool2d(x, (h // k, w // k)))
