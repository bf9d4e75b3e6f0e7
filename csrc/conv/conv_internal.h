/* Internal: one description of a convolution's index maps, shared by the implicit-im2col
 * packers (conv_im2col.inc) and the direct kernels (conv_direct.inc).
 *
 * For every destination pixel o and tap k along an axis, the source index is
 *     src = o * mul + off0 + k * kstep,   read when 0 <= src < extent (else zero padding).
 * Forward:  mul = stride, off0 = -pad, kstep = dilation (source x, destination y).
 * Data gradient (conv.c): per stride phase, mul = 1, kstep = -dilation/gcd (source dy,
 * destination one phase of dx), so it runs on the forward machinery with the weights' roles
 * swapped: a transposed convolution without zero insertion. */
#ifndef FC_CONV_INTERNAL_H
#define FC_CONV_INTERNAL_H
#include "fastconv.h"

typedef struct {
    int64_t extent;          /* source size along the axis */
    int64_t mul, off0, kstep;
} fc_axis;

typedef struct {
    int64_t n, groups;
    int64_t cs, cd;          /* source / destination channels per group */
    int64_t src_h, src_w, dst_h, dst_w, kh, kw;
    fc_axis ah, aw;
    /* weight(g, d, s, ki, kj) = w[g*w_g + d*w_d + s*w_s + ki*w_kh + kj*w_kw] */
    const void *w;
    int64_t w_g, w_d, w_s, w_kh, w_kw;
    /* destination (n, g, d, oh, ow) at dst[((n*groups + g)*cd + d)*dst_plane + dst_off
     * + oh*dst_rs + ow*dst_cs]: a whole plane (dst_off 0, dst_rs dst_w, dst_cs 1), or one
     * stride phase of it (the data gradient of a strided convolution, see conv.c). */
    int64_t dst_plane, dst_off, dst_rs, dst_cs;
} fc_conv_geom;

static inline int fc_dst_dense(const fc_conv_geom *g)
{
    return g->dst_off == 0 && g->dst_cs == 1 && g->dst_rs == g->dst_w && g->dst_plane == g->dst_h * g->dst_w;
}

/* floor(a / b) for b > 0 and any sign of a. */
static inline int64_t fc_floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Destination range [lo, hi) along an axis where tap k reads inside the source. */
static inline void fc_axis_valid(const fc_axis *a, int64_t k, int64_t dst_extent, int64_t *lo, int64_t *hi)
{
    const int64_t off = a->off0 + k * a->kstep;
    int64_t l = fc_floordiv(-off + a->mul - 1, a->mul);            /* ceil(-off / mul) */
    int64_t h = fc_floordiv(a->extent - 1 - off, a->mul) + 1;
    if (l < 0) l = 0;
    if (h > dst_extent) h = dst_extent;
    *lo = l;
    *hi = h > l ? h : l;
}

/* Source index for destination o and tap k, or -1 in the padding. */
static inline int64_t fc_axis_src(const fc_axis *a, int64_t o, int64_t k)
{
    const int64_t s = o * a->mul + a->off0 + k * a->kstep;
    return s >= 0 && s < a->extent ? s : -1;
}

/* Direct kernels, one set per ISA (conv_direct_<isa>.c); FC_OK or FC_ENOMEM. */

#define FC_DECLARE_DIRECT(isa)                                                                          \
    int fc_sconv_direct_##isa(const fc_conv_geom *, const float *, const float *, float *, int);        \
    int fc_dconv_direct_##isa(const fc_conv_geom *, const double *, const double *, double *, int);     \
    int fc_sconv_direct_wgrad_##isa(const fc_conv_geom *, const float *, const float *, float *, int);  \
    int fc_dconv_direct_wgrad_##isa(const fc_conv_geom *, const double *, const double *, double *, int);
/* Depthwise kernels (csrc/dwconv): same signature, for geometries with one source channel per
 * destination channel forward (cs == 1) or one destination channel per group (cd == 1); the
 * channel-blocked _cl kernels for small planes need both (cl_dgrad takes the forward geometry). */
#define FC_DECLARE_DWCONV(isa)                                                                       \
    int fc_sdwconv_##isa(const fc_conv_geom *, const float *, const fc_epilogue *, float *, int);  \
    int fc_ddwconv_##isa(const fc_conv_geom *, const double *, const fc_epilogue *, double *, int); \
    int fc_sdwconv_wgrad_##isa(const fc_conv_geom *, const float *, const float *, float *, int);  \
    int fc_ddwconv_wgrad_##isa(const fc_conv_geom *, const double *, const double *, double *, int);  \
    int fc_sdwconv_cl_##isa(const fc_conv_geom *, const float *, const fc_epilogue *, float *, int);   \
    int fc_ddwconv_cl_##isa(const fc_conv_geom *, const double *, const fc_epilogue *, double *, int);  \
    int fc_sdwconv_cl_dgrad_##isa(const fc_conv_geom *, const float *, float *, int);                  \
    int fc_ddwconv_cl_dgrad_##isa(const fc_conv_geom *, const double *, double *, int);                \
    int fc_sdwconv_cl_wgrad_##isa(const fc_conv_geom *, const float *, const float *, float *, int);   \
    int fc_ddwconv_cl_wgrad_##isa(const fc_conv_geom *, const double *, const double *, double *, int);
/* Winograd F(2x2, 3x3) transforms (conv_winograd_tx.inc): V of the tiles [t0, t0 + nt), and
 * the output tiles from the products M, both with ld tiles per matrix row; `row` is scratch of
 * 8 (tw + 1) elements. */
#define FC_DECLARE_WINOGRAD_T(T, p, isa)                                                                     \
    void fc_##p##winograd_input_##isa(const fc_conv_geom *, const T *, int64_t, int64_t, int64_t, int64_t,   \
                                      int64_t, int64_t, int64_t, T *, T *);                                 \
    void fc_##p##winograd_output_##isa(const fc_conv_geom *, const T *, int64_t, int64_t, int64_t, int64_t,  \
                                       int64_t, const T *, fc_act, T *, T *);
#define FC_DECLARE_WINOGRAD(isa) FC_DECLARE_WINOGRAD_T(float, s, isa) FC_DECLARE_WINOGRAD_T(double, d, isa)
FC_DECLARE_WINOGRAD(avx512)
FC_DECLARE_WINOGRAD(avx2)
FC_DECLARE_WINOGRAD(ref)
FC_DECLARE_DWCONV(avx512)
FC_DECLARE_DWCONV(avx2)
FC_DECLARE_DWCONV(ref)
FC_DECLARE_DIRECT(avx512)
FC_DECLARE_DIRECT(avx2)
FC_DECLARE_DIRECT(ref)
#endif
