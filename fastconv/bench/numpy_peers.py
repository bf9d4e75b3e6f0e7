"""NumPy peers of fastconv's ops for the benchmarks (benchmarks/ and `fastconv bench`).

conv2d: forward, backward-data and backward-weight via im2col.

Idiomatic NumPy, not deliberately slow: one strided copy builds the im2col matrix for the whole
batch, laid out (groups, Cin/groups * kh * kw, N * OH * OW) so that every pass is one BLAS GEMM
per group over the whole batch:

    forward          y_g   = W_g   @ cols_g          (Cout/g, K) @ (K, N*P)
    backward-weight  dW_g  = dy_g  @ cols_g.T        (Cout/g, N*P) @ (N*P, K)
    backward-data    dcols = W_g.T @ dy_g,  then col2im: one strided += per kernel tap

Layouts and semantics are PyTorch's: x NCHW, weight OIHW = (Cout, Cin/groups, kh, kw).
stride, dilation: int or (h, w); padding: int, (ph, pw) or ((top, bottom), (left, right)).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    if isinstance(v, (tuple, list)):
        a, b = v
        return int(a), int(b)
    return int(v), int(v)


def _pads(padding):
    """((top, bottom), (left, right)) from int, (ph, pw) or ((t, b), (l, r))."""
    if isinstance(padding, (tuple, list)):
        ph, pw = padding
        ph = tuple(ph) if isinstance(ph, (tuple, list)) else (int(ph), int(ph))
        pw = tuple(pw) if isinstance(pw, (tuple, list)) else (int(pw), int(pw))
        return ph, pw
    p = int(padding)
    return (p, p), (p, p)


def conv_geometry(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """Normalised parameters and output size (OH, OW)."""
    n, c, h, w = x_shape
    cout, cg, kh, kw = w_shape
    if c != cg * groups or cout % groups:
        raise ValueError(f"groups: x has {c} channels, weight {w_shape}, groups {groups}")
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    (pt, pb), (pl, pr) = _pads(padding)
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ValueError("padding: output would be empty")
    return dict(stride=(sh, sw), dilation=(dh, dw), pads=((pt, pb), (pl, pr)), out=(oh, ow))


def _padded(x, pads):
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def im2col(x, w_shape, stride=1, padding=0, dilation=1, groups=1):
    """cols (groups, Cin/groups * kh * kw, N * OH * OW), C-contiguous, and the geometry dict."""
    geo = conv_geometry(x.shape, w_shape, stride, padding, dilation, groups)
    n, c, _, _ = x.shape
    _, cg, kh, kw = w_shape
    (sh, sw), (dh, dw), (oh, ow) = geo["stride"], geo["dilation"], geo["out"]
    xp = _padded(x, geo["pads"])
    # (N, C, Hp - span_h + 1, Wp - span_w + 1, span_h, span_w): every window of the dilated kernel
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    win = win[:, :, : sh * (oh - 1) + 1 : sh, : sw * (ow - 1) + 1 : sw, ::dh, ::dw]
    # -> (C, kh, kw, N, OH, OW): one strided copy
    cols = np.empty((c, kh, kw, n, oh, ow), x.dtype)
    np.copyto(cols, win.transpose(1, 4, 5, 0, 2, 3))
    return cols.reshape(groups, cg * kh * kw, n * oh * ow), geo


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                   return_cols=False):
    """y = conv2d(x, weight) + bias, NCHW. With return_cols, also the im2col matrix (what a
    training framework keeps for the weight gradient)."""
    cols, geo = im2col(x, weight.shape, stride, padding, dilation, groups)
    n = x.shape[0]
    cout = weight.shape[0]
    oh, ow = geo["out"]
    wg = weight.reshape(groups, cout // groups, -1)
    y = np.matmul(wg, cols)                                   # (G, Cout/g, N*P)
    y = y.reshape(cout, n, oh, ow).transpose(1, 0, 2, 3)
    out = np.empty((n, cout, oh, ow), y.dtype)                # the copy back to NCHW,
    if bias is not None:                                      # bias add fused into it
        np.add(y, bias.reshape(1, cout, 1, 1), out=out)
    else:
        np.copyto(out, y)
    y = out
    return (y, cols) if return_cols else y


def _grad_out_rows(grad_output, groups):
    """dy as (G, Cout/g, N*P)."""
    n, cout, oh, ow = grad_output.shape
    return np.ascontiguousarray(grad_output.transpose(1, 0, 2, 3)).reshape(
        groups, cout // groups, n * oh * ow)


def conv2d_backward_weight(grad_output, x, w_shape, stride=1, padding=0, dilation=1, groups=1,
                           cols=None):
    """dL/dweight, shape w_shape. cols: the forward's im2col matrix, if kept."""
    if cols is None:
        cols, _ = im2col(x, w_shape, stride, padding, dilation, groups)
    gy = _grad_out_rows(grad_output, groups)
    gw = np.matmul(gy, cols.transpose(0, 2, 1))              # (G, Cout/g, K)
    return gw.reshape(w_shape)


