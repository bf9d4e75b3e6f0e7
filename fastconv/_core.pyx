# cython: language_level=3
"""The one binding between Python and the C kernels: arguments arrive validated from the
Python layer (functional.py, _runtime.py); here we take pointers, release the GIL and call C."""
from libc.stdint cimport int64_t, uint64_t

cdef extern from "fastconv.h" nogil:
    ctypedef enum fc_isa:
        FC_ISA_GENERIC, FC_ISA_AVX2, FC_ISA_AVX512, FC_ISA_COUNT
    int FC_OK, FC_ENOMEM, FC_EINVAL
    const char *fc_isa_name(fc_isa isa)
    int fc_isa_supported(fc_isa isa)
    fc_isa fc_isa_best()
    int fc_set_isa(fc_isa isa)
    fc_isa fc_get_isa()
    int fc_openmp_enabled()
    int fc_omp_max_threads()
    void fc_omp_set_num_threads(int n)
    const char *fc_compiler()
    double fc_peak_gflops(int nthreads, double seconds)
    size_t FC_CACHE_MIN_BYTES
    void *fc_aligned_alloc(size_t bytes)
    void fc_aligned_free(void *p)
    void fc_cache_set_limit(size_t bytes)
    void fc_cache_stats(size_t *limit, size_t *cached, int *blocks, uint64_t *hits, uint64_t *misses)
    void fc_gemm_tile(int dtype_bytes, int *mr, int *nr)

    ctypedef struct fc_operand:
        const void *data
        int64_t rs, cs
        void *pack
        const void *ctx
        const int64_t *koff
    ctypedef struct fc_epilogue:
        pass
    int fc_sgemm(int64_t m, int64_t n, int64_t k, const fc_operand *a, const fc_operand *b,
                 float *c, int64_t ldc, int accumulate, const fc_epilogue *ep, int nthreads)
    int fc_dgemm(int64_t m, int64_t n, int64_t k, const fc_operand *a, const fc_operand *b,
                 double *c, int64_t ldc, int accumulate, const fc_epilogue *ep, int nthreads)

    ctypedef struct fc_conv2d_params:
        int64_t n, c_in, h, w, c_out, kh, kw, oh, ow
        int64_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups
    ctypedef enum fc_conv_algo:
        FC_CONV_IM2COL, FC_CONV_DIRECT, FC_CONV_WINOGRAD
    int fc_conv2d_forward_f32(const fc_conv2d_params *p, fc_conv_algo algo, const float *x,
                              const float *w, const float *scale, const float *bias, int act, float *y,
                              int nthreads)
    int fc_conv2d_forward_f64(const fc_conv2d_params *p, fc_conv_algo algo, const double *x,
                              const double *w, const double *scale, const double *bias, int act,
                              double *y, int nthreads)
    int fc_conv2d_backward_data_f32(const fc_conv2d_params *p, fc_conv_algo algo, const float *dy,
                                    const float *w, float *dx, int nthreads)
    int fc_conv2d_backward_data_f64(const fc_conv2d_params *p, fc_conv_algo algo, const double *dy,
                                    const double *w, double *dx, int nthreads)
    int fc_conv2d_backward_weight_f32(const fc_conv2d_params *p, fc_conv_algo algo, const float *dy,
                                      const float *x, float *dw, float *db, int nthreads)
    int fc_conv2d_backward_weight_f64(const fc_conv2d_params *p, fc_conv_algo algo, const double *dy,
                                      const double *x, double *dw, double *db, int nthreads)

ctypedef fused floating:
    float
    double

ISA_NAMES = tuple(fc_isa_name(<fc_isa>i).decode() for i in range(FC_ISA_COUNT))


def _check(int rc, str what):
    if rc == FC_ENOMEM:
        raise MemoryError(f"{what}: could not allocate the kernel's workspace")
    if rc != FC_OK:
        raise RuntimeError(f"{what}: kernel rejected its arguments (code {rc})")


