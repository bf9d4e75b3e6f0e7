"""Containers: Sequential, ModuleList, ModuleDict (PyTorch's), and three blocks for the classic
networks' branching, each with the backward of its fan-out (gradients of the branches summed) and
fan-in:

- ``Residual(body, shortcut=None)``: ``y = body(x) + shortcut(x)`` (shortcut None: ``x``), ResNet's
  block before its last ReLU; state-dict keys ``body.*`` and ``shortcut.*``.
- ``Concat(*branches, dim=1)``: the branches' outputs concatenated along channels (Inception);
  branches named "0", "1", ... or by the keys of an OrderedDict, as in Sequential.
- ``Scale(gate)``: ``y = x * gate(x)``, the gate's output broadcast against x (squeeze-excitation:
  gate (N, C, 1, 1) scales each channel); state-dict keys ``gate.*``.

In backward, branches are walked in the reverse order of forward, so a module shared between
branches pops its saved values in the right order. A container passes ``input_grad`` on to its
first layer (Sequential) or to every branch (the others).
"""
from collections import OrderedDict

import numpy as np

from .._memory import empty
from .._norm import plane_scale
from .fusion import forward_sequence
from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict", "Residual", "Concat", "Scale"]


def _named(args, kind):
    """Modules from (m1, m2, ...) or (OrderedDict,) -> [(name, module)]."""
    if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
        items = list(args[0].items())
    else:
        items = [(str(i), m) for i, m in enumerate(args)]
    for name, m in items:
        if not isinstance(m, Module):
            raise TypeError(f"{kind} takes Modules, got {type(m).__name__} for entry {name!r}")
    return items


class _Indexed(Module):
    """Shared by Sequential and ModuleList: integer indexing, slicing, len, iteration."""

    def __init__(self, *args):
        super().__init__()
        for name, m in _named(args, type(self).__name__):
            self.add_module(name, m)

    def _index(self, idx):
        n = len(self._modules)
        if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, got {type(idx).__name__}")
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return list(self._modules)[idx % n]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx])) if isinstance(self, Sequential) \
                else type(self)(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, got {type(module).__name__}")
        self._modules[self._index(idx)] = module

    def __delitem__(self, idx):
        if isinstance(idx, slice):
            for name in list(self._modules)[idx]:
                del self._modules[name]
        else:
            del self._modules[self._index(idx)]
        # renumber, as PyTorch does, so that names stay "0", "1", ...
        items = list(self._modules.values())
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)


class Sequential(_Indexed):
    """torch.nn.Sequential: ``Sequential(m1, m2, ...)`` (children "0", "1", ...) or
    ``Sequential(OrderedDict(name=module, ...))``. forward runs them in order, backward in reverse."""

    def forward(self, x):
        if not self.training:  # eval: Conv2d -> BatchNorm2d (-> ReLU) runs fuse into one conv
            return forward_sequence(list(self._modules.values()), x)
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_output, input_grad=True):
        modules = list(self._modules.values())
        g = grad_output
        for i in range(len(modules) - 1, -1, -1):
            g = modules[i].backward(g, input_grad=input_grad if i == 0 else True)
        return g


class ModuleList(_Indexed):
    """torch.nn.ModuleList: a list of registered modules (no forward of its own)."""

    def __init__(self, modules=None):
        super().__init__(*(modules or ()))


class ModuleDict(Module):
    """torch.nn.ModuleDict: a dict of registered modules (no forward of its own)."""

    def __init__(self, modules=None):
        super().__init__()
        if modules:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key):
        return self._modules.pop(key)

    def update(self, modules):
        items = modules.items() if hasattr(modules, "items") else modules
        for key, m in items:
            self[key] = m


class Residual(Module):
    """y = body(x) + shortcut(x); shortcut None is the identity. The gradient with respect to x is
    the sum of the two paths' gradients."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = body
        if shortcut is None:
            self.register_module("shortcut", None)
        else:
            self.shortcut = shortcut

    def forward(self, x):
        y = self.body(x)
        s = x if self.shortcut is None else self.shortcut(x)
        if y.shape != s.shape:
            raise ValueError(f"Residual: the body's output {y.shape} and the shortcut's {s.shape} differ "
                             "(give a shortcut that matches, e.g. a strided 1x1 Conv2d + BatchNorm2d)")
        return np.add(y, s, out=empty(y.shape, np.result_type(y, s)))

    def backward(self, grad_output, input_grad=True):
        g_short = (grad_output if input_grad else None) if self.shortcut is None else \
            self.shortcut.backward(grad_output, input_grad=input_grad)
        g_body = self.body.backward(grad_output, input_grad=input_grad)
        return g_body + g_short if input_grad else None


class Concat(Module):
    """Concatenation of the branches' outputs along ``dim`` (channels by default): Inception's
    parallel branches. ``Concat(b1, b2, ...)`` or ``Concat(OrderedDict(name=branch, ...))``."""

    def __init__(self, *branches, dim=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for name, m in _named(branches, "Concat"):
            self.add_module(name, m)
        self.dim = int(dim)

    def forward(self, x):
        outs = [m(x) for m in self._modules.values()]
        self.save_for_backward([o.shape[self.dim] for o in outs])
        shape = list(outs[0].shape)
        shape[self.dim] = sum(o.shape[self.dim] for o in outs)
        return np.concatenate(outs, axis=self.dim, out=empty(tuple(shape), np.result_type(*outs)))

    def backward(self, grad_output, input_grad=True):
        sizes = self.saved()
        pieces = np.split(np.asarray(grad_output), np.cumsum(sizes)[:-1], axis=self.dim)
        gx = None
        for m, g in reversed(list(zip(self._modules.values(), pieces))):
            gi = m.backward(np.ascontiguousarray(g), input_grad=input_grad)
            if input_grad:
                gx = gi if gx is None else gx + gi
        return gx

    def extra_repr(self):
        return f"dim={self.dim}" if self.dim != 1 else ""


def _unbroadcast(grad, shape):
    """Sum grad over the axes along which an array of `shape` was broadcast to grad's shape."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class Scale(Module):
    """y = x * gate(x), the gate's output broadcast against x: squeeze-excitation's channel-wise
    multiply, e.g. ``Scale(Sequential(AdaptiveAvgPool2d(1), Conv2d(C, C//4, 1), ReLU(),
    Conv2d(C//4, C, 1), Sigmoid()))``. Backward: the product rule, the gate's gradient summed
    over the broadcast axes."""

    def __init__(self, gate):
        super().__init__()
        self.gate = gate

    def forward(self, x):
        s = self.gate(x)
        self.save_for_backward(x, s)
        return plane_scale(x, s)

    def backward(self, grad_output, input_grad=True):
        x, s = self.saved()
        g = np.asarray(grad_output)
        g_gate = self.gate.backward(np.ascontiguousarray(_unbroadcast(g * x, s.shape)), input_grad=input_grad)
        return plane_scale(g, s) + g_gate if input_grad else None
