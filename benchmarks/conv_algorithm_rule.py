"""The measurements behind conv2d's algorithm="auto" rule: im2col vs direct, per pass, on layers
that separate them. Prints a Markdown table (median GFLOP/s, float32) and what the rule picks.

    python benchmarks/conv_algorithm_rule.py [--threads 2]
"""
import argparse
import time

import numpy as np

import fastconv
import fastconv.functional as F

# name, n, c_in, hw, c_out, k, stride, padding, groups
SHAPES = [
    ("LeNet-5 conv1", 64, 1, 32, 6, 5, 1, 0, 1),
    ("LeNet-5 conv2", 64, 6, 14, 16, 5, 1, 0, 1),
    ("AlexNet conv1", 8, 3, 227, 96, 11, 4, 0, 1),
    ("ResNet conv1", 4, 3, 224, 64, 7, 2, 3, 1),
    ("MobileNetV2 stem", 8, 3, 112, 32, 3, 2, 1, 1),
    ("ResNeXt 3x3 g32", 8, 128, 28, 128, 3, 1, 1, 32),
    ("grouped 3x3 g8", 8, 64, 28, 64, 3, 1, 1, 8),
    ("depthwise 3x3", 8, 64, 56, 64, 3, 1, 1, 64),
    ("3x3 16->16", 32, 16, 32, 16, 3, 1, 1, 1),
    ("3x3 8->8", 32, 8, 32, 8, 3, 1, 1, 1),
    ("ResNet 3x3 7x7", 8, 512, 7, 512, 3, 1, 1, 1),
    ("ResNet 3x3 28x28", 8, 128, 28, 128, 3, 1, 1, 1),
]
PASSES = ("forward", "data", "weight")


def median_seconds(fn, reps=5):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def run_pass(pass_, algorithm, x, w, y, kw):
    if pass_ == "forward":
        return F.conv2d(x, w, algorithm=algorithm, **kw)
    return F.conv2d_backward(y, x, w, algorithm=algorithm, input_grad=pass_ == "data",
                             weight_grad=pass_ == "weight", bias_grad=False, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"fastconv {fastconv.__version__}, isa {fastconv.config()['isa']}, {args.threads} threads; "
          "GFLOP/s im2col / direct, * = auto's pick\n")
    print("| layer | " + " | ".join(PASSES) + " |")
    print("|---|" + "---|" * len(PASSES))
    with fastconv.threads(args.threads):
        for name, n, ci, hw, co, k, s, p, g in SHAPES:
            x = rng.standard_normal((n, ci, hw, hw), dtype=np.float32)
            w = rng.standard_normal((co, ci // g, k, k), dtype=np.float32)
            kw = dict(stride=s, padding=p, groups=g)
            y = F.conv2d(x, w, **kw)
            flops = 2.0 * y.size * ci // g * k * k
            geom = (n, ci, hw, hw, co, k, k, y.shape[2], y.shape[3], s, s, 1, 1, p, p, g)
            cells = []
            for pass_ in PASSES:
                rate = {a: flops / median_seconds(lambda: run_pass(pass_, a, x, w, y, kw)) / 1e9
                        for a in ("im2col", "direct")}
                pick = F.choose_algorithm(geom, pass_)
                cells.append(" / ".join(f"{rate[a]:.0f}{'*' if a == pick else ''}" for a in ("im2col", "direct")))
            print(f"| {name} ({n}x{ci}x{hw}x{hw} -> {co}, {k}x{k}/{s}, g{g}) | " + " | ".join(cells) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
