"""summary(model, input_shape): a Keras-style table of a network's layers.

One row per call of a leaf module (a module without children) in a forward pass of a batch of
zeros, in eval mode: its dotted name and type, its output shape, its parameter count and its
multiply-adds (Conv2d, ConvTranspose2d and Linear; other layers count 0), then the totals. A
module called twice (a shared ReLU) gets a row per call; its parameters count once.
"""
import contextlib
import time

import numpy as np

__all__ = ["summary", "trace_leaves"]


def _macs(module, x, y):
    from .nn import Conv2d, ConvTranspose2d, Linear
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        return int(y.size) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, ConvTranspose2d):
        kh, kw = module.kernel_size
        return int(x.size) * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, Linear):
        return int(y.size) * module.in_features
    return 0


def _fmt_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")" if shape is not None else "?"


@contextlib.contextmanager
def trace_leaves(model, record):
    """Inside the block `model` is in eval mode and every call of a leaf module (one without
    children) also calls ``record(module, input, output, seconds)``; afterwards every module's
    forward and mode are as they were."""
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]

    def wrap(m):
        fwd = m.forward

        def forward(inp, *args, **kwargs):
            t0 = time.perf_counter()
            out = fwd(inp, *args, **kwargs)
            record(m, inp, out, time.perf_counter() - t0)
            return out
        return forward

    modes = {id(m): m.training for m in model.modules()}
    try:
        for m in leaves:
            object.__setattr__(m, "forward", wrap(m))
        model.eval()
        yield
    finally:
        for m in leaves:
            m.__dict__.pop("forward", None)
        for m in model.modules():
            object.__setattr__(m, "training", modes.get(id(m), m.training))


def summary(model, input_shape, dtype=np.float32, print_table=True):
    """The table of ``model``'s layers for input of ``input_shape``, returned as text (and printed
    unless print_table=False).

    input_shape: one sample's shape, e.g. (3, 224, 224), run as a batch of 1 (output shapes show
    that batch as the first dimension); a 4-tuple (N, C, H, W) is taken as the full batch shape.
    Parameters are counted once each (shared ones once); trainable are those with requires_grad."""
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 4:
        input_shape = (1,) + input_shape
    x = np.zeros(input_shape, dtype=dtype)

    rows, seen_params = [], set()
    names = {id(m): name for name, m in model.named_modules()}

    def record(m, inp, out, seconds):
        own = [p for p in m.parameters() if id(p) not in seen_params]
        seen_params.update(id(p) for p in own)
        rows.append((names.get(id(m), "") or "(model)", type(m).__name__, np.shape(out),
                     sum(p.size for p in own), _macs(m, np.asarray(inp), np.asarray(out))))

    with trace_leaves(model, record):
        out = model(x)

    total = sum(p.size for p in model.parameters())
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    macs = sum(r[4] for r in rows)
    header = ("Layer (type)", "Output shape", "Param #", "Mult-adds")
    body = [(f"{n} ({t})", _fmt_shape(s), f"{p:,}", f"{a:,}") for n, t, s, p, a in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(4)]
    line_w = sum(widths) + 3 * 3

    def fmt(r):
        return f"{r[0]:<{widths[0]}}   {r[1]:<{widths[1]}}   {r[2]:>{widths[2]}}   {r[3]:>{widths[3]}}"

    lines = [f'Model: "{type(model).__name__}"', "=" * line_w, fmt(header), "=" * line_w]
    lines += [fmt(r) for r in body]
    lines += ["=" * line_w,
              f"Input shape: {_fmt_shape(input_shape)}   Output shape: {_fmt_shape(np.shape(out))}",
              f"Total params: {total:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}",
              f"Total mult-adds: {macs:,} ({macs / 1e9:.2f} G)",
              "-" * line_w]
    text = "\n".join(lines)
    if print_table:
        print(text)
    return text
