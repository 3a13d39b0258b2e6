import Foundation

/// A projection applied to a weight after each optimizer step (Keras `keras.constraints`).
public enum Constraint: Sendable, Equatable {
    /// Rescales each slice along `axes` whose L2 norm exceeds `maxValue` down to it
    /// (Keras `MaxNorm`, defaults 2 and axis 0).
    case maxNorm(maxValue: Float, axes: [Int])
    /// Sets negative weights to zero (Keras `NonNeg`).
    case nonNeg
    /// Scales each slice along `axes` to unit L2 norm (Keras `UnitNorm`, default axis 0).
    case unitNorm(axes: [Int])

    /// MaxNorm with Keras's defaults (max value 2, axis 0: per output unit of a Dense kernel;
    /// use axes `[0, 1, 2]` for a Conv2D kernel).
    public static func maxNorm(_ maxValue: Float = 2, axis: Int = 0) -> Constraint {
        .maxNorm(maxValue: maxValue, axes: [axis])
    }
    /// UnitNorm with Keras's default axis 0.
    public static var unitNorm: Constraint { .unitNorm(axes: [0]) }

    /// The Keras class name.
    public var kerasName: String {
        switch self {
        case .maxNorm: "MaxNorm"
        case .nonNeg: "NonNeg"
        case .unitNorm: "UnitNorm"
        }
    }

    /// Keras's `backend.epsilon()`, added to norms before dividing.
    static let epsilon: Float = 1e-7

    /// Projects a weight of `shape` in place. Norm scratch lives on the stack for weights of
    /// ordinary size, so this does not allocate in a training step.
    public func apply(_ w: UnsafeMutablePointer<Float>, shape: [Int]) {
        let count = shape.reduce(1, *)
        switch self {
        case .nonNeg:
            for i in 0..<count where !(w[i] >= 0) { w[i] = 0 }
        case .maxNorm(_, let axes), .unitNorm(let axes):
            let rank = shape.count
            withUnsafeTemporaryAllocation(of: Int.self, capacity: max(rank, 1)) { keptStride in
                // Kept axes index the norms: their row-major strides over the kept shape
                // (0 for reduced axes).
                var slices = 1
                for a in stride(from: rank - 1, through: 0, by: -1) {
                    let reduced = axes.contains { ($0 < 0 ? $0 + rank : $0) == a }
                    keptStride[a] = reduced ? 0 : slices
                    if !reduced { slices *= shape[a] }
                }
                withUnsafeTemporaryAllocation(of: Double.self, capacity: slices) { norms in
                    norms.initialize(repeating: 0)
                    func slice(_ i: Int) -> Int {
                        var rest = i, index = 0
                        for a in stride(from: rank - 1, through: 0, by: -1) {
                            index += (rest % shape[a]) * keptStride[a]
                            rest /= shape[a]
                        }
                        return index
                    }
                    for i in 0..<count { norms[slice(i)] += Double(w[i]) * Double(w[i]) }
                    for s in 0..<slices {
                        let norm = Float(norms[s].squareRoot())
                        if case .maxNorm(let maxValue, _) = self {
                            norms[s] = Double(min(max(norm, 0), maxValue) / (Constraint.epsilon + norm))
                        } else {
                            norms[s] = Double(1 / (Constraint.epsilon + norm))
                        }
                    }
                    for i in 0..<count { w[i] *= Float(norms[slice(i)]) }
                }
            }
        }
    }

    /// The constraint applied to a tensor (for tests and custom loops).
    public func callAsFunction(_ w: Tensor) -> Tensor {
        var out = w
        out.scalars.withUnsafeMutableBufferPointer { apply($0.baseAddress!, shape: w.shape) }
        return out
    }
}
