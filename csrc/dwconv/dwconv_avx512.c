/* Depthwise convolution kernels for the avx512 path (flags from the file name, see setup.py). */
#include "../conv/conv_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define FN(x) fc_s##x##_avx512
#define VLEN 16
#include "dwconv.inc"
#undef T
#undef FN
#undef VLEN

#define T double
#define FN(x) fc_d##x##_avx512
#define VLEN 8
#include "dwconv.inc"
