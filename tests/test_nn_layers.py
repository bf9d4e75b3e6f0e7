"""fastconv.nn layers: backward against float64 finite differences (input and every parameter),
train/eval behaviour, shapes, initialisation, dtypes and errors."""
import math

import numpy as np
import pytest

import fastconv.functional as F
import fastconv.nn as nn
from nn_gradcheck import check_module_gradients

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.standard_normal(shape)


# ---- finite-difference checks, one per layer configuration -----------------------------------------

GRAD_CASES = [
    ("conv", lambda: nn.Conv2d(3, 4, 3, rng=0), (2, 3, 5, 5)),
    ("conv_stride_pad_nobias", lambda: nn.Conv2d(2, 3, (3, 2), stride=2, padding=1, bias=False, rng=1), (2, 2, 6, 5)),
    ("conv_same_stride2", lambda: nn.Conv2d(2, 2, 3, stride=2, padding="same", rng=2), (1, 2, 6, 7)),
    ("conv_asym_pad_dilated", lambda: nn.Conv2d(2, 2, 3, padding=((1, 0), (2, 1)), dilation=2, rng=3), (1, 2, 6, 6)),
    ("conv_groups", lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2, rng=4), (2, 4, 4, 4)),
    ("conv_depthwise", lambda: nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3, rng=5), (2, 3, 5, 5)),
    ("conv_pointwise", lambda: nn.Conv2d(3, 4, 1, rng=6), (2, 3, 3, 3)),
    ("conv_transpose", lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=7),
     (2, 3, 3, 3)),
    ("conv_transpose_groups", lambda: nn.ConvTranspose2d(4, 2, 2, stride=1, groups=2, dilation=2, rng=8),
     (1, 4, 3, 3)),
    ("linear", lambda: nn.Linear(5, 3, rng=9), (4, 5)),
    ("linear_nd_nobias", lambda: nn.Linear(4, 2, bias=False, rng=10), (2, 3, 4)),
    ("bn2d", lambda: nn.BatchNorm2d(3), (4, 3, 2, 2)),
    ("bn2d_noaffine", lambda: nn.BatchNorm2d(2, affine=False), (3, 2, 2, 3)),
    ("bn2d_untracked", lambda: nn.BatchNorm2d(2, track_running_stats=False), (3, 2, 2, 2)),
    ("bn1d", lambda: nn.BatchNorm1d(3), (5, 3)),
    ("bn1d_nobias", lambda: nn.BatchNorm1d(3, bias=False), (4, 3)),
    ("bn1d_3d", lambda: nn.BatchNorm1d(2), (3, 2, 4)),
    ("relu", lambda: nn.ReLU(), (2, 3, 4)),
    ("relu6", lambda: nn.ReLU6(), (2, 3, 4)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (2, 3, 4)),
    ("silu", lambda: nn.SiLU(), (2, 3, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), (2, 3, 4)),
    ("tanh", lambda: nn.Tanh(), (2, 3, 4)),
    ("hardswish", lambda: nn.Hardswish(), (2, 3, 4)),
    ("hardsigmoid", lambda: nn.Hardsigmoid(), (2, 3, 4)),
    ("softmax", lambda: nn.Softmax(dim=1), (2, 4, 3)),
    ("softmax_last", lambda: nn.Softmax(dim=-1), (3, 5)),
    ("maxpool", lambda: nn.MaxPool2d(2), (2, 2, 4, 4)),
    ("maxpool_overlap_pad", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (1, 2, 6, 5)),
    ("avgpool", lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 5, 6)),
    ("adaptive_avg", lambda: nn.AdaptiveAvgPool2d((2, 3)), (2, 2, 5, 7)),
    ("adaptive_avg_global", lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 3, 4)),
    ("adaptive_max", lambda: nn.AdaptiveMaxPool2d(2), (1, 2, 5, 5)),
    ("flatten", lambda: nn.Flatten(), (2, 3, 2, 2)),
    ("identity", lambda: nn.Identity(), (2, 3)),
    ("lrn", lambda: nn.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=2.0), (2, 5, 2, 3)),
    ("lrn_even", lambda: nn.LocalResponseNorm(4, alpha=1.0, beta=0.6, k=1.0), (1, 6, 2, 2)),
]


@pytest.mark.parametrize("build,shape", [c[1:] for c in GRAD_CASES], ids=[c[0] for c in GRAD_CASES])
def test_backward_matches_finite_differences(build, shape):
    module = build()
    checked = check_module_gradients(module, randn(*shape))
    assert len(checked) == 1 + len(list(module.parameters()))


