"""Train LeNet-5 on the bundled UCI digits with fastconv's Python API, notebook style.

    python examples/train_digits.py                         # 30 epochs, about 10 s on 2 cores
    python examples/train_digits.py --epochs 5 --out /tmp/digits

Each `# %%` marks a cell (VS Code, PyCharm, Spyder and jupytext run them one at a time). Writes
samples.png, curves.png (both need matplotlib), metrics.json and weights.npz to --out (default
./train_digits_out). The `fastconv train` command does the same in one line.
"""
# %% Settings
import argparse
import os
import sys

import numpy as np

import fastconv
from fastconv import data, models, optim, train

parser = argparse.ArgumentParser(description="Train LeNet-5 on the bundled UCI digits.")
parser.add_argument("--epochs", type=int, default=30, help="passes over the training set (default 30)")
parser.add_argument("--out", default="train_digits_out", help="output folder (default ./train_digits_out)")
# In a notebook kernel sys.argv holds the kernel's own arguments: use the defaults there.
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
os.makedirs(args.out, exist_ok=True)
fastconv.manual_seed(0)  # the same initial weights on every run
fastconv.show_config()

# %% Load the data: 1,797 8x8 digits, upsampled to 32x32 for LeNet-5, split 80/20 per class
d = data.load_digits(size=32)
print(f"train {d.x_train.shape} {d.x_train.dtype}, test {d.x_test.shape}; "
      f"labels {np.bincount(d.y_train).tolist()} per class")

# %% Look at a few images
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
    print("no sample grid or curves without matplotlib (pip install matplotlib)")
if plt is not None:
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
    for ax, img, label in zip(axes.flat, d.x_train, d.y_train):
        ax.imshow(img[0], cmap="gray_r")
        ax.set_title(str(label))
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "samples.png"), dpi=80)
    plt.close(fig)

# %% Build the model and look at its layers
model = models.lenet5()
fastconv.summary(model, (1, 1, 32, 32))

# %% Train: Adam with a cosine-annealed learning rate, random shifts of up to 2 pixels
loader = data.DataLoader(d.x_train, d.y_train, batch_size=32, shuffle=True, seed=0,
                         transform=data.RandomShift(2))
opt = optim.Adam(model.parameters(), lr=3e-3)
sched = optim.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
history = train.fit(model, loader, epochs=args.epochs, optimizer=opt, scheduler=sched,
                    eval_data=(d.x_test, d.y_test))
train.save_history(history, os.path.join(args.out, "metrics.json"))

# %% Evaluate on the test set: rows are true digits, columns predictions
result = train.evaluate(model, (d.x_test, d.y_test), num_classes=10)
print(f"test accuracy {result['accuracy']:.2%} on {result['samples']} images, loss {result['loss']:.4f}")
print(train.format_confusion(result["confusion"]))

# %% Plot the loss and accuracy curves
if history and train.plot_history(history, os.path.join(args.out, "curves.png")):
    print(f"curves in {os.path.join(args.out, 'curves.png')}")

# %% Save the weights, load them into a fresh model, check it predicts the same
path = os.path.join(args.out, "weights.npz")
fastconv.save(model, path)
reloaded = models.lenet5()
reloaded.load_state_dict(fastconv.load(path))
before, after = train.predict(model, d.x_test), train.predict(reloaded, d.x_test)
assert np.array_equal(before.argmax(axis=1), after.argmax(axis=1)), "the reloaded model predicts otherwise"
print(f"reloaded {path}: same predictions, logits within {np.abs(before - after).max():.1e}")
