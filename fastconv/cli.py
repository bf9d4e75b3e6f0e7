"""The `fastconv` command: train, evaluate, info."""
import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__

DEFAULT_OUT = os.path.join("runs", "{model}")


def _int_at_least(minimum, what):
    """An argparse type: an int >= minimum, else a message saying what was expected."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "positive")
_nonneg_int = _int_at_least(0, "non-negative")


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _fraction(text):
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text}")
    return value


def _parser():
    from .train import SMALL_INPUT_MODELS
    p = argparse.ArgumentParser(prog="fastconv", description="fastconv: CNNs on the CPU.")
    p.add_argument("--version", action="version", version=f"fastconv {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,evaluate,info,bench}")

    data = argparse.ArgumentParser(add_help=False)
    data.add_argument("--seed", type=int, default=None, help="seed of the train/test split, the weights and the "
                      "shuffling (default 0)")
    data.add_argument("--test-size", type=_fraction, default=None,
                      help="share of each class held out for testing (default 0.2)")
    data.add_argument("--threads", type=_positive_int, default=None,
                      help="threads for the kernels (default: fastconv.get_num_threads())")

    models_help = "; ".join(f"{k}: {v[2]}" for k, v in SMALL_INPUT_MODELS.items())
    t = sub.add_parser("train", parents=[data], help="train a CNN on the bundled UCI digits",
                       description="Train a CNN on the bundled UCI handwritten digits (1,797 images, "
                       "upsampled to 32x32) and write weights, metrics and curves to --out.")
    t.add_argument("--model", default="lenet5", choices=list(SMALL_INPUT_MODELS), metavar="NAME",
                   help=f"{models_help} (default lenet5)")
    t.add_argument("--width", type=_positive_float, default=None, help="width multiplier of the mobilenets")
    t.add_argument("--epochs", type=_nonneg_int, default=30, help="passes over the training set (default 30)")
    t.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="peak learning rate, cosine-annealed to 0 (default 3e-3 for adam/adamw, 0.05 for sgd)")
    t.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"], help="default adam")
    t.add_argument("--weight-decay", type=float, default=0.0, help="default 0 (adamw: 0.01)")
    t.add_argument("--augment", type=_nonneg_int, default=2, metavar="PIXELS",
                   help="random shifts of up to this many pixels (of 32) each way; 0 turns them off (default 2)")
    t.add_argument("--subset", type=_positive_int, default=None, metavar="N",
                   help="train on the first N training images only (quick runs)")
    t.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help="where weights.npz, metrics.json, run.json and curves.png go (default runs/MODEL)")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")

    e = sub.add_parser("evaluate", parents=[data], help="test accuracy and confusion matrix of saved weights",
                       description="Evaluate weights written by `fastconv train` on the digits test split. "
                       "The model, width, seed and test size are read from run.json beside the weights "
                       "unless given.")
    e.add_argument("--weights", required=True, metavar="FILE", help="a weights.npz from fastconv train")
    e.add_argument("--model", default=None, choices=list(SMALL_INPUT_MODELS), metavar="NAME")
    e.add_argument("--width", type=_positive_float, default=None)

    sub.add_parser("info", help="print fastconv.show_config()")

    from .bench import OPS
    b = sub.add_parser("bench", help="time fastconv against NumPy and PyTorch on real layers",
                       description="Time fastconv against NumPy (and PyTorch when installed) on the layer "
                       "tables of benchmarks/, side by side, or a whole network layer by layer (--model).")
    b.add_argument("--op", default=None, choices=list(OPS) + ["all"], help="default all (unless --model)")
    b.add_argument("--model", default=None, metavar="NAME",
                   help="per-layer forward times of a fastconv.models network (e.g. resnet50) at 224x224")
    b.add_argument("--batch", type=_positive_int, default=None,
                   help="batch size (default: the table's for conv2d, 8 for the others, 1 for --model)")
    b.add_argument("--threads", type=_positive_int, default=None, help="default fastconv.get_num_threads()")
    b.add_argument("--min-time", type=_positive_float, default=0.2, metavar="S",
                   help="seconds of rounds per timing (default 0.2)")
    b.add_argument("--json", default=None, metavar="FILE", help="write every figure as JSON")
    b.add_argument("--plot", default=None, metavar="FILE", help="a roofline-style PNG (needs matplotlib)")
    return p


def _digits(args, size):
    from .data import load_digits
    return load_digits(size=size, test_size=args.test_size, seed=args.seed)


def _optimizer(args, params):
    from . import optim
    if args.optimizer == "sgd":
        return optim.SGD(params, lr=args.lr or 0.05, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return optim.AdamW(params, lr=args.lr or 3e-3, weight_decay=args.weight_decay or 0.01)
    return optim.Adam(params, lr=args.lr or 3e-3, weight_decay=args.weight_decay)


def _prepare_out(parser, path):
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".fastconv-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as exc:
        parser.error(f"--out {path!r} is not a writable directory: {exc.strerror or exc}")


def _count(model):
    return sum(p.data.size for p in model.parameters())


def cmd_train(parser, args):
    import fastconv
    from . import optim, train
    from .data import DataLoader, RandomShift

    _split_defaults(args, {})
    out = args.out.format(model=args.model)
    _prepare_out(parser, out)
    fastconv.manual_seed(args.seed)
    model, size = train.build_model(args.model, width_mult=args.width)
    d = _digits(args, size)
    x_train, y_train = d.x_train, d.y_train
    if args.subset:
        x_train, y_train = x_train[:args.subset], y_train[:args.subset]
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, seed=args.seed,
                        transform=RandomShift(args.augment) if args.augment else None)
    opt = _optimizer(args, model.parameters())
    sched = optim.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
    cfg = fastconv.config()
    print(f"fastconv {__version__}: training {args.model} ({_count(model):,} parameters) on UCI digits "
          f"{size}x{size}: {len(x_train)} train / {len(d.x_test)} test images, {args.epochs} epochs, "
          f"{args.optimizer} lr {opt.param_groups[0]['lr']:g}, batch {args.batch_size}, "
          f"{cfg['num_threads']} threads, {cfg['isa']}")
    start = time.perf_counter()
    history = train.fit(model, loader, epochs=args.epochs, optimizer=opt, scheduler=sched,
                        eval_data=(d.x_test, d.y_test), progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    final = train.evaluate(model, (d.x_test, d.y_test), num_classes=10)

    weights = os.path.join(out, "weights.npz")
    fastconv.save(model, weights)
    train.save_history(history, os.path.join(out, "metrics.json"))
    run = {"model": args.model, "width": args.width, "input_size": size, "seed": args.seed,
           "test_size": args.test_size, "train_images": len(x_train), "epochs": args.epochs,
           "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": history[0]["lr"] if history else None,
           "augment": args.augment, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
           "seconds": elapsed, "fastconv": __version__, "isa": cfg["isa"], "threads": cfg["num_threads"]}
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump(run, f, indent=1)
    plotted = history and train.plot_history(history, os.path.join(out, "curves.png"))

    rate = sum(r["images_per_s"] * r["seconds"] for r in history) / max(sum(r["seconds"] for r in history), 1e-9)
    print(f"test accuracy {final['accuracy']:.2%} ({int(round(final['accuracy'] * final['samples']))}/"
          f"{final['samples']}), test loss {final['loss']:.4f}; {elapsed:.1f} s in all, "
          f"{rate:.0f} training images/s")
    print(f"wrote {weights}, metrics.json, run.json" + (", curves.png" if plotted else "") + f" in {out}")
    if history and not plotted:
        print("no curves.png: matplotlib is not installed (pip install matplotlib, or fastconv[plot])")
    return 0


def cmd_evaluate(parser, args):
    import fastconv
    from . import train

    run_file = os.path.join(os.path.dirname(os.path.abspath(args.weights)), "run.json")
    run = {}
    if os.path.exists(run_file):
        with open(run_file) as f:
            run = json.load(f)
    model_name = args.model or run.get("model", "lenet5")
    width = args.width if args.width is not None else run.get("width")
    _split_defaults(args, run)
    try:
        state = fastconv.load(args.weights)
    except (OSError, ValueError) as exc:
        parser.error(f"--weights {args.weights!r} cannot be read: {exc}")
    model, size = train.build_model(model_name, width_mult=width)
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        parser.error(f"--weights {args.weights!r} do not fit model {model_name!r}: {exc}")
    d = _digits(args, size)
    result = train.evaluate(model, (d.x_test, d.y_test), num_classes=10)
    print(f"{model_name} on {result['samples']} UCI digits test images (seed {args.seed}, "
          f"test size {args.test_size}): accuracy {result['accuracy']:.2%}, loss {result['loss']:.4f}")
    print(train.format_confusion(result["confusion"]))
    return 0


def _split_defaults(args, run):
    """--seed and --test-size: as given, else as the run that wrote the weights, else 0 and 0.2."""
    args.seed = run.get("seed", 0) if args.seed is None else args.seed
    args.test_size = run.get("test_size", 0.2) if args.test_size is None else args.test_size


def cmd_info(parser, args):
    import fastconv
    fastconv.show_config()
    return 0


def cmd_bench(parser, args):
    import fastconv
    from . import bench, models
    threads = args.threads or fastconv.get_num_threads()
    peak = fastconv.peak_gflops(threads=threads)
    meta = bench.machine_info(threads, peak)
    print(f"fastconv {__version__} bench: {threads} threads, {meta['isa']}, measured FMA peak {peak:.0f} GFLOP/s, "
          f"copy bandwidth {meta['copy_bw_gbps']:.1f} GB/s; numpy {meta['numpy']}, torch {meta['torch'] or '-'}")
    result = {"meta": meta, "ops": {}, "model": None}
    if args.model is not None:
        builder = getattr(models, args.model, None)
        if builder is None or not callable(builder) or args.model.startswith("_") or args.model[0].isupper():
            parser.error(f"--model {args.model!r} is not a fastconv.models network (e.g. resnet50, mobilenet_v2)")
        model = builder()
        size = 32 if args.model.startswith("lenet") else 224
        in_ch = 1 if args.model.startswith("lenet") else 3
        shape = (args.batch or 1, in_ch, size, size)
        rows, total = bench.profile_model(model, shape, threads=threads)
        fused = bench.time_forward(model, shape, threads=threads)
        print(bench.format_model(rows, total, f"{args.model}, batch {args.batch or 1}, {size}x{size}", fused))
        result["model"] = {"name": args.model, "batch": args.batch or 1, "total_ms": total, "fused_ms": fused,
                           "layers": rows}
    ops = list(bench.OPS) if args.op == "all" or (args.op is None and args.model is None) else \
        ([args.op] if args.op else [])
    all_rows = []
    for op in ops:
        rows = bench.run_op(op, batch=args.batch, threads=threads, min_time=args.min_time, peak=peak)
        print()
        print(bench.format_table(rows, title=f"== {op} =="))
        result["ops"][op] = rows
        all_rows += rows
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1, default=str)
        print(f"wrote {args.json}")
    if args.plot:
        if not all_rows:
            print("no --plot: it shows --op results")
        elif bench.plot_roofline(all_rows, args.plot, peak, meta["copy_bw_gbps"]):
            print(f"wrote {args.plot}")
        else:
            print("no plot: matplotlib is not installed (pip install matplotlib)")
    return 0


def main(argv=None):
    import fastconv
    parser = _parser()
    args = parser.parse_args(argv)
    run = {"train": cmd_train, "evaluate": cmd_evaluate, "info": cmd_info, "bench": cmd_bench}[args.command]
    try:
        if getattr(args, "threads", None):
            with fastconv.threads(args.threads):
                return run(parser, args)
        return run(parser, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
