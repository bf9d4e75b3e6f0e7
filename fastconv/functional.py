"""NumPy arrays in, NumPy arrays out: argument normalisation and validation, then _core."""
import numpy as np

from . import _core
from ._memory import empty, empty_like
from ._threads import get_num_threads
from ._convargs import ALGORITHMS, check_algorithm, check_groups, conv_output_hw, conv_padding, pair
from ._validate import check_float_array, check_out, check_positive_int, check_result_size, check_same_dtype


def matmul(a, b, out=None):
    """Matrix product of two 2-D float32 or float64 arrays, on the engine's GEMM core.

    Any strides are read in place (transposed, sliced, negative-stride or Fortran-order views
    are not copied). The result is a new C-contiguous array, or `out` if given (which must be
    C-contiguous, of shape (a.shape[0], b.shape[1]), of the inputs' dtype, and must not overlap
    them)."""
    a = check_float_array(a, "a", ndim=2)
    b = check_float_array(b, "b", ndim=2)
    check_same_dtype(a=a, b=b)
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ValueError(
            f"matmul: inner dimensions differ: a has shape {a.shape}, b has shape {b.shape} ({k} != {k2})"
        )
    check_result_size((m, n), a.dtype, "matmul's result")
    if out is None:
        out = empty((m, n), dtype=a.dtype)
    else:
        check_out(out, (m, n), a.dtype, {"a": a, "b": b})
    if m == 0 or n == 0:
        return out
    if k == 0:
        out[...] = 0
        return out
    # NumPy allows an out whose data is not element-aligned; the kernels write typed pointers.
    target = out if out.flags.aligned else empty((m, n), dtype=a.dtype)
    _core.gemm(a, b, target, get_num_threads())
    if target is not out:
        out[...] = target
    return out


# ---- conv2d ------------------------------------------------------------------------------

