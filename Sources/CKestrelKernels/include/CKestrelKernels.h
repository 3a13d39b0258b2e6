#ifndef CKESTREL_KERNELS_H
#define CKESTREL_KERNELS_H
#include <stddef.h>

// Element-wise update loops of the optimizers, in C so that `restrict` and -fno-math-errno
// let the compiler vectorise them (square roots included), with an AVX2 variant chosen
// at load time on CPUs that have it. Each updates elements [begin, end).

/// Keras Adam step: m += (g-m)(1-b1); v += (g²-v)(1-b2); [vmax = max(vmax, v)]; w -= alpha·m/(sqrt(v or vmax)+eps).
void kestrel_adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                  float *restrict vmax, size_t begin, size_t end, float alpha, float beta1, float beta2,
                  float epsilon);

/// Keras SGD step: momentum 0: w -= lr·g; else v = mom·v - lr·g; w += v (Nesterov: w += mom·v - lr·g).
void kestrel_sgd(float *restrict w, const float *restrict g, float *restrict velocity, size_t begin, size_t end,
                 float lr, float momentum, int nesterov);

/// Keras RMSprop step (ε inside the root; optional momentum and centering).
void kestrel_rmsprop(float *restrict w, const float *restrict g, float *restrict v, float *restrict mom,
                     float *restrict avg, size_t begin, size_t end, float lr, float rho, float momentum,
                     float epsilon, int centered);

/// Keras Adagrad step: a += g²; w -= lr·g/sqrt(a + ε).
void kestrel_adagrad(float *restrict w, const float *restrict g, float *restrict a, size_t begin, size_t end,
                     float lr, float epsilon);

/// Decoupled weight decay: w -= w·factor.
void kestrel_scale_in_place(float *restrict w, size_t begin, size_t end, float factor);
#endif
