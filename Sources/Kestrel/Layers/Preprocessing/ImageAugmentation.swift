import Foundation

/// The range a random augmentation draws from (Keras `factor`): `0.2` means −0.2…0.2 and
/// `[-0.1, 0.3]` −0.1…0.3 (the two ends in either order).
public struct AugmentationRange: Sendable, Equatable, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, CustomStringConvertible {
    /// The values as given: one (a symmetric range) or two (its ends).
    public let values: [Float]

    /// The range −|factor|…|factor|.
    public init(_ factor: Float) { values = [factor] }
    /// The range between two ends.
    public init(_ lower: Float, _ upper: Float) { values = [lower, upper] }
    public init(floatLiteral value: Float) { values = [value] }
    public init(integerLiteral value: Int) { values = [Float(value)] }
    public init(arrayLiteral elements: Float...) { values = elements }

    /// The lower and upper ends, or nil when neither one nor two values were given.
    public var bounds: (lower: Float, upper: Float)? {
        switch values.count {
        case 1: return (-abs(values[0]), abs(values[0]))
        case 2: return (min(values[0], values[1]), max(values[0], values[1]))
        default: return nil
        }
    }

    public var description: String { values.count == 1 ? "\(values[0])" : "\(values)" }

    /// The ends, checked to lie in `allowed` (Keras's bounds for the argument).
    func resolved(_ argument: String, _ describe: String, allowed: ClosedRange<Float>, lowerExcluded: Bool = false) throws
        -> (lower: Float, upper: Float) {
        guard let b = bounds, b.lower.isFinite, b.upper.isFinite, allowed.contains(b.lower), allowed.contains(b.upper),
              !lowerExcluded || (b.lower > allowed.lowerBound && b.upper > allowed.lowerBound) else {
            let interval = lowerExcluded ? "(\(allowed.lowerBound), \(allowed.upperBound)]" : "[\(allowed.lowerBound), \(allowed.upperBound)]"
            throw KestrelError.invalidArgument(
                "\(describe): \(argument) must be one number or two, within \(interval), found \(self)")
        }
        return b
    }

    /// A value drawn uniformly from `lower…upper` (as Keras's `minval + (maxval − minval) · u`).
    static func draw(_ b: (lower: Float, upper: Float), _ generator: inout RandomGenerator) -> Float {
        b.lower + (b.upper - b.lower) * generator.nextUnitFloat()
    }
}

/// What the random geometric augmentations share: in training each sample gets its own affine
/// transform, resampled with `interpolation` and `fillMode` as Keras's JAX backend does;
/// in inference the layer passes its input through.
public class AffineAugmentation: Layer {
    /// How pixels brought in from outside the image are filled (Keras default "reflect").
    public let fillMode: FillMode
    /// How the image is resampled (Keras default "bilinear").
    public let interpolation: Interpolation
    /// The value of pixels from outside the image when `fillMode` is `.constant`.
    public let fillValue: Float
    /// The seed fixing this layer's draws independently of the global generator, if any.
    public let seed: UInt64?

    private var sampler: AffineSampler?

    init(fillMode: FillMode, interpolation: Interpolation, fillValue: Float, seed: UInt64?, inputShape: [Int]?, name: String?) {
        self.fillMode = fillMode
        self.interpolation = interpolation
        self.fillValue = fillValue
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    /// Checks the subclass's arguments, throwing a message that names the layer.
    func validateArguments() throws {}

    /// Writes one sample's transform (a0, a1, a2, b0, b1, b2) to `t`: output pixel (y, x) reads
    /// the input at column a0·x + a1·y + a2 and row b0·x + b1·y + b2.
    func drawTransform(_ t: UnsafeMutablePointer<Float>, height: Int, width: Int, generator: inout RandomGenerator) {
        preconditionFailure("\(className) must draw its transforms")
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        try checkImageShape(inputShape)
        try validateArguments()
        sampler = AffineSampler(height: inputShape[0], width: inputShape[1], channels: inputShape[2],
                                interpolation: interpolation, fillMode: fillMode, fillValue: fillValue)
        return inputShape
    }

    public override func isIdentity(training: Bool) -> Bool { !training }
    public override var backwardNeedsInput: Bool { false }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        training ? 6 * batch : 0
    }

    /// The arguments every geometric augmentation shares, for `config`.
    var sharedConfig: [String: String] {
        ["name": name, "fill_mode": fillMode.rawValue, "interpolation": interpolation.rawValue,
         "fill_value": "\(fillValue)", "seed": seed.map { "\($0)" } ?? "None"]
    }

