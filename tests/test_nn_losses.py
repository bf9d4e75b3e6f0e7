"""fastconv.nn.losses: CrossEntropyLoss and MSELoss against float64 NumPy references, central
finite differences, and (when torch is importable) torch.nn's losses."""
import numpy as np
import pytest

from fastconv.nn.losses import CrossEntropyLoss, MSELoss

C = 5


# ---- float64 references, written from PyTorch's documented formulas ----------------------------

def ce_ref(x, y, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits x (N, C, ...) / (C,) and integer labels y, element by element."""
    x = np.asarray(x, dtype=np.float64)
    unbatched = x.ndim == 1
    if unbatched:
        x, y = x[None], np.asarray(y)[None]
    n_classes = x.shape[1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    xr = np.moveaxis(x, 1, -1).reshape(-1, n_classes)
    yr = np.asarray(y).reshape(-1)
    losses, denom = [], 0.0
    for row, label in zip(xr, yr):
        if label == ignore_index:
            losses.append(0.0)
            continue
        logp = row - np.log(np.sum(np.exp(row - row.max()))) - row.max()
        target = np.full(n_classes, label_smoothing / n_classes)
        target[label] += 1 - label_smoothing
        losses.append(-np.sum(w * target * logp) if label_smoothing else -w[label] * logp[label])
        denom += w[label]
    losses = np.array(losses)
    if reduction == "none":
        return losses.reshape(()) if unbatched else losses.reshape((x.shape[0],) + x.shape[2:])
    return losses.sum() if reduction == "sum" else losses.sum() / denom


def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar function f at float64 x."""
    x = x.astype(np.float64, copy=True)
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        grad[i] = (fp - fm) / (2 * h)
    return grad


def _data(shape, seed=0, ignore=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    label_shape = () if len(shape) == 1 else (shape[0],) + tuple(shape[2:])
    y = rng.integers(0, shape[0] if len(shape) == 1 else shape[1], size=label_shape)
    if ignore and y.ndim:
        y.flat[::3] = -100
    return x, y


SHAPES = [(7, C), (3, C, 2, 3), (C,)]
CONFIGS = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(label_smoothing=0.1),
    dict(label_smoothing=0.25, reduction="sum"),
    dict(weight=np.linspace(0.5, 2.0, C)),
    dict(weight=np.linspace(0.5, 2.0, C), label_smoothing=0.2),
    dict(weight=np.linspace(0.5, 2.0, C), label_smoothing=0.2, reduction="none"),
]


# ---- CrossEntropyLoss -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}" for k in c) or "default")
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_value_and_grad_float64(shape, cfg, ignore):
    x, y = _data(shape, seed=len(shape) + len(cfg), ignore=ignore)
    loss_fn = CrossEntropyLoss(**cfg)
    loss = loss_fn(x, y)
    np.testing.assert_allclose(loss, ce_ref(x, y, **cfg), rtol=1e-12, atol=1e-12)
    # backward against finite differences of sum(upstream * loss) ('none') or of the loss
    upstream = np.random.default_rng(1).standard_normal(np.shape(loss)) if cfg.get("reduction") == "none" else None
    grad = loss_fn.backward(upstream)
    assert grad.shape == x.shape and grad.dtype == x.dtype
    if upstream is None:
        expect = numeric_grad(lambda z: ce_ref(z, y, **cfg), x)
    else:
        expect = numeric_grad(lambda z: np.sum(upstream * ce_ref(z, y, **cfg)), x)
    np.testing.assert_allclose(grad, expect, rtol=1e-6, atol=1e-8)


def test_cross_entropy_float32_keeps_dtype():
    x, y = _data((16, 10), seed=3)
    loss_fn = CrossEntropyLoss(label_smoothing=0.1)
    loss = loss_fn(x.astype(np.float32), y)
    assert isinstance(loss, float)
    np.testing.assert_allclose(loss, ce_ref(x.astype(np.float32), y, label_smoothing=0.1), rtol=1e-5)
    grad = loss_fn.backward()
    assert grad.dtype == np.float32
    ref_fn = CrossEntropyLoss(label_smoothing=0.1)
    ref_fn(x.astype(np.float32).astype(np.float64), y)
    np.testing.assert_allclose(grad, ref_fn.backward(), rtol=1e-4, atol=1e-7)
    assert CrossEntropyLoss(reduction="none")(x.astype(np.float32), y).dtype == np.float32


def test_cross_entropy_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-3e4, 3e4, 3e4]], dtype=np.float32)
    y = np.array([0, 2])
    loss_fn = CrossEntropyLoss()
    loss = loss_fn(x, y)
    np.testing.assert_allclose(loss, np.log(2) / 2, rtol=1e-6)
    grad = loss_fn.backward()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, [[0, 0, 0], [0, 0.25, -0.25]], atol=1e-7)


