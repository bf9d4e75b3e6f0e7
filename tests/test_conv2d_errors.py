"""Bad arguments to conv2d / conv2d_backward / conv_transpose2d / conv_transpose2d_backward:
a ValueError or TypeError whose message names the offending argument, raised before any
output is written."""
import numpy as np
import pytest

from fastconv import functional as F
from reference import conv_transpose2d_output_hw


def _xwb(dtype=np.float32, n=2, cin=4, cout=6, hw=(7, 7), k=(3, 3), groups=1):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, cin) + hw).astype(dtype)
    w = rng.standard_normal((cout, cin // groups) + k).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    return x, w, b


def _grad_output(x, w, **kw):
    """A grad_output of the right shape for conv2d(x, w, **kw)."""
    return np.ones(F.conv2d(x, w, **kw).shape, x.dtype)


# ---- ndim and shapes ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(7, 7), (4,), (), (1, 2, 4, 7, 7)], ids=["2d", "1d", "0d", "5d"])
def test_conv2d_x_wrong_ndim(shape):
    _, w, b = _xwb()
    x = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.conv2d(x, w, b)
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.conv2d_backward(np.ones((2, 6, 5, 5), np.float32), x, w)


@pytest.mark.parametrize("shape", [(6, 4, 3), (6, 36), (6, 4, 3, 3, 1), (6,)], ids=["3d", "2d", "5d", "1d"])
def test_conv2d_weight_wrong_ndim(shape):
    x, _, b = _xwb()
    w = np.ones(shape, np.float32)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x, w, b)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d_backward(np.ones((2, 6, 5, 5), np.float32), x, w)


@pytest.mark.parametrize("groups,w_in", [(1, 3), (1, 5), (2, 4), (2, 1), (4, 2)])
def test_conv2d_channel_mismatch(groups, w_in):
    """weight.shape[1] * groups must equal x's channel count (4)."""
    x, _, _ = _xwb()
    w = np.ones((8, w_in, 3, 3), np.float32)
    with pytest.raises(ValueError, match="weight|channel"):
        F.conv2d(x, w, groups=groups)
    with pytest.raises(ValueError, match="weight|channel"):
        F.conv2d_backward(np.ones((2, 8, 5, 5), np.float32), x, w, groups=groups)


def test_conv2d_unbatched_channel_mismatch():
    _, w, _ = _xwb()
    with pytest.raises(ValueError, match="weight|channel"):
        F.conv2d(np.ones((3, 7, 7), np.float32), w)


@pytest.mark.parametrize("cin,cout,groups", [(4, 6, 3), (6, 4, 3), (5, 5, 2), (4, 6, 4), (4, 4, 8)])
def test_conv2d_channels_not_divisible_by_groups(cin, cout, groups):
    x = np.ones((1, cin, 5, 5), np.float32)
    w = np.ones((cout, max(cin // groups, 1), 3, 3), np.float32)
    with pytest.raises(ValueError, match="groups|weight"):
        F.conv2d(x, w, groups=groups)
    with pytest.raises(ValueError, match="groups|weight"):
        F.conv2d_backward(np.ones((1, cout, 3, 3), np.float32), x, w, groups=groups)


# Which argument is "wrong" when the kernel does not fit is a matter of view: the message must
# say what does not fit.
TOO_SMALL = r"(?i)kernel|weight|padding|input|output|size"


@pytest.mark.parametrize("kw", [
    dict(hw=(2, 7)), dict(hw=(7, 2)), dict(hw=(2, 2)), dict(k=(8, 3)), dict(k=(3, 8)), dict(hw=(1, 1)),
], ids=["h_small", "w_small", "both_small", "kh_large", "kw_large", "1x1_input"])
def test_conv2d_kernel_larger_than_input(kw):
    x, w, b = _xwb(**kw)
    with pytest.raises(ValueError, match=TOO_SMALL):
        F.conv2d(x, w, b)


@pytest.mark.parametrize("args", [
    dict(hw=(4, 4), k=(3, 3), dilation=2),          # dilated kernel 5 > 4
    dict(hw=(4, 4), k=(3, 3), dilation=(1, 3)),
    dict(hw=(5, 5), k=(7, 7), padding=(0, 1)),      # padded 5x7 < 7x7
    dict(hw=(5, 5), k=(7, 7), padding=((1, 0), (1, 1))),
])
def test_conv2d_kernel_larger_than_padded_input(args):
    hw, k = args.pop("hw"), args.pop("k")
    x, w, b = _xwb(hw=hw, k=k)
    with pytest.raises(ValueError, match=TOO_SMALL):
        F.conv2d(x, w, b, **args)


def test_conv2d_kernel_equal_to_padded_input_is_fine():
    x, w, b = _xwb(hw=(5, 5), k=(7, 7))
    assert F.conv2d(x, w, b, padding=1).shape == (2, 6, 1, 1)
    assert F.conv2d(x, w, b, padding="same").shape == (2, 6, 5, 5)   # "same" always fits


@pytest.mark.parametrize("bias_shape", [(5,), (7,), (6, 1), (1, 6), (), (1,)])
def test_conv2d_wrong_bias_shape(bias_shape):
    x, w, _ = _xwb()
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, w, np.ones(bias_shape, np.float32))


def test_conv2d_backward_wrong_grad_output_shape():
    x, w, _ = _xwb()
    good = _grad_output(x, w)                               # (2, 6, 5, 5)
    for shape in [(2, 6, 5, 4), (2, 6, 7, 7), (1, 6, 5, 5), (2, 5, 5, 5), (6, 5, 5), (2, 6, 25)]:
        with pytest.raises(ValueError, match="grad_output"):
            F.conv2d_backward(np.ones(shape, np.float32), x, w)
    F.conv2d_backward(good, x, w)


# ---- stride, dilation, groups ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [0, -1, (0, 1), (1, 0), (2, -2), (-1, -1)])
def test_conv2d_stride_dilation_out_of_range(name, value):
    x, w, b = _xwb()
    with pytest.raises(ValueError, match=name):
        F.conv2d(x, w, b, **{name: value})
    with pytest.raises(ValueError, match=name):
        F.conv2d_backward(np.ones((2, 6, 5, 5), np.float32), x, w, **{name: value})


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [True, 1.0, 2.5, (1.0, 1), (1, True), "1", None, np.float64(2.0)],
                         ids=["bool", "float1", "float2.5", "float_in_pair", "bool_in_pair", "str", "None",
                              "np_float"])
def test_conv2d_stride_dilation_wrong_type(name, value):
    x, w, b = _xwb()
    with pytest.raises(TypeError, match=name):
        F.conv2d(x, w, b, **{name: value})


@pytest.mark.parametrize("name", ["stride", "dilation"])
@pytest.mark.parametrize("value", [(1, 1, 1), (1,), ()], ids=["3", "1", "0"])
def test_conv2d_stride_dilation_wrong_length(name, value):
    x, w, b = _xwb()
    with pytest.raises((ValueError, TypeError), match=name):
        F.conv2d(x, w, b, **{name: value})


@pytest.mark.parametrize("value", [0, -1, -2])
def test_conv2d_groups_out_of_range(value):
    x, w, b = _xwb()
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, w, b, groups=value)


@pytest.mark.parametrize("value", [True, 1.0, 2.0, "2", None, (1, 1)], ids=["bool", "1.0", "2.0", "str", "None",
                                                                           "tuple"])
def test_conv2d_groups_wrong_type(value):
    x, w, b = _xwb()
    with pytest.raises(TypeError, match="groups"):
        F.conv2d(x, w, b, groups=value)


# ---- padding --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [-1, (0, -1), (-1, 0), ((0, 0), (0, -1)), ((-1, 1), (1, 1)), ((1, 1), (-2, 0))])
def test_conv2d_negative_padding(value):
    x, w, b = _xwb()
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, b, padding=value)
    with pytest.raises(ValueError, match="padding"):
        F.conv2d_backward(np.ones((2, 6, 5, 5), np.float32), x, w, padding=value)


