#ifndef CKESTREL_KERNELS_H
#define CKESTREL_KERNELS_H
#include <stddef.h>
#include <stdint.h>

// Element-wise update loops of the optimizers, in C so that `restrict` and -fno-math-errno
// let the compiler vectorise them (square roots included), with an AVX2 variant chosen
// at load time on CPUs that have it. Each updates elements [begin, end).

/// Keras Adam step: m += (g-m)(1-b1); v += (g²-v)(1-b2); [vmax = max(vmax, v)]; w -= alpha·m/(sqrt(v or vmax)+eps).
void kestrel_adam(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                  float *restrict vmax, size_t begin, size_t end, float alpha, float beta1, float beta2,
                  float epsilon);

/// Adam with coupled L2 (scikit-learn's MLP, torch's Adam weight_decay): g' = g + decay·w, then
/// the Adam step above without vmax; returns Σw² of the updated weights (for a loss that
/// reports the penalty), all in one pass. `g` is not written.
float kestrel_adam_l2(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                      size_t begin, size_t end, float alpha, float beta1, float beta2, float epsilon,
                      float decay);

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

#ifndef CKESTREL_PARALLEL_H
#define CKESTREL_PARALLEL_H
// A persistent worker pool (parallel.c) for loops whose parts are independent.

/// One part of a parallel loop; `thread` (0 = the caller) indexes per-thread scratch.
typedef void (*kestrel_task)(void *context, long part, long thread);

/// Runs `task(context, part, thread)` for every part in [0, parts) on the caller and the
/// pool's workers, and returns when all are done. A call made from inside a part, or while
/// another thread's loop runs, runs its parts on the calling thread alone. Allocation-free
/// after the workers have started.
void kestrel_parallel_run(kestrel_task task, void *context, long parts);
/// The same with at most `threads` threads taking part (so `thread` is below it), for loops
/// whose parts use per-thread scratch sized for that many.
void kestrel_parallel_run_on(kestrel_task task, void *context, long parts, long threads);

/// A loop body over the elements [begin, end).
typedef void (*kestrel_range_task)(void *context, size_t begin, size_t end);

/// Runs `body` over [0, count) cut into one contiguous range per thread, each at least `grain`
/// long (one range on the calling thread when the count is too small to share).
void kestrel_parallel_for(kestrel_range_task body, void *context, size_t count, size_t grain);

/// Whether the calling thread is running a part of a loop (a nested loop would run alone).
int kestrel_parallel_inside(void);

/// Sets how many threads (the caller included) a loop may use; workers start on first use.
void kestrel_parallel_set_threads(long threads);

/// How many threads a loop may use (the caller included).
long kestrel_parallel_threads(void);

/// The cores this process may run on.
long kestrel_parallel_cores(void);
#endif

#ifndef CKESTREL_WINDOWS_H
#define CKESTREL_WINDOWS_H
// Sliding windows over channels-last volumes (windows.c). A 2-D layer passes depth 1, a 1-D
// layer depth 1 and height 1.

/// The geometry of a window sliding over one `depth × height × width × channels` volume:
/// output size, window size, strides, dilation, the padding before the first slice, row and
/// column, and the number of channel groups (a grouped convolution's; 1 for pooling).
typedef struct {
    long height, width, channels;
    long out_height, out_width;
    long kernel_h, kernel_w;
    long stride_h, stride_w;
    long dilation_h, dilation_w;
    long pad_top, pad_left;
    long groups;
    long depth, out_depth, kernel_d, stride_d, dilation_d, pad_front;
} kestrel_window;

/// Lowers a batch of volumes to one row per output position: `[batch·OD·OH·OW, groups, kd, kh, kw, C/groups]`,
/// zeros where the window reaches into the padding.
void kestrel_im2col(const float *restrict x, float *restrict cols, const kestrel_window *w, size_t batch);

/// The adjoint of `kestrel_im2col`: zeroes `x`, then adds every column entry back to its pixel.
void kestrel_col2im(const float *restrict cols, float *restrict x, const kestrel_window *w, size_t batch);

/// Max pooling; records in `argmax` each output's winning offset within its sample (-1: none).
void kestrel_max_pool_forward(const float *restrict x, float *restrict y, int *restrict argmax,
                              const kestrel_window *w, size_t batch);

/// Routes each output gradient to the input that won its window (dx is overwritten).
void kestrel_max_pool_backward(const float *restrict dy, const int *restrict argmax, float *restrict dx,
                               const kestrel_window *w, size_t batch);

/// Average pooling over the window positions inside the image (padding is not counted).
void kestrel_average_pool_forward(const float *restrict x, float *restrict y, const kestrel_window *w, size_t batch);

/// Spreads each output gradient evenly over its window (dx is overwritten).
void kestrel_average_pool_backward(const float *restrict dy, float *restrict dx, const kestrel_window *w,
                                   size_t batch);

/// Adds `bias` (if not null) to every row and applies ReLU when `relu` is set, in one pass.
void kestrel_bias_relu_rows(float *restrict y, const float *restrict bias, size_t rows, size_t columns, int relu);

