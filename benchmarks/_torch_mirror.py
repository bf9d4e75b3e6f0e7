"""torch_mirror(model): the PyTorch eager twin of a fastconv network, for benchmarks/test_models.py.

torchvision does not load against the torch installed here, so the peer of a fastconv model is
built from the model itself: every fastconv layer becomes the torch.nn layer of the same name and
arguments, fastconv.nn.Sequential (and the networks built on it) becomes torch.nn.Sequential, and
every other module with children (Residual, Concat, Scale, ResNet's blocks, InvertedResidual,
MBConv, SqueezeExcitation, BasicConv2d, GoogLeNet, ...) becomes a torch.nn.Module holding the
converted children under the same names, whose forward is the one written out in FORWARDS below,
as torchvision writes it. Children keep their names, so the state-dict keys are the same and the
weights are copied with a strict load_state_dict. Activations are in place, as torchvision's are.
"""
from collections import OrderedDict

import torch
from torch import nn as tnn

from fastconv import nn
from fastconv.models import efficientnet, inception, mobilenet, resnet

__all__ = ["torch_mirror"]


def _padding(p):
    if isinstance(p, str):
        return p
    if isinstance(p[0], (tuple, list)):   # ((top, bottom), (left, right)): torch.nn.Conv2d has no such form
        raise NotImplementedError(f"asymmetric padding {p}")
    return tuple(p)


class StochasticDepth(tnn.Module):
    """torchvision.ops.StochasticDepth in eval mode (the identity): only inference is mirrored."""

    def __init__(self, m):
        super().__init__()
        self.p, self.mode = m.p, m.mode

    def forward(self, x):
        if self.training and self.p > 0:
            raise NotImplementedError("StochasticDepth in train mode")
        return x


_LAYERS = {  # fastconv layer -> torch.nn layer of the same arguments
    nn.Conv2d: lambda m: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, _padding(m.padding),
                                    m.dilation, m.groups, bias=m.bias is not None),
    nn.BatchNorm2d: lambda m: tnn.BatchNorm2d(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats),
    nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None),
    nn.ReLU: lambda m: tnn.ReLU(inplace=True),
    nn.ReLU6: lambda m: tnn.ReLU6(inplace=True),
    nn.SiLU: lambda m: tnn.SiLU(inplace=True),
    nn.Hardswish: lambda m: tnn.Hardswish(inplace=True),
    nn.Sigmoid: lambda m: tnn.Sigmoid(),
    nn.Tanh: lambda m: tnn.Tanh(),
    nn.Dropout: lambda m: tnn.Dropout(m.p),
    nn.Identity: lambda m: tnn.Identity(),
    nn.Flatten: lambda m: tnn.Flatten(m.start_dim, m.end_dim),
    nn.MaxPool2d: lambda m: tnn.MaxPool2d(m.kernel_size, m.stride, m.padding, m.dilation, ceil_mode=m.ceil_mode),
    nn.AvgPool2d: lambda m: tnn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                                          m.divisor_override),
    nn.AdaptiveAvgPool2d: lambda m: tnn.AdaptiveAvgPool2d(m.output_size),
    nn.LocalResponseNorm: lambda m: tnn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k),
}
if hasattr(nn, "StochasticDepth"):
    _LAYERS[nn.StochasticDepth] = StochasticDepth


def _resnet_block(m, x):   # torchvision's BasicBlock / Bottleneck
    out = x
    for i in range(1, m.n + 1):
        out = getattr(m, f"bn{i}")(getattr(m, f"conv{i}")(out))
        if i < m.n:
            out = m.relu(out)
    out += x if m.downsample is None else m.downsample(x)
    return m.relu(out)


def _mbconv(m, x):          # torchvision's MBConv (stochastic depth: the identity in eval mode)
    result = m.block(x)
    if m.use_res_connect:
        if getattr(m, "stochastic_depth", None) is not None:
            result = m.stochastic_depth(result)
        result += x
    return result


def _googlenet(m, x):
    for name in m.stages:
        x = getattr(m, name)(x)
    return x


def _head(m, x):            # MobileNetV2, EfficientNet
    return m.classifier(m.flatten(m.avgpool(m.features(x))))


FORWARDS = {  # fastconv module with children -> forward(mirror, x) of its torch twin
    nn.Residual: lambda m, x: m.body(x) + (x if m.shortcut is None else m.shortcut(x)),
    nn.Concat: lambda m, x: torch.cat([branch(x) for branch in m.children()], m.dim),
    nn.Scale: lambda m, x: x * m.gate(x),
    resnet._Block: _resnet_block,
    mobilenet.InvertedResidual: lambda m, x: x + m.conv(x) if m.use_res_connect else m.conv(x),
    mobilenet._Classifier: _head,
    efficientnet.EfficientNet: _head,
    efficientnet.MBConv: _mbconv,
    efficientnet.SqueezeExcitation: lambda m, x: x * m.scale_activation(m.fc2(m.activation(m.fc1(m.avgpool(x))))),
    inception.BasicConv2d: lambda m, x: m.relu(m.bn(m.conv(x))),
    inception.GoogLeNet: _googlenet,
}
_ATTRS = ("dim", "use_res_connect", "_n", "_stages")  # read by FORWARDS (as dim, use_res_connect, n, stages)


class Mirror(tnn.Module):
    """A torch twin of one fastconv module with children: the same child names, FORWARDS' forward."""

    def __init__(self, source, forward):
        super().__init__()
        self._forward = forward
        self.kind = type(source).__name__
        for name, child in source._modules.items():
            self.add_module(name, None if child is None else _convert(child))
        for attr in _ATTRS:
            if hasattr(source, attr):
                setattr(self, attr.lstrip("_"), getattr(source, attr))

    def forward(self, x):
        return self._forward(self, x)

    def extra_repr(self):
        return self.kind


def _convert(m):
    for cls in type(m).__mro__:
        if cls in _LAYERS:
            return _LAYERS[cls](m)
        if cls in FORWARDS:
            return Mirror(m, FORWARDS[cls])
        if cls is nn.Sequential:
            return tnn.Sequential(OrderedDict((k, _convert(v)) for k, v in m._modules.items()))
    raise NotImplementedError(f"no torch twin for {type(m).__name__}")


def torch_mirror(model):
    """A torch.nn.Module computing what the fastconv `model` computes, with a copy of its weights
    and buffers (same state-dict keys, strict load), in the model's train/eval mode."""
    twin = _convert(model)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    return twin.train(model.training)