def supported_isas():
    """Names of the ISAs this CPU runs, best first."""
    return [ISA_NAMES[i] for i in reversed(range(FC_ISA_COUNT)) if fc_isa_supported(<fc_isa>i)]


def set_isa(str name):
    cdef int i = ISA_NAMES.index(name)
    if fc_set_isa(<fc_isa>i) != FC_OK:
        raise ValueError(f"ISA {name!r} is not supported by this CPU")


def get_isa():
    return ISA_NAMES[fc_get_isa()]


def openmp_enabled():
    return bool(fc_openmp_enabled())


def omp_max_threads():
    return fc_omp_max_threads()


def omp_set_num_threads(int n):
    fc_omp_set_num_threads(n)


def compiler():
    return fc_compiler().decode()


def gemm_tile(int dtype_bytes):
    cdef int mr, nr
    fc_gemm_tile(dtype_bytes, &mr, &nr)
    return mr, nr


def peak_gflops(int nthreads, double seconds):
    cdef double r
    with nogil:
        r = fc_peak_gflops(nthreads, seconds)
    return r


# ---- memory --------------------------------------------------------------------------------
CACHE_MIN_BYTES = FC_CACHE_MIN_BYTES


cdef class Block:
    """`nbytes` of 64-byte aligned memory from the kernels' block cache (csrc/runtime/alloc.c),
    exported as a writable byte buffer; NumPy arrays made on it keep it alive, and the block goes
    back to the cache when the last of them is gone."""
    cdef void *ptr
    cdef Py_ssize_t nbytes
    cdef Py_ssize_t shape[1]

    def __cinit__(self, Py_ssize_t nbytes):
        self.ptr = fc_aligned_alloc(nbytes)
        if self.ptr == NULL:
            raise MemoryError(f"could not allocate {nbytes} bytes")
        self.nbytes = nbytes

    def __dealloc__(self):
        fc_aligned_free(self.ptr)

    def __getbuffer__(self, Py_buffer *view, int flags):
        self.shape[0] = self.nbytes
        view.buf = self.ptr
        view.obj = self
        view.len = self.nbytes
        view.readonly = 0
        view.itemsize = 1
        view.format = b"B"
        view.ndim = 1
        view.shape = self.shape
        view.strides = &view.itemsize
        view.suboffsets = NULL
        view.internal = NULL


def cache_set_limit(size_t nbytes):
    with nogil:
        fc_cache_set_limit(nbytes)


def cache_stats():
    cdef size_t limit, cached
    cdef int blocks
    cdef uint64_t hits, misses
    fc_cache_stats(&limit, &cached, &blocks, &hits, &misses)
    return dict(limit_bytes=limit, cached_bytes=cached, cached_blocks=blocks, hits=hits, misses=misses)


