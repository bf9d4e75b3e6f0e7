"""Version, configuration report, thread control, ISA selection and the peak-FLOPS probe."""
import importlib.metadata
import math
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _core, _runtime

REQUIRED_CONFIG_KEYS = ("version", "isa", "isas_available", "openmp", "num_threads", "compiler")
OPENMP = fastconv.config()["openmp"]
needs_openmp = pytest.mark.skipif(not OPENMP, reason="fastconv was built without OpenMP")


def in_new_thread(fn):
    """fn() evaluated on a fresh Python thread."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive()
    if "error" in box:
        raise box["error"]
    return box["value"]


def run_python(code, tmp_path, **env_updates):
    """Run `code` in a fresh interpreter with the given environment changes. The working
    directory is tmp_path, so that `import fastconv` finds the installed package and not the
    source folder of the repository (python -c puts the cwd first on sys.path)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FASTCONV_ISA", "OMP_NUM_THREADS")}
    env.update(env_updates)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


# ---- version and config ---------------------------------------------------------------------

def test_version_matches_package_metadata():
    assert isinstance(fastconv.__version__, str)
    assert fastconv.__version__ == importlib.metadata.version("fastconv")
    assert fastconv.config()["version"] == fastconv.__version__


def test_config_keys_and_types():
    cfg = fastconv.config()
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in cfg]
    assert not missing, f"config() lacks {missing}"
    assert isinstance(cfg["isas_available"], list) and cfg["isas_available"]
    assert all(isinstance(name, str) for name in cfg["isas_available"])
    assert cfg["isa"] in cfg["isas_available"]
    assert "generic" in cfg["isas_available"]
    assert set(cfg["isas_available"]) <= set(_runtime.KNOWN_ISAS)
    assert len(set(cfg["isas_available"])) == len(cfg["isas_available"])
    assert isinstance(cfg["openmp"], bool)
    assert isinstance(cfg["num_threads"], int) and cfg["num_threads"] >= 1
    assert cfg["num_threads"] == fastconv.get_num_threads()
    assert isinstance(cfg["compiler"], str) and cfg["compiler"].strip()


