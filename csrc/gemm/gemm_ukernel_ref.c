/* Portable C GEMM micro-kernels: the baseline every CPU runs (no -m flags; on x86-64 the
 * compiler may still use SSE2 for the inner loops). */
#include "gemm_kernels.h"

#define DEFINE_REF_UKR(NAME, T, MR, NR)                                                         \
    void NAME(int64_t k, const T *a, const T *b, T *c, int64_t ldc, int accumulate, const fc_ukr_ep *ep) \
    {                                                                                           \
        T acc[MR][NR] = {{0}};                                                                  \
        for (int64_t p = 0; p < k; p++) {                                                       \
            for (int i = 0; i < MR; i++)                                                        \
                for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];                          \
            a += MR;                                                                            \
            b += NR;                                                                            \
        }                                                                                       \
        for (int i = 0; i < MR; i++) {                                                          \
            const T *sc = ep ? ep->scale : NULL, *bi = ep ? ep->bias : NULL;                    \
            const T s = sc ? sc[i] : 1, t = bi ? bi[i] : 0;                                     \
            for (int j = 0; j < NR; j++) {                                                      \
                T v = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];                      \
                if (ep) {                                                                       \
                    v = v * s + t;                                                              \
                    v = v < (T)ep->lo ? (T)ep->lo : v > (T)ep->hi ? (T)ep->hi : v;              \
                }                                                                               \
                c[i * ldc + j] = v;                                                             \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_REF_UKR(fc_sgemm_ukr_ref_4x16, float, 4, 16)
DEFINE_REF_UKR(fc_dgemm_ukr_ref_4x8, double, 4, 8)

double fc_peak_loop_ref(int64_t iters)
{
    float v[4][8];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) v[i][j] = (float)(i + j);
    for (int64_t n = 0; n < iters; n++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) v[i][j] = v[i][j] * 0.999999f + 1e-7f;
    volatile float sink = v[0][0] + v[3][7];
    (void)sink;
    return (double)iters * 4 * 8 * 2;
}
