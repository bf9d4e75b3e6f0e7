"""PyTorch as an optional second oracle (skipped when torch is not installed; it is not a test
requirement): the float64 references of tests/reference.py, and fastconv itself, against
torch.nn.functional.conv2d / conv_transpose2d and torch.autograd gradients."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

from fastconv import functional as F  # noqa: E402
from reference import (  # noqa: E402
    conv2d_backward_ref, conv2d_output_hw, conv2d_ref, conv_transpose2d_backward_ref,
    conv_transpose2d_output_hw, conv_transpose2d_ref, resolve_padding2d,
)


def _torch_conv2d(x, w, b, stride, padding, dilation, groups):
    """torch conv2d with any padding form (asymmetric and "same" at any stride through F.pad),
    plus the autograd gradients of sum(y * g) for a random g: (y, g, (gx, gw, gb))."""
    t, bt, l, r = resolve_padding2d(padding, x.shape[-2:], w.shape[2:], stride, dilation)
    X = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    W = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    B = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    Y = TF.conv2d(TF.pad(X, (l, r, t, bt)), W, B, stride=stride, dilation=dilation, groups=groups)
    g = np.random.default_rng(7).standard_normal(tuple(Y.shape))
    (Y * torch.tensor(g)).sum().backward()
    return Y.detach().numpy(), g, (X.grad.numpy(), W.grad.numpy(), None if B is None else B.grad.numpy())


def _random_conv2d_cases(count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        t, b, l, r = (int(v) for v in rng.integers(0, 3, 4))
        padding = [t, (t, l), ((t, b), (l, r)), "valid", "same"][int(rng.integers(0, 5))]
        hw = (int(rng.integers(1, 12)), int(rng.integers(1, 12)))
        oh, ow = conv2d_output_hw(hw, k, stride, padding, dilation)
        if oh >= 1 and ow >= 1:
            cases.append((int(rng.integers(1, 3)), cin, cout, hw, k, stride, padding, dilation, groups,
                          bool(rng.random() < 0.7)))
    return cases


CONV_CASES = _random_conv2d_cases(40, 2024)


@pytest.mark.parametrize("case", CONV_CASES, ids=[f"c{i}" for i in range(len(CONV_CASES))])
def test_conv2d_references_match_torch(case):
    n, cin, cout, hw, k, stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(CONV_CASES.index(case))
    x = rng.standard_normal((n, cin) + hw)
    w = rng.standard_normal((cout, cin // groups) + k)
    b = rng.standard_normal(cout) if bias else None
    y, g, (gx, gw, gb) = _torch_conv2d(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(conv2d_ref(x, w, b, stride, padding, dilation, groups), y, rtol=1e-12, atol=1e-12)
    rx, rw, rb = conv2d_backward_ref(g, x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(rx, gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rw, gw, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(rb, gb, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_same_padding_matches_torch_at_stride_1():
    """Our "same" (Keras/TF split: the odd one at the bottom/right) is PyTorch's at stride 1."""
    rng = np.random.default_rng(3)
    for k, d, hw in [((3, 3), (1, 1), (5, 6)), ((4, 2), (1, 1), (5, 5)), ((3, 4), (2, 3), (7, 9)),
                     ((1, 5), (1, 2), (4, 4))]:
        x, w = rng.standard_normal((1, 2) + hw), rng.standard_normal((3, 2) + k)
        y = TF.conv2d(torch.tensor(x), torch.tensor(w), padding="same", dilation=d).numpy()
        np.testing.assert_allclose(conv2d_ref(x, w, padding="same", dilation=d), y, rtol=1e-12, atol=1e-12)


def _random_tconv_cases(count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        groups = int(rng.choice([1, 1, 2, 3]))
        cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        output_padding = (int(rng.integers(0, max(stride[0], dilation[0]))),
                          int(rng.integers(0, max(stride[1], dilation[1]))))
        hw = (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        oh, ow = conv_transpose2d_output_hw(hw, k, stride, padding, output_padding, dilation)
        if oh >= 1 and ow >= 1:
            cases.append((int(rng.integers(1, 3)), cin, cout, hw, k, stride, padding, output_padding, groups,
                          dilation, bool(rng.random() < 0.7)))
    return cases


TCONV_CASES = _random_tconv_cases(40, 2025)


def _torch_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    X = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    W = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    B = None if b is None else torch.tensor(b, dtype=torch.float64, requires_grad=True)
    Y = TF.conv_transpose2d(X, W, B, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                            dilation=dilation)
    g = np.random.default_rng(8).standard_normal(tuple(Y.shape))
    (Y * torch.tensor(g)).sum().backward()
    return Y.detach().numpy(), g, (X.grad.numpy(), W.grad.numpy(), None if B is None else B.grad.numpy())


@pytest.mark.parametrize("case", TCONV_CASES, ids=[f"t{i}" for i in range(len(TCONV_CASES))])
def test_conv_transpose2d_references_match_torch(case):
    n, cin, cout, hw, k, *args, bias = case
    rng = np.random.default_rng(len(TCONV_CASES) + TCONV_CASES.index(case))
    x = rng.standard_normal((n, cin) + hw)
    w = rng.standard_normal((cin, cout // args[3]) + k)
    b = rng.standard_normal(cout) if bias else None
    y, g, (gx, gw, gb) = _torch_conv_transpose2d(x, w, b, *args)
    np.testing.assert_allclose(conv_transpose2d_ref(x, w, b, *args), y, rtol=1e-12, atol=1e-12)
    rx, rw, rb = conv_transpose2d_backward_ref(g, x, w, *args)
    np.testing.assert_allclose(rx, gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rw, gw, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(rb, gb, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("case", CONV_CASES[:10], ids=[f"c{i}" for i in range(10)])
def test_fastconv_conv2d_matches_torch(case, algorithm):
    n, cin, cout, hw, k, stride, padding, dilation, groups, bias = case
    rng = np.random.default_rng(99)
    x = rng.standard_normal((n, cin) + hw)
    w = rng.standard_normal((cout, cin // groups) + k)
    b = rng.standard_normal(cout) if bias else None
    y, g, (gx, gw, gb) = _torch_conv2d(x, w, b, stride, padding, dilation, groups)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, algorithm=algorithm)
    np.testing.assert_allclose(F.conv2d(x, w, b, **kw), y, rtol=1e-10, atol=1e-10)
    fx, fw, fb = F.conv2d_backward(g, x, w, **kw)
    np.testing.assert_allclose(fx, gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fw, gw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fb, g.sum((0, 2, 3)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("case", TCONV_CASES[:10], ids=[f"t{i}" for i in range(10)])
def test_fastconv_conv_transpose2d_matches_torch(case, algorithm):
    n, cin, cout, hw, k, *args, bias = case
    rng = np.random.default_rng(98)
    x = rng.standard_normal((n, cin) + hw)
    w = rng.standard_normal((cin, cout // args[3]) + k)
    b = rng.standard_normal(cout) if bias else None
    y, g, (gx, gw, gb) = _torch_conv_transpose2d(x, w, b, *args)
    kw = dict(zip(("stride", "padding", "output_padding", "groups", "dilation"), args), algorithm=algorithm)
    np.testing.assert_allclose(F.conv_transpose2d(x, w, b, **kw), y, rtol=1e-10, atol=1e-10)
    fx, fw, fb = F.conv_transpose2d_backward(g, x, w, **kw)
    np.testing.assert_allclose(fx, gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fw, gw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(fb, g.sum((0, 2, 3)), rtol=1e-10, atol=1e-10)
