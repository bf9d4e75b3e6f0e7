"""fastconv.data: the bundled UCI digits, a mini-batch loader and batch augmentations."""
from .digits import Digits, load_digits, resize_bilinear
from .loader import DataLoader
from .transforms import Compose, RandomCrop, RandomHorizontalFlip, RandomShift

__all__ = ["Digits", "load_digits", "resize_bilinear", "DataLoader",
           "Compose", "RandomCrop", "RandomHorizontalFlip", "RandomShift"]
