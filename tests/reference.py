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


# ---- pooling ----------------------------------------------------------------------------------
#
# PyTorch's semantics (NCHW or CHW). Output size per axis:
#     out = floor_or_ceil((n + 2p - d(k-1) - 1) / s) + 1, and in ceil mode one fewer when the last
#     window would start at or beyond n + p (in the right/bottom padding).
# Window o covers o*s - p + i*d (i < k), clipped to the input: padding is never a candidate for
# max and adds zeros for avg. Max walks the taps in raster order, taking a value when it is
# greater than the running maximum or NaN (so the first maximum wins, NaN propagates, and the
# index is that of the last NaN); the running maximum starts at -inf with the index of the
# first valid tap. Each function loops over the kernel taps with whole-array NumPy operations.


def pool_output_size(n, k, s, p, d=1, ceil_mode=False):
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_args(kernel_size, stride, padding, dilation=1):
    k = _pair(kernel_size)
    s = k if stride is None else _pair(stride)
    return k, s, _pair(padding), _pair(dilation)


def _tap_positions(out, k_i, s, p, d):
    """Input positions of tap k_i for outputs 0..out-1 along an axis."""
    return np.arange(out) * s - p + k_i * d


def max_pool2d_ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """(values, int64 flat indices) of PyTorch's max_pool2d, in float64."""
    x, unbatched = _batched(_as_float64(x))
    n, c, h, w = x.shape
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation)
    oh, ow = (pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode),
              pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode))
    m = np.full((n, c, oh, ow), -np.inf)
    # the index of the first valid tap (PyTorch moves a negative start up by whole dilations)
    def first(out, s_, p_, d_):
        st = np.arange(out) * s_ - p_
        return np.where(st < 0, st + (-st + d_ - 1) // d_ * d_, st)
    idx = np.broadcast_to(first(oh, s[0], p[0], d[0])[:, None] * w + first(ow, s[1], p[1], d[1])[None, :],
                          (n, c, oh, ow)).astype(np.int64)
    for ki in range(k[0]):
        rows = _tap_positions(oh, ki, s[0], p[0], d[0])
        for kj in range(k[1]):
            cols = _tap_positions(ow, kj, s[1], p[1], d[1])
            valid = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            v = x[:, :, np.clip(rows, 0, h - 1)[:, None], np.clip(cols, 0, w - 1)[None, :]]
            take = valid & ((v > m) | np.isnan(v))
            m = np.where(take, v, m)
            idx = np.where(take, rows[:, None] * w + cols[None, :], idx)
    if unbatched:
        return m[0], idx[0]
    return m, idx


def max_pool2d_backward_ref(grad_output, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Gradient of max_pool2d: grad_output summed into each window's argmax, float64."""
    _, idx = max_pool2d_ref(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _scatter_to_indices(grad_output, idx, np.shape(x))


def _scatter_to_indices(grad_output, idx, x_shape):
    g, unbatched = _batched(_as_float64(grad_output))
    idx = np.asarray(idx).reshape(g.shape)
    n, c = g.shape[:2]
    h, w = x_shape[-2:]
    gx = np.zeros((n * c, h * w))
    planes, flat, values = np.repeat(np.arange(n * c), idx.shape[2] * idx.shape[3]), idx.reshape(-1), g.reshape(-1)
    ok = (flat >= 0) & (flat < h * w)   # a dilated window wholly in the padding has no argmax
    np.add.at(gx, (planes[ok], flat[ok]), values[ok])
    gx = gx.reshape(n, c, h, w)
    return gx[0] if unbatched else gx


def _avg_divisor(out, k, s, p, n, count_include_pad):
    """PyTorch's divisor factor along one axis, per output."""
    st = np.arange(out) * s - p
    end = np.minimum(st + k, n + p)
    if count_include_pad:
        return (end - st).astype(np.float64)
    return (np.minimum(end, n) - np.maximum(st, 0)).astype(np.float64)


def _avg_geometry(shape, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    h, w = shape[-2:]
    k, s, p, _ = _pool_args(kernel_size, stride, padding)
    oh, ow = pool_output_size(h, k[0], s[0], p[0], 1, ceil_mode), pool_output_size(w, k[1], s[1], p[1], 1, ceil_mode)
    if divisor_override:
        div = np.full((oh, ow), float(divisor_override))
    else:
        div = (_avg_divisor(oh, k[0], s[0], p[0], h, count_include_pad)[:, None]
               * _avg_divisor(ow, k[1], s[1], p[1], w, count_include_pad)[None, :])
    return k, s, p, (oh, ow), div


def avg_pool2d_ref(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                   divisor_override=None):
    """PyTorch's avg_pool2d in float64."""
    x, unbatched = _batched(_as_float64(x))
    n, c, h, w = x.shape
    k, s, p, (oh, ow), div = _avg_geometry(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                           divisor_override)
    total = np.zeros((n, c, oh, ow))
    for ki in range(k[0]):
        rows = _tap_positions(oh, ki, s[0], p[0], 1)
        for kj in range(k[1]):
            cols = _tap_positions(ow, kj, s[1], p[1], 1)
            valid = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
            v = x[:, :, np.clip(rows, 0, h - 1)[:, None], np.clip(cols, 0, w - 1)[None, :]]
            total += np.where(valid, v, 0.0)
    y = total / div
    return y[0] if unbatched else y


def avg_pool2d_backward_ref(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                            count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d with respect to an input of input_shape, float64."""
    g, unbatched = _batched(_as_float64(grad_output))
    h, w = input_shape[-2:]
    n, c = g.shape[:2]
    k, s, p, (oh, ow), div = _avg_geometry(input_shape, kernel_size, stride, padding, ceil_mode,
                                           count_include_pad, divisor_override)
    gx = np.zeros((n, c, h, w))
    share = g / div
    for ki in range(k[0]):
        rows = _tap_positions(oh, ki, s[0], p[0], 1)
        rv = (rows >= 0) & (rows < h)
        for kj in range(k[1]):
            cols = _tap_positions(ow, kj, s[1], p[1], 1)
            cv = (cols >= 0) & (cols < w)
            # distinct outputs of one tap hit distinct inputs, so plain fancy-index += is exact
            gx[:, :, rows[rv][:, None], cols[cv][None, :]] += share[:, :, rv][:, :, :, cv]
    return gx[0] if unbatched else gx


def adaptive_windows(n, out):
    """[(start, end)] of PyTorch's adaptive windows along an axis of n inputs and out outputs."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def adaptive_avg_pool2d_ref(x, output_size):
    x, unbatched = _batched(_as_float64(x))
    oh, ow = _pair(output_size)
    y = np.empty(x.shape[:2] + (oh, ow))
    for i, (h0, h1) in enumerate(adaptive_windows(x.shape[2], oh)):
        for j, (w0, w1) in enumerate(adaptive_windows(x.shape[3], ow)):
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
    return y[0] if unbatched else y


def adaptive_avg_pool2d_backward_ref(grad_output, input_shape):
    g, unbatched = _batched(_as_float64(grad_output))
    h, w = input_shape[-2:]
    gx = np.zeros(g.shape[:2] + (h, w))
    for i, (h0, h1) in enumerate(adaptive_windows(h, g.shape[2])):
        for j, (w0, w1) in enumerate(adaptive_windows(w, g.shape[3])):
            gx[:, :, h0:h1, w0:w1] += (g[:, :, i, j] / ((h1 - h0) * (w1 - w0)))[:, :, None, None]
    return gx[0] if unbatched else gx


def adaptive_max_pool2d_ref(x, output_size):
    """(values, int64 flat indices) of PyTorch's adaptive_max_pool2d, float64."""
    x, unbatched = _batched(_as_float64(x))
    n, c, h, w = x.shape
    oh, ow = _pair(output_size)
    y = np.empty((n, c, oh, ow))
    idx = np.empty((n, c, oh, ow), dtype=np.int64)
    for i, (h0, h1) in enumerate(adaptive_windows(h, oh)):
        for j, (w0, w1) in enumerate(adaptive_windows(w, ow)):
            m = np.full((n, c), -np.inf)
            best = np.full((n, c), h0 * w + w0, dtype=np.int64)
            for ih in range(h0, h1):
                for iw in range(w0, w1):
                    v = x[:, :, ih, iw]
                    take = (v > m) | np.isnan(v)
                    m = np.where(take, v, m)
                    best = np.where(take, ih * w + iw, best)
            y[:, :, i, j], idx[:, :, i, j] = m, best
    if unbatched:
        return y[0], idx[0]
    return y, idx


def adaptive_max_pool2d_backward_ref(grad_output, x, output_size):
    _, idx = adaptive_max_pool2d_ref(x, output_size)
    return _scatter_to_indices(grad_output, idx, np.shape(x))
