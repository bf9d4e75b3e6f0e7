/* Depthwise convolution kernels for the ref path (flags from the file name, see setup.py). */
#include "../conv/conv_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define FN(x) fc_s##x##_ref
#define VLEN 4
#include "dwconv.inc"
#undef T
#undef FN
#undef VLEN

#define T double
#define FN(x) fc_d##x##_ref
#define VLEN 2
#include "dwconv.inc"