/// dy = y > 0 ? dy : 0 (ReLU's backward given its output).
void kestrel_relu_backward_in_place(float *restrict dy, const float *restrict y, size_t count);

/// Copies `row` (`columns` values) into each of the `rows` rows of `y` (a bias before a product
/// that adds to it, so that sgemm need not zero its output first).
void kestrel_fill_rows(float *restrict y, const float *restrict row, size_t rows, size_t columns);

/// ReLU's backward (`dy = y > 0 ? dy : 0`) and the column sums of the result (a bias
/// gradient, stored or added to `out`) in one pass over the `rows × columns` matrix.
void kestrel_relu_backward_column_sums(float *restrict dy, const float *restrict y, size_t rows, size_t columns,
                                       float *restrict out, int accumulate);

/// Column sums of a `rows × columns` matrix, stored in or added to `out`.
void kestrel_column_sums(const float *restrict x, size_t rows, size_t columns, float *restrict out, int accumulate);
#endif

#ifndef CKESTREL_DIRECT_CONV_H
#define CKESTREL_DIRECT_CONV_H
// Direct convolution (one group) for windows of few values, where im2col + sgemm is slow.
// `kernel` has Keras's layout (kh, kw, C, filters).

/// y = conv(x, kernel): `batch·OH·OW × filters` outputs, no bias or activation.
void kestrel_conv_direct_forward(const float *restrict x, const float *restrict kernel, float *restrict y,
                                 const kestrel_window *w, size_t batch, long filters);

/// The kernel gradient from the input and the pre-activation gradient, stored or added.
void kestrel_conv_direct_kernel_gradient(const float *restrict x, const float *restrict dy, float *restrict dw,
                                         const kestrel_window *w, size_t batch, long filters, int accumulate);

/// The input gradient from the pre-activation gradient (dx is overwritten).
void kestrel_conv_direct_input_gradient(const float *restrict dy, const float *restrict kernel, float *restrict dx,
                                        const kestrel_window *w, size_t batch, long filters);
#endif

#ifndef CKESTREL_DROPOUT_H
#define CKESTREL_DROPOUT_H
// Dropout (dropout.c), shared over threads.

/// `mask[i] = u_i >= rate ? 1/(1-rate) : 0` and `y = x · mask`, with u_i uniform in [0, 1) from
/// streams fixed by `seed` (the same mask on any number of threads).
void kestrel_dropout_forward(const float *x, float *y, float *mask, size_t count, float rate, uint64_t seed);

/// `dx = dy · mask`.
void kestrel_dropout_backward(const float *dy, const float *mask, float *dx, size_t count);
#endif

#ifndef CKESTREL_RECURRENT_H
#define CKESTREL_RECURRENT_H
// The LSTM's and GRU's gate loops for sigmoid gates and tanh (recurrent.c), rows shared over threads.

/// Per row: adds `bias` (if not null) to the gate pre-activations `z` (i, f, c, o; 4·units),
/// activates them in place, and writes the new cell, tanh(cell) and the hidden state.
void kestrel_lstm_forward_gates(float *z, const float *bias, const float *previous_cell, float *cell,
                                float *squashed, float *hidden, size_t rows, size_t units);

/// Per row: the gate pre-activation gradients `dz` from the hidden-state gradient `dh` and the
/// cell gradient `dc`, which is replaced by the previous cell's gradient.
void kestrel_lstm_backward_gates(const float *gates, const float *previous_cell, const float *squashed,
                                 const float *dh, float *dc, float *dz, size_t rows, size_t units);

/// Per row of a GRU with the reset gate after the recurrent product: adds the biases (if not
/// null) to the input projections `z` (z, r, h̃; 3·units) and to the recurrent `product`,
/// activates z and r (sigmoid) and h̃ (tanh) in place, keeps the recurrent candidate term in
/// `candidate` and writes the new hidden state.
void kestrel_gru_forward_gates(float *z, const float *input_bias, float *product, const float *recurrent_bias,
                               const float *previous, float *candidate, float *hidden, size_t rows, size_t units);

/// Per row: the gradients of the input projections `di` and of the recurrent product `dr` from
/// the hidden-state gradient `dh`, which is replaced by its direct path to the previous state.
void kestrel_gru_backward_gates(const float *gates, const float *candidate, const float *previous, float *dh,
                                float *di, float *dr, size_t rows, size_t units);
#endif

#ifndef CKESTREL_ACTIVATIONS_H
#define CKESTREL_ACTIVATIONS_H
// Element-wise exponentials (activations.c), vectorised; `y` may equal `x`. A few units in the
// last place from libm's results.

/// `y = 1 / (1 + e^-x)`.
void kestrel_sigmoid(const float *x, float *y, size_t count);

/// `y = tanh(x)`.
void kestrel_tanh(const float *x, float *y, size_t count);

/// `y = e^x`.
void kestrel_exp(const float *x, float *y, size_t count);

/// `y = x · sigmoid(x)` (swish, SiLU).
void kestrel_swish(const float *x, float *y, size_t count);

/// Softmax of each row of a `rows × columns` matrix, shifted by the row's maximum.
void kestrel_softmax_rows(const float *x, float *y, size_t rows, size_t columns);
#endif
