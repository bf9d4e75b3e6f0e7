/* fastconv C API, per-channel elementwise ops: batch normalisation (statistics, normalise,
 * gradients) and the activations conv epilogues also apply. Included by fastconv.h.
 * Arrays are C-contiguous (n, c, plane) stacks: channel ch of image i is the `plane`
 * elements at (i*c + ch)*plane. Per-channel vectors have c entries; NULL means the identity
 * (scale 1, mean/shift 0). One pass each, threads over blocks of elements (or over planes for
 * the reductions). */
#ifndef FASTCONV_NORM_H
#define FASTCONV_NORM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y = act((x - mean[ch]) * scale[ch] + shift[ch]); y may be x (in place). NaN propagates
 * through the activations, as in PyTorch. act is an fc_act (fastconv.h). */
int fc_channel_affine_f32(const float *x, float *y, int64_t n, int64_t c, int64_t plane, const float *mean,
                          const float *scale, const float *shift, int act, int nthreads);
int fc_channel_affine_f64(const double *x, double *y, int64_t n, int64_t c, int64_t plane, const double *mean,
                          const double *scale, const double *shift, int act, int nthreads);

/* Per channel, in float64: mean[ch] of x, and var[ch] = mean of (x - mean)^2 (biased; two
 * passes over the channel, so no cancellation). */
int fc_channel_stats_f32(const float *x, int64_t n, int64_t c, int64_t plane, double *mean, double *var,
                         int nthreads);
int fc_channel_stats_f64(const double *x, int64_t n, int64_t c, int64_t plane, double *mean, double *var,
                         int nthreads);

/* Per channel, in float64: sum_g[ch] = sum of g, sum_gx[ch] = sum of g * (x - mean[ch]). */
int fc_channel_dot_f32(const float *g, const float *x, int64_t n, int64_t c, int64_t plane, const double *mean,
                       double *sum_g, double *sum_gx, int nthreads);
int fc_channel_dot_f64(const double *g, const double *x, int64_t n, int64_t c, int64_t plane,
                       const double *mean, double *sum_g, double *sum_gx, int nthreads);

/* out = a[ch] * g + b[ch] * (x - mean[ch]) + d[ch] (b NULL: x is not read); out may be g. */
int fc_channel_axpby_f32(const float *g, const float *x, float *out, int64_t n, int64_t c, int64_t plane,
                         const float *a, const float *b, const float *mean, const float *d, int nthreads);
int fc_channel_axpby_f64(const double *g, const double *x, double *out, int64_t n, int64_t c, int64_t plane,
                         const double *a, const double *b, const double *mean, const double *d, int nthreads);

/* out = g * act'(.): for ReLU and ReLU6 y is the activation's output, and out = g where it has
 * slope 1, else 0 (y <= 0, or y >= 6: PyTorch's threshold/hardtanh backward, so NaN passes g);
 * for SiLU and Sigmoid y is the activation's input x. out may be g. */
int fc_act_backward_f32(const float *g, const float *y, float *out, int64_t size, int act, int nthreads);
int fc_act_backward_f64(const double *g, const double *y, double *out, int64_t size, int act, int nthreads);

#ifdef __cplusplus
}
#endif
#endif
