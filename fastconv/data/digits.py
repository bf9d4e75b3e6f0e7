"""The UCI handwritten digits, bundled with the package (see DIGITS_LICENSE.txt beside this file)."""
import gzip
from collections import namedtuple
from importlib import resources

import numpy as np

__all__ = ["load_digits", "resize_bilinear", "Digits"]

Digits = namedtuple("Digits", ["x_train", "y_train", "x_test", "y_test"])
Digits.__doc__ = """Train/test split: NCHW float32 images in [0, 1] and int64 labels 0..9."""


def _read_bundled():
    with resources.files(__package__).joinpath("digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :64], table[:, 64]


def _resize_matrix(n_in, n_out):
    """(n_out, n_in) weights of 1-D linear interpolation, half-pixel centres (align_corners=False),
    the source index clamped at 0 as torch.nn.functional.interpolate does."""
    src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def resize_bilinear(x, size):
    """Resize the last two axes of `x` to `size` (int or (h, w)) by bilinear interpolation with
    torch.nn.functional.interpolate(mode="bilinear", align_corners=False)'s sampling grid."""
    x = np.asarray(x)
    h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if min(h, w) < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    rh = _resize_matrix(x.shape[-2], h)
    rw = _resize_matrix(x.shape[-1], w)
    out = np.einsum("hi,...ij,wj->...hw", rh, x.astype(np.float64), rw)
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)


def load_digits(size=8, test_size=0.2, seed=0, dtype=np.float32):
    """The 1,797 UCI handwritten digits as ``Digits(x_train, y_train, x_test, y_test)``.

    Images are NCHW, one channel, pixel counts 0..16 scaled to [0, 1]; ``size`` (int or (h, w))
    resizes them bilinearly from 8x8 (``size=32`` for LeNet-5). The split is stratified: each
    class contributes ``test_size`` of its images to the test set, chosen by ``seed``, so the same
    seed gives the same split on every machine."""
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    pixels, labels = _read_bundled()
    images = (pixels.reshape(-1, 1, 8, 8) / 16.0)
    if size not in (8, (8, 8)):
        images = resize_bilinear(images, size)
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        test_idx.append(members[:int(round(len(members) * float(test_size)))])
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.concatenate(test_idx)] = True
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    train, test = rng.permutation(train), rng.permutation(test)
    return Digits(images[train].astype(dtype), labels[train].copy(),
                  images[test].astype(dtype), labels[test].copy())
