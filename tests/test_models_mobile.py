"""GoogLeNet, MobileNet v1/v2, EfficientNet-B0: parameter counts, torchvision's state-dict keys,
output shapes at small inputs, backward, and a finite-difference gradient check."""
import numpy as np
import pytest

from fastconv.models.efficientnet import efficientnet_b0
from fastconv.models.inception import googlenet
from fastconv.models.mobilenet import mobilenet_v1, mobilenet_v2


def n_params(model):
    return sum(p.size for p in model.parameters())


@pytest.mark.parametrize("factory, kwargs, expected", [
    (googlenet, {}, 6_624_904),
    (googlenet, {"aux_logits": True}, 13_004_888),
    (mobilenet_v1, {}, 4_231_976),
    (mobilenet_v2, {}, 3_504_872),
    (efficientnet_b0, {}, 5_288_548),
])
def test_parameter_counts(factory, kwargs, expected):
    assert n_params(factory(**kwargs)) == expected


EXPECTED_KEYS = {
    mobilenet_v2: ["features.0.0.weight", "features.0.1.running_mean", "features.0.1.num_batches_tracked",
                   "features.1.conv.0.0.weight", "features.1.conv.1.weight", "features.1.conv.2.running_var",
                   "features.2.conv.0.0.weight", "features.2.conv.1.0.weight", "features.2.conv.2.weight",
                   "features.2.conv.3.bias", "features.18.0.weight", "features.18.1.bias",
                   "classifier.1.weight", "classifier.1.bias"],
    efficientnet_b0: ["features.0.0.weight", "features.0.1.running_mean", "features.1.0.block.0.0.weight",
                      "features.1.0.block.1.fc1.weight", "features.1.0.block.1.fc2.bias",
                      "features.1.0.block.2.0.weight", "features.2.0.block.0.0.weight",
                      "features.2.1.block.2.fc1.weight", "features.2.1.block.3.1.running_var",
                      "features.7.0.block.3.0.weight", "features.8.0.weight", "features.8.1.bias",
                      "classifier.1.weight", "classifier.1.bias"],
    googlenet: ["conv1.conv.weight", "conv1.bn.weight", "conv1.bn.running_mean", "conv2.conv.weight",
                "conv3.bn.bias", "inception3a.branch1.conv.weight", "inception3a.branch2.0.conv.weight",
                "inception3a.branch2.1.bn.running_var", "inception3a.branch3.1.conv.weight",
                "inception3a.branch4.1.conv.weight", "inception5b.branch4.1.bn.num_batches_tracked",
                "fc.weight", "fc.bias"],
}

EXPECTED_SHAPES = {
    mobilenet_v2: {"features.0.0.weight": (32, 3, 3, 3), "features.1.conv.0.0.weight": (32, 1, 3, 3),
                   "features.1.conv.1.weight": (16, 32, 1, 1), "features.2.conv.0.0.weight": (96, 16, 1, 1),
                   "features.18.0.weight": (1280, 320, 1, 1), "classifier.1.weight": (1000, 1280)},
    efficientnet_b0: {"features.1.0.block.1.fc1.weight": (8, 32, 1, 1), "features.6.0.block.1.0.weight": (672, 1, 5, 5),
                      "features.6.0.block.2.fc1.weight": (28, 672, 1, 1), "features.8.0.weight": (1280, 320, 1, 1),
                      "classifier.1.weight": (1000, 1280)},
    googlenet: {"conv1.conv.weight": (64, 3, 7, 7), "inception3a.branch3.1.conv.weight": (32, 16, 3, 3),
                "inception5b.branch1.conv.weight": (384, 832, 1, 1), "fc.weight": (1000, 1024)},
}


@pytest.mark.parametrize("factory", list(EXPECTED_KEYS), ids=lambda f: f.__name__)
def test_state_dict_keys_and_shapes(factory):
    sd = factory().state_dict()
    missing = [k for k in EXPECTED_KEYS[factory] if k not in sd]
    assert not missing
    for k, shape in EXPECTED_SHAPES[factory].items():
        assert sd[k].shape == shape, k
    assert not any(k.startswith("aux") for k in sd)


