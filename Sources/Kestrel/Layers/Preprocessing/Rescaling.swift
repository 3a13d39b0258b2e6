/// Multiplies every input by `scale` and adds `offset` (Keras `Rescaling`): `Rescaling(1 / 255)`
/// turns pixel values 0…255 into 0…1 inside the model, so that it takes raw images.
public final class Rescaling: Layer {
    public override var supportsMasking: Bool { true }
    /// The factor every input is multiplied by.
    public let scale: Float
    /// The value added after scaling (Keras default 0).
    public let offset: Float

    /// A layer computing `input · scale + offset`.
    public init(_ scale: Float, offset: Float = 0, inputShape: [Int]? = nil, name: String? = nil) {
        self.scale = scale
        self.offset = offset
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard scale.isFinite, offset.isFinite else {
            throw KestrelError.invalidArgument("\(name) (Rescaling): scale and offset must be finite, found \(scale) and \(offset)")
        }
        return inputShape
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "scale": "\(scale)", "offset": "\(offset)"] }

    public override func forward(_ c: LayerContext) {
        let (x, y, scale, offset) = (c.input, c.output, scale, offset)
        for i in 0..<(c.batch * c.inputSize) { y[i] = x[i] * scale + offset }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        let scale = scale
        for i in 0..<(c.batch * c.inputSize) { dx[i] = dy[i] * scale }
    }
}