def _conv_inputs(x, weight, names=("x", "weight")):
    """Validate x (N, C, H, W) or unbatched (C, H, W) and a 4-D weight; -> (x4, weight, unbatched)."""
    x = check_float_array(x, names[0])
    if x.ndim not in (3, 4):
        raise ValueError(f"{names[0]} must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    weight = check_float_array(weight, names[1], ndim=4)
    check_same_dtype(**{names[0]: x, names[1]: weight})
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    return np.ascontiguousarray(x), np.ascontiguousarray(weight), unbatched


def _bias(bias, c_out, dtype, name="bias"):
    if bias is None:
        return None
    bias = check_float_array(bias, name)
    if bias.dtype != dtype:
        raise TypeError(f"mixed dtypes are not allowed: {name} is {bias.dtype}, x is {dtype}; convert explicitly")
    if bias.shape != (c_out,):
        raise ValueError(f"{name} must have shape ({c_out},) (one value per output channel), got {bias.shape}")
    return np.ascontiguousarray(bias)


def _conv_geometry(x_shape, w_shape, stride, padding, dilation, groups):
    """Checked conv2d geometry: (geom tuple for _core, output shape)."""
    n, c_in, h, w = x_shape
    c_out, c_in_g, kh, kw = w_shape
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    groups = check_groups(groups, c_in, c_out)
    if c_in_g * groups != c_in:
        raise ValueError(
            f"weight expects {c_in_g} input channels per group (weight.shape[1]) x groups={groups} = "
            f"{c_in_g * groups}, but x has {c_in} channels")
    if min(kh, kw) < 1 or c_out < 1:
        raise ValueError(f"weight must have non-empty output channels and kernel, got shape {w_shape}")
    if c_in < 1 or min(h, w) < 1:
        raise ValueError(f"x must have at least one channel, row and column, got shape {x_shape}")
    pads = conv_padding(padding, (h, w), (kh, kw), stride, dilation)
    oh, ow = conv_output_hw((h, w), (kh, kw), stride, pads, dilation)
    geom = (n, c_in, h, w, c_out, kh, kw, oh, ow, stride[0], stride[1], dilation[0], dilation[1],
            pads[0][0], pads[1][0], groups)
    return geom, (n, c_out, oh, ow)


def choose_algorithm(geom, pass_="forward"):
    """The algorithm "auto" runs for one pass ("forward", "data" or "weight") of a conv2d
    geometry (the _core tuple).

    Measured with benchmarks/conv_algorithm_rule.py (table in the README) on 2-core AVX-512
    machines (an Intel Xeon and an AMD Zen 4): the direct kernels win when a group has at most
    16 input and 16 output channels and the pass reads its rows at unit stride (forward at
    stride 1 along the width; the data gradient always, per stride phase): there they read
    zero-bordered row copies with whole-vector loads, while the GEMM would pack every input
    element for at most 16 multiply-adds (ResNeXt's 8-channel groups, LeNet-5's conv2). Otherwise,
    forward, the im2col GEMM wins once a group has 8 output channels or more (one full 8-row
    micro-tile); below that the direct kernels win on ungrouped layers, and on grouped ones when
    the taps summed per output are fewer than 32. The data gradient otherwise runs im2col (for
    fewer than 16 input channels per group as a GEMM over input channels x taps plus col2im),
    unless it would sum fewer than 8 output channels of an ungrouped layer with few input
    channels (LeNet-5's conv1). For the weight gradient im2col wins, except on the same narrow
    groups at unit width stride when they make a job (group x block of 8 output channels) for
    every thread: each thread then sums whole filters from padded rows.
    Depthwise layers (one input channel per group) always take "direct", which runs the
    dedicated depthwise kernels, and pointwise layers (1x1, stride 1, unpadded) the GEMM.
    3x3 layers at stride 1 (forward and data gradient) take "winograd" from 64 input and output
    channels and 64 output tiles of 2x2 (N x ceil(H/2) x ceil(W/2)) on. Measured on the AMD Zen 4
    VM (2 threads) with the README's table of im2col against winograd: 1.05-1.4x faster on
    ResNet's 512 channels on 7x7 at batch 4 (64 tiles), 1.3x at batch 8, 1.4-1.9x on 14x14 to
    56x56 planes; below 64 tiles the transformed weights (16/9 of the weight, written and read
    for few products) cost more than they save (0.34-0.9x at 16 and 32 tiles), and at 32 channels
    the transforms cost more than the products save."""
    n, c_in, h, w, c_out, kh, kw, oh, ow, *_, groups = geom
    cin_g, cout_g = c_in // groups, c_out // groups
    if pass_ != "weight" and winograd_applies(geom) and cin_g >= 64 and cout_g >= 64:
        ph, pw = (oh, ow) if pass_ == "forward" else (h, w)
        if n * -(-ph // 2) * -(-pw // 2) >= 64:
            return "winograd"
    if groups > 1 and cin_g == 1:  # depthwise: the direct algorithm runs the depthwise kernels
        return "direct"
    sh, sw, dh, dw, pt, pl = geom[9:15]
    if kh == kw == 1 and sh == sw == 1 and pt == pl == 0 and (oh, ow) == (h, w):
        return "im2col"  # pointwise: a plain GEMM per image (whole-plane packing)
    narrow = cin_g <= 16 and cout_g <= 16  # the direct kernels' padded-row path wins
    if pass_ == "weight":  # direct: one job per group and block of 8 output channels
        jobs = groups * -(-cout_g // 8)
        return "direct" if narrow and sw == 1 and jobs >= get_num_threads() else "im2col"
    if pass_ == "data":
        return "direct" if narrow or (cin_g < 16 and groups == 1 and cout_g < 8) else "im2col"
    if narrow and sw == 1:
        return "direct"
    return "direct" if cout_g < 8 and (groups == 1 or cin_g * kh * kw < 32) else "im2col"


def winograd_applies(geom):
    """Whether algorithm="winograd" (F(2x2, 3x3)) runs a conv2d geometry: a 3x3 kernel, stride
    1, dilation 1 and one group, any padding."""
    kh, kw, _, _, sh, sw, dh, dw = geom[5:13]
    return kh == kw == 3 and sh == sw == dh == dw == 1 and geom[15] == 1


def _algo_code(algorithm, geom, pass_="forward"):
    check_algorithm(algorithm)
    if algorithm == "auto":
        algorithm = choose_algorithm(geom, pass_)
    elif algorithm == "winograd":
        kh, kw, _, _, sh, sw, dh, dw = geom[5:13]
        if not winograd_applies(geom):
            raise ValueError(
                "algorithm='winograd' needs a 3x3 kernel, stride 1, dilation 1 and groups=1; got kernel "
                f"{kh}x{kw}, stride {(sh, sw)}, dilation {(dh, dw)}, groups={geom[15]}")
        if pass_ == "weight":  # a sum over pixels: the im2col GEMM
            algorithm = "im2col"
    return ALGORITHMS[algorithm]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, algorithm="auto", out=None,
           scale=None, activation=None):
    """2-D convolution (cross-correlation), as torch.nn.functional.conv2d.

    x: (N, C_in, H, W) or unbatched (C_in, H, W); weight: (C_out, C_in/groups, kh, kw); bias: (C_out,).
    stride, dilation: int or (h, w). padding: int, (h, w), ((top, bottom), (left, right)), "valid",
    or "same" (output ceil(H/stride) at any stride, the odd extra row/column at the bottom/right).
    algorithm: "auto", "im2col" (implicit-im2col GEMM), "direct", or "winograd" (F(2x2, 3x3): 3x3
    kernels at stride 1, dilation 1, groups=1; 2.25x fewer multiply-adds, see the README).

    fastconv's epilogue (no PyTorch equivalent): ``activation(conv * scale[c] + bias[c])`` in the
    same pass, with scale (C_out,) and activation None, "relu", "relu6", "silu" or "sigmoid". A
    BatchNorm2d in eval mode folds into scale and bias; fastconv.nn does this by itself for
    Conv2d -> BatchNorm2d (-> ReLU/ReLU6/SiLU) in eval mode."""
    x, weight, unbatched = _conv_inputs(x, weight)
    geom, out_shape = _conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    check_result_size(out_shape, x.dtype, "conv2d's output")
    bias = _bias(bias, weight.shape[0], x.dtype)
    scale = _bias(scale, weight.shape[0], x.dtype, "scale")
    if activation not in _core.ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(_core.ACTIVATIONS)}, got {activation!r}")
    algo = _algo_code(algorithm, geom)
    shape = out_shape[1:] if unbatched else out_shape
    if out is None:
        y = empty(out_shape, dtype=x.dtype)
    else:
        check_out(out, shape, x.dtype, {"x": x, "weight": weight, **({"bias": bias} if bias is not None else {})})
        y = out.reshape(out_shape) if out.flags.aligned else empty(out_shape, dtype=x.dtype)
    if out_shape[0] > 0:
        _core.conv2d_forward(x, weight, bias, y, geom, algo, get_num_threads(), scale,
                             _core.ACTIVATIONS[activation])
    if out is None:
        return y[0] if unbatched else y
    if not np.shares_memory(y, out):  # computed in an aligned temporary
        out[...] = y.reshape(shape)
    return out


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    input_grad=True, weight_grad=True, bias_grad=True, algorithm="auto"):
    """Gradients of conv2d with respect to x, weight and bias: (grad_x, grad_w, grad_b), each
    None when not asked for (and then not computed). Same arguments as conv2d."""
    x, weight, unbatched = _conv_inputs(x, weight)
    geom, out_shape = _conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    dy = check_float_array(grad_output, "grad_output")
    check_same_dtype(grad_output=dy, x=x)
    expected = out_shape[1:] if unbatched else out_shape
    if dy.shape != tuple(expected):
        raise ValueError(f"grad_output must have the output's shape {tuple(expected)}, got {dy.shape}")
    dy = np.ascontiguousarray(dy.reshape(out_shape))
    check_algorithm(algorithm)
    nthreads = get_num_threads()
    grad_x = grad_w = grad_b = None
    if input_grad:
        grad_x = empty_like(x) if x.shape[0] else np.zeros_like(x)
        if x.shape[0]:
            _core.conv2d_backward_data(dy, weight, grad_x, geom, _algo_code(algorithm, geom, "data"), nthreads)
        grad_x = grad_x[0] if unbatched else grad_x
    if weight_grad or bias_grad:
        grad_w = empty_like(weight) if weight_grad else None
        grad_b = empty(weight.shape[0], dtype=x.dtype) if bias_grad else None
        if x.shape[0]:
            _core.conv2d_backward_weight(dy, x, grad_w, grad_b, geom, _algo_code(algorithm, geom, "weight"),
                                         nthreads)
        else:
            for g in (grad_w, grad_b):
                if g is not None:
                    g[...] = 0
    return grad_x, grad_w, grad_b