def test_dropout_backward_matches_finite_differences():
    d = nn.Dropout(0.4)

    def reseed():
        d.rng = np.random.default_rng(5)
    check_module_gradients(d, randn(3, 4, 5), before_forward=reseed)


def test_batchnorm_eval_uses_running_stats_and_keeps_nothing():
    bn = nn.BatchNorm2d(3).double()
    bn.running_mean[...] = [0.5, -1.0, 2.0]
    bn.running_var[...] = [2.0, 0.5, 1.5]
    bn.weight.data[...] = [1.5, -0.5, 2.0]
    bn.eval()
    x = randn(2, 3, 2, 2)
    expected = (x - bn.running_mean[:, None, None]) / np.sqrt(bn.running_var[:, None, None] + 1e-5)
    expected = expected * bn.weight.data[:, None, None] + bn.bias.data[:, None, None]
    np.testing.assert_allclose(bn(x), expected, rtol=1e-12)
    bn.train()
    bn(x)  # kept for a backward that never comes
    bn.eval()  # eval mode keeps nothing and drops what was kept
    bn(x)
    with pytest.raises(RuntimeError, match="eval mode"):
        bn.backward(np.ones_like(x))


# ---- BatchNorm -----------------------------------------------------------------------------------------

def test_batchnorm_train_normalises_and_updates_running_stats():
    bn = nn.BatchNorm2d(2, momentum=0.25).double()
    x = randn(4, 2, 3, 3) * 3 + 1
    y = bn(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-4)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * var, rtol=1e-12)
    assert bn.num_batches_tracked == 1 and bn.num_batches_tracked.dtype == np.int64
    bn.eval()
    y_eval = bn(x)
    assert bn.num_batches_tracked == 1  # eval does not update
    np.testing.assert_allclose(y_eval, (x - bn.running_mean[:, None, None]) /
                               np.sqrt(bn.running_var[:, None, None] + bn.eps), rtol=1e-12)


def test_batchnorm_momentum_none_is_cumulative_average():
    bn = nn.BatchNorm1d(3, momentum=None).double()
    xs = [randn(5, 3) for _ in range(3)]
    for x in xs:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-12)


def test_batchnorm_untracked_uses_batch_stats_in_eval_and_has_no_buffers():
    bn = nn.BatchNorm2d(2, track_running_stats=False).double().eval()
    x = randn(3, 2, 2, 2)
    np.testing.assert_allclose(bn(x).mean(axis=(0, 2, 3)), 0, atol=1e-12)
    assert list(bn.state_dict()) == ["weight", "bias"]
    assert list(nn.BatchNorm2d(2, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="4-D input with 3 channels"):
        nn.BatchNorm2d(3)(np.ones((2, 4, 2, 2), np.float32))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        nn.BatchNorm1d(3)(np.ones((2, 3, 2, 2), np.float32))
    nn.BatchNorm1d(3).eval()(np.ones((1, 3), np.float32))  # fine in eval mode


# ---- Dropout ---------------------------------------------------------------------------------------------

def test_dropout_train_eval_and_seeding():
    x = np.ones((200, 50), np.float32)
    d = nn.Dropout(0.3, rng=7)
    y = d(x)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(d.backward(np.ones_like(x)), y)
    np.testing.assert_array_equal(nn.Dropout(0.3, rng=7)(x), y)  # same seed, same mask
    nn.manual_seed(3)
    a = nn.Dropout(0.5)(x)
    nn.manual_seed(3)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x), a)
    d.eval()
    np.testing.assert_array_equal(d(x), x)
    assert not np.shares_memory(d(x), x)
    assert (nn.Dropout(1.0)(x) == 0).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)



def test_stochastic_depth_drops_whole_samples():
    x = RNG.standard_normal((400, 3, 2, 2)).astype(np.float32)
    sd = nn.StochasticDepth(0.25, "row", rng=1)
    y = sd(x)
    dropped = np.all(y == 0, axis=(1, 2, 3))
    assert 0.15 < dropped.mean() < 0.35  # whole samples, about p of them
    np.testing.assert_allclose(y[~dropped], x[~dropped] / 0.75, rtol=1e-6)
    g = RNG.standard_normal(x.shape).astype(np.float32)
    gx = sd.backward(g)
    assert np.all(gx[dropped] == 0)
    np.testing.assert_allclose(gx[~dropped], g[~dropped] / 0.75, rtol=1e-6)
    batch = nn.StochasticDepth(0.5, "batch", rng=2)
    outs = [batch(x) for _ in range(20)]
    assert all(np.all(o == 0) or np.allclose(o, 2 * x) for o in outs) and 0 < sum(np.all(o == 0) for o in outs) < 20
    sd.eval()
    np.testing.assert_array_equal(sd(x), x)
    assert (nn.StochasticDepth(1.0)(x) == 0).all()
    with pytest.raises(ValueError, match="mode"):
        nn.StochasticDepth(0.1, "col")