def test_config_isas_available_best_first_and_default_is_best(tmp_path):
    """The ISA picked when FASTCONV_ISA is unset is the first (best) available one."""
    cfg = fastconv.config()
    order = [name for name in _runtime.KNOWN_ISAS if name in cfg["isas_available"]]
    assert cfg["isas_available"] == order
    r = run_python("import fastconv; print(fastconv.config()['isa'])", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == cfg["isas_available"][0]


def test_config_reports_thread_count_changes():
    before = fastconv.config()["num_threads"]
    target = before + 1
    with fastconv.threads(target):
        assert fastconv.config()["num_threads"] == (target if OPENMP else 1)
    assert fastconv.config()["num_threads"] == before


def test_show_config_prints_every_key(capsys):
    cfg = fastconv.config()
    fastconv.show_config()
    out = capsys.readouterr().out
    lines = out.splitlines()
    for key, value in cfg.items():
        shown = ", ".join(value) if isinstance(value, list) else str(value)
        matching = [ln for ln in lines if ln.split(":", 1)[0].strip() == key]
        assert len(matching) == 1, f"{key!r} printed {len(matching)} times in:\n{out}"
        assert matching[0].split(":", 1)[1].strip() == shown, f"{key!r}: {matching[0]!r}, expected value {shown!r}"


# ---- ISA switching (the `isa` fixture and use_isa) ----------------------------------------------

def test_isa_fixture_switches_the_kernels(isa):
    assert fastconv.config()["isa"] == isa
    assert _core.get_isa() == isa


def test_use_isa_restores_previous_isa_even_on_error():
    before = _core.get_isa()
    other = "generic" if before != "generic" else _core.supported_isas()[0]
    with pytest.raises(RuntimeError, match="boom"):
        with _runtime.use_isa(other):
            assert fastconv.config()["isa"] == other
            raise RuntimeError("boom")
    assert _core.get_isa() == before


@pytest.mark.parametrize("name", ["bogus", "AVX2x", "", None])
def test_use_isa_rejects_unknown_names(name):
    before = _core.get_isa()
    with pytest.raises(ValueError, match="not supported"):
        with _runtime.use_isa(name):
            pass
    assert _core.get_isa() == before


def test_isa_gemm_tiles_differ_between_isas():
    """Each ISA selects its own kernel (seen through its tile geometry), and switching back
    restores the tile."""
    before = _core.gemm_tile(4), _core.gemm_tile(8)
    tiles = {}
    for name in _core.supported_isas():
        with _runtime.use_isa(name):
            tiles[name] = (_core.gemm_tile(4), _core.gemm_tile(8))
            cfg = fastconv.config()
            assert cfg["gemm_tile_f32"] == "x".join(map(str, tiles[name][0]))
    assert len(set(tiles.values())) == len(tiles), tiles
    assert (_core.gemm_tile(4), _core.gemm_tile(8)) == before


# ---- select_isa ---------------------------------------------------------------------------------

@pytest.mark.parametrize("requested", [None, "", "   "])
def test_select_isa_default_is_the_best_available(requested):
    assert _runtime.select_isa(requested, ["avx2", "generic"]) == "avx2"
    assert _runtime.select_isa(requested, ["generic"]) == "generic"
    assert _runtime.select_isa(requested, ["avx512", "avx2", "generic"]) == "avx512"


@pytest.mark.parametrize("requested, expected", [("avx2", "avx2"), ("AVX2", "avx2"), ("Generic", "generic"),
                                                 (" avx512 ", "avx512"), ("GENERIC\n", "generic")])
def test_select_isa_is_case_and_space_insensitive(requested, expected):
    assert _runtime.select_isa(requested, ["avx512", "avx2", "generic"]) == expected


def test_select_isa_unsupported_names_the_supported_ones():
    with pytest.raises(ImportError, match=r"'avx512'.*not supported.*avx2, generic"):
        _runtime.select_isa("avx512", ["avx2", "generic"])
    with pytest.raises(ImportError, match=r"'AVX2'.*not supported.*: generic$"):
        _runtime.select_isa("AVX2", ["generic"])


@pytest.mark.parametrize("requested", ["bogus", "sse2", "avx", "avx-512", "neon"])
def test_select_isa_unknown_name(requested):
    with pytest.raises(ImportError, match=rf"{requested!r}.*not a known ISA.*avx512, avx2, generic"):
        _runtime.select_isa(requested, ["avx512", "avx2", "generic"])


# ---- FASTCONV_ISA in a fresh process --------------------------------------------------------------

@pytest.mark.parametrize("spelling", [str, str.upper], ids=["lower", "upper"])
@pytest.mark.parametrize("name", _runtime.KNOWN_ISAS)
def test_fastconv_isa_env_selects_the_isa(tmp_path, name, spelling):
    if name not in _core.supported_isas():
        pytest.skip(f"this CPU does not run {name}")
    code = "import fastconv; c = fastconv.config(); print(c['isa'], c['gemm_tile_f32'])"
    r = run_python(code, tmp_path, FASTCONV_ISA=spelling(name))
    assert r.returncode == 0, r.stderr
    with _runtime.use_isa(name):
        expected_tile = "x".join(map(str, _core.gemm_tile(4)))
    assert r.stdout.split() == [name, expected_tile]


def test_fastconv_isa_env_bogus_fails_import(tmp_path):
    r = run_python("import fastconv", tmp_path, FASTCONV_ISA="bogus")
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert "FASTCONV_ISA='bogus'" in r.stderr
    for name in _core.supported_isas():
        assert name in r.stderr.splitlines()[-1], r.stderr


def test_fastconv_isa_env_unsupported_fails_import(tmp_path):
    unsupported = [name for name in _runtime.KNOWN_ISAS if name not in _core.supported_isas()]
    if not unsupported:
        pytest.skip("this CPU runs every ISA fastconv knows")
    r = run_python("import fastconv", tmp_path, FASTCONV_ISA=unsupported[0])
    assert r.returncode != 0
    last = r.stderr.splitlines()[-1]
    assert "ImportError" in last and unsupported[0] in last
    assert ", ".join(_core.supported_isas()) in last


# ---- threads ------------------------------------------------------------------------------------

def test_get_num_threads_positive():
    n = fastconv.get_num_threads()
    assert isinstance(n, int) and n >= 1


def test_set_num_threads_roundtrip():
    original = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        assert fastconv.get_num_threads() == 1
        if OPENMP:
            fastconv.set_num_threads(original + 1)
            assert fastconv.get_num_threads() == original + 1
            fastconv.set_num_threads(np.int64(2))  # any integer type
            assert fastconv.get_num_threads() == 2
    finally:
        fastconv.set_num_threads(original)
    assert fastconv.get_num_threads() == original


@pytest.mark.parametrize("value, exc, pattern", [
    (0, ValueError, r"n must be an int in \[1, 4096\], got 0"),
    (-1, ValueError, r"n must be an int in \[1, 4096\], got -1"),
    (1.5, TypeError, r"n must be an int, got float 1.5"),
    (2.0, TypeError, r"n must be an int, got float"),
    (True, TypeError, r"n must be an int, got bool True"),
    (np.True_, TypeError, r"n must be an int, got bool"),
    ("2", TypeError, r"n must be an int, got str '2'"),
    (None, TypeError, r"n must be an int, got NoneType"),
])
def test_set_num_threads_rejects_bad_values(value, exc, pattern):
    before = fastconv.get_num_threads()
    with pytest.raises(exc, match=pattern):
        fastconv.set_num_threads(value)
    assert fastconv.get_num_threads() == before
    with pytest.raises(exc, match=pattern):
        with fastconv.threads(value):
            pass
    assert fastconv.get_num_threads() == before


def test_threads_context_changes_inside_and_restores_after():
    original = fastconv.get_num_threads()
    with fastconv.threads(1):
        assert fastconv.get_num_threads() == 1
        if OPENMP:
            with fastconv.threads(original + 1):  # nested
                assert fastconv.get_num_threads() == original + 1
            assert fastconv.get_num_threads() == 1
    assert fastconv.get_num_threads() == original


def test_threads_context_restores_on_exception():
    original = fastconv.get_num_threads()
    with pytest.raises(KeyError):
        with fastconv.threads(1):
            raise KeyError("x")
    assert fastconv.get_num_threads() == original


@needs_openmp
def test_set_num_threads_is_seen_by_new_python_threads():
    default_elsewhere = in_new_thread(fastconv.get_num_threads)
    target = default_elsewhere + 1  # differs from what a new thread would otherwise see
    original = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(target)
        assert in_new_thread(fastconv.get_num_threads) == target
        assert fastconv.get_num_threads() == target
    finally:
        fastconv.set_num_threads(original)


@needs_openmp
def test_set_num_threads_from_another_thread_is_seen_by_main_thread():
    original = fastconv.get_num_threads()
    target = original + 1
    try:
        in_new_thread(lambda: fastconv.set_num_threads(target))
        assert fastconv.get_num_threads() == target
    finally:
        fastconv.set_num_threads(original)


@needs_openmp
def test_threads_context_is_local_to_the_calling_thread():
    outside = in_new_thread(fastconv.get_num_threads)
    original = fastconv.get_num_threads()
    target = max(outside, original) + 1
    seen_by_running_thread = {}
    started, release = threading.Event(), threading.Event()

    def running():
        started.set()
        release.wait(timeout=30)
        seen_by_running_thread["n"] = fastconv.get_num_threads()

    t = threading.Thread(target=running)
    t.start()
    started.wait(timeout=30)
    with fastconv.threads(target):
        assert fastconv.get_num_threads() == target
        assert in_new_thread(fastconv.get_num_threads) == outside
        release.set()
        t.join(timeout=30)
    assert seen_by_running_thread["n"] == outside
    assert fastconv.get_num_threads() == original


@needs_openmp
@pytest.mark.parametrize("n", [1, 3])
def test_omp_num_threads_is_honoured(tmp_path, n):
    r = run_python("import fastconv; print(fastconv.get_num_threads(), fastconv.config()['num_threads'])",
                   tmp_path, OMP_NUM_THREADS=str(n))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(n), str(n)]


