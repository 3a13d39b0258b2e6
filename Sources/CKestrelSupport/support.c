#define _GNU_SOURCE
#include "CKestrelSupport.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

kestrel_cpu_features kestrel_cpu_features_get(void) {
    kestrel_cpu_features f;
    memset(&f, 0, sizeof f);
#if defined(__x86_64__)
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    f.sse3 = (c >> 0) & 1;
    int osxsave = (c >> 27) & 1;
    int avx_hw = (c >> 28) & 1;
    int fma_hw = (c >> 12) & 1;
    unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;
    int zmm_ok = (xcr0 & 0xE6) == 0xE6;
    f.avx = avx_hw && ymm_ok;
    f.fma = fma_hw && ymm_ok;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = ((b >> 5) & 1) && ymm_ok;
        f.avx512f = ((b >> 16) & 1) && zmm_ok;
        f.avx512dq = ((b >> 17) & 1) && zmm_ok;
        f.avx512bw = ((b >> 30) & 1) && zmm_ok;
        f.avx512vl = ((b >> 31) & 1) && zmm_ok;
    }
#endif
    return f;
}

int kestrel_openblas_select_core(const char *name) {
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (quit == NULL || init == NULL) return -1;
    // OpenBLAS reads the variable in gotoblas_dynamic_init; keeping it set also
    // hands the choice on to child processes.
    setenv("OPENBLAS_CORETYPE", name, 1);
    quit();
    init();
    return 0;
}
