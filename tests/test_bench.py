"""fastconv.bench and `fastconv bench`, on small stand-ins for the layer tables (the real ones
take minutes: they run in benchmarks/ and `fastconv bench` itself)."""
import json

import numpy as np
import pytest

import fastconv
from fastconv import bench, cli, models

TINY = {
    "gemm_shapes.csv": [{"name": "g", "m": 20, "k": 33, "n": 17}],
    "conv_layers.csv": [
        {"name": "c3", "network": "t", "n": 2, "c_in": 4, "h": 9, "w": 8, "c_out": 20, "kh": 3, "kw": 3,
         "stride": 1, "padding": 1, "dilation": 1, "groups": 1},
        {"name": "c_s2_g2", "network": "t", "n": 2, "c_in": 6, "h": 11, "w": 10, "c_out": 4, "kh": 3, "kw": 2,
         "stride": 2, "padding": 1, "dilation": 2, "groups": 2}],
    "depthwise_layers.csv": [{"name": "dw", "network": "t", "c": 5, "h": 9, "w": 9, "m": 2, "k": 3, "stride": 2,
                              "padding": 1}],
    "pointwise_layers.csv": [{"name": "pw", "network": "t", "c_in": 7, "c_out": 5, "h": 4, "w": 6}],
    "pool_layers.csv": [{"name": "mx", "kind": "max", "c": 3, "h": 9, "w": 9, "k": 3, "s": 2, "p": 1},
                        {"name": "av", "kind": "avg", "c": 3, "h": 8, "w": 8, "k": 2, "s": 2, "p": 0},
                        {"name": "gap", "kind": "global_avg", "c": 3, "h": 5, "w": 5, "k": 0, "s": 0, "p": 0}],
}


@pytest.fixture
def tiny_tables(monkeypatch):
    monkeypatch.setattr(bench, "load_table", lambda name, folder=None: TINY[name])


def test_the_real_tables_load():
    for name in bench._TABLE_FILES.values():
        rows = bench.load_table(name)
        assert rows and all(isinstance(v, int) for r in rows for k, v in r.items() if k not in ("name", "network", "kind"))


def _arrays(result):
    """The arrays a case returns (tuples of gradients, torch tensors, None for skipped ones)."""
    items = result if isinstance(result, tuple) else (result,)
    return [np.asarray(r.detach().numpy() if hasattr(r, "detach") else r) for r in items if r is not None]


@pytest.mark.parametrize("op", bench.OPS)
def test_every_peer_computes_what_fastconv_computes(op, tiny_tables):
    """The timed callables of a case agree, so a ratio compares the same work. (torch backward
    peers return nothing: their gradients land in the leaves.)"""
    for layer, shape, algo, pass_, flops, nbytes, memory_bound, impls in bench._CASES[op](None):
        want = _arrays(impls["fastconv"]())
        for name, fn in impls.items():
            got = _arrays(fn())
            if not got:
                continue
            assert len(got) == len(want) or name == "numpy" and pass_ != "fwd", (op, layer, pass_, name)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4, err_msg=f"{op} {layer} {pass_} {name}")
        assert nbytes > 0 and (flops > 0 or op == "pool")


def test_run_op_rows_and_tables(tiny_tables):
    rows = bench.run_op("conv2d", threads=1, min_time=0.0, peak=100.0)
    assert [r["pass"] for r in rows] == ["fwd", "bwd-data", "bwd-weight"] * 2
    for r in rows:
        assert r["ms"]["fastconv"] > 0 and r["vs_numpy"] > 0 and r["gflops"] > 0
        assert r["pct_peak"] == pytest.approx(r["gflops"])  # peak 100
        assert r["algorithm"] in ("im2col", "direct")
    assert rows[0]["flops"] == 2 * 2 * 20 * 9 * 8 * 4 * 9
    text = bench.format_table(rows, title="== conv2d ==")
    assert text.splitlines()[0] == "== conv2d ==" and len(text.splitlines()) == 3 + len(rows)
    md = bench.format_markdown(rows)
    assert md.count("\n") == 1 + len(rows) and "| c3 |" in md
    pool = bench.run_op("pool", min_time=0.0)
    assert all("gbps" in r and "gflops" not in r for r in pool)
    with pytest.raises(ValueError, match="op must be one of"):
        bench.run_op("fft")


def test_profile_model_times_every_layer():
    model = models.lenet5()
    rows, total = bench.profile_model(model, (2, 1, 32, 32), threads=1, rounds=2)
    assert [r["type"] for r in rows][:3] == ["Conv2d", "ReLU", "MaxPool2d"] and len(rows) == 12  # 6 features, flatten, 5 classifier
    assert rows[0]["macs"] == 2 * 6 * 28 * 28 * 25
    assert 0 < sum(r["ms"] for r in rows) <= total * 1.5 and model.training


def test_bench_command(tiny_tables, tmp_path, capsys):
    out_json, out_png = tmp_path / "b.json", tmp_path / "b.png"
    assert cli.main(["bench", "--op", "all", "--threads", "1", "--min-time", "0.001", "--json", str(out_json),
                     "--plot", str(out_png)]) == 0
    text = capsys.readouterr().out
    for op in bench.OPS:
        assert f"== {op} ==" in text
    data = json.loads(out_json.read_text())
    assert set(data["ops"]) == set(bench.OPS) and data["meta"]["threads"] == 1
    try:
        import matplotlib  # noqa: F401
        assert out_png.read_bytes()[:4] == b"\x89PNG"
    except ImportError:
        assert "matplotlib is not installed" in text

    assert cli.main(["bench", "--model", "lenet5", "--batch", "2", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "lenet5, batch 2, 32x32" in text and "features.0" in text and "by type: Conv2d" in text
    with pytest.raises(SystemExit):
        cli.main(["bench", "--model", "nosuchnet"])
    assert "not a fastconv.models network" in capsys.readouterr().err
