"""Shared fixtures and error-bound helpers for the fastconv test suite.

Run the suite with the `pytest` console script from the repository root. pyproject.toml sets
--import-mode=importlib, so the *installed* fastconv (with its compiled _core) is imported,
never the source folder beside the tests; the tests folder itself is put on sys.path here so
that test modules can `from reference import ...`.
"""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import fastconv
    from fastconv import _core, _runtime
except ImportError as exc:  # pragma: no cover - an environment problem, not a test failure
    raise pytest.UsageError(
        f"cannot import the compiled fastconv ({exc}). Install it (pip install '.[test]') and run "
        "the `pytest` console script, not `python -m pytest` (which puts the source folder, "
        "without _core, first on sys.path)."
    ) from exc

from reference import (  # noqa: E402  (needs the sys.path entry above)
    conv2d_abs_ref, conv2d_backward_abs_ref, conv2d_backward_ref, conv2d_ref, conv_transpose2d_abs_ref,
    conv_transpose2d_backward_abs_ref, conv_transpose2d_backward_ref, conv_transpose2d_ref, matmul_abs_ref,
    matmul_ref,
)


# ---- slow tests ----------------------------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the tests marked @pytest.mark.slow")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a slow test, skipped unless --runslow is given")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip_slow)


# Every ISA this CPU runs, best first: each test taking `isa` runs once per entry.
SUPPORTED_ISAS = _core.supported_isas()


@pytest.fixture(params=SUPPORTED_ISAS, ids=lambda name: f"isa={name}")
def isa(request):
    """Run the test on one ISA's kernels (every ISA the machine supports, one after another),
    restoring the previously selected ISA afterwards."""
    with _runtime.use_isa(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _restore_num_threads():
    """No test may leak a changed thread count into the next one."""
    before = fastconv.get_num_threads()
    yield
    if fastconv.get_num_threads() != before:
        fastconv.set_num_threads(before)


# ---- error bounds --------------------------------------------------------------------------
#
# A sum of n products computed in floating point (any order, with or without FMA, blocked or
# not) satisfies the classic bound
#     |fl(sum) - sum| <= gamma_n * sum(|a_i * b_i|),   gamma_n = n*u / (1 - n*u),
# where u is the unit roundoff of the working precision (eps/2). So the robust way to check a
# product is elementwise against |a| @ |b|, not with one global rtol: it tolerates cancellation
# (an output near zero built from large terms) yet stays tight, about n*u relative. MARGIN
# covers the float64 reference's own rounding (same order as the result's for float64 inputs)
# and the final rounding to the output dtype. A genuinely wrong result -- a missing or doubled
# term, a term from the wrong row, a stale tile -- is off by about scale/n, far above n*u*scale
# for every n used here (tests/test_gemm.py checks that the bound rejects such results).

MARGIN = 4.0


def unit_roundoff(dtype):
    return float(np.finfo(dtype).eps) / 2


def relative_bound(dtype, n_terms):
    """Allowed |got - ref| as a multiple of the sum of absolute terms, for a dot product of
    n_terms terms computed in `dtype`."""
    return MARGIN * (n_terms + 1) * unit_roundoff(dtype)


def assert_close_bound(got, ref, scale, n_terms, dtype=None, what="result"):
    """Assert got == ref within relative_bound(dtype, n_terms) * scale, elementwise.

    got: the library's result; ref: float64 reference; scale: the sum of absolute terms behind
    each element (same shape). Non-finite reference values must be matched exactly: NaN where
    the reference is NaN, the same infinity where it is infinite."""
    got = np.asarray(got)
    ref = np.asarray(ref, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    dtype = np.dtype(got.dtype if dtype is None else dtype)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, expected {ref.shape}"
    g = got.astype(np.float64)

    nan_got, nan_ref = np.isnan(g), np.isnan(ref)
    if not np.array_equal(nan_got, nan_ref):
        idx = tuple(np.argwhere(nan_got != nan_ref)[0])
        raise AssertionError(f"{what}: NaN pattern differs, first at {idx}: got {g[idx]}, expected {ref[idx]}")
    inf_ref = np.isinf(ref)
    if not np.array_equal(g[inf_ref], ref[inf_ref]) or np.isinf(g[~inf_ref]).any():
        idx = tuple(np.argwhere((np.isinf(g) | inf_ref) & (g != ref))[0])
        raise AssertionError(f"{what}: infinity pattern differs, first at {idx}: got {g[idx]}, expected {ref[idx]}")

    finite = np.isfinite(ref)
    rel = relative_bound(dtype, n_terms)
    # The absolute floor only matters for subnormal-range scales.
    bound = rel * np.where(np.isfinite(scale), scale, 0.0) + (n_terms + 1) * float(np.finfo(dtype).smallest_normal)
    err = np.where(finite, np.abs(g - np.where(finite, ref, 0.0)), 0.0)
    bad = err > bound
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, err / bound, 0.0)), err.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} elements outside the error bound "
            f"({rel:.3g} x sum|terms|, {n_terms} terms, {dtype}); worst at {tuple(int(i) for i in worst)}: "
            f"got {g[worst]!r}, expected {ref[worst]!r}, |error| {err[worst]:.3g} > bound {bound[worst]:.3g}"
        )


