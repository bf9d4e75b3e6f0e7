"""fastconv.optim: optimizers against hand-computed steps and float64 trajectories of PyTorch's
documented algorithms (and torch.optim itself when importable); schedulers' lr sequences."""
import math

import numpy as np
import pytest

from fastconv import optim

try:
    from fastconv.nn import Parameter
except ImportError:  # the layer API not importable yet: a minimal stand-in
    class Parameter:
        def __init__(self, data):
            self.data = np.array(data, copy=True)
            self.grad = None


def P(values, dtype=np.float64):
    return Parameter(np.asarray(values, dtype=dtype))


# ---- references, written from the pseudo-code in PyTorch's documentation ----------------------

def sgd_ref(x0, grads_fn, steps, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    x, b = np.array(x0, dtype=np.float64), None
    path = []
    for t in range(steps):
        g = grads_fn(x, t) + weight_decay * x
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        x = x - lr * g
        path.append(x)
    return path


def adam_ref(x0, grads_fn, steps, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    x = np.array(x0, dtype=np.float64)
    m, v, vmax = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    path = []
    for t in range(1, steps + 1):
        g = grads_fn(x, t - 1)
        if decoupled:
            x = x * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * x
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat = m / (1 - betas[0] ** t)
        vmax = np.maximum(vmax, v)
        v_hat = (vmax if amsgrad else v) / (1 - betas[1] ** t)
        x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
        path.append(x)
    return path


def run(opt_cls, x0, grads_fn, steps, dtype=np.float64, **kw):
    p = P(x0, dtype)
    opt = opt_cls([p], **kw)
    path = []
    for t in range(steps):
        opt.zero_grad()
        p.grad = grads_fn(p.data.astype(np.float64), t).astype(dtype)
        opt.step()
        path.append(p.data.copy())
    return path


X0 = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.5]])


def noisy_grad(x, t):
    """A gradient that depends on the point and the step (a quadratic plus a fixed drift)."""
    return 0.5 * x + np.cos(np.arange(x.size).reshape(x.shape) + t)


# ---- hand-computed steps ----------------------------------------------------------------------

def test_sgd_momentum_by_hand():
    """p = 1, loss p**2 / 2 (grad = p), lr 0.1, momentum 0.9:
    step 1: b = 1, p = 0.9; step 2: b = 0.9 * 1 + 0.9 = 1.8, p = 0.9 - 0.18 = 0.72;
    step 3: b = 0.9 * 1.8 + 0.72 = 2.34, p = 0.72 - 0.234 = 0.486."""
    p = P([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    for expect in (0.9, 0.72, 0.486):
        p.grad = p.data.copy()
        opt.step()
        assert p.data[0] == pytest.approx(expect, rel=1e-14)


def test_sgd_nesterov_and_weight_decay_by_hand():
    """grad = 1 always, p0 = 2, lr 0.1, momentum 0.5, weight_decay 0.1, nesterov:
    step 1: g = 1 + 0.2 = 1.2, b = 1.2, g = 1.2 + 0.6 = 1.8, p = 2 - 0.18 = 1.82
    step 2: g = 1 + 0.182 = 1.182, b = 0.6 + 1.182 = 1.782, g = 1.182 + 0.891 = 2.073, p = 1.6127"""
    p = P([2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1, nesterov=True)
    for expect in (1.82, 1.6127):
        p.grad = np.ones(1)
        opt.step()
        assert p.data[0] == pytest.approx(expect, rel=1e-14)


def test_adam_first_step_is_lr_times_sign():
    """Bias correction makes the first step m_hat / sqrt(v_hat) = g / |g|: a step of lr."""
    p = P([1.0, -1.0, 5.0])
    opt = optim.Adam([p], lr=0.01)
    p.grad = np.array([3.0, -0.5, 1e-3])
    opt.step()
    np.testing.assert_allclose(p.data, [0.99, -0.99, 4.99], rtol=1e-6)


def test_adamw_zero_grad_only_decays():
    """With a zero gradient AdamW's step is the decay alone: p *= 1 - lr * weight_decay."""
    p = P([2.0, -4.0])
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    for k in range(1, 4):
        p.grad = np.zeros(2)
        opt.step()
        np.testing.assert_allclose(p.data, np.array([2.0, -4.0]) * 0.95 ** k, rtol=1e-14)
    # Adam's weight_decay is L2 in the gradient instead: a non-zero step of about lr
    q = P([2.0])
    adam = optim.Adam([q], lr=0.1, weight_decay=0.5)
    q.grad = np.zeros(1)
    adam.step()
    assert q.data[0] == pytest.approx(1.9, rel=1e-6)


# ---- multi-step trajectories ------------------------------------------------------------------

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
]
ADAM_CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, amsgrad=True),
]