@pytest.mark.parametrize("value", ["full", "SAME!", "", "causal", "Same ", "valid "])
def test_conv2d_bad_padding_string(value):
    x, w, b = _xwb()
    with pytest.raises(ValueError, match="padding"):
        F.conv2d(x, w, b, padding=value)


# (A per-axis mix such as ((1, 2), 3) is not in the spec; it is not tested either way.)
@pytest.mark.parametrize("value", [(1, 2, 3), (1,), (), ((1, 2), (3,)), ((1, 2, 3), (1, 2)),
                                   ((1, 1), (1, 1), (1, 1)), (1, 2, 3, 4), ((1, 2),)],
                         ids=["3", "1", "0", "nested_short", "nested_long", "three_pairs", "flat_4", "one_pair"])
def test_conv2d_bad_padding_tuple(value):
    x, w, b = _xwb()
    with pytest.raises((ValueError, TypeError), match="padding"):
        F.conv2d(x, w, b, padding=value)


@pytest.mark.parametrize("value", [1.0, 1.5, (1.0, 1), ((1, 1.5), (0, 0)), None, True],
                         ids=["1.0", "1.5", "float_in_pair", "float_nested", "None", "bool"])
def test_conv2d_padding_wrong_type(value):
    x, w, b = _xwb()
    with pytest.raises(TypeError, match="padding"):
        F.conv2d(x, w, b, padding=value)


