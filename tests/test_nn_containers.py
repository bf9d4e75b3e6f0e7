"""Containers (Sequential, ModuleList, ModuleDict, Residual, Concat, Scale): indexing, names,
backward through fan-out and fan-in against finite differences, and a small CNN trained for a
few steps (the loss falls; two runs with the same seed are bit-identical)."""
from collections import OrderedDict

import numpy as np
import pytest

import fastconv
import fastconv.nn as nn
from nn_gradcheck import check_module_gradients

RNG = np.random.default_rng(99)


def test_sequential_indexing_and_names():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1], nn.ReLU)
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    seq.append(nn.Sigmoid())
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"] and isinstance(seq[1], nn.Linear)
    seq[2] = nn.Tanh()
    assert isinstance(seq[2], nn.Tanh)
    with pytest.raises(IndexError, match="out of range"):
        seq[5]
    with pytest.raises(TypeError, match="Modules"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), act=nn.ReLU()))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"] and isinstance(named.act, nn.ReLU)


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    ml.append(nn.Linear(2, 1))
    ml.insert(0, nn.Identity())
    assert len(ml) == 4 and isinstance(ml[0], nn.Identity)
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    md = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    md["c"] = nn.Linear(2, 1)
    assert list(md) == ["a", "b", "c"] and "b" in md and len(md) == 3
    assert list(md.state_dict()) == ["a.weight", "a.bias", "c.weight", "c.bias"]
    with pytest.raises(KeyError):
        md["x.y"] = nn.ReLU()


def test_sequential_gradients():
    seq = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(12, 2, rng=1))
    check_module_gradients(seq, RNG.standard_normal((2, 2, 4, 4)))


def test_residual_gradients_identity_and_projection():
    body = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1, rng=0), nn.BatchNorm2d(2), nn.ReLU(),
                         nn.Conv2d(2, 2, 3, padding=1, rng=1))
    check_module_gradients(nn.Sequential(nn.Residual(body), nn.ReLU()), RNG.standard_normal((2, 2, 4, 4)))
    down = nn.Residual(nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=2),
                       nn.Sequential(nn.Conv2d(2, 3, 1, stride=2, bias=False, rng=3), nn.BatchNorm2d(3)))
    assert list(down.state_dict())[:2] == ["body.weight", "body.bias"]
    assert "shortcut.1.running_mean" in down.state_dict()
    check_module_gradients(down, RNG.standard_normal((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="shortcut"):
        nn.Residual(nn.Conv2d(2, 3, 1))(np.ones((1, 2, 2, 2), np.float32))


def test_concat_gradients_inception_like():
    block = nn.Concat(OrderedDict(
        branch1x1=nn.Conv2d(3, 2, 1, rng=0),
        branch3x3=nn.Sequential(nn.Conv2d(3, 2, 1, rng=1), nn.ReLU(), nn.Conv2d(2, 3, 3, padding=1, rng=2)),
        branch_pool=nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(3, 1, 1, rng=3)),
    ))
    x = RNG.standard_normal((2, 3, 4, 4))
    assert block.double()(x).shape == (2, 6, 4, 4)
    assert "branch3x3.2.weight" in block.state_dict()
    check_module_gradients(block, x)
    check_module_gradients(nn.Concat(nn.Linear(3, 2, rng=4), nn.Identity(), dim=-1), RNG.standard_normal((2, 3)))


def test_scale_gradients_squeeze_excitation():
    se = nn.Scale(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4, 2, 1, rng=0), nn.ReLU(),
                                nn.Conv2d(2, 4, 1, rng=1), nn.Sigmoid()))
    check_module_gradients(se, RNG.standard_normal((2, 4, 3, 3)))
    assert list(se.state_dict())[0] == "gate.1.weight"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_gate_multiply_matches_numpy_broadcast(isa, dtype):
    """Scale's multiply (one threaded pass over the (image, channel) planes for an (N, C, 1, 1)
    gate) gives numpy's x * s exactly, and other gate shapes and layouts still broadcast."""
    from fastconv._norm import plane_scale
    x = RNG.standard_normal((3, 37, 29, 31)).astype(dtype)    # planes over many threads' blocks
    for s in (RNG.uniform(-2, 2, (3, 37, 1, 1)), RNG.uniform(-2, 2, (1, 37, 1, 1)), RNG.uniform(-2, 2, (3, 1, 1, 1))):
        s = s.astype(dtype)
        for nthreads in (1, 3):
            with fastconv.threads(nthreads):
                np.testing.assert_array_equal(plane_scale(x, s), x * s)
                np.testing.assert_array_equal(plane_scale(x[:, :, ::2], s), x[:, :, ::2] * s)
    gate = RNG.uniform(-2, 2, (3, 37, 1, 1))                     # float64 gate on float32 planes:
    y = plane_scale(x.astype(np.float32), gate)                   # numpy's promotion
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, x.astype(np.float32) * gate)
    assert plane_scale(x[:0], gate[:0].astype(dtype)).shape == (0, 37, 29, 31)


def test_input_grad_false_reaches_the_first_layer_only():
    seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 1))
    x = np.ones((1, 1, 5, 5), np.float32)
    assert seq.backward(np.ones_like(seq(x)), input_grad=False) is None
    assert all(p.grad is not None for p in seq.parameters())


# ---- training a small CNN -------------------------------------------------------------------------

def _train(seed, steps=8):
    nn.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())),
        nn.Dropout(0.1), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    data = np.random.default_rng(0)
    x = data.standard_normal((16, 1, 8, 8)).astype(np.float32)
    target = data.standard_normal((16, 3)).astype(np.float32)
    losses = []
    for _ in range(steps):
        out = model(x)
        diff = out - target
        losses.append(float(np.mean(diff ** 2)))  # MSE, written out to keep this test self-contained
        model.zero_grad()
        model.backward(2 * diff / diff.size)
        for p in model.parameters():
            p.data -= 0.05 * p.grad
    return losses, model.state_dict()


def test_small_cnn_trains_and_is_reproducible():
    losses, sd = _train(seed=3)
    assert losses[-1] < 0.8 * losses[0]
    losses2, sd2 = _train(seed=3)
    assert losses == losses2
    for k in sd:
        np.testing.assert_array_equal(sd[k], sd2[k])
    losses3, _ = _train(seed=4)
    assert losses3 != losses
