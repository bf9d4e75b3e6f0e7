"""fastconv: a CPU convolution engine for Python."""
import os

from ._version import __version__

# libgomp (read when _core loads it, so set before the import): a thread that reaches a barrier
# spins 300,000 rounds by default before it sleeps. On a machine whose cores are also busy with
# other processes that spinning holds the core a descheduled worker needs, and every parallel
# region waits a time slice: LeNet-5 training ran at 320 images/s instead of 3,000. 10,000 rounds
# keep the wake-up fast when the machine is quiet (4% slower there). Set it yourself to override.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

try:
    from . import _core
except ImportError as exc:  # the source folder, not an installed or built package
    raise ImportError(
        f"fastconv's compiled extension is missing ({exc}). You are importing the source tree at "
        f"{__path__[0]}: install it (pip install .) and run from another folder, or build in place "
        "with `python setup.py build_ext --inplace`."
    ) from exc
from ._threads import get_num_threads, set_num_threads, threads
from ._runtime import config, show_config, peak_gflops
from ._memory import cache_info, empty_cache, set_cache_limit
from .functional import matmul
from ._serialization import load, save
from .nn.init import manual_seed
from .summary import summary

__all__ = [
    "__version__", "config", "show_config", "peak_gflops",
    "get_num_threads", "set_num_threads", "threads", "matmul", "save", "load", "manual_seed", "summary",
    "set_cache_limit", "empty_cache", "cache_info",
]
