import Foundation

/// Scales each sample to unit L2 norm along `axis` (Keras `UnitNormalization`): `x / ‖x‖`,
/// with the norm floored at 1e-12 as Keras does, so zero vectors stay zero.
public final class UnitNormalization: Layer {
    public override var supportsMasking: Bool { true }
    /// The axes normalised over, counted in the full tensor (negative from the end; the batch
    /// axis 0 is not allowed). Several axes must be adjacent.
    public let axis: [Int]

    /// The smallest norm divided by (Keras's 1e-12).
    static let smallestNorm: Float = 1e-12

    /// A unit normalization over the last axis by default.
    public init(axis: Int = -1, inputShape: [Int]? = nil, name: String? = nil) {
        self.axis = [axis]
        super.init(name: name, inputShape: inputShape)
    }

    /// A unit normalization over several adjacent axes (Keras `axis=[1, 2]`).
    public init(axes: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        self.axis = axes
        super.init(name: name, inputShape: inputShape)
    }

    /// The normalised axes within a sample's shape, sorted.
    public func sampleAxes(_ shape: [Int]) throws -> [Int] {
        var axes: [Int] = []
        for a in axis {
            let s = a < 0 ? shape.count + a : a - 1
            guard s >= 0 && s < shape.count else {
                throw KestrelError.invalidArgument(
                    "\(name) (UnitNormalization): axis \(a) is out of range for samples of shape \(shape) (batch axis 0 not allowed)")
            }
            axes.append(s)
        }
        axes = Array(Set(axes)).sorted()
        guard !axes.isEmpty, axes.last! - axes.first! == axes.count - 1 else {
            throw KestrelError.invalidArgument(
                "\(name) (UnitNormalization): the axes \(axis) must be adjacent, found \(axes.map { $0 + 1 }) for samples of shape \(shape)")
        }
        return axes
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        _ = try sampleAxes(inputShape)
        return inputShape
    }

    public override var config: [String: String] {
        ["name": name, "axis": axis.count == 1 ? "\(axis[0])" : "\(axis)"]
    }

    // Outer blocks, the normalised length and the stride between its elements; set at build.
    private var outerCount = 0, length = 0, inner = 0

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let shape = shapes[0], axes = try sampleAxes(shape)
        outerCount = shape[..<axes.first!].reduce(1, *)
        length = shape[axes.first!...axes.last!].reduce(1, *)
        inner = shape[(axes.last! + 1)...].reduce(1, *)
        return []
    }

    /// 1 / max(‖v‖, 1e-12) of one normalised vector.
    @inline(__always)
    private func inverseNorm(_ x: UnsafeMutablePointer<Float>, _ base: Int) -> Float {
        var s: Float = 0
        for k in 0..<length { let v = x[base + k * inner]; s += v * v }
        return 1 / max(s.squareRoot(), Self.smallestNorm)
    }

    public override func forward(_ c: LayerContext) {
        let x = c.input, y = c.output
        for o in 0..<(c.batch * outerCount) {
            for i in 0..<inner {
                let base = o * length * inner + i
                let inv = inverseNorm(x, base)
                for k in 0..<length { y[base + k * inner] = x[base + k * inner] * inv }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let x = c.input, y = c.output, dy = c.outputGradient!
        for o in 0..<(c.batch * outerCount) {
            for i in 0..<inner {
                let base = o * length * inner + i
                let inv = inverseNorm(x, base)
                if inv >= 1 / Self.smallestNorm {
                    // The floored norm is a constant: the output is x scaled by it.
                    for k in 0..<length { dx[base + k * inner] = dy[base + k * inner] * inv }
                    continue
                }
                // d(x/‖x‖) = (dy − y·(y·dy)) / ‖x‖.
                var dot: Float = 0
                for k in 0..<length { dot += y[base + k * inner] * dy[base + k * inner] }
                for k in 0..<length {
                    dx[base + k * inner] = inv * (dy[base + k * inner] - y[base + k * inner] * dot)
                }
            }
        }
    }
}
