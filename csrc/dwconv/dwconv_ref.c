/* Depthwise convolution kernels for the ref path (flags from the file name, see setup.py). */
#include "../conv/conv_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#include <stdint.h>

#define T float
#define IT int32_t
#define FN(x) fc_s##x##_ref
#define VLEN 4
#include "dwconv.inc"
#undef T
#undef IT
#undef FN
#undef VLEN

#define T double
#define IT int64_t
#define FN(x) fc_d##x##_ref
#define VLEN 2
#include "dwconv.inc"
