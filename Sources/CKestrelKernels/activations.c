// Activations built on exp, through vmath.h so that they vectorise (libm's expf and tanhf are
// called one value at a time).
#include "CKestrelKernels.h"

#include "clones.h"
#include "vmath.h"

// Each function has an in-place loop (one pointer) and a restrict one: with two pointers that
// may be equal the compiler guards the vector loop with an overlap test, and in-place calls
// (the common case: an activation applied to a layer's own output) took the scalar loop.
#define ELEMENTWISE(name, f)                                                              \
    KESTREL_INLINE void name##_apart(const float *restrict x, float *restrict y, size_t count) { \
        for (size_t i = 0; i < count; i++) y[i] = f(x[i]);                                  \
    }                                                                                     \
    KESTREL_CLONES void name(const float *x, float *y, size_t count) {                    \
        if (x == y) {                                                                     \
            for (size_t i = 0; i < count; i++) y[i] = f(y[i]);                            \
        } else {                                                                          \
            name##_apart(x, y, count);                                                    \
        }                                                                                 \
    }

KESTREL_INLINE float swish(float x) { return x * kestrel_vsigmoidf(x); }

ELEMENTWISE(kestrel_sigmoid, kestrel_vsigmoidf)
ELEMENTWISE(kestrel_tanh, kestrel_vtanhf)
ELEMENTWISE(kestrel_exp, kestrel_vexpf)
ELEMENTWISE(kestrel_swish, swish)

// Eight running maxima and sums, combined in a fixed order: the reductions vectorise, and the
// AVX2 clone and the baseline one add in the same order (identical results). The exponentials
// are a loop of their own: inside the lanes' loop the compiler left them scalar. Rows may be
// softmaxed in place (y == x).
#define SOFTMAX_LANES 8

// e^(x - m), with x and y apart (see ELEMENTWISE).
KESTREL_INLINE void shifted_exp(const float *restrict x, float *restrict y, size_t count, float m) {
    for (size_t j = 0; j < count; j++) y[j] = kestrel_vexpf(x[j] - m);
}

KESTREL_CLONES
void kestrel_softmax_rows(const float *x, float *y, size_t rows, size_t columns) {
    const size_t whole = columns / SOFTMAX_LANES * SOFTMAX_LANES;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * columns;
        float *yr = y + r * columns;
        float lanes[SOFTMAX_LANES];
        for (int l = 0; l < SOFTMAX_LANES; l++) lanes[l] = -__builtin_inff();
        for (size_t j = 0; j < whole; j += SOFTMAX_LANES)
            for (int l = 0; l < SOFTMAX_LANES; l++) lanes[l] = xr[j + l] > lanes[l] ? xr[j + l] : lanes[l];
        float m = -__builtin_inff();
        for (int l = 0; l < SOFTMAX_LANES; l++) m = lanes[l] > m ? lanes[l] : m;
        for (size_t j = whole; j < columns; j++) m = xr[j] > m ? xr[j] : m;
        if (xr == yr) {
            for (size_t j = 0; j < columns; j++) yr[j] = kestrel_vexpf(yr[j] - m);
        } else {
            shifted_exp(xr, yr, columns, m);
        }
        for (int l = 0; l < SOFTMAX_LANES; l++) lanes[l] = 0.0f;
        for (size_t j = 0; j < whole; j += SOFTMAX_LANES)
            for (int l = 0; l < SOFTMAX_LANES; l++) lanes[l] += yr[j + l];
        float s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        for (size_t j = whole; j < columns; j++) s += yr[j];
        const float inverse = 1.0f / s;
        for (size_t j = 0; j < columns; j++) yr[j] *= inverse;
    }
}
