"""Finite-difference gradient check for fastconv.nn modules (imported by tests/test_nn_*.py).

check_module_gradients(module, x) casts the module to float64, runs forward in train mode, and
compares ``module.backward(g)`` (the input gradient) and every parameter's ``.grad`` with central
differences of the scalar ``sum(module(x) * g)`` for a fixed random g.
"""
import numpy as np


def numeric_gradient(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of a (changed in place
    and restored)."""
    grad = np.zeros_like(a, dtype=np.float64)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, a), "a must be contiguous"
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def check_module_gradients(module, x, *, seed=0, eps=1e-6, rtol=1e-6, atol=1e-8, before_forward=None,
                           check_input=True):
    """Assert that module's backward matches finite differences for x and every parameter.
    before_forward(): called before every forward (e.g. to reseed a Dropout)."""
    module.double().train()
    x = np.array(x, dtype=np.float64, order="C")
    rng = np.random.default_rng(seed)

    def run():
        if before_forward is not None:
            before_forward()
        return module(x)

    y = run()
    g = rng.standard_normal(np.shape(y))
    module.zero_grad()
    gx = module.backward(g)

    def loss():
        return float(np.sum(run() * g))

    checked = []
    if check_input:
        assert gx is not None and gx.shape == x.shape, f"input gradient has shape {np.shape(gx)}, x {x.shape}"
        np.testing.assert_allclose(gx, numeric_gradient(loss, x, eps), rtol=rtol, atol=atol,
                                   err_msg=f"{type(module).__name__}: gradient with respect to the input")
        checked.append("input")
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert p.grad.shape == p.data.shape and p.grad.dtype == p.data.dtype
        np.testing.assert_allclose(p.grad, numeric_gradient(loss, p.data, eps), rtol=rtol, atol=atol,
                                   err_msg=f"{type(module).__name__}: gradient of {name}")
        checked.append(name)
    return checked
