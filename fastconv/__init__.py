"""fastconv: a CPU convolution engine for Python."""
from ._version import __version__

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
from .functional import matmul
from ._serialization import load, save
from .nn.init import manual_seed
from .summary import summary

__all__ = [
    "__version__", "config", "show_config", "peak_gflops",
    "get_num_threads", "set_num_threads", "threads", "matmul", "save", "load", "manual_seed", "summary",
]
