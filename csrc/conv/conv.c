/* conv2d forward and backward for float32 and float64: argument checks, the geometry of each
 * pass (conv_internal.h), and dispatch to the implicit-im2col GEMM or the direct kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "conv_internal.h"
#include "../gemm/gemm_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define IT int32_t
#define TV 4
#define FN(x) fc_s##x
#define GEMM fc_sgemm
#define GEMM_MAP fc_sgemm_map
#define PACK_STRIDED fc_pack_strided_f32
#define PACK_PANELS fc_pack_panels_f32
#define CHANNEL_AFFINE fc_channel_affine_f32
#define SELECTED fc_sgemm_selected
#define WINO_SEL(f) (fc_get_isa() == FC_ISA_AVX512 ? fc_s##f##_avx512 : fc_get_isa() == FC_ISA_AVX2 ? fc_s##f##_avx2 : fc_s##f##_ref)
#include "conv_im2col.inc"
#include "conv_winograd.inc"
#undef T
#undef IT
#undef TV
#undef FN
#undef GEMM
#undef GEMM_MAP
#undef PACK_STRIDED
#undef PACK_PANELS
#undef CHANNEL_AFFINE
#undef SELECTED
#undef WINO_SEL

#define T double
#define IT int64_t
#define TV 2
#define FN(x) fc_d##x
#define GEMM fc_dgemm
#define GEMM_MAP fc_dgemm_map
#define PACK_STRIDED fc_pack_strided_f64
#define PACK_PANELS fc_pack_panels_f64
#define CHANNEL_AFFINE fc_channel_affine_f64
#define SELECTED fc_dgemm_selected
#define WINO_SEL(f) (fc_get_isa() == FC_ISA_AVX512 ? fc_d##f##_avx512 : fc_get_isa() == FC_ISA_AVX2 ? fc_d##f##_avx2 : fc_d##f##_ref)
#include "conv_im2col.inc"
#include "conv_winograd.inc"
#undef T
#undef IT
#undef TV
#undef FN
#undef GEMM
#undef GEMM_MAP
#undef PACK_STRIDED
#undef PACK_PANELS
#undef CHANNEL_AFFINE
#undef SELECTED
#undef WINO_SEL

static int valid_params(const fc_conv2d_params *p)
{
    const int64_t big = (int64_t)1 << 31; /* window geometry beyond int32: no product of two overflows */
    if (p->n < 0 || p->c_in < 1 || p->h < 1 || p->w < 1 || p->c_out < 1 || p->kh < 1 || p->kw < 1)
        return 0;
    if (p->stride_h < 1 || p->stride_w < 1 || p->dil_h < 1 || p->dil_w < 1 || p->pad_top < 0 ||
        p->pad_left < 0 || p->groups < 1 || p->c_in % p->groups || p->c_out % p->groups)
        return 0;
    if (p->kh >= big || p->kw >= big || p->stride_h >= big || p->stride_w >= big || p->dil_h >= big ||
        p->dil_w >= big || p->pad_top >= big || p->pad_left >= big)
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
        .ah = {p->h, p->stride_h, -p->pad_top, p->dil_h},
        .aw = {p->w, p->stride_w, -p->pad_left, p->dil_w},
        .w = w, .w_g = cd * cs * kk, .w_d = cs * kk, .w_s = kk, .w_kh = p->kw, .w_kw = 1,
        .dst_plane = p->oh * p->ow, .dst_off = 0, .dst_rs = p->ow, .dst_cs = 1,
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
        .ah = {p->oh, 1, p->pad_top, -p->dil_h},  /* stride 1; strided: per phase */
        .aw = {p->ow, 1, p->pad_left, -p->dil_w},
        .w = w, .w_g = cs * cd * kk, .w_d = kk, .w_s = cd * kk, .w_kh = p->kw, .w_kw = 1,
        .dst_plane = p->h * p->w, .dst_off = 0, .dst_rs = p->w, .dst_cs = 1,
    };
    return g;
}

/* Small passes do not pay for waking threads: about 1 M multiply-adds per thread at least (as
 * in the GEMM driver). The channel-blocked depthwise kernels, which spend as long again moving
 * each element as multiplying it, split from 128 K on. */