def _transpose_geometry(x_shape, w_shape, stride, padding, output_padding, groups, dilation):
    """conv_transpose2d x (N, C_in, H, W) -> y (N, C_out, Ho, Wo) is the adjoint of the conv2d
    y -> x with the same weight; -> (geom of that conv2d, y's shape)."""
    n, c_in, h, w = x_shape
    w_in, c_out_g, kh, kw = w_shape
    stride = pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    pad = pair(padding, "padding", minimum=0)
    out_pad = pair(output_padding, "output_padding", minimum=0)
    groups = check_positive_int(groups, "groups")
    if w_in != c_in:
        raise ValueError(f"weight.shape[0] ({w_in}) must equal the {c_in} input channels of x "
                         "(conv_transpose2d weight is (C_in, C_out/groups, kh, kw))")
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the {c_in} input channels of x")
    for axis, op, s, d in zip("hw", out_pad, stride, dilation):
        if op >= max(s, d):
            raise ValueError(f"output_padding ({op} along {axis}) must be smaller than stride ({s}) "
                             f"or dilation ({d})")
    if min(h, w, kh, kw, c_out_g) < 1:
        raise ValueError(f"x {x_shape} and weight {w_shape} must have non-empty planes, kernel and channels")
    out_hw = tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1
                   for i, s, p, d, k, op in zip((h, w), stride, pad, dilation, (kh, kw), out_pad))
    if min(out_hw) < 1:
        raise ValueError(f"conv_transpose2d output size would be {out_hw}: padding {pad} is too large")
    c_out = c_out_g * groups
    geom = (n, c_out, out_hw[0], out_hw[1], c_in, kh, kw, h, w, stride[0], stride[1],
            dilation[0], dilation[1], pad[0], pad[1], groups)
    return geom, (n, c_out) + out_hw


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, *,
                     algorithm="auto"):
    """Transposed 2-D convolution, as torch.nn.functional.conv_transpose2d: weight is
    (C_in, C_out/groups, kh, kw), the output is (N, C_out, Ho, Wo) with
    Ho = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1. Runs the data-gradient
    machinery of conv2d."""
    x, weight, unbatched = _conv_inputs(x, weight)
    geom, out_shape = _transpose_geometry(x.shape, weight.shape, stride, padding, output_padding, groups,
                                          dilation)
    check_result_size(out_shape, x.dtype, "conv_transpose2d's output")
    bias = _bias(bias, out_shape[1], x.dtype)
    algo = _algo_code(algorithm, geom, "data")
    y = empty(out_shape, dtype=x.dtype)
    if x.shape[0]:
        _core.conv2d_backward_data(x, weight, y, geom, algo, get_num_threads())
    if bias is not None:
        y += bias[:, None, None]
    return y[0] if unbatched else y


