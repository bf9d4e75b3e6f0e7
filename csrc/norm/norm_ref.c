/* Elementwise activation runs for the ref path (flags from the file name, see setup.py). */
#include "norm_internal.h"

#define T float
#define FN(x) fc_s##x##_ref
#define EXP fc_expf
#define VLEN 4
#include "act.inc"
#undef T
#undef FN
#undef EXP
#undef VLEN

#define T double
#define FN(x) fc_d##x##_ref
#define EXP exp
#include "act.inc"
