import CKestrelKernels

extension Kernels {
    /// One Adam step over `range` of flat buffers, in Keras's (and scikit-learn's) form:
    /// `m += (g-m)(1-β1)`, `v += (g²-v)(1-β2)`, `w -= rate·m/(sqrt(v)+ε)` with `rate` already
    /// bias-corrected. Vectorised (AVX2 where available); for optimizers written outside the
    /// library that keep their own moment buffers.
    public static func adamStep(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                                firstMoments m: UnsafeMutablePointer<Float>, secondMoments v: UnsafeMutablePointer<Float>,
                                range: Range<Int>, rate: Float, beta1: Float, beta2: Float, epsilon: Float) {
        kestrel_adam(w, g, m, v, nil, range.lowerBound, range.upperBound, rate, beta1, beta2, epsilon)
    }

    /// `adamStep` with coupled L2: the gradient becomes `g + l2·w` first (scikit-learn's MLP
    /// penalty, PyTorch's `Adam(weight_decay:)`), and the sum of squares of the updated weights
    /// comes back, so that a loss reporting the penalty needs no second pass over them. One
    /// vectorised pass; `g` is left as it was.
    @discardableResult
    public static func adamStep(weights w: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>,
                                firstMoments m: UnsafeMutablePointer<Float>, secondMoments v: UnsafeMutablePointer<Float>,
                                range: Range<Int>, rate: Float, beta1: Float, beta2: Float, epsilon: Float,
                                l2: Float) -> Float {
        kestrel_adam_l2(w, g, m, v, range.lowerBound, range.upperBound, rate, beta1, beta2, epsilon, l2)
    }
}
