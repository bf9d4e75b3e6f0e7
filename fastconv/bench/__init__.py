"""`fastconv bench`: fastconv against NumPy (and PyTorch when installed) on real layers.

The layer tables are the CSV files of benchmarks/ (shipped inside the package at build time, read
from the source tree in a development install). Each case is timed side by side in one process:
median of rounds sized to about `min_time` seconds, after one warm-up call, with the same thread
count for every library. GFLOP/s is 2 * multiply-adds / median; memory-bound ops (depthwise,
pooling) also report GB/s of the bytes they must move, against the measured copy bandwidth.
"""
import contextlib
import csv
import json
import time
from importlib import resources
from pathlib import Path

import numpy as np

from . import numpy_peers as npp

__all__ = ["OPS", "load_table", "run_op", "settle", "profile_model", "time_forward", "format_table", "format_markdown", "format_model",
           "plot_roofline", "copy_bandwidth", "thread_limits", "machine_info"]

OPS = ("gemm", "conv2d", "depthwise", "pointwise", "pool")
_TABLE_FILES = {"gemm": "gemm_shapes.csv", "conv2d": "conv_layers.csv", "depthwise": "depthwise_layers.csv",
                "pointwise": "pointwise_layers.csv", "pool": "pool_layers.csv"}
DTYPE = np.float32


def load_table(name, folder=None):
    """Rows of a layer table (``conv_layers.csv``, ...) as dicts, numbers as ints: from `folder`
    when given (benchmarks/ reads its own files), else the package's copy, else the source tree's
    benchmarks/ (a development install)."""
    packaged = resources.files(__package__).joinpath("tables", name)
    source = Path(__file__).resolve().parents[2] / "benchmarks" / name
    path = Path(folder) / name if folder is not None else packaged if packaged.is_file() else source
    if not path.is_file():
        raise FileNotFoundError(f"benchmark table {name} is neither in the package nor in {source.parent}")
    with path.open() as f:
        rows = list(csv.DictReader(line for line in f if line.strip() and not line.startswith("#")))
    return [{k: int(v) if v.lstrip("-").isdigit() else v for k, v in r.items()} for r in rows]


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


# After a call, NumPy's OpenBLAS keeps its worker threads spinning for about 0.1 s: on two cores
# they take one from whatever is timed next (a 256-channel 3x3 conv on 14x14, batch 8: 8 ms alone,
# 16 ms right after a NumPy matmul, for fastconv and PyTorch alike). Waiting this long first lets
# them park, so that no peer is timed in the wake of another.
SETTLE_SECONDS = 0.15


def settle():
    """Sleep long enough for the previously timed library's worker threads to stop spinning."""
    time.sleep(SETTLE_SECONDS)


def median_seconds(fn, min_time=0.2, min_rounds=3, max_rounds=100):
    """Median wall time of fn() over rounds sized to about min_time, after `settle()` and a
    warm-up call."""
    settle()
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    rounds = int(min(max_rounds, max(min_rounds, min_time / max(first, 1e-6))))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


_copy_bw = []


def copy_bandwidth(mib=256, repeats=7):
    """GB/s (bytes read + written / best time) of a single-threaded NumPy copy of `mib` MiB, far
    beyond the caches: the denominator of "% of copy bandwidth", measured once per process."""
    if not _copy_bw:
        src = np.ones(mib * 2**20 // 4, np.float32)
        dst = np.empty_like(src)
        np.copyto(dst, src)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.copyto(dst, src)
            best = min(best, time.perf_counter() - t0)
        _copy_bw.append(2 * src.nbytes / best / 1e9)
    return _copy_bw[0]


@contextlib.contextmanager
def thread_limits(n):
    """n threads for fastconv, NumPy's BLAS (threadpoolctl, when installed) and PyTorch (when
    installed), restored afterwards."""
    import fastconv
    torch = _torch()
    old = torch.get_num_threads() if torch else None
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
            stack.enter_context(threadpool_limits(n))
        except ImportError:
            pass
        stack.enter_context(fastconv.threads(n))
        if torch:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(old)


def machine_info(threads, peak):
    """What a report states about where it was measured."""
    import platform
    import fastconv
    torch = _torch()
    return {"fastconv": fastconv.__version__, "numpy": np.__version__, "torch": torch.__version__ if torch else None,
            "python": platform.python_version(), "isa": fastconv.config()["isa"], "threads": threads,
            "cpu": platform.processor() or platform.machine(), "peak_gflops": peak,
            "copy_bw_gbps": copy_bandwidth(), "date": time.strftime("%Y-%m-%d")}


# ---- the cases: each yields (layer, shape, algorithm, pass, flops, io bytes, memory-bound?,
# {impl: fn}); io bytes = inputs + outputs of one call, the traffic a memory-bound op must make

def _rng_arrays(*shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s, dtype=DTYPE) for s in shapes]


