"""The per-channel kernels (csrc/norm/) behind BatchNorm and ReLU/ReLU6, conv2d's epilogue
(scale, activation) and the eval-mode Conv2d -> BatchNorm2d -> ReLU fusion, against float64
NumPy references."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import models, nn
from reference import conv2d_ref

ACTS = {None: lambda v: v, "relu": lambda v: np.maximum(v, 0), "relu6": lambda v: np.clip(v, 0, 6),
        "silu": lambda v: v / (1 + np.exp(-v)), "sigmoid": lambda v: 1 / (1 + np.exp(-v))}
TOL = {np.float32: 2e-5, np.float64: 1e-12}


def bn_train_ref(x, gamma, beta, eps):
    """PyTorch's training-mode batch norm in float64: y and the statistics it used."""
    x = x.astype(np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape) + beta.reshape(shape)
    return y, mean, var


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 1, 1, 1), (4, 6), (3, 2, 9), (2, 5, 130, 131)])
def test_batchnorm_train_forward_backward_matches_float64_reference(shape, dtype):
    rng = np.random.default_rng(1)
    c = shape[1]
    bn = (nn.BatchNorm2d(c) if len(shape) == 4 else nn.BatchNorm1d(c)).to(dtype)
    bn.weight.data[...] = rng.uniform(0.5, 2, c)
    bn.bias.data[...] = rng.normal(size=c)
    # a mean far from zero: a one-pass sum of squares would lose the variance in float32
    x = (rng.standard_normal(shape) * 0.1 + 300).astype(dtype)
    if x.size // c == 1:
        bn.eval()  # one value per channel: train mode raises, as PyTorch does
        y = bn(x)
        ref = (x - bn.running_mean.reshape(1, -1, *[1] * (x.ndim - 2))) / np.sqrt(1 + bn.eps)
        ref = ref * bn.weight.data.reshape(1, -1, *[1] * (x.ndim - 2)) + bn.bias.data.reshape(1, -1, *[1] * (x.ndim - 2))
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-4)
        return
    y = bn(x)
    ref, mean, var = bn_train_ref(x, bn.weight.data.astype(np.float64), bn.bias.data.astype(np.float64), bn.eps)
    tol = 2e-4 if dtype == np.float32 else 1e-9   # x - mean loses ~log10(300/0.1) digits of float32
    np.testing.assert_allclose(y, ref, rtol=0, atol=tol * 10)
    m = x.size // c
    np.testing.assert_allclose(bn.running_mean, 0.9 * 0 + 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var * m / (m - 1), rtol=1e-5)
    # backward against the closed form in float64
    g = rng.standard_normal(shape).astype(dtype)
    gx = bn.backward(g)
    axes = (0,) + tuple(range(2, x.ndim))
    sh = (1, -1) + (1,) * (x.ndim - 2)
    xhat = (x.astype(np.float64) - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + bn.eps)
    g64 = g.astype(np.float64)
    dgamma, dbeta = (g64 * xhat).sum(axis=axes), g64.sum(axis=axes)
    gx_ref = bn.weight.data.reshape(sh) / np.sqrt(var.reshape(sh) + bn.eps) * (
        g64 - g64.mean(axis=axes).reshape(sh) - xhat * (g64 * xhat).mean(axis=axes).reshape(sh))
    scale = np.abs(gx_ref).max()
    np.testing.assert_allclose(gx, gx_ref, rtol=0, atol=(2e-3 if dtype == np.float32 else 1e-9) * scale)
    np.testing.assert_allclose(bn.bias.grad, dbeta, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bn.weight.grad, dgamma, rtol=1e-3, atol=1e-3 * np.abs(dgamma).max())


@pytest.mark.parametrize("cls,act", [(nn.ReLU, "relu"), (nn.ReLU6, "relu6")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_forward_backward_and_nan(isa, cls, act, dtype):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, 4, 50, 61)) * 5).astype(dtype)
    x[0, 0, 0, :4] = [np.nan, 0.0, 6.0, -np.inf]
    layer = cls()
    y = layer(x)
    ref = ACTS[act](x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))   # NaN propagates, as in PyTorch
    np.testing.assert_array_equal(y[~np.isnan(x)], ref[~np.isnan(x)])
    g = rng.standard_normal(x.shape).astype(dtype)
    gx = layer.backward(g)
    # PyTorch's rule: zero where the output is <= 0 (or >= 6 for ReLU6); a NaN output passes g
    dead = (y <= 0) | ((y >= 6) if act == "relu6" else False)
    np.testing.assert_array_equal(gx, np.where(dead, 0, g))
    assert gx[0, 0, 0, 0] == g[0, 0, 0, 0]


