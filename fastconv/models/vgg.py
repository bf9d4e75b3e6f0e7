"""VGG (Simonyan and Zisserman, 2014): configurations A, B, D, E = vgg11, vgg13, vgg16, vgg19, with
or without batch normalisation, in torchvision's layout (keys ``features.N.*``,
``classifier.N.*``; vgg16 has 138,357,544 parameters at 1000 classes). Adaptive average pooling to
7x7 lets any input of at least 32x32 through. Initialisation as torchvision's: convolutions
kaiming-normal (fan_out, relu) with zero bias, BatchNorm weight 1 bias 0, Linear N(0, 0.01) with zero
bias (``init_weights=False`` keeps the layers' default initialisation)."""
from collections import OrderedDict

from .. import nn
from ..nn import init

__all__ = ["VGG", "make_layers", "cfgs", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
           "vgg19", "vgg19_bn"]

cfgs = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg, batch_norm=False, in_channels=3):
    """The convolutional part: 3x3 convolutions (padding 1) [+ BatchNorm] + ReLU, "M" a 2x2 max-pool."""
    layers = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU())
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Sequential):
    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        super().__init__(OrderedDict(features=features, avgpool=nn.AdaptiveAvgPool2d((7, 7)),
                                     flatten=nn.Flatten(), classifier=classifier))
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    init.ones_(m.weight)
                    init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    init.normal_(m.weight, 0.0, 0.01)
                    init.zeros_(m.bias)


def _vgg(cfg, batch_norm, num_classes, in_channels, **kwargs):
    return VGG(make_layers(cfgs[cfg], batch_norm=batch_norm, in_channels=in_channels), num_classes=num_classes,
               **kwargs)


def vgg11(num_classes=1000, in_channels=3, **kwargs):
    """VGG 11-layer (configuration A): 132,863,336 parameters at 1000 classes."""
    return _vgg("A", False, num_classes, in_channels, **kwargs)


def vgg11_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG 11-layer with batch normalisation: 132,868,840 parameters."""
    return _vgg("A", True, num_classes, in_channels, **kwargs)


def vgg13(num_classes=1000, in_channels=3, **kwargs):
    """VGG 13-layer (configuration B): 133,047,848 parameters."""
    return _vgg("B", False, num_classes, in_channels, **kwargs)


def vgg13_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG 13-layer with batch normalisation: 133,053,736 parameters."""
    return _vgg("B", True, num_classes, in_channels, **kwargs)


def vgg16(num_classes=1000, in_channels=3, **kwargs):
    """VGG 16-layer (configuration D): 138,357,544 parameters."""
    return _vgg("D", False, num_classes, in_channels, **kwargs)


def vgg16_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG 16-layer with batch normalisation: 138,365,992 parameters."""
    return _vgg("D", True, num_classes, in_channels, **kwargs)


def vgg19(num_classes=1000, in_channels=3, **kwargs):
    """VGG 19-layer (configuration E): 143,667,240 parameters."""
    return _vgg("E", False, num_classes, in_channels, **kwargs)


def vgg19_bn(num_classes=1000, in_channels=3, **kwargs):
    """VGG 19-layer with batch normalisation: 143,678,248 parameters."""
    return _vgg("E", True, num_classes, in_channels, **kwargs)
