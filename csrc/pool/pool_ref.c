/* Pooling kernels for the ref path (flags from the file name, see setup.py). */
#include "pool_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define IT int32_t
#define FN(x) fc_s##x##_ref
#define VLEN 4
#include "pool_kernels.inc"
#undef T
#undef IT
#undef FN
#undef VLEN

#define T double
#define IT int64_t
#define FN(x) fc_d##x##_ref
#define VLEN 2
#include "pool_kernels.inc"