@pytest.mark.parametrize("cls,act", [(nn.SiLU, "silu"), (nn.Sigmoid, "sigmoid")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_sigmoid_kernels_match_float64(isa, cls, act, dtype):
    rng = np.random.default_rng(6)
    # every lane position and the scalar tail; the range covers exp's clamps (|x| > 87)
    x = np.concatenate([rng.standard_normal(1000) * 4, np.linspace(-120, 120, 1001),
                        [0.0, -0.0, 1e-30, -1e-30, np.nan]]).astype(dtype).reshape(1, 1, -1)
    layer = cls()
    y = layer(x)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        ref = ACTS[act](x64)
    finite = np.isfinite(x64)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    atol = 1e-35 if dtype == np.float32 else 0   # float32 exp saturates near 1.7e38 (x < -88 gives ~1e-37)
    np.testing.assert_allclose(y[finite], ref[finite], rtol=rtol, atol=atol)
    assert np.isnan(y[~finite]).all()
    g = rng.standard_normal(x.shape).astype(dtype)
    gx = layer.backward(g)
    with np.errstate(over="ignore"):
        s = 1 / (1 + np.exp(-x64))
    dref = g * (s * (1 + x64 * (1 - s)) if act == "silu" else s * (1 - s))
    # 1 - s cancels where s is near 1 (PyTorch's float32 formula does the same): absolute error
    # of a few ulp of the largest slope times |g|
    np.testing.assert_allclose(gx[finite], dref[finite], rtol=rtol * 10, atol=rtol * np.abs(g).max())


def test_relu_matches_torch_on_nan_and_boundaries():
    torch = pytest.importorskip("torch")
    x = np.array([[np.nan, -1.0, 0.0, 3.0, 6.0, 7.0, np.inf, -np.inf]], np.float32)
    g = np.arange(1, 9, dtype=np.float32).reshape(1, -1)
    for cls, tfn in [(nn.ReLU, torch.relu), (nn.ReLU6, torch.nn.functional.relu6)]:
        tx = torch.tensor(x, requires_grad=True)
        ty = tfn(tx)
        ty.backward(torch.tensor(g))
        layer = cls()
        np.testing.assert_array_equal(layer(x), ty.detach().numpy())
        np.testing.assert_array_equal(layer.backward(g), tx.grad.numpy())


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
@pytest.mark.parametrize("act", [None, "relu", "relu6", "silu", "sigmoid"])
@pytest.mark.parametrize("case", [
    dict(c_in=5, c_out=7, k=3, stride=1, padding=1, groups=1),
    dict(c_in=6, c_out=6, k=3, stride=2, padding=1, groups=6),      # depthwise, channel-blocked kernel
    dict(c_in=19, c_out=19, k=5, stride=1, padding=2, groups=19),   # ... channels past one vector
    dict(c_in=3, c_out=3, k=3, stride=1, padding=1, groups=3, hw=(5, 40)),  # depthwise row kernel
    dict(c_in=8, c_out=12, k=1, stride=1, padding=0, groups=1),     # pointwise GEMM
    dict(c_in=4, c_out=6, k=5, stride=1, padding=2, groups=2),
    dict(c_in=5, c_out=16, k=3, stride=1, padding=1, groups=1, hw=(12, 20)),  # whole GEMM tiles: the
])                                                                          # micro-kernel's epilogue
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_epilogue_scale_bias_activation(isa, algorithm, act, case, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, case["c_in"], *case.get("hw", (11, 9)))).astype(dtype)
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"], case["k"], case["k"])).astype(dtype)
    scale = rng.uniform(-2, 3, case["c_out"]).astype(dtype)
    bias = rng.normal(size=case["c_out"]).astype(dtype) * 3
    args = dict(stride=case["stride"], padding=case["padding"], groups=case["groups"])
    conv = conv2d_ref(x.astype(np.float64), w.astype(np.float64), None, **args)
    ref = ACTS[act](conv * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1))
    for b in (bias, None):
        y = F.conv2d(x, w, b, **args, algorithm=algorithm, scale=scale, activation=act)
        expect = ref if b is not None else ACTS[act](conv * scale.reshape(1, -1, 1, 1))
        np.testing.assert_allclose(y, expect, rtol=0, atol=TOL[dtype] * 10 * max(1, np.abs(expect).max()))
    # activation without scale: the bias in the accumulators, the activation after
    y = F.conv2d(x, w, bias, **args, algorithm=algorithm, activation=act)
    expect = ACTS[act](conv + bias.reshape(1, -1, 1, 1))
    np.testing.assert_allclose(y, expect, rtol=0, atol=TOL[dtype] * 10 * max(1, np.abs(expect).max()))