def gemm(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] out, int nthreads):
    """out = a @ b for non-empty operands whose strides are whole elements (checked by caller)."""
    cdef int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    cdef int64_t isz = sizeof(floating)
    cdef fc_operand A, B
    cdef int rc
    A.data = &a[0, 0]
    A.rs = a.strides[0] // isz
    A.cs = a.strides[1] // isz
    A.pack = NULL
    A.ctx = NULL
    A.koff = NULL
    B.data = &b[0, 0]
    B.rs = b.strides[1] // isz   # B is read as n x k
    B.cs = b.strides[0] // isz
    B.pack = NULL
    B.ctx = NULL
    B.koff = NULL
    with nogil:
        if floating is float:
            rc = fc_sgemm(m, n, k, &A, &B, &out[0, 0], out.strides[0] // isz, 0, NULL, nthreads)
        else:
            rc = fc_dgemm(m, n, k, &A, &B, &out[0, 0], out.strides[0] // isz, 0, NULL, nthreads)
    _check(rc, "matmul")


# ---- conv2d ------------------------------------------------------------------------------
# Arrays arrive C-contiguous, validated and non-empty; `geom` is the full parameter tuple
# (n, c_in, h, w, c_out, kh, kw, oh, ow, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups)
# of the convolution x -> y (for the transposed convolution, of its adjoint).

cdef fc_conv2d_params _conv_params(tuple geom) except *:
    cdef fc_conv2d_params p
    (p.n, p.c_in, p.h, p.w, p.c_out, p.kh, p.kw, p.oh, p.ow,
     p.stride_h, p.stride_w, p.dil_h, p.dil_w, p.pad_top, p.pad_left, p.groups) = geom
    return p


# Activations the conv epilogue and the norm kernels apply (ACTIVATIONS gives Python their numbers).
cdef enum:
    ACT_NONE = 0
    ACT_RELU = 1
    ACT_RELU6 = 2
    ACT_SILU = 3
    ACT_SIGMOID = 4
ACTIVATIONS = {None: ACT_NONE, "relu": ACT_RELU, "relu6": ACT_RELU6, "silu": ACT_SILU, "sigmoid": ACT_SIGMOID}


def conv2d_forward(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                   const floating[::1] bias, floating[:, :, :, ::1] y, tuple geom, int algo,
                   int nthreads, const floating[::1] scale=None, int act=ACT_NONE):
    """y = act(conv2d(x, w) * scale + bias), scale and bias per output channel (None: 1 / 0)."""
    cdef fc_conv2d_params p = _conv_params(geom)
    cdef const floating *b = NULL if bias is None else &bias[0]
    cdef const floating *s = NULL if scale is None else &scale[0]
    cdef int rc
    with nogil:
        if floating is float:
            rc = fc_conv2d_forward_f32(&p, <fc_conv_algo>algo, &x[0, 0, 0, 0], &w[0, 0, 0, 0], s, b, act,
                                       &y[0, 0, 0, 0], nthreads)
        else:
            rc = fc_conv2d_forward_f64(&p, <fc_conv_algo>algo, &x[0, 0, 0, 0], &w[0, 0, 0, 0], s, b, act,
                                       &y[0, 0, 0, 0], nthreads)
    _check(rc, "conv2d")


def conv2d_backward_data(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] w,
                         floating[:, :, :, ::1] dx, tuple geom, int algo, int nthreads):
    cdef fc_conv2d_params p = _conv_params(geom)
    cdef int rc
    with nogil:
        if floating is float:
            rc = fc_conv2d_backward_data_f32(&p, <fc_conv_algo>algo, &dy[0, 0, 0, 0], &w[0, 0, 0, 0],
                                             &dx[0, 0, 0, 0], nthreads)
        else:
            rc = fc_conv2d_backward_data_f64(&p, <fc_conv_algo>algo, &dy[0, 0, 0, 0], &w[0, 0, 0, 0],
                                             &dx[0, 0, 0, 0], nthreads)
    _check(rc, "conv2d_backward (input gradient)")


def conv2d_backward_weight(const floating[:, :, :, ::1] dy, const floating[:, :, :, ::1] x,
                           floating[:, :, :, ::1] dw, floating[::1] db, tuple geom, int algo,
                           int nthreads):
    """dw and/or db may be None (not computed)."""
    cdef fc_conv2d_params p = _conv_params(geom)
    cdef floating *dwp = NULL if dw is None else &dw[0, 0, 0, 0]
    cdef floating *dbp = NULL if db is None else &db[0]
    cdef int rc
    with nogil:
        if floating is float:
            rc = fc_conv2d_backward_weight_f32(&p, <fc_conv_algo>algo, &dy[0, 0, 0, 0], &x[0, 0, 0, 0],
                                               dwp, dbp, nthreads)
        else:
            rc = fc_conv2d_backward_weight_f64(&p, <fc_conv_algo>algo, &dy[0, 0, 0, 0], &x[0, 0, 0, 0],
                                               dwp, dbp, nthreads)
    _check(rc, "conv2d_backward (weight gradient)")


include "_pool.pxi"
include "_norm.pxi"
