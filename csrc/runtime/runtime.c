/* Threads, memory and the peak-FLOPS probe. */
#include <stdlib.h>
#include <time.h>
#include "fastconv.h"
#include "../gemm/gemm_kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int fc_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fc_omp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void fc_omp_set_num_threads(int n)
{
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

const char *fc_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Each thread runs the FMA loop of the selected ISA; the slowest thread's time counts. */
double fc_peak_gflops(int nthreads, double seconds)
{
    double (*loop)(int64_t);
    switch (fc_get_isa()) {
    case FC_ISA_AVX512: loop = fc_peak_loop_avx512; break;
    case FC_ISA_AVX2: loop = fc_peak_loop_avx2; break;
    default: loop = fc_peak_loop_ref; break;
    }
    if (nthreads < 1) nthreads = 1;
    /* Calibrate the iteration count on one thread, then time all threads together. */
    int64_t iters = 1 << 16;
    for (;;) {
        double t = now_seconds();
        loop(iters);
        t = now_seconds() - t;
        if (t > 0.02 || iters > ((int64_t)1 << 40)) {
            iters = (int64_t)((double)iters * seconds / (t > 1e-9 ? t : 1e-9)) + 1;
            break;
        }
        iters *= 4;
    }
    double flops = 0.0, t0 = now_seconds();
#ifdef _OPENMP
#pragma omp parallel num_threads(nthreads) reduction(+ : flops)
#endif
    flops += loop(iters);
    return flops / (now_seconds() - t0) / 1e9;
}
