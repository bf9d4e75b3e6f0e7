"""fastconv: a CPU convolution engine for Python."""
from ._version import __version__
from ._threads import get_num_threads, set_num_threads, threads
from ._runtime import config, show_config, peak_gflops
from .functional import matmul

__all__ = [
    "__version__", "config", "show_config", "peak_gflops",
    "get_num_threads", "set_num_threads", "threads", "matmul",
]
