/// The entry point of a model: declares the per-sample input shape (Keras `InputLayer`).
///
/// Create it through `Input(shape:name:)`, which returns a symbolic tensor, or place an
/// `InputLayer` first in a `Sequential`.
public final class InputLayer: Layer {
    /// The per-sample shape (no batch axis).
    public let shape: [Int]

    /// An input layer for samples of `shape`.
    public init(shape: [Int], name: String? = nil) {
        self.shape = shape
        super.init(name: name ?? LayerNames.unique(for: "input_layer"), inputShape: shape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape == shape else {
            throw KestrelError.shapeMismatch("\(name) (InputLayer): expected samples of shape \(shape), found \(inputShape)")
        }
        return shape
    }

    public override func isIdentity(training: Bool) -> Bool { true }
    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "batch_shape": "\([nil] + shape.map { Optional($0) })"] }
}

