"""ISA selection (FASTCONV_ISA), configuration report and the peak-FLOPS probe."""
import contextlib
import os
import threading

from . import _core
from ._threads import MAX_THREADS, get_num_threads
from ._validate import check_positive_int
from ._version import __version__

KNOWN_ISAS = ("avx512", "avx2", "generic")


def select_isa(requested, available):
    """The ISA to use for a FASTCONV_ISA value (None or "" = the best available)."""
    if requested is None or requested.strip() == "":
        return available[0]
    name = requested.strip().lower()
    if name not in KNOWN_ISAS:
        raise ImportError(
            f"FASTCONV_ISA={requested!r} is not a known ISA: expected one of {', '.join(KNOWN_ISAS)}"
        )
    if name not in available:
        raise ImportError(
            f"FASTCONV_ISA={requested!r} is not supported by this CPU, which supports: {', '.join(available)}"
        )
    return name


_core.set_isa(select_isa(os.environ.get("FASTCONV_ISA"), _core.supported_isas()))
_isa_lock = threading.Lock()


@contextlib.contextmanager
def use_isa(name):
    """Run the block on another ISA's kernels (for tests and benchmarks; not thread-safe
    against kernels running concurrently on other threads)."""
    if name not in _core.supported_isas():
        raise ValueError(f"isa={name!r} is not supported by this CPU: expected one of {_core.supported_isas()}")
    with _isa_lock:
        previous = _core.get_isa()
        _core.set_isa(name)
        try:
            yield
        finally:
            _core.set_isa(previous)


def config():
    """The build and runtime configuration as a dict."""
    return {
        "version": __version__,
        "isa": _core.get_isa(),
        "isas_available": _core.supported_isas(),
        "openmp": _core.openmp_enabled(),
        "num_threads": get_num_threads(),
        "compiler": _core.compiler(),
        "gemm_tile_f32": "x".join(map(str, _core.gemm_tile(4))),
        "gemm_tile_f64": "x".join(map(str, _core.gemm_tile(8))),
    }


def show_config():
    """Print config() readably."""
    cfg = config()
    width = max(map(len, cfg))
    for key, value in cfg.items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:<{width}} : {value}")


def peak_gflops(threads=None, seconds=0.25):
    """Measured fp32 FMA throughput (GFLOP/s) of the selected ISA on `threads` threads
    (default: get_num_threads()), from a register-only FMA loop running about `seconds`."""
    threads = get_num_threads() if threads is None else check_positive_int(threads, "threads", MAX_THREADS)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 60:
        raise ValueError(f"seconds must be a number in (0, 60], got {seconds!r}")
    return _core.peak_gflops(threads, float(seconds))
