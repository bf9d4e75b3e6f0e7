"""Edge detection with hand-set 3x3 filters, all run by one fastconv conv2d call.

    python examples/edge_filters.py                  # writes edge_filters.png
    python examples/edge_filters.py --out edges.png

The photograph comes from scikit-image (pip install scikit-image) or else from scikit-learn
(pip install scikit-learn pillow); matplotlib draws the grid. Without them the script says what to
install and exits. The zero padding makes the photograph's frame an edge too (the lines along
the borders of the maps).
"""
import argparse
import sys

import numpy as np

import fastconv.functional as F


def filter_bank():
    """(names, weight): the filters as one OIHW weight of shape (F, 1, 3, 3), float32.

    conv2d computes a cross-correlation (no kernel flip), so [-1, 0, 1] across a row is "right
    minus left": large where brightness changes from left to right, i.e. on vertical edges."""
    vertical = np.array([[-1, 0, 1]] * 3)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])  # the same, centre row weighted twice
    bank = {"vertical edge": vertical, "horizontal edge": vertical.T, "Sobel x": sobel_x, "Sobel y": sobel_x.T}
    return list(bank), np.stack(list(bank.values())).astype(np.float32)[:, None]


def apply_filters(image, weight):
    """A grey (H, W) image -> (F, H, W) feature maps: one conv2d, padding 1 keeps the size."""
    x = np.asarray(image, dtype=np.float32)[None, None]  # NCHW: a batch of one 1-channel image
    return F.conv2d(x, weight, padding=1)[0]


def edge_maps(image):
    """name -> (H, W) map: each filter's response plus the Sobel gradient magnitude."""
    names, weight = filter_bank()
    maps = dict(zip(names, apply_filters(image, weight)))
    maps["Sobel magnitude"] = np.hypot(maps["Sobel x"], maps["Sobel y"])
    return maps


def load_photo():
    """(grey image in [0, 1], where it came from), or (None, None) without either package."""
    try:
        from skimage import data
        return data.camera() / 255.0, "skimage.data.camera()"
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_image
        return load_sample_image("china.jpg").mean(axis=2) / 255.0, 'sklearn load_sample_image("china.jpg")'
    except ImportError:
        return None, None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="edge_filters.png", help="the PNG to write (default edge_filters.png)")
    args = parser.parse_args(argv)
    image, source = load_photo()
    if image is None:
        print("edge_filters.py: no photograph to filter; pip install scikit-image (or scikit-learn pillow)")
        return 0
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("edge_filters.py: no plot without matplotlib; pip install matplotlib")
        return 0

    maps = edge_maps(image)
    fig, axes = plt.subplots(2, 3, figsize=(12, 8.5))
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title(f"input: {source}", fontsize=9)
    for ax, (name, fmap) in zip(axes.flat[1:], maps.items()):
        lim = np.percentile(np.abs(fmap), 99)  # saturate the strongest 1% so weaker edges show
        if name == "Sobel magnitude":
            ax.imshow(fmap, cmap="gray", vmin=0, vmax=lim)
        else:  # signed: red where brightness rises (rightwards/downwards), blue where it falls
            ax.imshow(fmap, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(name)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"{len(maps)} feature maps of a {image.shape[1]}x{image.shape[0]} photograph written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
