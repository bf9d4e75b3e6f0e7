/* The GEMM core for float32 and float64: one driver template, two instantiations. */
#include <math.h>
#include <string.h>
#include "gemm_kernels.h"
#include "../norm/norm_internal.h" /* the activation runs of the epilogue */
#ifdef _OPENMP
#include <omp.h>
#endif

/* The selected ISA's skinny kernel, DOT(isa) naming it per element type. */
#define SELECT_DOT() (fc_get_isa() == FC_ISA_AVX512 ? DOT(avx512) : fc_get_isa() == FC_ISA_AVX2 ? DOT(avx2) : DOT(ref))

#define T float
#define FN(x) fc_s##x
#define DOT(isa) fc_sgemm_dot_##isa
#define CFG_T fc_sgemm_config
#define UKR_T fc_sgemm_ukr_fn
#define SELECT fc_sgemm_selected
#define PACK_STRIDED fc_pack_strided_f32
#define PACK_PANELS fc_pack_panels_f32
#define IT int32_t
#define TV 4
#include "gemm_driver.inc"
#undef T
#undef FN
#undef DOT
#undef CFG_T
#undef UKR_T
#undef SELECT
#undef PACK_STRIDED
#undef PACK_PANELS
#undef IT
#undef TV

#define T double
#define FN(x) fc_d##x
#define DOT(isa) fc_dgemm_dot_##isa
#define CFG_T fc_dgemm_config
#define UKR_T fc_dgemm_ukr_fn
#define SELECT fc_dgemm_selected
#define PACK_STRIDED fc_pack_strided_f64
#define PACK_PANELS fc_pack_panels_f64
#define IT int64_t
#define TV 2
#include "gemm_driver.inc"
