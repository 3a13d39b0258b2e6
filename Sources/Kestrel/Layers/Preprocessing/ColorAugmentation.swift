/// What the random colour augmentations share: in training each image gets its own random
/// value and the result is clipped to `valueRange`, as Keras does; in inference the layer
/// passes its input through.
public class ColorAugmentation: Layer {
    /// The range pixel values lie in (Keras `value_range`, default 0…255); outputs are clipped to it.
    public let valueRange: ClosedRange<Float>
    /// The seed fixing this layer's draws independently of the global generator, if any.
    public let seed: UInt64?

    /// The ends the subclass draws from, set when the layer is built.
    var drawRange: (lower: Float, upper: Float) = (0, 0)

    init(valueRange: ClosedRange<Float>, seed: UInt64?, inputShape: [Int]?, name: String?) {
        self.valueRange = valueRange
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    /// The subclass's checked range of draws, throwing a message that names the layer.
    func resolveDrawRange() throws -> (lower: Float, upper: Float) {
        preconditionFailure("\(className) must resolve its factor")
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        try checkImageShape(inputShape)
        guard valueRange.lowerBound.isFinite, valueRange.upperBound.isFinite else {
            throw KestrelError.invalidArgument("\(name) (\(className)): valueRange must be finite, found \(valueRange)")
        }
        drawRange = try resolveDrawRange()
        return inputShape
    }

    public override func isIdentity(training: Bool) -> Bool { !training }

    var sharedConfig: [String: String] {
        ["name": name, "value_range": "[\(valueRange.lowerBound), \(valueRange.upperBound)]",
         "seed": seed.map { "\($0)" } ?? "None"]
    }

    /// Whether a pre-clip value reaches the output (the clip's derivative, 1 inside the range).
    @inline(__always) func passes(_ z: Float) -> Bool { z >= valueRange.lowerBound && z <= valueRange.upperBound }

    @inline(__always) func clip(_ z: Float) -> Float { min(max(z, valueRange.lowerBound), valueRange.upperBound) }
}

/// Scales each training image's contrast by a random factor (Keras `RandomContrast`): every
/// pixel moves away from (or towards) its channel's mean over the image, `(x − mean) · c + mean`,
/// clipped to `valueRange`. `factor` 0.2 draws c from 0.8…1.2; `[a, b]` from 1 − a…1 + b.
/// Inference passes images through.
///
/// Keras 3.x's implementation turns a single number f into the pair `[0, f]` (so contrast is
/// only ever raised, 1…1 + f), against its documentation; Kestrel follows the documentation.
/// `.keras` archives carry the pair, so a model saved by either reads the same in the other.
public final class RandomContrast: ColorAugmentation {
    /// The range of contrast factors, relative to 1.
    public let factor: AugmentationRange

    /// Random contrast changes by up to `factor` either way, clipped to `valueRange`.
    public init(_ factor: AugmentationRange, valueRange: ClosedRange<Float> = 0...255, seed: UInt64? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.factor = factor
        super.init(valueRange: valueRange, seed: seed, inputShape: inputShape, name: name)
    }

    /// The contrast factors drawn from: `1 − lower … 1 + upper` of the factor's ends.
    public var contrastRange: (lower: Float, upper: Float)? {
        switch factor.values.count {
        case 1: return (1 - factor.values[0], 1 + factor.values[0])
        case 2: return (1 - min(factor.values[0], factor.values[1]), 1 + max(factor.values[0], factor.values[1]))
        default: return nil
        }
    }

    override func resolveDrawRange() throws -> (lower: Float, upper: Float) {
        let valid = factor.values.count == 1 ? (0...1).contains(factor.values[0])
            : factor.values.count == 2 && factor.values.allSatisfy { (-1...1).contains($0) }
        guard valid, let range = contrastRange else {
            throw KestrelError.invalidArgument(
                "\(name) (RandomContrast): factor must be one number within [0.0, 1.0] or two within [-1.0, 1.0], found \(factor)")
        }
        return range
    }

