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

from reference import matmul_abs_ref, matmul_ref  # noqa: E402  (needs the sys.path entry above)

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
