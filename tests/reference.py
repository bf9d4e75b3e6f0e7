"""Plain NumPy float64 reference implementations of fastconv's operations.

Every function here is deliberately simple (no tiling, no threading, no cleverness): it
converts its inputs to float64 and computes the textbook formula with NumPy, so that a test
can compare a fastconv result against it with an error bound (see conftest.py). Keep it a
plain module of functions: later op families add their references here.
"""
import numpy as np


def _as_float64(x):
    """x as a float64 ndarray (values taken as given, whatever the layout or dtype)."""
    return np.asarray(x).astype(np.float64, copy=True)


def matmul_ref(a, b):
    """a @ b for 2-D a (m x k) and b (k x n), computed in float64.

    The result has shape (m, n) and dtype float64 whatever the input dtype; an empty inner
    dimension (k == 0) gives zeros, as numpy.matmul does."""
    a = _as_float64(a)
    b = _as_float64(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul_ref takes 2-D arrays, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul_ref: inner dimensions differ: {a.shape} @ {b.shape}")
    return np.matmul(a, b)


def matmul_abs_ref(a, b):
    """|a| @ |b| in float64: the sum of absolute products behind each output element, which
    scales the rounding-error bound of a float summation (see conftest.assert_close_bound)."""
    return matmul_ref(np.abs(_as_float64(a)), np.abs(_as_float64(b)))


# ---- 2-D convolution ------------------------------------------------------------------------
#
# Conventions (PyTorch's): x is NCHW (or CHW, unbatched), a conv2d weight is OIHW =
# (Cout, Cin/groups, kh, kw), a conv_transpose2d weight is (Cin, Cout/groups, kh, kw), bias (Cout,).
#
# Everything is built from three plain loops over the kernel taps (ki, kj). For one tap, the
# input pixels it touches form a strided slice of the padded input,
#     xp[:, :, ki*dh : ki*dh + sh*(OH-1) + 1 : sh, kj*dw : kj*dw + sw*(OW-1) + 1 : sw],
# one per output pixel, so
#   forward       y  += einsum over in-channels of (slice, w[..., ki, kj])
#   input grad    gxp[slice] += einsum over out-channels of (gy, w[..., ki, kj])   (scatter-add)
#   weight grad   gw[..., ki, kj] = einsum over batch and pixels of (gy, slice)
# The two gradients are written out on their own (not derived from the forward code), so the
# forward and backward references check each other through tests/test_reference_conv_torch.py
# and the finite-difference tests.


def _pair(v, name="value"):
    """An int or a length-2 sequence of ints as a tuple (a, b)."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(e) for e in v)
    if len(v) != 2:
        raise ValueError(f"{name}: expected an int or a pair, got {v}")
    return v


def _tap_slice(start, step, count):
    """The slice of `count` elements from `start` with step `step`."""
    return slice(start, start + step * (count - 1) + 1, step)


def _taps_forward(xp, w, stride, dilation, groups, out_hw):
    """y[n, o, i, j] = sum_{c, ki, kj} xp[n, g*Cg + c, i*sh + ki*dh, j*sw + kj*dw] * w[o, c, ki, kj]
    for the already padded float64 input xp (N, Cin, Hp, Wp); o in group g."""
    n, cin, hp, wp = xp.shape
    cout, cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    oh, ow = out_hw
    og = cout // groups
    assert cg * groups == cin and og * groups == cout
    assert (oh - 1) * sh + (kh - 1) * dh < hp and (ow - 1) * sw + (kw - 1) * dw < wp
    xg = xp.reshape(n, groups, cg, hp, wp)
    wg = w.reshape(groups, og, cg, kh, kw)
    y = np.zeros((n, groups, og, oh, ow))
    for ki in range(kh):
        for kj in range(kw):
            sl = xg[:, :, :, _tap_slice(ki * dh, sh, oh), _tap_slice(kj * dw, sw, ow)]
            y += np.einsum("ngchw,goc->ngohw", sl, wg[:, :, :, ki, kj])
    return y.reshape(n, cout, oh, ow)


def _taps_input_grad(gy, w, stride, dilation, groups, padded_hw):
    """The adjoint of _taps_forward with respect to xp: scatter-add of gy (N, Cout, OH, OW)
    through each tap into a zero buffer of shape (N, Cin, Hp, Wp)."""
    n, cout, oh, ow = gy.shape
    _, cg, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    hp, wp = padded_hw
    og = cout // groups
    gyg = gy.reshape(n, groups, og, oh, ow)
    wg = w.reshape(groups, og, cg, kh, kw)
    gxp = np.zeros((n, groups, cg, hp, wp))
    for ki in range(kh):
        for kj in range(kw):
            gxp[:, :, :, _tap_slice(ki * dh, sh, oh), _tap_slice(kj * dw, sw, ow)] += np.einsum(
                "ngohw,goc->ngchw", gyg, wg[:, :, :, ki, kj])
    return gxp.reshape(n, groups * cg, hp, wp)


def _taps_weight_grad(gy, xp, stride, dilation, groups, kernel_hw):
    """gw[o, c, ki, kj] = sum_{n, i, j} gy[n, o, i, j] * xp[n, g*Cg + c, i*sh + ki*dh, j*sw + kj*dw]."""
    n, cout, oh, ow = gy.shape
    _, cin, hp, wp = xp.shape
    sh, sw = stride
    dh, dw = dilation
    kh, kw = kernel_hw
    og, cg = cout // groups, cin // groups
    gyg = gy.reshape(n, groups, og, oh, ow)
    xg = xp.reshape(n, groups, cg, hp, wp)
    gw = np.zeros((groups, og, cg, kh, kw))
    for ki in range(kh):
        for kj in range(kw):
            sl = xg[:, :, :, _tap_slice(ki * dh, sh, oh), _tap_slice(kj * dw, sw, ow)]
            gw[:, :, :, ki, kj] = np.einsum("ngohw,ngchw->goc", gyg, sl)
    return gw.reshape(cout, cg, kh, kw)


def _batched(x):
    """(x as 4-D float64, whether it was 3-D)."""
    x = _as_float64(x)
    if x.ndim == 3:
        return x[None], True
    if x.ndim != 4:
        raise ValueError(f"expected a 3-D or 4-D array, got shape {x.shape}")
    return x, False


def resolve_padding2d(padding, in_hw, kernel_hw, stride=1, dilation=1):
    """Any conv2d padding form as (top, bottom, left, right).

    Forms: int p; (ph, pw); ((top, bottom), (left, right)); "valid" (no padding); "same": output
    size ceil(in / stride) at any stride, total padding per axis
    max((ceil(in/s) - 1)*s + (k-1)*d + 1 - in, 0), split total//2 before and the rest after
    (the extra one on the bottom/right, as Keras/TF)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding != "same":
            raise ValueError(f"unknown padding string {padding!r}")
        out = []
        for size, k, s, d in zip(in_hw, kernel_hw, _pair(stride), _pair(dilation)):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            out += [total // 2, total - total // 2]
        return tuple(out)
    if isinstance(padding, (int, np.integer)):
        p = int(padding)
        return (p, p, p, p)
    ph, pw = padding
    if isinstance(ph, (int, np.integer)) and isinstance(pw, (int, np.integer)):
        return (int(ph), int(ph), int(pw), int(pw))
    (t, b), (l, r) = ph, pw
    return (int(t), int(b), int(l), int(r))


def conv2d_output_hw(in_hw, kernel_hw, stride=1, padding=0, dilation=1):
    """(OH, OW) of conv2d: floor((in + pad_before + pad_after - d*(k-1) - 1) / s) + 1 per axis
    (may be < 1 for invalid arguments; callers check)."""
    t, b, l, r = resolve_padding2d(padding, in_hw, kernel_hw, stride, dilation)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    (h, w), (kh, kw) = in_hw, kernel_hw
    return ((h + t + b - dh * (kh - 1) - 1) // sh + 1, (w + l + r - dw * (kw - 1) - 1) // sw + 1)


def _pad2d(x, pads):
    t, b, l, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def conv2d_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d in float64, with every padding form of resolve_padding2d
    (including asymmetric padding and "same" at any stride). x is NCHW or CHW."""
    x, unbatched = _batched(x)
    w = _as_float64(weight)
    kh, kw = w.shape[2:]
    pads = resolve_padding2d(padding, x.shape[2:], (kh, kw), stride, dilation)
    oh, ow = conv2d_output_hw(x.shape[2:], (kh, kw), stride, pads_as_nested(pads), dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"conv2d_ref: output size {oh}x{ow} < 1")
    y = _taps_forward(_pad2d(x, pads), w, _pair(stride), _pair(dilation), groups, (oh, ow))
    if bias is not None:
        y += _as_float64(bias)[None, :, None, None]
    return y[0] if unbatched else y


def pads_as_nested(pads):
    """(top, bottom, left, right) -> ((top, bottom), (left, right)), the nested padding form."""
    t, b, l, r = pads
    return ((t, b), (l, r))


def conv2d_abs_ref(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d_ref of |x|, |weight|, |bias|: the sum of absolute terms behind each output, the
    scale of its rounding-error bound."""
    return conv2d_ref(np.abs(_as_float64(x)), np.abs(_as_float64(weight)),
                      None if bias is None else np.abs(_as_float64(bias)), stride, padding, dilation, groups)


def conv2d_backward_ref(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """(grad_x, grad_weight, grad_bias) of conv2d, float64: the gradients of
    sum(conv2d(x, weight, bias) * grad_output) (as torch.autograd gives them). grad_bias has
    shape (Cout,). A 3-D (unbatched) x gives a 3-D grad_x (grad_output is then 3-D too)."""
    x, unbatched = _batched(x)
    gy, _ = _batched(grad_output)
    w = _as_float64(weight)
    n, cin, h, wd = x.shape
    kh, kw = w.shape[2:]
    t, b, l, r = resolve_padding2d(padding, (h, wd), (kh, kw), stride, dilation)
    stride, dilation = _pair(stride), _pair(dilation)
    assert gy.shape[:2] == (n, w.shape[0])
    assert gy.shape[2:] == conv2d_output_hw((h, wd), (kh, kw), stride, ((t, b), (l, r)), dilation)
    gxp = _taps_input_grad(gy, w, stride, dilation, groups, (h + t + b, wd + l + r))
    gx = gxp[:, :, t:t + h, l:l + wd]
    gw = _taps_weight_grad(gy, _pad2d(x, (t, b, l, r)), stride, dilation, groups, (kh, kw))
    gb = gy.sum(axis=(0, 2, 3))
    return (gx[0] if unbatched else gx), gw, gb


def conv2d_backward_abs_ref(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1):
    """conv2d_backward_ref of |grad_output|, |x|, |weight|: the error-bound scales of the three
    gradients (grad_b's is sum |grad_output|)."""
    return conv2d_backward_ref(np.abs(_as_float64(grad_output)), np.abs(_as_float64(x)),
                               np.abs(_as_float64(weight)), stride, padding, dilation, groups)


def conv_transpose2d_output_hw(in_hw, kernel_hw, stride=1, padding=0, output_padding=0, dilation=1):
    """(H-1)*s - 2*p + d*(k-1) + output_padding + 1 per axis."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation)
    (h, w), (kh, kw) = in_hw, kernel_hw
    return ((h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1, (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1)


def conv_transpose2d_ref(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d in float64 (argument order as PyTorch's: groups
    before dilation). weight is (Cin, Cout/groups, kh, kw).

    It is the adjoint of conv2d (its input gradient): x is scattered through every tap into the
    full (uncropped) output, of size (H-1)*s + d*(k-1) + 1 + output_padding, then `padding` is
    cropped off each side; the output_padding rows/columns at the bottom/right receive only
    what reaches them (often nothing: zero plus bias)."""
    x, unbatched = _batched(x)
    w = _as_float64(weight)
    kh, kw = w.shape[2:]
    (ph, pw) = _pair(padding)
    oh, ow = conv_transpose2d_output_hw(x.shape[2:], (kh, kw), stride, padding, output_padding, dilation)
    if oh < 1 or ow < 1:
        raise ValueError(f"conv_transpose2d_ref: output size {oh}x{ow} < 1")
    full = _taps_input_grad(x, w, _pair(stride), _pair(dilation), groups, (oh + 2 * ph, ow + 2 * pw))
    y = full[:, :, ph:ph + oh, pw:pw + ow]
    if bias is not None:
        y = y + _as_float64(bias)[None, :, None, None]
    return y[0] if unbatched else y


def conv_transpose2d_abs_ref(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """conv_transpose2d_ref of |x|, |weight|, |bias| (the error-bound scale)."""
    return conv_transpose2d_ref(np.abs(_as_float64(x)), np.abs(_as_float64(weight)),
                                None if bias is None else np.abs(_as_float64(bias)),
                                stride, padding, output_padding, groups, dilation)


def conv_transpose2d_backward_ref(grad_output, x, weight, stride=1, padding=0, output_padding=0, groups=1,
                                  dilation=1):
    """(grad_x, grad_weight, grad_bias) of conv_transpose2d in float64.

    grad_x is a strided conv2d of grad_output with the same weight (gathering what the forward
    scattered); grad_weight the per-tap correlation of x with grad_output; grad_bias the sum of
    grad_output over batch and pixels."""
    x, unbatched = _batched(x)
    gy, _ = _batched(grad_output)
    w = _as_float64(weight)
    n, cin, h, wd = x.shape
    kh, kw = w.shape[2:]
    ph, pw = _pair(padding)
    oh, ow = conv_transpose2d_output_hw((h, wd), (kh, kw), stride, padding, output_padding, dilation)
    assert gy.shape == (n, w.shape[1] * groups, oh, ow), (gy.shape, (n, w.shape[1] * groups, oh, ow))
    # The full output the forward scattered into, with grad_output in its uncropped window.
    gyp = np.pad(gy, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    stride, dilation = _pair(stride), _pair(dilation)
    gx = _taps_forward(gyp, w, stride, dilation, groups, (h, wd))
    gw = _taps_weight_grad(x, gyp, stride, dilation, groups, (kh, kw))
    gb = gy.sum(axis=(0, 2, 3))
    return (gx[0] if unbatched else gx), gw, gb


def conv_transpose2d_backward_abs_ref(grad_output, x, weight, stride=1, padding=0, output_padding=0, groups=1,
                                      dilation=1):
    """conv_transpose2d_backward_ref of |grad_output|, |x|, |weight| (the error-bound scales)."""
    return conv_transpose2d_backward_ref(np.abs(_as_float64(grad_output)), np.abs(_as_float64(x)),
                                         np.abs(_as_float64(weight)), stride, padding, output_padding,
                                         groups, dilation)
