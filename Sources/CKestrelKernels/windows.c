// Sliding-window kernels over channels-last (NDHWC) volumes: the im2col lowering that turns a
// convolution into one matrix product, its adjoint col2im, and max/average pooling. A 2-D
// layer uses them with depth 1, a 1-D layer with depth 1 and height 1. In C, like the optimizer loops, so that -O3 vectorises the
// channel loops even in debug builds of the Swift code.
#include "CKestrelKernels.h"
#include <string.h>

#include "clones.h"

static inline long first_slice(const kestrel_window *w, long out_slice, long kd) {
    return out_slice * w->stride_d - w->pad_front + kd * w->dilation_d;
}

static inline long first_row(const kestrel_window *w, long out_row, long ki) {
    return out_row * w->stride_h - w->pad_top + ki * w->dilation_h;
}

static inline long first_col(const kestrel_window *w, long out_col, long kj) {
    return out_col * w->stride_w - w->pad_left + kj * w->dilation_w;
}

// Not lowered to memmove calls: a window row of a one-channel volume is three floats, which a
// call per row (nine per window) spends more time calling than copying.
KESTREL_CLONES __attribute__((no_builtin("memmove", "memcpy")))
void kestrel_im2col(const float *restrict x, float *restrict cols, const kestrel_window *w, size_t batch) {
    const long D = w->depth, H = w->height, W = w->width, C = w->channels, G = w->groups, Cg = C / G;
    const long kd = w->kernel_d, kh = w->kernel_h, kw = w->kernel_w, K = kd * kh * kw * Cg;
    const long row_length = G * K;
    for (size_t n = 0; n < batch; n++) {
        const float *xs = x + n * D * H * W * C;
        for (long od = 0; od < w->out_depth; od++) {
        for (long oh = 0; oh < w->out_height; oh++) {
            for (long ow = 0; ow < w->out_width; ow++) {
                float *row = cols + (((n * w->out_depth + od) * w->out_height + oh) * w->out_width + ow) * row_length;
                const long iw0 = first_col(w, ow, 0), iw1 = first_col(w, ow, kw - 1);
                // One group, contiguous taps, window row inside the image: the kernel row's
                // kw·C values are one contiguous run of the input row.
                const int contiguous = G == 1 && w->dilation_w == 1 && iw0 >= 0 && iw1 < W;
                for (long a = 0; a < kd; a++) {
                const long id = first_slice(w, od, a);
                const int slice_inside = id >= 0 && id < D;
                const float *xd = slice_inside ? xs + id * H * W * C : xs;
                for (long ki = 0; ki < kh; ki++) {
                    const long ih = first_row(w, oh, ki);
                    const long tap_row = a * kh + ki;
                    if (contiguous && slice_inside && ih >= 0 && ih < H) {
                        const float *src = xd + (ih * W + iw0) * C;
                        float *dst = row + tap_row * kw * C;
                        for (long i = 0; i < kw * C; i++) dst[i] = src[i];
                        continue;
                    }
                    for (long kj = 0; kj < kw; kj++) {
                        const long iw = first_col(w, ow, kj);
                        float *dst = row + (tap_row * kw + kj) * Cg;
                        if (!slice_inside || ih < 0 || ih >= H || iw < 0 || iw >= W) {
                            for (long g = 0; g < G; g++) memset(dst + g * K, 0, (size_t)Cg * sizeof(float));
                        } else {
                            const float *src = xd + (ih * W + iw) * C;
                            if (G == 1) {
                                for (long c = 0; c < C; c++) dst[c] = src[c];
                            } else {
                                for (long g = 0; g < G; g++)
                                    for (long c = 0; c < Cg; c++) dst[g * K + c] = src[g * Cg + c];
                            }
                        }
                    }
                }
                }
            }
        }
        }
    }
}

