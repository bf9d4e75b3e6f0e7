/* fastconv C API: plain pointers, element strides, explicit thread counts.
 * Nothing here knows about Python or NumPy. */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes. */
enum { FC_OK = 0, FC_ENOMEM = -1, FC_EINVAL = -2 };

/* ---- runtime: ISA detection and selection -------------------------------------------- */
typedef enum { FC_ISA_GENERIC = 0, FC_ISA_AVX2 = 1, FC_ISA_AVX512 = 2, FC_ISA_COUNT = 3 } fc_isa;

const char *fc_isa_name(fc_isa isa);
int fc_isa_supported(fc_isa isa);   /* does this CPU (and OS) run it? */
fc_isa fc_isa_best(void);           /* best supported */
int fc_set_isa(fc_isa isa);         /* FC_EINVAL if unsupported */
fc_isa fc_get_isa(void);

int fc_openmp_enabled(void);
int fc_omp_max_threads(void);        /* omp_get_max_threads() of the calling thread, 1 without OpenMP */
void fc_omp_set_num_threads(int n);  /* the calling thread's OpenMP ICV; no-op without OpenMP */
const char *fc_compiler(void);

/* 64-byte aligned, NULL on failure or overflow. Blocks of FC_CACHE_MIN_BYTES and more are kept
 * when freed (up to a byte limit, FC_CACHE_DEFAULT_MB at start) and reused: csrc/runtime/alloc.c. */
#define FC_CACHE_MIN_BYTES ((size_t)256 << 10)
#define FC_CACHE_DEFAULT_MB 512
void *fc_aligned_alloc(size_t bytes);
void fc_aligned_free(void *p);             /* p from fc_aligned_alloc, or NULL */
void fc_cache_set_limit(size_t bytes);     /* 0 turns the cache off (and empties it) */
void fc_cache_stats(size_t *limit, size_t *cached, int *blocks, uint64_t *hits, uint64_t *misses);

/* Measured fp32 FMA throughput of the selected ISA on `nthreads` threads, GFLOP/s. */
double fc_peak_gflops(int nthreads, double seconds);

/* ---- GEMM core ----------------------------------------------------------------------- *
 * C[m x n] (=|+=) A[m x k] * B[k x n], C row-major with leading dimension ldc.
 * Operands are read through fc_operand: a view of an "r x k" matrix, where r is m for A and
 * n for B (B is seen transposed: element (j, p) is B[p][j]). The default packer reads a
 * strided matrix; later op families supply their own `pack` (implicit im2col) instead. */
typedef struct fc_operand fc_operand;
typedef void (*fc_pack_fn)(const fc_operand *op, int64_t r0, int64_t rlen, int64_t p0, int64_t plen,
                           int64_t width, void *dst);
struct fc_operand {
    const void *data;
    int64_t rs, cs;      /* element strides along r and along k (may be negative or zero) */
    fc_pack_fn pack;     /* NULL: the strided packer for the GEMM's dtype */
    const void *ctx;     /* for custom packers */
    /* Optional, B only, with `pack` set: element (j, p) is data[j + koff[p]] (rows contiguous
     * along r, placed by per-k offsets). The GEMM may then read whole micro-panels in place
     * instead of calling `pack`, when the ISA has a kernel for it and C's columns are dense. */
    const int64_t *koff;
};
/* Packer contract: write ceil(rlen/width) micro-panels to dst; panel q holds, for each p in
 * [p0, p0+plen), `width` consecutive values of rows r0+q*width ... , zero beyond rlen. */

typedef enum { FC_ACT_NONE = 0, FC_ACT_RELU = 1, FC_ACT_RELU6 = 2, FC_ACT_SILU = 3, FC_ACT_SIGMOID = 4 } fc_act;
typedef struct {
    const void *bias;    /* NULL, or one value per row of C (bias_per_col = 0) / per column (1) */
    int bias_per_col;
    fc_act act;
    const void *scale;   /* NULL, or one factor per row / column, as bias */
} fc_epilogue;

/* accumulate: 0 -> C = AB (+epilogue); 1 -> C += AB (+epilogue applied to the sum).
 * The epilogue: C = act(C * scale + bias). */
int fc_sgemm(int64_t m, int64_t n, int64_t k, const fc_operand *a, const fc_operand *b,
             float *c, int64_t ldc, int accumulate, const fc_epilogue *ep, int nthreads);
int fc_dgemm(int64_t m, int64_t n, int64_t k, const fc_operand *a, const fc_operand *b,
             double *c, int64_t ldc, int accumulate, const fc_epilogue *ep, int nthreads);

