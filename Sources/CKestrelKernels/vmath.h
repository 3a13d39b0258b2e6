// exp, sigmoid and tanh written so that loops calling them vectorise (shared by the kernel files,
// not part of the module's public header). libm's expf/tanhf are opaque calls the compiler runs
// one value at a time; tanhf alone was a fifth of an LSTM training step. Only +, *, / and
// selects, so with -ffp-contract=off the AVX2 clone and the baseline one give identical results.
// Accuracy: within 1.3 units in the last place wherever the result is a normal float (measured;
// VectorMathTests holds it to 4e-7 relative);
// results below the smallest normal float are subnormal or 0, as libm's may be.
#ifndef CKESTREL_VMATH_H
#define CKESTREL_VMATH_H
#include <stdint.h>
#include <string.h>

#include "clones.h"

// exp(x) = 2^n · e^r with n = round(x / ln 2) and |r| ≤ ln 2 / 2; e^r by a degree-7 polynomial
// (Taylor coefficients, truncation error below 1e-8 relative on that interval). ln 2 is split in
// a part exact in float and a correction, so that x - n·ln 2 loses nothing for |n| ≤ 150.
KESTREL_INLINE float kestrel_vexpf(float x) {
    // Beyond these, e^x rounds to 0 or overflows (below -87.3 the results are subnormal).
    const float low = -104.0f, high = 88.7228394f;
    const float xc = x < low ? low : (x > high ? high : x);
    // Rounds to nearest by adding and subtracting 1.5 · 2^23 (no roundf call to vectorise).
    const float shifter = 12582912.0f;
    const float n = (xc * 1.44269504088896341f + shifter) - shifter;
    const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // 2^n as two normal factors 2^a · 2^b (n ∈ [-150, 128] does not fit one float's exponent),
    // each built from its exponent bits.
    const int32_t a = (int32_t)n >> 1, b = (int32_t)n - a;
    const int32_t abits = (a + 127) << 23, bbits = (b + 127) << 23;
    float sa, sb;
    memcpy(&sa, &abits, sizeof sa);
    memcpy(&sb, &bbits, sizeof sb);
    const float y = (p * sa) * sb;
    return x < low ? 0.0f : (x > high ? __builtin_inff() : y);
}

// 1 / (1 + e^-x): 0 for x below about -88, 1 above about 17.
KESTREL_INLINE float kestrel_vsigmoidf(float x) { return 1.0f / (1.0f + kestrel_vexpf(-x)); }

// tanh(x): an odd polynomial near 0, where 1 - 2 / (e^2|x| + 1) would cancel, and that form
// beyond 0.625; the sign restored at the end.
KESTREL_INLINE float kestrel_vtanhf(float x) {
    const float a = x < 0 ? -x : x;
    const float z = x * x;
    // Cephes's minimax coefficients for |x| < 0.625 (relative error about 1e-7).
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * x + x;
    const float large = 1.0f - 2.0f / (kestrel_vexpf(2.0f * a) + 1.0f);
    return a < 0.625f ? small : (x < 0 ? -large : large);
}
#endif