def conv2d_backward_data(grad_output, weight, x_shape, stride=1, padding=0, dilation=1, groups=1):
    """dL/dx, shape x_shape: dcols = W^T dy (one GEMM per group), then col2im as one strided
    accumulation per kernel tap (kh * kw slice-adds, no np.add.at)."""
    geo = conv_geometry(x_shape, weight.shape, stride, padding, dilation, groups)
    n, c, h, w = x_shape
    cout, cg, kh, kw = weight.shape
    (sh, sw), (dh, dw), (oh, ow) = geo["stride"], geo["dilation"], geo["out"]
    (pt, pb), (pl, pr) = geo["pads"]
    gy = _grad_out_rows(grad_output, groups)
    wg = weight.reshape(groups, cout // groups, cg * kh * kw)
    dcols = np.matmul(wg.transpose(0, 2, 1), gy)              # (G, K, N*P)
    dcols = dcols.reshape(c, kh, kw, n, oh, ow)
    gxp = np.zeros((c, n, h + pt + pb, w + pl + pr), grad_output.dtype)
    for i in range(kh):
        for j in range(kw):
            gxp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh,
                j * dw: j * dw + sw * (ow - 1) + 1: sw] += dcols[:, i, j]
    gx = gxp[:, :, pt: pt + h, pl: pl + w].transpose(1, 0, 2, 3)
    return np.ascontiguousarray(gx)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, cols=None):
    """(grad_x, grad_w, grad_b), the whole backward pass."""
    gx = conv2d_backward_data(grad_output, weight, x.shape, stride, padding, dilation, groups)
    gw = conv2d_backward_weight(grad_output, x, weight.shape, stride, padding, dilation, groups,
                                cols=cols)
    return gx, gw, grad_output.sum((0, 2, 3))


# ---- depthwise: one multiply-add of shifted views per kernel tap, over the whole batch ---------
# (the usual NumPy way; an im2col GEMM makes no sense with one input channel per output). The
# weight gradient contracts each tap's view with grad_output in one einsum.

def _tap(i, k_step, stride, count):
    return slice(i * k_step, i * k_step + stride * (count - 1) + 1, stride)


def depthwise_forward(x, weight, bias, stride, padding):
    n, c, h, w = x.shape
    cm, _, kh, kw = weight.shape
    m = cm // c
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    xp = xp[:, :, None]                                        # (N, C, 1, Hp, Wp)
    wt = weight.reshape(c, m, kh, kw)
    y = np.empty((n, c, m, oh, ow), x.dtype)
    y[...] = bias.reshape(1, c, m, 1, 1)
    tmp = np.empty_like(y)
    for i in range(kh):
        for j in range(kw):
            np.multiply(xp[:, :, :, _tap(i, 1, stride, oh), _tap(j, 1, stride, ow)],
                        wt[None, :, :, i, j, None, None], out=tmp)
            y += tmp
    return y.reshape(n, cm, oh, ow)


def depthwise_backward(grad_output, x, weight, stride, padding):
    n, c, h, w = x.shape
    cm, _, kh, kw = weight.shape
    m = cm // c
    _, _, oh, ow = grad_output.shape
    gy = grad_output.reshape(n, c, m, oh, ow)
    wt = weight.reshape(c, m, kh, kw)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))) if padding else x
    gxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), x.dtype)
    gw = np.empty((c, m, kh, kw), x.dtype)
    tmp = np.empty((n, c, m, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _tap(i, 1, stride, oh), _tap(j, 1, stride, ow)
            np.multiply(gy, wt[None, :, :, i, j, None, None], out=tmp)
            gxp[:, :, rows, cols] += tmp.sum(axis=2) if m > 1 else tmp[:, :, 0]
            gw[:, :, i, j] = np.einsum("ncmhw,nchw->cm", gy, xp[:, :, rows, cols])
    gx = np.ascontiguousarray(gxp[:, :, padding:padding + h, padding:padding + w])
    return gx, gw.reshape(weight.shape), grad_output.sum(axis=(0, 2, 3))


# ---- pointwise (1x1): a GEMM per image --------------------------------------------------------

def pointwise_forward(x, weight, bias):
    n, c, h, w = x.shape
    y = np.matmul(weight, x.reshape(n, c, h * w))               # (N, Cout, H*W): a GEMM per image
    y += bias[:, None]
    return y.reshape(n, -1, h, w)


def pointwise_backward(grad_output, x, weight):
    n, c, h, w = x.shape
    gy = grad_output.reshape(n, -1, h * w)
    x3 = x.reshape(n, c, h * w)
    gx = np.matmul(weight.T, gy).reshape(x.shape)
    gw = np.tensordot(gy, x3, axes=([0, 2], [0, 2]))            # one GEMM over batch and pixels
    return gx, gw, gy.sum(axis=(0, 2))


# ---- pooling: pad (with -inf for max), a strided sliding-window view, one reduction -------------

def pool2d(x, kind, k, s, p):
    """kind "max", "avg" (count_include_pad) or "global_avg"."""
    if kind == "global_avg":
        return x.mean(axis=(2, 3), keepdims=True)
    xp = x if p == 0 else np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)),
                                 constant_values=-np.inf if kind == "max" else 0)
    v = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return v.max(axis=(-2, -1)) if kind == "max" else v.mean(axis=(-2, -1), dtype=x.dtype)
