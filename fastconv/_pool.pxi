# Pooling bindings, included at the end of _core.pyx. Arrays arrive C-contiguous, validated and
# non-empty from fastconv/_pooling.py; `geom` is (planes, h, w, oh, ow, kh, kw, stride_h,
# stride_w, pad_h, pad_w, dil_h, dil_w, count_include_pad, divisor).

cdef extern from "fastconv.h" nogil:
    ctypedef struct fc_pool2d_params:
        int64_t planes, h, w, oh, ow
        int64_t kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w
        int64_t count_include_pad, divisor
    int fc_max_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int64_t *idx, int nthreads)
    int fc_max_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int64_t *idx,
                                  int nthreads)
    int fc_max_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, const int64_t *idx, float *dx,
                                   int nthreads)
    int fc_max_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, const int64_t *idx, double *dx,
                                   int nthreads)
    int fc_avg_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int nthreads)
    int fc_avg_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int nthreads)
    int fc_avg_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, float *dx, int nthreads)
    int fc_avg_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, double *dx, int nthreads)
    int fc_adaptive_avg_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int nthreads)
    int fc_adaptive_avg_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int nthreads)
    int fc_adaptive_avg_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, float *dx, int nthreads)
    int fc_adaptive_avg_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, double *dx,
                                            int nthreads)
    int fc_adaptive_max_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int64_t *idx,
                                           int nthreads)
    int fc_adaptive_max_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int64_t *idx,
                                           int nthreads)
    int fc_global_avg_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int nthreads)
    int fc_global_avg_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int nthreads)
    int fc_global_avg_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, float *dx, int nthreads)
    int fc_global_avg_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, double *dx, int nthreads)


cdef fc_pool2d_params _pool_params(tuple geom) except *:
    cdef fc_pool2d_params p
    (p.planes, p.h, p.w, p.oh, p.ow, p.kh, p.kw, p.stride_h, p.stride_w, p.pad_h, p.pad_w,
     p.dil_h, p.dil_w, p.count_include_pad, p.divisor) = geom
    return p


# Kinds of pooling for pool2d_forward / pool2d_backward (POOL_KINDS gives Python their numbers).
cdef enum:
    POOL_MAX = 0
    POOL_AVG = 1
    POOL_ADAPTIVE_MAX = 2
    POOL_ADAPTIVE_AVG = 3
    POOL_GLOBAL_AVG = 4
POOL_KINDS = {"max": POOL_MAX, "avg": POOL_AVG, "adaptive_max": POOL_ADAPTIVE_MAX,
              "adaptive_avg": POOL_ADAPTIVE_AVG, "global_avg": POOL_GLOBAL_AVG}


def pool2d_forward(int kind, const floating[:, :, ::1] x, floating[:, :, ::1] y, int64_t[:, :, ::1] idx,
                   tuple geom, int nthreads):
    """y (and idx, for the max kinds, when not None) = pooling of the planes x (planes, h, w)."""
    cdef fc_pool2d_params p = _pool_params(geom)
    cdef int64_t *ip = NULL if idx is None else &idx[0, 0, 0]
    cdef const floating *xp = &x[0, 0, 0]
    cdef floating *yp = &y[0, 0, 0]
    cdef int rc = FC_EINVAL
    with nogil:
        if floating is float:
            if kind == POOL_MAX:
                rc = fc_max_pool2d_forward_f32(&p, xp, yp, ip, nthreads)
            elif kind == POOL_AVG:
                rc = fc_avg_pool2d_forward_f32(&p, xp, yp, nthreads)
            elif kind == POOL_ADAPTIVE_MAX:
                rc = fc_adaptive_max_pool2d_forward_f32(&p, xp, yp, ip, nthreads)
            elif kind == POOL_ADAPTIVE_AVG:
                rc = fc_adaptive_avg_pool2d_forward_f32(&p, xp, yp, nthreads)
            elif kind == POOL_GLOBAL_AVG:
                rc = fc_global_avg_pool2d_forward_f32(&p, xp, yp, nthreads)
        else:
            if kind == POOL_MAX:
                rc = fc_max_pool2d_forward_f64(&p, xp, yp, ip, nthreads)
            elif kind == POOL_AVG:
                rc = fc_avg_pool2d_forward_f64(&p, xp, yp, nthreads)
            elif kind == POOL_ADAPTIVE_MAX:
                rc = fc_adaptive_max_pool2d_forward_f64(&p, xp, yp, ip, nthreads)
            elif kind == POOL_ADAPTIVE_AVG:
                rc = fc_adaptive_avg_pool2d_forward_f64(&p, xp, yp, nthreads)
            elif kind == POOL_GLOBAL_AVG:
                rc = fc_global_avg_pool2d_forward_f64(&p, xp, yp, nthreads)
    _check(rc, "pooling")


def pool2d_backward(int kind, const floating[:, :, ::1] dy, const int64_t[:, :, ::1] idx,
                    floating[:, :, ::1] dx, tuple geom, int nthreads):
    """dx (planes, h, w) = gradient of the pooling from dy (planes, oh, ow); the max kinds
    scatter dy to idx."""
    cdef fc_pool2d_params p = _pool_params(geom)
    cdef const int64_t *ip = NULL if idx is None else &idx[0, 0, 0]
    cdef const floating *dyp = &dy[0, 0, 0]
    cdef floating *dxp = &dx[0, 0, 0]
    cdef int rc = FC_EINVAL
    with nogil:
        if floating is float:
            if kind == POOL_MAX or kind == POOL_ADAPTIVE_MAX:
                if ip != NULL:
                    rc = fc_max_pool2d_backward_f32(&p, dyp, ip, dxp, nthreads)
            elif kind == POOL_AVG:
                rc = fc_avg_pool2d_backward_f32(&p, dyp, dxp, nthreads)
            elif kind == POOL_ADAPTIVE_AVG:
                rc = fc_adaptive_avg_pool2d_backward_f32(&p, dyp, dxp, nthreads)
            elif kind == POOL_GLOBAL_AVG:
                rc = fc_global_avg_pool2d_backward_f32(&p, dyp, dxp, nthreads)
        else:
            if kind == POOL_MAX or kind == POOL_ADAPTIVE_MAX:
                if ip != NULL:
                    rc = fc_max_pool2d_backward_f64(&p, dyp, ip, dxp, nthreads)
            elif kind == POOL_AVG:
                rc = fc_avg_pool2d_backward_f64(&p, dyp, dxp, nthreads)
            elif kind == POOL_ADAPTIVE_AVG:
                rc = fc_adaptive_avg_pool2d_backward_f64(&p, dyp, dxp, nthreads)
            elif kind == POOL_GLOBAL_AVG:
                rc = fc_global_avg_pool2d_backward_f64(&p, dyp, dxp, nthreads)
    _check(rc, "pooling backward")
