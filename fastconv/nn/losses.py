"""Losses with PyTorch's names and arguments.

A loss is called like a function, `loss = loss_fn(input, target)`, which returns the loss (a
Python float for reduction 'mean' or 'sum', an array of per-element losses for 'none') and
keeps what `loss_fn.backward()` needs to return d loss / d input: an array of input's shape and
dtype, ready for `model.backward(...)`. Only the latest call is kept.
"""
import numpy as np

from .._validate import check_float_array

__all__ = ["CrossEntropyLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


class _Loss:
    """Shared plumbing: reduction, the cache, `forward` as an alias of `__call__`."""

    def __init__(self, reduction="mean"):
        self.reduction = _check_reduction(reduction)
        self._cache = None

    def forward(self, input, target):
        return self(input, target)

    def _take_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss was computed")
        return self._cache

    def _upstream(self, grad_output, loss_shape, dtype):
        """The gradient flowing into the loss: 1 for 'mean'/'sum' (a scalar), an array of the
        per-element losses' shape for 'none' (ones when not given: the gradient of their sum)."""
        if grad_output is None:
            return np.ones(loss_shape, dtype=dtype) if self.reduction == "none" else dtype.type(1)
        g = np.asarray(grad_output)
        if self.reduction == "none":
            if g.shape != tuple(loss_shape):
                raise ValueError(f"grad_output has shape {g.shape}, expected the loss's shape {tuple(loss_shape)}")
        elif g.size != 1:
            raise ValueError(f"grad_output of a reduced loss must be a scalar, got shape {g.shape}")
        else:
            return dtype.type(g.reshape(-1)[0])
        return g.astype(dtype, copy=False)

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


def _log_softmax_rows(x):
    """Numerically stable log-softmax over the last axis: x - max - log(sum(exp(x - max)))."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class CrossEntropyLoss(_Loss):
    """Cross entropy between logits and class labels, as torch.nn.CrossEntropyLoss.

    input: logits (N, C), or (N, C, d1, d2, ...) with C along axis 1, or unbatched (C,).
    target: integer class indices of shape (N,) / (N, d1, ...) / () with values in [0, C) or equal
    to `ignore_index`; or class probabilities of input's shape and dtype.

    With logp = log_softmax(input) over the class axis and eps = label_smoothing, the loss of one
    element with label y is

        l = (1 - eps) * -w[y] * logp[y]  +  (eps / C) * sum_c -w[c] * logp[c]

    (w = weight, all ones by default); elements labelled `ignore_index` contribute 0. 'mean'
    divides the sum by the sum of w[y] over the elements not ignored (by the number of elements
    for probability targets), so it is NaN when every element is ignored, as in PyTorch.

    `weight` (C class weights) is a hyperparameter, not data: it is kept in float64 and used in
    the input's dtype.
    """

    def __init__(self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        if weight is not None:
            weight = np.array(weight, dtype=np.float64)  # a copy: later edits to the caller's array don't leak in
            if weight.ndim != 1:
                raise ValueError(f"weight must be 1-D (one weight per class), got shape {weight.shape}")
            if not np.all(np.isfinite(weight)):
                raise ValueError("weight must be finite")
        self.weight = weight
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"ignore_index must be an int, got {type(ignore_index).__name__} {ignore_index!r}")
        self.ignore_index = int(ignore_index)
        label_smoothing = float(label_smoothing)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def extra_repr(self):
        parts = []
        if self.weight is not None:
            parts.append(f"weight={self.weight.tolist()}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)

    # -- layout: (N, C, d1, ...) <-> rows (M, C) with the class axis last -----------------

    @staticmethod
    def _to_rows(x):
        if x.ndim == 1:
            return x[None, :]
        return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])

    @staticmethod
    def _from_rows(rows, shape):
        if len(shape) == 1:
            return rows.reshape(shape)
        moved = (shape[0],) + tuple(shape[2:]) + (shape[1],)
        return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, 1))

    def _check(self, input, target):
        input = check_float_array(input, "input")
        if input.ndim == 0:
            raise ValueError("input must have a class axis: shape (C,), (N, C) or (N, C, d1, ...), got a 0-D array")
        n_classes = input.shape[0] if input.ndim == 1 else input.shape[1]
        if n_classes == 0:
            raise ValueError(f"input has no classes (shape {input.shape})")
        if self.weight is not None and self.weight.shape[0] != n_classes:
            raise ValueError(f"weight has {self.weight.shape[0]} entries but input has {n_classes} classes")
        target = np.asarray(target)
        if target.dtype.kind == "f" and target.shape == input.shape:
            if target.dtype != input.dtype:
                raise TypeError(
                    f"probability target has dtype {target.dtype} but input has {input.dtype}; convert explicitly"
                )
            return input, target, n_classes, True
        if target.dtype.kind not in "iu":
            raise TypeError(
                f"target must hold integer class indices (or float class probabilities of input's "
                f"shape {input.shape}), got dtype {target.dtype} and shape {target.shape}"
            )
        label_shape = () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]
        if target.shape != label_shape:
            raise ValueError(
                f"target shape {target.shape} does not match input shape {input.shape}: class-index "
                f"targets must have shape {label_shape}"
            )
        bad = (target != self.ignore_index) & ((target < 0) | (target >= n_classes))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0]) if target.ndim else ()
            raise ValueError(
                f"target holds class index {int(target[where])} at position {where}, outside "
                f"[0, {n_classes}) (and not ignore_index={self.ignore_index})"
            )
        return input, target, n_classes, False

    def __call__(self, input, target):
        input, target, n_classes, soft = self._check(input, target)
        dtype = input.dtype
        eps = self.label_smoothing
        w = None if self.weight is None else self.weight.astype(dtype)
        logp = _log_softmax_rows(self._to_rows(input))  # (M, C)
        m = logp.shape[0]
        if soft:
            # l = -sum_c w[c] * t'[c] * logp[c], t' = (1 - eps) * t + eps / C; 'mean' divides by M.
            coef = self._to_rows(target).astype(dtype, copy=True)
            if eps:
                coef *= 1 - eps
                coef += eps / n_classes
            if w is not None:
                coef *= w
            per_row = -(coef * logp).sum(axis=1)
            keep = None
            denom = float(m)
        else:
            labels = target.reshape(-1).astype(np.intp)
            keep = labels != self.ignore_index
            safe = np.where(keep, labels, 0)
            w_y = np.ones(m, dtype=dtype) if w is None else w[safe]
            w_y = np.where(keep, w_y, 0).astype(dtype)
            per_row = -(w_y * logp[np.arange(m), safe])
            if eps:
                smooth = -(logp.sum(axis=1) if w is None else logp @ w)
                per_row = (1 - eps) * per_row + (eps / n_classes) * np.where(keep, smooth, 0)
            coef = None
            denom = float(w_y.sum(dtype=np.float64))
            labels = safe
        loss_shape = () if input.ndim == 1 else (input.shape[0],) + input.shape[2:]
        self._cache = dict(
            logp=logp, coef=coef, labels=None if soft else labels, w_y=None if soft else w_y,
            keep=keep, denom=denom, shape=input.shape, loss_shape=loss_shape, n_classes=n_classes,
        )
        if self.reduction == "none":
            return per_row.astype(dtype, copy=False).reshape(loss_shape)
        total = float(per_row.sum(dtype=np.float64))
        if self.reduction == "sum":
            return total
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(np.float64(total) / denom)  # NaN when all ignored, as PyTorch

    def backward(self, grad_output=None):
        """d loss / d input, of input's shape and dtype. For reduction='none' `grad_output` is the
        gradient with respect to the per-element losses (ones by default)."""
        c = self._take_cache()
        logp = c["logp"]
        dtype = logp.dtype
        g = self._upstream(grad_output, c["loss_shape"], dtype)
        eps = self.label_smoothing
        n_classes = c["n_classes"]
        w = None if self.weight is None else self.weight.astype(dtype)
        # l = -sum_j a[j] * logp[j]  =>  dl/dx[j] = p[j] * sum(a) - a[j]
        if c["coef"] is not None:
            a = c["coef"]
            grad = np.exp(logp) * a.sum(axis=1, keepdims=True) - a
        else:
            m = logp.shape[0]
            rows = np.arange(m)
            w_y, keep = c["w_y"], c["keep"]
            a_total = (1 - eps) * w_y
            if eps:
                w_sum = n_classes if w is None else w.sum()
                a_total = a_total + (eps / n_classes) * w_sum * keep
            grad = np.exp(logp) * a_total[:, None].astype(dtype)
            if eps:
                grad -= (eps / n_classes) * (np.ones(n_classes, dtype) if w is None else w) * keep[:, None]
            grad[rows, c["labels"]] -= ((1 - eps) * w_y).astype(dtype)
        if self.reduction == "none":
            grad *= np.reshape(g, (-1, 1))
        else:
            scale = g if self.reduction == "sum" else g / dtype.type(c["denom"])
            grad *= scale
        return self._from_rows(grad.astype(dtype, copy=False), c["shape"])


class MSELoss(_Loss):
    """Mean squared error, as torch.nn.MSELoss: l = (input - target)**2 per element, then the
    mean, the sum, or (reduction='none') the array. input and target must have the same shape
    and dtype (no broadcasting)."""

    def __call__(self, input, target):
        input = check_float_array(input, "input")
        target = check_float_array(target, "target")
        if input.shape != target.shape:
            raise ValueError(
                f"input shape {input.shape} and target shape {target.shape} differ (MSELoss does not broadcast)"
            )
        if input.dtype != target.dtype:
            raise TypeError(
                f"mixed dtypes are not allowed: input is {input.dtype}, target is {target.dtype}; convert explicitly"
            )
        diff = input - target
        self._cache = dict(diff=diff)
        sq = diff * diff
        if self.reduction == "none":
            return sq
        total = float(sq.sum(dtype=np.float64))
        if self.reduction == "sum":
            return total
        return total / sq.size if sq.size else float("nan")

    def backward(self, grad_output=None):
        """d loss / d input = 2 * (input - target) (/ input.size for 'mean'), of input's dtype."""
        diff = self._take_cache()["diff"]
        g = self._upstream(grad_output, diff.shape, diff.dtype)
        grad = 2 * diff
        if self.reduction == "mean":
            grad /= diff.dtype.type(max(diff.size, 1))
        return grad * g
