#ifndef CKESTREL_SUPPORT_H
#define CKESTREL_SUPPORT_H

/// CPU features that decide which OpenBLAS kernel family can run here.
typedef struct {
    int sse3, avx, avx2, fma, avx512f, avx512bw, avx512dq, avx512vl;
} kestrel_cpu_features;

/// Reads the CPU's features with `cpuid` (and `xgetbv`, so that features the OS
/// does not save registers for are reported absent). All zero off x86-64.
kestrel_cpu_features kestrel_cpu_features_get(void);

/// Switches OpenBLAS's dynamic-architecture dispatch to the named core
/// (as `OPENBLAS_CORETYPE` would at start-up). Returns 0 on success, -1 when the
/// linked OpenBLAS does not export its dynamic-dispatch entry points.
/// Must not run while another thread is inside OpenBLAS.
int kestrel_openblas_select_core(const char *name);

#endif
