"""The block cache behind large outputs and kernel workspaces (csrc/runtime/alloc.c,
fastconv/_memory.py): arrays are ordinary and independent, blocks are reused, the limit holds,
and concurrent use from several Python threads never hands one block to two owners."""
import threading

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _core, _memory

from test_runtime import run_python

MIB = 2**20
BIG = (4, 64, 32, 32)   # 1 MiB of float32, above the 256 KiB threshold


@pytest.fixture
def cache_limit():
    """Starts the test with an empty cache and restores the limit it changes."""
    before = fastconv.cache_info()["limit_bytes"]
    fastconv.empty_cache()
    yield
    _core.cache_set_limit(before)


@pytest.mark.parametrize("shape", [(3,), (5, 7), BIG, (2, 3, 300, 301)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_empty_gives_ordinary_writable_arrays(shape, dtype):
    a = _memory.empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    assert a.ctypes.data % 64 == 0 or a.nbytes < _core.CACHE_MIN_BYTES
    a[...] = np.arange(a.size).reshape(shape)
    assert np.array_equal(a.ravel(), np.arange(a.size, dtype=dtype))


def test_freed_block_is_reused_and_live_ones_are_not(cache_limit):
    fastconv.set_cache_limit(64)
    a = _memory.empty(BIG, np.float32)
    address = a.ctypes.data
    b = _memory.empty(BIG, np.float32)       # a is alive: b must be another block
    assert b.ctypes.data != address
    hits = fastconv.cache_info()["hits"]
    del a
    c = _memory.empty(BIG, np.float32)
    assert c.ctypes.data == address
    assert fastconv.cache_info()["hits"] == hits + 1


def test_a_block_more_than_twice_the_request_is_not_handed_out(cache_limit):
    fastconv.set_cache_limit(64)
    del_me = _memory.empty((4 * MIB,), np.uint8)
    del del_me
    misses = fastconv.cache_info()["misses"]
    small = _memory.empty((MIB,), np.uint8)
    assert fastconv.cache_info()["misses"] == misses + 1
    assert fastconv.cache_info()["cached_blocks"] == 1
    del small


def test_limit_bounds_what_is_kept(cache_limit):
    fastconv.set_cache_limit(3)
    arrays = [_memory.empty((MIB,), np.uint8) for _ in range(6)]
    del arrays
    info = fastconv.cache_info()
    assert info["limit_bytes"] == 3 * MIB
    assert 0 < info["cached_bytes"] <= 3 * MIB
    fastconv.set_cache_limit(0.5)             # smaller than one block: nothing is kept
    assert fastconv.cache_info()["cached_bytes"] == 0
    a = _memory.empty((MIB,), np.uint8)
    del a
    assert fastconv.cache_info()["cached_blocks"] == 0


def test_empty_cache_keeps_the_limit(cache_limit):
    fastconv.set_cache_limit(32)
    a = _memory.empty(BIG, np.float32)
    del a
    assert fastconv.cache_info()["cached_bytes"] > 0
    fastconv.empty_cache()
    info = fastconv.cache_info()
    assert info["cached_bytes"] == 0 and info["cached_blocks"] == 0 and info["limit_bytes"] == 32 * MIB


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), "64", True, None])
def test_set_cache_limit_rejects_bad_values(value):
    with pytest.raises(ValueError, match="megabytes"):
        fastconv.set_cache_limit(value)


def test_env_sets_the_limit(tmp_path):
    r = run_python("import fastconv; print(fastconv.cache_info()['limit_bytes'])", tmp_path, FASTCONV_CACHE_MB="16")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == 16 * MIB


@pytest.mark.parametrize("value", ["lots", "-3"])
def test_env_bogus_limit_fails_import(tmp_path, value):
    r = run_python("import fastconv", tmp_path, FASTCONV_CACHE_MB=value)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and f"FASTCONV_CACHE_MB={value!r}" in r.stderr


def test_outputs_kept_alive_are_never_overwritten(cache_limit):
    """Layer outputs come from the cache: outputs still referenced keep their values while many
    more are made and freed around them."""
    fastconv.set_cache_limit(16)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 40, 40)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    kept = [F.conv2d(x, w, padding=1) for _ in range(3)]
    assert kept[0].nbytes >= _core.CACHE_MIN_BYTES
    first = kept[0].copy()
    for i in range(20):
        F.max_pool2d(F.conv2d(x * (i + 1), w, padding=1), 2)
    for k in kept:
        assert np.array_equal(k, first)


def test_concurrent_threads_never_share_a_block(cache_limit):
    """Eight Python threads allocate, fill with their own pattern, check and free blocks of mixed
    sizes while kernels (whose workspaces use the same cache) run beside them."""
    fastconv.set_cache_limit(8)
    errors = []
    barrier = threading.Barrier(8)
    x = np.random.default_rng(1).standard_normal((2, 32, 48, 48)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((32, 32, 3, 3)).astype(np.float32)
    expected = F.conv2d(x, w, padding=1)

    def worker(i):
        rng = np.random.default_rng(i)
        try:
            barrier.wait(timeout=60)
            for rep in range(60):
                if i % 4 == 0:
                    if not np.array_equal(F.conv2d(x, w, padding=1), expected):
                        errors.append(f"thread {i}: conv2d differs in round {rep}")
                    continue
                held = [_memory.empty((int(rng.integers(MIB // 4, 2 * MIB)),), np.uint8) for _ in range(3)]
                for j, a in enumerate(held):
                    a.fill((i * 7 + j) % 256)
                for j, a in enumerate(held):
                    if not (a == (i * 7 + j) % 256).all():
                        errors.append(f"thread {i}: block {j} overwritten in round {rep}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    assert fastconv.cache_info()["cached_bytes"] <= 8 * MIB
