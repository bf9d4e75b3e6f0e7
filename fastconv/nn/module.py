"""Module and Parameter: the base of every layer, with PyTorch's registration, naming and state dicts.

Forward and backward
--------------------
``module(x)`` runs ``forward``. In train mode (the default) a layer keeps what its backward
needs; ``module.backward(grad_output)`` returns the gradient with respect to the input and *adds*
the gradients of its parameters to ``param.grad`` (None until the first backward, as in
PyTorch; ``zero_grad()`` resets them). In eval mode nothing is kept, and backward raises.

What a forward keeps is pushed on a per-module stack and popped by backward, so a module used
twice in one forward (a shared ReLU) gets its two backward calls in reverse order, as a chain
rule walked backwards does. A call of a module from outside any other module's forward (a *root*
call, e.g. ``model(x)``) first discards whatever earlier forward passes left in that module and
its descendants: the rule is one forward, then at most one backward, per root call, and a forward
in train mode that is never followed by a backward (say, to log a loss) keeps nothing beyond the
next root call.

``backward(grad_output, input_grad=False)`` skips the gradient with respect to the input
(returning None) where a layer can: containers pass it to their first layer, so a network's first
convolution computes only its weight gradient.
"""
import threading
from collections import OrderedDict, namedtuple

import numpy as np

