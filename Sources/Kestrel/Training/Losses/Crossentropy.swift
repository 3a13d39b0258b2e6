import Foundation

/// Cross-entropy between integer class labels and predicted class scores
/// (Keras `SparseCategoricalCrossentropy`). With `fromLogits`, softmax and cross-entropy are
/// fused: the gradient is `softmax(z) - onehot(label)`, never forming probabilities apart.
public final class SparseCategoricalCrossentropy: Loss {
    /// Whether predictions are logits (true) or probabilities (Keras default false).
    public let fromLogits: Bool

    /// A sparse categorical cross-entropy loss.
    public init(fromLogits: Bool = false) {
        self.fromLogits = fromLogits
        super.init(name: "sparse_categorical_crossentropy")
    }

    public override var logitsCounterpart: (activation: ActivationFunction, loss: Loss)? {
        fromLogits ? nil : (.softmax, SparseCategoricalCrossentropy(fromLogits: true))
    }

    public override func labelSize(outputShape: [Int], labelShape: [Int]) throws -> Int {
        let expected = Array(outputShape.dropLast())
        guard labelShape == expected || labelShape == expected + [1] else {
            throw KestrelError.shapeMismatch(
                "\(name): expected integer labels of per-sample shape \(expected) for predictions of shape \(outputShape), found \(labelShape)")
        }
        return expected.reduce(1, *)
    }

    public override func validate(labels: UnsafeBufferPointer<Float>, outputShape: [Int]) throws {
        let classes = outputShape.last ?? 1
        for (i, v) in labels.enumerated() where !(v >= 0 && v < Float(classes) && v == v.rounded()) {
            throw KestrelError.invalidArgument(
                "\(name): label \(v) at position \(i) is not a class index in [0, \(classes)) for a model with \(classes) outputs")
        }
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let classes = outputShape.last!
        let rows = batch * outputShape.dropLast().reduce(1, *)
        let scale = 1 / Float(rows)
        var total: Double = 0
        for r in 0..<rows {
            let z = predictions + r * classes
            let t = Int(labels[r])
            if fromLogits {
                var m = -Float.infinity
                for j in 0..<classes { m = max(m, z[j]) }
                var s: Float = 0
                for j in 0..<classes { s += expf(z[j] - m) }
                let logSum = logf(s) + m
                total += Double(logSum - z[t])
                if let g = gradient?.advanced(by: r * classes) {
                    let inv = scale / s
                    for j in 0..<classes { g[j] = expf(z[j] - m) * inv }
                    g[t] -= scale
                }
            } else {
                var s: Float = 0
                for j in 0..<classes { s += z[j] }
                let p = z[t] / s
                let clipped = min(max(p, probabilityEpsilon), 1 - probabilityEpsilon)
                total -= Double(logf(clipped))
                if let g = gradient?.advanced(by: r * classes) {
                    let active = p > probabilityEpsilon && p < 1 - probabilityEpsilon
                    for j in 0..<classes { g[j] = active ? scale / s : 0 }
                    if active { g[t] -= scale / z[t] }
                }
            }
        }
        return Float(total / Double(rows))
    }
}

/// Cross-entropy between one-hot (or soft) labels and predicted class scores
/// (Keras `CategoricalCrossentropy`), with optional label smoothing.
public final class CategoricalCrossentropy: Loss {
    /// Whether predictions are logits (true) or probabilities (Keras default false).
    public let fromLogits: Bool
    /// Mixes labels toward uniform: `t * (1 - s) + s / classes`.
    public let labelSmoothing: Float

    /// A categorical cross-entropy loss.
    public init(fromLogits: Bool = false, labelSmoothing: Float = 0) {
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        super.init(name: "categorical_crossentropy")
    }