KESTREL_CLONES
void kestrel_col2im(const float *restrict cols, float *restrict x, const kestrel_window *w, size_t batch) {
    const long D = w->depth, H = w->height, W = w->width, C = w->channels, G = w->groups, Cg = C / G;
    const long kd = w->kernel_d, kh = w->kernel_h, kw = w->kernel_w, K = kd * kh * kw * Cg;
    const long row_length = G * K;
    memset(x, 0, batch * (size_t)(D * H * W * C) * sizeof(float));
    for (size_t n = 0; n < batch; n++) {
        float *xs = x + n * D * H * W * C;
        for (long od = 0; od < w->out_depth; od++) {
        for (long oh = 0; oh < w->out_height; oh++) {
            for (long ow = 0; ow < w->out_width; ow++) {
                const float *row = cols + (((n * w->out_depth + od) * w->out_height + oh) * w->out_width + ow) * row_length;
                for (long a = 0; a < kd; a++) {
                const long id = first_slice(w, od, a);
                if (id < 0 || id >= D) continue;
                float *xd = xs + id * H * W * C;
                for (long ki = 0; ki < kh; ki++) {
                    const long ih = first_row(w, oh, ki);
                    if (ih < 0 || ih >= H) continue;
                    for (long kj = 0; kj < kw; kj++) {
                        const long iw = first_col(w, ow, kj);
                        if (iw < 0 || iw >= W) continue;
                        const float *src = row + ((a * kh + ki) * kw + kj) * Cg;
                        float *dst = xd + (ih * W + iw) * C;
                        for (long g = 0; g < G; g++)
                            for (long c = 0; c < Cg; c++) dst[g * Cg + c] += src[g * K + c];
                    }
                }
                }
            }
        }
        }
    }
}

/// Whether a pooling's windows tile the image without overlap or padding and end inside it
/// (the usual 2×2, stride 2, "valid"; "same" padding can add a window reaching past the last row).
/// Only 2-D windows take this path; 3-D ones take the general one.
static inline int windows_tile(const kestrel_window *w) {
    return w->depth == 1 && w->out_depth == 1 && w->kernel_d == 1 && w->pad_front == 0 && w->stride_h == w->kernel_h && w->stride_w == w->kernel_w && w->pad_top == 0 && w->pad_left == 0 &&
           w->dilation_h == 1 && w->dilation_w == 1 && w->out_height * w->kernel_h <= w->height &&
           w->out_width * w->kernel_w <= w->width;
}

KESTREL_CLONES
static void kestrel_max_pool_forward_serial(const float *restrict x, float *restrict y, int *restrict argmax,
                              const kestrel_window *w, size_t batch) {
    const long H = w->height, W = w->width, C = w->channels;
    const long OH = w->out_height, OW = w->out_width;
    const long kh = w->kernel_h, kw = w->kernel_w;
    // Tiling windows have no bounds to test: each is a run of selects over the channels that
    // vectorises.
    if (windows_tile(w)) {
        for (size_t n = 0; n < batch; n++) {
            const float *xs = x + n * H * W * C;
            for (long oh = 0; oh < OH; oh++) {
                for (long ow = 0; ow < OW; ow++) {
                    const long o = ((n * OH + oh) * OW + ow) * C;
                    float *restrict yo = y + o;
                    int *restrict io = argmax + o;
                    const int corner = (int)(((oh * kh) * W + ow * kw) * C);
                    for (long c = 0; c < C; c++) { yo[c] = xs[corner + c]; io[c] = corner + (int)c; }
                    for (long ki = 0; ki < kh; ki++) {
                        for (long kj = ki == 0 ? 1 : 0; kj < kw; kj++) {
                            const int base = corner + (int)((ki * W + kj) * C);
                            const float *restrict src = xs + base;
                            // Strictly greater: the first maximum in window order wins.
                            for (long c = 0; c < C; c++) {
                                const int better = src[c] > yo[c];
                                yo[c] = better ? src[c] : yo[c];
                                io[c] = better ? base + (int)c : io[c];
                            }
                        }
                    }
                }
            }
        }
        return;
    }
    const long D = w->depth, OD = w->out_depth;
    for (size_t n = 0; n < batch; n++) {
        const float *xs = x + n * D * H * W * C;
        for (long od = 0; od < OD; od++) {
        for (long oh = 0; oh < OH; oh++) {
            for (long ow = 0; ow < OW; ow++) {
                const long o = (((n * OD + od) * OH + oh) * OW + ow) * C;
                float *yo = y + o;
                int *io = argmax + o;
                int started = 0;
                for (long a = 0; a < w->kernel_d; a++) {
                const long id = first_slice(w, od, a);
                if (id < 0 || id >= D) continue;
                for (long ki = 0; ki < w->kernel_h; ki++) {
                    const long ih = first_row(w, oh, ki);
                    if (ih < 0 || ih >= H) continue;
                    for (long kj = 0; kj < w->kernel_w; kj++) {
                        const long iw = first_col(w, ow, kj);
                        if (iw < 0 || iw >= W) continue;
                        const int base = (int)(((id * H + ih) * W + iw) * C);
                        const float *src = xs + base;
                        if (!started) {
                            for (long c = 0; c < C; c++) { yo[c] = src[c]; io[c] = base + (int)c; }
                            started = 1;
                            continue;
                        }
                        // Strictly greater: the first maximum in window order wins, as in
                        // XLA's select-and-scatter gradient.
                        for (long c = 0; c < C; c++) {
                            const int better = src[c] > yo[c];
                            yo[c] = better ? src[c] : yo[c];
                            io[c] = better ? base + (int)c : io[c];
                        }
                    }
                }
                }
                if (!started) for (long c = 0; c < C; c++) { yo[c] = 0; io[c] = -1; }
            }
        }
        }
    }
}

