"""MobileNet v1 (Howard et al. 2017) and MobileNet v2 (Sandler et al. 2018).

``mobilenet_v2`` has torchvision's structure: parameter count (3,504,872 at width 1.0), and
state-dict keys and shapes identical to ``torchvision.models.mobilenet_v2`` (``features.0.0.weight``,
``features.1.conv.0.0.weight``, ..., ``classifier.1.weight``), so torchvision's weights load with
``model.load_state_dict({k: v.numpy() for k, v in tv.state_dict().items()})``.

``mobilenet_v1`` has no torchvision counterpart: the paper's 28-layer network (conv + BN + ReLU,
13 depthwise-separable blocks, global average pool, fully connected), 4,231,976 parameters at
width 1.0 (Keras' trainable count).
"""
import numpy as np

from .. import nn
from ..nn import init

__all__ = ["MobileNetV1", "MobileNetV2", "InvertedResidual", "mobilenet_v1", "mobilenet_v2"]


def _make_divisible(v, divisor=8, min_value=None):
    """torchvision's rounding of channel counts: to a multiple of divisor, never below 90% of v."""
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_norm_act(in_channels, out_channels, kernel_size=3, stride=1, groups=1, activation=nn.ReLU6,
                  bn_eps=1e-5):
    """torchvision's Conv2dNormActivation: Sequential(conv (no bias), BatchNorm2d[, activation])
    with "same"-style padding (kernel_size - 1) // 2; keys ``0.weight``, ``1.weight``, ..."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                        groups=groups, bias=False),
              nn.BatchNorm2d(out_channels, eps=bn_eps)]
    if activation is not None:
        layers.append(activation())
    return nn.Sequential(*layers)


def _init_weights(model, linear_std=0.01):
    """torchvision's initialisation of the mobile networks: convolutions kaiming_normal (fan_out),
    BN weight 1 / bias 0, Linear normal(0, linear_std) (None: uniform(+-1/sqrt(out))), biases 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            init.ones_(m.weight)
            init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is None:
                r = 1.0 / np.sqrt(m.weight.shape[0])
                init.uniform_(m.weight, -r, r)
            else:
                init.normal_(m.weight, 0.0, linear_std)
            if m.bias is not None:
                init.zeros_(m.bias)


class _Classifier(nn.Module):
    """Shared head: features -> global average pool -> flatten -> classifier (Dropout, Linear)."""

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = self.flatten(x)
        return self.classifier(x)

    def backward(self, grad_output, input_grad=True):
        g = self.classifier.backward(grad_output)
        g = self.flatten.backward(g)
        g = self.avgpool.backward(g)
        return self.features.backward(g, input_grad=input_grad)


class InvertedResidual(nn.Module):
    """MobileNetV2's block (torchvision's keys): ``conv`` = [1x1 expand conv-BN-ReLU6,] 3x3
    depthwise conv-BN-ReLU6, 1x1 linear projection conv, BN; plus the input when stride 1 and the
    channel counts agree."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2, got {stride}")
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(conv_norm_act(inp, hidden, kernel_size=1))
        layers += [conv_norm_act(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.out_channels = oup

    def forward(self, x):
        y = self.conv(x)
        return x + y if self.use_res_connect else y

    def backward(self, grad_output, input_grad=True):
        g = self.conv.backward(grad_output, input_grad=input_grad)
        if self.use_res_connect and input_grad:
            g = g + grad_output
        return g


class MobileNetV2(_Classifier):
    """torchvision.models.MobileNetV2 (features, classifier = Dropout + Linear)."""

    def __init__(self, num_classes=1000, width_mult=1.0, inverted_residual_setting=None, round_nearest=8,
                 dropout=0.2, in_channels=3):
        super().__init__()
        if inverted_residual_setting is None:
            inverted_residual_setting = [
                # t, c, n, s
                [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
            ]
        input_channel = _make_divisible(32 * width_mult, round_nearest)
        self.last_channel = _make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features = [conv_norm_act(in_channels, input_channel, stride=2)]
        for t, c, n, s in inverted_residual_setting:
            output_channel = _make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                features.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
        features.append(conv_norm_act(input_channel, self.last_channel, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.last_channel, num_classes))
        _init_weights(self, linear_std=0.01)


class MobileNetV1(_Classifier):
    """MobileNet v1: a strided 3x3 conv-BN-ReLU, then 13 depthwise-separable blocks (3x3
    depthwise conv-BN-ReLU, 1x1 pointwise conv-BN-ReLU), global average pool, Linear.
    Channels scale by ``width_mult`` (the paper's alpha). Keys: ``features.0.*`` (stem),
    ``features.i.{0,1,3,4}.*`` (block i: depthwise conv, BN, pointwise conv, BN),
    ``classifier.1.*``."""

    # (output channels, stride) of the 13 depthwise-separable blocks
    cfg = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.001, in_channels=3):
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")

        def ch(c):
            return max(1, int(c * width_mult))

        c_in = ch(32)
        features = [conv_norm_act(in_channels, c_in, stride=2, activation=nn.ReLU)]
        for c, s in self.cfg:
            c_out = ch(c)
            features.append(nn.Sequential(
                nn.Conv2d(c_in, c_in, 3, stride=s, padding=1, groups=c_in, bias=False),
                nn.BatchNorm2d(c_in), nn.ReLU(),
                nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()))
            c_in = c_out
        self.last_channel = c_in
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, num_classes))
        _init_weights(self, linear_std=0.01)


def mobilenet_v1(num_classes=1000, width_mult=1.0, **kwargs):
    """MobileNet v1 (4,231,976 parameters at width_mult=1.0 and 1000 classes)."""
    return MobileNetV1(num_classes=num_classes, width_mult=width_mult, **kwargs)


def mobilenet_v2(num_classes=1000, width_mult=1.0, **kwargs):
    """MobileNet v2, torchvision's keys and shapes (3,504,872 parameters at width_mult=1.0)."""
    return MobileNetV2(num_classes=num_classes, width_mult=width_mult, **kwargs)
