"""Output arrays from the kernels' block cache (csrc/runtime/alloc.c), and its limit.

Large outputs (FC_CACHE_MIN_BYTES = 256 KiB and up) are NumPy arrays over a cached block rather
than np.empty: when a layer's output dies its pages stay mapped for the next layer, instead of
going back to the kernel and faulting in again (EfficientNet-B0 at batch 8: 95-109 -> 74-90 ms on
the 2-core Zen 4 VM; README, Memory). The arrays are ordinary writable, aligned, C-contiguous ndarrays; their .base is the block."""
import math
import os

import numpy as np

from . import _core

_MIN = _core.CACHE_MIN_BYTES


def empty(shape, dtype):
    """np.empty(shape, dtype), from the block cache when it is large."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes < _MIN:
        return np.empty(shape, dtype)
    return np.frombuffer(_core.Block(nbytes), dtype, count).reshape(shape)


def empty_like(a):
    return empty(a.shape, a.dtype)


def set_cache_limit(megabytes):
    """Keep at most `megabytes` MiB of freed large blocks for reuse (0 turns the cache off and
    returns what it holds to the system). The default is 512, or FASTCONV_CACHE_MB at import."""
    if isinstance(megabytes, bool) or not isinstance(megabytes, (int, float)) or not 0 <= megabytes < 2**40:
        raise ValueError(f"megabytes must be a number >= 0, got {megabytes!r}")
    _core.cache_set_limit(int(megabytes * 2**20))


def empty_cache():
    """Return every cached block to the system, keeping the limit."""
    limit = _core.cache_stats()["limit_bytes"]
    _core.cache_set_limit(0)
    _core.cache_set_limit(limit)


def cache_info():
    """dict: limit_bytes, cached_bytes, cached_blocks, and the hits and misses of large requests
    since import (kernel workspaces and output arrays both count)."""
    return _core.cache_stats()


_env = os.environ.get("FASTCONV_CACHE_MB", "")
if _env.strip():
    try:
        set_cache_limit(float(_env))
    except ValueError:
        raise ImportError(f"FASTCONV_CACHE_MB={_env!r} is not a number of MiB >= 0") from None
