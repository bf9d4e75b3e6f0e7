/* The GEMM core for float32 and float64: one driver template, two instantiations. */
#include "gemm_kernels.h"
#include "../norm/norm_internal.h" /* the activation runs of the epilogue */
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define FN(x) fc_s##x
#define CFG_T fc_sgemm_config
#define UKR_T fc_sgemm_ukr_fn
#define SELECT fc_sgemm_selected
#define PACK_STRIDED fc_pack_strided_f32
#include "gemm_driver.inc"
#undef T
#undef FN
#undef CFG_T
#undef UKR_T
#undef SELECT
#undef PACK_STRIDED

#define T double
#define FN(x) fc_d##x
#define CFG_T fc_dgemm_config
#define UKR_T fc_dgemm_ukr_fn
#define SELECT fc_dgemm_selected
#define PACK_STRIDED fc_pack_strided_f64
#include "gemm_driver.inc"
