"""Optimizers and learning-rate schedulers with PyTorch's names, arguments and update rules.

An optimizer holds parameters: objects with a `.data` NumPy array (float32 or float64) and a
`.grad` array of the same shape and dtype, or None. `step()` updates every `.data` in place (a
float32 parameter stays float32; its state buffers share its dtype) and skips parameters whose
`.grad` is None. Parameters come as an iterable of parameters, of (name, parameter) pairs, or
of param-group dicts (`{"params": [...], "lr": ...}`) whose keys override the defaults.

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=30, gamma=0.1)
    for epoch in ...:
        for x, y in batches:
            opt.zero_grad(); model.backward(loss_fn.backward()); opt.step()
        sched.step()
"""
import copy
import math

import numpy as np

from . import _core
from ._threads import get_num_threads

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR"]


def _check_param(p):
    data = getattr(p, "data", None)
    if not isinstance(data, np.ndarray) or not hasattr(p, "grad"):
        raise TypeError(
            f"optimizer parameters must have a .data numpy array and a .grad attribute "
            f"(fastconv.nn.Parameter), got {type(p).__name__}"
        )
    if data.dtype not in (np.float32, np.float64):
        raise TypeError(f"parameter data must be float32 or float64, got {data.dtype}")
    return p


def _grad_of(p):
    """p.grad checked against p.data, or None when the parameter has no gradient."""
    g = p.grad
    if g is None:
        return None
    if not isinstance(g, np.ndarray):
        raise TypeError(f"parameter .grad must be a numpy array or None, got {type(g).__name__}")
    if g.shape != p.data.shape:
        raise ValueError(f"parameter .grad has shape {g.shape} but .data has shape {p.data.shape}")
    if g.dtype != p.data.dtype:
        raise TypeError(f"parameter .grad has dtype {g.dtype} but .data has {p.data.dtype}")
    return g


def _fused_ok(data, grad, state, amsgrad):
    """The C step applies: p, grad and the state are C-contiguous float arrays of p's shape and
    dtype (p and the state writeable); else (a state loaded in another dtype, say) the NumPy step."""
    if data.dtype not in (np.float32, np.float64) or data.size == 0:
        return False
    state_arrays = [state["exp_avg"], state["exp_avg_sq"]] + ([state.get("max_exp_avg_sq")] if amsgrad else [])
    for a in [data, grad] + state_arrays:
        if not (isinstance(a, np.ndarray) and a.dtype == data.dtype and a.shape == data.shape
                and a.flags.c_contiguous):
            return False
    return all(a.flags.writeable for a in [data] + state_arrays)


def _check_nonneg(name, value):
    value = float(value)
    if not value >= 0.0:  # also rejects NaN
        raise ValueError(f"invalid {name}: {value} (must be >= 0)")
    return value


