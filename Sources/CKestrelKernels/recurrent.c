// The LSTM's per-step gate loops for Keras's default activations (sigmoid gates, tanh cell),
// fused into one pass per row and split over Kestrel's threads by rows: in Swift they were four
// activation calls per row on one thread, a quarter of the layer's time. The activations are
// vmath.h's, so that the row loop vectorises.
#include "CKestrelKernels.h"
#include "clones.h"
#include "vmath.h"

typedef struct {
    float *z; const float *bias; const float *previous; float *cell; float *squashed; float *hidden;
    const float *dh; float *dc; float *dz; size_t units;
} lstm_job;

// One row. Its blocks are restrict parameters: with offsets from shared pointers the compiler
// guarded the vector loop with overlap tests that sent every row down the scalar one (clang
// takes restrict only from parameters; inlined, it keeps it as alias scopes).
KESTREL_INLINE void forward_row(float *restrict zi, float *restrict zf, float *restrict zc, float *restrict zo,
                                const float *restrict previous, float *restrict cell, float *restrict squashed,
                                float *restrict hidden, size_t u) {
    for (size_t k = 0; k < u; k++) {
        const float i = kestrel_vsigmoidf(zi[k]), f = kestrel_vsigmoidf(zf[k]), c = kestrel_vtanhf(zc[k]),
                    o = kestrel_vsigmoidf(zo[k]);
        zi[k] = i;
        zf[k] = f;
        zc[k] = c;
        zo[k] = o;
        const float next = f * previous[k] + i * c;
        cell[k] = next;
        const float s = kestrel_vtanhf(next);
        squashed[k] = s;
        hidden[k] = o * s;
    }
}

KESTREL_CLONES
static void forward_rows(void *context, size_t begin, size_t end) {
    const lstm_job *j = context;
    const size_t u = j->units, g = 4 * u;
    for (size_t r = begin; r < end; r++) {
        float *z = j->z + r * g;
        if (j->bias) for (size_t k = 0; k < g; k++) z[k] += j->bias[k];
        forward_row(z, z + u, z + 2 * u, z + 3 * u, j->previous + r * u, j->cell + r * u, j->squashed + r * u,
                    j->hidden + r * u, u);
    }
}

void kestrel_lstm_forward_gates(float *z, const float *bias, const float *previous_cell, float *cell,
                                float *squashed, float *hidden, size_t rows, size_t units) {
    lstm_job j = {.z = z, .bias = bias, .previous = previous_cell, .cell = cell, .squashed = squashed,
                  .hidden = hidden, .units = units};
    kestrel_parallel_for(forward_rows, &j, rows, units >= 256 ? 8 : 2048 / (units ? units : 1));
}

// One row, with restrict parameters like forward_row.
KESTREL_INLINE void backward_row(const float *restrict zi, const float *restrict zf, const float *restrict zc,
                                 const float *restrict zo, const float *restrict previous,
                                 const float *restrict squashed, const float *restrict dh, float *restrict dc,
                                 float *restrict dzi, float *restrict dzf, float *restrict dzc, float *restrict dzo,
                                 size_t u) {
    for (size_t k = 0; k < u; k++) {
        const float i = zi[k], f = zf[k], c = zc[k], o = zo[k], s = squashed[k];
        // h = o · tanh(cell); cell = f · cell₋₁ + i · c.
        const float dcell = dc[k] + dh[k] * o * (1.0f - s * s);
        dzi[k] = dcell * c * i * (1.0f - i);
        dzf[k] = dcell * previous[k] * f * (1.0f - f);
        dzc[k] = dcell * i * (1.0f - c * c);
        dzo[k] = dh[k] * s * o * (1.0f - o);
        dc[k] = dcell * f;
    }
}

KESTREL_CLONES
static void backward_rows(void *context, size_t begin, size_t end) {
    const lstm_job *j = context;
    const size_t u = j->units, g = 4 * u;
    for (size_t r = begin; r < end; r++) {
        const float *z = j->z + r * g;
        float *dz = j->dz + r * g;
        backward_row(z, z + u, z + 2 * u, z + 3 * u, j->previous + r * u, j->squashed + r * u, j->dh + r * u,
                     j->dc + r * u, dz, dz + u, dz + 2 * u, dz + 3 * u, u);
    }
}

void kestrel_lstm_backward_gates(const float *gates, const float *previous_cell, const float *squashed,
                                 const float *dh, float *dc, float *dz, size_t rows, size_t units) {
    lstm_job j = {.z = (float *)gates, .previous = previous_cell, .squashed = (float *)squashed, .dh = dh, .dc = dc,
                  .dz = dz, .units = units};
    kestrel_parallel_for(backward_rows, &j, rows, units >= 256 ? 8 : 2048 / (units ? units : 1));
}

