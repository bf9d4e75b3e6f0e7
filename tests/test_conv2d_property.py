"""Property tests: conv2d / conv_transpose2d forward and backward on random valid argument
combinations (hypothesis, derandomized so every run checks the same examples), against the
float64 references within the rounding bound."""
import numpy as np
import pytest

from fastconv import functional as F

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reference import conv2d_output_hw, conv_transpose2d_output_hw  # noqa: E402

SETTINGS = dict(max_examples=40, deadline=None, derandomize=True, database=None,
                # `isa` is per test, not per example, on purpose: every example runs on that ISA.
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

pairs = st.tuples


def one_or_pair(lo, hi):
    """An int or an (h, w) pair, each in [lo, hi]; returned as (argument, (h, w))."""
    return st.one_of(st.integers(lo, hi).map(lambda v: (v, (v, v))),
                     pairs(st.integers(lo, hi), st.integers(lo, hi)).map(lambda p: (p, p)))


@st.composite
def conv2d_args(draw):
    groups = draw(st.integers(1, 3))
    depthwise = draw(st.booleans()) and groups > 1
    cg = 1 if depthwise else draw(st.integers(1, 4))
    og = draw(st.integers(1, 2)) if depthwise else draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, (sh, sw) = draw(one_or_pair(1, 3))
    dilation, (dh, dw) = draw(one_or_pair(1, 3))
    form = draw(st.sampled_from(["int", "pair", "nested", "valid", "same"]))
    if form == "int":
        p = draw(st.integers(0, 3))
        padding, pads = p, (p, p, p, p)
    elif form == "pair":
        ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        padding, pads = (ph, pw), (ph, ph, pw, pw)
    elif form == "nested":
        pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
        padding = ((pads[0], pads[1]), (pads[2], pads[3]))
    else:
        padding, pads = form, (0, 0, 0, 0)
    # The smallest input for which the (dilated) kernel fits in the padded input.
    min_h = 1 if form == "same" else max(1, dh * (kh - 1) + 1 - pads[0] - pads[1])
    min_w = 1 if form == "same" else max(1, dw * (kw - 1) + 1 - pads[2] - pads[3])
    h, w = draw(st.integers(min_h, min_h + 8)), draw(st.integers(min_w, min_w + 8))
    n = draw(st.integers(1, 2))
    unbatched = n == 1 and draw(st.booleans())
    return dict(n=n, unbatched=unbatched, cin=groups * cg, cout=groups * og, h=h, w=w, kh=kh, kw=kw,
                kwargs=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


@settings(**SETTINGS)
@given(args=conv2d_args(), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       algorithm=st.sampled_from(["auto", "im2col", "direct"]), seed=st.integers(0, 2**32 - 1))
def test_conv2d_random_arguments(isa, args, bias, dtype, algorithm, seed, assert_conv2d_close,
                                 assert_conv2d_backward_close):
    rng = np.random.default_rng(seed)
    kw = args["kwargs"]
    xshape = (args["cin"], args["h"], args["w"])
    if not args["unbatched"]:
        xshape = (args["n"],) + xshape
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal((args["cout"], args["cin"] // kw["groups"], args["kh"], args["kw"])).astype(dtype)
    b = rng.standard_normal(args["cout"]).astype(dtype) if bias else None
    y = F.conv2d(x, w, b, algorithm=algorithm, **kw)
    oh, ow = conv2d_output_hw((args["h"], args["w"]), (args["kh"], args["kw"]), kw["stride"], kw["padding"],
                              kw["dilation"])
    assert y.shape == xshape[:-3] + (args["cout"], oh, ow)
    assert_conv2d_close(y, x, w, b, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    flags = tuple(bool(v) for v in rng.integers(0, 2, 3)) if seed % 3 == 0 else (True, True, True)
    grads = F.conv2d_backward(g, x, w, input_grad=flags[0], weight_grad=flags[1], bias_grad=flags[2],
                              algorithm=algorithm, **kw)
    assert_conv2d_backward_close(grads, g, x, w, flags=flags, **kw)


@st.composite
def conv_transpose2d_args(draw):
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride, (sh, sw) = draw(one_or_pair(1, 3))
    dilation, (dh, dw) = draw(one_or_pair(1, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    oph = draw(st.integers(0, max(sh, dh) - 1))
    opw = draw(st.integers(0, max(sw, dw) - 1))
    output_padding = oph if oph == opw and draw(st.booleans()) else (oph, opw)
    # padding small enough to leave an output of at least one pixel
    ph = draw(st.integers(0, max(0, ((h - 1) * sh + dh * (kh - 1) + oph) // 2)))
    pw = draw(st.integers(0, max(0, ((w - 1) * sw + dw * (kw - 1) + opw) // 2)))
    padding = ph if ph == pw and draw(st.booleans()) else (ph, pw)
    n = draw(st.integers(1, 2))
    return dict(n=n, cin=groups * cg, cout=groups * og, h=h, w=w, kh=kh, kw=kw,
                kwargs=dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                            dilation=dilation))


@settings(**SETTINGS)
@given(args=conv_transpose2d_args(), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       algorithm=st.sampled_from(["auto", "im2col", "direct"]), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose2d_random_arguments(isa, args, bias, dtype, algorithm, seed, assert_conv_transpose2d_close,
                                           assert_conv_transpose2d_backward_close):
    rng = np.random.default_rng(seed)
    kw = args["kwargs"]
    groups = kw["groups"]
    x = rng.standard_normal((args["n"], args["cin"], args["h"], args["w"])).astype(dtype)
    w = rng.standard_normal((args["cin"], args["cout"] // groups, args["kh"], args["kw"])).astype(dtype)
    b = rng.standard_normal(args["cout"]).astype(dtype) if bias else None
    oh, ow = conv_transpose2d_output_hw((args["h"], args["w"]), (args["kh"], args["kw"]), kw["stride"],
                                        kw["padding"], kw["output_padding"], kw["dilation"])
    assert oh >= 1 and ow >= 1
    y = F.conv_transpose2d(x, w, b, algorithm=algorithm, **kw)
    assert y.shape == (args["n"], args["cout"], oh, ow)
    assert_conv_transpose2d_close(y, x, w, b, **kw)
    g = rng.standard_normal(y.shape).astype(dtype)
    grads = F.conv_transpose2d_backward(g, x, w, algorithm=algorithm, **kw)
    assert_conv_transpose2d_backward_close(grads, g, x, w, **kw)