    public override var logitsCounterpart: (activation: ActivationFunction, loss: Loss)? {
        fromLogits ? nil : (.softmax, CategoricalCrossentropy(fromLogits: true, labelSmoothing: labelSmoothing))
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let classes = outputShape.last!
        let rows = batch * outputShape.dropLast().reduce(1, *)
        let scale = 1 / Float(rows)
        let keep = 1 - labelSmoothing, spread = labelSmoothing / Float(classes)
        var total: Double = 0
        for r in 0..<rows {
            let z = predictions + r * classes, t = labels + r * classes
            var tSum: Float = 0
            for j in 0..<classes { tSum += t[j] * keep + spread }
            if fromLogits {
                var m = -Float.infinity
                for j in 0..<classes { m = max(m, z[j]) }
                var s: Float = 0
                for j in 0..<classes { s += expf(z[j] - m) }
                let logSum = logf(s) + m
                var rowLoss: Float = 0
                for j in 0..<classes { rowLoss += (t[j] * keep + spread) * (logSum - z[j]) }
                total += Double(rowLoss)
                if let g = gradient?.advanced(by: r * classes) {
                    for j in 0..<classes {
                        g[j] = scale * (expf(z[j] - logSum) * tSum - (t[j] * keep + spread))
                    }
                }
            } else {
                var s: Float = 0
                for j in 0..<classes { s += z[j] }
                var rowLoss: Float = 0
                var weighted: Float = 0
                for j in 0..<classes {
                    let p = z[j] / s
                    let tj = t[j] * keep + spread
                    rowLoss -= tj * logf(min(max(p, probabilityEpsilon), 1 - probabilityEpsilon))
                    if p > probabilityEpsilon && p < 1 - probabilityEpsilon { weighted += tj }
                }
                total += Double(rowLoss)
                if let g = gradient?.advanced(by: r * classes) {
                    // d/dz_j of -Σ t_k log(z_k / s) over unclipped terms.
                    for j in 0..<classes {
                        let p = z[j] / s
                        let tj = t[j] * keep + spread
                        let own = (p > probabilityEpsilon && p < 1 - probabilityEpsilon) ? -tj / z[j] : 0
                        g[j] = scale * (own + weighted / s)
                    }
                }
            }
        }
        return Float(total / Double(rows))
    }
}

/// Cross-entropy for independent binary targets (Keras `BinaryCrossentropy`), averaged over
/// every element. With `fromLogits` it uses the stable form `max(z,0) - z·t + log(1 + e^-|z|)`.
public final class BinaryCrossentropy: ElementwiseLoss {
    /// Whether predictions are logits (true) or probabilities (Keras default false).
    public let fromLogits: Bool
    /// Moves targets toward 0.5: `t * (1 - s) + s / 2`.
    public let labelSmoothing: Float

    /// A binary cross-entropy loss.
    public init(fromLogits: Bool = false, labelSmoothing: Float = 0) {
        self.fromLogits = fromLogits
        self.labelSmoothing = labelSmoothing
        super.init(name: "binary_crossentropy")
    }

    public override var logitsCounterpart: (activation: ActivationFunction, loss: Loss)? {
        fromLogits ? nil : (.sigmoid, BinaryCrossentropy(fromLogits: true, labelSmoothing: labelSmoothing))
    }

    public override func labelSize(outputShape: [Int], labelShape: [Int]) throws -> Int {
        // Keras accepts labels without the trailing unit axis of a one-unit output.
        if outputShape.last == 1 && labelShape == Array(outputShape.dropLast()) { return labelShape.reduce(1, *) }
        return try super.labelSize(outputShape: outputShape, labelShape: labelShape)
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let n = batch * outputShape.reduce(1, *)
        let scale = 1 / Float(n)
        var total: Double = 0
        for i in 0..<n {
            let t = labels[i] * (1 - labelSmoothing) + 0.5 * labelSmoothing
            let z = predictions[i]
            if fromLogits {
                total += Double(max(z, 0) - z * t + log1pf(expf(-abs(z))))
                gradient?[i] = scale * (1 / (1 + expf(-z)) - t)
            } else {
                let p = min(max(z, probabilityEpsilon), 1 - probabilityEpsilon)
                total -= Double(t * logf(p) + (1 - t) * logf(1 - p))
                if let g = gradient {
                    g[i] = (z > probabilityEpsilon && z < 1 - probabilityEpsilon) ? scale * (p - t) / (p * (1 - p)) : 0
                }
            }
        }
        return Float(total / Double(n))
    }
}

/// Binary cross-entropy scaled down where the prediction is already confident (Keras
/// `BinaryFocalCrossentropy`, Lin et al.'s focal loss): each term times `(1 − pₜ)^gamma`, and
/// with `applyClassBalancing` by `alpha` for positives and `1 − alpha` for negatives.
public final class BinaryFocalCrossentropy: ElementwiseLoss {
    /// Whether to weigh positives by `alpha` and negatives by `1 − alpha` (Keras default false).
    public let applyClassBalancing: Bool
    /// The positives' weight under class balancing (Keras default 0.25).
    public let alpha: Float
    /// The focusing exponent (Keras default 2; 0 gives binary cross-entropy).
    public let gamma: Float
    /// Whether predictions are logits (true) or probabilities (Keras default false).
    public let fromLogits: Bool
    /// Moves targets toward 0.5: `t·(1 − s) + s/2`.
    public let labelSmoothing: Float