def test_cross_entropy_uniform_logits():
    """Equal logits: loss log(C) whatever the label, gradient (1/C - onehot) / N."""
    x = np.zeros((4, C))
    y = np.array([0, 1, 2, 4])
    loss_fn = CrossEntropyLoss()
    assert loss_fn(x, y) == pytest.approx(np.log(C))
    expect = np.full((4, C), 1 / C)
    expect[np.arange(4), y] -= 1
    np.testing.assert_allclose(loss_fn.backward(), expect / 4, atol=1e-15)


def test_cross_entropy_probability_targets():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, C))
    t = rng.random((6, C))
    t /= t.sum(axis=1, keepdims=True)
    w = np.linspace(1, 2, C)

    def ref(z):
        logp = z - z.max(1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(1, keepdims=True))
        smooth = 0.9 * t + 0.1 / C
        return -(w * smooth * logp).sum() / 6

    loss_fn = CrossEntropyLoss(weight=w, label_smoothing=0.1)
    np.testing.assert_allclose(loss_fn(x, t), ref(x), rtol=1e-12)
    np.testing.assert_allclose(loss_fn.backward(), numeric_grad(ref, x), rtol=1e-6, atol=1e-9)
    # one-hot probabilities give the same loss as the labels
    labels = rng.integers(0, C, 6)
    one_hot = np.eye(C)[labels]
    assert CrossEntropyLoss()(x, one_hot) == pytest.approx(CrossEntropyLoss()(x, labels), rel=1e-12)


def test_cross_entropy_ignore_index():
    x, y = _data((6, C), seed=2)
    y[[1, 4]] = 3
    loss_fn = CrossEntropyLoss(ignore_index=3)
    keep = y != 3
    assert loss_fn(x, y) == pytest.approx(CrossEntropyLoss()(x[keep], y[keep]), rel=1e-12)
    grad = loss_fn.backward()
    assert np.all(grad[~keep] == 0)
    # every element ignored: 'mean' is NaN (0/0), as in PyTorch; 'sum' is 0
    all_ignored = np.full(6, -100)
    assert np.isnan(CrossEntropyLoss()(x, all_ignored))
    assert CrossEntropyLoss(reduction="sum")(x, all_ignored) == 0.0


def test_cross_entropy_backward_uses_latest_call_and_grad_output():
    x1, y1 = _data((4, C), seed=8)
    x2, y2 = _data((3, C), seed=9)
    loss_fn = CrossEntropyLoss()
    loss_fn(x1, y1)
    loss_fn(x2, y2)
    assert loss_fn.backward().shape == (3, C)
    np.testing.assert_allclose(loss_fn.backward(2.5), 2.5 * loss_fn.backward())
    none_fn = CrossEntropyLoss(reduction="none")
    none_fn(x2, y2)
    with pytest.raises(ValueError, match="shape"):
        none_fn.backward(np.ones(4))


def test_cross_entropy_accepts_any_layout_and_integer_dtype():
    rng = np.random.default_rng(4)
    xt = np.asfortranarray(rng.standard_normal((C, 8))).T  # (8, C), not C-contiguous
    y = rng.integers(0, C, 8)
    a = CrossEntropyLoss()(xt, y.astype(np.uint8))
    b = CrossEntropyLoss()(np.ascontiguousarray(xt), y.astype(np.int64))
    assert a == b