@pytest.mark.parametrize("blocks", ["5,7,9", "30,100,70"])
@pytest.mark.parametrize("act", ["relu6", "silu", "sigmoid"])
def test_conv2d_epilogue_over_many_cache_blocks(monkeypatch, blocks, act):
    """Small GEMM cache blocks (FASTCONV_GEMM_BLOCKS="mc,kc,nc") split C into many MC x NC blocks
    and k into several passes: SiLU/sigmoid, which run over each finished block's rows after its
    last k pass, and ReLU6, applied in the tiles, must reach every element exactly once; 9x13
    planes batch into one buffer, 14x15 planes write NCHW through scattered columns (tiles and
    activation runs that straddle two images)."""
    from fastconv import _core
    current = _core.get_isa()
    rng = np.random.default_rng(8)
    try:
        for name in _core.supported_isas():
            monkeypatch.setenv("FASTCONV_GEMM_BLOCKS", blocks)
            _core.set_isa(name)
            for dtype in (np.float32, np.float64):
                for c_in, c_out, k, hw in ((23, 37, 1, (9, 13)), (6, 19, 3, (9, 13)), (23, 37, 1, (14, 15))):
                    x = rng.standard_normal((2, c_in, *hw)).astype(dtype)
                    w = rng.standard_normal((c_out, c_in, k, k)).astype(dtype) * 0.3
                    scale = rng.uniform(-2, 3, c_out).astype(dtype)
                    bias = rng.normal(size=c_out).astype(dtype)
                    conv = conv2d_ref(x.astype(np.float64), w.astype(np.float64), None, padding=k // 2)
                    expect = ACTS[act](conv * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1))
                    for nthreads in (1, 2):
                        with fastconv.threads(nthreads):
                            y = F.conv2d(x, w, bias, padding=k // 2, scale=scale, activation=act,
                                         algorithm="im2col")
                        np.testing.assert_allclose(y, expect, rtol=0,
                                                   atol=TOL[dtype] * 10 * max(1, np.abs(expect).max()))
    finally:
        monkeypatch.undo()
        _core.set_isa(current)


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_conv2d_epilogue_propagates_nan(isa, act):
    """ReLU/ReLU6 applied in the GEMM micro-kernel's registers keep NaN (and clamp +-inf) as
    PyTorch's relu does, on whole tiles and edge tiles alike."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 5, 12, 20)).astype(np.float32)
    x[0, 1, 4, 7] = np.nan
    x[1, 2, 9, 15] = np.inf
    w = rng.standard_normal((19, 5, 3, 3)).astype(np.float32)   # 16 rows in whole tiles, 3 at the edge
    bias = rng.normal(size=19).astype(np.float32)
    y = F.conv2d(x, w, bias, padding=1, algorithm="im2col", activation=act)
    with np.errstate(invalid="ignore"):
        ref = ACTS[act](conv2d_ref(x.astype(np.float64), w.astype(np.float64), bias.astype(np.float64), padding=1))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    assert np.isnan(y).any() and np.isinf(ref).any() == np.isinf(y).any()
    ok = np.isfinite(ref)
    np.testing.assert_allclose(y[ok], ref[ok], rtol=0, atol=1e-4 * max(1, np.abs(ref[ok]).max()))
    np.testing.assert_array_equal(y[~ok & ~np.isnan(ref)], ref[~ok & ~np.isnan(ref)])


def test_conv2d_epilogue_bad_arguments():
    x = np.zeros((1, 2, 5, 5), np.float32)
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="activation"):
        F.conv2d(x, w, activation="gelu")
    with pytest.raises(ValueError, match=r"scale must have shape \(3,\)"):
        F.conv2d(x, w, scale=np.ones(2, np.float32))
    with pytest.raises(TypeError, match="scale is float64"):
        F.conv2d(x, w, scale=np.ones(3))


def _randomise_batchnorm(model, rng):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean[...] = rng.normal(0, 0.5, c)
            m.running_var[...] = rng.uniform(0.3, 2, c)
            if m.affine:
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
            if m.bias is not None:
                m.bias.data[...] = rng.normal(0, 0.2, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sequential_fuses_conv_bn_act_in_eval_only(dtype):
    rng = np.random.default_rng(4)
    fastconv.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6(),
                        nn.Conv2d(8, 8, 3, groups=8, bias=False), nn.BatchNorm2d(8, affine=False), nn.ReLU(),
                        nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), nn.ReLU(),
                        nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.SiLU()).to(dtype)
    _randomise_batchnorm(net, rng)
    x = rng.standard_normal((2, 3, 10, 12)).astype(dtype)
    net.eval()
    calls = []
    orig = F.conv2d

    def spy(*args, **kwargs):
        calls.append((kwargs.get("scale") is not None, kwargs.get("activation")))
        return orig(*args, **kwargs)
    F.conv2d = spy
    try:
        fused = net(x)
        with nn.fusion(False):
            plain = net(x)
    finally:
        F.conv2d = orig
    # four conv-BN(-act) runs and one conv-act: five convolutions for the thirteen layers
    assert calls[:5] == [(True, "relu6"), (True, "relu"), (True, None), (False, "relu"), (True, "silu")]
    assert calls[5:] == [(False, None)] * 5               # fusion(False): every layer on its own
    np.testing.assert_allclose(fused, plain, rtol=0, atol=TOL[dtype] * 10 * np.abs(plain).max())
    # train mode never fuses: BatchNorm uses the batch's statistics
    net.train()
    calls.clear()
    F.conv2d = spy
    try:
        net(x)
    finally:
        F.conv2d = orig
    assert calls == [(False, None)] * 5


@pytest.mark.parametrize("name,kwargs,size", [
    ("resnet18", {}, 64), ("resnet50", {}, 64), ("googlenet", {}, 64),
    ("mobilenet_v2", dict(width_mult=0.5), 64), ("efficientnet_b0", {}, 64), ("vgg11_bn", {}, 32),
    ("vgg11", {}, 32), ("alexnet", {}, 64),
])
def test_classic_networks_give_the_same_logits_fused_and_unfused(name, kwargs, size):
    rng = np.random.default_rng(5)
    fastconv.manual_seed(0)
    model = getattr(models, name)(num_classes=10, **kwargs).eval()
    _randomise_batchnorm(model, rng)
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    fused = model(x)
    with nn.fusion(False):
        plain = model(x)
    np.testing.assert_allclose(fused, plain, rtol=0, atol=1e-4 * np.abs(plain).max())


def test_summary_lists_every_layer_even_where_eval_fuses():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    text = fastconv.summary(model, (1, 1, 8, 8), print_table=False)
    for layer in ("Conv2d", "BatchNorm2d", "ReLU"):
        assert layer in text


@pytest.mark.parametrize("act", [None, "relu6"])
def test_conv2d_tiny_planes_batched_in_chunks(isa, act):
    """Planes under 128 pixels at batch > 1 run as one GEMM over several images into a bounded
    buffer (1 M elements), copied out image by image: 1024 channels of 10x10 make chunks of 10
    images, so 12 images take two chunks, the second partial."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((1024, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(1024).astype(np.float32)
    scale = rng.uniform(0.5, 2, 1024).astype(np.float32)
    y = F.conv2d(x, w, bias, padding=1, scale=scale, activation=act)
    ref = conv2d_ref(x.astype(np.float64), w.astype(np.float64), None, padding=1)
    ref = ACTS[act](ref * scale.reshape(1, -1, 1, 1) + bias.reshape(1, -1, 1, 1))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