// The GRU's (reset after the recurrent product, Keras 3's default) the same way: one pass per
// row for sigmoid gates and a tanh candidate.
typedef struct {
    float *z; const float *input_bias; float *product; const float *recurrent_bias; const float *previous;
    float *candidate; float *hidden; float *dh; float *di; float *dr; size_t units;
} gru_job;

KESTREL_INLINE void gru_forward_row(float *restrict zz, float *restrict zr, float *restrict zh,
                                    const float *restrict pz, const float *restrict pr, const float *restrict ph,
                                    const float *restrict previous, float *restrict candidate, float *restrict hidden,
                                    size_t u) {
    for (size_t k = 0; k < u; k++) {
        const float z = kestrel_vsigmoidf(zz[k] + pz[k]), r = kestrel_vsigmoidf(zr[k] + pr[k]);
        const float c = ph[k];
        const float h = kestrel_vtanhf(zh[k] + r * c);
        zz[k] = z;
        zr[k] = r;
        zh[k] = h;
        candidate[k] = c;
        hidden[k] = z * previous[k] + (1.0f - z) * h;
    }
}

KESTREL_CLONES
static void gru_forward_rows(void *context, size_t begin, size_t end) {
    const gru_job *j = context;
    const size_t u = j->units, g = 3 * u;
    for (size_t r = begin; r < end; r++) {
        float *z = j->z + r * g, *p = j->product + r * g;
        if (j->input_bias) for (size_t k = 0; k < g; k++) z[k] += j->input_bias[k];
        if (j->recurrent_bias) for (size_t k = 0; k < g; k++) p[k] += j->recurrent_bias[k];
        gru_forward_row(z, z + u, z + 2 * u, p, p + u, p + 2 * u, j->previous + r * u, j->candidate + r * u,
                        j->hidden + r * u, u);
    }
}

void kestrel_gru_forward_gates(float *z, const float *input_bias, float *product, const float *recurrent_bias,
                               const float *previous, float *candidate, float *hidden, size_t rows, size_t units) {
    gru_job j = {.z = z, .input_bias = input_bias, .product = product, .recurrent_bias = recurrent_bias,
                 .previous = previous, .candidate = candidate, .hidden = hidden, .units = units};
    kestrel_parallel_for(gru_forward_rows, &j, rows, units >= 256 ? 8 : 2048 / (units ? units : 1));
}

KESTREL_INLINE void gru_backward_row(const float *restrict zz, const float *restrict zr, const float *restrict zh,
                                     const float *restrict candidate, const float *restrict previous,
                                     float *restrict dh, float *restrict diz, float *restrict dir, float *restrict dih,
                                     float *restrict drz, float *restrict drr, float *restrict drh, size_t u) {
    for (size_t k = 0; k < u; k++) {
        const float z = zz[k], r = zr[k], h = zh[k], g = dh[k];
        // h = z·h₋₁ + (1 − z)·h̃, h̃ = tanh(x_h + r·c).
        const float dcandidate = g * (1.0f - z) * (1.0f - h * h);
        const float dz = g * (previous[k] - h) * z * (1.0f - z);
        const float dr = dcandidate * candidate[k] * r * (1.0f - r);
        diz[k] = dz;
        dir[k] = dr;
        dih[k] = dcandidate;
        drz[k] = dz;
        drr[k] = dr;
        drh[k] = dcandidate * r;
        dh[k] = g * z;
    }
}

KESTREL_CLONES
static void gru_backward_rows(void *context, size_t begin, size_t end) {
    const gru_job *j = context;
    const size_t u = j->units, g = 3 * u;
    for (size_t r = begin; r < end; r++) {
        const float *z = j->z + r * g;
        float *di = j->di + r * g, *dr = j->dr + r * g;
        gru_backward_row(z, z + u, z + 2 * u, j->candidate + r * u, j->previous + r * u, j->dh + r * u,
                         di, di + u, di + 2 * u, dr, dr + u, dr + 2 * u, u);
    }
}

void kestrel_gru_backward_gates(const float *gates, const float *candidate, const float *previous, float *dh,
                                float *di, float *dr, size_t rows, size_t units) {
    gru_job j = {.z = (float *)gates, .candidate = (float *)candidate, .previous = previous, .dh = dh, .di = di,
                 .dr = dr, .units = units};
    kestrel_parallel_for(gru_backward_rows, &j, rows, units >= 256 ? 8 : 2048 / (units ? units : 1));
}