# ---- algorithm ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["gemm", "Winograd", "", "fft", "im2col "])
def test_unknown_algorithm(value):
    x, w, b = _xwb()
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, w, b, algorithm=value)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d_backward(_grad_output(x, w), x, w, algorithm=value)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv_transpose2d(x, np.ones((4, 3, 3, 3), np.float32), algorithm=value)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv_transpose2d_backward(np.ones((2, 3, 9, 9), np.float32), x, np.ones((4, 3, 3, 3), np.float32),
                                    algorithm=value)


@pytest.mark.parametrize("value", [None, 1, ("im2col",)], ids=["None", "int", "tuple"])
def test_algorithm_wrong_type(value):
    x, w, b = _xwb()
    with pytest.raises((ValueError, TypeError), match="algorithm"):
        F.conv2d(x, w, b, algorithm=value)


# ---- dtypes ---------------------------------------------------------------------------------------

BAD_DTYPES = [np.int32, np.int64, np.float16, np.complex64, np.bool_, np.longdouble, ">f4", ">f8"]
BAD_DTYPE_IDS = ["int32", "int64", "float16", "complex64", "bool", "longdouble", "f4-byteswapped", "f8-byteswapped"]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=BAD_DTYPE_IDS)
@pytest.mark.parametrize("which", ["x", "weight", "bias"])
def test_conv2d_bad_dtype(which, bad):
    good = np.float32 if np.dtype(bad).itemsize <= 4 else np.float64
    x, w, b = _xwb(good)
    args = {"x": x, "weight": w, "bias": b}
    args[which] = args[which].astype(bad)
    with pytest.raises(TypeError, match=rf"\b{which}\b"):
        F.conv2d(args["x"], args["weight"], args["bias"])
    if which != "bias":
        with pytest.raises(TypeError, match=rf"\b{which}\b"):
            F.conv2d_backward(np.ones((2, 6, 5, 5), good), args["x"], args["weight"])


@pytest.mark.parametrize("bad", [np.int32, np.float16], ids=["int32", "float16"])
def test_conv2d_backward_bad_grad_output_dtype(bad):
    x, w, _ = _xwb()
    with pytest.raises(TypeError, match="grad_output"):
        F.conv2d_backward(np.ones((2, 6, 5, 5), bad), x, w)


@pytest.mark.parametrize("which", ["x", "weight", "bias", "grad_output"])
def test_conv2d_mixed_dtypes(which):
    x, w, b = _xwb(np.float32)
    g = np.ones((2, 6, 5, 5), np.float32)
    args = {"x": x, "weight": w, "bias": b, "grad_output": g}
    args[which] = args[which].astype(np.float64)
    if which != "grad_output":
        with pytest.raises(TypeError, match="dtype"):
            F.conv2d(args["x"], args["weight"], args["bias"])
    if which != "bias":
        with pytest.raises(TypeError, match="dtype"):
            F.conv2d_backward(args["grad_output"], args["x"], args["weight"])


@pytest.mark.parametrize("which", ["x", "weight", "bias"])
@pytest.mark.parametrize("value", [[[1.0]], 1.0, "x"], ids=["list", "float", "str"])
def test_conv2d_non_array_inputs(which, value):
    x, w, b = _xwb()
    args = {"x": x, "weight": w, "bias": b}
    args[which] = value
    with pytest.raises((TypeError, ValueError), match=rf"\b{which}\b"):
        F.conv2d(args["x"], args["weight"], args["bias"])


# ---- conv_transpose2d -----------------------------------------------------------------------------

