/// Normalises each sample's channels in `groups` groups, each over its channels and every
/// position, to zero mean and unit variance, then scales by `gamma` and shifts by `beta` per
/// channel (Keras `GroupNormalization`); the same in training and inference. `groups: -1`
/// gives one group per channel (instance normalization), `groups: 1` one for all.
public final class GroupNormalization: Layer {
    public override var supportsMasking: Bool { true }
    /// The number of channel groups (-1: one per channel).
    public let groups: Int
    /// The channel axis (only the last axis, -1, is supported: Kestrel is channels-last).
    public let axis: Int
    /// Added to the variance before the square root (Keras default 1e-3).
    public let epsilon: Float
    /// Whether to add the learned offset `beta`.
    public let center: Bool
    /// Whether to multiply by the learned scale `gamma`.
    public let scale: Bool
    /// How `beta` starts (zeros).
    public let betaInitializer: Initializer
    /// How `gamma` starts (ones).
    public let gammaInitializer: Initializer
    /// The penalty on `beta`, if any.
    public let betaRegularizer: Regularizer?
    /// The penalty on `gamma`, if any.
    public let gammaRegularizer: Regularizer?
    /// The constraint on `beta`, if any.
    public let betaConstraint: Constraint?
    /// The constraint on `gamma`, if any.
    public let gammaConstraint: Constraint?

    /// A group normalization with Keras's defaults (32 groups).
    public init(groups: Int = 32, axis: Int = -1, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                betaInitializer: Initializer = .zeros, gammaInitializer: Initializer = .ones,
                betaRegularizer: Regularizer? = nil, gammaRegularizer: Regularizer? = nil,
                betaConstraint: Constraint? = nil, gammaConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.groups = groups
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.betaInitializer = betaInitializer
        self.gammaInitializer = gammaInitializer
        self.betaRegularizer = betaRegularizer
        self.gammaRegularizer = gammaRegularizer
        self.betaConstraint = betaConstraint
        self.gammaConstraint = gammaConstraint
        super.init(name: name, inputShape: inputShape)
        // In weight order: gamma, then beta, as Keras creates them.
        weightRegularizers = (scale ? [gammaRegularizer] : []) + (center ? [betaRegularizer] : [])
        weightConstraints = (scale ? [gammaConstraint] : []) + (center ? [betaConstraint] : [])
    }

    /// The number of groups for `channels` channels (`groups`, or `channels` for -1).
    public func groupCount(channels: Int) -> Int { groups == -1 ? channels : groups }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty, axis == -1 || axis == inputShape.count else {
            throw KestrelError.invalidArgument(
                "\(name) (GroupNormalization): only the channel axis -1 is supported, found axis \(axis) for input shape \(inputShape)")
        }
        let channels = inputShape.last!
        guard groups == -1 || groups > 0 else {
            throw KestrelError.invalidArgument("\(name) (GroupNormalization): groups must be positive or -1, found \(groups)")
        }
        let g = groupCount(channels: channels)
        guard g <= channels, channels % g == 0 else {
            throw KestrelError.invalidArgument(
                "\(name) (GroupNormalization): groups (\(g)) must divide the number of channels (\(channels)) of input shape \(inputShape)")
        }
        return inputShape
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let d = shapes[0].last!
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec(name: "gamma", shape: [d], initializer: gammaInitializer)) }
        if center { specs.append(WeightSpec(name: "beta", shape: [d], initializer: betaInitializer)) }
        return specs
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        2 * batch * groupCount(channels: inputShapes[0].last ?? 1)   // mean and 1/σ per sample and group
    }

    public override var config: [String: String] {
        ["name": name, "groups": "\(groups)", "axis": "\(axis)", "epsilon": "\(epsilon)",
         "center": "\(center)", "scale": "\(scale)"]
    }

    /// Channels, groups, channels per group and positions per sample.
    private func geometry(_ c: LayerContext) -> (channels: Int, groups: Int, width: Int, positions: Int) {
        let channels = c.inputShapes[0].last!, g = groupCount(channels: channels)
        return (channels, g, channels / g, c.inputSize / channels)
    }

    public override func forward(_ c: LayerContext) {
        let (channels, g, width, positions) = geometry(c)
        let gamma: UnsafeMutablePointer<Float>? = scale ? c.weights[0] : nil
        let beta: UnsafeMutablePointer<Float>? = center ? c.weights[scale ? 1 : 0] : nil
        let means = c.workspace, inverses = c.workspace + c.batch * g
        let count = Float(width * positions)
        for b in 0..<c.batch {
            let x = c.input + b * c.inputSize, y = c.output + b * c.inputSize
            for k in 0..<g {
                let first = k * width
                var s: Float = 0
                for p in 0..<positions { for j in 0..<width { s += x[p * channels + first + j] } }
                let mean = s / count
                var v: Float = 0
                for p in 0..<positions { for j in 0..<width { let e = x[p * channels + first + j] - mean; v += e * e } }
                let inverse = 1 / (v / count + epsilon).squareRoot()
                means[b * g + k] = mean
                inverses[b * g + k] = inverse
                for p in 0..<positions {
                    for j in 0..<width {
                        let i = p * channels + first + j
                        y[i] = (x[i] - mean) * inverse * (gamma?[first + j] ?? 1) + (beta?[first + j] ?? 0)
                    }
                }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        let (channels, g, width, positions) = geometry(c)
        let gamma: UnsafeMutablePointer<Float>? = scale ? c.weights[0] : nil
        let dGamma: UnsafeMutablePointer<Float>? = scale ? c.weightGradients[0] : nil
        let dBeta: UnsafeMutablePointer<Float>? = center ? c.weightGradients[scale ? 1 : 0] : nil
        if !c.accumulateWeightGradients {
            dGamma?.update(repeating: 0, count: channels)
            dBeta?.update(repeating: 0, count: channels)
        }
        let means = c.workspace, inverses = c.workspace + c.batch * g
        let count = Float(width * positions)
        for b in 0..<c.batch {
            let x = c.input + b * c.inputSize, dy = c.outputGradient! + b * c.inputSize
            for k in 0..<g {
                let first = k * width, mean = means[b * g + k], inverse = inverses[b * g + k]
                var sum: Float = 0, dot: Float = 0
                for p in 0..<positions {
                    for j in 0..<width {
                        let i = p * channels + first + j
                        let xhat = (x[i] - mean) * inverse
                        let gi = dy[i] * (gamma?[first + j] ?? 1)
                        sum += gi
                        dot += gi * xhat
                        dGamma?[first + j] += dy[i] * xhat
                        dBeta?[first + j] += dy[i]
                    }
                }
                guard let dx = c.inputGradient.map({ $0 + b * c.inputSize }) else { continue }
                // dx = 1/σ · (g − mean(g) − x̂ · mean(g·x̂)) over the group, g = dy·γ.
                for p in 0..<positions {
                    for j in 0..<width {
                        let i = p * channels + first + j
                        let xhat = (x[i] - mean) * inverse
                        dx[i] = inverse * (dy[i] * (gamma?[first + j] ?? 1) - sum / count - xhat * dot / count)
                    }
                }
            }
        }
    }
}
