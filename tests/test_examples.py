"""The scripts in examples/ run to the end, and the edge filters of edge_filters.py find edges."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _importable(*names):
    return all(importlib.util.find_spec(name) is not None for name in names)


def _run(script, *args, cwd):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _load_example(name):
    spec = importlib.util.spec_from_file_location(f"examples_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_digits_runs(tmp_path):
    proc = _run("train_digits.py", "--epochs", "1", "--out", "out", cwd=tmp_path)
    out = tmp_path / "out"
    assert (out / "weights.npz").is_file() and (out / "metrics.json").is_file()
    assert "test accuracy" in proc.stdout and "same predictions" in proc.stdout
    if _importable("matplotlib"):
        assert (out / "samples.png").is_file() and (out / "curves.png").is_file()


def test_edge_filters_runs(tmp_path):
    proc = _run("edge_filters.py", "--out", "edges.png", cwd=tmp_path)
    has_photo = _importable("skimage") or _importable("sklearn", "PIL")
    if has_photo and _importable("matplotlib"):
        assert (tmp_path / "edges.png").is_file(), proc.stdout
    else:  # a skip: one line saying what to install, no traceback
        assert "pip install" in proc.stdout and not (tmp_path / "edges.png").exists()
        assert "Traceback" not in proc.stderr


def test_edge_filters_find_the_edges_of_a_square():
    ef = _load_example("edge_filters")
    names, weight = ef.filter_bank()
    assert weight.shape == (len(names), 1, 3, 3) and weight.dtype == np.float32
    image = np.zeros((32, 32), dtype=np.float32)
    image[8:24, 8:24] = 1.0  # a bright square on black: rows and columns 8..23
    maps = ef.edge_maps(image)
    assert all(m.shape == image.shape for m in maps.values())

    rows = slice(10, 22)  # along a side, away from the corners
    for name, scale in (("vertical edge", 3.0), ("Sobel x", 4.0)):
        fmap = maps[name]
        # left side: dark -> bright going right is positive; right side negative
        np.testing.assert_allclose(fmap[rows, 7:9], scale)
        np.testing.assert_allclose(fmap[rows, 23:25], -scale)
        np.testing.assert_allclose(fmap[7:9, rows], 0.0, atol=1e-6)  # top side
        np.testing.assert_allclose(fmap[23:25, rows], 0.0, atol=1e-6)  # bottom side
    for name, scale in (("horizontal edge", 3.0), ("Sobel y", 4.0)):
        fmap = maps[name]
        np.testing.assert_allclose(fmap[7:9, rows], scale)
        np.testing.assert_allclose(fmap[23:25, rows], -scale)
        np.testing.assert_allclose(fmap[rows, 7:9], 0.0, atol=1e-6)
        np.testing.assert_allclose(fmap[rows, 23:25], 0.0, atol=1e-6)
    for fmap in maps.values():  # flat regions, inside and outside the square, give nothing
        np.testing.assert_allclose(fmap[12:20, 12:20], 0.0, atol=1e-6)
        np.testing.assert_allclose(fmap[:5, :], 0.0, atol=1e-6)
    mag = maps["Sobel magnitude"]
    np.testing.assert_allclose(mag[rows, 7], 4.0)
    np.testing.assert_allclose(mag[7, rows], 4.0)


@pytest.mark.parametrize("shape", [(5, 7), (1, 1)])
def test_edge_filters_keep_the_image_size(shape):
    ef = _load_example("edge_filters")
    names, weight = ef.filter_bank()
    out = ef.apply_filters(np.ones(shape), weight)
    assert out.shape == (len(names),) + shape and out.dtype == np.float32
