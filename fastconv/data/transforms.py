"""Batch augmentations for NCHW arrays: each is ``t(batch, rng) -> batch`` and draws every
sample's parameters independently from ``rng`` (a numpy Generator, the DataLoader's)."""
import numbers

import numpy as np

__all__ = ["Compose", "RandomCrop", "RandomShift", "RandomHorizontalFlip"]


def _check_batch(x):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {x.shape}")
    return x


def _nonneg_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng):
        for t in self.transforms:
            x = t(x, rng)
        return x

    def __repr__(self):
        return f"Compose({self.transforms!r})"


class RandomCrop:
    """torchvision's RandomCrop on a batch: zero-pad each side by ``padding``, then take a
    ``size`` window (int or (h, w); the input's size when None) at a random offset per sample."""

    def __init__(self, size=None, padding=0):
        if size is not None:
            size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
            for s in size:
                if _nonneg_int(s, "size") == 0:
                    raise ValueError(f"size must be positive, got {size!r}")
        self.size = size
        self.padding = _nonneg_int(padding, "padding")

    def __call__(self, x, rng):
        x = _check_batch(x)
        p = self.padding
        h, w = self.size or x.shape[2:]
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        ph, pw = padded.shape[2:]
        if h > ph or w > pw:
            raise ValueError(f"crop size {(h, w)} is larger than the padded input {(ph, pw)}")
        top = rng.integers(0, ph - h + 1, size=len(x))
        left = rng.integers(0, pw - w + 1, size=len(x))
        out = np.empty(x.shape[:2] + (h, w), dtype=x.dtype)
        for i, (t, l) in enumerate(zip(top, left)):
            out[i] = padded[i, :, t:t + h, l:l + w]
        return out

    def __repr__(self):
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomShift(RandomCrop):
    """Translate each image by up to ``max_shift`` pixels in each direction, filling with zeros
    (RandomCrop to the input's own size with that padding)."""

    def __init__(self, max_shift=2):
        super().__init__(None, padding=max_shift)

    def __repr__(self):
        return f"RandomShift(max_shift={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (not for digits or text)."""

    def __init__(self, p=0.5):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, x, rng):
        x = _check_batch(x)
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
