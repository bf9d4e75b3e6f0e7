"""fastconv.nn: the layer API (PyTorch's names and conventions, on NumPy arrays).

    import fastconv.nn as nn
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(864, 10))
    logits = model(x)                          # train mode: keeps what backward needs
    grad_x = model.backward(grad_logits)       # adds to every parameter's .grad

Seeding: ``fastconv.manual_seed(s)`` (= ``fastconv.nn.init.manual_seed``), or ``rng=`` per layer.
"""
from . import init
from .containers import Concat, ModuleDict, ModuleList, Residual, Scale, Sequential
from .fusion import conv_bn_act, fusion
from .init import manual_seed
from .layers import (
    AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout,
    Flatten, Hardsigmoid, Hardswish, Identity, LeakyReLU, Linear, LocalResponseNorm, MaxPool2d, ReLU, ReLU6,
    Sigmoid, SiLU, Softmax, StochasticDepth, Tanh,
)
from .losses import CrossEntropyLoss, MSELoss
from .module import IncompatibleKeys, Module, Parameter

__all__ = [
    "init", "manual_seed", "fusion", "conv_bn_act", "Module", "Parameter", "IncompatibleKeys",
    "Sequential", "ModuleList", "ModuleDict", "Residual", "Concat", "Scale",
    "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm1d", "BatchNorm2d", "LocalResponseNorm",
    "ReLU", "ReLU6", "LeakyReLU", "SiLU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Softmax", "Dropout",
    "StochasticDepth",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "Flatten", "Identity",
    "CrossEntropyLoss", "MSELoss",
]
