/* Optimizer steps in one pass over the parameter and its state (fastconv.h: fc_adam_step_*):
 * NumPy needs about ten passes for an Adam step, each a trip through memory for the largest
 * layers; this is one, threaded, and vectorised by the compiler (memory-bound: no ISA variants). */
#include <math.h>
#include "fastconv.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define ADAM_GRAIN 32768 /* elements per thread at least: a fork/join costs about that much streaming */

#define DEFINE_ADAM(T, sfx)                                                                              \
    int fc_adam_step_##sfx(T *p, const T *grad, T *m, T *v, T *vmax, int64_t size, const fc_adam_params *h, \
                           int nthreads)                                                                 \
    {                                                                                                    \
        if (size < 0 || h->step < 1) return FC_EINVAL;                                                   \
        const T beta1 = (T)h->beta1, beta2 = (T)h->beta2, eps = (T)h->eps, wd = (T)h->weight_decay;      \
        const T step_size = (T)(h->lr / (1 - pow(h->beta1, (double)h->step)));                           \
        const T bc2_sqrt = (T)sqrt(1 - pow(h->beta2, (double)h->step));                                  \
        const T shrink = (T)(1 - h->lr * h->weight_decay), sign = h->maximize ? -1 : 1;                 \
        const int coupled = wd != 0 && !h->decoupled, decoupled = wd != 0 && h->decoupled;               \
        int nt = nthreads < 1 ? 1 : nthreads;                                                            \
        if (size / ADAM_GRAIN + 1 < nt) nt = (int)(size / ADAM_GRAIN + 1);                               \
        _Pragma("omp parallel for schedule(static) num_threads(nt)")                                     \
        for (int64_t i = 0; i < size; i++) {                                                             \
            T pi = p[i], g = sign * grad[i];                                                             \
            if (decoupled) pi *= shrink;                                                                 \
            if (coupled) g += wd * pi;                                                                   \
            const T mi = m[i] * beta1 + (1 - beta1) * g;                                                 \
            T vi = v[i] * beta2 + (1 - beta2) * (g * g);                                                 \
            m[i] = mi;                                                                                   \
            v[i] = vi;                                                                                   \
            if (vmax) {                                                                                  \
                vi = vmax[i] > vi ? vmax[i] : vi;                                                        \
                vmax[i] = vi;                                                                            \
            }                                                                                            \
            p[i] = pi - step_size * (mi / (sqrt##sfx(vi) / bc2_sqrt + eps));                             \
        }                                                                                                \
        return FC_OK;                                                                                    \
    }

#define sqrtf32 sqrtf
#define sqrtf64 sqrt
DEFINE_ADAM(float, f32)
DEFINE_ADAM(double, f64)
