// The LSTM's per-step gate loops for Keras's default activations (sigmoid gates, tanh cell),
// fused into one pass per row and split over Kestrel's threads by rows: in Swift they were four
// activation calls per row on one thread, a quarter of the layer's time.
#include "CKestrelKernels.h"
#include <math.h>

#include "clones.h"

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

typedef struct {
    float *z; const float *bias; const float *previous; float *cell; float *squashed; float *hidden;
    const float *dh; float *dc; float *dz; size_t units;
} lstm_job;

KESTREL_CLONES
static void forward_rows(void *context, size_t begin, size_t end) {
    const lstm_job *j = context;
    const size_t u = j->units, g = 4 * u;
    for (size_t r = begin; r < end; r++) {
        float *z = j->z + r * g;
        if (j->bias) for (size_t k = 0; k < g; k++) z[k] += j->bias[k];
        const float *previous = j->previous + r * u;
        float *cell = j->cell + r * u, *squashed = j->squashed + r * u, *hidden = j->hidden + r * u;
        for (size_t k = 0; k < u; k++) {
            const float i = sigmoid(z[k]), f = sigmoid(z[u + k]), c = tanhf(z[2 * u + k]), o = sigmoid(z[3 * u + k]);
            z[k] = i;
            z[u + k] = f;
            z[2 * u + k] = c;
            z[3 * u + k] = o;
            const float next = f * previous[k] + i * c;
            cell[k] = next;
            const float s = tanhf(next);
            squashed[k] = s;
            hidden[k] = o * s;
        }
    }
}

void kestrel_lstm_forward_gates(float *z, const float *bias, const float *previous_cell, float *cell,
                                float *squashed, float *hidden, size_t rows, size_t units) {
    lstm_job j = {.z = z, .bias = bias, .previous = previous_cell, .cell = cell, .squashed = squashed,
                  .hidden = hidden, .units = units};
    kestrel_parallel_for(forward_rows, &j, rows, units >= 256 ? 8 : 2048 / (units ? units : 1));
}

KESTREL_CLONES
static void backward_rows(void *context, size_t begin, size_t end) {
    const lstm_job *j = context;
    const size_t u = j->units, g = 4 * u;
    for (size_t r = begin; r < end; r++) {
        const float *z = j->z + r * g, *dh = j->dh + r * u, *previous = j->previous + r * u;
        const float *squashed = j->squashed + r * u;
        float *dc = j->dc + r * u, *dz = j->dz + r * g;
        for (size_t k = 0; k < u; k++) {
            const float i = z[k], f = z[u + k], c = z[2 * u + k], o = z[3 * u + k], s = squashed[k];
            // h = o · tanh(cell); cell = f · cell₋₁ + i · c.
            const float dcell = dc[k] + dh[k] * o * (1.0f - s * s);
            dz[k] = dcell * c * i * (1.0f - i);
            dz[u + k] = dcell * previous[k] * f * (1.0f - f);
            dz[2 * u + k] = dcell * i * (1.0f - c * c);
            dz[3 * u + k] = dh[k] * s * o * (1.0f - o);
            dc[k] = dcell * f;
        }
    }
}

void kestrel_lstm_backward_gates(const float *gates, const float *previous_cell, const float *squashed,
                                 const float *dh, float *dc, float *dz, size_t rows, size_t units) {
    lstm_job j = {.z = (float *)gates, .previous = previous_cell, .squashed = (float *)squashed, .dh = dh, .dc = dc,
                  .dz = dz, .units = units};
    kestrel_parallel_for(backward_rows, &j, rows, units >= 256 ? 8 : 2048 / (units ? units : 1));
}