KESTREL_CLONES
static void kestrel_max_pool_backward_serial(const float *restrict dy, const int *restrict argmax, float *restrict dx,
                               const kestrel_window *w, size_t batch) {
    const size_t in_size = (size_t)w->depth * w->height * w->width * w->channels;
    const size_t out_size = (size_t)w->out_depth * w->out_height * w->out_width * w->channels;
    const long H = w->height, W = w->width, C = w->channels, OH = w->out_height, OW = w->out_width;
    const long kh = w->kernel_h, kw = w->kernel_w;
    // With tiling windows each input pixel is in at most one window, so dx is written once,
    // without zeroing it first.
    if (windows_tile(w)) {
        for (size_t n = 0; n < batch; n++) {
            float *dxs = dx + n * in_size;
            const float *dys = dy + n * out_size;
            const int *is = argmax + n * out_size;
            // Rows and columns past the last window get no gradient.
            if (OH * kh < H) memset(dxs + OH * kh * W * C, 0, (size_t)((H - OH * kh) * W * C) * sizeof(float));
            for (long oh = 0; oh < OH; oh++) {
                for (long ki = 0; ki < kh; ki++) {
                    float *row = dxs + (oh * kh + ki) * W * C;
                    for (long ow = 0; ow < OW; ow++) {
                        const long o = (oh * OW + ow) * C;
                        for (long kj = 0; kj < kw; kj++) {
                            const int base = (int)(((oh * kh + ki) * W + ow * kw + kj) * C);
                            float *d = row + (ow * kw + kj) * C;
                            for (long c = 0; c < C; c++) d[c] = is[o + c] == base + (int)c ? dys[o + c] : 0.0f;
                        }
                    }
                    if (OW * kw < W) memset(row + OW * kw * C, 0, (size_t)((W - OW * kw) * C) * sizeof(float));
                }
            }
        }
    } else {
        for (size_t n = 0; n < batch; n++) {
            float *dxs = dx + n * in_size;
            const float *dys = dy + n * out_size;
            const int *is = argmax + n * out_size;
            // An image at a time, so that the scatter finds the zeroed image in cache.
            memset(dxs, 0, in_size * sizeof(float));
            for (size_t i = 0; i < out_size; i++) if (is[i] >= 0) dxs[is[i]] += dys[i];
        }
    }
}

