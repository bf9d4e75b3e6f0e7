/* Elementwise activation runs for the avx2 path (flags from the file name, see setup.py). */
#include "norm_internal.h"

#define T float
#define FN(x) fc_s##x##_avx2
#define EXP fc_expf
#define VLEN 8
#include "act.inc"
#undef T
#undef FN
#undef EXP
#undef VLEN

#define T double
#define FN(x) fc_d##x##_avx2
#define EXP exp
#include "act.inc"
