import Foundation

/// Adds zero-mean Gaussian noise of standard deviation `stddev` in training; the identity in
/// inference (Keras `GaussianNoise`).
public final class GaussianNoise: Layer {
    public override var supportsMasking: Bool { true }
    /// The noise's standard deviation.
    public let stddev: Float
    /// The seed that fixes the noise independently of the global generator, if given.
    public let seed: UInt64?

    /// A Gaussian noise layer.
    public init(_ stddev: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.stddev = stddev
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard stddev >= 0 && stddev.isFinite else {
            throw KestrelError.invalidArgument("\(name) (GaussianNoise): stddev must be finite and >= 0, found \(stddev)")
        }
        return inputShape
    }

    public override var config: [String: String] { ["name": name, "stddev": "\(stddev)"] }
    public override func isIdentity(training: Bool) -> Bool { !training || stddev == 0 }
    public override var backwardNeedsInput: Bool { false }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, x = c.input, y = c.output
        c.generator.fillNormal(UnsafeMutableBufferPointer(start: y, count: n), mean: 0, stddev: stddev)
        for i in 0..<n { y[i] += x[i] }
    }

    public override func backward(_ c: LayerContext) {
        // Additive noise: the gradient passes through unchanged.
        c.inputGradient?.update(from: c.outputGradient!, count: c.batch * c.outputSize)
    }
}

/// The dropout-like noise layers' shared part: a rate in [0, 1), a seed, one factor per
/// input element kept from forward, and the backward pass `dx = dy · factor`.
public class ElementwiseNoise: Layer {
    public override var supportsMasking: Bool { true }
    /// The drop probability.
    public let rate: Float
    /// The seed that fixes the draws independently of the global generator, if given.
    public let seed: UInt64?

    init(rate: Float, seed: UInt64?, inputShape: [Int]?, name: String?) {
        self.rate = rate
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard rate >= 0 && rate < 1 else {
            throw KestrelError.invalidArgument("\(name) (\(className)): rate must be in [0, 1), found \(rate)")
        }
        return inputShape
    }

    public override var config: [String: String] { ["name": name, "rate": "\(rate)"] }
    public override func isIdentity(training: Bool) -> Bool { !training || rate == 0 }
    public override var backwardNeedsInput: Bool { false }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        training ? batch * inputShapes[0].reduce(1, *) : 0   // each element's factor, for backward
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let dy = c.outputGradient!, factors = c.workspace
        for i in 0..<(c.batch * c.outputSize) { dx[i] = dy[i] * factors[i] }
    }
}

/// Multiplies each input by Gaussian noise of mean 1 and standard deviation
/// `sqrt(rate / (1 - rate))` in training; the identity in inference (Keras `GaussianDropout`).
public final class GaussianDropout: ElementwiseNoise {
    /// A Gaussian dropout layer.
    public init(_ rate: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rate: rate, seed: seed, inputShape: inputShape, name: name)
    }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, x = c.input, y = c.output, noise = c.workspace
        c.generator.fillNormal(UnsafeMutableBufferPointer(start: noise, count: n), mean: 1,
                               stddev: (rate / (1 - rate)).squareRoot())
        for i in 0..<n { y[i] = x[i] * noise[i] }
    }
}

/// Dropout for self-normalising networks (SELU activations): in training, a fraction `rate`
/// of inputs is set to SELU's negative saturation value and the result rescaled so that
/// inputs of zero mean and unit variance keep them; the identity in inference (Keras
/// `AlphaDropout`).
public final class AlphaDropout: ElementwiseNoise {
    /// An alpha dropout layer.
    public init(_ rate: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rate: rate, seed: seed, inputShape: inputShape, name: name)
    }

    /// The value a dropped input takes before rescaling: SELU's limit for large negative
    /// inputs, `-scale * alpha`.
    static let droppedValue: Double = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946

    /// The affine map `a * v + b` applied after dropping, which restores zero mean and unit
    /// variance (Keras's formula).
    public var affine: (a: Float, b: Float) {
        let r = Double(rate), p = Self.droppedValue
        let a = 1 / ((1 - r) * (1 + r * p * p)).squareRoot()
        return (Float(a), Float(-a * p * r))
    }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, x = c.input, y = c.output, factors = c.workspace
        let (a, b) = affine, dropped = a * Float(Self.droppedValue) + b
        for i in 0..<n {
            // Kept where a uniform draw is at least `rate`, as Keras decides; the input's
            // factor is then `a`, and 0 where dropped.
            let kept = c.generator.nextUnitFloat() >= rate
            factors[i] = kept ? a : 0
            y[i] = kept ? a * x[i] + b : dropped
        }
    }
}
