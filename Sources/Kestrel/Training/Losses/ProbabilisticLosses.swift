import Foundation

/// The Kullback–Leibler divergence of the predicted distribution from the label distribution
/// along the last axis, `Σ y·log(y / ŷ)` with both clipped to [ε, 1] (Keras `KLDivergence`).
public final class KLDivergence: Loss {
    /// A Kullback–Leibler divergence loss.
    public init() { super.init(name: "kl_divergence") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let width = outputShape.last ?? 1, n = batch * outputShape.reduce(1, *), rows = n / max(width, 1)
        var total: Double = 0
        for i in 0..<n {
            let t = min(max(labels[i], probabilityEpsilon), 1), p = predictions[i]
            let clipped = min(max(p, probabilityEpsilon), 1)
            total += Double(t * log(t / clipped))
            // The clip passes no gradient outside [ε, 1].
            gradient?[i] = p > probabilityEpsilon && p < 1 ? -t / (clipped * Float(rows)) : 0
        }
        return Float(total / Double(max(rows, 1)))
    }
}

/// The Poisson negative log-likelihood up to a constant, the mean of `ŷ − y·log(ŷ + ε)`
/// (Keras `Poisson`), for count targets predicted as rates.
public final class Poisson: ElementwiseLoss {
    /// A Poisson loss.
    public init() { super.init(name: "poisson") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            (p - y * log(p + probabilityEpsilon), 1 - y / (p + probabilityEpsilon))
        }
    }
}
