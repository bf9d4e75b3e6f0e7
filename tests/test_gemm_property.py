"""Property test: fastconv.matmul on random shapes and random strided views (hypothesis,
derandomized so every run checks the same examples)."""
import numpy as np
import pytest

import fastconv

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

STEPS = [(1, 1), (2, 1), (1, 3), (-1, 1), (1, -2), (-2, -1), (3, -1)]


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          # `isa` is per test, not per example, on purpose: every example runs on that ISA.
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70),
       step_a=st.sampled_from(STEPS), step_b=st.sampled_from(STEPS),
       trans_a=st.booleans(), trans_b=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_matmul_random_strided_views(isa, m, k, n, step_a, step_b, trans_a, trans_b, dtype, seed,
                                     assert_matmul_close):
    rng = np.random.default_rng(seed)

    def view(rows, cols, step, trans):
        if trans:
            rows, cols, step = cols, rows, step[::-1]
        big = rng.standard_normal((rows * abs(step[0]), cols * abs(step[1]))).astype(dtype)
        x = big[:: step[0], :: step[1]]
        return x.T if trans else x

    a = view(m, k, step_a, trans_a)
    b = view(k, n, step_b, trans_b)
    assert a.shape == (m, k) and b.shape == (k, n)
    assert_matmul_close(fastconv.matmul(a, b), a, b)
