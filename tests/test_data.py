"""fastconv.data: the bundled digits, the DataLoader, the batch augmentations."""
import numpy as np
import pytest

from fastconv import data


@pytest.fixture(scope="module")
def digits8():
    return data.load_digits()


def _rows(x):
    """Images as sorted byte rows, to compare sets of images regardless of order."""
    flat = np.ascontiguousarray(x.reshape(len(x), -1))
    return sorted(r.tobytes() for r in flat)


def test_digits_shapes_range_and_split(digits8):
    d = digits8
    assert d.x_train.shape == (1438, 1, 8, 8) and d.x_test.shape == (359, 1, 8, 8)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype.kind == "i"
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    # the raw data are pixel counts 0..16: scaled by 1/16 exactly
    assert np.all(np.isin(np.unique(d.x_train * 16), np.arange(17)))
    counts = np.bincount(np.concatenate([d.y_train, d.y_test]), minlength=10)
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # the UCI test set's counts
    # stratified: every class gives round(20%) of its images to the test set
    assert np.bincount(d.y_test, minlength=10).tolist() == [int(round(c * 0.2)) for c in counts]


def test_digits_split_is_a_partition_fixed_by_seed(digits8):
    d, again, other = digits8, data.load_digits(seed=0), data.load_digits(seed=1)
    assert np.array_equal(d.x_test, again.x_test) and np.array_equal(d.y_train, again.y_train)
    assert not np.array_equal(d.y_test, other.y_test)
    full = np.concatenate([d.x_train, d.x_test])
    assert _rows(full) == _rows(np.concatenate([other.x_train, other.x_test]))


def _bilinear_reference(img, out):
    """Half-pixel-centre bilinear resize of one 2-D image, pixel by pixel in float64."""
    n = img.shape[0]
    scale = n / out
    res = np.zeros((out, out))
    for i in range(out):
        for j in range(out):
            sy, sx = max((i + 0.5) * scale - 0.5, 0), max((j + 0.5) * scale - 0.5, 0)
            y0, x0 = min(int(sy), n - 1), min(int(sx), n - 1)
            y1, x1 = min(y0 + 1, n - 1), min(x0 + 1, n - 1)
            fy, fx = sy - y0, sx - x0
            res[i, j] = ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x1])
                         + fy * ((1 - fx) * img[y1, x0] + fx * img[y1, x1]))
    return res


@pytest.mark.parametrize("out", [32, 13, 5])
def test_resize_bilinear_matches_reference(out):
    img = np.random.default_rng(out).random((8, 8))
    got = data.resize_bilinear(img[None, None], out)[0, 0]
    np.testing.assert_allclose(got, _bilinear_reference(img, out), rtol=1e-12, atol=1e-12)


def test_resize_bilinear_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x), size=(32, 20), mode="bilinear",
                                           align_corners=False).numpy()
    np.testing.assert_allclose(data.resize_bilinear(x, (32, 20)), want, rtol=1e-5, atol=1e-6)


def test_digits_resized_for_lenet(digits8):
    d32 = data.load_digits(size=32, dtype=np.float64)
    assert d32.x_train.shape == (1438, 1, 32, 32) and d32.x_train.dtype == np.float64
    np.testing.assert_allclose(d32.x_test, data.resize_bilinear(digits8.x_test.astype(np.float64), 32), atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(test_size=0), "test_size"), (dict(test_size=1.5), "test_size"),
    (dict(dtype=np.int32), "dtype"), (dict(size=0), "size"),
])
def test_load_digits_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        data.load_digits(**kwargs)


# ---- DataLoader --------------------------------------------------------------------------------
def _xy(n=10):
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 1, 2, 2)
    return x, np.arange(n)


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_loader_batches(drop_last, sizes):
    x, y = _xy()
    loader = data.DataLoader(x, y, batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches) == len(sizes)
    assert [len(b[0]) for b in batches] == sizes and loader.num_samples == sum(sizes)
    for xb, yb in batches:
        assert xb.shape[1:] == (1, 2, 2) and np.array_equal(xb, x[yb])  # pairs stay together
    assert np.array_equal(np.concatenate([b[1] for b in batches]), np.arange(sum(sizes)))  # in order


