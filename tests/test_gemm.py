"""fastconv.matmul against the float64 reference, on every ISA the machine supports."""
import threading

import numpy as np
import pytest

import fastconv
from fastconv import _core
from reference import matmul_abs_ref

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]


def rng_for(*key):
    """A deterministic generator per test case (independent of test order)."""
    # (str hashes are salted per process: derive the seed from the text instead.)
    seed = [sum(ord(ch) * 31**i for i, ch in enumerate(str(part))) % (2**31) for part in key]
    return np.random.default_rng(seed)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---- the tolerance itself --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("k", [1, 7, 300, 1000])
def test_error_bound_accepts_numpy_and_rejects_wrong_products(dtype, k, assert_matmul_close):
    """The bound used everywhere below accepts an ordinary floating-point product (NumPy's own,
    computed in the working precision) and rejects products with one term missing or doubled,
    rows shifted by one, or one element off by 0.1% of its sum of absolute terms."""
    rng = rng_for("bound", k, np.dtype(dtype).name)
    a, b = randn(rng, (23, k), dtype), randn(rng, (k, 19), dtype)
    good = np.matmul(a, b)
    assert_matmul_close(good, a, b)

    p = k // 2
    term = np.outer(a[:, p], b[p, :]).astype(dtype)
    wrong = {
        "missing term": (good - term).astype(dtype),
        "doubled term": (good + term).astype(dtype),
        "rows shifted": np.roll(good, 1, axis=0),
        "one element perturbed": good.copy(),
    }
    wrong["one element perturbed"][5, 7] += dtype(1e-3 * matmul_abs_ref(a, b)[5, 7])
    for name, bad in wrong.items():
        with pytest.raises(AssertionError, match="outside the error bound"):
            assert_matmul_close(bad, a, b)
    nan = good.copy()
    nan[0, 0] = np.nan
    with pytest.raises(AssertionError, match="NaN pattern"):
        assert_matmul_close(nan, a, b)


