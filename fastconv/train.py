"""Training loops the `fastconv train` command is built on: fit, evaluate, predict, plot_history.

    from fastconv import data, models, train
    d = data.load_digits(size=32)
    history = train.fit(models.lenet5(), data.DataLoader(d.x_train, d.y_train, 64, shuffle=True, seed=0),
                        epochs=10, eval_data=(d.x_test, d.y_test))
"""
import json
import sys
import time

import numpy as np

from . import nn, optim
from .data import DataLoader

__all__ = ["fit", "evaluate", "predict", "plot_history", "save_history", "confusion_matrix", "format_confusion",
           "build_model", "SMALL_INPUT_MODELS"]


def _lenet5(num_classes, in_channels, width_mult):
    from .models import lenet5
    return lenet5(num_classes, in_channels)


def _lenet5_classic(num_classes, in_channels, width_mult):
    from .models import lenet5
    return lenet5(num_classes, in_channels, classic=True)


def _mobilenet(version):
    def build(num_classes, in_channels, width_mult):
        from . import models
        m = getattr(models, f"mobilenet_v{version}")(num_classes, width_mult=width_mult or 0.5,
                                                    in_channels=in_channels)
        m.features[0][0].stride = (1, 1)  # a stride-1 stem: 32x32 input ends at 2x2, not 1x1
        return m
    return build


def _resnet18(num_classes, in_channels, width_mult):
    from .models import resnet18
    m = resnet18(num_classes, in_channels=in_channels)
    # the CIFAR-style stem of He et al. 2016 (sec. 4.2): 3x3 stride-1 conv, no max-pool
    m.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
    nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
    m.maxpool = nn.Identity()
    return m


# name -> (builder(num_classes, in_channels, width_mult), input size, what it is)
SMALL_INPUT_MODELS = {
    "lenet5": (_lenet5, 32, "LeNet-5, ReLU and max-pooling (61,706 parameters)"),
    "lenet5_classic": (_lenet5_classic, 32, "LeNet-5 as in 1998: tanh and average pooling"),
    "mobilenet_v1": (_mobilenet(1), 32, "MobileNet v1, stride-1 stem, width 0.5 unless --width"),
    "mobilenet_v2": (_mobilenet(2), 32, "MobileNet v2, stride-1 stem, width 0.5 unless --width"),
    "resnet18": (_resnet18, 32, "ResNet-18 with the CIFAR stem (3x3 stride-1 conv, no max-pool)"),
}


def build_model(name, num_classes=10, in_channels=1, width_mult=None):
    """One of SMALL_INPUT_MODELS, adapted to small (32x32) images; returns (model, input size)."""
    if name not in SMALL_INPUT_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(SMALL_INPUT_MODELS)}")
    builder, size, _ = SMALL_INPUT_MODELS[name]
    return builder(num_classes, in_channels, width_mult), size


def _as_loader(data, batch_size):
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return DataLoader(data[0], data[1], batch_size=batch_size)
    raise TypeError(f"expected a DataLoader or an (x, y) tuple, got {type(data).__name__}")


class _mode:
    """Put a model in train or eval mode for a block, restoring its mode afterwards."""

    def __init__(self, model, training):
        self.model, self.training = model, training

    def __enter__(self):
        self.was = self.model.training
        self.model.train(self.training)

    def __exit__(self, *exc):
        self.model.train(self.was)


def predict(model, x, batch_size=256):
    """Logits of `model` on `x` in eval mode, computed `batch_size` samples at a time."""
    with _mode(model, False):
        return np.concatenate([model(xb) for xb in DataLoader(x, batch_size=batch_size)])


