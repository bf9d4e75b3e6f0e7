"""Layers: PyTorch's names, constructor arguments, parameter names and shapes, each a thin class
over fastconv.functional (or a few NumPy lines) with its forward and backward side by side.

Parameterised layers take ``dtype`` (np.float32, the default, or np.float64) and ``rng`` (None:
the global generator of fastconv.nn.init, reseeded by ``manual_seed``; an int seed; or a NumPy
Generator) for their initial values, drawn as PyTorch's defaults. Inputs must have the layer's
dtype (a TypeError otherwise: no silent casts).
"""
import math

import numpy as np

from .. import _norm
from .. import functional as F
from .._convargs import conv_padding, pair
from . import init
from .module import Module, Parameter

__all__ = [
    "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "LeakyReLU",
    "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Softmax", "Dropout", "MaxPool2d", "AvgPool2d",
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Flatten", "Identity", "LocalResponseNorm",
]


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_input(layer, x, dtype=None):
    """x as an ndarray of a floating dtype (the layer's, when it has parameters)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{type(layer).__name__} expects a NumPy array, got {type(x).__name__}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{type(layer).__name__} has {dtype} parameters but got a {x.dtype} input; convert "
                        f"the input (x.astype(np.{dtype})) or the model (model.to(np.{x.dtype}))")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{type(layer).__name__} expects float32 or float64 input, got {x.dtype}")
    return x


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _tuple_repr(v):
    return v if isinstance(v, str) else tuple(v) if isinstance(v, (tuple, list)) else v


# ---- convolution and linear layers ------------------------------------------------------------

class Conv2d(Module):
    """2-D convolution, torch.nn.Conv2d: weight (out_channels, in_channels/groups, kh, kw), bias
    (out_channels,). padding: any form fastconv.functional.conv2d takes (int, (h, w),
    ((top, bottom), (left, right)), "valid", "same" at any stride). conv2d itself routes depthwise
    layers (groups == in_channels) to the depthwise kernels and 1x1 layers to the GEMM."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", *, dtype=np.float32, rng=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode={padding_mode!r}: only 'zeros' is supported")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.dilation = pair(dilation, "dilation")
        self.padding = _conv2d_padding(padding)
        self.padding_mode = padding_mode
        self.dtype = _float_dtype(dtype)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((out_channels, in_channels // groups, kh, kw), self.dtype))
        self.bias = Parameter(np.empty(out_channels, self.dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        kh, kw = self.kernel_size
        init.default_layer_init_(self.weight, self.bias, self.in_channels // self.groups * kh * kw,
                                 init.resolve_rng(rng))

    def _args(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def forward(self, x):
        x = _check_input(self, x, self.weight.dtype)
        self.save_for_backward(x)
        return F.conv2d(x, self.weight.data, None if self.bias is None else self.bias.data, **self._args())

    def backward(self, grad_output, input_grad=True):
        x = self.saved()
        want_b = self.bias is not None and self.bias.requires_grad
        gx, gw, gb = F.conv2d_backward(grad_output, x, self.weight.data, **self._args(), input_grad=input_grad,
                                       weight_grad=self.weight.requires_grad, bias_grad=want_b)
        self.weight.accumulate_grad(gw)
        if want_b:
            self.bias.accumulate_grad(gb)
        return gx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str) or any(_flat(self.padding)):
            s += f", padding={_tuple_repr(self.padding)}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


def _conv2d_padding(padding):
    """"same"/"valid" as given; (h, w) when symmetric (PyTorch's form); else ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        conv_padding(padding, (1, 1), (1, 1), (1, 1), (1, 1))  # validates the name
        return padding
    (top, bottom), (left, right) = conv_padding(padding, (1, 1), (1, 1), (1, 1), (1, 1))
    return (top, left) if top == bottom and left == right else ((top, bottom), (left, right))


def _flat(padding):
    for p in padding:
        if isinstance(p, (tuple, list)):
            yield from p
        else:
            yield p


class ConvTranspose2d(Module):
    """Transposed convolution, torch.nn.ConvTranspose2d: weight (in_channels, out_channels/groups,
    kh, kw). ``forward(x, output_size=None)``: output_size (h, w) (or with N, C in front) picks
    the output_padding, as in PyTorch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", *, dtype=np.float32, rng=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.groups = _positive_int(groups, "groups")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode={padding_mode!r}: only 'zeros' is supported")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        self.output_padding = pair(output_padding, "output_padding", minimum=0)
        self.dilation = pair(dilation, "dilation")
        self.padding_mode = padding_mode
        self.dtype = _float_dtype(dtype)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((in_channels, out_channels // groups, kh, kw), self.dtype))
        self.bias = Parameter(np.empty(out_channels, self.dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        kh, kw = self.kernel_size  # PyTorch's fan_in for this weight layout: out_channels/groups * kh * kw
        init.default_layer_init_(self.weight, self.bias, self.out_channels // self.groups * kh * kw,
                                 init.resolve_rng(rng))

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-2:]
        pads = []
        for i, axis in enumerate("hw"):
            smallest = ((x.shape[-2 + i] - 1) * self.stride[i] - 2 * self.padding[i]
                        + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = size[i] - smallest
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"output_size {size} is not reachable along {axis}: sizes from {smallest} to "
                                 f"{smallest + max(self.stride[i], self.dilation[i]) - 1} are")
            pads.append(extra)
        return tuple(pads)

    def _args(self, output_padding):
        return dict(stride=self.stride, padding=self.padding, output_padding=output_padding, groups=self.groups,
                    dilation=self.dilation)

    def forward(self, x, output_size=None):
        x = _check_input(self, x, self.weight.dtype)
        op = self._output_padding(x, output_size)
        self.save_for_backward(x, op)
        return F.conv_transpose2d(x, self.weight.data, None if self.bias is None else self.bias.data,
                                  **self._args(op))

    def backward(self, grad_output, input_grad=True):
        x, op = self.saved()
        want_b = self.bias is not None and self.bias.requires_grad
        gx, gw, gb = F.conv_transpose2d_backward(grad_output, x, self.weight.data, **self._args(op),
                                                 input_grad=input_grad, weight_grad=self.weight.requires_grad,
                                                 bias_grad=want_b)
        self.weight.accumulate_grad(gw)
        if want_b:
            self.bias.accumulate_grad(gb)
        return gx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Linear(Module):
    """y = x @ weight.T + bias on fastconv.matmul (the GEMM core); weight (out_features,
    in_features); x (..., in_features)."""

    def __init__(self, in_features, out_features, bias=True, *, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.dtype = _float_dtype(dtype)
        self.weight = Parameter(np.empty((out_features, in_features), self.dtype))
        self.bias = Parameter(np.empty(out_features, self.dtype)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        init.default_layer_init_(self.weight, self.bias, self.in_features, init.resolve_rng(rng))

    def forward(self, x):
        x = _check_input(self, x, self.weight.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects input of shape (..., {self.in_features}), got {x.shape}")
        x2 = x.reshape(-1, self.in_features)
        self.save_for_backward(x2, x.shape)
        y = F.matmul(x2, self.weight.data.T)
        if self.bias is not None:
            y += self.bias.data
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, grad_output, input_grad=True):
        x2, shape = self.saved()
        g2 = np.asarray(grad_output).reshape(-1, self.out_features)
        if self.weight.requires_grad:
            self.weight.accumulate_grad(F.matmul(g2.T, x2))
        if self.bias is not None and self.bias.requires_grad:
            self.bias.accumulate_grad(g2.sum(axis=0))
        return F.matmul(g2, self.weight.data).reshape(shape) if input_grad else None

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# ---- normalisation ------------------------------------------------------------------------------

class _BatchNorm(Module):
    """Batch normalisation over every axis but the channel axis (1), torch.nn.BatchNorm*d.

    Train mode (or track_running_stats=False): normalise with the batch's mean and biased
    variance, and update running_mean / running_var (unbiased variance) by
    ``running = (1 - momentum) * running + momentum * batch`` (momentum=None: a cumulative
    average) and num_batches_tracked += 1. Eval mode: normalise with the running statistics.
    Buffers running_mean, running_var, num_batches_tracked are in the state dict (PyTorch's
    keys); weight (gamma) and bias (beta) are parameters when affine (bias=False: no beta, as
    PyTorch 2.13's keyword)."""

    _input_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *,
                 bias=True, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = _float_dtype(dtype)
        self.register_parameter("weight", Parameter(np.ones(num_features, self.dtype)) if self.affine else None)
        self.register_parameter("bias", Parameter(np.zeros(num_features, self.dtype))
                                if self.affine and bias else None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, self.dtype))
            self.register_buffer("running_var", np.ones(num_features, self.dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _shape(self, x):
        """Broadcast shape of a per-channel vector, and the reduction axes."""
        if x.ndim not in self._input_ndims or x.shape[1] != self.num_features:
            dims = " or ".join(f"{n}-D" for n in self._input_ndims)
            raise ValueError(f"{type(self).__name__}({self.num_features}) expects {dims} input with "
                             f"{self.num_features} channels in dim 1, got shape {x.shape}")
        return (1, -1) + (1,) * (x.ndim - 2), (0,) + tuple(range(2, x.ndim))

    def forward(self, x):
        x = np.ascontiguousarray(_check_input(self, x, self.dtype))
        self._shape(x)
        gamma = self.weight.data if self.affine else None
        beta = self.bias.data if self.bias is not None else None
        if not (self.training or not self.track_running_stats):
            # running statistics: y = (x - running_mean) * (gamma / sqrt(running_var + eps)) + beta
            scale = 1.0 / np.sqrt(self.running_var + self.eps)
            return _norm.channel_affine(x, self.running_mean, scale if gamma is None else scale * gamma, beta)
        count = x.size // self.num_features
        if count <= 1 and self.training:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
        mean, var = _norm.channel_stats(x)   # float64, two passes
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean[...] = (1 - m) * self.running_mean + m * mean
            self.running_var[...] = (1 - m) * self.running_var + m * var * (count / max(count - 1, 1))
        invstd = 1.0 / np.sqrt(var + self.eps)
        self.save_for_backward(x, mean, invstd)
        return _norm.channel_affine(x, mean, invstd if gamma is None else invstd * gamma, beta)

    def backward(self, grad_output, input_grad=True):
        x, mean, invstd = self.saved()
        g = np.ascontiguousarray(grad_output, dtype=x.dtype)
        if g.shape != x.shape:
            raise ValueError(f"{type(self).__name__}.backward: grad_output must have shape {x.shape}, got {g.shape}")
        # xhat = (x - mean) * invstd; per channel sum(g) and sum(g * (x - mean)), in float64
        sum_g, sum_gx = _norm.channel_dot(g, x, mean)
        if self.affine and self.weight.requires_grad:
            self.weight.accumulate_grad((sum_gx * invstd).astype(x.dtype))
        if self.bias is not None and self.bias.requires_grad:
            self.bias.accumulate_grad(sum_g.astype(x.dtype))
        if not input_grad:
            return None
        # gx = k * (g - mean(g) - xhat * mean(g * xhat)), k = gamma * invstd
        k = invstd * self.weight.data if self.affine else invstd
        count = x.size // self.num_features
        return _norm.channel_axpby(g, k, x, -k * invstd * invstd * sum_gx / count, mean, -k * sum_g / count)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm2d(_BatchNorm):
    """torch.nn.BatchNorm2d: input (N, C, H, W), statistics per channel over N, H, W."""
    _input_ndims = (4,)


class BatchNorm1d(_BatchNorm):
    """torch.nn.BatchNorm1d: input (N, C) or (N, C, L), statistics per channel over N (and L)."""
    _input_ndims = (2, 3)


class LocalResponseNorm(Module):
    """torch.nn.LocalResponseNorm (AlexNet's): across channels,
    ``y_c = x_c / (k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x_{c'}^2) ** beta``
    (channels outside [0, C) count as zeros). Input (N, C, ...) of 3 or more dimensions."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = _positive_int(size, "size")
        self.alpha, self.beta, self.k = float(alpha), float(beta), float(k)

    @staticmethod
    def _window_sum(v, before, after):
        """s[:, c] = sum of v[:, c - before .. c + after] (clipped to the channels)."""
        c = v.shape[1]
        cum = np.zeros((v.shape[0], c + 1) + v.shape[2:], dtype=v.dtype)
        np.cumsum(v, axis=1, out=cum[:, 1:])
        hi = np.minimum(np.arange(c) + after + 1, c)
        lo = np.maximum(np.arange(c) - before, 0)
        return cum[:, hi] - cum[:, lo]

    def forward(self, x):
        x = _check_input(self, x)
        if x.ndim < 3:
            raise ValueError(f"LocalResponseNorm expects input of 3 or more dimensions (N, C, ...), got {x.shape}")
        s = self.k + self.alpha / self.size * self._window_sum(x * x, self.size // 2, (self.size - 1) // 2)
        y = x * s ** -self.beta
        self.save_for_backward(x, s, y)
        return y

    def backward(self, grad_output, input_grad=True):
        x, s, y = self.saved()
        if not input_grad:
            return None
        g = np.asarray(grad_output)
        # dy_c/dx_j = [c == j] s_c^-beta - 2 alpha beta / size * x_c x_j s_c^(-beta-1) for j in window(c);
        # j is in window(c) when c lies in j - (size-1)//2 .. j + size//2.
        t = g * y / s
        back = self._window_sum(t, (self.size - 1) // 2, self.size // 2)
        return g * s ** -self.beta - (2 * self.alpha * self.beta / self.size) * x * back

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


# ---- activations ----------------------------------------------------------------------------------

class _Activation(Module):
    """Elementwise y = f(x); subclasses give f and df/dx from what forward kept. ``inplace`` is
    accepted for PyTorch compatibility (shown in the repr); results are always new arrays."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, x):
        x = _check_input(self, x)
        y = self.f(x)
        self.save_for_backward(x, y)
        return y

    def backward(self, grad_output, input_grad=True):
        x, y = self.saved()
        return grad_output * self.df(x, y) if input_grad else None

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class _KernelActivation(_Activation):
    """An activation the C kernels apply (csrc/norm/, also fused into conv epilogues), one
    threaded pass each way. Backward works from the output (ReLU, ReLU6: the gradient passes
    where the output has slope 1, PyTorch's rule, so a NaN output passes it) or, where
    _from_input, from the input (SiLU, Sigmoid)."""
    act = None
    _from_input = False

    def forward(self, x):
        x = np.ascontiguousarray(_check_input(self, x))
        y = _norm.activation(x, self.act)
        self.save_for_backward(x if self._from_input else y)
        return y

    def backward(self, grad_output, input_grad=True):
        kept = self.saved()
        return _norm.activation_backward(grad_output, kept, self.act) if input_grad else None


class ReLU(_KernelActivation):
    """y = max(x, 0) (NaN stays NaN)."""
    act = "relu"


class ReLU6(_KernelActivation):
    """y = min(max(x, 0), 6) (NaN stays NaN)."""
    act = "relu6"


class LeakyReLU(_Activation):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__(inplace)
        self.negative_slope = float(negative_slope)

    def f(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.negative_slope))

    def df(self, x, y):
        return np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(_KernelActivation):
    """y = 1 / (1 + exp(-x)) (float32: a vectorised exp good to about 2 ulp; float64: libm's)."""
    act = "sigmoid"
    _from_input = True

    def __init__(self):
        super().__init__()

    def extra_repr(self):
        return ""


class Tanh(_Activation):
    def __init__(self):
        super().__init__()

    def f(self, x):
        return np.tanh(x)

    def df(self, x, y):
        return 1 - y * y

    def extra_repr(self):
        return ""


class SiLU(_KernelActivation):
    """y = x * sigmoid(x) (swish); fuses into a preceding Conv2d -> BatchNorm2d in eval mode."""
    act = "silu"
    _from_input = True


class Hardswish(_Activation):
    """y = x * relu6(x + 3) / 6; dy/dx = 0 below -3, x/3 + 1/2 up to 3, 1 above (PyTorch's)."""

    def f(self, x):
        return x * np.clip(x + 3, 0, 6) / 6

    def df(self, x, y):
        return np.where(x < -3, 0, np.where(x <= 3, x / 3 + 0.5, 1)).astype(x.dtype)


class Hardsigmoid(_Activation):
    """y = relu6(x + 3) / 6; dy/dx = 1/6 strictly between -3 and 3 (PyTorch's)."""

    def f(self, x):
        return np.clip(x + 3, 0, 6) / 6

    def df(self, x, y):
        return np.where((x > -3) & (x < 3), 1 / 6, 0).astype(x.dtype)


class Softmax(Module):
    """softmax along dim (PyTorch's legacy default when dim is None: 0 for 0-, 1- and 3-D input, else 1)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def _dim(self, x):
        return self.dim if self.dim is not None else (0 if x.ndim in (0, 1, 3) else 1)

    def forward(self, x):
        x = _check_input(self, x)
        d = self._dim(x)
        e = np.exp(x - x.max(axis=d, keepdims=True))
        y = e / e.sum(axis=d, keepdims=True)
        self.save_for_backward(y)
        return y

    def backward(self, grad_output, input_grad=True):
        y = self.saved()
        if not input_grad:
            return None
        g = np.asarray(grad_output)
        return y * (g - np.sum(g * y, axis=self._dim(y), keepdims=True))

    def extra_repr(self):
        return f"dim={self.dim}"


class Dropout(Module):
    """torch.nn.Dropout: in train mode zero each element with probability p and scale the rest by
    1 / (1 - p); identity in eval mode. Masks come from ``rng`` (an int seed or a Generator given
    here) or else the global generator of fastconv.nn.init (``manual_seed``)."""

    def __init__(self, p=0.5, inplace=False, *, rng=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)
        self.inplace = bool(inplace)
        self.rng = init.resolve_rng(rng)

    def forward(self, x):
        x = _check_input(self, x)
        if not self.training or self.p == 0:
            self.save_for_backward(None)
            return x.copy()
        if self.p == 1:
            mask = np.zeros_like(x)
        else:
            rng = self.rng if self.rng is not None else init.get_rng()
            mask = (rng.random(x.shape) >= self.p).astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        self.save_for_backward(mask)
        return x * mask

    def backward(self, grad_output, input_grad=True):
        mask = self.saved()
        if not input_grad:
            return None
        return np.array(grad_output, copy=True) if mask is None else grad_output * mask

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"



class StochasticDepth(Module):
    """torchvision.ops.StochasticDepth (Huang et al. 2016) for residual branches: in train mode
    zero the whole input of a sample ("row") or of the batch ("batch") with probability p and
    scale the survivors by 1 / (1 - p); identity in eval mode or with p == 0. Random draws as
    Dropout's (``rng``, else the global generator)."""

    def __init__(self, p, mode="row", *, rng=None):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode!r}")
        self.p, self.mode = float(p), mode
        self.rng = init.resolve_rng(rng)

    def forward(self, x):
        x = _check_input(self, x)
        if not self.training or self.p == 0:
            self.save_for_backward(None)
            return x.copy()
        shape = (x.shape[0],) + (1,) * (x.ndim - 1) if self.mode == "row" else (1,) * x.ndim
        rng = self.rng if self.rng is not None else init.get_rng()
        keep = (rng.random(shape) >= self.p).astype(x.dtype)
        if self.p < 1:
            keep *= x.dtype.type(1 / (1 - self.p))
        self.save_for_backward(keep)
        return x * keep

    backward = Dropout.backward

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"

# ---- pooling and reshaping ------------------------------------------------------------------------

class MaxPool2d(Module):
    """torch.nn.MaxPool2d over fastconv.functional.max_pool2d (stride defaults to kernel_size).
    With return_indices=True forward returns (y, indices); backward takes the gradient of y."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.dilation, self.return_indices, self.ceil_mode = dilation, bool(return_indices), bool(ceil_mode)

    def _args(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, dilation=self.dilation,
                    ceil_mode=self.ceil_mode)

    def forward(self, x):
        x = _check_input(self, x)
        if self.training or self.return_indices:
            y, idx = F.max_pool2d(x, **self._args(), return_indices=True)
        else:  # eval keeps nothing for backward: the values-only kernel, about 5x faster
            y, idx = F.max_pool2d(x, **self._args()), None
        self.save_for_backward(x, idx)
        return (y, idx) if self.return_indices else y

    def backward(self, grad_output, input_grad=True):
        x, idx = self.saved()
        return F.max_pool2d_backward(grad_output, x, **self._args(), indices=idx) if input_grad else None

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """torch.nn.AvgPool2d over fastconv.functional.avg_pool2d."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, kernel_size if stride is None else stride, padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        self.divisor_override = divisor_override

    def _args(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, ceil_mode=self.ceil_mode,
                    count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)

    def forward(self, x):
        x = _check_input(self, x)
        self.save_for_backward(x.shape)
        return F.avg_pool2d(x, **self._args())

    def backward(self, grad_output, input_grad=True):
        shape = self.saved()
        return F.avg_pool2d_backward(grad_output, shape, **self._args()) if input_grad else None

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """torch.nn.AdaptiveAvgPool2d(output_size): int, (h, w), None entries keep the input's size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        x = _check_input(self, x)
        self.save_for_backward(x.shape)
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad_output, input_grad=True):
        shape = self.saved()
        return F.adaptive_avg_pool2d_backward(grad_output, shape) if input_grad else None

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """torch.nn.AdaptiveMaxPool2d(output_size, return_indices=False)."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, bool(return_indices)

    def forward(self, x):
        x = _check_input(self, x)
        if self.training or self.return_indices:
            y, idx = F.adaptive_max_pool2d(x, self.output_size, return_indices=True)
        else:  # eval keeps nothing for backward: the values-only kernel
            y, idx = F.adaptive_max_pool2d(x, self.output_size), None
        self.save_for_backward(x, idx)
        return (y, idx) if self.return_indices else y

    def backward(self, grad_output, input_grad=True):
        x, idx = self.saved()
        return F.adaptive_max_pool2d_backward(grad_output, x, self.output_size, indices=idx) if input_grad else None

    def extra_repr(self):
        return f"output_size={self.output_size}"


class Flatten(Module):
    """torch.nn.Flatten(start_dim=1, end_dim=-1): a reshape (a view when it can be)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        x = np.asarray(x)
        start, end = self.start_dim % x.ndim, self.end_dim % x.ndim
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                             f"for input of shape {x.shape}")
        self.save_for_backward(x.shape)
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1:]) if x.size else \
            x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])

    def backward(self, grad_output, input_grad=True):
        shape = self.saved()
        return np.asarray(grad_output).reshape(shape) if input_grad else None

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """y = x (arguments are accepted and ignored, as PyTorch's)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def backward(self, grad_output, input_grad=True):
        return grad_output if input_grad else None