/// The number of window positions inside the volume (the divisor of a "same" average).
static inline long window_count(const kestrel_window *w, long od, long oh, long ow) {
    long slices = 0, rows = 0, cols = 0;
    for (long a = 0; a < w->kernel_d; a++) {
        const long id = first_slice(w, od, a);
        slices += id >= 0 && id < w->depth;
    }
    for (long ki = 0; ki < w->kernel_h; ki++) {
        const long ih = first_row(w, oh, ki);
        rows += ih >= 0 && ih < w->height;
    }
    for (long kj = 0; kj < w->kernel_w; kj++) {
        const long iw = first_col(w, ow, kj);
        cols += iw >= 0 && iw < w->width;
    }
    return slices * rows * cols;
}

KESTREL_CLONES
static void kestrel_average_pool_forward_serial(const float *restrict x, float *restrict y, const kestrel_window *w, size_t batch) {
    const long D = w->depth, H = w->height, W = w->width, C = w->channels;
    const long OD = w->out_depth, OH = w->out_height, OW = w->out_width;
    for (size_t n = 0; n < batch; n++) {
        const float *xs = x + n * D * H * W * C;
        for (long od = 0; od < OD; od++) {
        for (long oh = 0; oh < OH; oh++) {
            for (long ow = 0; ow < OW; ow++) {
                float *yo = y + (((n * OD + od) * OH + oh) * OW + ow) * C;
                for (long c = 0; c < C; c++) yo[c] = 0;
                for (long a = 0; a < w->kernel_d; a++) {
                const long id = first_slice(w, od, a);
                if (id < 0 || id >= D) continue;
                for (long ki = 0; ki < w->kernel_h; ki++) {
                    const long ih = first_row(w, oh, ki);
                    if (ih < 0 || ih >= H) continue;
                    for (long kj = 0; kj < w->kernel_w; kj++) {
                        const long iw = first_col(w, ow, kj);
                        if (iw < 0 || iw >= W) continue;
                        const float *src = xs + ((id * H + ih) * W + iw) * C;
                        for (long c = 0; c < C; c++) yo[c] += src[c];
                    }
                }
                }
                const long count = window_count(w, od, oh, ow);
                const float scale = count > 0 ? 1.0f / (float)count : 0.0f;
                for (long c = 0; c < C; c++) yo[c] *= scale;
            }
        }
        }
    }
}

KESTREL_CLONES
static void kestrel_average_pool_backward_serial(const float *restrict dy, float *restrict dx, const kestrel_window *w,
                                   size_t batch) {
    const long D = w->depth, H = w->height, W = w->width, C = w->channels;
    const long OD = w->out_depth, OH = w->out_height, OW = w->out_width;
    memset(dx, 0, batch * (size_t)(D * H * W * C) * sizeof(float));
    for (size_t n = 0; n < batch; n++) {
        float *dxs = dx + n * D * H * W * C;
        for (long od = 0; od < OD; od++) {
        for (long oh = 0; oh < OH; oh++) {
            for (long ow = 0; ow < OW; ow++) {
                const float *go = dy + (((n * OD + od) * OH + oh) * OW + ow) * C;
                const long count = window_count(w, od, oh, ow);
                const float scale = count > 0 ? 1.0f / (float)count : 0.0f;
                for (long a = 0; a < w->kernel_d; a++) {
                const long id = first_slice(w, od, a);
                if (id < 0 || id >= D) continue;
                for (long ki = 0; ki < w->kernel_h; ki++) {
                    const long ih = first_row(w, oh, ki);
                    if (ih < 0 || ih >= H) continue;
                    for (long kj = 0; kj < w->kernel_w; kj++) {
                        const long iw = first_col(w, ow, kj);
                        if (iw < 0 || iw >= W) continue;
                        float *dst = dxs + ((id * H + ih) * W + iw) * C;
                        for (long c = 0; c < C; c++) dst[c] += go[c] * scale;
                    }
                }
                }
            }
        }
        }
    }
}

KESTREL_CLONES
static void kestrel_bias_relu_rows_serial(float *restrict y, const float *restrict bias, size_t rows, size_t columns, int relu) {
    for (size_t r = 0; r < rows; r++) {
        float *yr = y + r * columns;
        if (relu) {
            if (bias) { for (size_t j = 0; j < columns; j++) { const float v = yr[j] + bias[j]; yr[j] = v > 0 ? v : 0; } }
            else { for (size_t j = 0; j < columns; j++) yr[j] = yr[j] > 0 ? yr[j] : 0; }
        } else if (bias) {
            for (size_t j = 0; j < columns; j++) yr[j] += bias[j];
        }
    }
}