def confusion_matrix(y_true, y_pred, num_classes=None):
    """counts[i, j]: samples of class i predicted as j."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = num_classes or int(max(y_true.max(initial=0), y_pred.max(initial=0))) + 1
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def format_confusion(counts):
    """The confusion matrix as a text table, rows true classes, columns predictions."""
    k = len(counts)
    width = max(4, len(str(counts.max())) + 1)
    lines = ["true\\pred" + "".join(f"{j:>{width}}" for j in range(k))]
    lines += [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(counts)]
    return "\n".join(lines)


def evaluate(model, data, loss_fn=None, batch_size=256, num_classes=None):
    """Loss, accuracy and confusion matrix of `model` (in eval mode) on a DataLoader or (x, y)."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    loader = _as_loader(data, batch_size)
    total_loss, preds, labels = 0.0, [], []
    with _mode(model, False):
        for xb, yb in loader:
            logits = model(xb)
            total_loss += float(loss_fn(logits, yb)) * len(yb)
            preds.append(logits.argmax(axis=1))
            labels.append(yb)
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    return {"loss": total_loss / len(labels), "accuracy": float(np.mean(preds == labels)),
            "samples": int(len(labels)),
            "confusion": confusion_matrix(labels, preds, num_classes or None)}


def _progress(total, desc, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="batch", leave=True, file=sys.stderr, dynamic_ncols=True)


def fit(model, train_loader, epochs=1, optimizer=None, loss_fn=None, scheduler=None, eval_data=None,
        progress=True, callback=None):
    """Train `model` for `epochs` passes over `train_loader` and return the history: one dict per
    epoch with train loss/accuracy (running averages over the epoch's batches), images/s,
    seconds, learning rate and, when `eval_data` (DataLoader or (x, y)) is given, test loss and
    accuracy. Defaults: Adam(lr=1e-3), CrossEntropyLoss. `scheduler.step()` runs once per epoch;
    `callback(epoch_record)` after each epoch (return True to stop early)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    optimizer = optimizer or optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, epochs + 1):
        bar = _progress(len(train_loader), f"epoch {epoch}/{epochs}", progress)
        seen, correct, loss_sum, start = 0, 0, 0.0, time.perf_counter()
        with _mode(model, True):
            for xb, yb in train_loader:
                logits = model(xb)
                loss = float(loss_fn(logits, yb))
                optimizer.zero_grad()
                model.backward(loss_fn.backward(), input_grad=False)
                optimizer.step()
                seen += len(yb)
                correct += int(np.sum(logits.argmax(axis=1) == yb))
                loss_sum += loss * len(yb)
                if not np.isfinite(loss):
                    raise FloatingPointError(f"the training loss became {loss} in epoch {epoch}; "
                                             "lower the learning rate")
                if bar is not None:
                    rate = seen / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                                    img_s=f"{rate:.0f}", refresh=False)
                    bar.update(1)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "train_loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                  "images_per_s": seen / max(seconds, 1e-9), "seconds": seconds,
                  "lr": float(optimizer.param_groups[0]["lr"])}
        if eval_data is not None:
            ev = evaluate(model, eval_data, loss_fn=loss_fn)
            record.update(test_loss=ev["loss"], test_accuracy=ev["accuracy"])
        if bar is not None:
            tail = f", test_acc={record['test_accuracy']:.4f}" if "test_accuracy" in record else ""
            bar.set_postfix_str(f"loss={record['train_loss']:.4f}, acc={record['train_accuracy']:.3f}, "
                                f"img_s={record['images_per_s']:.0f}{tail}")
            bar.close()
        if scheduler is not None:
            scheduler.step()
        history.append(record)
        if callback is not None and callback(record):
            break
    return history


def save_history(history, path):
    with open(path, "w") as f:
        json.dump(history, f, indent=1)


def plot_history(history, path):
    """Loss and accuracy curves per epoch as a PNG; returns False (and writes nothing) without
    matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax, label in (("train_loss", ax_loss, "train"), ("test_loss", ax_loss, "test"),
                           ("train_accuracy", ax_acc, "train"), ("test_accuracy", ax_acc, "test")):
        if history and key in history[0]:
            ax.plot(epochs, [r[key] for r in history], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
