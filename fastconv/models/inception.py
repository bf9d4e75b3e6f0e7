"""GoogLeNet / Inception v1 (Szegedy et al. 2014), torchvision's structure.

Parameter count 6,624,904 without the auxiliary classifiers, and state-dict keys and shapes
identical to ``torchvision.models.googlenet`` (``conv1.conv.weight``, ``conv1.bn.weight``,
``inception3a.branch1.conv.weight``, ``inception3a.branch2.0.conv.weight``, ..., ``fc.weight``; with
``aux_logits=True`` also ``aux1.*`` and ``aux2.*``). As torchvision's, every convolution is
BasicConv2d (conv without bias, BatchNorm eps=0.001, ReLU) and the "5x5" branch uses a 3x3 kernel.

With aux_logits=True, forward in train mode returns ``GoogLeNetOutputs(logits, aux_logits2,
aux_logits1)`` and backward takes a matching tuple of gradients (None for a head without loss),
or a single array (the main logits' gradient); in eval mode forward returns the logits alone.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import nn

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "BasicConv2d", "Inception", "InceptionAux", "googlenet"]

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """conv (bias=False) -> BatchNorm2d(eps=0.001) -> ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU()

    def forward(self, x):
        fused = None if self.training else nn.conv_bn_act(self.conv, self.bn, self.relu, x)
        return fused if fused is not None else self.relu(self.bn(self.conv(x)))

    def backward(self, grad_output, input_grad=True):
        return self.conv.backward(self.bn.backward(self.relu.backward(grad_output)), input_grad=input_grad)


class Inception(nn.Concat):
    """Four parallel branches concatenated along channels: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 (torchvision's
    stand-in for the paper's 5x5); 3x3 max pool -> 1x1. Keys ``branch1.*`` ... ``branch4.1.*``."""

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__(OrderedDict(
            branch1=BasicConv2d(in_channels, ch1x1, 1),
            branch2=nn.Sequential(BasicConv2d(in_channels, ch3x3red, 1), BasicConv2d(ch3x3red, ch3x3, 3, padding=1)),
            branch3=nn.Sequential(BasicConv2d(in_channels, ch5x5red, 1), BasicConv2d(ch5x5red, ch5x5, 3, padding=1)),
            branch4=nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                  BasicConv2d(in_channels, pool_proj, 1)),
        ))


class InceptionAux(nn.Module):
    """Auxiliary classifier: adaptive avg pool to 4x4, 1x1 BasicConv2d to 128, Linear 2048 -> 1024,
    ReLU, Dropout(0.7), Linear -> num_classes."""

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, 128, 1)
        self.flatten = nn.Flatten(1)
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    _order = ("pool", "conv", "flatten", "fc1", "relu", "dropout", "fc2")

    def forward(self, x):
        for name in self._order:
            x = getattr(self, name)(x)
        return x

    def backward(self, grad_output, input_grad=True):
        g = grad_output
        for name in reversed(self._order[1:]):
            g = getattr(self, name).backward(g)
        return self.pool.backward(g, input_grad=input_grad)


class GoogLeNet(nn.Module):
    """torchvision.models.GoogLeNet (transform_input optional, off by default as for weights=None)."""

    _stages = ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
               "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
               "inception5a", "inception5b", "avgpool", "flatten", "dropout", "fc")

    def __init__(self, num_classes=1000, aux_logits=False, transform_input=False, dropout=0.2,
                 dropout_aux=0.7, in_channels=3):
        super().__init__()
        self.aux_logits = bool(aux_logits)
        self.transform_input = bool(transform_input)
        if self.transform_input and in_channels != 3:
            raise ValueError("transform_input needs 3 input channels")
        self.conv1 = BasicConv2d(in_channels, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        if self.aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = None
            self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        self._init_weights()

    def _init_weights(self):
        # torchvision: conv and linear weights trunc_normal(0, 0.01, -2, 2), BN 1 / 0
        from ..nn import init
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                init.trunc_normal_(m.weight, mean=0.0, std=0.01, low=-2, high=2)
                if m.bias is not None:
                    init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)

    def _use_aux(self):
        return self.aux_logits and self.training

    def forward(self, x):
        x = np.asarray(x)
        if self.transform_input:
            x = np.concatenate([
                x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5], axis=1).astype(x.dtype, copy=False)
        aux1 = aux2 = None
        use_aux = self._use_aux()
        for name in self._stages:
            x = getattr(self, name)(x)
            if use_aux and name == "inception4a":
                aux1 = self.aux1(x)
            elif use_aux and name == "inception4d":
                aux2 = self.aux2(x)
        self.save_for_backward(use_aux)
        if use_aux:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x

    def backward(self, grad_output, input_grad=True):
        use_aux = self.saved()
        g_aux2 = g_aux1 = None
        if isinstance(grad_output, tuple):
            grad_output, g_aux2, g_aux1 = (tuple(grad_output) + (None, None))[:3]
        g = grad_output
        stages = self._stages
        for i in range(len(stages) - 1, -1, -1):
            name = stages[i]
            if use_aux and name == "inception4d":
                g = self._aux_backward(self.aux2, g_aux2, g)
            elif use_aux and name == "inception4a":
                g = self._aux_backward(self.aux1, g_aux1, g)
            g = getattr(self, name).backward(g, input_grad=input_grad if i == 0 else True)
        if g is not None and self.transform_input:
            scale = np.array([0.229, 0.224, 0.225], dtype=g.dtype).reshape(1, 3, 1, 1) / 0.5
            g = g * scale
        return g

    @staticmethod
    def _aux_backward(aux, g_aux, g):
        # the aux head's saved values must be popped even when its loss has no gradient
        if g_aux is None:
            aux.clear_cache()
            return g
        return g + aux.backward(np.asarray(g_aux))


def googlenet(num_classes=1000, aux_logits=False, **kwargs):
    """GoogLeNet (Inception v1), torchvision's keys and shapes (6,624,904 parameters without aux
    classifiers)."""
    return GoogLeNet(num_classes=num_classes, aux_logits=aux_logits, **kwargs)