    public override func forward(_ c: LayerContext) {
        let sampler = sampler!, size = c.inputSize
        for n in 0..<c.batch {
            let t = c.workspace + 6 * n
            drawTransform(t, height: sampler.height, width: sampler.width, generator: &c.generator)
            sampler.forward(c.input + n * size, c.output + n * size, t)
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        let sampler = sampler!, size = c.inputSize
        dx.update(repeating: 0, count: c.batch * size)
        for n in 0..<c.batch { sampler.backward(dy + n * size, dx + n * size, c.workspace + 6 * n) }
    }
}

/// Rotates each training image by a random angle, `factor` turns (fractions of 360°) either
/// way, about its centre (Keras `RandomRotation`); inference passes images through.
public final class RandomRotation: AffineAugmentation {
    /// The range of angles, in turns (0.1 is ±36°).
    public let factor: AugmentationRange
    private var turns: (lower: Float, upper: Float) = (0, 0)

    /// Random rotations by up to `factor` turns; Keras's defaults fill by reflection and
    /// resample bilinearly.
    public init(_ factor: AugmentationRange, fillMode: FillMode = .reflect, interpolation: Interpolation = .bilinear,
                seed: UInt64? = nil, fillValue: Float = 0, inputShape: [Int]? = nil, name: String? = nil) {
        self.factor = factor
        super.init(fillMode: fillMode, interpolation: interpolation, fillValue: fillValue, seed: seed,
                   inputShape: inputShape, name: name)
    }

    override func validateArguments() throws {
        turns = try factor.resolved("factor", "\(name) (RandomRotation)", allowed: -1...1)
    }

    public override var config: [String: String] { sharedConfig.merging(["factor": "\(factor)"]) { $1 } }

    override func drawTransform(_ t: UnsafeMutablePointer<Float>, height: Int, width: Int, generator: inout RandomGenerator) {
        // Keras's matrix for a rotation about ((w − 1)/2, (h − 1)/2), in float32 as it computes it.
        let degrees = AugmentationRange.draw((turns.lower * 360, turns.upper * 360), &generator)
        let angle = degrees * (Float.pi / 180)
        let (cosine, sine) = (cos(angle), sin(angle))
        let cx = 0.5 * Float(width - 1), cy = 0.5 * Float(height - 1)
        t[0] = cosine; t[1] = -sine; t[2] = cx - cx * t[0] - cy * t[1]
        t[3] = sine; t[4] = cosine; t[5] = cy - cx * t[3] - cy * t[4]
    }
}

/// Zooms each training image by a random factor about its centre (Keras `RandomZoom`): a
/// positive `heightFactor` zooms out (the image shrinks, the border filled by `fillMode`), a
/// negative one in; `widthFactor` nil keeps the aspect ratio. Inference passes images through.
public final class RandomZoom: AffineAugmentation {
    /// The range of relative zoom along the height (−0.2…0.3: 20 % in to 30 % out).
    public let heightFactor: AugmentationRange
    /// The range along the width; nil zooms the width as the height.
    public let widthFactor: AugmentationRange?
    private var heightRange: (lower: Float, upper: Float) = (0, 0)
    private var widthRange: (lower: Float, upper: Float)?

    /// Random zooms by `heightFactor` (and `widthFactor`); Keras's defaults otherwise.
    public init(heightFactor: AugmentationRange, widthFactor: AugmentationRange? = nil, fillMode: FillMode = .reflect,
                interpolation: Interpolation = .bilinear, seed: UInt64? = nil, fillValue: Float = 0,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.heightFactor = heightFactor
        self.widthFactor = widthFactor
        super.init(fillMode: fillMode, interpolation: interpolation, fillValue: fillValue, seed: seed,
                   inputShape: inputShape, name: name)
    }

    override func validateArguments() throws {
        let describe = "\(name) (RandomZoom)"
        heightRange = try heightFactor.resolved("heightFactor", describe, allowed: -1...1, lowerExcluded: true)
        widthRange = try widthFactor.map { try $0.resolved("widthFactor", describe, allowed: -1...1, lowerExcluded: true) }
    }

    public override var config: [String: String] {
        sharedConfig.merging(["height_factor": "\(heightFactor)", "width_factor": widthFactor.map { "\($0)" } ?? "None"]) { $1 }
    }

    override func drawTransform(_ t: UnsafeMutablePointer<Float>, height: Int, width: Int, generator: inout RandomGenerator) {
        let zy = 1 + AugmentationRange.draw(heightRange, &generator)
        let zx = widthRange.map { 1 + AugmentationRange.draw($0, &generator) } ?? zy
        t[0] = zx; t[1] = 0; t[2] = (Float(width) - 1) / 2 * (1 - zx)
        t[3] = 0; t[4] = zy; t[5] = (Float(height) - 1) / 2 * (1 - zy)
    }
}

/// Shifts each training image by a random fraction of its height and width (Keras
/// `RandomTranslation`): positive factors move the content down and right. Inference passes
/// images through.
public final class RandomTranslation: AffineAugmentation {
    /// The range of vertical shifts, as fractions of the height.
    public let heightFactor: AugmentationRange
    /// The range of horizontal shifts, as fractions of the width.
    public let widthFactor: AugmentationRange
    private var ranges: (height: (lower: Float, upper: Float), width: (lower: Float, upper: Float)) = ((0, 0), (0, 0))

