/* Direct convolution kernels for the avx2 path (flags from the file name, see setup.py). */
#include "conv_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define FN(x) fc_s##x##_avx2
#define VLEN 8
#define COB 4
#include "conv_direct.inc"
#undef T
#undef FN
#undef VLEN
#undef COB

#define T double
#define FN(x) fc_d##x##_avx2
#define VLEN 4
#define COB 4
#include "conv_direct.inc"
