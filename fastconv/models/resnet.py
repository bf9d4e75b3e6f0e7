"""ResNet (He, Zhang, Ren and Sun, 2015) in torchvision's layout (v1.5: the stride of a bottleneck
block is on its 3x3 convolution): resnet18/34 of BasicBlocks, resnet50/101/152 of Bottlenecks.

State-dict keys and shapes are torchvision's (``conv1.weight``, ``bn1.*``,
``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``fc.weight``, ...), so its weights
load directly. resnet18 has 11,689,512 parameters and resnet50 25,557,032 at 1000 classes. The
blocks are Modules with their own forward and backward: the input fans out to the residual branch
and the shortcut (identity or ``downsample``), their sum goes through the last ReLU, and backward
adds the two paths' gradients. Adaptive average pooling lets any input of at least 32x32 (any
size giving a 1x1 last stage or more) through. Initialisation as torchvision's: convolutions
kaiming-normal (fan_out, relu), BatchNorm weight 1 bias 0; ``zero_init_residual=True`` zeroes each
block's last BatchNorm weight."""
from collections import OrderedDict

from .. import nn
from ..nn import init

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class _Block(nn.Module):
    """Shared forward/backward: out = relu(branch(x) + shortcut(x)), the branch being the
    (conv_i, bn_i) pairs with the shared ``relu`` between them."""

    def _pairs(self):
        return [(getattr(self, f"conv{i}"), getattr(self, f"bn{i}")) for i in range(1, self._n + 1)]

    def forward(self, x):
        out = x
        pairs = self._pairs()
        for i, (conv, bn) in enumerate(pairs):
            act = self.relu if i < len(pairs) - 1 else None
            fused = None if self.training else nn.conv_bn_act(conv, bn, act, out)
            if fused is not None:
                out = fused
                continue
            out = bn(conv(out))
            if act is not None:
                out = act(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)

    def backward(self, grad_output, input_grad=True):
        g = self.relu.backward(grad_output)
        if self.downsample is None:
            g_short = g if input_grad else None
        else:
            g_short = self.downsample.backward(g, input_grad=input_grad)
        pairs = self._pairs()
        gb = g
        for i in range(len(pairs) - 1, -1, -1):
            conv, bn = pairs[i]
            if i < len(pairs) - 1:
                gb = self.relu.backward(gb)
            gb = bn.backward(gb)
            gb = conv.backward(gb, input_grad=input_grad if i == 0 else True)
        return gb + g_short if input_grad else None


class BasicBlock(_Block):
    """Two 3x3 convolutions (the first with the stride); expansion 1."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1):
        super().__init__()
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("dilation > 1 not supported in BasicBlock")
        self._n = 2
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        if downsample is None:
            self.register_module("downsample", None)
        else:
            self.downsample = downsample
        self.stride = stride


class Bottleneck(_Block):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand (x4)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self._n = 3
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        if downsample is None:
            self.register_module("downsample", None)
        else:
            self.downsample = downsample
        self.stride = stride


class ResNet(nn.Sequential):
    """Stem (conv1, bn1, relu, maxpool), layer1..layer4, avgpool, flatten, fc."""

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
                 in_channels=3):
        self.inplanes = 64
        self.groups = groups
        self.base_width = width_per_group
        stages = OrderedDict(
            conv1=nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False),
            bn1=nn.BatchNorm2d(64),
            relu=nn.ReLU(),
            maxpool=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stages[f"layer{i + 1}"] = self._make_layer(block, planes, n, stride=1 if i == 0 else 2)
        stages["avgpool"] = nn.AdaptiveAvgPool2d((1, 1))
        stages["flatten"] = nn.Flatten()
        stages["fc"] = nn.Linear(512 * block.expansion, num_classes)
        super().__init__(stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                init.ones_(m.weight)
                init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width))
        return nn.Sequential(*layers)


def resnet18(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-18: 11,689,512 parameters at 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet34(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-34: 21,797,672 parameters."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet50(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-50: 25,557,032 parameters."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet101(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-101: 44,549,160 parameters."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet152(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-152: 60,192,808 parameters."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)
