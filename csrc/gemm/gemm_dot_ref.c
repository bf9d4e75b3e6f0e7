/* Skinny unpacked GEMM (gemm_dot.inc) for the ref path (flags from the file name, see setup.py). */
#include <string.h>
#include "gemm_kernels.h"

#define DOT_MB 2 /* rows of A per tile: 16 SSE registers at most: 8 sums + 4 B vectors */

#define T float
#define FN(x) fc_s##x##_ref
#define VLEN 4
#include "gemm_dot.inc"
#undef T
#undef FN
#undef VLEN

#define T double
#define FN(x) fc_d##x##_ref
#define VLEN 2
#include "gemm_dot.inc"