def test_googlenet_aux_keys():
    sd = googlenet(aux_logits=True).state_dict()
    for k in ("aux1.conv.conv.weight", "aux1.conv.bn.running_mean", "aux1.fc1.weight", "aux1.fc2.bias",
              "aux2.conv.conv.weight", "aux2.fc1.weight", "aux2.fc2.weight"):
        assert k in sd
    assert sd["aux1.fc1.weight"].shape == (1024, 2048)
    assert sd["aux2.conv.conv.weight"].shape == (128, 528, 1, 1)


@pytest.mark.parametrize("factory, size", [
    (mobilenet_v1, 32), (mobilenet_v2, 32), (efficientnet_b0, 32), (googlenet, 32),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_forward_backward_shapes(factory, size):
    rng = np.random.default_rng(0)
    model = factory(num_classes=10)
    x = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    y = model(x)
    assert y.shape == (2, 10) and y.dtype == np.float32 and np.isfinite(y).all()
    gx = model.backward(np.ones_like(y))
    assert gx.shape == x.shape and np.isfinite(gx).all()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    model.eval()
    y1 = model(x[:1])
    assert y1.shape == (1, 10) and np.isfinite(y1).all()


def test_mobilenet_width_mult():
    m = mobilenet_v2(num_classes=10, width_mult=0.25)
    sd = m.state_dict()
    assert sd["features.0.0.weight"].shape == (8, 3, 3, 3)
    assert sd["classifier.1.weight"].shape == (10, 1280)
    m1 = mobilenet_v1(num_classes=10, width_mult=0.5)
    assert m1.state_dict()["classifier.1.weight"].shape == (10, 512)
    assert m1.eval()(np.zeros((1, 3, 32, 32), np.float32)).shape == (1, 10)


def test_googlenet_aux_outputs_and_backward():
    rng = np.random.default_rng(1)
    model = googlenet(num_classes=5, aux_logits=True)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    out = model(x)
    assert [o.shape for o in out] == [(2, 5)] * 3
    g = model.backward(tuple(np.ones_like(o) for o in out))
    assert g.shape == x.shape
    assert model.aux1.fc2.weight.grad is not None
    model.zero_grad()
    out = model(x)
    g = model.backward(np.ones_like(out.logits))  # main head only
    assert g.shape == x.shape and model.aux1.fc2.weight.grad is None
    model.eval()
    assert model(x).shape == (2, 5)


def test_mobilenet_v2_gradcheck_float64():
    """Finite differences through a whole width-0.25 MobileNetV2 at 32x32 (train-mode BN, batch 2,
    dropout off)."""
    import fastconv.nn as nn
    nn.manual_seed(0)
    rng = np.random.default_rng(2)
    model = mobilenet_v2(num_classes=4, width_mult=0.25, dropout=0.0).double()
    x = rng.standard_normal((2, 3, 32, 32))
    w = rng.standard_normal((2, 4))

    def loss():
        return float((model(x) * w).sum())

    model.zero_grad()
    model(x)
    gx = model.backward(w)
    params = dict(model.named_parameters())
    checks = [("features.0.0.weight", (3, 1, 2, 0)), ("features.2.conv.1.0.weight", (5, 0, 1, 1)),
              ("features.5.conv.2.weight", (2, 7, 0, 0)), ("features.17.conv.3.weight", (11,)),
              ("features.18.1.bias", (3,)), ("classifier.1.weight", (1, 17))]
    eps = 1e-7  # small: ReLU6 kinks sit close to some activations
    for name, idx in checks:
        p = params[name]
        old = p.data[idx]
        p.data[idx] = old + eps
        lp = loss()
        p.data[idx] = old - eps
        lm = loss()
        p.data[idx] = old
        num = (lp - lm) / (2 * eps)
        assert np.isclose(p.grad[idx], num, rtol=1e-4, atol=1e-6), (name, p.grad[idx], num)
    for idx in [(0, 0, 5, 7), (1, 2, 20, 11)]:
        old = x[idx]
        x[idx] = old + eps
        lp = loss()
        x[idx] = old - eps
        lm = loss()
        x[idx] = old
        assert np.isclose(gx[idx], (lp - lm) / (2 * eps), rtol=1e-4, atol=1e-6)


def test_efficientnet_se_gradcheck_float64():
    """Squeeze-excitation and MBConv backward against finite differences (one stride-1 residual block)."""
    from fastconv.models.efficientnet import MBConv
    import fastconv.nn as nn
    nn.manual_seed(0)
    rng = np.random.default_rng(3)
    block = MBConv(6, 3, 1, 8, 8).double()
    x = rng.standard_normal((2, 8, 5, 5))
    w = rng.standard_normal((2, 8, 5, 5))
    block(x)
    gx = block.backward(w)
    eps = 1e-6
    params = dict(block.named_parameters())
    for name, idx in [("block.2.fc1.weight", (1, 3, 0, 0)), ("block.2.fc2.bias", (5,)),
                      ("block.1.0.weight", (7, 0, 1, 2)), ("block.0.0.weight", (4, 2, 0, 0))]:
        p = params[name]
        old = p.data[idx]
        p.data[idx] = old + eps
        lp = float((block(x) * w).sum())
        p.data[idx] = old - eps
        lm = float((block(x) * w).sum())
        p.data[idx] = old
        assert np.isclose(p.grad[idx], (lp - lm) / (2 * eps), rtol=1e-4, atol=1e-7), name
    idx = (1, 3, 2, 4)
    old = x[idx]
    x[idx] = old + eps
    lp = float((block(x) * w).sum())
    x[idx] = old - eps
    lm = float((block(x) * w).sum())
    x[idx] = old
    assert np.isclose(gx[idx], (lp - lm) / (2 * eps), rtol=1e-4, atol=1e-7)



def test_efficientnet_stochastic_depth_schedule_and_train_mode():
    """torchvision's schedule: block i of 16 drops its residual branch with p = 0.2 * i / 16; a
    dropped branch leaves the identity path, in value and in gradient; eval mode never drops."""
    from fastconv.models.efficientnet import MBConv
    model = efficientnet_b0(num_classes=10)
    probs = [m.stochastic_depth.p for m in model.modules() if isinstance(m, MBConv)]
    np.testing.assert_allclose(probs, 0.2 * np.arange(16) / 16)
    block = MBConv(6, 3, 1, 8, 8, stochastic_depth_prob=1.0).double()
    x = np.random.default_rng(0).standard_normal((3, 8, 5, 5))
    g = np.random.default_rng(1).standard_normal(x.shape)
    np.testing.assert_array_equal(block(x), x)
    np.testing.assert_array_equal(block.backward(g), g)
    block.eval()
    assert not np.allclose(block(x), x)

def _torchvision():
    pytest.importorskip("torch")
    try:  # a torch/torchvision build mismatch raises RuntimeError at import, not ImportError
        import torchvision
        import torchvision.ops  # noqa: F401
    except Exception as exc:  # pragma: no cover
        pytest.skip(f"torchvision unusable: {exc!r}")
    return torchvision


@pytest.mark.parametrize("name", ["googlenet", "mobilenet_v2", "efficientnet_b0"])
def test_matches_torchvision(name):
    tv = _torchvision()
    import torch
    ours = {"googlenet": googlenet, "mobilenet_v2": mobilenet_v2, "efficientnet_b0": efficientnet_b0}[name]()
    kwargs = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    ref = getattr(tv.models, name)(weights=None, **kwargs).eval()
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    assert list(sd) == list(ours.state_dict())
    ours.load_state_dict(sd)
    ours.eval()
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-3, atol=1e-4)
