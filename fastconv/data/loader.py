"""Mini-batches over in-memory arrays."""
import math
import numbers

import numpy as np

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``(x[batch], y[batch])`` (or ``x[batch]`` when ``y`` is None).

    ``shuffle`` draws a new order every epoch from a generator seeded once with ``seed``, so a
    given seed replays the same sequence of epochs; ``drop_last`` drops the short final batch;
    ``transform(batch, rng)`` (see fastconv.data.transforms) augments each x batch with the
    loader's generator. Batches are fresh arrays (fancy-indexed copies), never views of ``x``."""

    def __init__(self, x, y=None, batch_size=32, shuffle=False, drop_last=False, seed=None, transform=None):
        x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"x must have a leading sample axis, got a {x.ndim}-d array")
        if y is not None:
            y = np.asarray(y)
            if y.ndim < 1 or len(y) != len(x):
                raise ValueError(f"y has {len(y) if y.ndim else 'no'} samples, x has {len(x)}: they must match")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable(batch, rng), got {type(transform).__name__}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.x) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    @property
    def num_samples(self):
        """Samples one epoch yields (fewer than len(x) with drop_last)."""
        return len(self) * self.batch_size if self.drop_last else len(self.x)

    def __iter__(self):
        order = self.rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            xb = self.x[idx]
            if self.transform is not None:
                xb = self.transform(xb, self.rng)
            yield xb if self.y is None else (xb, self.y[idx])

    def __repr__(self):
        return (f"DataLoader(samples={len(self.x)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, transform={self.transform!r})")
