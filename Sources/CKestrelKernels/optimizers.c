#include "CKestrelKernels.h"
#include <math.h>

#include "clones.h"

KESTREL_CLONES
static void kestrel_adam_serial(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                  float *restrict vmax, size_t begin, size_t end, float alpha, float beta1, float beta2,
                  float epsilon) {
    const float b1 = 1.0f - beta1, b2 = 1.0f - beta2;
    if (vmax) {
        for (size_t i = begin; i < end; i++) {
            const float gi = g[i];
            m[i] += (gi - m[i]) * b1;
            v[i] += (gi * gi - v[i]) * b2;
            vmax[i] = vmax[i] > v[i] ? vmax[i] : v[i];
            w[i] -= alpha * m[i] / (sqrtf(vmax[i]) + epsilon);
        }
    } else {
        for (size_t i = begin; i < end; i++) {
            const float gi = g[i];
            const float mi = m[i] + (gi - m[i]) * b1;
            const float vi = v[i] + (gi * gi - v[i]) * b2;
            m[i] = mi;
            v[i] = vi;
            w[i] -= alpha * mi / (sqrtf(vi) + epsilon);
        }
    }
}

KESTREL_CLONES
float kestrel_adam_l2(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                      size_t begin, size_t end, float alpha, float beta1, float beta2, float epsilon,
                      float decay) {
    // Reassociation lets the sum of squares vectorise (lane-wise partial sums).
#pragma clang fp reassociate(on)
    const float b1 = 1.0f - beta1, b2 = 1.0f - beta2;
    float squares = 0.0f;
    for (size_t i = begin; i < end; i++) {
        const float gi = g[i] + decay * w[i];
        const float mi = m[i] + (gi - m[i]) * b1;
        const float vi = v[i] + (gi * gi - v[i]) * b2;
        m[i] = mi;
        v[i] = vi;
        const float wi = w[i] - alpha * mi / (sqrtf(vi) + epsilon);
        w[i] = wi;
        squares += wi * wi;
    }
    return squares;
}

KESTREL_CLONES
static void kestrel_sgd_serial(float *restrict w, const float *restrict g, float *restrict velocity, size_t begin, size_t end,
                 float lr, float momentum, int nesterov) {
    if (momentum == 0.0f || velocity == 0) {
        for (size_t i = begin; i < end; i++) w[i] -= lr * g[i];
    } else if (nesterov) {
        for (size_t i = begin; i < end; i++) {
            const float vi = momentum * velocity[i] - lr * g[i];
            velocity[i] = vi;
            w[i] += momentum * vi - lr * g[i];
        }
    } else {
        for (size_t i = begin; i < end; i++) {
            const float vi = momentum * velocity[i] - lr * g[i];
            velocity[i] = vi;
            w[i] += vi;
        }
    }
}

KESTREL_CLONES
static void kestrel_rmsprop_serial(float *restrict w, const float *restrict g, float *restrict v, float *restrict mom,
                     float *restrict avg, size_t begin, size_t end, float lr, float rho, float momentum,
                     float epsilon, int centered) {
    const float keep = 1.0f - rho;
    for (size_t i = begin; i < end; i++) {
        const float gi = g[i];
        const float vi = rho * v[i] + keep * gi * gi;
        v[i] = vi;
        float denominator = vi + epsilon;
        if (centered) {
            const float ai = rho * avg[i] + keep * gi;
            avg[i] = ai;
            denominator -= ai * ai;
        }
        const float increment = lr * gi / sqrtf(denominator);
        if (momentum > 0.0f) {
            const float mi = momentum * mom[i] + increment;
            mom[i] = mi;
            w[i] -= mi;
        } else {
            w[i] -= increment;
        }
    }
}

KESTREL_CLONES
static void kestrel_adagrad_serial(float *restrict w, const float *restrict g, float *restrict a, size_t begin, size_t end,
                     float lr, float epsilon) {
    for (size_t i = begin; i < end; i++) {
        const float gi = g[i];
        const float ai = a[i] + gi * gi;
        a[i] = ai;
        w[i] -= lr * gi / sqrtf(ai + epsilon);
    }
}

KESTREL_CLONES
static void kestrel_scale_in_place_serial(float *restrict w, size_t begin, size_t end, float factor) {
    for (size_t i = begin; i < end; i++) w[i] -= w[i] * factor;
}

// The entry points split [begin, end) over Kestrel's threads when it is long enough.

typedef struct {
    float *w; const float *g; float *a, *b, *c;
    float p1, p2, p3, p4; int flag; int kind;
} update_job;

enum { ADAM, SGD, RMSPROP, ADAGRAD, SCALE };

#define GRAIN 16384

static void update_range(void *context, size_t begin, size_t end) {
    const update_job *j = context;
    switch (j->kind) {
    case ADAM: kestrel_adam_serial(j->w, j->g, j->a, j->b, j->c, begin, end, j->p1, j->p2, j->p3, j->p4); break;
    case SGD: kestrel_sgd_serial(j->w, j->g, j->a, begin, end, j->p1, j->p2, j->flag); break;
    case RMSPROP:
        kestrel_rmsprop_serial(j->w, j->g, j->a, j->b, j->c, begin, end, j->p1, j->p2, j->p3, j->p4, j->flag);
        break;
    case ADAGRAD: kestrel_adagrad_serial(j->w, j->g, j->a, begin, end, j->p1, j->p2); break;
    case SCALE: kestrel_scale_in_place_serial(j->w, begin, end, j->p1); break;
    }
}

// Offsets the range so that the shares see absolute indices.
typedef struct { const update_job *job; size_t base; } offset_job;

static void offset_range(void *context, size_t begin, size_t end) {
    const offset_job *o = context;
    update_range((void *)o->job, o->base + begin, o->base + end);
}

static void run_update(const update_job *j, size_t begin, size_t end) {
    if (end <= begin) return;
    offset_job o = {j, begin};
    kestrel_parallel_for(offset_range, &o, end - begin, GRAIN);
}

void kestrel_adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                  float *restrict vmax, size_t begin, size_t end, float alpha, float beta1, float beta2,
                  float epsilon) {
    update_job j = {w, g, m, v, vmax, alpha, beta1, beta2, epsilon, 0, ADAM};
    run_update(&j, begin, end);
}

void kestrel_sgd(float *restrict w, const float *restrict g, float *restrict velocity, size_t begin, size_t end,
                 float lr, float momentum, int nesterov) {
    update_job j = {w, g, velocity, 0, 0, lr, momentum, 0, 0, nesterov, SGD};
    run_update(&j, begin, end);
}

void kestrel_rmsprop(float *restrict w, const float *restrict g, float *restrict v, float *restrict mom,
                     float *restrict avg, size_t begin, size_t end, float lr, float rho, float momentum,
                     float epsilon, int centered) {
    update_job j = {w, g, v, mom, avg, lr, rho, momentum, epsilon, centered, RMSPROP};
    run_update(&j, begin, end);
}

void kestrel_adagrad(float *restrict w, const float *restrict g, float *restrict a, size_t begin, size_t end,
                     float lr, float epsilon) {
    update_job j = {w, g, a, 0, 0, lr, epsilon, 0, 0, 0, ADAGRAD};
    run_update(&j, begin, end);
}

void kestrel_scale_in_place(float *restrict w, size_t begin, size_t end, float factor) {
    update_job j = {w, 0, 0, 0, 0, factor, 0, 0, 0, 0, SCALE};
    run_update(&j, begin, end);
}
