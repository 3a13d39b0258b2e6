// Dropout's mask: random numbers drawn in fixed chunks, each from its own stream seeded by the
// call's seed and the chunk's index, so that the chunks can be shared over threads and the mask
// is the same whatever the number of threads.
#include "CKestrelKernels.h"
#include <math.h>
#include <stdint.h>

#include "clones.h"

// Elements per stream.
#define DROPOUT_CHUNK 8192

typedef struct {
    const float *x; float *y; float *mask; const float *dy; float *dx;
    size_t count; float rate, scale; uint64_t seed;
} dropout_job;

static inline uint64_t split_mix(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Independent xoshiro256** streams per chunk, interleaved (element i uses lane i mod LANES):
// one stream is a chain of dependent operations, while LANES of them fill vector registers.
#define LANES 8

KESTREL_CLONES
static void dropout_forward_chunks(void *context, size_t begin, size_t end) {
    const dropout_job *j = context;
    // Locals, so that the stores through mask and y need not reload the job.
    const float *restrict x = j->x;
    float *restrict y = j->y, *restrict mask = j->mask;
    const float scale = j->scale;
    const size_t count = j->count;
    // u = b / 2^24 >= rate exactly when the 24 bits b >= ceil(rate · 2^24).
    const uint64_t threshold = (uint64_t)ceil((double)j->rate * 16777216.0);
    for (size_t chunk = begin; chunk < end; chunk++) {
        uint64_t s0[LANES], s1[LANES], s2[LANES], s3[LANES];
        for (int l = 0; l < LANES; l++) {
            // SplitMix64 from (seed, chunk, lane).
            uint64_t state = j->seed ^ ((chunk * LANES + (uint64_t)l) * 0xD1B54A32D192ED03ull);
            s0[l] = split_mix(&state); s1[l] = split_mix(&state); s2[l] = split_mix(&state); s3[l] = split_mix(&state);
        }
        const size_t first = chunk * DROPOUT_CHUNK;
        const size_t last = first + DROPOUT_CHUNK < count ? first + DROPOUT_CHUNK : count;
        for (size_t i = first; i < last; i += LANES) {
            float keep[LANES];
            for (int l = 0; l < LANES; l++) {
                // x·5 and x·9 as shifts and adds, which AVX2 has for 64-bit lanes.
                const uint64_t m5 = s1[l] + (s1[l] << 2), rot = (m5 << 7) | (m5 >> 57), r = rot + (rot << 3);
                const uint64_t t = s1[l] << 17;
                s2[l] ^= s0[l]; s3[l] ^= s1[l]; s1[l] ^= s2[l]; s0[l] ^= s3[l];
                s2[l] ^= t; s3[l] = (s3[l] << 45) | (s3[l] >> 19);
                keep[l] = (float)(int32_t)((r >> 40) >= threshold) * scale;
            }
            const size_t n = last - i < LANES ? last - i : LANES;
            for (size_t l = 0; l < n; l++) {
                mask[i + l] = keep[l];
                y[i + l] = x[i + l] * keep[l];
            }
        }
    }
}

void kestrel_dropout_forward(const float *x, float *y, float *mask, size_t count, float rate, uint64_t seed) {
    dropout_job job = {.x = x, .y = y, .mask = mask, .count = count, .rate = rate,
                       .scale = 1.0f / (1.0f - rate), .seed = seed};
    kestrel_parallel_for(dropout_forward_chunks, &job, (count + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK, 2);
}

KESTREL_CLONES
static void dropout_backward_range(void *context, size_t begin, size_t end) {
    const dropout_job *j = context;
    for (size_t i = begin; i < end; i++) j->dx[i] = j->dy[i] * j->mask[i];
}

void kestrel_dropout_backward(const float *dy, const float *mask, float *dx, size_t count) {
    dropout_job job = {.dy = dy, .mask = (float *)mask, .dx = dx, .count = count};
    kestrel_parallel_for(dropout_backward_range, &job, count, 32768);
}