static int clamp_threads_by(const fc_conv_geom *g, int nthreads, double unit)
{
    const double work = (double)g->n * g->groups * g->cd * g->cs * g->dst_h * g->dst_w * g->kh * g->kw;
    if (nthreads < 1) nthreads = 1;
    return work < (double)nthreads * unit ? (int)(work / unit) + 1 : nthreads;
}
static int clamp_threads(const fc_conv_geom *g, int nthreads) { return clamp_threads_by(g, nthreads, 1 << 20); }
static int clamp_threads_cl(const fc_conv_geom *g, int nthreads) { return clamp_threads_by(g, nthreads, 1 << 17); }

static int64_t gcd64(int64_t a, int64_t b) { return b ? gcd64(b, a % b) : a; }

/* One stride phase of the data gradient along an axis: destination indices r, r+s, r+2s, ...
 * receive only the taps k with (r + pad - k*dil) divisible by s, which form the progression
 * k0, k0+P, ... (P = s/gcd(s, dil)); on that sub-grid they are a stride-1 convolution. Returns
 * the number of taps (0: the phase gets no contribution). */
static int64_t phase_axis(fc_axis *a, int64_t r, int64_t s, int64_t dil, int64_t pad, int64_t k,
                          int64_t *k0, int64_t *step)
{
    const int64_t P = s / gcd64(s, dil);
    for (*k0 = 0; *k0 < k && *k0 < P; (*k0)++)
        if ((r + pad - *k0 * dil) % s == 0) break;
    if (*k0 >= k || *k0 >= P) return 0;
    *step = P;
    a->mul = 1;
    a->off0 = (r + pad - *k0 * dil) / s; /* exact */
    a->kstep = -(P * dil) / s;
    return (k - *k0 + P - 1) / P;
}

/* The depthwise kernels copy each source plane into a zero-bordered buffer that covers every tap
 * of every output (rows of whole vectors, column phases apart, as dwconv.inc lays it out). With
 * padding or strides far beyond the plane -- valid, if odd, layers -- that buffer would dwarf the
 * data (gigabytes for an 8x8 plane padded by thousands); such layers take the generic direct
 * kernels instead, which read the source in place. */
static double dw_padded_extent(const fc_axis *a, int64_t n_out, int64_t k)
{
    const int64_t kmin = a->kstep < 0 ? (k - 1) * a->kstep : 0, kmax = a->kstep > 0 ? (k - 1) * a->kstep : 0;
    const int64_t lo = a->off0 + kmin, hi = (n_out - 1) * a->mul + a->off0 + kmax;
    return (double)(lo < 0 ? -lo : 0) + (double)(hi + 1 > a->extent ? hi + 1 : a->extent);
}

static int dw_buffer_fits(const fc_conv_geom *g)
{
    const double rows = dw_padded_extent(&g->ah, g->dst_h, g->kh);
    const double pitch = dw_padded_extent(&g->aw, g->dst_w + 16, g->kw) + 17.0 * (double)g->aw.mul;
    const double data = (double)g->src_h * (double)g->src_w + (double)g->dst_h * (double)g->dst_w;
    return rows * pitch <= 4.0 * data + (double)(1 << 20);
}

/* The channel-blocked depthwise kernels need one source channel per destination channel, whole
 * destination planes and a per-thread buffer of 16 x (padded plane + output plane) elements,
 * bounded here. They run the data gradient of strided layers (all phases in one pass, where the
 * phase split writes dx element by element), and the other passes where rows are narrower than
 * FC_DW_CL_MAX_W; on wider rows the row kernels are as fast (README, depthwise). */
#ifndef FC_DW_CL_MAX_W
#define FC_DW_CL_MAX_W 32
#endif
static int dw_cl_fits(const fc_conv_geom *g, int64_t max_w)
{
    if (g->cs != 1 || g->cd != 1 || g->dst_w >= max_w || !fc_dst_dense(g)) return 0;
    const double rows = dw_padded_extent(&g->ah, g->dst_h, g->kh), pitch = dw_padded_extent(&g->aw, g->dst_w, g->kw);
    return 16.0 * (rows * pitch + (double)g->dst_h * (double)g->dst_w) <= (double)(1 << 20);
}

/* Rows of at most one vector, at least half of it used, in planes of 144 pixels or more (14x14
 * in float32 on AVX-512), 3x3 or 5x5 at stride 1: the row kernels' whole-plane tiles
 * (dwconv.inc, dw_plane_narrow) beat the channel-blocked kernels' transposes there (MobileNetV2's
 * 384 channels on 14x14 at batch 8: 0.20 against 0.24 ms). On 7x7 planes they lose, in 16
 * lanes (0.19 against 0.13 ms for 576 channels) and in AVX2's 8 (0.18 against 0.15). */
