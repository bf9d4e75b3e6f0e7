/* AVX2+FMA GEMM micro-kernels (flags keyed on the _avx2.c suffix). 6 rows x 2 ymm columns =
 * 12 accumulators, the Haswell-style shape: 16 ymm registers leave no room for more. */
#include <immintrin.h>
#include "gemm_kernels.h"

#define MR 6

/* The tile epilogue (gemm_kernels.h) on one row's vectors, in registers. max/min return their
 * second operand when either is NaN, so a NaN product stays NaN as in PyTorch's ReLU. */
static inline void ep_row_pd(__m256d *v, const fc_ukr_ep *ep, int i)
{
    const double *sc = ep->scale, *bi = ep->bias;
    const __m256d s = _mm256_set1_pd(sc ? sc[i] : 1), t = _mm256_set1_pd(bi ? bi[i] : 0);
    const __m256d lo = _mm256_set1_pd((double)ep->lo), hi = _mm256_set1_pd((double)ep->hi);
    for (int q = 0; q < 2; q++) v[q] = _mm256_min_pd(hi, _mm256_max_pd(lo, _mm256_fmadd_pd(v[q], s, t)));
}

static inline void ep_row_ps(__m256 *v, const fc_ukr_ep *ep, int i)
{
    const float *sc = ep->scale, *bi = ep->bias;
    const __m256 s = _mm256_set1_ps(sc ? sc[i] : 1), t = _mm256_set1_ps(bi ? bi[i] : 0);
    const __m256 lo = _mm256_set1_ps((float)ep->lo), hi = _mm256_set1_ps((float)ep->hi);
    for (int q = 0; q < 2; q++) v[q] = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_fmadd_ps(v[q], s, t)));
}

/* koff NULL: B from its packed panel; else row p of the panel in place at b + koff[p]. */
static inline __attribute__((always_inline)) void sgemm_6x16(int64_t k, const float *a, const float *b,
                                                             const int64_t *koff, float *c, int64_t ldc,
                                                             int accumulate, const fc_ukr_ep *ep)
{
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        const float *bp = koff ? b + koff[p] : b + 16 * p;
        __m256 b0 = koff ? _mm256_loadu_ps(bp) : _mm256_load_ps(bp), b1 = koff ? _mm256_loadu_ps(bp + 8) : _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
            acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
        }
        if (ep) ep_row_ps(acc[i], ep, i);
        _mm256_storeu_ps(ci, acc[i][0]);
        _mm256_storeu_ps(ci + 8, acc[i][1]);
    }
}

void fc_sgemm_ukr_avx2_6x16(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                            int accumulate, const fc_ukr_ep *ep)
{
    sgemm_6x16(k, a, b, NULL, c, ldc, accumulate, ep);
}

void fc_sgemm_ukr_ind_avx2_6x16(int64_t k, const float *a, const float *b, const int64_t *koff, float *c,
                                int64_t ldc, int accumulate, const fc_ukr_ep *ep)
{
    sgemm_6x16(k, a, b, koff, c, ldc, accumulate, ep);
}

void fc_dgemm_ukr_avx2_6x8(int64_t k, const double *a, const double *b, double *c, int64_t ldc,
                           int accumulate, const fc_ukr_ep *ep)
{
    __m256d acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
    for (int64_t p = 0; p < k; p++) {
        __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256d ai = _mm256_broadcast_sd(a + i);
            acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
        }
        a += MR;
        b += 8;
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm256_add_pd(acc[i][0], _mm256_loadu_pd(ci));
            acc[i][1] = _mm256_add_pd(acc[i][1], _mm256_loadu_pd(ci + 4));
        }
        if (ep) ep_row_pd(acc[i], ep, i);
        _mm256_storeu_pd(ci, acc[i][0]);
        _mm256_storeu_pd(ci + 4, acc[i][1]);
    }
}

double fc_peak_loop_avx2(int64_t iters)
{
    __m256 v[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) v[i] = _mm256_set1_ps((float)i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) v[i] = _mm256_fmadd_ps(v[i], x, y);
    }
    __m256 s = v[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, v[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    volatile float sink = out[0];
    (void)sink;
    return (double)iters * 12 * 8 * 2;
}
