"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) for 1x32x32 input.

C1: 6 5x5 convolutions -> 6x28x28, S2: 2x2 subsampling -> 6x14x14, C3: 16 5x5 convolutions ->
16x10x10, S4: 2x2 subsampling -> 16x5x5, C5: 120 units, F6: 84 units, output: 10 classes;
61,706 parameters. The default is the modern variant (ReLU, max-pooling); ``classic=True`` gives
the original's tanh and average pooling (C3 fully connected to S2, not the paper's sparse table).
"""
from collections import OrderedDict

from .. import nn

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Sequential):
    """``features`` (C1..S4), ``flatten``, ``classifier`` (C5, F6, output)."""

    def __init__(self, num_classes=10, in_channels=1, classic=False):
        act = nn.Tanh if classic else nn.ReLU
        pool = (lambda: nn.AvgPool2d(2, 2)) if classic else (lambda: nn.MaxPool2d(2, 2))
        features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5), act(), pool(),
            nn.Conv2d(6, 16, 5), act(), pool(),
        )
        classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), act(),
            nn.Linear(120, 84), act(),
            nn.Linear(84, num_classes),
        )
        super().__init__(OrderedDict(features=features, flatten=nn.Flatten(), classifier=classifier))
        self.classic = bool(classic)


def lenet5(num_classes=10, in_channels=1, classic=False):
    """LeNet-5 for (N, in_channels, 32, 32) input; classic=True: tanh and average pooling."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, classic=classic)