@needs_openmp
def test_threadpoolctl_limits_apply():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    original = fastconv.get_num_threads()
    libs = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "openmp"]
    assert libs, "threadpoolctl does not see fastconv's OpenMP runtime"
    target = 1 if original != 1 else 2
    with threadpoolctl.threadpool_limits(target, user_api="openmp"):
        assert fastconv.get_num_threads() == target
    assert fastconv.get_num_threads() == original


# ---- peak_gflops --------------------------------------------------------------------------------

def test_peak_gflops_positive(isa):
    value = fastconv.peak_gflops(threads=1, seconds=0.02)
    assert isinstance(value, float)
    assert math.isfinite(value) and value > 0


def test_peak_gflops_default_threads():
    value = fastconv.peak_gflops(seconds=0.02)
    assert isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.parametrize("threads, exc, pattern", [
    (0, ValueError, r"threads must be an int in \[1, 4096\]"),
    (-2, ValueError, r"threads must be an int in \[1, 4096\]"),
    (1.5, TypeError, "threads must be an int"),
    (True, TypeError, "threads must be an int"),
    ("1", TypeError, "threads must be an int"),
])
def test_peak_gflops_rejects_bad_threads(threads, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fastconv.peak_gflops(threads=threads, seconds=0.02)


@pytest.mark.parametrize("seconds", [0, -1, 0.0, 61, float("nan"), float("inf"), "1", None, True, [0.1]])
def test_peak_gflops_rejects_bad_seconds(seconds):
    with pytest.raises(ValueError, match=r"seconds must be a number in \(0, 60\]"):
        fastconv.peak_gflops(threads=1, seconds=seconds)


# ---- thread counts beyond C int range: a ValueError naming the argument, no state change ----


@pytest.mark.parametrize("value", ["2**31", "2**64"])
def test_set_num_threads_huge_value_is_rejected_cleanly(tmp_path, value):
    # In a subprocess: the bug leaves the interpreter's thread state unusable.
    code = f"""
import fastconv, numpy as np
before = fastconv.get_num_threads()
try:
    fastconv.set_num_threads({value})
    print("no error")
except Exception as exc:
    print("raised", type(exc).__name__, exc)
try:
    print("after", fastconv.get_num_threads() == before)
    fastconv.matmul(np.ones((2, 2)), np.ones((2, 2)))
    print("matmul ok")
except Exception as exc:
    print("broken", type(exc).__name__, exc)
"""
    r = run_python(code, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.match(r"raised ValueError .*\bn\b", lines[0]), r.stdout  # a ValueError naming `n`
    assert lines[1:] == ["after True", "matmul ok"], r.stdout


def test_threads_context_huge_value_raises_value_error():
    before = fastconv.get_num_threads()
    try:
        with pytest.raises(ValueError, match="n must be"):
            with fastconv.threads(2**31):
                pass
    finally:
        assert fastconv.get_num_threads() == before


def test_peak_gflops_huge_threads_raises_value_error():
    with pytest.raises(ValueError, match="threads must be"):
        fastconv.peak_gflops(threads=2**31, seconds=0.02)
