/* Skinny unpacked GEMM (gemm_dot.inc) for the avx512 path (flags from the file name, see setup.py). */
#include <string.h>
#include "gemm_kernels.h"

#define DOT_MB 4 /* rows of A per tile: 32 registers: 16 sums + 4 B vectors */

#define T float
#define FN(x) fc_s##x##_avx512
#define VLEN 16
#include "gemm_dot.inc"
#undef T
#undef FN
#undef VLEN

#define T double
#define FN(x) fc_d##x##_avx512
#define VLEN 8
#include "gemm_dot.inc"
