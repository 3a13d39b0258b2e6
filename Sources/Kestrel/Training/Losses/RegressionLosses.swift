import Foundation

/// The mean of squared differences (Keras `MeanSquaredError`).
public final class MeanSquaredError: ElementwiseLoss {
    /// A mean squared error loss.
    public init() { super.init(name: "mean_squared_error") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            let d = p - y
            return (d * d, 2 * d)
        }
    }
}

/// The mean of absolute differences (Keras `MeanAbsoluteError`).
public final class MeanAbsoluteError: ElementwiseLoss {
    /// A mean absolute error loss.
    public init() { super.init(name: "mean_absolute_error") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            let d = p - y
            return (abs(d), d > 0 ? 1 : (d < 0 ? -1 : 0))
        }
    }
}

/// Quadratic for small errors and linear beyond `delta` (Keras `Huber`, delta 1).
public final class Huber: ElementwiseLoss {
    /// Where the loss turns from quadratic to linear.
    public let delta: Float

    /// A Huber loss.
    public init(delta: Float = 1) {
        self.delta = delta
        super.init(name: "huber_loss")
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { [delta] p, y in
            let d = p - y
            return abs(d) <= delta ? (0.5 * d * d, d) : (delta * (abs(d) - 0.5 * delta), d > 0 ? delta : -delta)
        }
    }
}

/// The mean of squared differences of `log(1 + x)` (Keras `MeanSquaredLogarithmicError`), for
/// targets spanning orders of magnitude; values below Keras's epsilon count as epsilon.
public final class MeanSquaredLogarithmicError: ElementwiseLoss {
    /// A mean squared logarithmic error loss.
    public init() { super.init(name: "mean_squared_logarithmic_error") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            let d = log1p(max(p, probabilityEpsilon)) - log1p(max(y, probabilityEpsilon))
            return (d * d, p > probabilityEpsilon ? 2 * d / (1 + p) : 0)
        }
    }
}

/// The mean absolute difference as a percentage of the target, `100·|y − ŷ| / max(|y|, ε)`
/// (Keras `MeanAbsolutePercentageError`).
public final class MeanAbsolutePercentageError: ElementwiseLoss {
    /// A mean absolute percentage error loss.
    public init() { super.init(name: "mean_absolute_percentage_error") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            let d = p - y, denominator = max(abs(y), probabilityEpsilon)
            return (100 * abs(d) / denominator, d > 0 ? 100 / denominator : (d < 0 ? -100 / denominator : 0))
        }
    }
}

/// The mean of `log(cosh(ŷ − y))`: quadratic for small errors, linear for large ones, smooth
/// everywhere (Keras `LogCosh`).
public final class LogCosh: ElementwiseLoss {
    /// A log-cosh loss.
    public init() { super.init(name: "log_cosh") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            // log(cosh x) = |x| + log1p(exp(−2|x|)) − log 2, which cannot overflow.
            let x = p - y
            return (abs(x) + log1p(exp(-2 * abs(x))) - Float(M_LN2), tanh(x))
        }
    }
}

/// The negative cosine similarity between label and prediction vectors along the last axis
/// (Keras `CosineSimilarity`): −1 when they point the same way. Vectors are normalized as
/// Keras's `normalize` does (norms below its epsilon count as epsilon).
public final class CosineSimilarity: Loss {
    /// A cosine similarity loss over the last axis.
    public init() { super.init(name: "cosine_similarity") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let width = outputShape.last ?? 1, rows = batch * outputShape.reduce(1, *) / max(width, 1)
        // Keras: x · min(1/‖x‖, 1/ε).
        func inverseNorm(_ x: UnsafePointer<Float>) -> Float {
            var sum: Float = 0
            for j in 0..<width { sum += x[j] * x[j] }
            return min(1 / sum.squareRoot(), 1 / probabilityEpsilon)
        }
        var total: Double = 0
        for r in 0..<rows {
            let p = predictions + r * width, t = labels + r * width
            let rp = inverseNorm(p), rt = inverseNorm(t)
            var dot: Float = 0
            for j in 0..<width { dot += t[j] * p[j] }
            let cosine = dot * rt * rp
            total -= Double(cosine)
            guard let g = gradient.map({ $0 + r * width }) else { continue }
            // d(−t̂·p·r)/dp = −r·(t̂ − (t̂·û)·û), û = p·r; r is constant where the ε bound holds.
            let bounded = rp >= 1 / probabilityEpsilon
            for j in 0..<width {
                let unit = p[j] * rp
                g[j] = -rp * (t[j] * rt - (bounded ? 0 : cosine * unit)) / Float(rows)
            }
        }
        return Float(total / Double(max(rows, 1)))
    }
}