    /// A binary focal cross-entropy loss with Keras's defaults.
    public init(applyClassBalancing: Bool = false, alpha: Float = 0.25, gamma: Float = 2, fromLogits: Bool = false,
                labelSmoothing: Float = 0) {
        (self.applyClassBalancing, self.alpha, self.gamma) = (applyClassBalancing, alpha, gamma)
        (self.fromLogits, self.labelSmoothing) = (fromLogits, labelSmoothing)
        super.init(name: "binary_focal_crossentropy")
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let (balanced, alpha, gamma, logits, smoothing) = (applyClassBalancing, self.alpha, self.gamma, fromLogits, labelSmoothing)
        return elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { z, y in
            let t = y * (1 - smoothing) + 0.5 * smoothing
            let p = logits ? 1 / (1 + expf(-z)) : z
            // Keras clips the probability for the cross-entropy only; pₜ uses it unclipped.
            let clipped = min(max(p, probabilityEpsilon), 1 - probabilityEpsilon)
            let inside = p > probabilityEpsilon && p < 1 - probabilityEpsilon
            let crossentropy = -(t * logf(clipped) + (1 - t) * logf(1 - clipped))
            let miss = 1 - (t * p + (1 - t) * (1 - p))
            let factor = powf(miss, gamma)
            let weight = balanced ? t * alpha + (1 - t) * (1 - alpha) : 1
            // d/dp of (1 − pₜ)^γ·bce, pₜ' = 2t − 1.
            let dFactor = miss > 0 ? -gamma * powf(miss, gamma - 1) * (2 * t - 1) : 0
            let dCrossentropy = inside ? -(t / clipped - (1 - t) / (1 - clipped)) : 0
            let derivative = weight * (dFactor * crossentropy + factor * dCrossentropy)
            return (weight * factor * crossentropy, logits ? derivative * p * (1 - p) : derivative)
        }
    }
}

/// Categorical cross-entropy scaled down where the prediction is already confident (Keras
/// `CategoricalFocalCrossentropy`): over one-hot labels along the last axis,
/// `Σ −alpha·(1 − p)^gamma·t·log p`, with predictions normalized to sum to 1 and clipped as
/// Keras does.
public final class CategoricalFocalCrossentropy: Loss {
    /// The weight of every term (Keras default 0.25).
    public let alpha: Float
    /// The focusing exponent (Keras default 2).
    public let gamma: Float
    /// Whether predictions are logits (true) or probabilities (Keras default false).
    public let fromLogits: Bool
    /// Moves one-hot targets toward uniform: `t·(1 − s) + s/classes`.
    public let labelSmoothing: Float

    /// A categorical focal cross-entropy loss with Keras's defaults.
    public init(alpha: Float = 0.25, gamma: Float = 2, fromLogits: Bool = false, labelSmoothing: Float = 0) {
        (self.alpha, self.gamma, self.fromLogits, self.labelSmoothing) = (alpha, gamma, fromLogits, labelSmoothing)
        super.init(name: "categorical_focal_crossentropy")
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let width = outputShape.last ?? 1, rows = batch * outputShape.reduce(1, *) / max(width, 1)
        let smoothing = labelSmoothing, spread = labelSmoothing / Float(width)
        var total: Double = 0
        for r in 0..<rows {
            let z = predictions + r * width, y = labels + r * width, g = gradient.map { $0 + r * width }
            // q: probabilities (softmax of logits); o = q / Σq, clipped to [ε, 1 − ε].
            let largest = fromLogits ? (0..<width).reduce(-Float.infinity) { max($0, z[$1]) } : 0
            func q(_ j: Int) -> Float { fromLogits ? expf(z[j] - largest) : z[j] }
            var sum: Float = 0
            for j in 0..<width { sum += q(j) }
            // A softmax sums to 1 already (its exponentials are scaled once); probabilities are
            // divided by their sum, as Keras does.
            let scale: Float = fromLogits ? 1 / sum : 1
            let normalizer = fromLogits ? Float(1) : sum
            var rowValue: Float = 0, weighted: Float = 0
            for j in 0..<width {
                let o = q(j) * scale / normalizer, oc = min(max(o, probabilityEpsilon), 1 - probabilityEpsilon)
                let t = y[j] * (1 - smoothing) + spread
                rowValue += alpha * powf(1 - oc, gamma) * (-t * logf(oc))
                guard let g else { continue }
                let inside = o > probabilityEpsilon && o < 1 - probabilityEpsilon
                // d/d o_j, kept in g until the normalization's Jacobian is applied.
                let dj = inside ? alpha * t * (gamma * powf(1 - oc, gamma - 1) * logf(oc) - powf(1 - oc, gamma) / oc) : 0
                g[j] = dj
                weighted += dj * o
            }
            total += Double(rowValue)
            guard let g else { continue }
            for j in 0..<width {
                // Through o = q/Σq, then (with logits) through the softmax, whose Σq·u is 0 here.
                let u = (g[j] - weighted) / normalizer
                g[j] = (fromLogits ? q(j) * scale * u : u) / Float(rows)
            }
        }
        return Float(total / Double(max(rows, 1)))
    }
}