def _txw(dtype=np.float32, cin=4, cout=6, groups=1, hw=(4, 4), k=(3, 3)):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, cin) + hw).astype(dtype)
    w = rng.standard_normal((cin, cout // groups) + k).astype(dtype)
    return x, w, rng.standard_normal(cout).astype(dtype)


@pytest.mark.parametrize("stride,dilation,output_padding", [
    (1, 1, 1), (2, 1, 2), (2, 1, (0, 2)), (2, 1, (2, 0)), (1, 2, 2), (2, 3, 3), ((1, 2), 1, (1, 0)),
    (1, 1, -1), (2, 1, (0, -1)),
])
def test_conv_transpose2d_output_padding_too_large(stride, dilation, output_padding):
    """output_padding must be < max(stride, dilation) per axis (and >= 0)."""
    x, w, b = _txw()
    kw = dict(stride=stride, dilation=dilation, output_padding=output_padding)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, w, b, **kw)
    # grad_output of the shape the formula would give
    oh, ow = conv_transpose2d_output_hw((4, 4), (3, 3), stride, 0, output_padding, dilation)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d_backward(np.ones((2, 6, max(oh, 1), max(ow, 1)), np.float32), x, w, **kw)


@pytest.mark.parametrize("stride,dilation,output_padding", [(2, 1, 1), (1, 2, 1), (3, 2, 2), (2, 3, 2),
                                                            ((1, 2), (2, 1), (1, 1))])
def test_conv_transpose2d_output_padding_largest_allowed(stride, dilation, output_padding):
    x, w, b = _txw()
    y = F.conv_transpose2d(x, w, b, stride=stride, dilation=dilation, output_padding=output_padding)
    assert y.shape[:2] == (2, 6)


@pytest.mark.parametrize("value", ["same", "valid", ((1, 1), (1, 1)), -1, (0, -1), 1.5])
def test_conv_transpose2d_bad_padding(value):
    x, w, b = _txw()
    with pytest.raises((ValueError, TypeError), match="padding"):
        F.conv_transpose2d(x, w, b, padding=value)


def test_conv_transpose2d_channel_mismatch():
    x, _, _ = _txw()
    with pytest.raises(ValueError, match="weight|channel"):
        F.conv_transpose2d(x, np.ones((3, 6, 3, 3), np.float32))
    with pytest.raises(ValueError, match="weight|channel"):
        F.conv_transpose2d(x, np.ones((5, 6, 3, 3), np.float32))


@pytest.mark.parametrize("cin,groups", [(4, 3), (6, 4), (3, 2)])
def test_conv_transpose2d_groups_not_dividing(cin, groups):
    x = np.ones((1, cin, 4, 4), np.float32)
    w = np.ones((cin, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="groups"):
        F.conv_transpose2d(x, w, groups=groups)


def test_conv_transpose2d_output_size_below_one():
    x, w, b = _txw(hw=(1, 1), k=(1, 1))
    with pytest.raises(ValueError, match="padding|output"):
        F.conv_transpose2d(x, w, b, padding=1)


def test_conv_transpose2d_wrong_bias_and_dtypes():
    x, w, b = _txw()
    with pytest.raises(ValueError, match="bias"):
        F.conv_transpose2d(x, w, np.ones(4, np.float32))     # Cin, not Cout
    with pytest.raises(TypeError, match="dtype"):
        F.conv_transpose2d(x, w.astype(np.float64), b)
    with pytest.raises(TypeError, match=r"\bx\b"):
        F.conv_transpose2d(x.astype(np.int32), w, b)
    with pytest.raises(TypeError, match=r"\bx\b"):
        F.conv_transpose2d(x.astype(np.float16), w, b)
    with pytest.raises(ValueError, match=r"\bx\b"):
        F.conv_transpose2d(x[0, 0], w, b)
    with pytest.raises(ValueError, match="stride"):
        F.conv_transpose2d(x, w, b, stride=0)
    with pytest.raises(TypeError, match="dilation"):
        F.conv_transpose2d(x, w, b, dilation=1.0)


def test_conv_transpose2d_backward_wrong_grad_output_shape():
    x, w, _ = _txw()
    good_shape = F.conv_transpose2d(x, w).shape                 # (2, 6, 6, 6)
    for shape in [(2, 6, 6, 5), (2, 6, 4, 4), (2, 4, 6, 6), (1, 6, 6, 6)]:
        with pytest.raises(ValueError, match="grad_output"):
            F.conv_transpose2d_backward(np.ones(shape, np.float32), x, w)
    F.conv_transpose2d_backward(np.ones(good_shape, np.float32), x, w)


# ---- nothing written on error ---------------------------------------------------------------------

def test_conv2d_out_untouched_when_arguments_are_bad():
    x, w, b = _xwb()
    out = np.zeros((2, 6, 5, 5), np.float32)
    for kw in [dict(stride=0), dict(padding=-1), dict(algorithm="nope"), dict(groups=4)]:
        with pytest.raises((ValueError, TypeError)):
            F.conv2d(x, w, b, out=out, **kw)
    assert not out.any()