def check_matmul(got, a, b):
    """Assert got is a @ b: a C-contiguous array of a's dtype and shape (m, n), within the
    rounding bound of the float64 reference."""
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    m, k = a_arr.shape
    n = b_arr.shape[1]
    assert isinstance(got, np.ndarray), f"matmul returned {type(got).__name__}"
    assert got.dtype == a_arr.dtype, f"result dtype {got.dtype}, expected {a_arr.dtype}"
    assert got.shape == (m, n), f"result shape {got.shape}, expected {(m, n)}"
    assert got.flags.c_contiguous, "result is not C-contiguous"
    assert_close_bound(got, matmul_ref(a_arr, b_arr), matmul_abs_ref(a_arr, b_arr), n_terms=k,
                       dtype=a_arr.dtype, what=f"matmul {m}x{k} @ {k}x{n} ({a_arr.dtype})")


@pytest.fixture
def assert_matmul_close():
    """check_matmul(got, a, b): got is a @ b within the float rounding bound."""
    return check_matmul


@pytest.fixture
def assert_close():
    """assert_close_bound(got, ref, scale, n_terms, dtype=None, what=...)."""
    return assert_close_bound


# ---- convolutions ----------------------------------------------------------------------------
#
# The same elementwise bound, with the sum of absolute terms from the references run on |x|,
# |w|, |b|, |grad_output| (tests/reference.py), and n_terms the longest reduction behind an
# element: conv2d forward Cin/groups*kh*kw (+1 for the bias), grad_x Cout/groups*kh*kw,
# grad_w and grad_b N*OH*OW; conv_transpose2d forward Cin/groups*kh*kw (+1), grad_x
# Cout/groups*kh*kw, grad_w N*H*W (x's pixels), grad_b N*OH*OW.


def _check_result_array(got, dtype, what):
    assert isinstance(got, np.ndarray), f"{what}: returned {type(got).__name__}, expected an ndarray"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.flags.c_contiguous, f"{what}: result is not C-contiguous"


def _batch_pixels(shape):
    """N * H * W of an NCHW (or CHW: N = 1) shape."""
    return (shape[0] if len(shape) == 4 else 1) * shape[-2] * shape[-1]


def check_conv2d(got, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, what="conv2d"):
    """Assert got is conv2d(x, weight, bias, ...) within the rounding bound of the float64
    reference: a C-contiguous array of x's dtype and the reference's shape."""
    x, weight = np.asarray(x), np.asarray(weight)
    args = (stride, padding, dilation, groups)
    _check_result_array(got, x.dtype, what)
    n_terms = weight.shape[1] * weight.shape[2] * weight.shape[3] + (bias is not None)
    assert_close_bound(got, conv2d_ref(x, weight, bias, *args), conv2d_abs_ref(x, weight, bias, *args),
                       n_terms, x.dtype, what)