def _gemm_cases(batch):
    import fastconv
    torch = _torch()
    for r in load_table(_TABLE_FILES["gemm"]):
        a, b = _rng_arrays((r["m"], r["k"]), (r["k"], r["n"]))
        out = np.empty((r["m"], r["n"]), DTYPE)
        impls = {"fastconv": lambda a=a, b=b, out=out: fastconv.matmul(a, b, out=out),
                 "numpy": lambda a=a, b=b, out=out: np.matmul(a, b, out=out)}
        if torch:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            impls["torch"] = lambda ta=ta, tb=tb: torch.mm(ta, tb)
        yield (r["name"], f"{r['m']}x{r['k']} @ {r['k']}x{r['n']}", "gemm", "fwd", 2.0 * r["m"] * r["k"] * r["n"],
               a.nbytes + b.nbytes + out.nbytes, False, impls)


def _conv_cases(batch):
    from .. import functional as F
    torch = _torch()
    for r in load_table(_TABLE_FILES["conv2d"]):
        n = batch or r["n"]
        args = dict(stride=r["stride"], padding=r["padding"], dilation=r["dilation"], groups=r["groups"])
        x, w, b = _rng_arrays((n, r["c_in"], r["h"], r["w"]), (r["c_out"], r["c_in"] // r["groups"], r["kh"], r["kw"]),
                              (r["c_out"],))
        geom, yshape = F._conv_geometry(x.shape, w.shape, **{k: args[k] for k in ("stride", "padding", "dilation",
                                                                                 "groups")})
        gy, = _rng_arrays(yshape)
        flops = 2.0 * np.prod(yshape) * (r["c_in"] // r["groups"]) * r["kh"] * r["kw"]
        shape = (f"{n}x{r['c_in']}x{r['h']}x{r['w']} k{r['kh']}x{r['kw']}/{r['stride']} "
                 f"-> {r['c_out']}" + (f" g{r['groups']}" if r["groups"] > 1 else "")
                 + (f" d{r['dilation']}" if r["dilation"] > 1 else ""))
        tx = tw = tgy = None
        if torch:
            tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
        for pass_, algo_pass in (("fwd", "forward"), ("bwd-data", "data"), ("bwd-weight", "weight")):
            algo = F.choose_algorithm(geom, algo_pass)
            if pass_ == "fwd":
                impls = {"fastconv": lambda x=x, w=w, b=b: F.conv2d(x, w, b, **args),
                         "numpy": lambda x=x, w=w, b=b: npp.conv2d_forward(x, w, b, **args)}
                if torch:
                    impls["torch"] = lambda tx=tx, tw=tw, tb=tb: torch.nn.functional.conv2d(tx, tw, tb, **args)
            elif pass_ == "bwd-data":
                impls = {"fastconv": lambda gy=gy, x=x, w=w: F.conv2d_backward(
                             gy, x, w, **args, weight_grad=False, bias_grad=False),
                         "numpy": lambda gy=gy, x=x, w=w: npp.conv2d_backward_data(gy, w, x.shape, **args)}
                if torch:
                    impls["torch"] = lambda tgy=tgy, tw=tw, shp=x.shape: torch.nn.grad.conv2d_input(shp, tw, tgy, **args)
            else:
                impls = {"fastconv": lambda gy=gy, x=x, w=w: F.conv2d_backward(
                             gy, x, w, **args, input_grad=False, bias_grad=False),
                         "numpy": lambda gy=gy, x=x, w=w: npp.conv2d_backward_weight(gy, x, w.shape, **args)}
                if torch:
                    impls["torch"] = lambda tgy=tgy, tx=tx, shp=w.shape: torch.nn.grad.conv2d_weight(tx, shp, tgy, **args)
            yield r["name"], shape, algo, pass_, flops, x.nbytes + w.nbytes + gy.nbytes, False, impls


def _depthwise_cases(batch):
    from .. import functional as F
    torch = _torch()
    n = batch or 8
    for r in load_table(_TABLE_FILES["depthwise"]):
        c, m, k, s, p = r["c"], r["m"], r["k"], r["stride"], r["padding"]
        x, w, b = _rng_arrays((n, c, r["h"], r["w"]), (c * m, 1, k, k), (c * m,))
        oh, ow = (r["h"] + 2 * p - k) // s + 1, (r["w"] + 2 * p - k) // s + 1
        gy, = _rng_arrays((n, c * m, oh, ow))
        flops = 2.0 * gy.size * k * k
        shape = f"{n}x{c}x{r['h']}x{r['w']} k{k}/{s}" + (f" m{m}" if m > 1 else "")
        args = dict(stride=s, padding=p)
        fwd = {"fastconv": lambda x=x, w=w, b=b: F.depthwise_conv2d(x, w, b, **args),
               "numpy": lambda x=x, w=w, b=b: npp.depthwise_forward(x, w, b, **args)}
        bwd = {"fastconv": lambda gy=gy, x=x, w=w: F.depthwise_conv2d_backward(gy, x, w, **args),
               "numpy": lambda gy=gy, x=x, w=w: npp.depthwise_backward(gy, x, w, **args)}
        if torch:
            tx, tw, tb, tgy = (torch.from_numpy(a) for a in (x, w, b, gy))
            fwd["torch"] = lambda tx=tx, tw=tw, tb=tb: torch.nn.functional.conv2d(tx, tw, tb, groups=c, **args)

            def torch_bwd(tx=tx, tw=tw, tb=tb, tgy=tgy):
                xs, ws, bs = (t.detach().requires_grad_() for t in (tx, tw, tb))
                torch.nn.functional.conv2d(xs, ws, bs, groups=c, **args).backward(tgy)
            bwd["torch"] = torch_bwd
        yield r["name"], shape, "direct", "fwd", flops, x.nbytes + w.nbytes + gy.nbytes, True, fwd
        yield r["name"], shape, "direct", "bwd", 2 * flops, 2 * (x.nbytes + gy.nbytes + w.nbytes), True, bwd


def _pointwise_cases(batch):
    from .. import functional as F
    torch = _torch()
    n = batch or 8
    for r in load_table(_TABLE_FILES["pointwise"]):
        x, w, b = _rng_arrays((n, r["c_in"], r["h"], r["w"]), (r["c_out"], r["c_in"]), (r["c_out"],))
        gy, = _rng_arrays((n, r["c_out"], r["h"], r["w"]))
        flops = 2.0 * gy.size * r["c_in"]
        shape = f"{n}x{r['c_in']}x{r['h']}x{r['w']} -> {r['c_out']}"
        fwd = {"fastconv": lambda x=x, w=w, b=b: F.pointwise_conv2d(x, w, b),
               "numpy": lambda x=x, w=w, b=b: npp.pointwise_forward(x, w, b)}
        bwd = {"fastconv": lambda gy=gy, x=x, w=w: F.pointwise_conv2d_backward(gy, x, w),
               "numpy": lambda gy=gy, x=x, w=w: npp.pointwise_backward(gy, x, w)}
        if torch:
            tx, tw4, tb, tgy = torch.from_numpy(x), torch.from_numpy(w[:, :, None, None]), torch.from_numpy(b), \
                torch.from_numpy(gy)
            fwd["torch"] = lambda tx=tx, tw4=tw4, tb=tb: torch.nn.functional.conv2d(tx, tw4, tb)

            def torch_bwd(tx=tx, tw4=tw4, tb=tb, tgy=tgy):
                xs, ws, bs = (t.detach().requires_grad_() for t in (tx, tw4, tb))
                torch.nn.functional.conv2d(xs, ws, bs).backward(tgy)
            bwd["torch"] = torch_bwd
        yield r["name"], shape, "im2col", "fwd", flops, x.nbytes + gy.nbytes + w.nbytes, True, fwd
        yield r["name"], shape, "im2col", "bwd", 2 * flops, 2 * (x.nbytes + gy.nbytes + w.nbytes), True, bwd


def _pool_cases(batch):
    from .. import functional as F
    torch = _torch()
    n = batch or 8
    for r in load_table(_TABLE_FILES["pool"]):
        kind, k, s, p = r["kind"], r["k"], r["s"], r["p"]
        x, = _rng_arrays((n, r["c"], r["h"], r["w"]))
        if kind == "max":
            impls = {"fastconv": lambda x=x: F.max_pool2d(x, k, s, p)}
            tfn = (lambda t: torch.nn.functional.max_pool2d(t, k, s, p)) if torch else None
        elif kind == "avg":
            impls = {"fastconv": lambda x=x: F.avg_pool2d(x, k, s, p)}
            tfn = (lambda t: torch.nn.functional.avg_pool2d(t, k, s, p)) if torch else None
        else:
            impls = {"fastconv": lambda x=x: F.global_avg_pool2d(x)}
            tfn = (lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1)) if torch else None
        impls["numpy"] = lambda x=x: npp.pool2d(x, kind, k, s, p)
        if torch:
            tx = torch.from_numpy(x)
            impls["torch"] = lambda tx=tx, tfn=tfn: tfn(tx)
        y = impls["fastconv"]()
        what = "global avg" if kind == "global_avg" else f"{kind} {k}x{k}/{s} p{p}"
        yield r["name"], f"{n}x{r['c']}x{r['h']}x{r['w']} {what}", "-", "fwd", 0.0, x.nbytes + y.nbytes, True, impls


_CASES = {"gemm": _gemm_cases, "conv2d": _conv_cases, "depthwise": _depthwise_cases,
          "pointwise": _pointwise_cases, "pool": _pool_cases}


def run_op(op, batch=None, threads=None, min_time=0.2, peak=None, progress=None):
    """Time every case of `op`; one dict per case and pass (fastconv/numpy/torch medians in ms,
    GFLOP/s, % of `peak`, GB/s and % of copy bandwidth for memory-bound ops, speedups)."""
    import fastconv
    if op not in _CASES:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    threads = threads or fastconv.get_num_threads()
    rows = []
    with thread_limits(threads):
        for layer, shape, algo, pass_, flops, nbytes, memory_bound, impls in _CASES[op](batch):
            times = {name: median_seconds(fn, min_time) for name, fn in impls.items()}
            t = times["fastconv"]
            row = {"op": op, "layer": layer, "shape": shape, "pass": pass_, "algorithm": algo, "threads": threads,
                   "ms": {k: 1e3 * v for k, v in times.items()}, "flops": flops, "bytes": nbytes}
            if flops:
                row["gflops"] = flops / t / 1e9
                if peak:
                    row["pct_peak"] = 100 * row["gflops"] / peak
            if memory_bound:
                row["gbps"] = nbytes / t / 1e9
                row["pct_copy_bw"] = 100 * row["gbps"] / copy_bandwidth()
            row["vs_numpy"] = times["numpy"] / t
            if "torch" in times:
                row["vs_torch"] = times["torch"] / t
            rows.append(row)
            if progress:
                progress(row)
    return rows


# ---- whole networks ----------------------------------------------------------------------------

def profile_model(model, input_shape, threads=None, rounds=5):
    """Per-layer forward times of `model` (eval mode) on zeros of `input_shape` (N, C, H, W): every
    leaf module's calls timed inside whole forward passes; the median over `rounds` passes.
    Returns (rows, total_ms) with rows of name, type, output shape, multiply-adds, ms, share."""
    import fastconv
    from ..summary import _macs, trace_leaves
    x = np.zeros(input_shape, DTYPE)
    names = {id(m): name for name, m in model.named_modules()}
    calls = []

    def record(m, inp, out, seconds):
        calls.append((m, seconds, np.shape(out), _macs(m, np.asarray(inp), np.asarray(out))))

    totals, per_pass = [], []
    with trace_leaves(model, record), fastconv.threads(threads or fastconv.get_num_threads()):
        model(x)  # warm-up
        for _ in range(rounds):
            calls.clear()
            t0 = time.perf_counter()
            model(x)
            totals.append(time.perf_counter() - t0)
            per_pass.append(list(calls))
    total = float(np.median(totals))
    rows = []
    for i, (m, _, shape, macs) in enumerate(per_pass[0]):
        ms = 1e3 * float(np.median([p[i][1] for p in per_pass]))
        rows.append({"layer": names.get(id(m), ""), "type": type(m).__name__, "output": shape, "macs": macs,
                     "ms": ms, "share": ms / (1e3 * total), "gflops": 2 * macs / ms / 1e6 if macs else None})
    return rows, 1e3 * total


def time_forward(model, input_shape, threads=None, rounds=5):
    """Median ms of `model`'s forward in eval mode on zeros of `input_shape`, as users run it
    (eval-mode Conv2d -> BatchNorm2d -> ReLU runs fused, see fastconv.nn.fusion)."""
    import fastconv
    x = np.zeros(input_shape, DTYPE)
    training = model.training
    model.eval()
    times = []
    try:
        with fastconv.threads(threads or fastconv.get_num_threads()):
            model(x)  # warm-up
            for _ in range(rounds):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
    finally:
        model.train(training)
    return 1e3 * float(np.median(times))


# ---- reports -----------------------------------------------------------------------------------

def _table(rows, markdown=False):
    """Header and cells of a table of run_op rows (shared by the text and markdown forms)."""
    has_torch = any("vs_torch" in r for r in rows)
    header = ["layer", "shape", "pass", "algorithm", "fastconv ms", "GFLOP/s", "% peak", "GB/s", "% copy bw",
              "vs NumPy"] + (["vs PyTorch"] if has_torch else [])

    def opt(r, key, fmt):
        return fmt.format(r[key]) if key in r else "-"

    body = [[r["layer"], f"`{r['shape']}`" if markdown else r["shape"], r["pass"], r["algorithm"],
             f"{r['ms']['fastconv']:.3f}", opt(r, "gflops", "{:.1f}"), opt(r, "pct_peak", "{:.0f}%"),
             opt(r, "gbps", "{:.1f}"), opt(r, "pct_copy_bw", "{:.0f}%"), f"{r['vs_numpy']:.2f}x"]
            + ([opt(r, "vs_torch", "{:.2f}x")] if has_torch else []) for r in rows]
    return header, body


def format_table(rows, title=None):
    """A text table of run_op rows."""
    header, body = _table(rows)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join(([title] if title else []) + [line(header), "  ".join("-" * w for w in widths)]
                     + [line(b) for b in body])


def format_model(rows, total_ms, title, fused_ms=None):
    """Per-layer table of profile_model, then the time per layer type (and the forward as run,
    with eval-mode fusion, when fused_ms is given)."""
    as_run = "" if fused_ms is None else f" layer by layer, {fused_ms:.1f} ms as run (Conv+BN+activation fused)"
    lines = [f"== {title}: {total_ms:.1f} ms per forward{as_run} ==",
             f"{'layer':<40} {'type':<18} {'output':<20} {'MMACs':>9} {'ms':>8} {'share':>6} {'GFLOP/s':>8}"]
    for r in rows:
        lines.append(f"{r['layer'][:40]:<40} {r['type']:<18} {str(tuple(r['output'])):<20} {r['macs'] / 1e6:>9.1f} "
                     f"{r['ms']:>8.3f} {100 * r['share']:>5.1f}% " + (f"{r['gflops']:>8.1f}" if r["gflops"] else f"{'-':>8}"))
    by_type = {}
    for r in rows:
        by_type[r["type"]] = by_type.get(r["type"], 0.0) + r["ms"]
    lines.append("by type: " + ", ".join(f"{t} {ms:.1f} ms ({100 * ms / total_ms:.0f}%)"
                                         for t, ms in sorted(by_type.items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


def format_markdown(rows):
    """The same table as GitHub markdown (benchmarks/RESULTS.md)."""
    header, body = _table(rows, markdown=True)
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(b) + " |" for b in body])


def plot_roofline(rows, path, peak, bandwidth):
    """A roofline-style PNG: each case at its arithmetic intensity (flops per byte of its inputs
    and outputs) and achieved GFLOP/s, under the compute roof (peak) and the memory roof (copy
    bandwidth). Returns False without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(9, 6))
    ai = np.logspace(-2, 3, 200)
    ax.loglog(ai, np.minimum(peak, bandwidth * ai), "k-", lw=1.5, label=f"roof: {peak:.0f} GFLOP/s, {bandwidth:.0f} GB/s")
    markers = dict(zip(OPS, "osD^v"))
    for op in OPS:
        pts = [(r["flops"] / r["bytes"], r["gflops"]) for r in rows if r["op"] == op and r.get("flops")]
        if pts:
            ax.loglog(*zip(*pts), markers[op], ls="none", alpha=0.8, label=op)
    ax.set(xlabel="arithmetic intensity (flop / byte of inputs + outputs)", ylabel="GFLOP/s",
           title="fastconv on this machine")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def save_json(rows, path, meta):
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1, default=str)