    public override var config: [String: String] { sharedConfig.merging(["factor": "\(factor)"]) { $1 } }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        training ? batch * (1 + inputShapes[0][2]) + inputShapes[0][2] : 0
    }

    /// Each channel's mean over one image, in double precision, written to `means`.
    private func channelMeans(_ x: UnsafePointer<Float>, pixels: Int, channels: Int, _ means: UnsafeMutablePointer<Float>) {
        for k in 0..<channels {
            var sum = 0.0
            for p in 0..<pixels { sum += Double(x[p * channels + k]) }
            means[k] = Float(sum / Double(pixels))
        }
    }

    public override func forward(_ c: LayerContext) {
        // The workspace: each image's factor, then each image's channel means (kept for backward).
        let channels = c.inputShapes[0][2], size = c.inputSize, pixels = size / channels
        for n in 0..<c.batch {
            let f = AugmentationRange.draw(drawRange, &c.generator)
            c.workspace[n] = f
            let x = c.input + n * size, y = c.output + n * size, means = c.workspace + c.batch + n * channels
            channelMeans(x, pixels: pixels, channels: channels, means)
            for p in 0..<pixels {
                for k in 0..<channels { y[p * channels + k] = clip((x[p * channels + k] - means[k]) * f + means[k]) }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        // y = clip(z), z = (x − m)·f + m with m the channel mean: dx = f·g + (1 − f)·mean(g),
        // g the output gradient where the clip passes z through.
        let channels = c.inputShapes[0][2], size = c.inputSize, pixels = size / channels
        let gradientMeans = c.workspace + c.batch * (1 + channels)
        for n in 0..<c.batch {
            let f = c.workspace[n], means = c.workspace + c.batch + n * channels
            let x = c.input + n * size, g = dy + n * size, d = dx + n * size
            for k in 0..<channels { gradientMeans[k] = 0 }
            for p in 0..<pixels {
                for k in 0..<channels {
                    let i = p * channels + k
                    let passed = passes((x[i] - means[k]) * f + means[k]) ? g[i] : 0
                    d[i] = passed
                    gradientMeans[k] += passed
                }
            }
            for k in 0..<channels { gradientMeans[k] *= (1 - f) / Float(pixels) }
            for p in 0..<pixels {
                for k in 0..<channels { d[p * channels + k] = f * d[p * channels + k] + gradientMeans[k] }
            }
        }
    }
}

/// Adds a random amount to every pixel of each training image (Keras `RandomBrightness`):
/// `factor` is a fraction of `valueRange`'s width (0.2 adds −51…51 to 0…255 images), the
/// result clipped to `valueRange`. Inference passes images through.
public final class RandomBrightness: ColorAugmentation {
    /// The range of changes, as fractions of the value range.
    public let factor: AugmentationRange

    /// Random brightness changes by up to `factor` of the value range either way.
    public init(_ factor: AugmentationRange, valueRange: ClosedRange<Float> = 0...255, seed: UInt64? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.factor = factor
        super.init(valueRange: valueRange, seed: seed, inputShape: inputShape, name: name)
    }

    override func resolveDrawRange() throws -> (lower: Float, upper: Float) {
        try factor.resolved("factor", "\(name) (RandomBrightness)", allowed: -1...1)
    }

    public override var config: [String: String] { sharedConfig.merging(["factor": "\(factor)"]) { $1 } }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int { training ? batch : 0 }

    public override func forward(_ c: LayerContext) {
        let size = c.inputSize
        for n in 0..<c.batch {
            // Keras draws the fraction, then scales it by the range's width.
            let delta = AugmentationRange.draw(drawRange, &c.generator) * (valueRange.upperBound - valueRange.lowerBound)
            c.workspace[n] = delta
            let x = c.input + n * size, y = c.output + n * size
            for i in 0..<size { y[i] = clip(x[i] + delta) }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        let size = c.inputSize
        for n in 0..<c.batch {
            let delta = c.workspace[n], x = c.input + n * size, g = dy + n * size, d = dx + n * size
            for i in 0..<size { d[i] = passes(x[i] + delta) ? g[i] : 0 }
        }
    }
}