# ---- forward values and shapes ---------------------------------------------------------------------------

def test_conv2d_matches_functional_and_shapes():
    conv = nn.Conv2d(3, 8, 3, stride=2, padding="same", rng=0)
    x = RNG.standard_normal((2, 3, 9, 9)).astype(np.float32)
    y = conv(x)
    assert y.shape == (2, 8, 5, 5) and y.dtype == np.float32
    np.testing.assert_array_equal(y, F.conv2d(x, conv.weight.data, conv.bias.data, stride=2, padding="same"))
    assert conv.weight.shape == (8, 3, 3, 3) and conv.bias.shape == (8,)
    assert nn.Conv2d(4, 8, 3, groups=4).weight.shape == (8, 1, 3, 3)
    assert nn.Conv2d(3, 4, 3)(x[0]).shape == (4, 7, 7)  # unbatched


def test_conv_transpose_output_size():
    up = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, rng=0)
    x = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32)
    assert up(x).shape == (1, 3, 7, 7)
    assert up(x, output_size=(8, 8)).shape == (1, 3, 8, 8)
    up.backward(np.ones((1, 3, 8, 8), np.float32))  # the cached output_padding is used
    with pytest.raises(ValueError, match="not reachable"):
        up(x, output_size=(9, 9))


def test_linear_matches_numpy():
    lin = nn.Linear(6, 4, rng=0).double()
    x = randn(3, 2, 6)
    np.testing.assert_allclose(lin(x), x @ lin.weight.data.T + lin.bias.data, rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        lin(randn(3, 5))


def test_activation_values():
    x = np.array([-4.0, -3.0, -1.0, 0.0, 0.5, 3.0, 7.0])
    np.testing.assert_allclose(nn.ReLU6()(x), [0, 0, 0, 0, 0.5, 3, 6])
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x), [-0.4, -0.3, -0.1, 0, 0.5, 3, 7])
    np.testing.assert_allclose(nn.Hardswish()(x), x * np.clip(x + 3, 0, 6) / 6)
    np.testing.assert_allclose(nn.Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(nn.SiLU()(x), x / (1 + np.exp(-x)), rtol=1e-14)
    big = np.array([-1000.0, 1000.0], np.float32)
    assert np.all(np.isfinite(nn.Sigmoid()(big))) and np.all(np.isfinite(nn.Softmax(0)(big)))
    s = nn.Softmax(dim=1)(randn(2, 5, 3))
    np.testing.assert_allclose(s.sum(axis=1), 1, rtol=1e-12)
    assert nn.ReLU()(np.ones(3, np.float32)).dtype == np.float32


def test_local_response_norm_formula():
    x = randn(2, 7, 2, 2)
    size, alpha, beta, k = 5, 1e-2, 0.75, 2.0
    y = nn.LocalResponseNorm(size, alpha, beta, k)(x)
    expected = np.empty_like(x)
    for c in range(7):
        lo, hi = max(c - size // 2, 0), min(c + (size - 1) // 2, 6)
        expected[:, c] = x[:, c] / (k + alpha / size * (x[:, lo:hi + 1] ** 2).sum(axis=1)) ** beta
    np.testing.assert_allclose(y, expected, rtol=1e-13)


def test_pooling_and_flatten_layers():
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x), F.max_pool2d(x, 2))
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.dtype == np.int64 and y.shape == idx.shape
    np.testing.assert_array_equal(nn.AvgPool2d(3, 1, 1)(x), F.avg_pool2d(x, 3, 1, 1))
    assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (2, 3, 8, 2)
    assert nn.Flatten()(x).shape == (2, 192)
    assert nn.Flatten(0, 1)(x).shape == (6, 8, 8)
    assert nn.Flatten()(np.zeros((0, 3, 2, 2), np.float32)).shape == (0, 12)


@pytest.mark.parametrize("make", [lambda: nn.MaxPool2d(3, 1, 1, ceil_mode=True), lambda: nn.MaxPool2d(2),
                                  lambda: nn.AdaptiveMaxPool2d(3)], ids=["max_3x3_s1", "max_2x2", "adaptive_max"])
