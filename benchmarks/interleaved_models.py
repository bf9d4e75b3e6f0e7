"""fastconv against PyTorch channels_last on one network, measured in alternation in one process.

    python benchmarks/interleaved_models.py resnet18 8 [rounds]

The 2-core VMs drift by up to 1.6x within minutes, so a pytest-benchmark group (each peer's rounds
run back to back) can put a whole drift between two peers. Here each round times 5 calls of
fastconv, then 5 of the torch twin (benchmarks/_torch_mirror.py, the same weights), and the ratio
of that round's medians is printed; the median ratio over rounds is the figure to quote. Minor
page faults per call are printed too (fresh pages for activations cost time on these VMs).
Needs torch."""
import os
import resource
import sys

import numpy as np
import torch

import fastconv
import fastconv.models as models
from fastconv.bench import median_seconds, thread_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _torch_mirror import torch_mirror  # noqa: E402

THREADS = 2


def timed(fn, calls=5):
    """Median ms of `calls` calls of fn (fastconv.bench.median_seconds: after settle() and a
    warm-up call) and the minor page faults per call, the warm-up included."""
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    seconds = median_seconds(fn, min_time=0, min_rounds=calls, max_rounds=calls)
    return 1e3 * seconds, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / (calls + 1)


def main(name, n, rounds):
    fastconv.manual_seed(0)
    model = getattr(models, name)().eval()
    twin = torch_mirror(model).to(memory_format=torch.channels_last)
    x = np.random.default_rng(1).standard_normal((n, 3, 224, 224), dtype=np.float32)
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)

    def torch_call():
        with torch.inference_mode():
            return twin(xt)

    ratios = []
    with thread_limits(THREADS):
        for _ in range(rounds):
            fc_ms, fc_faults = timed(lambda: model(x))
            cl_ms, cl_faults = timed(torch_call)
            ratios.append(fc_ms / cl_ms)
            print(f"fastconv {fc_ms:8.1f} ms ({fc_faults:6.0f} faults)   channels_last {cl_ms:8.1f} ms "
                  f"({cl_faults:6.0f} faults)   ratio {ratios[-1]:.3f}", flush=True)
    print(f"{name} n{n}: fastconv time / channels_last time, median of {rounds} rounds: {np.median(ratios):.3f} "
          f"(range {min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 5)
