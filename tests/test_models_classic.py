"""The classic CNNs of fastconv.models (lenet5, alexnet, vgg*, resnet*) and fastconv.summary."""
import numpy as np
import pytest

import fastconv.nn as nn
import fastconv.models as models
from fastconv.nn import init
from fastconv.summary import summary

from nn_gradcheck import numeric_gradient

PUBLISHED = {
    "alexnet": 61_100_840,
    "vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848, "vgg13_bn": 133_053_736,
    "vgg16": 138_357_544, "vgg16_bn": 138_365_992, "vgg19": 143_667_240, "vgg19_bn": 143_678_248,
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


@pytest.fixture
def no_random_init(monkeypatch):
    """Skip drawing random weights (the count, keys and shapes do not depend on them): building the
    VGGs' 100M-parameter classifiers with random draws takes seconds each."""
    monkeypatch.setattr(init, "uniform_", lambda a, *args, **kwargs: a)
    monkeypatch.setattr(init, "normal_", lambda a, *args, **kwargs: a)


def n_params(model):
    return sum(p.size for p in model.parameters())


def test_lenet5_parameter_count():
    assert n_params(models.lenet5()) == 61_706
    assert n_params(models.lenet5(classic=True)) == 61_706


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name, no_random_init):
    model = getattr(models, name)()
    assert n_params(model) == PUBLISHED[name]


@pytest.mark.parametrize("classic", [False, True])
def test_lenet5_forward_backward(classic):
    model = models.lenet5(classic=classic)
    if classic:
        assert any(isinstance(m, nn.Tanh) for m in model.modules())
        assert any(isinstance(m, nn.AvgPool2d) for m in model.modules())
    else:
        assert any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    x = np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32)
    y = model(x)
    assert y.shape == (4, 10) and y.dtype == np.float32
    model.zero_grad()
    gx = model.backward(np.ones_like(y))
    assert gx.shape == x.shape and np.isfinite(gx).all()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.isfinite(p.grad).all(), name


def test_lenet5_options():
    model = models.lenet5(num_classes=3, in_channels=3)
    assert model(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 3)


def test_lenet5_gradient_finite_differences():
    nn.manual_seed(0)
    model = models.lenet5(classic=True).double()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 32, 32))
    g = rng.standard_normal((2, 10))
    model.zero_grad()
    model(x)
    gx = model.backward(g)

    def loss():
        return float(np.sum(model(x) * g))

    params = dict(model.named_parameters())
    for name, idx in [("features.0.weight", (2, 0, 1, 3)), ("features.3.bias", (5,)),
                      ("classifier.0.weight", (7, 123)), ("classifier.4.bias", (4,))]:
        p = params[name]
        old = p.data[idx]
        p.data[idx] = old + 1e-6
        up = loss()
        p.data[idx] = old - 1e-6
        down = loss()
        p.data[idx] = old
        np.testing.assert_allclose(p.grad[idx], (up - down) / 2e-6, rtol=1e-5, atol=1e-8, err_msg=name)
    # a few input entries too (the whole input would be 2048 forward pairs)
    xs = x[:1, :, 10:12, 10:12].copy()
    x_small_idx = [(0, 0, 10, 10), (1, 0, 20, 5)]
    for idx in x_small_idx:
        old = x[idx]
        x[idx] = old + 1e-6
        up = loss()
        x[idx] = old - 1e-6
        down = loss()
        x[idx] = old
        np.testing.assert_allclose(gx[idx], (up - down) / 2e-6, rtol=1e-5, atol=1e-8)
    assert xs.shape == (1, 1, 2, 2)


def test_lenet5_whole_network_gradient_small_params():
    """Every parameter of a LeNet-5 with 3 classes against finite differences would be 61k forward
    pairs; check every entry of the last two layers."""
    nn.manual_seed(2)
    model = models.lenet5(num_classes=3).double()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 32, 32))
    g = rng.standard_normal((2, 3))
    model.zero_grad()
    model(x)
    model.backward(g)
    last = model.classifier[4]
    for p in (last.weight, last.bias):
        num = numeric_gradient(lambda: float(np.sum(model(x) * g)), p.data)
        np.testing.assert_allclose(p.grad, num, rtol=1e-5, atol=1e-8)


def test_alexnet_small_input(no_random_init):
    model = models.alexnet(num_classes=7).eval()
    for p in model.parameters():
        p.data[...] = 0.01
    assert model(np.ones((1, 3, 63, 63), np.float32)).shape == (1, 7)


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn"])
def test_vgg_small_input(name, no_random_init):
    model = getattr(models, name)(num_classes=5).eval()
    for p in model.parameters():
        p.data[...] = 0.001
    assert model(np.ones((1, 3, 32, 32), np.float32)).shape == (1, 5)


@pytest.mark.parametrize("name,size", [("resnet18", 32), ("resnet34", 32), ("resnet50", 32), ("resnet18", 64)])
def test_resnet_output_shapes(name, size):
    model = getattr(models, name)(num_classes=10).eval()
    y = model(np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32))
    assert y.shape == (2, 10) and np.isfinite(y).all()


