/// What RandomInvert and RandomGrayscale share: in training, each image of a batch is
/// transformed or left as it is by its own random draw (the choice kept for backward); in
/// inference the layer passes its input through.
public class RandomImageChoice: Layer {
    /// The seed fixing this layer's draws independently of the global generator, if any.
    public let seed: UInt64?

    init(seed: UInt64?, inputShape: [Int]?, name: String?) {
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    /// Checks the subclass's arguments, throwing a message that names the layer.
    func checkArguments(_ inputShape: [Int]) throws {}

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        try checkImageShape(inputShape)
        try checkArguments(inputShape)
        return inputShape
    }

    public override func isIdentity(training: Bool) -> Bool { !training }
    public override var backwardNeedsInput: Bool { false }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        training ? batch : 0   // 1 where the image was transformed
    }

    /// Whether this image is transformed (one or two draws from `generator`, in Keras's order).
    func choose(_ generator: inout RandomGenerator) -> Bool { preconditionFailure("\(className) must choose") }

    /// Transforms one image `(pixels, channels)` into `y`.
    func transform(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pixels: Int, channels: Int) {
        preconditionFailure("\(className) must transform")
    }

    /// The input gradient of one transformed image from its output gradient.
    func transformBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, pixels: Int, channels: Int) {
        preconditionFailure("\(className) must differentiate")
    }

    public override func forward(_ c: LayerContext) {
        let n = c.inputSize, channels = c.inputShapes[0][2]
        for b in 0..<c.batch {
            let chosen = choose(&c.generator)
            c.workspace[b] = chosen ? 1 : 0
            if chosen {
                transform(c.input + b * n, c.output + b * n, pixels: n / channels, channels: channels)
            } else {
                (c.output + b * n).update(from: c.input + b * n, count: n)
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let n = c.inputSize, channels = c.inputShapes[0][2], dy = c.outputGradient!
        for b in 0..<c.batch {
            if c.workspace[b] != 0 {
                transformBackward(dy + b * n, dx + b * n, pixels: n / channels, channels: channels)
            } else {
                (dx + b * n).update(from: dy + b * n, count: n)
            }
        }
    }
}

/// Inverts the pixel values of some training images, `valueRange.upperBound − x` (Keras
/// `RandomInvert`). Each image is inverted when a uniform draw falls below its own
/// probability, itself drawn from the `factor` range: `[a, b]` draws it from a…b, one number f
/// from 0…f (so Keras's default 1.0 inverts half the images), as Keras 3 does. Inference
/// passes images through.
public final class RandomInvert: RandomImageChoice {
    /// The range the inversion probability is drawn from.
    public let factor: AugmentationRange
    /// The range pixel values lie in (Keras `value_range`, default 0…255); its upper end is the
    /// value inverted about.
    public let valueRange: ClosedRange<Float>
    private var probabilities: (lower: Float, upper: Float) = (0, 0)

    /// Random inversion with Keras's defaults.
    public init(factor: AugmentationRange = 1.0, valueRange: ClosedRange<Float> = 0...255, seed: UInt64? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.factor = factor
        self.valueRange = valueRange
        super.init(seed: seed, inputShape: inputShape, name: name)
    }

    /// The range the probability is drawn from: a pair as given, one number f as 0…f.
    public var probabilityRange: (lower: Float, upper: Float)? {
        switch factor.values.count {
        case 1: return (0, abs(factor.values[0]))
        case 2: return (min(factor.values[0], factor.values[1]), max(factor.values[0], factor.values[1]))
        default: return nil
        }
    }

    override func checkArguments(_ inputShape: [Int]) throws {
        guard let p = probabilityRange, p.lower >= 0, p.upper <= 1 else {
            throw KestrelError.invalidArgument("\(name) (RandomInvert): factor must be one number or two within [0, 1], found \(factor)")
        }
        guard valueRange.upperBound.isFinite, valueRange.lowerBound.isFinite else {
            throw KestrelError.invalidArgument("\(name) (RandomInvert): valueRange must be finite, found \(valueRange)")
        }
        probabilities = p
    }

    public override var config: [String: String] {
        ["name": name, "factor": "\(factor)", "value_range": "[\(valueRange.lowerBound), \(valueRange.upperBound)]"]
    }

    override func choose(_ generator: inout RandomGenerator) -> Bool {
        let probability = AugmentationRange.draw(probabilities, &generator)
        return generator.nextUnitFloat() < probability
    }

    override func transform(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pixels: Int, channels: Int) {
        let top = valueRange.upperBound
        for i in 0..<(pixels * channels) { y[i] = top - x[i] }
    }

    override func transformBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, pixels: Int, channels: Int) {
        for i in 0..<(pixels * channels) { dx[i] = -dy[i] }
    }
}

/// Turns some training RGB images grey (Keras `RandomGrayscale`): each image, with probability
/// `factor`, gets the luma `0.2989 R + 0.587 G + 0.114 B` in all three channels. Inference
/// passes images through.
public final class RandomGrayscale: RandomImageChoice {
    /// The probability that an image is turned grey (Keras default 0.5).
    public let factor: Float

    /// Keras's luma weights (its `rgb_to_grayscale`).
    static let luma: (r: Float, g: Float, b: Float) = (0.2989, 0.587, 0.114)

    /// Random greying with Keras's default probability.
    public init(factor: Float = 0.5, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.factor = factor
        super.init(seed: seed, inputShape: inputShape, name: name)
    }

    override func checkArguments(_ inputShape: [Int]) throws {
        guard factor >= 0 && factor <= 1 else {
            throw KestrelError.invalidArgument("\(name) (RandomGrayscale): factor must be within [0, 1], found \(factor)")
        }
        guard inputShape[2] == 3 else {
            throw KestrelError.shapeMismatch(
                "\(name) (RandomGrayscale): expected RGB images (3 channels), found shape \(inputShape)")
        }
    }

    public override var config: [String: String] { ["name": name, "factor": "\(factor)"] }

    override func choose(_ generator: inout RandomGenerator) -> Bool { generator.nextUnitFloat() < factor }

    override func transform(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, pixels: Int, channels: Int) {
        let w = Self.luma
        for p in 0..<pixels {
            let grey = w.r * x[3 * p] + w.g * x[3 * p + 1] + w.b * x[3 * p + 2]
            y[3 * p] = grey
            y[3 * p + 1] = grey
            y[3 * p + 2] = grey
        }
    }

    override func transformBackward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, pixels: Int, channels: Int) {
        let w = Self.luma
        for p in 0..<pixels {
            let g = dy[3 * p] + dy[3 * p + 1] + dy[3 * p + 2]
            dx[3 * p] = w.r * g
            dx[3 * p + 1] = w.g * g
            dx[3 * p + 2] = w.b * g
        }
    }
}
