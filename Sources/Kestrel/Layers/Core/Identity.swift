/// Passes its input through unchanged (Keras `Identity`): a placeholder in a list of layers,
/// or a named point in a functional graph.
public final class Identity: Layer {
    public override var supportsMasking: Bool { true }
    /// An identity layer.
    public init(inputShape: [Int]? = nil, name: String? = nil) {
        super.init(name: name, inputShape: inputShape)
    }

    public override func isIdentity(training: Bool) -> Bool { true }
    public override var backwardNeedsInput: Bool { false }

    public override func forward(_ c: LayerContext) {
        c.output.update(from: c.input, count: c.batch * c.outputSize)
    }

    public override func backward(_ c: LayerContext) {
        c.inputGradient?.update(from: c.outputGradient!, count: c.batch * c.outputSize)
    }
}
