"""PyTorch as an optional second oracle for pooling (skipped when torch is not installed): the
float64 references and fastconv against torch.nn.functional's pooling and its autograd
gradients, on random argument combinations with ties and NaN."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

from fastconv import functional as F  # noqa: E402
from reference import avg_pool2d_ref, max_pool2d_ref  # noqa: E402


def _cases(count, seed):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        h = int(rng.integers(max(1, (k[0] - 1) * d[0] + 1 - 2 * p[0]), 20))
        w = int(rng.integers(max(1, (k[1] - 1) * d[1] + 1 - 2 * p[1]), 50))
        yield (int(rng.integers(1, 3)), int(rng.integers(1, 4)), h, w), k, s, p, d, bool(rng.integers(2))


def _x(shape, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape) * 2) / 2
    x[rng.random(shape) < 0.02] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_matches_torch(dtype):
    for i, (shape, k, s, p, d, ceil) in enumerate(_cases(60, 1)):
        x = _x(shape, i, dtype)
        X = torch.tensor(x, requires_grad=True)
        Y, I = TF.max_pool2d(X, k, s, p, d, ceil, return_indices=True)
        y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        what = f"{shape} k={k} s={s} p={p} d={d} ceil={ceil}"
        assert np.array_equal(y, Y.detach().numpy(), equal_nan=True), what
        assert np.array_equal(idx, I.numpy()), what
        ref_y, ref_idx = max_pool2d_ref(x, k, s, p, d, ceil)
        assert np.array_equal(ref_y, Y.detach().numpy().astype(np.float64), equal_nan=True), "reference: " + what
        assert np.array_equal(ref_idx, I.numpy()), "reference indices: " + what
        g = np.random.default_rng(i).standard_normal(y.shape).astype(dtype)
        Y.backward(torch.tensor(g))
        np.testing.assert_allclose(F.max_pool2d_backward(g, x, k, s, p, d, ceil), X.grad.numpy(), rtol=1e-5,
                                   atol=1e-5, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_matches_torch(dtype):
    modes = [(True, None), (False, None), (True, 3), (False, 5)]
    for i, (shape, k, s, p, _, ceil) in enumerate(_cases(60, 2)):
        cip, div = modes[i % 4]
        x = _x(shape, i, dtype)
        x[np.isnan(x)] = 0.25
        X = torch.tensor(x, requires_grad=True)
        Y = TF.avg_pool2d(X, k, s, p, ceil, cip, div)
        what = f"{shape} k={k} s={s} p={p} ceil={ceil} cip={cip} div={div}"
        y = F.avg_pool2d(x, k, s, p, ceil, cip, div)
        np.testing.assert_allclose(y, Y.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=what)
        np.testing.assert_allclose(avg_pool2d_ref(x, k, s, p, ceil, cip, div), Y.detach().numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg="reference: " + what)
        g = np.random.default_rng(i).standard_normal(y.shape).astype(dtype)
        Y.backward(torch.tensor(g))
        np.testing.assert_allclose(F.avg_pool2d_backward(g, x.shape, k, s, p, ceil, cip, div), X.grad.numpy(),
                                   rtol=1e-5, atol=1e-5, err_msg=what)


def test_adaptive_and_global_match_torch():
    rng = np.random.default_rng(3)
    for i in range(40):
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        size = (int(rng.integers(1, 12)), int(rng.integers(1, 12)))
        x = _x((2, 3, h, w), i)
        X = torch.tensor(x, requires_grad=True)
        what = f"{(h, w)} -> {size}"
        Ym, Im = TF.adaptive_max_pool2d(X, size, return_indices=True)
        m, idx = F.adaptive_max_pool2d(x, size, return_indices=True)
        assert np.array_equal(m, Ym.detach().numpy(), equal_nan=True) and np.array_equal(idx, Im.numpy()), what
        g = rng.standard_normal(m.shape)
        Ym.backward(torch.tensor(g))
        np.testing.assert_allclose(F.adaptive_max_pool2d_backward(g, x, size), X.grad.numpy(), atol=1e-12,
                                   err_msg=what)
        x = np.nan_to_num(x)
        X = torch.tensor(x, requires_grad=True)
        Ya = TF.adaptive_avg_pool2d(X, size)
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x, size), Ya.detach().numpy(), rtol=1e-12, atol=1e-14)
        Ya.backward(torch.tensor(g))
        np.testing.assert_allclose(F.adaptive_avg_pool2d_backward(g, x.shape), X.grad.numpy(), rtol=1e-12,
                                   atol=1e-14, err_msg=what)
        np.testing.assert_allclose(F.global_avg_pool2d(x), TF.adaptive_avg_pool2d(X, 1).detach().numpy(),
                                   rtol=1e-12, atol=1e-14)
