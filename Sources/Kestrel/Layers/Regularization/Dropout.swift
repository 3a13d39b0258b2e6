import CKestrelKernels

/// Randomly sets a fraction `rate` of inputs to zero during training and scales the rest by
/// `1 / (1 - rate)`; the identity in inference (Keras `Dropout`).
public final class Dropout: Layer {
    public override var supportsMasking: Bool { true }
    /// The fraction of inputs dropped.
    public let rate: Float

    /// A dropout layer; `seed` fixes its masks independently of the global generator.
    public init(_ rate: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.rate = rate
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard rate >= 0 && rate < 1 else {
            throw KestrelError.invalidArgument("\(name) (Dropout): rate must be in [0, 1), found \(rate)")
        }
        return inputShape
    }

    public override var config: [String: String] { ["name": name, "rate": "\(rate)"] }
    public override func isIdentity(training: Bool) -> Bool { !training || rate == 0 }
    public override var backwardNeedsInput: Bool { false }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        training ? batch * inputShapes[0].reduce(1, *) : 0
    }

    public override func forward(_ c: LayerContext) {
        // One draw from the layer's generator seeds the whole mask, whose chunks the C loop
        // shares over threads.
        kestrel_dropout_forward(c.input, c.output, c.workspace, c.batch * c.outputSize, rate, c.generator.next())
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        kestrel_dropout_backward(c.outputGradient!, c.workspace, dx, c.batch * c.outputSize)
    }
}
