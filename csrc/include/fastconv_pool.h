/* fastconv C API, pooling: max / average / adaptive / global pooling, forward and backward.
 * Included by fastconv.h. Arrays are C-contiguous stacks of `planes` = N*C planes; indices are
 * int64 flat positions ih*w + iw inside each input plane (PyTorch's return_indices). */
#ifndef FASTCONV_POOL_H
#define FASTCONV_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x: planes x h x w, y: planes x oh x ow. Window (oh, ow) covers rows oh*stride_h - pad_h +
 * ki*dil_h (ki < kh) and columns likewise, clamped to the input (padding is never read); oh/ow
 * include PyTorch's ceil_mode rule. The adaptive functions read only planes, h, w, oh, ow. */
typedef struct {
    int64_t planes, h, w, oh, ow;
    int64_t kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
    int64_t count_include_pad;  /* avg: the divisor counts padding inside the padded input */
    int64_t divisor;            /* avg: divisor_override, or 0 for none */
} fc_pool2d_params;

/* y = max over each window; idx (may be NULL) = flat index of the first maximum (of the last
 * NaN when the window holds NaN). */
int fc_max_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int64_t *idx, int nthreads);
int fc_max_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int64_t *idx, int nthreads);
/* dx (overwritten) = dy scattered to idx, per plane (also adaptive max pooling's gradient);
 * indices outside [0, h*w) are skipped. */
int fc_max_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, const int64_t *idx, float *dx,
                               int nthreads);
int fc_max_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, const int64_t *idx, double *dx,
                               int nthreads);

int fc_avg_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int nthreads);
int fc_avg_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int nthreads);
int fc_avg_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, float *dx, int nthreads);
int fc_avg_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, double *dx, int nthreads);

/* Adaptive windows: rows floor(i*h/oh) .. ceil((i+1)*h/oh), columns likewise. */
int fc_adaptive_avg_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int nthreads);
int fc_adaptive_avg_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int nthreads);
int fc_adaptive_avg_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, float *dx, int nthreads);
int fc_adaptive_avg_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, double *dx, int nthreads);
int fc_adaptive_max_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int64_t *idx,
                                       int nthreads);
int fc_adaptive_max_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int64_t *idx,
                                       int nthreads);

/* Global average: y[plane] = mean of the plane; backward dx = dy[plane] / (h*w) everywhere. */
int fc_global_avg_pool2d_forward_f32(const fc_pool2d_params *p, const float *x, float *y, int nthreads);
int fc_global_avg_pool2d_forward_f64(const fc_pool2d_params *p, const double *x, double *y, int nthreads);
int fc_global_avg_pool2d_backward_f32(const fc_pool2d_params *p, const float *dy, float *dx, int nthreads);
int fc_global_avg_pool2d_backward_f64(const fc_pool2d_params *p, const double *dy, double *dx, int nthreads);

#ifdef __cplusplus
}
#endif
#endif
