// Shared by the kernel files (not part of the module's public header).
#ifndef CKESTREL_CLONES_H
#define CKESTREL_CLONES_H
// An AVX2 variant of a loop beside the baseline one, chosen when the program loads: Debian's
// compiler targets plain x86-64, whose 128-bit vectors halve these loops' throughput.
#if defined(__x86_64__) && defined(__clang__)
#define KESTREL_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KESTREL_CLONES
#endif
// For helpers of cloned loops: inlined, they are compiled into each clone. A helper the
// compiler keeps out of line is compiled once, for plain x86-64 (128-bit vectors, no AVX2).
#define KESTREL_INLINE static inline __attribute__((always_inline))
#endif
