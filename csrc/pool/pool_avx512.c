/* Pooling kernels for the avx512 path (flags from the file name, see setup.py). */
#include "pool_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define IT int32_t
#define FN(x) fc_s##x##_avx512
#define VLEN 16
#include "pool_kernels.inc"
#undef T
#undef IT
#undef FN
#undef VLEN

#define T double
#define IT int64_t
#define FN(x) fc_d##x##_avx512
#define VLEN 8
#include "pool_kernels.inc"