KESTREL_CLONES
static void kestrel_relu_backward_in_place_serial(float *restrict dy, const float *restrict y, size_t count) {
    for (size_t i = 0; i < count; i++) dy[i] = y[i] > 0 ? dy[i] : 0;
}

KESTREL_CLONES
void kestrel_relu_backward_column_sums(float *restrict dy, const float *restrict y, size_t rows, size_t columns,
                                       float *restrict out, int accumulate) {
    if (!accumulate) memset(out, 0, columns * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        float *restrict d = dy + r * columns;
        const float *restrict yr = y + r * columns;
        for (size_t j = 0; j < columns; j++) {
            const float g = yr[j] > 0 ? d[j] : 0;
            d[j] = g;
            out[j] += g;
        }
    }
}

KESTREL_CLONES
void kestrel_fill_rows(float *restrict y, const float *restrict row, size_t rows, size_t columns) {
    for (size_t r = 0; r < rows; r++) memcpy(y + r * columns, row, columns * sizeof(float));
}

KESTREL_CLONES
void kestrel_column_sums(const float *restrict x, size_t rows, size_t columns, float *restrict out, int accumulate) {
    if (!accumulate) memset(out, 0, columns * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * columns;
        for (size_t j = 0; j < columns; j++) out[j] += xr[j];
    }
}

// Direct convolution for windows of few values (one group; e.g. the first layer of an image
// model, with one input channel and K = 9): a matrix product with so short an inner dimension
// runs far below sgemm's peak, and its column matrix costs more memory traffic than the
// arithmetic. Each output pixel instead gathers its window (K values) into registers and
// updates all filters, vectorised across the filters.

/// Copies the window of output (oh, ow) into `v` (`kh·kw·C` values, zeros in the padding).
KESTREL_INLINE void gather_window(const float *restrict xs, const kestrel_window *w, long oh, long ow,
                                  float *restrict v) {
    const long H = w->height, W = w->width, C = w->channels;
    for (long ki = 0; ki < w->kernel_h; ki++) {
        const long ih = first_row(w, oh, ki);
        for (long kj = 0; kj < w->kernel_w; kj++) {
            const long iw = first_col(w, ow, kj);
            float *dst = v + (ki * w->kernel_w + kj) * C;
            const int inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
            for (long c = 0; c < C; c++) dst[c] = inside ? xs[(ih * W + iw) * C + c] : 0.0f;
        }
    }
}

/// Adds `v` back onto the window of output (oh, ow), skipping the padding (gather's adjoint).
KESTREL_INLINE void scatter_window(float *restrict xs, const kestrel_window *w, long oh, long ow,
                                   const float *restrict v) {
    const long H = w->height, W = w->width, C = w->channels;
    for (long ki = 0; ki < w->kernel_h; ki++) {
        const long ih = first_row(w, oh, ki);
        if (ih < 0 || ih >= H) continue;
        for (long kj = 0; kj < w->kernel_w; kj++) {
            const long iw = first_col(w, ow, kj);
            if (iw < 0 || iw >= W) continue;
            const float *src = v + (ki * w->kernel_w + kj) * C;
            for (long c = 0; c < C; c++) xs[(ih * W + iw) * C + c] += src[c];
        }
    }
}

// Pixels whose windows are gathered at a time: their windows and output gradients (64 × 32
// filters × 4 bytes = 8 KB) stay in L1 while every tap and filter block passes over them.
#define DIRECT_CHUNK 64

/// Whether the window of output (oh, ow) lies wholly inside the image.
KESTREL_INLINE int window_inside(const kestrel_window *w, long oh, long ow) {
    const long ih = first_row(w, oh, 0), iw = first_col(w, ow, 0);
    return ih >= 0 && iw >= 0 && ih + (w->kernel_h - 1) * w->dilation_h < w->height &&
           iw + (w->kernel_w - 1) * w->dilation_w < w->width;
}

