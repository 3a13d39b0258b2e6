/// Passes its input through and adds a penalty on it to the loss (Keras
/// `ActivityRegularization`): `(l1 · Σ|x| + l2 · Σx²) / batch size` per step, as Keras 3
/// divides activity penalties by the batch size. It is the identity in prediction.
public final class ActivityRegularization: Layer {
    public override var supportsMasking: Bool { true }

    /// The factor of the sum of absolute values (Keras default 0).
    public let l1: Float
    /// The factor of the sum of squares (Keras default 0).
    public let l2: Float

    /// An activity penalty of the inputs with factors `l1` and `l2`.
    public init(l1: Float = 0, l2: Float = 0, inputShape: [Int]? = nil, name: String? = nil) {
        self.l1 = l1
        self.l2 = l2
        super.init(name: name, inputShape: inputShape)
        activityRegularizer = Regularizer(l1: l1, l2: l2)
    }

    public override var config: [String: String] { ["name": name, "l1": "\(l1)", "l2": "\(l2)"] }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard l1 >= 0, l2 >= 0 else {
            throw KestrelError.invalidArgument("\(name) (ActivityRegularization): l1 and l2 must not be negative, found \(l1) and \(l2)")
        }
        return inputShape
    }

    // The plan aliases the output to the input (these copies run only outside a plan); the
    // penalty's gradient joins the output's gradient there.
    public override func isIdentity(training: Bool) -> Bool { true }
    public override var backwardNeedsInput: Bool { false }

    public override func forward(_ c: LayerContext) {
        c.output.update(from: c.input, count: c.batch * c.outputSize)
    }

    public override func backward(_ c: LayerContext) {
        c.inputGradient?.update(from: c.outputGradient!, count: c.batch * c.outputSize)
    }
}
