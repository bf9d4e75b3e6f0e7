# Per-channel elementwise bindings (batch norm, activations), included at the end of _core.pyx.
# Arrays arrive C-contiguous and non-empty from fastconv/_norm.py, viewed as (n, c, plane);
# per-channel vectors have c entries of the array's dtype (statistics: float64), None for none.

cdef extern from "fastconv.h" nogil:
    int fc_channel_affine_f32(const float *x, float *y, int64_t n, int64_t c, int64_t plane, const float *mean,
                              const float *scale, const float *shift, int act, int nthreads)
    int fc_channel_affine_f64(const double *x, double *y, int64_t n, int64_t c, int64_t plane,
                              const double *mean, const double *scale, const double *shift, int act, int nthreads)
    int fc_channel_stats_f32(const float *x, int64_t n, int64_t c, int64_t plane, double *mean, double *var,
                             int nthreads)
    int fc_channel_stats_f64(const double *x, int64_t n, int64_t c, int64_t plane, double *mean, double *var,
                             int nthreads)
    int fc_channel_dot_f32(const float *g, const float *x, int64_t n, int64_t c, int64_t plane,
                           const double *mean, double *sum_g, double *sum_gx, int nthreads)
    int fc_channel_dot_f64(const double *g, const double *x, int64_t n, int64_t c, int64_t plane,
                           const double *mean, double *sum_g, double *sum_gx, int nthreads)
    int fc_channel_axpby_f32(const float *g, const float *x, float *out, int64_t n, int64_t c, int64_t plane,
                             const float *a, const float *b, const float *mean, const float *d, int nthreads)
    int fc_channel_axpby_f64(const double *g, const double *x, double *out, int64_t n, int64_t c,
                             int64_t plane, const double *a, const double *b, const double *mean,
                             const double *d, int nthreads)
    int fc_act_backward_f32(const float *g, const float *y, float *out, int64_t size, int act, int nthreads)
    int fc_act_backward_f64(const double *g, const double *y, double *out, int64_t size, int act, int nthreads)


cdef inline const floating *_opt(const floating[::1] v) noexcept nogil:
    return NULL if v is None else &v[0]


def channel_affine(const floating[:, :, ::1] x, floating[:, :, ::1] y, const floating[::1] mean,
                   const floating[::1] scale, const floating[::1] shift, int act, int nthreads):
    """y = act((x - mean) * scale + shift) per channel (y may be x)."""
    cdef int rc
    cdef int64_t n = x.shape[0], c = x.shape[1], plane = x.shape[2]
    with nogil:
        if floating is float:
            rc = fc_channel_affine_f32(&x[0, 0, 0], &y[0, 0, 0], n, c, plane, _opt(mean), _opt(scale),
                                       _opt(shift), act, nthreads)
        else:
            rc = fc_channel_affine_f64(&x[0, 0, 0], &y[0, 0, 0], n, c, plane, _opt(mean), _opt(scale),
                                       _opt(shift), act, nthreads)
    _check(rc, "channel_affine")


def channel_stats(const floating[:, :, ::1] x, double[::1] mean, double[::1] var, int nthreads):
    """Per-channel mean and biased variance, in float64."""
    cdef int rc
    cdef int64_t n = x.shape[0], c = x.shape[1], plane = x.shape[2]
    with nogil:
        if floating is float:
            rc = fc_channel_stats_f32(&x[0, 0, 0], n, c, plane, &mean[0], &var[0], nthreads)
        else:
            rc = fc_channel_stats_f64(&x[0, 0, 0], n, c, plane, &mean[0], &var[0], nthreads)
    _check(rc, "channel_stats")


def channel_dot(const floating[:, :, ::1] g, const floating[:, :, ::1] x, const double[::1] mean,
                double[::1] sum_g, double[::1] sum_gx, int nthreads):
    """Per channel, in float64: sum of g and of g * (x - mean)."""
    cdef int rc
    cdef int64_t n = g.shape[0], c = g.shape[1], plane = g.shape[2]
    cdef const double *m = NULL if mean is None else &mean[0]
    with nogil:
        if floating is float:
            rc = fc_channel_dot_f32(&g[0, 0, 0], &x[0, 0, 0], n, c, plane, m, &sum_g[0], &sum_gx[0], nthreads)
        else:
            rc = fc_channel_dot_f64(&g[0, 0, 0], &x[0, 0, 0], n, c, plane, m, &sum_g[0], &sum_gx[0], nthreads)
    _check(rc, "channel_dot")


def channel_axpby(const floating[:, :, ::1] g, const floating[:, :, ::1] x, floating[:, :, ::1] out,
                  const floating[::1] a, const floating[::1] b, const floating[::1] mean,
                  const floating[::1] d, int nthreads):
    """out = a * g + b * (x - mean) + d per channel (x may be None when b is)."""
    cdef int rc
    cdef int64_t n = g.shape[0], c = g.shape[1], plane = g.shape[2]
    cdef const floating *xp = NULL if x is None else &x[0, 0, 0]
    with nogil:
        if floating is float:
            rc = fc_channel_axpby_f32(&g[0, 0, 0], xp, &out[0, 0, 0], n, c, plane, _opt(a), _opt(b), _opt(mean),
                                      _opt(d), nthreads)
        else:
            rc = fc_channel_axpby_f64(&g[0, 0, 0], xp, &out[0, 0, 0], n, c, plane, _opt(a), _opt(b), _opt(mean),
                                      _opt(d), nthreads)
    _check(rc, "channel_axpby")


def act_backward(const floating[::1] g, const floating[::1] y, floating[::1] out, int act, int nthreads):
    """out = g where the activation (output y) has slope 1, else 0."""
    cdef int rc
    with nogil:
        if floating is float:
            rc = fc_act_backward_f32(&g[0], &y[0], &out[0], g.shape[0], act, nthreads)
        else:
            rc = fc_act_backward_f64(&g[0], &y[0], &out[0], g.shape[0], act, nthreads)
    _check(rc, "act_backward")


# ---- optimizer steps (fastconv/optim.py) ----------------------------------------------------------
cdef extern from "fastconv.h" nogil:
    ctypedef struct fc_adam_params:
        double lr, beta1, beta2, eps, weight_decay
        int decoupled, maximize
        int64_t step
    int fc_adam_step_f32(float *p, const float *grad, float *m, float *v, float *vmax, int64_t size,
                         const fc_adam_params *h, int nthreads)
    int fc_adam_step_f64(double *p, const double *grad, double *m, double *v, double *vmax, int64_t size,
                         const fc_adam_params *h, int nthreads)


def adam_step(floating[::1] p, const floating[::1] grad, floating[::1] m, floating[::1] v, floating[::1] vmax,
              double lr, double beta1, double beta2, double eps, double weight_decay, bint decoupled,
              bint maximize, int64_t step, int nthreads):
    """One Adam/AdamW step in place over flat contiguous arrays of one dtype (vmax: None without amsgrad)."""
    cdef fc_adam_params h
    h.lr, h.beta1, h.beta2, h.eps, h.weight_decay = lr, beta1, beta2, eps, weight_decay
    h.decoupled, h.maximize, h.step = decoupled, maximize, step
    cdef floating *vm = NULL if vmax is None else &vmax[0]
    cdef int rc
    with nogil:
        if floating is float:
            rc = fc_adam_step_f32(&p[0], &grad[0], &m[0], &v[0], vm, p.shape[0], &h, nthreads)
        else:
            rc = fc_adam_step_f64(&p[0], &grad[0], &m[0], &v[0], vm, p.shape[0], &h, nthreads)
    _check(rc, "adam_step")
