/* Skinny unpacked GEMM (gemm_dot.inc) for the avx2 path (flags from the file name, see setup.py). */
#include <string.h>
#include "gemm_kernels.h"

#define DOT_MB 3 /* rows of A per tile: 16 registers: 12 sums + 4 B vectors, A read by the FMAs */

#define T float
#define FN(x) fc_s##x##_avx2
#define VLEN 8
#include "gemm_dot.inc"
#undef T
#undef FN
#undef VLEN

#define T double
#define FN(x) fc_d##x##_avx2
#define VLEN 4
#include "gemm_dot.inc"