# ---- shapes ---------------------------------------------------------------------------------
#
# Tiles (MR x NR): f32 8x48 (avx512), 6x16 (avx2), 4x16 (generic); f64 14x16, 6x8, 4x8.
# Blocks: KC 256 on every ISA (512 for AVX-512 on AMD); MC 256 (f32) or 280 (f64) / 144 / 128;
# NC 2064 (f32 avx512) / 2048 / 1024 (f64).
# Shapes are (m, k, n). They include exact tile multiples, one under and one over each tile,
# primes, k just over one and two KC blocks, m just over each MC, and n just over NC.
SHAPES = [
    (1, 1, 1), (1, 1, 2), (2, 1, 1), (1, 300, 1), (2, 3, 5),
    (4, 16, 16), (4, 8, 8), (6, 5, 16), (6, 3, 8), (14, 7, 32), (14, 9, 16),
    (3, 2, 15), (5, 4, 17), (7, 6, 31), (13, 11, 33), (15, 1, 7), (27, 10, 63),
    (28, 2, 64), (29, 12, 65), (42, 3, 48), (43, 5, 47),
    (17, 255, 19), (9, 256, 11), (5, 257, 7), (31, 300, 37), (3, 513, 2), (8, 600, 9),
    (97, 101, 103), (127, 131, 137), (257, 61, 67),
    (129, 19, 9), (145, 33, 41), (281, 64, 33), (300, 13, 300),
    (300, 1, 300), (1, 300, 300), (300, 300, 1), (200, 300, 250), (300, 300, 300),
    (8, 7, 48), (9, 5, 49), (7, 6, 47), (16, 3, 96), (17, 4, 97), (2, 1025, 49),
    (7, 11, 1025), (3, 5, 2049), (3, 5, 2065),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_shapes(isa, shape, dtype, assert_matmul_close):
    m, k, n = shape
    rng = rng_for("shapes", m, k, n, np.dtype(dtype).name)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    a0, b0 = a.copy(), b.copy()
    c = fastconv.matmul(a, b)
    assert_matmul_close(c, a, b)
    assert not np.shares_memory(c, a) and not np.shares_memory(c, b)
    np.testing.assert_array_equal(a, a0, err_msg="matmul modified a")
    np.testing.assert_array_equal(b, b0, err_msg="matmul modified b")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_tile_edges_of_the_active_kernel(isa, dtype, assert_matmul_close):
    """Around the micro-tile of the selected kernel, whatever its size: m and n one under,
    at and one over a tile, and past (m) or just under (n) two tiles, so every combination of
    full and edge tiles runs."""
    mr, nr = _core.gemm_tile(np.dtype(dtype).itemsize)
    assert fastconv.config()["isa"] == isa
    rng = rng_for("edges", isa, np.dtype(dtype).name)
    for m in sorted({max(mr - 1, 1), mr, mr + 1, 2 * mr + 1}):
        for n in sorted({max(nr - 1, 1), nr, nr + 1, 2 * nr - 1}):
            for k in (1, 3, 10):
                a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
                assert_matmul_close(fastconv.matmul(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_cancellation(isa, dtype, assert_matmul_close):
    """Outputs that are exactly zero in exact arithmetic (b's columns come in +/- pairs), next to
    ordinary ones: the elementwise bound still applies, and the zeros come out (near) zero."""
    rng = rng_for("cancel", np.dtype(dtype).name)
    m, k, n = 37, 64, 40
    a = randn(rng, (m, k), dtype)
    b = randn(rng, (k, n), dtype)
    b[k // 2:, ::2] = -b[: k // 2, ::2]          # even columns: sum over p of a*(x - x)
    a[:, k // 2:] = a[:, : k // 2]
    c = fastconv.matmul(a, b)
    assert_matmul_close(c, a, b)
    assert np.abs(c[:, ::2]).max() <= 1e-3 * np.abs(c[:, 1::2]).max()


def test_matmul_exact_small_integers(isa):
    """Small integers multiply and add exactly in any order: the result must be exact."""
    rng = rng_for("ints")
    for dtype in DTYPES:
        a = rng.integers(-8, 9, size=(33, 47)).astype(dtype)
        b = rng.integers(-8, 9, size=(47, 35)).astype(dtype)
        np.testing.assert_array_equal(fastconv.matmul(a, b), (a.astype(np.int64) @ b.astype(np.int64)).astype(dtype))


# ---- layouts --------------------------------------------------------------------------------

def make_operand(rng, shape, dtype, layout):
    """A (rows x cols) operand of `dtype` laid out as `layout`, filled with random values."""
    r, c = shape
    dtype = np.dtype(dtype)
    isz = dtype.itemsize
    vals = rng.standard_normal(shape).astype(dtype)
    if layout == "C":
        x = vals
    elif layout == "F":
        x = np.asfortranarray(vals)
        assert x.flags.f_contiguous and (r == 1 or c == 1 or not x.flags.c_contiguous)
    elif layout == "T":  # transposed view of a C array
        x = np.ascontiguousarray(vals.T).T
    elif layout == "sliced":  # a[::2, 1::3] of a bigger array
        big = np.full((2 * r, 3 * c + 1), np.nan, dtype)
        big[::2, 1::3] = vals
        x = big[::2, 1::3]
    elif layout == "T_sliced":  # transposed and strided both ways
        big = np.full((3 * c, 2 * r + 1), np.nan, dtype)
        big[::3, 1::2] = vals.T
        x = big[::3, 1::2].T
    elif layout == "neg_rows":  # a[::-1]
        x = np.ascontiguousarray(vals[::-1])[::-1]
    elif layout == "neg_both":
        x = np.ascontiguousarray(vals[::-1, ::-1])[::-1, ::-1]
    elif layout == "neg_cols_step2":  # stride -2 along columns
        big = np.full((r, 2 * c), np.nan, dtype)
        big[:, ::-2] = vals
        x = big[:, ::-2]
    elif layout == "readonly":
        x = vals.copy()
        x.flags.writeable = False
    elif layout == "bcast_rows":  # row stride 0
        x = np.broadcast_to(vals[0], shape)
    elif layout == "bcast_cols":  # column stride 0
        x = np.broadcast_to(vals[:, :1], shape)
    elif layout == "bcast_scalar":  # both strides 0
        x = np.broadcast_to(vals[0, 0], shape)
    elif layout == "byte_strides":  # row stride not a multiple of the element size
        row_bytes = c * isz + 1
        buf = np.zeros((r - 1) * row_bytes + c * isz + isz, np.uint8)
        x = np.ndarray(shape, dtype=dtype, buffer=buf, strides=(row_bytes, isz))
        x[...] = vals
        assert r == 1 or x.strides[0] % isz != 0
    elif layout == "byte_strides_cols":  # column stride not a multiple either (via a record view)
        rec = np.zeros(shape, dtype=[("pad", "u1"), ("v", dtype)])  # packed: 1 + isz bytes
        x = rec["v"]
        x[...] = vals
        assert c == 1 or x.strides[1] % isz != 0
    elif layout == "misaligned":  # element-multiple strides, data pointer off by one byte
        buf = np.zeros(r * c * isz + 1, np.uint8)
        x = np.ndarray(shape, dtype=dtype, buffer=buf, offset=1)
        x[...] = vals
        assert not x.flags.aligned
    else:
        raise ValueError(layout)
    assert x.shape == shape and x.dtype == dtype
    return x


LAYOUTS = ["C", "F", "T", "sliced", "T_sliced", "neg_rows", "neg_both", "neg_cols_step2", "readonly",
           "bcast_rows", "bcast_cols", "bcast_scalar", "byte_strides", "byte_strides_cols", "misaligned"]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("which", ["a", "b", "both"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_matmul_layouts(isa, layout, which, dtype, assert_matmul_close):
    # k > KC so that the packers' k offsets (second block) are exercised on strided reads too.
    m, k, n = 37, 261, 45
    rng = rng_for("layout", layout, which, np.dtype(dtype).name)
    a = make_operand(rng, (m, k), dtype, layout if which in ("a", "both") else "C")
    b = make_operand(rng, (k, n), dtype, layout if which in ("b", "both") else "C")
    a0, b0 = np.array(a), np.array(b)
    c = fastconv.matmul(a, b)
    assert_matmul_close(c, a0, b0)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_mixed_layout_pairs(dtype, assert_matmul_close):
    rng = rng_for("pairs", np.dtype(dtype).name)
    for la in LAYOUTS:
        for lb in ("T", "neg_both", "bcast_cols", "byte_strides_cols", "sliced"):
            a = make_operand(rng, (19, 23), dtype, la)
            b = make_operand(rng, (23, 29), dtype, lb)
            assert_matmul_close(fastconv.matmul(a, b), np.array(a), np.array(b))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_same_array_both_operands(dtype, assert_matmul_close):
    rng = rng_for("same", np.dtype(dtype).name)
    x = randn(rng, (40, 40), dtype)
    assert_matmul_close(fastconv.matmul(x, x), x, x)
    assert_matmul_close(fastconv.matmul(x, x.T), x, x.T)


def test_matmul_accepts_ndarray_subclass_of_right_dtype(assert_matmul_close):
    class Sub(np.ndarray):
        pass

    rng = rng_for("subclass")
    a = randn(rng, (5, 6), np.float64)
    b = randn(rng, (6, 7), np.float64)
    c = fastconv.matmul(a.view(Sub), b.view(Sub))
    assert_matmul_close(np.asarray(c), a, b)


# ---- empty dimensions -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(0, 3, 4), (3, 4, 0), (3, 0, 4), (0, 0, 4), (3, 0, 0), (0, 0, 0), (0, 5, 0),
                                   (300, 0, 300)],
                         ids=lambda s: "x".join(map(str, s)))
def test_matmul_empty(isa, shape, dtype):
    m, k, n = shape
    a = np.ones((m, k), dtype)
    b = np.ones((k, n), dtype)
    expected = np.matmul(a, b)
    c = fastconv.matmul(a, b)
    assert c.shape == expected.shape == (m, n)
    assert c.dtype == expected.dtype == np.dtype(dtype)
    assert c.flags.c_contiguous
    np.testing.assert_array_equal(c, expected)

    out = np.full((m, n), np.nan, dtype)
    r = fastconv.matmul(a, b, out=out)
    assert r is out
    np.testing.assert_array_equal(out, expected)   # k == 0: zeros, not the NaN it held


# ---- out= -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (37, 261, 45), (29, 12, 65)], ids=lambda s: "x".join(map(str, s)))
def test_matmul_out(isa, shape, dtype, assert_matmul_close):
    m, k, n = shape
    rng = rng_for("out", m, k, n, np.dtype(dtype).name)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    out = np.full((m, n), np.nan, dtype)  # garbage in out must not leak into the result
    r = fastconv.matmul(a, b, out=out)
    assert r is out
    assert_matmul_close(out, a, b)
    # A second call overwrites, not accumulates.
    r = fastconv.matmul(a, b, out=out)
    assert r is out
    assert_matmul_close(out, a, b)


def test_matmul_out_row_of_bigger_c_array(assert_matmul_close):
    """A C-contiguous out that is a view into a bigger buffer: only its own elements change."""
    rng = rng_for("outview")
    a, b = randn(rng, (6, 9), np.float32), randn(rng, (9, 5), np.float32)
    buf = np.full((8, 5), -7.0, np.float32)
    out = buf[1:7]
    assert out.flags.c_contiguous
    assert fastconv.matmul(a, b, out=out) is out
    assert_matmul_close(buf[1:7], a, b)
    np.testing.assert_array_equal(buf[0], -7.0)
    np.testing.assert_array_equal(buf[7], -7.0)


def _ab(dtype=np.float32, m=4, k=5, n=6):
    rng = rng_for("outerr", m, k, n, np.dtype(dtype).name)
    return randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)


@pytest.mark.parametrize("bad_shape", [(6, 4), (4, 5), (4, 6, 1), (4,), (0, 6), (24,)])
def test_matmul_out_wrong_shape(bad_shape):
    a, b = _ab()
    with pytest.raises(ValueError, match=r"out has shape .*expected \(4, 6\)"):
        fastconv.matmul(a, b, out=np.empty(bad_shape, np.float32))


@pytest.mark.parametrize("bad_dtype", [np.float64, np.float16, np.int32, np.complex64])
def test_matmul_out_wrong_dtype(bad_dtype):
    a, b = _ab()
    out = np.zeros((4, 6), bad_dtype)
    with pytest.raises(TypeError, match=r"out has dtype .*expected float32"):
        fastconv.matmul(a, b, out=out)
    assert not out.any()


@pytest.mark.parametrize("kind", ["F", "strided_cols", "strided_rows", "negative"])
def test_matmul_out_not_c_contiguous(kind):
    a, b = _ab()
    if kind == "F":
        out = np.zeros((4, 6), np.float32, order="F")
    elif kind == "strided_cols":
        out = np.zeros((4, 12), np.float32)[:, ::2]
    elif kind == "strided_rows":
        out = np.zeros((8, 6), np.float32)[::2]
    else:
        out = np.zeros((4, 6), np.float32)[::-1]
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        fastconv.matmul(a, b, out=out)
    assert not out.any()


def test_matmul_out_read_only():
    a, b = _ab()
    out = np.zeros((4, 6), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        fastconv.matmul(a, b, out=out)
    assert not out.any()


def test_matmul_out_broadcast_is_rejected():
    a, b = _ab()
    out = np.broadcast_to(np.zeros(6, np.float32), (4, 6))
    with pytest.raises(ValueError, match="out"):
        fastconv.matmul(a, b, out=out)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_out_aliasing_an_input(dtype):
    rng = rng_for("alias", np.dtype(dtype).name)
    a = randn(rng, (5, 5), dtype)
    b = randn(rng, (5, 5), dtype)
    a0, b0 = a.copy(), b.copy()
    with pytest.raises(ValueError, match="out shares memory with a"):
        fastconv.matmul(a, b, out=a)
    with pytest.raises(ValueError, match="out shares memory with b"):
        fastconv.matmul(a, b, out=b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)

    # Partial overlap: out is the bottom half of a buffer whose top rows are b.
    buf = randn(rng, (8, 5), dtype)
    bb = buf[:5]
    with pytest.raises(ValueError, match="out shares memory with b"):
        fastconv.matmul(a, bb, out=buf[3:8])
    # A view of a with other strides (transposed) overlaps too.
    sq = randn(rng, (5, 5), dtype)
    with pytest.raises(ValueError, match="out shares memory with a"):
        fastconv.matmul(sq.T, b, out=sq)


def test_matmul_out_adjacent_but_disjoint_is_fine(assert_matmul_close):
    """Sharing a buffer without overlapping elements is not aliasing."""
    rng = rng_for("disjoint")
    buf = randn(rng, (10, 5), np.float64)
    a, out = buf[:5], buf[5:]
    b = randn(rng, (5, 5), np.float64)
    a0 = a.copy()
    assert fastconv.matmul(a, b, out=out) is out
    assert_matmul_close(out, a0, b)


@pytest.mark.parametrize("out", [[[0.0] * 6] * 4, 3.0, "out"], ids=["list", "float", "str"])
def test_matmul_out_not_an_array(out):
    a, b = _ab()
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        fastconv.matmul(a, b, out=out)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_out_misaligned(isa, dtype, assert_matmul_close):
    """A C-contiguous out whose data pointer is not element-aligned (legal in NumPy)."""
    m, k, n = 37, 30, 45
    rng = rng_for("misout", np.dtype(dtype).name)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    isz = np.dtype(dtype).itemsize
    buf = np.zeros(m * n * isz + 1, np.uint8)
    out = np.ndarray((m, n), dtype=dtype, buffer=buf, offset=1)
    assert out.flags.c_contiguous and not out.flags.aligned
    assert fastconv.matmul(a, b, out=out) is out
    assert_matmul_close(out, a, b)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_length_one_dims_with_odd_strides(isa, dtype, assert_matmul_close):
    """NumPy ignores the stride of a length-1 dimension (the array can still be flagged
    contiguous), so it may be anything, even not a multiple of the element size."""
    from numpy.lib.stride_tricks import as_strided

    isz = np.dtype(dtype).itemsize
    rng = rng_for("len1", np.dtype(dtype).name)
    col = randn(rng, (50, 1), dtype)
    row = randn(rng, (1, 40), dtype)
    a = as_strided(col, shape=(50, 1), strides=(isz, 3))      # k == 1, odd column stride
    b = as_strided(row, shape=(1, 40), strides=(5, isz))      # k == 1, odd row stride
    assert_matmul_close(fastconv.matmul(a, b), col, row)
    a1 = as_strided(row, shape=(1, 40), strides=(7, isz))     # m == 1
    b1 = randn(rng, (40, 33), dtype)
    assert_matmul_close(fastconv.matmul(a1, b1), row, b1)
    out = as_strided(np.zeros((50, 1), dtype), shape=(50, 1), strides=(isz, 3))
    c2 = randn(rng, (50, 9), dtype)
    d2 = randn(rng, (9, 1), dtype)
    assert fastconv.matmul(c2, d2, out=out) is out
    assert_matmul_close(np.array(out), c2, d2)


# ---- bad inputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("shape", [(5,), (2, 3, 5), (1, 1, 1, 1), ()], ids=["1d", "3d", "4d", "0d"])
def test_matmul_wrong_ndim(which, shape):
    a, b = np.ones((5, 5), np.float32), np.ones((5, 5), np.float32)
    bad = np.ones(shape, np.float32)
    args = (bad, b) if which == "a" else (a, bad)
    with pytest.raises(ValueError, match=rf"{which} must be 2-D, got a {len(shape)}-D array"):
        fastconv.matmul(*args)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shapes", [((3, 4), (5, 6)), ((3, 4), (3, 4)), ((1, 0), (1, 1)), ((4, 1), (2, 4))])
def test_matmul_inner_dimension_mismatch(dtype, shapes):
    sa, sb = shapes
    with pytest.raises(ValueError, match=rf"inner dimensions differ.*\({sa[1]} != {sb[0]}\)"):
        fastconv.matmul(np.ones(sa, dtype), np.ones(sb, dtype))


@pytest.mark.parametrize("bad_dtype", [np.int32, np.int64, np.float16, np.complex64, np.complex128, np.bool_,
                                       np.longdouble, object, ">f4", ">f8"],
                         ids=["int32", "int64", "float16", "complex64", "complex128", "bool", "longdouble",
                              "object", "f4-byteswapped", "f8-byteswapped"])
@pytest.mark.parametrize("which", ["a", "b"])
def test_matmul_bad_dtype(bad_dtype, which):
    good = np.ones((3, 3), np.float32 if np.dtype(bad_dtype).itemsize == 4 else np.float64)
    bad = np.ones((3, 3), bad_dtype)
    args = (bad, good) if which == "a" else (good, bad)
    with pytest.raises(TypeError, match=rf"{which} must have dtype float32 or float64"):
        fastconv.matmul(*args)


def test_matmul_mixed_float_dtypes():
    a32, a64 = np.ones((3, 4), np.float32), np.ones((3, 4), np.float64)
    b32, b64 = np.ones((4, 2), np.float32), np.ones((4, 2), np.float64)
    with pytest.raises(TypeError, match="mixed dtypes.*a is float32, b is float64"):
        fastconv.matmul(a32, b64)
    with pytest.raises(TypeError, match="mixed dtypes.*a is float64, b is float32"):
        fastconv.matmul(a64, b32)


@pytest.mark.parametrize("which", ["a", "b"])
@pytest.mark.parametrize("value", [[[1.0, 2.0], [3.0, 4.0]], ((1.0, 2.0), (3.0, 4.0)), 2.0, None],
                         ids=["list", "tuple", "float", "None"])
def test_matmul_non_array_inputs(which, value):
    arr = np.ones((2, 2), np.float64)
    args = (value, arr) if which == "a" else (arr, value)
    with pytest.raises(TypeError, match=rf"{which} must be a numpy.ndarray"):
        fastconv.matmul(*args)


# ---- threads --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_one_and_two_threads_agree(isa, dtype, assert_matmul_close, assert_close):
    m, k, n = 200, 300, 250
    rng = rng_for("threads", np.dtype(dtype).name)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    with fastconv.threads(1):
        assert fastconv.get_num_threads() == 1
        c1 = fastconv.matmul(a, b)
    with fastconv.threads(2):
        if fastconv.config()["openmp"]:
            assert fastconv.get_num_threads() == 2
        c2 = fastconv.matmul(a, b)
    assert_matmul_close(c1, a, b)
    assert_matmul_close(c2, a, b)
    assert_close(c2, c1.astype(np.float64), matmul_abs_ref(a, b), n_terms=k, what="2 threads vs 1 thread")


@pytest.mark.parametrize("nthreads", [3, 7])
def test_matmul_uneven_thread_counts(isa, nthreads, assert_matmul_close):
    """Thread counts that split neither the panels nor the tiles evenly (the product is big
    enough for the driver to use them all)."""
    rng = rng_for("uneven", nthreads)
    for dtype in DTYPES:
        a, b = randn(rng, (301, 300), dtype), randn(rng, (300, 299), dtype)
        with fastconv.threads(nthreads):
            c = fastconv.matmul(a, b)
        assert_matmul_close(c, a, b)


@pytest.mark.parametrize("blocks", ["1,1,1", "5,7,9", "30,100,70"])
def test_matmul_small_cache_blocks(monkeypatch, blocks, assert_matmul_close):
    """FASTCONV_GEMM_BLOCKS="mc,kc,nc" (the tuning override, read when an ISA is selected)
    shrinks the cache blocks, so that every loop of the blocked driver (over n, k and m blocks)
    runs many times, with 1 and 2 threads, on every ISA."""
    current = _core.get_isa()
    rng = rng_for("blocks", blocks)
    try:
        for name in _core.supported_isas():
            monkeypatch.setenv("FASTCONV_GEMM_BLOCKS", blocks)
            _core.set_isa(name)
            for dtype in DTYPES:
                for m, k, n in [(1, 1, 1), (37, 29, 45), (64, 70, 65), (130, 17, 3), (3, 17, 130)]:
                    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
                    for nthreads in (1, 2):
                        with fastconv.threads(nthreads):
                            c = fastconv.matmul(a, b)
                        assert_matmul_close(c, a, b)
    finally:
        monkeypatch.undo()
        _core.set_isa(current)  # re-reads the (restored) environment


def test_matmul_concurrent_python_threads(assert_matmul_close):
    """Four Python threads call matmul at once (the GIL is released in the kernel) on different
    inputs, several times each: every result is right."""
    cases = []
    for i, (shape, dtype) in enumerate([((120, 300, 130), np.float32), ((97, 257, 101), np.float64),
                                        ((150, 64, 70), np.float32), ((33, 280, 290), np.float64)]):
        m, k, n = shape
        rng = rng_for("concurrent", i)
        cases.append((randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)))
    results = [[] for _ in cases]
    errors = []
    barrier = threading.Barrier(len(cases))

    def work(i):
        try:
            a, b = cases[i]
            barrier.wait(timeout=30)
            with fastconv.threads(1 + i % 2):  # thread-local counts, mixed across the workers
                for _ in range(5):
                    results[i].append(fastconv.matmul(a, b))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append((i, repr(exc)))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "a matmul thread hung"
    assert not errors, errors
    for (a, b), res in zip(cases, results):
        assert len(res) == 5
        for c in res:
            assert_matmul_close(c, a, b)


# ---- NaN and Inf ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_nan_propagates(isa, dtype):
    m, k, n = 31, 270, 37
    rng = rng_for("nan", np.dtype(dtype).name)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    a[3, 5] = np.nan          # -> row 3 all NaN
    a[m - 1, k - 1] = np.nan  # last row, in the second k block
    b[200, 11] = np.nan       # -> column 11 all NaN
    c = fastconv.matmul(a, b)
    expected_nan = np.zeros((m, n), bool)
    expected_nan[[3, m - 1], :] = True
    expected_nan[:, 11] = True
    np.testing.assert_array_equal(np.isnan(c), expected_nan)
    assert np.isfinite(c[~expected_nan]).all()
    np.testing.assert_array_equal(np.isnan(c), np.isnan(np.matmul(a, b)))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_inf_propagates(isa, dtype):
    m, k, n = 20, 40, 35
    rng = rng_for("inf", np.dtype(dtype).name)
    a, b = randn(rng, (m, k), dtype), randn(rng, (k, n), dtype)
    a[7, 2] = np.inf
    b[2, 4] = 0.0             # inf * 0 -> NaN in (7, 4)
    c = fastconv.matmul(a, b)
    expected = np.where(b[2] > 0, np.inf, -np.inf)
    expected[4] = np.nan
    np.testing.assert_array_equal(c[7], expected.astype(dtype))  # NaN == NaN for assert_array_equal
    others = np.delete(c, 7, axis=0)
    assert np.isfinite(others).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_nan_in_out_is_overwritten(isa, dtype, assert_matmul_close):
    rng = rng_for("nanout", np.dtype(dtype).name)
    a, b = randn(rng, (45, 300), dtype), randn(rng, (300, 50), dtype)
    out = np.full((45, 50), np.nan, dtype)
    fastconv.matmul(a, b, out=out)
    assert_matmul_close(out, a, b)


# ---- the skinny path: few rows, B's rows contiguous along k (Linear's x @ W.T) -------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_matmul_skinny_unpacked_path(isa, dtype, nthreads, assert_matmul_close):
    """m <= 16 (or n <= 16) and k >= 128 with b a transposed C-contiguous array take the unpacked
    dot-product kernels: every row-group split (4, 3, 2, 1 rows per tile, as the ISA's registers allow), column counts around the 4-row blocks and the
    64-row thread blocks, k around whole vectors, and strided rows (a slice of a wider array)."""
    rng = rng_for("skinny", isa, np.dtype(dtype).name, nthreads)
    with fastconv.threads(nthreads):
        for m in (1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 16, 17):
            for n, k in ((1, 128), (3, 129), (4, 200), (5, 1000), (67, 131), (130, 300)):
                a = randn(rng, (m, k + 5), dtype)[:, 2:k + 2]      # rows strided, contiguous along k
                w = randn(rng, (n, k + 3), dtype)[:, :k]           # W rows strided, B = W.T
                assert_matmul_close(fastconv.matmul(a, w.T), a, w.T)
                # C comes out the same whether or not the skinny path runs (a copy of b is packed)
                assert_matmul_close(fastconv.matmul(a, np.ascontiguousarray(w.T)), a, w.T)
                # few columns: W @ x.T runs the same kernels with the roles swapped (C^T = B A^T)
                assert_matmul_close(fastconv.matmul(w, a.T), w, a.T)
