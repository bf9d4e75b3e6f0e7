/* Internal: the per-ISA elementwise activation runs (act.inc) and their dispatch, shared by the
 * per-channel kernels (norm.c) and the GEMM epilogue (gemm_driver.inc). */
#ifndef FC_NORM_INTERNAL_H
#define FC_NORM_INTERNAL_H
#include <math.h>
#include <string.h>
#include "fastconv.h"

#define FC_DECLARE_ACT(isa)                                                                            \
    void fc_saffine_run_##isa(const float *, float *, int64_t, float, float, float, int);             \
    void fc_daffine_run_##isa(const double *, double *, int64_t, double, double, double, int);        \
    void fc_saffine_rows_##isa(float *, int64_t, int64_t, int64_t, const float *, const float *, int);  \
    void fc_daffine_rows_##isa(double *, int64_t, int64_t, int64_t, const double *, const double *, int); \
    void fc_sact_backward_run_##isa(const float *, const float *, float *, int64_t, int);             \
    void fc_dact_backward_run_##isa(const double *, const double *, double *, int64_t, int);
FC_DECLARE_ACT(avx512)
FC_DECLARE_ACT(avx2)
FC_DECLARE_ACT(ref)

/* The selected ISA's runs (norm.c). */
void fc_saffine_run(const float *x, float *y, int64_t len, float m, float s, float b, int act);
void fc_daffine_run(const double *x, double *y, int64_t len, double m, double s, double b, int act);
void fc_saffine_rows(float *c, int64_t ldc, int64_t rows, int64_t len, const float *scale, const float *bias, int act);
void fc_daffine_rows(double *c, int64_t ldc, int64_t rows, int64_t len, const double *scale, const double *bias,
                     int act);
void fc_sact_backward_run(const float *g, const float *y, float *out, int64_t len, int act);
void fc_dact_backward_run(const double *g, const double *y, double *out, int64_t len, int act);

/* exp(x) in float32 to about 2 ulp (the scalar twin of act.inc's vector exp, for tails): x = n ln2 + r with |r| <= ln2/2, exp(r) by Cephes' degree-6 minimax
 * polynomial, 2^n built in the exponent bits. x is clamped to [-87, 88] (exp underflows to
 * ~1.6e-38 and overflows to ~1.7e38 instead of 0 / inf); NaN passes through. */
static inline float fc_expf(float x)
{
    x = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    const float t = x * 1.44269504088896341f + shifter;
    const float n = t - shifter;
    uint32_t ti, si;
    memcpy(&ti, &t, 4);
    memcpy(&si, &shifter, 4);
    const uint32_t bits = (ti - si + 127u) << 23; /* (unsigned: no overflow whatever a NaN holds) */
    float pow2n;
    memcpy(&pow2n, &bits, 4);
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    return (p * r * r + r + 1.0f) * pow2n;
}
#endif
