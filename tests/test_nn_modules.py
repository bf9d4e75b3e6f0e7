"""fastconv.nn.Module and Parameter: registration, names, traversal, state dicts (round trips,
strict/non-strict errors), train/eval, zero_grad, dtype casts, repr, the forward/backward cache."""
import io

import numpy as np
import pytest

import fastconv.nn as nn


class Net(nn.Module):
    """A small custom module: attribute assignment registers children, parameters and buffers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, rng=0), nn.BatchNorm2d(2), nn.ReLU())
        self.head = nn.Linear(8, 3, rng=1)
        self.scale = nn.Parameter(np.ones(3, np.float32))
        self.register_buffer("steps", np.zeros((), np.int64))
        self.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)
        self.plain = 5  # not registered

    def forward(self, x):
        h = self.features(x)
        self.save_for_backward(h.shape)
        return self.head(h.reshape(h.shape[0], -1)) * self.scale.data

    def backward(self, g, input_grad=True):
        shape = self.saved()
        self.scale.accumulate_grad(np.zeros(3, np.float32))
        gh = self.head.backward(g * self.scale.data)
        return self.features.backward(gh.reshape(shape), input_grad=input_grad)


def test_named_parameters_buffers_children_modules():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == [
        "steps", "scratch", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert len(list(net.children())) == 2
    assert [n for n, _ in net.named_modules()] == ["", "features", "features.0", "features.1", "features.2", "head"]
    assert len(list(net.parameters())) == 7 and len(list(net.parameters(recurse=False))) == 1
    assert isinstance(net.features[0].weight, nn.Parameter) and net.plain == 5
    assert list(net.state_dict()) == [
        "scale", "steps", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
        "head.weight", "head.bias"]


def test_reassignment_and_deletion():
    net = Net()
    net.head = nn.Linear(8, 4)  # replaces the child
    assert net.head.out_features == 4
    net.scale = None  # a parameter slot may be emptied
    assert "scale" not in dict(net.named_parameters())
    with pytest.raises(TypeError, match="parameter 'scale'"):
        net.scale = np.ones(3)
    net.steps = np.ones((), np.int64)  # buffers take arrays
    assert net.state_dict()["steps"] == 1
    del net.head
    assert "head" not in dict(net.named_children())
    with pytest.raises(AttributeError, match="no attribute 'head'"):
        net.head


def test_shared_modules_and_parameters_counted_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as PyTorch


def test_missing_super_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Bad()


def test_state_dict_is_a_copy_and_round_trips():
    a, b = Net(), Net()
    for p in b.parameters():
        p.data[...] = 0
    sd = a.state_dict()
    sd["head.weight"][...] = 42  # a copy: the module is untouched
    assert not (a.head.weight.data == 42).any()
    sd = a.state_dict()
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
        assert k == k2 and v.dtype == v2.dtype
        np.testing.assert_array_equal(v, v2)
    # through np.savez / np.load
    buf = io.BytesIO()
    np.savez(buf, **a.state_dict())
    buf.seek(0)
    c = Net()
    c.load_state_dict(dict(np.load(buf)))
    np.testing.assert_array_equal(c.head.weight.data, a.head.weight.data)
    # a parameter object keeps its identity across loads (optimizers hold it)
    w = c.head.weight
    c.load_state_dict(a.state_dict())
    assert c.head.weight is w


def test_load_state_dict_strict_errors_list_every_problem():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra.weight"] = np.zeros(2)
    sd["features.0.weight"] = np.zeros((2, 1, 5, 5))
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    assert 'Missing key(s) in state_dict: "head.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    assert "size mismatch for features.0.weight" in msg and "(2, 1, 5, 5)" in msg and "(2, 1, 3, 3)" in msg
    before = net.head.weight.data.copy()
    sd["head.weight"] = np.zeros((3, 8))
    with pytest.raises(RuntimeError):
        net.load_state_dict(sd)
    np.testing.assert_array_equal(net.head.weight.data, before)  # nothing loaded on error


def test_load_state_dict_non_strict_returns_the_lists():
    net = Net()
    sd = net.state_dict()
    del sd["head.bias"]
    sd["extra"] = np.zeros(1)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["head.bias"] and unexpected == ["extra"]
    sd["head.weight"] = np.zeros((1, 1))
    with pytest.raises(RuntimeError, match="size mismatch for head.weight"):  # shapes are checked anyway
        net.load_state_dict(sd, strict=False)
    with pytest.raises(TypeError, match="mapping"):
        net.load_state_dict([1, 2])


def test_load_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 2)
    lin.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert lin.weight.dtype == np.float32 and (lin.weight.data == 1).all()


def test_train_eval_recursive_and_eval_keeps_nothing():
    net = Net()
    assert net.training and net.features[1].training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = np.ones((2, 1, 4, 4), np.float32)
    net(x)
    assert all(not m._cache for m in net.modules())
    with pytest.raises(RuntimeError, match="eval mode"):
        net.backward(np.ones((2, 3), np.float32))
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(TypeError):
        net.train("no")


def test_backward_without_forward_is_an_error():
    with pytest.raises(RuntimeError, match="no forward pass is waiting"):
        nn.ReLU().backward(np.ones(3))


def test_root_call_drops_stale_caches():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    x = np.ones((1, 2), np.float32)
    for _ in range(3):
        net(x)  # train-mode forwards without backward (e.g. to log a loss)
    assert all(len(m._cache) <= 1 for m in net.modules())
    net.backward(np.ones((1, 2), np.float32))
    assert all(not m._cache for m in net.modules())


def test_a_module_used_twice_in_one_forward():
    class TwiceReLU(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3, rng=0, dtype=np.float64)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(self.lin(self.act(x)))

        def backward(self, g, input_grad=True):
            return self.act.backward(self.lin.backward(self.act.backward(g)))

    from nn_gradcheck import check_module_gradients
    check_module_gradients(TwiceReLU(), np.random.default_rng(0).standard_normal((2, 3)))


def test_zero_grad_and_accumulation():
    lin = nn.Linear(2, 2)
    x = np.ones((1, 2), np.float32)
    for _ in range(2):
        lin(x)
        lin.backward(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(lin.bias.grad, [2, 2])  # accumulated
    lin.zero_grad(set_to_none=False)
    assert (lin.bias.grad == 0).all()
    lin.zero_grad()
    assert lin.bias.grad is None and lin.weight.grad is None


def test_to_double_keeps_parameter_identity():
    net = Net()
    w = net.head.weight
    net.double()
    assert net.head.weight is w and w.dtype == np.float64
    assert net.features[1].running_mean.dtype == np.float64
    assert net.features[1].num_batches_tracked.dtype == np.int64
    assert net(np.ones((2, 1, 4, 4))).dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        net.to(np.int32)


def test_parameter():
    p = nn.Parameter(np.arange(3, dtype=np.float32))
    assert p.grad is None and p.shape == (3,) and p.dtype == np.float32 and p.requires_grad
    np.testing.assert_array_equal(np.asarray(p), [0, 1, 2])
    with pytest.raises(TypeError, match="floating-point"):
        nn.Parameter(np.arange(3))
    with pytest.raises(ValueError, match="shape"):
        p.accumulate_grad(np.zeros(4, np.float32))
    assert "Parameter containing" in repr(p)


def test_repr_like_pytorch():
    net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Sequential(nn.Linear(864, 10, bias=False), nn.Dropout(0.5)))
    assert repr(net) == """Sequential(
  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
  (1): ReLU(inplace=True)
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Sequential(
    (0): Linear(in_features=864, out_features=10, bias=False)
    (1): Dropout(p=0.5, inplace=False)
  )
)"""
    assert repr(nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=4, bias=False)) == \
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=4, bias=False)"
    assert repr(nn.Conv2d(4, 8, 3, padding="same")) == "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=same)"
    assert repr(nn.BatchNorm2d(8)) == "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert repr(nn.ReLU()) == "ReLU()"


def test_fastconv_save_load_round_trip(tmp_path):
    import fastconv
    from fastconv import nn

    fastconv.manual_seed(3)
    a = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    fastconv.manual_seed(4)
    b = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    assert not np.array_equal(a[0].weight.data, b[0].weight.data)
    path = tmp_path / "model.weights"
    fastconv.save(a, path)
    assert path.exists()  # written to exactly that path, no suffix added
    b.load_state_dict(fastconv.load(path))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va, vb)


def test_manual_seed_makes_init_reproducible():
    import fastconv
    from fastconv import nn

    fastconv.manual_seed(11)
    w1 = nn.Conv2d(3, 4, 3).weight.data.copy()
    fastconv.manual_seed(11)
    w2 = nn.Conv2d(3, 4, 3).weight.data.copy()
    fastconv.manual_seed(12)
    w3 = nn.Conv2d(3, 4, 3).weight.data.copy()
    assert np.array_equal(w1, w2) and not np.array_equal(w1, w3)
