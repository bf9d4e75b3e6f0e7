/* Per-channel elementwise kernels (fastconv_norm.h): batch normalisation and activations.
 * The reductions are memory-bound: one portable version, plain loops the compiler vectorises.
 * Elementwise passes run the selected ISA's activation runs (act.inc; SiLU's exp is compute). */
#include <stdlib.h>
#include "norm_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define SELECT_ACT(prefix)                                                                       \
    (fc_get_isa() == FC_ISA_AVX512 ? prefix##avx512 : fc_get_isa() == FC_ISA_AVX2 ? prefix##avx2 : prefix##ref)

void fc_saffine_run(const float *x, float *y, int64_t len, float m, float s, float b, int act)
{
    SELECT_ACT(fc_saffine_run_)(x, y, len, m, s, b, act);
}
void fc_daffine_run(const double *x, double *y, int64_t len, double m, double s, double b, int act)
{
    SELECT_ACT(fc_daffine_run_)(x, y, len, m, s, b, act);
}
void fc_saffine_rows(float *c, int64_t ldc, int64_t rows, int64_t len, const float *scale, const float *bias, int act)
{
    SELECT_ACT(fc_saffine_rows_)(c, ldc, rows, len, scale, bias, act);
}
void fc_daffine_rows(double *c, int64_t ldc, int64_t rows, int64_t len, const double *scale, const double *bias,
                     int act)
{
    SELECT_ACT(fc_daffine_rows_)(c, ldc, rows, len, scale, bias, act);
}
void fc_sact_backward_run(const float *g, const float *y, float *out, int64_t len, int act)
{
    SELECT_ACT(fc_sact_backward_run_)(g, y, out, len, act);
}
void fc_dact_backward_run(const double *g, const double *y, double *out, int64_t len, int act)
{
    SELECT_ACT(fc_dact_backward_run_)(g, y, out, len, act);
}

/* Elements per thread's block: a fork/join costs about as much as streaming this many. */
#define NORM_GRAIN 16384

static int useful_threads(int64_t work, int nthreads)
{
    const int64_t useful = work / NORM_GRAIN + 1;
    if (nthreads < 1) nthreads = 1;
    return useful < nthreads ? (int)useful : nthreads;
}

static int valid_shape(int64_t n, int64_t c, int64_t plane)
{
    return n >= 0 && c >= 1 && plane >= 0 && (plane == 0 || n <= INT64_MAX / c / plane);
}

/* The loops below walk [lo, hi) of the flat array in runs that stay inside one plane, so the
 * channel's constants are fixed along each run: `ch` is the run's channel, [i, end) the run. */
#define FOR_RUNS(lo, hi, c, plane, ...)                                     \
    for (int64_t i = (lo); i < (hi);) {                                      \
        const int64_t pl_ = i / (plane), ch = pl_ % (c);                     \
        const int64_t end = (pl_ + 1) * (plane) < (hi) ? (pl_ + 1) * (plane) : (hi); \
        __VA_ARGS__                                                          \
        i = end;                                                             \
    }

#define DEFINE_NORM(T, sfx, pre)                                                                              \
    int fc_channel_affine_##sfx(const T *x, T *y, int64_t n, int64_t c, int64_t plane, const T *mean,   \
                                const T *scale, const T *shift, int act, int nthreads)                 \
    {                                                                                                    \
        if (!valid_shape(n, c, plane) || act < FC_ACT_NONE || act > FC_ACT_SIGMOID) return FC_EINVAL;     \
        const int64_t total = n * c * plane, nblk = (total + NORM_GRAIN - 1) / NORM_GRAIN;             \
        _Pragma("omp parallel for schedule(static) num_threads(useful_threads(total, nthreads))")      \
        for (int64_t blk = 0; blk < nblk; blk++) {                                                       \
            const int64_t lo = blk * NORM_GRAIN, hi = lo + NORM_GRAIN < total ? lo + NORM_GRAIN : total; \
            FOR_RUNS(lo, hi, c, plane, {                                                                 \
                fc_##pre##affine_run(x + i, y + i, end - i, mean ? mean[ch] : 0, scale ? scale[ch] : 1,  \
                                     shift ? shift[ch] : 0, act);                                        \
            })                                                                                           \
        }                                                                                                \
        return FC_OK;                                                                                    \
    }                                                                                                    \
    /* Per plane (image, channel) partial sums into part[], then per channel in image order: the    \
     * same result whatever the thread count, and every thread busy even with few channels. */      \
    int fc_channel_stats_##sfx(const T *x, int64_t n, int64_t c, int64_t plane, double *mean, double *var, \
                               int nthreads)                                                           \
    {                                                                                                    \
        if (!valid_shape(n, c, plane)) return FC_EINVAL;                                                 \
        const int64_t planes = n * c;                                                                    \
        double *part = malloc(sizeof(double) * (size_t)(planes > 0 ? planes : 1));                      \
        if (!part) return FC_ENOMEM;                                                                     \
        const int nt = useful_threads(planes * plane, nthreads);                                         \
        const double count = (double)n * (double)plane;                                                  \
        _Pragma("omp parallel for schedule(static) num_threads(nt)")                                     \
        for (int64_t p = 0; p < planes; p++) {                                                           \
            const T *q = x + p * plane;                                                                  \
            double s = 0;                                                                                \
            _Pragma("omp simd reduction(+ : s)")                                                         \
            for (int64_t k = 0; k < plane; k++) s += q[k];                                               \
            part[p] = s;                                                                                 \
        }                                                                                                \
        for (int64_t ch = 0; ch < c; ch++) {                                                             \
            double s = 0;                                                                                \
            for (int64_t i = 0; i < n; i++) s += part[i * c + ch];                                       \
            mean[ch] = count > 0 ? s / count : 0;                                                        \
        }                                                                                                \
        _Pragma("omp parallel for schedule(static) num_threads(nt)")                                     \
        for (int64_t p = 0; p < planes; p++) {                                                           \
            const T *q = x + p * plane;                                                                  \
            const double m = mean[p % c];                                                                \
            double s = 0;                                                                                \
            _Pragma("omp simd reduction(+ : s)")                                                         \
            for (int64_t k = 0; k < plane; k++) s += ((double)q[k] - m) * ((double)q[k] - m);            \
            part[p] = s;                                                                                 \
        }                                                                                                \
        for (int64_t ch = 0; ch < c; ch++) {                                                             \
            double s = 0;                                                                                \
            for (int64_t i = 0; i < n; i++) s += part[i * c + ch];                                       \
            var[ch] = count > 0 ? s / count : 0;                                                         \
        }                                                                                                \
        free(part);                                                                                      \
        return FC_OK;                                                                                    \
    }                                                                                                    \
    int fc_channel_dot_##sfx(const T *g, const T *x, int64_t n, int64_t c, int64_t plane,              \
                             const double *mean, double *sum_g, double *sum_gx, int nthreads)            \
    {                                                                                                    \
        if (!valid_shape(n, c, plane)) return FC_EINVAL;                                                 \
        const int64_t planes = n * c;                                                                    \
        double *part = malloc(sizeof(double) * 2 * (size_t)(planes > 0 ? planes : 1));                  \
        if (!part) return FC_ENOMEM;                                                                     \
        _Pragma("omp parallel for schedule(static) num_threads(useful_threads(2 * planes * plane, nthreads))") \
        for (int64_t p = 0; p < planes; p++) {                                                           \
            const T *gp = g + p * plane, *xp = x + p * plane;                                            \
            const double m = mean ? mean[p % c] : 0;                                                     \
            double s = 0, sx = 0;                                                                        \
            _Pragma("omp simd reduction(+ : s, sx)")                                                     \
            for (int64_t k = 0; k < plane; k++) {                                                        \
                s += gp[k];                                                                              \
                sx += (double)gp[k] * ((double)xp[k] - m);                                               \
            }                                                                                            \
            part[2 * p] = s;                                                                             \
            part[2 * p + 1] = sx;                                                                        \
        }                                                                                                \
        for (int64_t ch = 0; ch < c; ch++) {                                                             \
            double s = 0, sx = 0;                                                                        \
            for (int64_t i = 0; i < n; i++) {                                                            \
                s += part[2 * (i * c + ch)];                                                             \
                sx += part[2 * (i * c + ch) + 1];                                                        \
            }                                                                                            \
            sum_g[ch] = s;                                                                               \
            sum_gx[ch] = sx;                                                                             \
        }                                                                                                \
        free(part);                                                                                      \
        return FC_OK;                                                                                    \
    }                                                                                                    \
    int fc_channel_axpby_##sfx(const T *g, const T *x, T *out, int64_t n, int64_t c, int64_t plane,     \
                               const T *a, const T *b, const T *mean, const T *d, int nthreads)         \
    {                                                                                                    \
        if (!valid_shape(n, c, plane)) return FC_EINVAL;                                                 \
        const int64_t total = n * c * plane, nblk = (total + NORM_GRAIN - 1) / NORM_GRAIN;             \
        _Pragma("omp parallel for schedule(static) num_threads(useful_threads(total, nthreads))")      \
        for (int64_t blk = 0; blk < nblk; blk++) {                                                       \
            const int64_t lo = blk * NORM_GRAIN, hi = lo + NORM_GRAIN < total ? lo + NORM_GRAIN : total; \
            FOR_RUNS(lo, hi, c, plane, {                                                                 \
                const T ak = a ? a[ch] : 1, dk = d ? d[ch] : 0;                                          \
                if (b) {                                                                                 \
                    const T bk = b[ch], mk = mean ? mean[ch] : 0;                                        \
                    for (int64_t k = i; k < end; k++) out[k] = ak * g[k] + bk * (x[k] - mk) + dk;        \
                } else {                                                                                 \
                    for (int64_t k = i; k < end; k++) out[k] = ak * g[k] + dk;                           \
                }                                                                                        \
            })                                                                                           \
        }                                                                                                \
        return FC_OK;                                                                                    \
    }                                                                                                    \
    int fc_act_backward_##sfx(const T *g, const T *y, T *out, int64_t size, int act, int nthreads)      \
    {                                                                                                    \
        if (size < 0 || act <= FC_ACT_NONE || act > FC_ACT_SIGMOID) return FC_EINVAL;                  \
        const int64_t nblk = (size + NORM_GRAIN - 1) / NORM_GRAIN;                                       \
        _Pragma("omp parallel for schedule(static) num_threads(useful_threads(size, nthreads))")       \
        for (int64_t blk = 0; blk < nblk; blk++) {                                                       \
            const int64_t lo = blk * NORM_GRAIN, hi = lo + NORM_GRAIN < size ? lo + NORM_GRAIN : size;  \
            fc_##pre##act_backward_run(g + lo, y + lo, out + lo, hi - lo, act);                          \
        }                                                                                                \
        return FC_OK;                                                                                    \
    }

DEFINE_NORM(float, f32, s)
DEFINE_NORM(double, f64, d)
