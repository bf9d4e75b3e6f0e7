/* Pooling entry points: check the parameters, skip empty work, pick the ISA's kernel. */
#include "pool_internal.h"

#define SELECT_POOL(prefix)                                                                 \
    (fc_get_isa() == FC_ISA_AVX512 ? prefix##avx512                                        \
     : fc_get_isa() == FC_ISA_AVX2 ? prefix##avx2 : prefix##ref)

/* Shapes the kernels rely on: non-empty planes, positive kernel/stride/dilation, padding at
 * most half the kernel (PyTorch's rule), sizes and window geometry whose indices fit int32 lanes
 * (so no product of two of them overflows the kernels' 64-bit arithmetic). */
static int valid_params(const fc_pool2d_params *p, int windowed)
{
    const int64_t big = (int64_t)1 << 31;
    if (p->planes < 0 || p->h < 1 || p->w < 1 || p->oh < 1 || p->ow < 1) return 0;
    if (p->h >= big || p->w >= big || p->oh >= big || p->ow >= big) return 0;
    if (!windowed) return 1;
    if (p->kh < 1 || p->kw < 1 || p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1) return 0;
    if (p->kh >= big || p->kw >= big || p->stride_h >= big || p->stride_w >= big || p->dil_h >= big ||
        p->dil_w >= big || p->divisor >= big)
        return 0; /* (the padding is at most half the kernel) */
    if (p->pad_h < 0 || p->pad_w < 0 || 2 * p->pad_h > p->kh || 2 * p->pad_w > p->kw) return 0;
    if (p->divisor < 0) return 0;
    /* every window starts inside the padded input */
    if ((p->oh - 1) * p->stride_h >= p->h + p->pad_h || (p->ow - 1) * p->stride_w >= p->w + p->pad_w) return 0;
    return 1;
}

/* Threads worth starting: one per POOL_GRAIN elements read and written (a fork/join costs
 * about as much as streaming that many), at least one, at most nthreads. */
#define POOL_GRAIN 16384
static int pool_threads(const fc_pool2d_params *p, int nthreads)
{
    const int64_t work = p->planes * (p->h * p->w + p->oh * p->ow);
    const int64_t useful = work / POOL_GRAIN > 1 ? work / POOL_GRAIN : 1;
    return nthreads < useful ? nthreads : (int)useful;
}

#define DEFINE_POOL_API(T, sfx, pre)                                                                      \
    int fc_max_pool2d_forward_##sfx(const fc_pool2d_params *p, const T *x, T *y, int64_t *idx, int nthreads) \
    {                                                                                                     \
        if (!valid_params(p, 1)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##max_pool2d_forward_)(p, x, y, idx, pool_threads(p, nthreads));                        \
    }                                                                                                     \
    int fc_max_pool2d_backward_##sfx(const fc_pool2d_params *p, const T *dy, const int64_t *idx, T *dx,   \
                                     int nthreads)                                                        \
    {                                                                                                     \
        if (!valid_params(p, 0)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##max_pool2d_backward_)(p, dy, idx, dx, pool_threads(p, nthreads));                     \
    }                                                                                                     \
    int fc_avg_pool2d_forward_##sfx(const fc_pool2d_params *p, const T *x, T *y, int nthreads)            \
    {                                                                                                     \
        if (!valid_params(p, 1) || p->dil_h != 1 || p->dil_w != 1) return FC_EINVAL;                      \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##avg_pool2d_forward_)(p, x, y, pool_threads(p, nthreads));                             \
    }                                                                                                     \
    int fc_avg_pool2d_backward_##sfx(const fc_pool2d_params *p, const T *dy, T *dx, int nthreads)         \
    {                                                                                                     \
        if (!valid_params(p, 1) || p->dil_h != 1 || p->dil_w != 1) return FC_EINVAL;                      \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##avg_pool2d_backward_)(p, dy, dx, pool_threads(p, nthreads));                          \
    }                                                                                                     \
    int fc_adaptive_avg_pool2d_forward_##sfx(const fc_pool2d_params *p, const T *x, T *y, int nthreads)   \
    {                                                                                                     \
        if (!valid_params(p, 0)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        if (p->oh == 1 && p->ow == 1) /* one window per plane: the global kernels */                  \
            return SELECT_POOL(fc_##pre##global_avg_pool2d_forward_)(p, x, y, pool_threads(p, nthreads)); \
        return SELECT_POOL(fc_##pre##adaptive_avg_pool2d_forward_)(p, x, y, pool_threads(p, nthreads));                    \
    }                                                                                                     \
    int fc_adaptive_avg_pool2d_backward_##sfx(const fc_pool2d_params *p, const T *dy, T *dx, int nthreads) \
    {                                                                                                     \
        if (!valid_params(p, 0)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        if (p->oh == 1 && p->ow == 1) /* one window per plane: the global kernels */                  \
            return SELECT_POOL(fc_##pre##global_avg_pool2d_backward_)(p, dy, dx, pool_threads(p, nthreads)); \
        return SELECT_POOL(fc_##pre##adaptive_avg_pool2d_backward_)(p, dy, dx, pool_threads(p, nthreads));                 \
    }                                                                                                     \
    int fc_adaptive_max_pool2d_forward_##sfx(const fc_pool2d_params *p, const T *x, T *y, int64_t *idx,   \
                                             int nthreads)                                                \
    {                                                                                                     \
        if (!valid_params(p, 0)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##adaptive_max_pool2d_forward_)(p, x, y, idx, pool_threads(p, nthreads));               \
    }                                                                                                     \
    int fc_global_avg_pool2d_forward_##sfx(const fc_pool2d_params *p, const T *x, T *y, int nthreads)     \
    {                                                                                                     \
        if (!valid_params(p, 0)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##global_avg_pool2d_forward_)(p, x, y, pool_threads(p, nthreads));                      \
    }                                                                                                     \
    int fc_global_avg_pool2d_backward_##sfx(const fc_pool2d_params *p, const T *dy, T *dx, int nthreads)  \
    {                                                                                                     \
        if (!valid_params(p, 0)) return FC_EINVAL;                                                        \
        if (p->planes == 0) return FC_OK;                                                                 \
        return SELECT_POOL(fc_##pre##global_avg_pool2d_backward_)(p, dy, dx, pool_threads(p, nthreads));                   \
    }
DEFINE_POOL_API(float, f32, s)
DEFINE_POOL_API(double, f64, d)
