/* AVX-512 GEMM micro-kernels. Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma
 * (setup.py keys the flags on the _avx512.c suffix); only called when the CPU has them.
 * Each k step broadcasts one A value per row and multiplies it into that row's accumulators,
 * leaving the FMA ports, not the loads, as the limit. float: 8 x 48 (below); double: 14 rows x 2
 * zmm columns = 28 accumulators + 2 B registers. */
#include <immintrin.h>
#include "gemm_kernels.h"

#define MR 14

/* The tile epilogue (gemm_kernels.h) on one row's vectors, in registers. max/min return their
 * second operand when either is NaN, so a NaN product stays NaN as in PyTorch's ReLU. */
static inline void ep_row_pd(__m512d *v, const fc_ukr_ep *ep, int i, int nv)
{
    const double *sc = ep->scale, *bi = ep->bias;
    const __m512d s = _mm512_set1_pd(sc ? sc[i] : 1), t = _mm512_set1_pd(bi ? bi[i] : 0);
    const __m512d lo = _mm512_set1_pd((double)ep->lo), hi = _mm512_set1_pd((double)ep->hi);
    for (int q = 0; q < nv; q++) v[q] = _mm512_min_pd(hi, _mm512_max_pd(lo, _mm512_fmadd_pd(v[q], s, t)));
}

static inline void ep_row_ps(__m512 *v, const fc_ukr_ep *ep, int i, int nv)
{
    const float *sc = ep->scale, *bi = ep->bias;
    const __m512 s = _mm512_set1_ps(sc ? sc[i] : 1), t = _mm512_set1_ps(bi ? bi[i] : 0);
    const __m512 lo = _mm512_set1_ps((float)ep->lo), hi = _mm512_set1_ps((float)ep->hi);
    for (int q = 0; q < nv; q++) v[q] = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_fmadd_ps(v[q], s, t)));
}

/* 8 rows x 3 zmm columns: 24 accumulators + 3 B registers, 11 loads per 24 FMAs. Eight rows
 * divide the channel counts of real networks (64, 128, 256...), where 14 left a tile of 2
 * or 8 rows in every column: 9% of a 64- or 128-channel layer's multiply-adds were padding.
 * The body takes the number of column vectors `nv` (inlined as a constant): 3 for full tiles,
 * 1 or 2 for the last, narrow tile of a row of C, whose panel is still 48 wide. */
static inline __attribute__((always_inline)) void sgemm_8xnv(int64_t k, const float *a, const float *b,
                                                             const int64_t *koff, float *c, int64_t ldc,
                                                             int accumulate, const fc_ukr_ep *ep, const int nv)
{
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        for (int q = 0; q < nv; q++) acc[i][q] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* C comes cold from memory: fetch it during the k loop */
        for (int q = 0; q < nv; q++) _mm_prefetch((const char *)(c + i * ldc + 16 * q), _MM_HINT_T0);
    for (int64_t p = 0; p < k; p++) {
        __m512 bv[3];
        if (koff) /* B row p read in place at b + koff[p] (unaligned), not from a packed panel */
            for (int q = 0; q < nv; q++) bv[q] = _mm512_loadu_ps(b + koff[p] + 16 * q);
        else
            for (int q = 0; q < nv; q++) bv[q] = _mm512_load_ps(b + 48 * p + 16 * q);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const __m512 ai = _mm512_set1_ps(a[i]);
            for (int q = 0; q < nv; q++) acc[i][q] = _mm512_fmadd_ps(ai, bv[q], acc[i][q]);
        }
        a += 8;
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        float *ci = c + i * ldc;
        if (accumulate)
            for (int q = 0; q < nv; q++) acc[i][q] = _mm512_add_ps(acc[i][q], _mm512_loadu_ps(ci + 16 * q));
        if (ep) ep_row_ps(acc[i], ep, i, nv);
        for (int q = 0; q < nv; q++) _mm512_storeu_ps(ci + 16 * q, acc[i][q]);
    }
}

void fc_sgemm_ukr_avx512_8x48(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                              int accumulate, const fc_ukr_ep *ep)
{
    sgemm_8xnv(k, a, b, NULL, c, ldc, accumulate, ep, 3);
}

/* The same full tile with B's rows in place: row p of the 48-wide panel at b + koff[p]. */
void fc_sgemm_ukr_ind_avx512_8x48(int64_t k, const float *a, const float *b, const int64_t *koff, float *c,
                                  int64_t ldc, int accumulate, const fc_ukr_ep *ep)
{
    sgemm_8xnv(k, a, b, koff, c, ldc, accumulate, ep, 3);
}

/* A tile of C with nr < 48 valid columns: only the vectors that hold them (512x4608 @ 4608x49,
 * ResNet's last 3x3 on one image, computed 96 columns for 49 with one kernel). */
void fc_sgemm_edge_avx512_8x48(int64_t k, const float *a, const float *b, float *c, int64_t ldc, int64_t nr)
{
    if (nr <= 16)
        sgemm_8xnv(k, a, b, NULL, c, ldc, 0, NULL, 1);
    else if (nr <= 32)
        sgemm_8xnv(k, a, b, NULL, c, ldc, 0, NULL, 2);
    else
        sgemm_8xnv(k, a, b, NULL, c, ldc, 0, NULL, 3);
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
        if (ep) ep_row_pd(acc[i], ep, i, 2);
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