/// Gathers the windows of the image's output pixels `[p0, p0 + np)` (row-major over OH × OW)
/// into `v` (`np × K`). Windows wholly inside the image read through the precomputed tap
/// offsets `offset` without bounds checks; the others go through `gather_window`.
KESTREL_INLINE void gather_chunk(const float *restrict xs, const kestrel_window *w, const long *restrict offset,
                                 long K, long p0, long np, float *restrict v) {
    const long W = w->width, C = w->channels, OW = w->out_width;
    long oh = p0 / OW, ow = p0 % OW;
    for (long i = 0; i < np; i++) {
        float *dst = v + i * K;
        if (window_inside(w, oh, ow)) {
            const float *origin = xs + (first_row(w, oh, 0) * W + first_col(w, ow, 0)) * C;
            for (long k = 0; k < K; k++) dst[k] = origin[offset[k]];
        } else {
            gather_window(xs, w, oh, ow, dst);
        }
        if (++ow == OW) { ow = 0; oh++; }
    }
}

/// Each tap's offset in the input from its window's first pixel.
KESTREL_INLINE void tap_offsets(const kestrel_window *w, long *restrict offset) {
    const long W = w->width, C = w->channels;
    for (long ki = 0; ki < w->kernel_h; ki++)
        for (long kj = 0; kj < w->kernel_w; kj++)
            for (long c = 0; c < C; c++)
                offset[(ki * w->kernel_w + kj) * C + c] = (ki * w->dilation_h * W + kj * w->dilation_w) * C + c;
}

/// `y[p][0..<B] = v[p] · kernel[:, 0..<B]` for P pixels and a block of B filters (P and B
/// constants after inlining, so the P·B accumulators stay in vector registers and each kernel
/// row loaded serves P pixels).
KESTREL_INLINE void filter_block(const float *restrict v, long K, const float *restrict kernel, long F,
                                 float *restrict y, const long P, const long B) {
    float acc[2][32] = {{0}};
    for (long k = 0; k < K; k++) {
        const float *wk = kernel + k * F;
        for (long p = 0; p < P; p++) {
            const float vk = v[p * K + k];
            for (long f = 0; f < B; f++) acc[p][f] += vk * wk[f];
        }
    }
    for (long p = 0; p < P; p++)
        for (long f = 0; f < B; f++) y[p * F + f] = acc[p][f];
}

/// `dw[k..<k+T][0..<B] += Σ_p v[p][k..<k+T] ⊗ g[p][0..<B]` over `np` pixels, for T taps and a
/// block of B filters held in registers across the pixels.
KESTREL_INLINE void tap_block(const float *restrict v, long K, long k, const float *restrict g, long F, long np,
                              float *restrict dw, const long T, const long B) {
    float acc[2][32];
    for (long t = 0; t < T; t++)
        for (long f = 0; f < B; f++) acc[t][f] = dw[(k + t) * F + f];
    for (long p = 0; p < np; p++) {
        const float *gp = g + p * F;
        for (long t = 0; t < T; t++) {
            const float vt = v[p * K + k + t];
            for (long f = 0; f < B; f++) acc[t][f] += vt * gp[f];
        }
    }
    for (long t = 0; t < T; t++)
        for (long f = 0; f < B; f++) dw[(k + t) * F + f] = acc[t][f];
}

/// `filter_block` over every block of the F filters (32 at a time, then 8, then single ones).
KESTREL_INLINE void filter_blocks(const float *restrict v, long K, const float *restrict kernel, long F,
                                  float *restrict y, const long P) {
    long f = 0;
    for (; f + 32 <= F; f += 32) filter_block(v, K, kernel + f, F, y + f, P, 32);
    for (; f + 8 <= F; f += 8) filter_block(v, K, kernel + f, F, y + f, P, 8);
    for (; f < F; f++) filter_block(v, K, kernel + f, F, y + f, P, 1);
}

