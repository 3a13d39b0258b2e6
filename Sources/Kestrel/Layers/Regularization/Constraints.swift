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

    /// Projects a weight of `shape` in place, without scratch memory: a training step applies
    /// constraints after every update and must not allocate, whatever the weight's size.
    public func apply(_ w: UnsafeMutablePointer<Float>, shape: [Int]) {
        let count = shape.reduce(1, *)
        guard count > 0 else { return }
        switch self {
        case .nonNeg:
            for i in 0..<count where !(w[i] >= 0) { w[i] = 0 }
        case .maxNorm(_, let axes), .unitNorm(let axes):
            let rank = shape.count
            // Each slice (one index per kept axis) is scaled by its L2 norm over the reduced
            // axes; its elements are visited in place through the weight's row-major strides.
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * max(rank, 1)) { scratch in
                let strides = scratch.baseAddress!, order = strides + rank, index = order + rank
                var size = 1
                for a in stride(from: rank - 1, through: 0, by: -1) { strides[a] = size; size *= shape[a] }
                func isReduced(_ a: Int) -> Bool { axes.contains { ($0 < 0 ? $0 + rank : $0) == a } }
                var kept = 0
                for a in 0..<rank where !isReduced(a) { order[kept] = a; kept += 1 }
                var next = kept
                for a in 0..<rank where isReduced(a) { order[next] = a; next += 1 }

                // Calls body with the offset of every index over the axes order[lo..<hi], from base.
                func visit(_ lo: Int, _ hi: Int, from base: Int, _ body: (Int) -> Void) {
                    for k in lo..<hi { index[k] = 0 }
                    var offset = base
                    while true {
                        body(offset)
                        var k = hi - 1
                        while k >= lo {
                            let a = order[k]
                            index[k] += 1
                            offset += strides[a]
                            if index[k] < shape[a] { break }
                            offset -= index[k] * strides[a]
                            index[k] = 0
                            k -= 1
                        }
                        if k < lo { return }
                    }
                }
                visit(0, kept, from: 0) { base in
                    var sum: Double = 0
                    visit(kept, rank, from: base) { sum += Double(w[$0]) * Double(w[$0]) }
                    let norm = Float(sum.squareRoot())
                    let factor: Float
                    if case .maxNorm(let maxValue, _) = self {
                        factor = min(max(norm, 0), maxValue) / (Constraint.epsilon + norm)
                    } else {
                        factor = 1 / (Constraint.epsilon + norm)
                    }
                    visit(kept, rank, from: base) { w[$0] *= factor }
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
