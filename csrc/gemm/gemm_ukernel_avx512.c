/* AVX-512 GEMM micro-kernels. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
 * (setup.py keys the flags on the _avx512.c suffix); only called when the CPU has them.
 * 14 rows x 2 zmm columns = 28 accumulators + 2 B registers: each k step issues 28 FMAs whose
 * A operand is an embedded broadcast from memory, so loads never limit the two FMA ports. */
#include <immintrin.h>
#include "gemm_kernels.h"

#define MR 14

/* The tile epilogue (gemm_kernels.h) on one row's vectors, in registers. max/min return their
 * second operand when either is NaN, so a NaN product stays NaN as in PyTorch's ReLU. */
static inline void ep_row_pd(__m512d *v, const fc_ukr_ep *ep, int i)
{
    const double *sc = ep->scale, *bi = ep->bias;
    const __m512d s = _mm512_set1_pd(sc ? sc[i] : 1), t = _mm512_set1_pd(bi ? bi[i] : 0);
    const __m512d lo = _mm512_set1_pd((double)ep->lo), hi = _mm512_set1_pd((double)ep->hi);
    for (int q = 0; q < 2; q++) v[q] = _mm512_min_pd(hi, _mm512_max_pd(lo, _mm512_fmadd_pd(v[q], s, t)));
}

/* The tile epilogue (gemm_kernels.h) on one row's vectors, in registers. max/min return their
 * second operand when either is NaN, so a NaN product stays NaN as in PyTorch's ReLU. */
static inline void ep_row_ps(__m512 *v, const fc_ukr_ep *ep, int i)
{
    const float *sc = ep->scale, *bi = ep->bias;
    const __m512 s = _mm512_set1_ps(sc ? sc[i] : 1), t = _mm512_set1_ps(bi ? bi[i] : 0);
    const __m512 lo = _mm512_set1_ps((float)ep->lo), hi = _mm512_set1_ps((float)ep->hi);
    for (int q = 0; q < 2; q++) v[q] = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_fmadd_ps(v[q], s, t)));
}

void fc_sgemm_ukr_avx512_14x32(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                               int accumulate, const fc_ukr_ep *ep)
{
    __m512 acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    /* C comes cold from memory: start fetching the tile now so the final loads/stores
     * overlap the k loop instead of stalling after it. */
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
        b += 32;
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(ci));
            acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(ci + 16));
        }
        if (ep) ep_row_ps(acc[i], ep, i);
        _mm512_storeu_ps(ci, acc[i][0]);
        _mm512_storeu_ps(ci + 16, acc[i][1]);
    }
}

void fc_dgemm_ukr_avx512_14x16(int64_t k, const double *a, const double *b, double *c, int64_t ldc,
                               int accumulate, const fc_ukr_ep *ep)
{
    __m512d acc[MR][2];
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
    /* C comes cold from memory: start fetching the tile now so the final loads/stores
     * overlap the k loop instead of stalling after it. */
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 8), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < k; p++) {
        __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8);
#pragma GCC unroll 14
        for (int i = 0; i < MR; i++) {
            __m512d ai = _mm512_set1_pd(a[i]);
            acc[i][0] = _mm512_fmadd_pd(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_pd(ai, b1, acc[i][1]);
        }
        a += MR;
        b += 16;
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
        double *ci = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_pd(acc[i][0], _mm512_loadu_pd(ci));
            acc[i][1] = _mm512_add_pd(acc[i][1], _mm512_loadu_pd(ci + 8));
        }
        if (ep) ep_row_pd(acc[i], ep, i);
        _mm512_storeu_pd(ci, acc[i][0]);
        _mm512_storeu_pd(ci + 8, acc[i][1]);
    }
}

/* 24 independent FMA chains: enough to cover 4-cycle latency on two ports. */
double fc_peak_loop_avx512(int64_t iters)
{
    __m512 v[24];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 24; i++) v[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iters; n++) {
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) v[i] = _mm512_fmadd_ps(v[i], x, y);
    }
    __m512 s = v[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, v[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 24 * 16 * 2;
}