/* The strided packers (usable from custom packers too). */
void fc_pack_strided_f32(const fc_operand *op, int64_t r0, int64_t rlen, int64_t p0, int64_t plen,
                         int64_t width, void *dst);
void fc_pack_strided_f64(const fc_operand *op, int64_t r0, int64_t rlen, int64_t p0, int64_t plen,
                         int64_t width, void *dst);

/* A operand already in the GEMM's micro-panels: element (r, p) at
 * data[(r / MR) * k * MR + p * MR + r % MR], MR the selected ISA's (fc_gemm_tile), k the GEMM's,
 * rows past m zero up to a multiple of MR; ctx points at k (int64_t). The GEMM reads such an A
 * in place; called as a packer, it copies the panels. */
void fc_pack_panels_f32(const fc_operand *op, int64_t r0, int64_t rlen, int64_t p0, int64_t plen,
                        int64_t width, void *dst);
void fc_pack_panels_f64(const fc_operand *op, int64_t r0, int64_t rlen, int64_t p0, int64_t plen,
                        int64_t width, void *dst);

/* Micro-kernel geometry of the selected ISA (for packers that want to know). */
void fc_gemm_tile(int dtype_bytes, int *mr, int *nr);

/* ---- conv2d -------------------------------------------------------------------------- *
 * x: n x c_in x h x w, weight: c_out x (c_in/groups) x kh x kw (OIHW), y: n x c_out x oh x ow,
 * all C-contiguous. pad_top/pad_left place the window; the bottom/right padding is whatever
 * oh/ow imply (so asymmetric padding needs no extra fields). */
typedef struct {
    int64_t n, c_in, h, w, c_out, kh, kw, oh, ow;
    int64_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, groups;
} fc_conv2d_params;

typedef enum { FC_CONV_IM2COL = 0, FC_CONV_DIRECT = 1, FC_CONV_WINOGRAD = 2 } fc_conv_algo;

/* y = act(conv2d(x, weight) * scale + bias), per output channel: scale and bias may be NULL,
 * act an fc_act. With scale and bias a BatchNorm's eval-mode affine, this is Conv2d ->
 * BatchNorm2d -> ReLU in one pass (in the GEMM's epilogue, or one sweep after a direct kernel). */
int fc_conv2d_forward_f32(const fc_conv2d_params *p, fc_conv_algo algo, const float *x, const float *w,
                          const float *scale, const float *bias, int act, float *y, int nthreads);
int fc_conv2d_forward_f64(const fc_conv2d_params *p, fc_conv_algo algo, const double *x, const double *w,
                          const double *scale, const double *bias, int act, double *y, int nthreads);
/* dx = gradient of the input (overwritten), from dy and the weight. */
int fc_conv2d_backward_data_f32(const fc_conv2d_params *p, fc_conv_algo algo, const float *dy,
                                const float *w, float *dx, int nthreads);
int fc_conv2d_backward_data_f64(const fc_conv2d_params *p, fc_conv_algo algo, const double *dy,
                                const double *w, double *dx, int nthreads);
/* dw and/or db (either may be NULL) = gradients of weight and bias, overwritten. */
int fc_conv2d_backward_weight_f32(const fc_conv2d_params *p, fc_conv_algo algo, const float *dy,
                                  const float *x, float *dw, float *db, int nthreads);
int fc_conv2d_backward_weight_f64(const fc_conv2d_params *p, fc_conv_algo algo, const double *dy,
                                  const double *x, double *dw, double *db, int nthreads);

/* ---- optimizers ------------------------------------------------------------------------ *
 * One Adam/AdamW step (torch.optim's rules) over `size` contiguous elements, in place: p, m
 * (exp_avg), v (exp_avg_sq), vmax (max_exp_avg_sq, NULL without amsgrad); grad is read only.
 * step is the step number after this one (>= 1). */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int decoupled;   /* AdamW: p *= 1 - lr * weight_decay, instead of adding weight_decay * p to g */
    int maximize;
    int64_t step;
} fc_adam_params;
int fc_adam_step_f32(float *p, const float *grad, float *m, float *v, float *vmax, int64_t size,
                     const fc_adam_params *h, int nthreads);
int fc_adam_step_f64(double *p, const double *grad, double *m, double *v, double *vmax, int64_t size,
                     const fc_adam_params *h, int nthreads);

#ifdef __cplusplus
}
#endif
#include "fastconv_pool.h"
#include "fastconv_norm.h"
#endif