static int dw_rows_narrow(const fc_conv_geom *g, int64_t tsize)
{
    const fc_isa isa = fc_get_isa();
    const int64_t vlen = (isa == FC_ISA_AVX512 ? 64 : isa == FC_ISA_AVX2 ? 32 : 16) / tsize;
    return g->cs == 1 && g->ah.mul == 1 && g->aw.mul == 1 && (g->ah.kstep == 1 || g->ah.kstep == -1) &&
           g->aw.kstep == g->ah.kstep && g->kh == g->kw && (g->kh == 3 || g->kh == 5) && g->dst_w <= vlen &&
           2 * g->dst_w > vlen && g->dst_h * g->dst_w >= 144 && g->dst_cs == 1 && g->dst_rs == g->dst_w;
}

/* The im2col data gradient of layers with fewer input channels per group than this (the GEMM
 * micro-tile's rows) is a GEMM over input channels x taps plus col2im (conv_im2col.inc). */
#define FC_COL2IM_MAX_CIN 16

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
                                const T *scale, const T *bias, int act, T *y, int nthreads)           \
    {                                                                                                 \
        if (!valid_params(p) || act < FC_ACT_NONE || act > FC_ACT_SIGMOID) return FC_EINVAL;          \
        if (p->n == 0) return FC_OK;                                                                  \
        const fc_conv_geom g = forward_geom(p, w);                                                    \
        const fc_epilogue post = {bias, 0, (fc_act)act, scale};                                       \
        if (algo == FC_CONV_DIRECT && p->c_in == p->groups) { /* depthwise: epilogue in the kernels */ \
            if (dw_rows_narrow(&g, sizeof(T)) && dw_buffer_fits(&g))                                  \
                return SELECT_DIRECT(fc_##pre##dwconv_, )(&g, x, &post, y, clamp_threads_cl(&g, nthreads)); \
            if (dw_cl_fits(&g, FC_DW_CL_MAX_W))                                                       \
                return SELECT_DIRECT(fc_##pre##dwconv_cl_, )(&g, x, &post, y, clamp_threads_cl(&g, nthreads)); \
            if (dw_buffer_fits(&g))                                                                   \
                return SELECT_DIRECT(fc_##pre##dwconv_, )(&g, x, &post, y, clamp_threads(&g, nthreads)); \
        }                                                                                             \
        if (algo == FC_CONV_DIRECT) { /* bias in the accumulators; a scale or activation after */     \
            const T *b0 = scale ? NULL : bias;                                                        \
            const int rc = SELECT_DIRECT(fc_##pre##conv_direct_, )(&g, x, b0, y, clamp_threads(&g, nthreads)); \
            if (rc != FC_OK || (!scale && act == FC_ACT_NONE)) return rc;                             \
            return fc_channel_affine_##sfx(y, y, p->n, p->c_out, p->oh * p->ow, NULL, scale,          \
                                           scale ? bias : NULL, act, nthreads);                       \
        }                                                                                             \
        if (algo == FC_CONV_WINOGRAD && fc_##pre##winograd_eligible(&g))                              \
            return fc_##pre##conv_winograd(&g, x, &post, y, nthreads);                                \
        return fc_##pre##conv_im2col(&g, x, &post, y, nthreads);                                      \
    }                                                                                                 \
    int fc_conv2d_backward_data_##sfx(const fc_conv2d_params *p, fc_conv_algo algo, const T *dy,      \
                                      const T *w, T *dx, int nthreads)                                \
    {                                                                                                 \
        if (!valid_params(p)) return FC_EINVAL;                                                       \
        if (p->n == 0) return FC_OK;                                                                  \
        if (algo == FC_CONV_DIRECT && p->c_in == p->groups &&                                         \
            (p->stride_h > 1 || p->stride_w > 1)) { /* strided depthwise: all phases in one pass */   \
            const fc_conv_geom fg = forward_geom(p, w);                                               \
            if (dw_cl_fits(&fg, INT64_MAX))                                                           \
                return SELECT_DIRECT(fc_##pre##dwconv_cl_dgrad_, )(&fg, dy, dx, clamp_threads_cl(&fg, nthreads)); \
        }                                                                                             \
        if (algo == FC_CONV_IM2COL && p->c_in / p->groups < FC_COL2IM_MAX_CIN) {                      \
            const fc_conv_geom fg = forward_geom(p, w); /* few input channels: GEMM + col2im */       \
            return fc_##pre##conv_dgrad_col2im(&fg, dy, dx, nthreads);                                \
        }                                                                                             \
        const fc_conv_geom base = backward_data_geom(p, w);                                           \
        for (int64_t rh = 0; rh < p->stride_h && rh < p->h; rh++)                                     \
            for (int64_t rw = 0; rw < p->stride_w && rw < p->w; rw++) {                               \
                fc_conv_geom g = base;                                                                \
                int64_t k0h, k0w, ph = 1, pw = 1;                                                     \
                g.kh = phase_axis(&g.ah, rh, p->stride_h, p->dil_h, p->pad_top, p->kh, &k0h, &ph);    \
                g.kw = phase_axis(&g.aw, rw, p->stride_w, p->dil_w, p->pad_left, p->kw, &k0w, &pw);   \
                g.dst_h = (p->h - rh + p->stride_h - 1) / p->stride_h;                                \
                g.dst_w = (p->w - rw + p->stride_w - 1) / p->stride_w;                                \
                g.dst_off = rh * p->w + rw;                                                           \
                g.dst_rs = p->stride_h * p->w;                                                        \
                g.dst_cs = p->stride_w;                                                               \
                if (g.kh == 0 || g.kw == 0) { /* no tap reaches this phase */                         \
                    for (int64_t c = 0; c < p->n * p->c_in; c++)                                      \
                        for (int64_t i = 0; i < g.dst_h; i++)                                         \
                            for (int64_t j = 0; j < g.dst_w; j++)                                     \
                                dx[c * g.dst_plane + g.dst_off + i * g.dst_rs + j * g.dst_cs] = 0;    \
                    continue;                                                                         \
                }                                                                                     \
                g.w = (const T *)w + k0h * base.w_kh + k0w * base.w_kw;                               \
                g.w_kh = ph * base.w_kh;                                                              \
                g.w_kw = pw * base.w_kw;                                                              \
                const int rc = algo == FC_CONV_DIRECT                                                 \
                                   ? (p->c_in == p->groups && dw_rows_narrow(&g, sizeof(T)) && dw_buffer_fits(&g) \
                                          ? SELECT_DIRECT(fc_##pre##dwconv_, )(&g, dy, NULL, dx, clamp_threads_cl(&g, nthreads)) \
                                          : p->c_in == p->groups && dw_cl_fits(&g, FC_DW_CL_MAX_W)          \
                                          ? SELECT_DIRECT(fc_##pre##dwconv_cl_, )(&g, dy, NULL, dx, clamp_threads_cl(&g, nthreads)) \
                                          : p->c_in == p->groups && dw_buffer_fits(&g)                \
                                          ? SELECT_DIRECT(fc_##pre##dwconv_, )(&g, dy, NULL, dx, clamp_threads(&g, nthreads)) \
                                          : SELECT_DIRECT(fc_##pre##conv_direct_, )(&g, dy, NULL, dx, clamp_threads(&g, nthreads))) \
                                   : algo == FC_CONV_WINOGRAD && fc_##pre##winograd_eligible(&g)      \
                                   ? fc_##pre##conv_winograd(&g, dy, NULL, dx, nthreads)              \
                                   : fc_##pre##conv_im2col(&g, dy, NULL, dx, nthreads);               \
                if (rc != FC_OK) return rc;                                                           \
            }                                                                                         \
        return FC_OK;                                                                                 \
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
            if (p->c_in == p->groups && dw_cl_fits(&g, FC_DW_CL_MAX_W))                               \
                return SELECT_DIRECT(fc_##pre##dwconv_cl_wgrad_, )(&g, dy, x, dw, clamp_threads_cl(&g, nthreads)); \
            return p->c_in == p->groups && dw_buffer_fits(&g)                                         \
                       ? SELECT_DIRECT(fc_##pre##dwconv_wgrad_, )(&g, dy, x, dw, clamp_threads(&g, nthreads)) \
                       : SELECT_DIRECT(fc_##pre##conv_direct_wgrad_, )(&g, dy, x, dw, clamp_threads(&g, nthreads));             \
        }                                                                                             \
        return fc_##pre##conv_wgrad_im2col(&g, dy, x, dw, nthreads);                                  \
    }
DEFINE_API(float, f32, s)
DEFINE_API(double, f64, d)
