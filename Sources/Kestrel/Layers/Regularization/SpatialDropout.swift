/// Dropout of whole channels: during training each sample loses a fraction `rate` of its
/// channels (every position of a dropped channel is zero) and the rest are scaled by
/// `1 / (1 - rate)`; the identity in inference. Shared machinery of `SpatialDropout1D/2D/3D`.
public class SpatialDropout: Layer {
    public override var supportsMasking: Bool { true }
    /// The fraction of channels dropped.
    public let rate: Float
    /// The number of spatial axes the mask is shared over (1, 2 or 3).
    public let rank: Int

    init(rate: Float, rank: Int, seed: UInt64?, inputShape: [Int]?, name: String?) {
        self.rate = rate
        self.rank = rank
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard rate >= 0 && rate < 1 else {
            throw KestrelError.invalidArgument("\(name) (\(className)): rate must be in [0, 1), found \(rate)")
        }
        guard inputShape.count == rank + 1 else {
            throw KestrelError.shapeMismatch(
                "\(name) (\(className)): expected samples of rank \(rank + 1) \(sampleLayout(rank: rank)), found shape \(inputShape)")
        }
        return inputShape
    }

    public override var config: [String: String] { ["name": name, "rate": "\(rate)"] }
    public override func isIdentity(training: Bool) -> Bool { !training || rate == 0 }
    public override var backwardNeedsInput: Bool { false }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        training ? batch * (inputShapes[0].last ?? 0) : 0   // one scale per sample and channel
    }

    public override func forward(_ c: LayerContext) {
        let channels = c.inputShapes[0].last!, positions = c.inputSize / channels
        let scale = 1 / (1 - rate)
        for n in 0..<c.batch {
            let mask = c.workspace + n * channels
            for j in 0..<channels { mask[j] = c.generator.nextUnitFloat() >= rate ? scale : 0 }
            for p in 0..<positions {
                let o = (n * positions + p) * channels
                for j in 0..<channels { c.output[o + j] = c.input[o + j] * mask[j] }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let dy = c.outputGradient!
        let channels = c.inputShapes[0].last!, positions = c.inputSize / channels
        for n in 0..<c.batch {
            let mask = c.workspace + n * channels
            for p in 0..<positions {
                let o = (n * positions + p) * channels
                for j in 0..<channels { dx[o + j] = dy[o + j] * mask[j] }
            }
        }
    }
}

/// Drops whole channels of `(height, width, channels)` samples in training (Keras `SpatialDropout2D`).
public final class SpatialDropout2D: SpatialDropout {
    /// Channel dropout with fraction `rate`; `seed` fixes its masks independently of the global generator.
    public init(_ rate: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rate: rate, rank: 2, seed: seed, inputShape: inputShape, name: name)
    }
}

/// Drops whole channels of `(steps, channels)` samples in training (Keras `SpatialDropout1D`).
public final class SpatialDropout1D: SpatialDropout {
    /// Channel dropout with fraction `rate`; `seed` fixes its masks independently of the global generator.
    public init(_ rate: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rate: rate, rank: 1, seed: seed, inputShape: inputShape, name: name)
    }
}

/// Drops whole channels of `(depth, height, width, channels)` samples in training (Keras `SpatialDropout3D`).
public final class SpatialDropout3D: SpatialDropout {
    /// Channel dropout with fraction `rate`; `seed` fixes its masks independently of the global generator.
    public init(_ rate: Float, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rate: rate, rank: 3, seed: seed, inputShape: inputShape, name: name)
    }
}
