/* Internal: micro-kernel signatures and the per-ISA GEMM configuration table. */
#ifndef FC_GEMM_KERNELS_H
#define FC_GEMM_KERNELS_H
#include "fastconv.h"

/* The epilogue a micro-kernel applies in registers before storing (NULL: none), per row of the
 * tile: c = min(hi, max(lo, c * scale[i] + bias[i])), scale/bias NULL for 1/0 and offset to the
 * tile's first row; lo/hi are -inf/inf, 0/inf (ReLU) or 0/6 (ReLU6). NaN stays NaN. */
typedef struct { const void *scale, *bias; double lo, hi; } fc_ukr_ep;

/* c[MR x NR] (row-major, leading dim ldc) = ep((accumulate ? c : 0) + a_panel * b_panel), where
 * a_panel holds k columns of MR values and b_panel k rows of NR values (packed). Full tiles only. */
typedef void (*fc_sgemm_ukr_fn)(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                                int accumulate, const fc_ukr_ep *ep);
typedef void (*fc_dgemm_ukr_fn)(int64_t k, const double *a, const double *b, double *c, int64_t ldc,
                                int accumulate, const fc_ukr_ep *ep);

/* Optional: c[MR x nr] = a_panel * b_panel for an edge tile (nr < NR valid columns; panels as
 * above), computing only the vectors that hold them; NULL: the full kernel runs. */
typedef void (*fc_sgemm_edge_fn)(int64_t k, const float *a, const float *b, float *c, int64_t ldc, int64_t nr);
typedef void (*fc_dgemm_edge_fn)(int64_t k, const double *a, const double *b, double *c, int64_t ldc, int64_t nr);

/* Optional: the full tile with B's rows read in place, row p at b + koff[p] (an operand with
 * koff, see fastconv.h); NULL: such operands are packed. */
typedef void (*fc_sgemm_ind_fn)(int64_t k, const float *a, const float *b, const int64_t *koff, float *c,
                                int64_t ldc, int accumulate, const fc_ukr_ep *ep);
typedef void (*fc_dgemm_ind_fn)(int64_t k, const double *a, const double *b, const int64_t *koff, double *c,
                                int64_t ldc, int accumulate, const fc_ukr_ep *ep);

/* Block sizes: MC x KC block of A stays in L2, KC x NR micro-panel of B in L1, KC x NC in L3. */
typedef struct { int mr, nr, mc, kc, nc; fc_sgemm_ukr_fn ukr; fc_sgemm_edge_fn edge; fc_sgemm_ind_fn ind; } fc_sgemm_config;
typedef struct { int mr, nr, mc, kc, nc; fc_dgemm_ukr_fn ukr; fc_dgemm_edge_fn edge; fc_dgemm_ind_fn ind; } fc_dgemm_config;

#define FC_MAX_MR 16
#define FC_MAX_NR 48

void fc_sgemm_ukr_avx512_8x48(int64_t, const float *, const float *, float *, int64_t, int, const fc_ukr_ep *);
void fc_sgemm_edge_avx512_8x48(int64_t, const float *, const float *, float *, int64_t, int64_t);
void fc_sgemm_ukr_ind_avx512_8x48(int64_t, const float *, const float *, const int64_t *, float *, int64_t, int,
                                  const fc_ukr_ep *);
void fc_dgemm_ukr_avx512_14x16(int64_t, const double *, const double *, double *, int64_t, int, const fc_ukr_ep *);
void fc_sgemm_ukr_avx2_6x16(int64_t, const float *, const float *, float *, int64_t, int, const fc_ukr_ep *);
void fc_sgemm_ukr_ind_avx2_6x16(int64_t, const float *, const float *, const int64_t *, float *, int64_t, int,
                                const fc_ukr_ep *);
void fc_dgemm_ukr_avx2_6x8(int64_t, const double *, const double *, double *, int64_t, int, const fc_ukr_ep *);
void fc_sgemm_ukr_ref_4x16(int64_t, const float *, const float *, float *, int64_t, int, const fc_ukr_ep *);
void fc_dgemm_ukr_ref_4x8(int64_t, const double *, const double *, double *, int64_t, int, const fc_ukr_ep *);

/* Skinny unpacked GEMM, one per ISA (gemm_dot.inc): C[i, j] (=|+=) A row i . B row j for
 * columns [j0, j1), rows of A (stride lda) and B (stride ldb) contiguous along k, C(i, j) at
 * c[i * ldc + j * cs]. */
#define FC_DECLARE_DOT(isa)                                                                             \
    void fc_sgemm_dot_##isa(int64_t, int64_t, int64_t, int64_t, const float *, int64_t, const float *, \
                            int64_t, float *, int64_t, int64_t, int);                                  \
    void fc_dgemm_dot_##isa(int64_t, int64_t, int64_t, int64_t, const double *, int64_t, const double *, \
                            int64_t, double *, int64_t, int64_t, int);
FC_DECLARE_DOT(avx512)
FC_DECLARE_DOT(avx2)
FC_DECLARE_DOT(ref)

/* fc_sgemm/fc_dgemm with C's columns at arbitrary offsets (see gemm_driver.inc). */
int fc_sgemm_map(int64_t m, int64_t n, int64_t k, const fc_operand *a, const fc_operand *b, float *c,
                 int64_t ldc, const int64_t *ccol, int accumulate, const fc_epilogue *ep, int nthreads);
int fc_dgemm_map(int64_t m, int64_t n, int64_t k, const fc_operand *a, const fc_operand *b, double *c,
                 int64_t ldc, const int64_t *ccol, int accumulate, const fc_epilogue *ep, int nthreads);

const fc_sgemm_config *fc_sgemm_selected(void);
const fc_dgemm_config *fc_dgemm_selected(void);

/* FMA throughput loops, one per ISA: run `iters` rounds, return the flops done. */
double fc_peak_loop_avx512(int64_t iters);
double fc_peak_loop_avx2(int64_t iters);
double fc_peak_loop_ref(int64_t iters);
#endif