    /// Random shifts by `heightFactor` and `widthFactor`; Keras's defaults otherwise.
    public init(heightFactor: AugmentationRange, widthFactor: AugmentationRange, fillMode: FillMode = .reflect,
                interpolation: Interpolation = .bilinear, seed: UInt64? = nil, fillValue: Float = 0,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.heightFactor = heightFactor
        self.widthFactor = widthFactor
        super.init(fillMode: fillMode, interpolation: interpolation, fillValue: fillValue, seed: seed,
                   inputShape: inputShape, name: name)
    }

    override func validateArguments() throws {
        let describe = "\(name) (RandomTranslation)"
        ranges = (try heightFactor.resolved("heightFactor", describe, allowed: -1...1),
                  try widthFactor.resolved("widthFactor", describe, allowed: -1...1))
    }

    public override var config: [String: String] {
        sharedConfig.merging(["height_factor": "\(heightFactor)", "width_factor": "\(widthFactor)"]) { $1 }
    }

    override func drawTransform(_ t: UnsafeMutablePointer<Float>, height: Int, width: Int, generator: inout RandomGenerator) {
        let dy = AugmentationRange.draw(ranges.height, &generator) * Float(height)
        let dx = AugmentationRange.draw(ranges.width, &generator) * Float(width)
        t[0] = 1; t[1] = 0; t[2] = -dx
        t[3] = 0; t[4] = 1; t[5] = -dy
    }
}

/// Which axes `RandomFlip` mirrors (Keras `mode`).
public enum FlipMode: String, Sendable, Equatable, CaseIterable {
    /// Left–right.
    case horizontal
    /// Top–bottom.
    case vertical
    /// Both at once (one draw per image, as Keras: a half turn or nothing).
    case horizontalAndVertical = "horizontal_and_vertical"
}

/// Mirrors each training image with probability ½ (Keras `RandomFlip`, default both axes);
/// inference passes images through.
public final class RandomFlip: Layer {
    /// The axes mirrored.
    public let mode: FlipMode
    /// The seed fixing this layer's draws independently of the global generator, if any.
    public let seed: UInt64?

    /// Random flips along `mode`'s axes.
    public init(mode: FlipMode = .horizontalAndVertical, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.mode = mode
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        try checkImageShape(inputShape)
        return inputShape
    }

    public override func isIdentity(training: Bool) -> Bool { !training }
    public override var backwardNeedsInput: Bool { false }
    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int { training ? batch : 0 }
    public override var config: [String: String] {
        ["name": name, "mode": mode.rawValue, "seed": seed.map { "\($0)" } ?? "None"]
    }

    /// Copies image `x` to `y`, mirrored along the mode's axes when `flip` (its own adjoint).
    private func copy(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, shape: [Int], flip: Bool) {
        let (h, w, ch) = (shape[0], shape[1], shape[2])
        guard flip else { return y.update(from: x, count: h * w * ch) }
        let rows = mode != .horizontal, columns = mode != .vertical
        for i in 0..<h {
            let sourceRow = rows ? h - 1 - i : i
            for j in 0..<w {
                let sourceColumn = columns ? w - 1 - j : j
                (y + (i * w + j) * ch).update(from: x + (sourceRow * w + sourceColumn) * ch, count: ch)
            }
        }
    }

    public override func forward(_ c: LayerContext) {
        let size = c.inputSize
        for n in 0..<c.batch {
            // Keras flips where a uniform draw is at most ½.
            c.workspace[n] = c.generator.nextUnitFloat() <= 0.5 ? 1 : 0
            copy(c.input + n * size, c.output + n * size, shape: c.inputShapes[0], flip: c.workspace[n] == 1)
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        let size = c.inputSize
        for n in 0..<c.batch { copy(dy + n * size, dx + n * size, shape: c.inputShapes[0], flip: c.workspace[n] == 1) }
    }
}

extension Layer {
    /// Throws unless `shape` is an image's, `(height, width, channels)` with every size positive,
    /// naming the layer (the image layers' shared check).
    func checkImageShape(_ shape: [Int]) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.shapeMismatch(
                "\(name) (\(className)): expected images of rank 3 (height, width, channels), found shape \(shape)")
        }
    }
}
