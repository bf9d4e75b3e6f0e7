"""Optional (skipped without torch): the same layer stacks with the same weights give PyTorch's
outputs, input gradients, parameter gradients, running statistics, state-dict keys and reprs."""
from collections import OrderedDict

import numpy as np
import pytest

import fastconv.nn as nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def _pair(ours, theirs):
    """Copy our state dict into the torch module (float64 both)."""
    ours.double()
    theirs.double()
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})


def _compare(ours, theirs, x, train=True, rtol=1e-10, atol=1e-12):
    ours.train(train)
    theirs.train(train)
    _pair(ours, theirs)
    y = ours(x)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = theirs(xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(y.shape)
    if train:
        gx = ours.backward(g)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol, atol=atol)
        theirs_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, theirs_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for k, v in theirs.state_dict().items():  # running statistics too
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=rtol, atol=atol, err_msg=k)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def _stack(mod):
    return (mod.Sequential(
        mod.Conv2d(3, 8, 3, stride=2, padding=1), mod.BatchNorm2d(8), mod.ReLU(), mod.LocalResponseNorm(3),
        mod.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), mod.BatchNorm2d(8, momentum=None), mod.Hardswish(),
        mod.Conv2d(8, 6, 1), mod.SiLU(), mod.MaxPool2d(3, 2, 1), mod.AvgPool2d(2, 1), mod.ConvTranspose2d(6, 4, 3, 2, 1, 1),
        mod.LeakyReLU(0.1), mod.ReLU6(), mod.AdaptiveAvgPool2d((2, 3)), mod.Flatten(), mod.Linear(24, 10),
        mod.BatchNorm1d(10), mod.Tanh(), mod.Linear(10, 5), mod.Sigmoid(), mod.Softmax(dim=1)))


@pytest.mark.parametrize("train", [True, False])
def test_layer_stack_matches_torch(train):
    x = np.random.default_rng(0).standard_normal((4, 3, 12, 12))
    _compare(_stack(nn), _stack(tnn), x, train=train)


def test_repr_matches_torch():
    assert repr(_stack(nn)) == repr(_stack(tnn))
    for ours, theirs in [(nn.Conv2d(2, 4, (3, 5), stride=(1, 2), padding=(0, 2), dilation=2), 
                          tnn.Conv2d(2, 4, (3, 5), stride=(1, 2), padding=(0, 2), dilation=2)),
                         (nn.BatchNorm1d(3, affine=False, track_running_stats=False),
                          tnn.BatchNorm1d(3, affine=False, track_running_stats=False)),
                         (nn.BatchNorm2d(3, bias=False), tnn.BatchNorm2d(3, bias=False)),
                         (nn.Dropout(0.2), tnn.Dropout(0.2)), (nn.Identity(), tnn.Identity())]:
        assert repr(ours) == repr(theirs)


def test_torch_state_dict_loads_into_ours():
    theirs = tnn.Sequential(OrderedDict(conv=tnn.Conv2d(1, 2, 3), bn=tnn.BatchNorm2d(2)))
    theirs.train()(torch.randn(2, 1, 5, 5))
    ours = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), bn=nn.BatchNorm2d(2)))
    ours.load_state_dict(theirs.state_dict())  # torch tensors are accepted
    np.testing.assert_array_equal(ours.bn.running_mean, theirs.bn.running_mean.numpy())
    assert ours.bn.num_batches_tracked == 1


def test_default_init_distribution_like_torch():
    torch.manual_seed(0)
    tw = tnn.Conv2d(16, 32, 3).weight.detach().numpy()
    ow = nn.Conv2d(16, 32, 3, rng=0).weight.data
    assert abs(np.abs(tw).max() - np.abs(ow).max()) < 1e-3
    assert abs(tw.std() - ow.std()) < 0.05 * tw.std()
