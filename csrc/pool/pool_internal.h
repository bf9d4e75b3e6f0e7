/* Internal: the per-ISA pooling kernels (pool_<isa>.c, all from pool_kernels.inc), chosen by
 * pool.c on fc_get_isa(). Each returns FC_OK or FC_ENOMEM; arguments arrive checked. */
#ifndef FC_POOL_INTERNAL_H
#define FC_POOL_INTERNAL_H
#include "fastconv.h"

#define FC_DECLARE_POOL_T(isa, pre, T)                                                                  \
    int fc_##pre##max_pool2d_forward_##isa(const fc_pool2d_params *, const T *, T *, int64_t *, int);   \
    int fc_##pre##max_pool2d_backward_##isa(const fc_pool2d_params *, const T *, const int64_t *, T *, int); \
    int fc_##pre##avg_pool2d_forward_##isa(const fc_pool2d_params *, const T *, T *, int);              \
    int fc_##pre##avg_pool2d_backward_##isa(const fc_pool2d_params *, const T *, T *, int);             \
    int fc_##pre##adaptive_avg_pool2d_forward_##isa(const fc_pool2d_params *, const T *, T *, int);     \
    int fc_##pre##adaptive_avg_pool2d_backward_##isa(const fc_pool2d_params *, const T *, T *, int);    \
    int fc_##pre##adaptive_max_pool2d_forward_##isa(const fc_pool2d_params *, const T *, T *, int64_t *, int); \
    int fc_##pre##global_avg_pool2d_forward_##isa(const fc_pool2d_params *, const T *, T *, int);       \
    int fc_##pre##global_avg_pool2d_backward_##isa(const fc_pool2d_params *, const T *, T *, int);
#define FC_DECLARE_POOL(isa) FC_DECLARE_POOL_T(isa, s, float) FC_DECLARE_POOL_T(isa, d, double)
FC_DECLARE_POOL(avx512)
FC_DECLARE_POOL(avx2)
FC_DECLARE_POOL(ref)
#endif