def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1, *, input_grad=True, weight_grad=True, bias_grad=True,
                              algorithm="auto"):
    """Gradients of conv_transpose2d: (grad_x, grad_w, grad_b), None where not asked for."""
    x, weight, unbatched = _conv_inputs(x, weight)
    geom, out_shape = _transpose_geometry(x.shape, weight.shape, stride, padding, output_padding, groups,
                                          dilation)
    dy = check_float_array(grad_output, "grad_output")
    check_same_dtype(grad_output=dy, x=x)
    expected = out_shape[1:] if unbatched else out_shape
    if dy.shape != tuple(expected):
        raise ValueError(f"grad_output must have the output's shape {tuple(expected)}, got {dy.shape}")
    dy = np.ascontiguousarray(dy.reshape(out_shape))
    check_algorithm(algorithm)
    nthreads = get_num_threads()
    grad_x = grad_w = grad_b = None
    if input_grad:
        grad_x = np.zeros_like(x)
        if x.shape[0]:
            _core.conv2d_forward(dy, weight, None, grad_x, geom, _algo_code(algorithm, geom), nthreads)
        grad_x = grad_x[0] if unbatched else grad_x
    if weight_grad:
        grad_w = np.zeros_like(weight)
        if x.shape[0]:
            _core.conv2d_backward_weight(x, dy, grad_w, None, geom, _algo_code(algorithm, geom, "weight"),
                                         nthreads)
    if bias_grad:
        grad_b = dy.sum(axis=(0, 2, 3))
    return grad_x, grad_w, grad_b