def test_resnet_in_channels():
    model = models.resnet18(num_classes=4, in_channels=1).eval()
    assert model.conv1.weight.shape == (64, 1, 7, 7)
    assert model(np.zeros((1, 1, 32, 32), np.float32)).shape == (1, 4)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnet_backward(name):
    nn.manual_seed(0)
    model = getattr(models, name)(num_classes=10)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = model(x)
    model.zero_grad()
    gx = model.backward(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
    assert gx.shape == x.shape and np.isfinite(gx).all()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.isfinite(p.grad).all(), pname
    # the shortcut carries gradient: downsample convolutions and the first block's conv1 got some
    assert np.abs(model.layer2[0].downsample[0].weight.grad).sum() > 0


def test_resnet_block_gradient_finite_differences():
    """A BasicBlock with a downsample and a Bottleneck (identity shortcut), float64, every
    parameter and the input."""
    from nn_gradcheck import check_module_gradients
    nn.manual_seed(0)
    rng = np.random.default_rng(0)
    down = nn.Sequential(nn.Conv2d(3, 4, 1, stride=2, bias=False), nn.BatchNorm2d(4))
    block = models.BasicBlock(3, 4, stride=2, downsample=down)
    checked = check_module_gradients(block, rng.standard_normal((2, 3, 6, 6)), rtol=1e-5, atol=1e-7)
    assert "downsample.0.weight" in checked and "input" in checked
    block = models.Bottleneck(8, 2)
    check_module_gradients(block, rng.standard_normal((2, 8, 4, 4)), rtol=1e-5, atol=1e-7)


def test_resnet_state_dict_keys_follow_torchvision():
    sd = models.resnet18().state_dict()
    expected = {
        "conv1.weight": (64, 3, 7, 7), "bn1.weight": (64,), "bn1.running_var": (64,),
        "bn1.num_batches_tracked": (), "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.bias": (64,), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_mean": (128,), "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512), "fc.bias": (1000,),
    }
    for k, shape in expected.items():
        assert sd[k].shape == shape, k
    assert len(sd) == 122 and "layer1.0.downsample.0.weight" not in sd
    sd50 = models.resnet50().state_dict()
    assert sd50["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert sd50["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd50["layer3.0.conv2.weight"].shape == (256, 256, 3, 3)
    assert sd50["fc.weight"].shape == (1000, 2048)
    assert len(sd50) == 320


def test_vgg_alexnet_state_dict_keys(no_random_init):
    sd = models.vgg16().state_dict()
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)
    assert sd["features.28.weight"].shape == (512, 512, 3, 3)
    assert sd["classifier.0.weight"].shape == (4096, 25088)
    assert sd["classifier.6.weight"].shape == (1000, 4096)
    sd = models.vgg11_bn().state_dict()
    assert sd["features.1.running_mean"].shape == (64,)
    sd = models.alexnet().state_dict()
    assert sd["features.10.weight"].shape == (256, 256, 3, 3)
    assert sd["classifier.1.weight"].shape == (4096, 9216)
    assert sd["classifier.6.bias"].shape == (1000,)


def _torchvision():
    pytest.importorskip("torch")
    try:  # a torch/torchvision build mismatch raises RuntimeError at import, not ImportError
        import torchvision
        import torchvision.ops  # noqa: F401
    except Exception as exc:  # pragma: no cover
        pytest.skip(f"torchvision unusable: {exc!r}")
    return torchvision


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg11_bn", "vgg16", "resnet18", "resnet50"])
def test_state_dict_matches_torchvision(name, no_random_init):
    tv = _torchvision()
    ours = {k: v.shape for k, v in getattr(models, name)().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in getattr(tv.models, name)(weights=None).state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


@pytest.mark.parametrize("name,size", [("resnet18", 64), ("alexnet", 64), ("vgg11_bn", 32)])
def test_torchvision_weights_same_logits(name, size):
    torch = pytest.importorskip("torch")
    tv = _torchvision()
    torch.manual_seed(0)
    theirs = getattr(tv.models, name)(weights=None, num_classes=10).eval()
    ours = getattr(models, name)(num_classes=10).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ref = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(x), ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_summary_lenet5(capsys):
    text = summary(models.lenet5(), (1, 32, 32))
    assert capsys.readouterr().out.strip() == text.strip()
    assert "Total params: 61,706" in text
    assert "features.0 (Conv2d)" in text and "(1, 6, 28, 28)" in text
    # multiply-adds: 6*28*28*25 + 16*10*10*150 + 400*120 + 120*84 + 84*10
    assert f"Total mult-adds: {6*28*28*25 + 16*10*10*150 + 400*120 + 120*84 + 84*10:,}" in text
    assert "(1, 10)" in text


def test_summary_resnet18_leaves_model_untouched():
    model = models.resnet18()
    text = summary(model, (3, 224, 224), print_table=False)
    assert "Total params: 11,689,512" in text
    assert "layer2.0.downsample.0 (Conv2d)" in text
    assert "(1.81 G)" in text  # ResNet-18's published 1.8 GFLOPs (multiply-adds)
    assert model.training and all(m.training for m in model.modules())
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert float(model.bn1.num_batches_tracked) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet50", "resnet152"])
def test_224_forward(name):
    model = getattr(models, name)().eval()
    assert model(np.zeros((1, 3, 224, 224), np.float32)).shape == (1, 1000)
