"""AlexNet (Krizhevsky, Sutskever and Hinton, 2012), in torchvision's single-tower layout
(the "one weird trick" variant, 64-192-384-256-256 channels): 61,100,840 parameters at 1000 classes,
state-dict keys ``features.N.*`` and ``classifier.N.*`` as torchvision's. Adaptive average pooling
to 6x6 lets any input of at least 63x63 through."""
from collections import OrderedDict

from .. import nn

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Sequential):
    def __init__(self, num_classes=1000, dropout=0.5, in_channels=3):
        features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(p=dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )
        super().__init__(OrderedDict(features=features, avgpool=nn.AdaptiveAvgPool2d((6, 6)),
                                     flatten=nn.Flatten(), classifier=classifier))


def alexnet(num_classes=1000, dropout=0.5, in_channels=3):
    """torchvision's AlexNet (61,100,840 parameters at 1000 classes)."""
    return AlexNet(num_classes=num_classes, dropout=dropout, in_channels=in_channels)
