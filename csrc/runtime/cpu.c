/* CPU feature detection and ISA selection. The ISA is chosen once (at import, by the binding)
 * and read by every op through fc_sgemm_selected()/fc_dgemm_selected(). */
#include <stdlib.h>
#include "fastconv.h"
#include "../gemm/gemm_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int detect(fc_isa isa)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx)) return 0;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* OS saves xmm/ymm state */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    if (isa == FC_ISA_AVX2) return avx2;
    /* AVX-512 F, DQ, BW, VL, and the OS saving opmask and zmm state. */
    const int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    return avx2 && f && dq && bw && vl && (xcr0 & 0xE6) == 0xE6;
}

/* AMD's AVX-512 cores (Zen 4) run 512-bit FMAs at half rate on 256-bit units, so a micro-tile
 * needs half the bytes per cycle that Intel's full-width units do and the B micro-panel can
 * stream from L2: a deeper k block halves the passes over C. Measured on a 2-core Zen 4 VM,
 * single-threaded 2048^3 sgemm: kc 256 87, 512 96, 1024 99 GFLOP/s (medians of 6, peak about
 * 110); 512 and 1024 square are within noise. Intel Xeon (full-width FMA, 48 KiB L1d) was tuned at
 * 256, where the panel stays in L1. */
static int half_rate_avx512(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
    return b == 0x68747541u; /* "Auth"enticAMD */
}
#else
static int detect(fc_isa isa) { (void)isa; return 0; }
static int half_rate_avx512(void) { return 0; }
#endif

static const fc_sgemm_config sgemm_configs[FC_ISA_COUNT] = {
    [FC_ISA_GENERIC] = {4, 16, 128, 256, 2048, fc_sgemm_ukr_ref_4x16},
    [FC_ISA_AVX2] = {6, 16, 144, 256, 2048, fc_sgemm_ukr_avx2_6x16, NULL, fc_sgemm_ukr_ind_avx2_6x16},
    [FC_ISA_AVX512] = {8, 48, 256, 256, 2064, fc_sgemm_ukr_avx512_8x48, fc_sgemm_edge_avx512_8x48,
                       fc_sgemm_ukr_ind_avx512_8x48},
};
static const fc_dgemm_config dgemm_configs[FC_ISA_COUNT] = {
    [FC_ISA_GENERIC] = {4, 8, 128, 256, 1024, fc_dgemm_ukr_ref_4x8},
    [FC_ISA_AVX2] = {6, 8, 144, 256, 1024, fc_dgemm_ukr_avx2_6x8},
    [FC_ISA_AVX512] = {14, 16, 280, 256, 1024, fc_dgemm_ukr_avx512_14x16},
};
static fc_sgemm_config sgemm_active;
static fc_dgemm_config dgemm_active;
static fc_isa active_isa = FC_ISA_COUNT; /* not chosen yet */

/* Block sizes can be overridden for tuning experiments: FASTCONV_GEMM_BLOCKS="mc,kc,nc". */
static void apply_block_override(int *mc, int *kc, int *nc, int mr, int nr)
{
    const char *s = getenv("FASTCONV_GEMM_BLOCKS");
    if (!s) return;
    char *end;
    long v[3];
    for (int i = 0; i < 3; i++) {
        v[i] = strtol(s, &end, 10);
        if (end == s || v[i] <= 0 || v[i] > (1 << 16)) return;
        s = end + (*end == ',');
    }
    *mc = (int)((v[0] + mr - 1) / mr * mr);
    *kc = (int)v[1];
    *nc = (int)((v[2] + nr - 1) / nr * nr);
}

const char *fc_isa_name(fc_isa isa)
{
    static const char *names[FC_ISA_COUNT] = {"generic", "avx2", "avx512"};
    return (unsigned)isa < FC_ISA_COUNT ? names[isa] : "unknown";
}

int fc_isa_supported(fc_isa isa)
{
    if (isa == FC_ISA_GENERIC) return 1;
    if ((unsigned)isa >= FC_ISA_COUNT) return 0;
    return detect(isa);
}

fc_isa fc_isa_best(void)
{
    return fc_isa_supported(FC_ISA_AVX512) ? FC_ISA_AVX512
           : fc_isa_supported(FC_ISA_AVX2) ? FC_ISA_AVX2
                                            : FC_ISA_GENERIC;
}

int fc_set_isa(fc_isa isa)
{
    if (!fc_isa_supported(isa)) return FC_EINVAL;
    sgemm_active = sgemm_configs[isa];
    dgemm_active = dgemm_configs[isa];
    if (isa == FC_ISA_AVX512 && half_rate_avx512()) sgemm_active.kc = dgemm_active.kc = 512;
    apply_block_override(&sgemm_active.mc, &sgemm_active.kc, &sgemm_active.nc, sgemm_active.mr,
                         sgemm_active.nr);
    apply_block_override(&dgemm_active.mc, &dgemm_active.kc, &dgemm_active.nc, dgemm_active.mr,
                         dgemm_active.nr);
    active_isa = isa;
    return FC_OK;
}

static void ensure_selected(void)
{
    if (active_isa == FC_ISA_COUNT) fc_set_isa(fc_isa_best());
}

fc_isa fc_get_isa(void)
{
    ensure_selected();
    return active_isa;
}

const fc_sgemm_config *fc_sgemm_selected(void)
{
    ensure_selected();
    return &sgemm_active;
}

const fc_dgemm_config *fc_dgemm_selected(void)
{
    ensure_selected();
    return &dgemm_active;
}

void fc_gemm_tile(int dtype_bytes, int *mr, int *nr)
{
    if (dtype_bytes == 4) {
        *mr = fc_sgemm_selected()->mr;
        *nr = fc_sgemm_selected()->nr;
    } else {
        *mr = fc_dgemm_selected()->mr;
        *nr = fc_dgemm_selected()->nr;
    }
}