# ---- depthwise and pointwise ---------------------------------------------------------------

def _depthwise_groups(x, weight):
    x = check_float_array(x, "x")
    weight = check_float_array(weight, "weight", ndim=4)
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    c = x.shape[-3]
    if weight.shape[1] != 1 or c < 1 or weight.shape[0] % c:
        raise ValueError(f"depthwise weight must have shape (C*m, 1, kh, kw) for the C={c} channels of x "
                         f"(depth multiplier m >= 1), got {weight.shape}")
    return x, weight, c


def depthwise_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """Depthwise convolution: conv2d with groups = C (channels of x); weight (C*m, 1, kh, kw) for a
    depth multiplier m, output channel c*m + j reading input channel c. Runs the dedicated
    depthwise kernels (vectorised along rows, bias fused, one pass). Padding forms as conv2d."""
    x, weight, c = _depthwise_groups(x, weight)
    return conv2d(x, weight, bias, stride, padding, dilation, groups=c, algorithm="direct")


def depthwise_conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, *, input_grad=True,
                              weight_grad=True, bias_grad=True):
    """Gradients of depthwise_conv2d: (grad_x, grad_w, grad_b), None where not asked for."""
    x, weight, c = _depthwise_groups(x, weight)
    return conv2d_backward(grad_output, x, weight, stride, padding, dilation, groups=c, input_grad=input_grad,
                           weight_grad=weight_grad, bias_grad=bias_grad, algorithm="direct")


def _pointwise_weight(weight):
    weight = check_float_array(weight, "weight")
    if weight.ndim == 2:
        return weight.reshape(weight.shape + (1, 1)), 2
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):
        return weight, 4
    raise ValueError(f"pointwise weight must have shape (C_out, C_in) or (C_out, C_in, 1, 1), got {weight.shape}")


def pointwise_conv2d(x, weight, bias=None):
    """1x1 convolution, stride 1, no padding: a GEMM per image on the engine's core (pixels of small
    planes batched across images), bias fused. weight (C_out, C_in) or (C_out, C_in, 1, 1)."""
    weight, _ = _pointwise_weight(weight)
    return conv2d(x, weight, bias, algorithm="im2col")


def pointwise_conv2d_backward(grad_output, x, weight, *, input_grad=True, weight_grad=True, bias_grad=True):
    """Gradients of pointwise_conv2d; grad_w has weight's shape ((C_out, C_in) or 4-D)."""
    weight4, ndim = _pointwise_weight(weight)
    gx, gw, gb = conv2d_backward(grad_output, x, weight4, input_grad=input_grad, weight_grad=weight_grad,
                                 bias_grad=bias_grad, algorithm="im2col")
    if gw is not None and ndim == 2:
        gw = gw.reshape(gw.shape[:2])
    return gx, gw, gb


# ---- pooling (fastconv/_pooling.py) ---------------------------------------------------------
from ._pooling import *  # noqa: E402,F401,F403  (max/avg/adaptive/global pooling)
