"""Bad arguments to the pooling functions raise TypeError/ValueError naming the argument,
before any kernel runs."""
import numpy as np
import pytest

import fastconv.functional as F

X = np.zeros((2, 3, 8, 8), np.float32)


@pytest.mark.parametrize("call, exc, words", [
    # arrays: type, dtype, ndim, empty planes
    (lambda: F.max_pool2d(X.tolist(), 2), TypeError, "x must be a numpy.ndarray"),
    (lambda: F.max_pool2d(X.astype(np.int32), 2), TypeError, "dtype float32 or float64"),
    (lambda: F.avg_pool2d(X.astype(np.float16), 2), TypeError, "dtype float32 or float64"),
    (lambda: F.max_pool2d(X[0, 0], 2), ValueError, "4-D (N, C, H, W) or 3-D"),
    (lambda: F.avg_pool2d(X[None], 2), ValueError, "4-D (N, C, H, W) or 3-D"),
    (lambda: F.adaptive_avg_pool2d(np.zeros((1, 0, 4, 4)), 2), ValueError, "at least one channel"),
    (lambda: F.global_avg_pool2d(np.zeros((1, 2, 0, 4))), ValueError, "at least one channel, row and column"),
    # kernel_size / stride / padding / dilation values
    (lambda: F.max_pool2d(X, 0), ValueError, "kernel_size must be >= 1, got 0"),
    (lambda: F.max_pool2d(X, -2), ValueError, "kernel_size must be >= 1"),
    (lambda: F.max_pool2d(X, True), TypeError, "kernel_size must be an int, got bool"),
    (lambda: F.max_pool2d(X, 2.0), TypeError, "kernel_size must be an int, got float"),
    (lambda: F.max_pool2d(X, (2, 2, 2)), ValueError, "kernel_size must be an int or a pair"),
    (lambda: F.max_pool2d(X, 2, stride=0), ValueError, "stride must be >= 1, got 0"),
    (lambda: F.avg_pool2d(X, 2, stride=(1, False)), TypeError, "stride[1] must be an int, got bool"),
    (lambda: F.max_pool2d(X, 2, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: F.max_pool2d(X, 3, padding=2), ValueError, "padding (2 along h) must be at most half of kernel_size"),
    (lambda: F.avg_pool2d(X, (4, 2), padding=(2, 2)), ValueError, "padding (2 along w) must be at most half"),
    (lambda: F.max_pool2d(X, 2, dilation=0), ValueError, "dilation must be >= 1"),
    (lambda: F.max_pool2d(X, 9), ValueError, "larger than the padded input"),
    (lambda: F.max_pool2d(X, 3, dilation=4), ValueError, "larger than the padded input"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 2, 9)), (3, 1)), ValueError, "larger than the padded input"),
    # flags and avg options
    (lambda: F.max_pool2d(X, 2, ceil_mode=1), TypeError, "ceil_mode must be a bool"),
    (lambda: F.max_pool2d(X, 2, return_indices="yes"), TypeError, "return_indices must be a bool"),
    (lambda: F.avg_pool2d(X, 2, count_include_pad=None), TypeError, "count_include_pad must be a bool"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=0), ValueError, "divisor_override must be an int in [1"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=-3), ValueError, "divisor_override must be an int in [1"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=True), TypeError, "divisor_override must be an int, got bool"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=2.5), TypeError, "divisor_override must be an int"),
    # adaptive output sizes
    (lambda: F.adaptive_avg_pool2d(X, 0), ValueError, "output_size must be >= 1, got 0"),
    (lambda: F.adaptive_max_pool2d(X, (3, 0)), ValueError, "output_size[1] must be >= 1, got 0"),
    (lambda: F.adaptive_avg_pool2d(X, (2, -1)), ValueError, "output_size[1] must be >= 1"),
    (lambda: F.adaptive_avg_pool2d(X, (2, 2, 2)), ValueError, "output_size must be an int or a pair"),
    (lambda: F.adaptive_max_pool2d(X, False), TypeError, "output_size must be an int, got bool"),
    (lambda: F.adaptive_avg_pool2d(X, "2"), TypeError, "output_size must be an int"),
    # backward arguments
    (lambda: F.max_pool2d_backward(np.zeros((2, 3, 3, 4), np.float32), X, 2), ValueError,
     "grad_output must have the output's shape (2, 3, 4, 4)"),
    (lambda: F.max_pool2d_backward(np.zeros((2, 3, 4, 4)), X, 2), TypeError, "mixed dtypes"),
    (lambda: F.max_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), X, 2,
                                   indices=np.zeros((2, 3, 4, 4), np.float32)), TypeError, "indices must have an integer dtype"),
    (lambda: F.max_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), X, 2,
                                   indices=np.zeros((2, 3, 4, 3), np.int64)), ValueError, "indices must have the output's shape"),
    (lambda: F.max_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), X, 2, indices=[[0]]), TypeError,
     "indices must be a numpy.ndarray"),
    (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), (2, 3, 8), 2), ValueError,
     "grad_output must have the output's shape (2, 1, 4)"),
    (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), (2, 3, 8, 8.0), 2), TypeError,
     "input_shape[3] must be an int"),
    (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), "2,3,8,8", 2), TypeError,
     "input_shape must be a tuple of ints"),
    (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 4, 4), np.float32), (2, 3, 8, -8), 2), ValueError,
     "input_shape must not be negative"),
    (lambda: F.avg_pool2d_backward(np.zeros((2, 3, 4, 4), np.int64), (2, 3, 8, 8), 2), TypeError,
     "grad_output must have dtype float32 or float64"),
    (lambda: F.adaptive_avg_pool2d_backward(np.zeros((3, 4, 4), np.float32), (2, 3, 8, 8)), ValueError,
     "grad_output must be 4-D like input_shape"),
    (lambda: F.adaptive_max_pool2d_backward(np.zeros((2, 3, 2, 2), np.float32), X, 3), ValueError,
     "grad_output must have the output's shape (2, 3, 3, 3)"),
    (lambda: F.global_avg_pool2d_backward(np.zeros((2, 3), np.float32), (2, 3, 8, 8)), ValueError,
     "grad_output must have the output's shape (2, 3, 1, 1)"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_arguments(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value), f"message {str(info.value)!r} lacks {words!r}"