@pytest.mark.parametrize("x, y, exc, match", [
    (np.zeros((3, C)), np.array([0, 1, C]), ValueError, r"class index 5 at position \(2,\)"),
    (np.zeros((3, C)), np.array([0, -1, 2]), ValueError, "class index -1"),
    (np.zeros((3, C)), np.array([0, 1]), ValueError, "target shape"),
    (np.zeros((3, C)), np.array([0.0, 1.0, 2.0]), TypeError, "integer class indices"),
    (np.zeros((3, C)), np.array([True, False, True]), TypeError, "integer class indices"),
    (np.zeros((3, C), np.float32), np.zeros((3, C)), TypeError, "dtype"),
    (np.zeros((3, C), np.int64), np.array([0, 1, 2]), TypeError, "float32 or float64"),
    ([[0.0] * C] * 3, np.array([0, 1, 2]), TypeError, "numpy.ndarray"),
    (np.zeros(()), np.array(0), ValueError, "class axis"),
    (np.zeros((2, C, 3)), np.zeros((2, 4), np.int64), ValueError, "target shape"),
])
def test_cross_entropy_errors(x, y, exc, match):
    with pytest.raises(exc, match=match):
        CrossEntropyLoss()(x, y)


def test_cross_entropy_constructor_errors():
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="1-D"):
        CrossEntropyLoss(weight=np.ones((2, 2)))
    with pytest.raises(TypeError, match="ignore_index"):
        CrossEntropyLoss(ignore_index=1.0)
    with pytest.raises(ValueError, match="3 entries but input has 5 classes"):
        CrossEntropyLoss(weight=[1, 2, 3])(np.zeros((2, C)), np.array([0, 1]))
    with pytest.raises(RuntimeError, match="before"):
        CrossEntropyLoss().backward()


def test_repr():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(reduction="sum", label_smoothing=0.1)) == \
        "CrossEntropyLoss(reduction='sum', label_smoothing=0.1)"
    assert repr(MSELoss(reduction="none")) == "MSELoss(reduction='none')"


# ---- MSELoss ------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 5), ()], ids=str)
def test_mse_value_and_grad(reduction, shape):
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction]
    loss_fn = MSELoss(reduction=reduction)
    np.testing.assert_allclose(loss_fn(x, t), reduce((x - t) ** 2), rtol=1e-13)
    upstream = rng.standard_normal(shape) if reduction == "none" else None
    grad = loss_fn.backward(upstream)
    f = (lambda z: np.sum(upstream * (z - t) ** 2)) if upstream is not None else (lambda z: reduce((z - t) ** 2))
    np.testing.assert_allclose(grad, numeric_grad(f, np.asarray(x)), rtol=1e-6, atol=1e-9)


def test_mse_float32_and_errors():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    loss_fn = MSELoss()
    assert loss_fn(x, np.zeros_like(x)) == pytest.approx(55 / 6)
    assert loss_fn.backward().dtype == np.float32
    with pytest.raises(ValueError, match="does not broadcast"):
        loss_fn(x, np.zeros((3,), np.float32))
    with pytest.raises(TypeError, match="mixed dtypes"):
        loss_fn(x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction="mea")


# ---- optional: torch as an oracle ---------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}" for k in c) or "default")
def test_cross_entropy_matches_torch(shape, cfg):
    torch = pytest.importorskip("torch")
    x, y = _data(shape, seed=11, ignore=True)
    loss_fn = CrossEntropyLoss(**cfg)
    loss = loss_fn(x, y)
    upstream = np.random.default_rng(2).standard_normal(np.shape(loss))
    grad = loss_fn.backward(upstream if cfg.get("reduction") == "none" else None)
    tcfg = dict(cfg)
    if "weight" in tcfg:
        tcfg["weight"] = torch.tensor(tcfg["weight"])
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.CrossEntropyLoss(**tcfg)(xt, torch.tensor(y))
    (lt * torch.tensor(upstream)).sum().backward() if cfg.get("reduction") == "none" else lt.backward()
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_mse_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    loss_fn = MSELoss()
    loss = loss_fn(x, t)
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.MSELoss()(xt, torch.tensor(t))
    lt.backward()
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-6)
    np.testing.assert_allclose(loss_fn.backward(), xt.grad.numpy(), rtol=1e-6)