def _check_grads(grads, refs, scales, n_terms, flags, dtype, what):
    assert isinstance(grads, (tuple, list)) and len(grads) == 3, f"{what}: expected 3 gradients, got {grads!r:.200}"
    for name, got, ref, scale, n, wanted in zip(("grad_x", "grad_weight", "grad_bias"), grads, refs, scales,
                                               n_terms, flags):
        if not wanted:
            assert got is None, f"{what}: {name} was not asked for, yet returned {type(got).__name__}"
            continue
        _check_result_array(got, dtype, f"{what} {name}")
        assert_close_bound(got, ref, scale, n, dtype, f"{what} {name}")


def check_conv2d_backward(grads, grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1,
                          flags=(True, True, True), what="conv2d_backward"):
    """Assert grads == (grad_x, grad_weight, grad_bias) of conv2d within the rounding bound of the
    float64 reference, the ones not asked for (flags) being None."""
    x, weight, grad_output = np.asarray(x), np.asarray(weight), np.asarray(grad_output)
    args = (stride, padding, dilation, groups)
    cout, _, kh, kw = weight.shape
    npix = _batch_pixels(grad_output.shape)
    _check_grads(grads, conv2d_backward_ref(grad_output, x, weight, *args),
                 conv2d_backward_abs_ref(grad_output, x, weight, *args),
                 (cout // groups * kh * kw, npix, npix), flags, x.dtype, what)


def check_conv_transpose2d(got, x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1, what="conv_transpose2d"):
    """Assert got is conv_transpose2d(x, weight, bias, ...) (PyTorch's argument order) within the
    rounding bound of the float64 reference."""
    x, weight = np.asarray(x), np.asarray(weight)
    args = (stride, padding, output_padding, groups, dilation)
    _check_result_array(got, x.dtype, what)
    n_terms = weight.shape[0] // groups * weight.shape[2] * weight.shape[3] + (bias is not None)
    assert_close_bound(got, conv_transpose2d_ref(x, weight, bias, *args),
                       conv_transpose2d_abs_ref(x, weight, bias, *args), n_terms, x.dtype, what)


def check_conv_transpose2d_backward(grads, grad_output, x, weight, stride=1, padding=0, output_padding=0,
                                    groups=1, dilation=1, flags=(True, True, True),
                                    what="conv_transpose2d_backward"):
    """Assert grads == (grad_x, grad_weight, grad_bias) of conv_transpose2d within the rounding
    bound of the float64 reference, the ones not asked for being None."""
    x, weight, grad_output = np.asarray(x), np.asarray(weight), np.asarray(grad_output)
    args = (stride, padding, output_padding, groups, dilation)
    _, cout_g, kh, kw = weight.shape
    _check_grads(grads, conv_transpose2d_backward_ref(grad_output, x, weight, *args),
                 conv_transpose2d_backward_abs_ref(grad_output, x, weight, *args),
                 (cout_g * kh * kw, _batch_pixels(x.shape), _batch_pixels(grad_output.shape)), flags, x.dtype,
                 what)


@pytest.fixture
def assert_conv2d_close():
    """check_conv2d(got, x, weight, bias=None, stride, padding, dilation, groups)."""
    return check_conv2d


@pytest.fixture
def assert_conv2d_backward_close():
    """check_conv2d_backward(grads, grad_output, x, weight, stride, padding, dilation, groups, flags=...)."""
    return check_conv2d_backward


@pytest.fixture
def assert_conv_transpose2d_close():
    """check_conv_transpose2d(got, x, weight, bias, stride, padding, output_padding, groups, dilation)."""
    return check_conv_transpose2d


@pytest.fixture
def assert_conv_transpose2d_backward_close():
    """check_conv_transpose2d_backward(grads, grad_output, x, weight, stride, padding, output_padding,
    groups, dilation, flags=...)."""
    return check_conv_transpose2d_backward