def test_loader_shuffle_is_seeded_and_covers_every_sample():
    x, y = _xy(23)
    a = data.DataLoader(x, y, batch_size=5, shuffle=True, seed=7)
    b = data.DataLoader(x, y, batch_size=5, shuffle=True, seed=7)
    epoch_a1, epoch_a2 = [np.concatenate([yb for _, yb in a]) for _ in range(2)]
    epoch_b1 = np.concatenate([yb for _, yb in b])
    assert np.array_equal(epoch_a1, epoch_b1)  # same seed, same order
    assert not np.array_equal(epoch_a1, epoch_a2)  # a new order each epoch
    assert sorted(epoch_a1) == sorted(epoch_a2) == list(range(23))
    c = np.concatenate([yb for _, yb in data.DataLoader(x, y, batch_size=5, shuffle=True, seed=8)])
    assert not np.array_equal(epoch_a1, c)


def test_loader_without_labels_and_transform():
    x, _ = _xy(6)
    seen = []

    def double(batch, rng):
        assert isinstance(rng, np.random.Generator)
        seen.append(len(batch))
        return batch * 2

    out = list(data.DataLoader(x, batch_size=4, transform=double))
    assert seen == [4, 2] and np.array_equal(np.concatenate(out), x * 2)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(batch_size=0), ValueError, "batch_size"), (dict(batch_size=2.5), ValueError, "batch_size"),
    (dict(batch_size=True), ValueError, "batch_size"), (dict(y=np.arange(3)), ValueError, "y has 3"),
    (dict(transform=5), TypeError, "transform"),
])
def test_loader_rejects_bad_arguments(kwargs, err, match):
    x, y = _xy()
    kwargs.setdefault("y", y)
    with pytest.raises(err, match=match):
        data.DataLoader(x, **kwargs)


# ---- augmentations -----------------------------------------------------------------------------
def _find_shift(src, out, max_shift):
    """The (dy, dx) such that `out` is `src` translated with zero fill, or None."""
    h, w = src.shape[-2:]
    p = max_shift
    padded = np.pad(src, ((0, 0), (p, p), (p, p)))
    for t in range(2 * p + 1):
        for l in range(2 * p + 1):
            if np.array_equal(padded[:, t:t + h, l:l + w], out):
                return t - p, l - p
    return None


def test_random_shift_translates_with_zero_fill():
    rng = np.random.default_rng(0)
    x = rng.random((64, 2, 7, 9)).astype(np.float32) + 1  # no zeros inside the images
    out = data.RandomShift(2)(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    shifts = [_find_shift(x[i], out[i], 2) for i in range(len(x))]
    assert None not in shifts
    assert len(set(shifts)) > 10  # drawn per sample, both directions
    assert {s[0] for s in shifts} == {s[1] for s in shifts} == set(range(-2, 3))


def test_random_crop_size_and_padding():
    x = np.random.default_rng(0).random((8, 3, 10, 10))
    out = data.RandomCrop(6)(x, np.random.default_rng(0))
    assert out.shape == (8, 3, 6, 6)
    for i in range(8):  # each crop is a window of its own image
        assert any(np.array_equal(x[i, :, t:t + 6, l:l + 6], out[i]) for t in range(5) for l in range(5))
    with pytest.raises(ValueError, match="larger"):
        data.RandomCrop(12)(x, np.random.default_rng(0))
    with pytest.raises(ValueError, match="padding"):
        data.RandomCrop(4, padding=-1)


def test_random_horizontal_flip_and_compose():
    x = np.random.default_rng(0).random((50, 1, 3, 4))
    assert np.array_equal(data.RandomHorizontalFlip(0.0)(x, np.random.default_rng(0)), x)
    assert np.array_equal(data.RandomHorizontalFlip(1.0)(x, np.random.default_rng(0)), x[..., ::-1])
    half = data.RandomHorizontalFlip(0.5)(x, np.random.default_rng(0))
    flipped = [np.array_equal(half[i], x[i, :, :, ::-1]) for i in range(50)]
    kept = [np.array_equal(half[i], x[i]) for i in range(50)]
    assert all(f or k for f, k in zip(flipped, kept)) and 10 < sum(flipped) < 40
    both = data.Compose([data.RandomHorizontalFlip(1.0), data.RandomHorizontalFlip(1.0)])
    assert np.array_equal(both(x, np.random.default_rng(0)), x)
    with pytest.raises(ValueError, match="NCHW"):
        data.RandomHorizontalFlip()(x[0], np.random.default_rng(0))
