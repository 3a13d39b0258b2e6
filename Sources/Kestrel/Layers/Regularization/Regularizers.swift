/// A penalty on a weight's size added to the loss (Keras `keras.regularizers`): `l1 · Σ|w|
/// + l2 · Σw²`. Keras's `L1`, `L2` and `L1L2` are `.l1(_:)`, `.l2(_:)` and `.l1l2(l1:l2:)`.
public struct Regularizer: Sendable, Equatable, CustomStringConvertible {
    /// The factor of the sum of absolute values.
    public let l1: Float
    /// The factor of the sum of squares.
    public let l2: Float

    /// A penalty with both factors (Keras `L1L2`, defaults 0 and 0).
    public init(l1: Float = 0, l2: Float = 0) {
        self.l1 = l1
        self.l2 = l2
    }

    /// `factor · Σ|w|` (Keras `L1`, default 0.01).
    public static func l1(_ factor: Float = 0.01) -> Regularizer { Regularizer(l1: factor) }
    /// `factor · Σw²` (Keras `L2`, default 0.01).
    public static func l2(_ factor: Float = 0.01) -> Regularizer { Regularizer(l2: factor) }
    /// `l1 · Σ|w| + l2 · Σw²` (Keras `L1L2`, defaults 0 and 0).
    public static func l1l2(l1: Float = 0, l2: Float = 0) -> Regularizer { Regularizer(l1: l1, l2: l2) }

    /// The Keras class name.
    public var kerasName: String { l1 != 0 && l2 != 0 ? "L1L2" : l1 != 0 ? "L1" : l2 != 0 ? "L2" : "L1L2" }

    public var description: String { "\(kerasName)(l1: \(l1), l2: \(l2))" }

    /// The penalty of `count` weights; adds its gradient, times `gradientScale`, to `gradient`
    /// when given.
    public func penalty(_ w: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>?,
                        gradientScale: Float = 1) -> Float {
        var absolute: Double = 0, squares: Double = 0
        for i in 0..<count {
            absolute += Double(abs(w[i]))
            squares += Double(w[i] * w[i])
        }
        if let gradient {
            // d|w|/dw taken as sign(w), 0 at 0: TensorFlow's and PyTorch's choice (Keras on JAX takes 1).
            let l1 = gradientScale * self.l1, twoL2 = gradientScale * 2 * l2
            for i in 0..<count {
                let sign: Float = w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0
                gradient[i] += l1 * sign + twoL2 * w[i]
            }
        }
        return Float(Double(l1) * absolute + Double(l2) * squares)
    }

    /// The penalty of a tensor (for tests and custom loops).
    public func callAsFunction(_ w: Tensor) -> Float {
        w.scalars.withUnsafeBufferPointer { penalty($0.baseAddress!, count: $0.count, gradient: nil) }
    }
}

/// The summed penalty of a layer's weights, `regularizers[i]` applying to weight `i` (nil: none).
func weightPenalty(_ layer: Layer, _ regularizers: [Regularizer?], addGradients: Bool) -> Float {
    guard layer.trainable else { return 0 }
    var total: Float = 0
    for (i, r) in regularizers.enumerated() {
        guard let r, i < layer.weightSpecs.count else { continue }
        total += r.penalty(layer.weightPointer(i), count: layer.weightSpecs[i].count,
                           gradient: addGradients ? layer.gradientPointer(i) : nil)
    }
    return total
}

/// Applies `constraints[i]` to weight `i` of a layer (nil: none).
func constrainWeights(_ layer: Layer, _ constraints: [Constraint?]) {
    guard layer.trainable else { return }
    for (i, c) in constraints.enumerated() {
        guard let c, i < layer.weightSpecs.count else { continue }
        c.apply(layer.weightPointer(i), shape: layer.weightSpecs[i].shape)
    }
}
