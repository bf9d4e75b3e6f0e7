"""EfficientNet-B0 (Tan & Le 2019), torchvision's structure.

Parameter count 5,288,548 and state-dict keys and shapes identical to
``torchvision.models.efficientnet_b0`` (``features.0.0.weight``, ``features.1.0.block.0.0.weight``,
``features.1.0.block.1.fc1.weight``, ..., ``features.8.1.running_var``, ``classifier.1.weight``).
MBConv blocks: [1x1 expand conv-BN-SiLU,] depthwise conv-BN-SiLU, squeeze-excitation (SiLU,
Sigmoid gate), 1x1 projection conv-BN, plus the input when the shapes agree. Stochastic depth
(torchvision's training-time regulariser) is not applied: forward is the same in train and eval.
"""
import numpy as np

from .. import nn
from .._norm import plane_scale
from .mobilenet import _make_divisible, conv_norm_act

__all__ = ["EfficientNet", "MBConv", "SqueezeExcitation", "efficientnet_b0"]


def _unbroadcast_hw(grad, shape):
    return grad.sum(axis=(2, 3), keepdims=True) if grad.shape != tuple(shape) else grad


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: x * sigmoid(fc2(act(fc1(avgpool(x))))), fc1/fc2 1x1
    convolutions with bias."""

    def __init__(self, input_channels, squeeze_channels, activation=nn.SiLU, scale_activation=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(input_channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, input_channels, 1)
        self.activation = activation()
        self.scale_activation = scale_activation()

    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        self.save_for_backward(x, s)
        return plane_scale(x, s)

    def backward(self, grad_output, input_grad=True):
        x, s = self.saved()
        g = np.asarray(grad_output)
        gs = np.ascontiguousarray(_unbroadcast_hw(g * x, s.shape))
        gs = self.scale_activation.backward(gs)
        gs = self.fc2.backward(gs)
        gs = self.activation.backward(gs)
        gs = self.fc1.backward(gs)
        if not input_grad:
            self.avgpool.backward(gs, input_grad=False)
            return None
        return plane_scale(g, s) + self.avgpool.backward(gs)


class MBConv(nn.Module):
    """torchvision's MBConv (keys ``block.0.0.weight``, ...)."""

    def __init__(self, expand_ratio, kernel, stride, input_channels, out_channels, bn_eps=1e-5,
                 stochastic_depth_prob=0.0):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"illegal stride value {stride}")
        self.use_res_connect = stride == 1 and input_channels == out_channels
        expanded = _make_divisible(input_channels * expand_ratio, 8)
        layers = []
        if expanded != input_channels:
            layers.append(conv_norm_act(input_channels, expanded, kernel_size=1, activation=nn.SiLU, bn_eps=bn_eps))
        layers.append(conv_norm_act(expanded, expanded, kernel_size=kernel, stride=stride, groups=expanded,
                                    activation=nn.SiLU, bn_eps=bn_eps))
        layers.append(SqueezeExcitation(expanded, max(1, input_channels // 4)))
        layers.append(conv_norm_act(expanded, out_channels, kernel_size=1, activation=None, bn_eps=bn_eps))
        self.block = nn.Sequential(*layers)
        self.stochastic_depth = nn.StochasticDepth(stochastic_depth_prob, "row")
        self.out_channels = out_channels

    def forward(self, x):
        y = self.block(x)
        return self.stochastic_depth(y) + x if self.use_res_connect else y

    def backward(self, grad_output, input_grad=True):
        g = self.stochastic_depth.backward(grad_output) if self.use_res_connect else grad_output
        g = self.block.backward(g, input_grad=input_grad)
        if self.use_res_connect and input_grad:
            g = g + grad_output
        return g


# expand_ratio, kernel, stride, input_channels, out_channels, num_layers
_B0 = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
       (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


class EfficientNet(nn.Module):
    """torchvision.models.EfficientNet (v1 blocks): features (stem, 7 stages of MBConv, 1x1 head
    conv), global average pool, classifier = Dropout + Linear."""

    def __init__(self, setting=_B0, num_classes=1000, dropout=0.2, last_channel=None, in_channels=3,
                 bn_eps=1e-5, stochastic_depth_prob=0.2):
        super().__init__()
        first = setting[0][3]
        features = [conv_norm_act(in_channels, first, kernel_size=3, stride=2, activation=nn.SiLU, bn_eps=bn_eps)]
        total_blocks, block_id = sum(row[-1] for row in setting), 0
        for expand, k, s, cin, cout, n in setting:
            stage = []
            for i in range(n):
                sd_prob = stochastic_depth_prob * block_id / total_blocks
                stage.append(MBConv(expand, k, s if i == 0 else 1, cin if i == 0 else cout, cout, bn_eps=bn_eps,
                                    stochastic_depth_prob=sd_prob))
                block_id += 1
            features.append(nn.Sequential(*stage))
        last_in = setting[-1][4]
        last_channel = 4 * last_in if last_channel is None else last_channel
        features.append(conv_norm_act(last_in, last_channel, kernel_size=1, activation=nn.SiLU, bn_eps=bn_eps))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channel, num_classes))
        # torchvision: convs kaiming_normal fan_out, BN 1/0, Linear uniform(+-1/sqrt(num_classes))
        from .mobilenet import _init_weights
        _init_weights(self, linear_std=None)

    def forward(self, x):
        return self.classifier(self.flatten(self.avgpool(self.features(x))))

    def backward(self, grad_output, input_grad=True):
        g = self.classifier.backward(grad_output)
        g = self.flatten.backward(g)
        g = self.avgpool.backward(g)
        return self.features.backward(g, input_grad=input_grad)


def efficientnet_b0(num_classes=1000, **kwargs):
    """EfficientNet-B0, torchvision's keys and shapes (5,288,548 parameters)."""
    return EfficientNet(_B0, num_classes=num_classes, **kwargs)
