/* Winograd transforms for the avx512 path (flags from the file name, see setup.py). */
#include "conv_internal.h"

#define T float
#define FN(x) fc_s##x##_avx512
#include "conv_winograd_tx.inc"
#undef T
#undef FN

#define T double
#define FN(x) fc_d##x##_avx512
#include "conv_winograd_tx.inc"
