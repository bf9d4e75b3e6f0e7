"""Thread count, read at every kernel call.

The count is OpenMP's for the calling thread (omp_get_max_threads), so OMP_NUM_THREADS and
threadpoolctl's limits apply. set_num_threads() is process-wide: each Python thread adopts a
new global value the first time it asks after the change. threads(n) is local to the calling
thread and restores the previous count on exit."""
import contextlib
import threading

from . import _core
from ._validate import check_positive_int

MAX_THREADS = 4096     # far above any machine; keeps C ints and thread creation sane
_lock = threading.Lock()
_global = None         # last set_num_threads() value
_generation = 0        # bumped by set_num_threads(); each thread remembers the one it applied
_local = threading.local()


def get_num_threads():
    """The number of threads the next kernel call on this thread will use."""
    if _global is not None and getattr(_local, "generation", -1) != _generation:
        with _lock:
            _core.omp_set_num_threads(_global)
            _local.generation = _generation
    return _core.omp_max_threads()


def set_num_threads(n):
    """Use n threads in every kernel, on every Python thread, from now on."""
    global _global, _generation
    n = check_positive_int(n, "n", MAX_THREADS)
    with _lock:
        _global = n
        _generation += 1
    get_num_threads()


@contextlib.contextmanager
def threads(n):
    """Use n threads for kernels called from this thread inside the block."""
    n = check_positive_int(n, "n", MAX_THREADS)
    previous = get_num_threads()
    _core.omp_set_num_threads(n)
    try:
        yield
    finally:
        _core.omp_set_num_threads(previous)