def test_max_pooling_eval_mode_runs_values_only_with_the_same_results(make):
    """Eval mode runs the values-only kernel (no indices to keep): the same maxima, ties (integers
    make many) and NaN as the train-mode path that records indices."""
    x = RNG.integers(-3, 4, (2, 3, 7, 6)).astype(np.float32)
    x[0, 1, 2, 3] = np.nan
    train, ev = make(), make().eval()
    y = train(x)
    np.testing.assert_array_equal(ev(x), y)
    assert np.isnan(y[0, 1]).any()
    train.backward(np.ones_like(y))  # train mode still has its indices


# ---- initialisation ----------------------------------------------------------------------------------------

def test_default_init_bounds_and_seeding():
    conv = nn.Conv2d(8, 16, 3, groups=2, rng=0)
    bound = 1 / math.sqrt(4 * 9)
    for p in (conv.weight.data, conv.bias.data):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound
    lin = nn.Linear(100, 50, rng=0)
    assert np.abs(lin.weight.data).max() <= 0.1 and lin.weight.data.std() > 0.05
    up = nn.ConvTranspose2d(4, 6, 3, rng=0)  # PyTorch's fan_in for this layout: 6 * 9
    assert np.abs(up.weight.data).max() <= 1 / math.sqrt(54)
    np.testing.assert_array_equal(nn.Conv2d(3, 4, 3, rng=5).weight.data, nn.Conv2d(3, 4, 3, rng=5).weight.data)
    nn.manual_seed(11)
    a = nn.Linear(3, 3).weight.data
    nn.manual_seed(11)
    np.testing.assert_array_equal(nn.Linear(3, 3).weight.data, a)
    w64 = nn.Linear(3, 3, rng=2, dtype=np.float64).weight.data
    np.testing.assert_array_equal(nn.Linear(3, 3, rng=2).weight.data, w64.astype(np.float32))


def test_init_functions():
    w = np.empty((64, 32, 3, 3))
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", rng=0)
    assert abs(w.std() - math.sqrt(2 / (64 * 9))) < 0.01 * math.sqrt(2 / (64 * 9)) * 5
    nn.init.constant_(w, 0.5)
    assert (w == 0.5).all()
    p = nn.Parameter(np.zeros((10, 10)))
    nn.init.xavier_uniform_(p, rng=0)
    assert np.abs(p.data).max() <= math.sqrt(6 / 20)
    nn.init.trunc_normal_(p, std=1.0, low=-0.5, high=0.5, rng=0)
    assert np.abs(p.data).max() <= 0.5
    with pytest.raises(TypeError, match="rng"):
        nn.Linear(2, 2, rng="seed")


# ---- dtypes and errors -----------------------------------------------------------------------------------

def test_float64_layers_and_dtype_errors():
    conv = nn.Conv2d(2, 3, 3, dtype=np.float64)
    assert conv.weight.dtype == np.float64
    assert conv(randn(1, 2, 4, 4)).dtype == np.float64
    with pytest.raises(TypeError, match="float64 parameters but got a float32 input"):
        conv(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(TypeError, match="float32 or float64 input"):
        nn.ReLU()(np.zeros(3, np.int32))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(2, 2, dtype=np.float16)
    with pytest.raises(TypeError, match="NumPy array"):
        nn.ReLU()([1.0, 2.0])


def test_constructor_errors():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding must be"):
        nn.Conv2d(2, 2, 3, padding="full")
    with pytest.raises(ValueError, match="in_channels must be a positive int"):
        nn.Conv2d(0, 2, 3)
    with pytest.raises(ValueError, match="out_features"):
        nn.Linear(2, -1)
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm2d(0)


def test_input_grad_false_skips_the_input_gradient():
    conv = nn.Conv2d(2, 3, 3)
    x = RNG.standard_normal((1, 2, 5, 5)).astype(np.float32)
    conv(x)
    assert conv.backward(np.ones((1, 3, 3, 3), np.float32), input_grad=False) is None
    assert conv.weight.grad is not None and conv.bias.grad is not None


def test_frozen_parameters_get_no_gradient():
    lin = nn.Linear(3, 2)
    lin.weight.requires_grad = False
    lin(np.ones((4, 3), np.float32))
    lin.backward(np.ones((4, 2), np.float32))
    assert lin.weight.grad is None and lin.bias.grad is not None