/// `tap_block` over every tap, two at a time, for a block of B filters.
KESTREL_INLINE void tap_blocks(const float *restrict v, long K, const float *restrict g, long F, long np,
                               float *restrict dw, const long B) {
    long k = 0;
    for (; k + 2 <= K; k += 2) tap_block(v, K, k, g, F, np, dw, 2, B);
    for (; k < K; k++) tap_block(v, K, k, g, F, np, dw, 1, B);
}

KESTREL_CLONES
void kestrel_conv_direct_forward(const float *restrict x, const float *restrict kernel, float *restrict y,
                                 const kestrel_window *w, size_t batch, long filters) {
    const long C = w->channels, K = w->kernel_h * w->kernel_w * C, F = filters;
    const long P = w->out_height * w->out_width, in_size = w->height * w->width * C;
    long offset[K];
    float v[2 * K];
    tap_offsets(w, offset);
    for (size_t n = 0; n < batch; n++) {
        // Pixels in pairs (row-major), so that each kernel row loaded serves two.
        for (long p = 0; p < P; p += 2) {
            float *yp = y + (n * P + p) * F;
            if (P - p >= 2) {
                gather_chunk(x + n * in_size, w, offset, K, p, 2, v);
                filter_blocks(v, K, kernel, F, yp, 2);
            } else {
                gather_chunk(x + n * in_size, w, offset, K, p, 1, v);
                filter_blocks(v, K, kernel, F, yp, 1);
            }
        }
    }
}

KESTREL_CLONES
void kestrel_conv_direct_kernel_gradient(const float *restrict x, const float *restrict dy, float *restrict dw,
                                         const kestrel_window *w, size_t batch, long filters, int accumulate) {
    const long C = w->channels, K = w->kernel_h * w->kernel_w * C, F = filters;
    const long P = w->out_height * w->out_width, in_size = w->height * w->width * C;
    if (!accumulate) memset(dw, 0, (size_t)(K * F) * sizeof(float));
    long offset[K];
    float v[DIRECT_CHUNK * K];
    tap_offsets(w, offset);
    for (size_t n = 0; n < batch; n++) {
        for (long p0 = 0; p0 < P; p0 += DIRECT_CHUNK) {
            const long np = P - p0 < DIRECT_CHUNK ? P - p0 : DIRECT_CHUNK;
            gather_chunk(x + n * in_size, w, offset, K, p0, np, v);
            const float *g = dy + (n * P + p0) * F;
            long f = 0;
            for (; f + 32 <= F; f += 32) tap_blocks(v, K, g + f, F, np, dw + f, 32);
            for (; f + 8 <= F; f += 8) tap_blocks(v, K, g + f, F, np, dw + f, 8);
            for (; f < F; f++) tap_blocks(v, K, g + f, F, np, dw + f, 1);
        }
    }
}

KESTREL_CLONES
void kestrel_conv_direct_input_gradient(const float *restrict dy, const float *restrict kernel, float *restrict dx,
                                        const kestrel_window *w, size_t batch, long filters) {
    const long C = w->channels, K = w->kernel_h * w->kernel_w * C, F = filters;
    const long OH = w->out_height, OW = w->out_width, in_size = w->height * w->width * C;
    memset(dx, 0, batch * (size_t)in_size * sizeof(float));
    float v[K];
    for (size_t n = 0; n < batch; n++) {
        float *dxs = dx + n * in_size;
        for (long oh = 0; oh < OH; oh++) {
            for (long ow = 0; ow < OW; ow++) {
                const float *g = dy + ((n * OH + oh) * OW + ow) * F;
                for (long k = 0; k < K; k++) {
                    const float *wk = kernel + k * F;
                    float s = 0;
                    for (long f = 0; f < F; f++) s += g[f] * wk[f];
                    v[k] = s;
                }
                scatter_window(dxs, w, oh, ow, v);
            }
        }
    }
}

// The entry points above split their batch (or rows, or elements) over Kestrel's threads when
// there is enough work; each share is the serial loop on its part.

typedef struct {
    const float *x; float *y; const float *dy; float *dx; int *argmax; const int *argmax_in;
    const float *bias; const kestrel_window *w; size_t columns; int relu; int kind;
} window_job;