class Optimizer:
    """Base class: param groups, per-parameter state, zero_grad, state_dict / load_state_dict.

    Subclasses set `defaults` and implement `_update(group, p, grad, state)` for one parameter."""

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # id(parameter) -> dict of buffers (the groups keep the parameters alive)
        self.param_groups = []
        if isinstance(params, dict) or hasattr(params, "data"):
            raise TypeError(
                "params must be an iterable of parameters or of param-group dicts, got a single "
                f"{type(params).__name__}; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group):
        """Add a dict with a "params" entry; its other keys override the optimizer's defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError('a param group needs a "params" entry')
        if hasattr(params, "data"):
            params = [params]
        params = [p[1] if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) else p
                  for p in params]
        group["params"] = [_check_param(p) for p in params]
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(
                f"unknown keys in param group: {sorted(unknown)}; expected some of {sorted(self.defaults)}"
            )
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        ids = [id(p) for p in group["params"]]
        if len(set(ids)) != len(ids) or seen.intersection(ids):
            raise ValueError("some parameters appear more than once (in this group or in another)")
        self.param_groups.append(group)

    def _check_group(self, group):
        """Validate one group's hyperparameters (subclasses extend)."""
        _check_nonneg("lr", group["lr"])

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's gradient: to None (PyTorch's default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self):
        """One update of every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                grad = _grad_of(p)
                if grad is None:
                    continue
                self._update(group, p, grad, self.state.setdefault(id(p), {}))

    def _update(self, group, p, grad, state):
        raise NotImplementedError

    # -- state dicts, in PyTorch's layout: parameters are named by their position ---------------

    def state_dict(self):
        """{"state": {index: {name: array or number}}, "param_groups": [{..., "params": [index]}]},
        with parameters numbered in group order; arrays are copies."""
        index, groups = 0, []
        state = {}
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            for i, p in zip(packed["params"], group["params"]):
                if self.state.get(id(p)):
                    state[i] = copy.deepcopy(self.state[id(p)])
            index += len(group["params"])
            groups.append(packed)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and buffers saved by `state_dict()` from an optimizer over
        parameters of the same shapes, in the same groups and order."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state dict has {len(saved_groups)} param groups, this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"param group {i} has {len(group['params'])} parameters but the state dict's has "
                    f"{len(saved['params'])}"
                )
        new_state = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for key, p in zip(saved["params"], group["params"]):
                entry = state_dict["state"].get(key)
                if entry is None:
                    continue
                restored = {}
                for name, value in entry.items():
                    if isinstance(value, np.ndarray):
                        if value.shape != p.data.shape:
                            raise ValueError(
                                f"state {name!r} of parameter {key} has shape {value.shape}, "
                                f"the parameter has {p.data.shape}"
                            )
                        value = value.astype(p.data.dtype, copy=True)
                    restored[name] = copy.deepcopy(value)
                new_state[id(p)] = restored
        for saved, group in zip(saved_groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as torch.optim.SGD:

        g = grad + weight_decay * p
        b = g                                     (first step)
        b = momentum * b + (1 - dampening) * g    (later steps)
        g = g + momentum * b  if nesterov  else  b        (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg("momentum", group["momentum"])
        _check_nonneg("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, group, p, grad, state):
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if wd != 0:
            g = g + wd * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam, with PyTorch's placement of eps:

        g = grad + weight_decay * p        (AdamW instead multiplies p by 1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)              (amsgrad; then used in place of v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *, maximize=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _check_group(self, group):
        super()._check_group(group)
        _check_nonneg("eps", group["eps"])
        _check_nonneg("weight_decay", group["weight_decay"])
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= float(beta) < 1.0:
                raise ValueError(f"invalid beta parameter at index {i}: {beta} (must be in [0, 1))")

    def _update(self, group, p, grad, state):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        g = -grad if group["maximize"] else grad
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if _fused_ok(p.data, grad, state, group["amsgrad"]):  # one threaded C pass (csrc/optim/) instead of ~10 NumPy ones
            _core.adam_step(p.data.reshape(-1), grad.reshape(-1), state["exp_avg"].reshape(-1),
                            state["exp_avg_sq"].reshape(-1),
                            state["max_exp_avg_sq"].reshape(-1) if group["amsgrad"] else None,
                            float(lr), float(beta1), float(beta2), float(eps), float(wd), self._decoupled,
                            bool(group["maximize"]), t, get_num_threads())
            return
        if wd != 0:
            if self._decoupled:
                p.data *= 1 - lr * wd
            else:
                g = g + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        if group["amsgrad"]:
            v_max = state.setdefault("max_exp_avg_sq", np.zeros_like(p.data))
            np.maximum(v_max, v, out=v_max)
            v = v_max
        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - beta2 ** t)
        denom += eps
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: each step
    first shrinks p by the factor 1 - lr * weight_decay, then applies Adam without L2 in g."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)


# ---- learning-rate schedulers ------------------------------------------------------------------

class LRScheduler:
    """Base class, as torch.optim.lr_scheduler.LRScheduler: construction records each group's
    "initial_lr" and takes the first step (epoch 0); each `step()` (call it after the
    optimizer's) advances `last_epoch` and writes the new rates into the param groups."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming an optimizer"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        """The rates for the current `last_epoch`, from the groups' current rates."""
        raise NotImplementedError

    def get_last_lr(self):
        """The rates the latest `step()` set, one per param group."""
        return list(self._last_lr)

    def step(self):
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(copy.deepcopy(state_dict))


class StepLR(LRScheduler):
    """Multiply each group's rate by `gamma` every `step_size` epochs: at epoch e the rate is
    initial_lr * gamma ** (e // step_size) (when nothing else changes it)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, (int, np.integer)) or step_size < 1:
            raise ValueError(f"step_size must be a positive int, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing without restarts (SGDR's schedule), in PyTorch's recursive form, which
    equals eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 when nothing else
    changes the rate; past T_max the rate rises again along the same cosine."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if isinstance(T_max, bool) or not isinstance(T_max, (int, np.integer)) or T_max < 1:
            raise ValueError(f"T_max must be a positive int, got {T_max!r}")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups, e, T, eta = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return [group["lr"] for group in groups]
        if self._step_count == 1 and e > 0:  # resumed with last_epoch >= 0
            return [eta + (base - eta) * (1 + math.cos(e * math.pi / T)) / 2 for base in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:
            return [group["lr"] + (base - eta) * (1 - math.cos(math.pi / T)) / 2
                    for base, group in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (group["lr"] - eta) + eta
                for group in groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base in self.base_lrs]