__all__ = ["Parameter", "Module", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

_state = threading.local()  # depth of nested Module.__call__ per Python thread


def _as_numpy(value):
    """A NumPy array from an array, a Parameter or a (CPU) torch tensor."""
    if isinstance(value, Parameter):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        return value.detach().cpu().numpy()
    return np.asarray(value)


class Parameter:
    """A trainable array: ``.data`` (a NumPy array, updated in place by optimizers) and ``.grad``
    (None until a backward adds to it, then an array of data's shape and dtype).
    ``requires_grad=False`` freezes it: backward passes compute no gradient for it."""

    def __init__(self, data, requires_grad=True):
        data = np.array(_as_numpy(data), copy=True)
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"Parameter data must be a floating-point array, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def numpy(self):
        return self.data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def accumulate_grad(self, grad):
        """grad += value (the first backward stores a copy)."""
        if not self.requires_grad or grad is None:
            return
        if grad.shape != self.data.shape:
            raise ValueError(f"gradient of shape {grad.shape} for a parameter of shape {self.data.shape}")
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def zero_grad(self, set_to_none=True):
        if set_to_none:
            self.grad = None
        elif self.grad is not None:
            self.grad[...] = 0

    def __repr__(self):
        return f"Parameter containing:\n{self.data!r}"


class Module:
    """Base class of layers and containers (PyTorch's torch.nn.Module, on NumPy arrays).

    Assigning a Parameter or a Module to an attribute registers it (``self.conv = Conv2d(...)``);
    ``register_buffer`` registers a non-trainable array saved in the state dict (BatchNorm's
    running statistics). Subclasses implement ``forward(x)`` and ``backward(grad_output,
    input_grad=True)``, calling ``self.save_for_backward(...)`` in forward and
    ``self.saved()`` in backward."""

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_cache", [])

    # ---- registration ----------------------------------------------------------------------
    def _check_init(self):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before "
                                 "assigning parameters, buffers or submodules")

    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init()
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_init()
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif "_parameters" in d and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} "
                                "(a Parameter or None is expected)")
            self._parameters[name] = None
        elif "_modules" in d and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to submodule {name!r} "
                                "(a Module or None is expected)")
            self._modules[name] = None
        elif "_buffers" in d and name in self._buffers:
            self._buffers[name] = None if value is None else np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        # `keep`: the registry about to receive `name`, left alone so that a replaced entry keeps
        # its place (Sequential's order), as in PyTorch
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):  # only called when normal lookup fails
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register a Parameter (or None: a declared but absent parameter, like bias=False)."""
        self._check_init()
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got {type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name, array, persistent=True):
        """Register a non-trainable array (or None), saved in the state dict unless persistent=False."""
        self._check_init()
        self._forget(name, keep=self._buffers)
        self._buffers[name] = None if array is None else np.asarray(array)
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        self._check_init()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module or None, got {type(module).__name__}")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"module name must be a non-empty string without '.', got {name!r}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    register_module = add_module

    # ---- forward / backward ----------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output, input_grad=True):
        """Gradient of the loss with respect to the last forward's input; adds to parameter grads."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        depth = getattr(_state, "depth", 0)
        if depth == 0:  # a root call: drop what earlier forward passes kept
            self.clear_cache()
        _state.depth = depth + 1
        try:
            return self.forward(*args, **kwargs)
        finally:
            _state.depth = depth

    def save_for_backward(self, *values):
        """In forward: keep values for backward (train mode only; a no-op in eval mode)."""
        if self.training:
            self._cache.append(values)

    def saved(self):
        """In backward: the values the matching forward kept (the most recent not yet used)."""
        if not self._cache:
            why = ("it is in eval mode, which keeps nothing for backward: call .train()"
                   if not self.training else "no forward pass is waiting for its backward")
            raise RuntimeError(f"{type(self).__name__}.backward called but {why}")
        values = self._cache.pop()
        return values[0] if len(values) == 1 else values

    def clear_cache(self):
        """Drop what forward passes kept for backward, in this module and its descendants."""
        for m in self.modules():
            m._cache.clear()

    # ---- traversal -------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) pairs, PyTorch's names and order; shared parameters once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """fn(m) for every descendant, then self (as PyTorch); returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- modes, gradients, dtype -------------------------------------------------------------
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
            if not mode:
                m._cache.clear()
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter (to None, PyTorch's default, or to zeros)."""
        for p in self.parameters():
            p.zero_grad(set_to_none)

    def to(self, dtype):
        """Cast floating-point parameters and buffers to dtype (np.float32 or np.float64) in place
        (the Parameter objects stay the same, so an optimizer built before still holds them);
        gradients are dropped."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"to(dtype): fastconv computes in float32 or float64, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = p.data.astype(dtype)
                    p.grad = None
            for name, b in m._buffers.items():
                if b is not None and np.issubdtype(b.dtype, np.floating):
                    m._buffers[name] = b.astype(dtype)
            if hasattr(m, "dtype"):
                object.__setattr__(m, "dtype", dtype)
            m._cache.clear()
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # ---- state dicts -----------------------------------------------------------------------
    def _state_items(self, prefix=""):
        for module_prefix, m in self.named_modules(prefix=prefix, remove_duplicate=False):
            dot = f"{module_prefix}." if module_prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    yield dot + name, m, name, p.data
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    yield dot + name, m, name, b

    def state_dict(self, prefix=""):
        """OrderedDict of copies of every parameter and persistent buffer, keyed by PyTorch's
        dotted names (``features.0.weight``, ``bn1.running_mean``, ``bn1.num_batches_tracked``)."""
        return OrderedDict((key, np.array(value, copy=True)) for key, _, _, value in self._state_items(prefix))

    def load_state_dict(self, state_dict, strict=True):
        """Copy values (NumPy arrays, or anything np.asarray takes, including CPU torch tensors)
        into the parameters and buffers, cast to their dtype.

        strict=True: a missing or unexpected key is an error. Any shape mismatch is an error.
        Errors raise RuntimeError listing every problem, and nothing is loaded. Returns
        IncompatibleKeys(missing_keys, unexpected_keys), as PyTorch."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict expects a mapping of names to arrays, got {type(state_dict).__name__}")
        targets = {key: (m, name, value) for key, m, name, value in self._state_items()}
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in targets]
        errors, loads = [], []
        for key, (m, name, current) in targets.items():
            if key not in state_dict:
                continue
            value = _as_numpy(state_dict[key])
            if value.shape != current.shape:
                errors.append(f"size mismatch for {key}: copying a value of shape {value.shape} from the "
                              f"state dict, the shape in the current model is {current.shape}")
            else:
                loads.append((current, value))
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for current, value in loads:
            current[...] = value
        return IncompatibleKeys(missing, unexpected)

    # ---- repr ------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = []
        for name, module in self._modules.items():
            text = repr(module).replace("\n", "\n  ")
            child_lines.append(f"({name}): {text}")
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))
