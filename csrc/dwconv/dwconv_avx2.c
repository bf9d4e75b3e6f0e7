/* Depthwise convolution kernels for the avx2 path (flags from the file name, see setup.py). */
#include "../conv/conv_internal.h"
#include "../norm/norm_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#include <stdint.h>

#define T float
#define IT int32_t
#define FN(x) fc_s##x##_avx2
#define VLEN 8
#define AFFINE_RUN fc_saffine_run
#include "dwconv.inc"
#undef T
#undef IT
#undef FN
#undef VLEN
#undef AFFINE_RUN

#define T double
#define IT int64_t
#define FN(x) fc_d##x##_avx2
#define VLEN 4
#define AFFINE_RUN fc_daffine_run
#include "dwconv.inc"