@pytest.mark.parametrize("cfg", SGD_CONFIGS, ids=str)
def test_sgd_trajectory(cfg):
    got = run(optim.SGD, X0, noisy_grad, 12, **cfg)
    expect = sgd_ref(X0, noisy_grad, 12, **cfg)
    np.testing.assert_allclose(got, expect, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cfg", ADAM_CONFIGS, ids=str)
def test_adam_trajectory(cfg):
    got = run(optim.Adam, X0, noisy_grad, 12, **cfg)
    expect = adam_ref(X0, noisy_grad, 12, **cfg)
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cfg", [dict(lr=0.01), dict(lr=0.05, weight_decay=0.3, amsgrad=True)], ids=str)
def test_adamw_trajectory(cfg):
    got = run(optim.AdamW, X0, noisy_grad, 12, **cfg)
    expect = adam_ref(X0, noisy_grad, 12, decoupled=True, **{"weight_decay": 1e-2, **cfg})
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("opt_cls, cfg", [(optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
                                          (optim.Adam, dict(lr=0.01)), (optim.AdamW, dict(lr=0.01))])
def test_float32_stays_float32_in_place(opt_cls, cfg):
    p = P(X0, np.float32)
    data = p.data
    opt = opt_cls([p], **cfg)
    for t in range(5):
        p.grad = noisy_grad(p.data.astype(np.float64), t).astype(np.float32)
        opt.step()
    assert p.data is data and p.data.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state[id(p)].values() if isinstance(v, np.ndarray))
    expect = run(opt_cls, X0, noisy_grad, 5, **cfg)[-1]
    np.testing.assert_allclose(p.data, expect, rtol=1e-5, atol=1e-6)


def test_maximize():
    got = run(optim.SGD, X0, noisy_grad, 3, lr=0.1, momentum=0.5, maximize=True)
    expect = sgd_ref(X0, lambda x, t: -noisy_grad(x, t), 3, lr=0.1, momentum=0.5)
    np.testing.assert_allclose(got, expect, rtol=1e-13)


# ---- optimizer plumbing ------------------------------------------------------------------------

def test_none_grad_is_skipped_and_zero_grad():
    a, b = P([1.0, 2.0]), P([3.0])
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = np.array([1.0, 1.0])
    opt.step()
    np.testing.assert_array_equal(a.data, [0.5, 1.5])
    np.testing.assert_array_equal(b.data, [3.0])
    assert id(b) not in opt.state
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_param_groups_and_named_parameters():
    a, b = P([1.0]), P([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    a.grad, b.grad = np.ones(1), np.ones(1)
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.5)
    c = P([1.0])
    opt2 = optim.Adam([("layer.weight", c)])
    assert opt2.param_groups[0]["params"] == [c]
    opt2.add_param_group({"params": P([0.0]), "lr": 1.0})
    assert len(opt2.param_groups) == 2 and opt2.param_groups[1]["betas"] == (0.9, 0.999)


def test_optimizer_errors():
    p = P([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="invalid lr"):
        optim.SGD([p], lr=-0.1)
    with pytest.raises(ValueError, match="invalid momentum"):
        optim.SGD([p], momentum=-0.5)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="unknown keys"):
        optim.SGD([{"params": [p], "momentom": 0.9}])
    with pytest.raises(TypeError, match=r"\.data numpy array"):
        optim.SGD([np.zeros(3)], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match="shape"):
        opt.step()
    p.grad = np.ones(1, np.float32)
    with pytest.raises(TypeError, match="dtype"):
        opt.step()


@pytest.mark.parametrize("opt_cls, cfg", [(optim.SGD, dict(lr=0.05, momentum=0.9)),
                                          (optim.Adam, dict(lr=0.01, amsgrad=True)), (optim.AdamW, dict(lr=0.01))])
def test_state_dict_round_trip_continues_the_trajectory(opt_cls, cfg):
    expect = run(opt_cls, X0, noisy_grad, 8, **cfg)
    p = P(X0)
    opt = opt_cls([p], **cfg)
    for t in range(4):
        p.grad = noisy_grad(p.data, t)
        opt.step()
    saved = opt.state_dict()
    assert list(saved["state"]) == [0] and saved["param_groups"][0]["params"] == [0]
    # a fresh optimizer (other lr) over a copy of the parameter, loaded from the state dict
    q = P(p.data)
    opt2 = opt_cls([q], **{**cfg, "lr": 123.0})
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == cfg["lr"]
    p.grad = np.zeros_like(p.data)
    opt.step()  # mutating the original must not reach the copy in `saved`
    for t in range(4, 8):
        q.grad = noisy_grad(q.data, t)
        opt2.step()
    np.testing.assert_allclose(q.data, expect[-1], rtol=1e-13)


def test_load_state_dict_errors():
    p = P([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    opt.step()
    saved = opt.state_dict()
    with pytest.raises(ValueError, match="param groups"):
        optim.SGD([{"params": [P([1.0, 2.0])]}, {"params": [P([0.0])]}], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="has 2 parameters"):
        optim.SGD([P([1.0, 2.0]), P([0.0])], lr=0.1).load_state_dict(saved)
    with pytest.raises(ValueError, match="shape"):
        optim.SGD([P([1.0, 2.0, 3.0])], lr=0.1).load_state_dict(saved)


# ---- schedulers ---------------------------------------------------------------------------

def lrs_of(sched, steps):
    out = [sched.get_last_lr()[0]]
    for _ in range(steps):
        sched.optimizer.step()
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_step_lr_sequence():
    opt = optim.SGD([P([1.0])], lr=1.0)
    sched = optim.StepLR(opt, step_size=3, gamma=0.5)
    expect = [1.0 * 0.5 ** (e // 3) for e in range(10)]
    np.testing.assert_allclose(lrs_of(sched, 9), expect, rtol=1e-15)
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    assert opt.param_groups[0]["initial_lr"] == 1.0


def test_cosine_annealing_sequence_and_restart_shape():
    base, eta, T = 0.1, 0.001, 5
    opt = optim.SGD([{"params": [P([1.0])]}, {"params": [P([1.0])], "lr": 0.2}], lr=base)
    sched = optim.CosineAnnealingLR(opt, T_max=T, eta_min=eta)
    got = lrs_of(sched, 3 * T)
    expect = [eta + (base - eta) * (1 + math.cos(math.pi * e / T)) / 2 for e in range(3 * T + 1)]
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert got[T] == pytest.approx(eta) and got[2 * T] == pytest.approx(base)  # rises again after T_max
    assert sched.get_last_lr()[1] == pytest.approx(eta + (0.2 - eta) * (1 + math.cos(math.pi * 3)) / 2)


def test_scheduler_drives_the_optimizer_and_state_dict():
    p = P([1.0])
    opt = optim.SGD([p], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        p.grad = np.ones(1)
        opt.step()
        sched.step()
    # lrs used: 1, 1, 0.1 -> p = 1 - 2.1
    assert p.data[0] == pytest.approx(-1.1)
    state = sched.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3
    sched2 = optim.StepLR(optim.SGD([P([1.0])], lr=1.0), step_size=7)
    sched2.load_state_dict(state)
    assert sched2.step_size == 2 and sched2.last_epoch == 3


def test_scheduler_errors():
    opt = optim.SGD([P([1.0])], lr=1.0)
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(opt, T_max=2.5)
    with pytest.raises(TypeError, match="not an Optimizer"):
        optim.StepLR(object(), step_size=1)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.StepLR(optim.SGD([P([1.0])], lr=1.0), step_size=1, last_epoch=4)


# ---- end to end ----------------------------------------------------------------------------

@pytest.mark.parametrize("opt_cls, cfg, steps", [
    (optim.SGD, dict(lr=0.1), 200),
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), 200),
    (optim.Adam, dict(lr=0.05), 500),
])
def test_converges_on_a_quadratic(opt_cls, cfg, steps):
    """minimise 0.5 * (x - c)^T A (x - c) with A positive definite: x -> c."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((4, 4))
    a = q @ q.T / 4 + np.eye(4)
    c = rng.standard_normal(4)
    x = P(np.zeros(4), np.float32)
    opt = opt_cls([x], **cfg)
    for _ in range(steps):
        opt.zero_grad()
        x.grad = (a @ (x.data - c)).astype(np.float32)
        opt.step()
    np.testing.assert_allclose(x.data, c, atol=1e-3)


# ---- optional: torch.optim as an oracle -------------------------------------------------------

@pytest.mark.parametrize("name, cfg", [("SGD", c) for c in SGD_CONFIGS] + [("Adam", c) for c in ADAM_CONFIGS]
                         + [("AdamW", dict(lr=0.01)), ("AdamW", dict(lr=0.05, weight_decay=0.3, amsgrad=True))],
                         ids=str)
@pytest.mark.parametrize("sched", ["step", "cosine"])
def test_matches_torch(name, cfg, sched):
    torch = pytest.importorskip("torch")
    p = P(X0)
    pt = torch.tensor(X0.copy(), requires_grad=True)
    opt, topt = getattr(optim, name)([p], **cfg), getattr(torch.optim, name)([pt], **cfg)
    if sched == "step":
        s, ts = optim.StepLR(opt, 3, 0.5), torch.optim.lr_scheduler.StepLR(topt, 3, 0.5)
    else:
        s, ts = optim.CosineAnnealingLR(opt, 4, 1e-4), torch.optim.lr_scheduler.CosineAnnealingLR(topt, 4, 1e-4)
    for t in range(12):
        g = noisy_grad(p.data, t)
        p.grad, pt.grad = g, torch.tensor(g)
        opt.step()
        topt.step()
        s.step()
        ts.step()
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-14)
    np.testing.assert_allclose(p.data, pt.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("opt_cls, cfg", [
    (optim.Adam, dict(lr=0.01)), (optim.Adam, dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
    (optim.Adam, dict(lr=0.01, maximize=True)), (optim.AdamW, dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_fused_kernel_matches_the_numpy_step(monkeypatch, opt_cls, cfg, dtype):
    """The one-pass C step (contiguous arrays, threaded past 32 K elements) against the NumPy
    formulas it replaces, over several steps of a large and a tiny parameter."""
    rng = np.random.default_rng(3)
    shapes = [(300, 257), (3,)]
    inits = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(5)]

    def trajectory():
        params = [P(x.copy(), dtype) for x in inits]
        opt = opt_cls(params, **cfg)
        for g in grads:
            for p, gi in zip(params, g):
                p.grad = gi.copy()
            opt.step()
        return [p.data for p in params], opt

    fused, opt = trajectory()
    assert all(v.flags.c_contiguous for st in opt.state.values() for v in st.values() if isinstance(v, np.ndarray))
    monkeypatch.setattr(optim, "_fused_ok", lambda *a: False)
    plain, _ = trajectory()
    tol = 2e-6 if dtype == np.float32 else 1e-13
    for f, p in zip(fused, plain):
        assert f.dtype == dtype
        np.testing.assert_allclose(f, p, rtol=tol, atol=tol)
