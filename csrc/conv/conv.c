/* conv2d forward and backward for float32 and float64: argument checks, the geometry of each
 * pass (conv_internal.h), and dispatch to the implicit-im2col GEMM or the direct kernels. */
#include "conv_internal.h"
#include "../gemm/gemm_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define FN(x) fc_s##x
#define GEMM fc_sgemm
#include "conv_im2col.inc"
#undef T
#undef FN
#undef GEMM

#define T double
#define FN(x) fc_d##x
#define GEMM fc_dgemm
#include "conv_im2col.inc"
#undef T
#undef FN
#undef GEMM

static int valid_params(const fc_conv2d_params *p)
{
    if (p->n < 0 || p->c_in < 1 || p->h < 1 || p->w < 1 || p->c_out < 1 || p->kh < 1 || p->kw < 1)
        return 0;
    if (p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->pad_top < 0 ||
        p->pad_left < 0 || p->groups < 1 || p->c_in % p->groups || p->c_out % p->groups)
        return 0;
    /* Any output size is safe (every read is bounds-checked; the bottom/right padding is
     * whatever oh/ow imply); the binding derives them from the PyTorch formulas. */
    return p->oh >= 1 && p->ow >= 1;
}

/* Forward: destination y, source x. */
static fc_conv_geom forward_geom(const fc_conv2d_params *p, const void *w)
{
    const int64_t cs = p->c_in / p->groups, cd = p->c_out / p->groups, kk = p->kh * p->kw;
    fc_conv_geom g = {
        .n = p->n, .groups = p->groups, .cs = cs, .cd = cd,
        .src_h = p->h, .src_w = p->w, .dst_h = p->oh, .dst_w = p->ow, .kh = p->kh, .kw = p->kw,
        .ah = {p->h, p->stride_h, 1, -p->pad_top, p->dil_h},
        .aw = {p->w, p->stride_w, 1, -p->pad_left, p->dil_w},
        .w = w, .w_g = cd * cs * kk, .w_d = cs * kk, .w_s = kk,
    };
    return g;
}

/* Backward data: destination dx, source dy, the weight's in/out roles swapped. */
static fc_conv_geom backward_data_geom(const fc_conv2d_params *p, const void *w)
{
    const int64_t cs = p->c_out / p->groups, cd = p->c_in / p->groups, kk = p->kh * p->kw;
    fc_conv_geom g = {
        .n = p->n, .groups = p->groups, .cs = cs, .cd = cd,
        .src_h = p->oh, .src_w = p->ow, .dst_h = p->h, .dst_w = p->w, .kh = p->kh, .kw = p->kw,
        .ah = {p->oh, 1, p->stride_h, p->pad_top, -p->dil_h},
        .aw = {p->ow, 1, p->stride_w, p->pad_left, -p->dil_w},
        .w = w, .w_g = cs * cd * kk, .w_d = kk, .w_s = cd * kk,
    };
    return g;
}

#define SELECT_DIRECT(prefix, suffix)                                                      \
    (fc_get_isa() == FC_ISA_AVX512 ? prefix##avx512##suffix                                \
     : fc_get_isa() == FC_ISA_AVX2 ? prefix##avx2##suffix : prefix##ref##suffix)

/* Bias gradient: sum of dy over batch and pixels, per channel. */
#define DEFINE_BIAS_GRAD(T, name)                                                          \
    static void name(const fc_conv2d_params *p, const T *dy, T *db, int nthreads)          \
    {                                                                                      \
        const int64_t plane = p->oh * p->ow;                                               \
        _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                \
        for (int64_t c = 0; c < p->c_out; c++) {                                           \
            T s = 0;                                                                       \
            for (int64_t n = 0; n < p->n; n++) {                                           \
                const T *q = dy + (n * p->c_out + c) * plane;                              \
                _Pragma("omp simd reduction(+ : s)")                                      \
                for (int64_t i = 0; i < plane; i++) s += q[i];                             \
            }                                                                              \
            db[c] = s;                                                                     \
        }                                                                                  \
    }
DEFINE_BIAS_GRAD(float, bias_grad_f32)
DEFINE_BIAS_GRAD(double, bias_grad_f64)

#define DEFINE_API(T, sfx, pre)                                                                       \
    int fc_conv2d_forward_##sfx(const fc_conv2d_params *p, fc_conv_algo algo, const T *x, const T *w, \
                                const T *bias, T *y, int nthreads)                                    \
    {                                                                                                 \
        if (!valid_params(p)) return FC_EINVAL;                                                       \
        if (p->n == 0) return FC_OK;                                                                  \
        const fc_conv_geom g = forward_geom(p, w);                                                    \
        if (algo == FC_CONV_DIRECT) {                                                                 \
            return SELECT_DIRECT(fc_##pre##conv_direct_, )(&g, x, bias, y, nthreads);                  \
        }                                                                                             \
        return fc_##pre##conv_im2col(&g, x, bias, y, nthreads);                                       \
    }                                                                                                 \
    int fc_conv2d_backward_data_##sfx(const fc_conv2d_params *p, fc_conv_algo algo, const T *dy,      \
                                      const T *w, T *dx, int nthreads)                                \
    {                                                                                                 \
        if (!valid_params(p)) return FC_EINVAL;                                                       \
        if (p->n == 0) return FC_OK;                                                                  \
        const fc_conv_geom g = backward_data_geom(p, w);                                              \
        if (algo == FC_CONV_DIRECT) {                                                                 \
            return SELECT_DIRECT(fc_##pre##conv_direct_, )(&g, dy, NULL, dx, nthreads);                \
        }                                                                                             \
        return fc_##pre##conv_im2col(&g, dy, NULL, dx, nthreads);                                     \
    }                                                                                                 \
    int fc_conv2d_backward_weight_##sfx(const fc_conv2d_params *p, fc_conv_algo algo, const T *dy,    \
                                        const T *x, T *dw, T *db, int nthreads)                       \
    {                                                                                                 \
        if (!valid_params(p)) return FC_EINVAL;                                                       \
        if (db) bias_grad_##sfx(p, dy, db, nthreads);                                                 \
        if (!dw) return FC_OK;                                                                        \
        const fc_conv_geom g = forward_geom(p, dw);                                                   \
        if (p->n == 0) {                                                                              \
            for (int64_t i = 0; i < p->groups * g.w_g; i++) dw[i] = 0;                                \
            return FC_OK;                                                                             \
        }                                                                                             \
        if (algo == FC_CONV_DIRECT) {                                                                 \
            return SELECT_DIRECT(fc_##pre##conv_direct_wgrad_, )(&g, dy, x, dw, nthreads);             \
        }                                                                                             \
        return fc_##pre##conv_wgrad_im2col(&g, dy, x, dw, nthreads);                                  \
    }
DEFINE_API(float, f32, s)
DEFINE_API(double, f64, d)
