/// Flattens each sample to one axis (Keras `Flatten`). Costs nothing in a plan: the output
/// shares the input's buffer.
public final class Flatten: Layer {
    /// A flatten layer; `inputShape` declares the model's input when the layer comes first.
    public init(inputShape: [Int]? = nil, name: String? = nil) {
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        [inputShape.reduce(1, *)]
    }

    public override func isIdentity(training: Bool) -> Bool { true }
    public override var backwardNeedsInput: Bool { false }
}

/// Gives each sample a new shape with the same number of elements; one axis may be -1
/// (Keras `Reshape`). Shares its input's buffer in a plan.
public final class Reshape: Layer {
    /// The per-sample target shape.
    public let targetShape: [Int]

    /// A reshape layer to `targetShape` (per sample, no batch axis).
    public init(_ targetShape: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        self.targetShape = targetShape
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let count = inputShape.reduce(1, *)
        var dims = targetShape
        let unknown = dims.indices.filter { dims[$0] == -1 }
        let known = dims.filter { $0 != -1 }.reduce(1, *)
        let fail = KestrelError.shapeMismatch(
            "\(name) (Reshape): cannot reshape samples of shape \(inputShape) (\(count) elements) to \(targetShape)")
        guard unknown.count <= 1, dims.allSatisfy({ $0 > 0 || $0 == -1 }), known > 0 else { throw fail }
        if let u = unknown.first {
            guard count % known == 0 else { throw fail }
            dims[u] = count / known
        }
        guard dims.reduce(1, *) == count else { throw fail }
        return dims
    }

    public override func isIdentity(training: Bool) -> Bool { true }
    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "target_shape": "\(targetShape)"] }
}