enum { MAX_FORWARD, MAX_BACKWARD, AVERAGE_FORWARD, AVERAGE_BACKWARD, BIAS_RELU, RELU_BACKWARD };

// Elements per share below which splitting costs more than it saves.
#define GRAIN 16384

static void window_range(void *context, size_t begin, size_t end) {
    const window_job *j = context;
    const size_t in_size = j->w ? (size_t)j->w->depth * j->w->height * j->w->width * j->w->channels : 0;
    const size_t out_size = j->w ? (size_t)j->w->out_depth * j->w->out_height * j->w->out_width * j->w->channels : 0;
    const size_t n = end - begin;
    switch (j->kind) {
    case MAX_FORWARD:
        kestrel_max_pool_forward_serial(j->x + begin * in_size, j->y + begin * out_size, j->argmax + begin * out_size, j->w, n);
        break;
    case MAX_BACKWARD:
        kestrel_max_pool_backward_serial(j->dy + begin * out_size, j->argmax_in + begin * out_size, j->dx + begin * in_size, j->w, n);
        break;
    case AVERAGE_FORWARD:
        kestrel_average_pool_forward_serial(j->x + begin * in_size, j->y + begin * out_size, j->w, n);
        break;
    case AVERAGE_BACKWARD:
        kestrel_average_pool_backward_serial(j->dy + begin * out_size, j->dx + begin * in_size, j->w, n);
        break;
    case BIAS_RELU:
        kestrel_bias_relu_rows_serial(j->y + begin * j->columns, j->bias, n, j->columns, j->relu);
        break;
    case RELU_BACKWARD:
        kestrel_relu_backward_in_place_serial(j->dx + begin, j->x + begin, n);
        break;
    }
}

static size_t grain_for(size_t per_item) { return per_item >= GRAIN ? 1 : GRAIN / (per_item ? per_item : 1); }

void kestrel_max_pool_forward(const float *restrict x, float *restrict y, int *restrict argmax,
                              const kestrel_window *w, size_t batch) {
    window_job j = {.x = x, .y = y, .argmax = argmax, .w = w, .kind = MAX_FORWARD};
    kestrel_parallel_for(window_range, &j, batch, grain_for((size_t)w->depth * w->height * w->width * w->channels));
}

void kestrel_max_pool_backward(const float *restrict dy, const int *restrict argmax, float *restrict dx,
                               const kestrel_window *w, size_t batch) {
    window_job j = {.dy = dy, .argmax_in = argmax, .dx = dx, .w = w, .kind = MAX_BACKWARD};
    kestrel_parallel_for(window_range, &j, batch, grain_for((size_t)w->depth * w->height * w->width * w->channels));
}

void kestrel_average_pool_forward(const float *restrict x, float *restrict y, const kestrel_window *w, size_t batch) {
    window_job j = {.x = x, .y = y, .w = w, .kind = AVERAGE_FORWARD};
    kestrel_parallel_for(window_range, &j, batch, grain_for((size_t)w->depth * w->height * w->width * w->channels));
}

void kestrel_average_pool_backward(const float *restrict dy, float *restrict dx, const kestrel_window *w,
                                   size_t batch) {
    window_job j = {.dy = dy, .dx = dx, .w = w, .kind = AVERAGE_BACKWARD};
    kestrel_parallel_for(window_range, &j, batch, grain_for((size_t)w->depth * w->height * w->width * w->channels));
}

void kestrel_bias_relu_rows(float *restrict y, const float *restrict bias, size_t rows, size_t columns, int relu) {
    window_job j = {.y = y, .bias = bias, .columns = columns, .relu = relu, .kind = BIAS_RELU};
    kestrel_parallel_for(window_range, &j, rows, grain_for(columns));
}

void kestrel_relu_backward_in_place(float *restrict dy, const float *restrict y, size_t count) {
    window_job j = {.dx = dy, .x = y, .kind = RELU_BACKWARD};
    kestrel_parallel_for(window_range, &j, count, GRAIN);
}
