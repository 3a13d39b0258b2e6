/// Normalises each channel (last axis) with batch statistics in training and with moving
/// statistics in inference, then scales by `gamma` and shifts by `beta` (Keras
/// `BatchNormalization`).
///
/// Weights in Keras's order: `gamma` and `beta` (trainable, when `scale`/`center`), then
/// `moving_mean` and `moving_variance` (non-trainable; a training step updates them as
/// `moving = moving · momentum + batch · (1 − momentum)` with the biased batch variance). A
/// mask (padded sequences) keeps masked positions out of the batch statistics, as in Keras.
public final class BatchNormalization: Layer {
    public override var supportsMasking: Bool { true }

    /// Keras: in training the batch statistics are taken over unmasked positions only (every
    /// position is then normalised with them); the mask passes on.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.first == true ? .propagate : .none
    }

    /// The number of unmasked rows plus Keras's `backend.epsilon()` (1e-7), which Keras adds
    /// to the masked moments' denominators; `rows` without a mask.
    private func statisticsCount(_ c: LayerContext, rows: Int) -> Double {
        guard let mask = c.inputMasks[0] else { return Double(rows) }
        var kept = 0
        for r in 0..<rows where mask[r] != 0 { kept += 1 }
        return Double(kept) + 1e-7
    }

    /// The axis normalised over (only the channels axis, -1, is supported).
    public let axis: Int
    /// The weight of the old moving statistics in each update (Keras default 0.99).
    public let momentum: Float
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
    /// How the moving mean starts (zeros).
    public let movingMeanInitializer: Initializer
    /// How the moving variance starts (ones).
    public let movingVarianceInitializer: Initializer

    /// A batch normalization layer with Keras's defaults.
    public init(axis: Int = -1, momentum: Float = 0.99, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                betaInitializer: Initializer = .zeros, gammaInitializer: Initializer = .ones,
                movingMeanInitializer: Initializer = .zeros, movingVarianceInitializer: Initializer = .ones,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.axis = axis
        self.momentum = momentum
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.betaInitializer = betaInitializer
        self.gammaInitializer = gammaInitializer
        self.movingMeanInitializer = movingMeanInitializer
        self.movingVarianceInitializer = movingVarianceInitializer
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty, axis == -1 || axis == inputShape.count else {
            throw KestrelError.invalidArgument(
                "\(name) (BatchNormalization): only the channels axis (-1) is supported, found axis \(axis) for input shape \(inputShape)")
        }
        guard epsilon > 0 else {
            throw KestrelError.invalidArgument("\(name) (BatchNormalization): epsilon must be positive, found \(epsilon)")
        }
        return inputShape
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let c = shapes[0].last!
        var specs: [WeightSpec] = []
        if scale { specs.append(WeightSpec(name: "gamma", shape: [c], initializer: gammaInitializer)) }
        if center { specs.append(WeightSpec(name: "beta", shape: [c], initializer: betaInitializer)) }
        specs.append(WeightSpec(name: "moving_mean", shape: [c], initializer: movingMeanInitializer, trainable: false))
        specs.append(WeightSpec(name: "moving_variance", shape: [c], initializer: movingVarianceInitializer, trainable: false))
        return specs
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        // The mean and 1/sqrt(variance + ε) kept for backward, the per-channel scale and shift,
        // and 2·channels Doubles (plus slack to align them) for the sums: stack scratch would
        // go to the heap for wide layers and make every training step allocate.
        8 * (inputShapes[0].last ?? 0) + 2
    }

    /// The workspace's regions: mean, inverse deviation, scale-and-shift, Double sums.
    private func regions(_ workspace: UnsafeMutablePointer<Float>, channels: Int)
        -> (mean: UnsafeMutablePointer<Float>, inverse: UnsafeMutablePointer<Float>,
            ab: UnsafeMutablePointer<Float>, sums: UnsafeMutablePointer<Double>) {
        let sums = UnsafeMutableRawPointer(workspace + 4 * channels).alignedUp(for: Double.self)
            .bindMemory(to: Double.self, capacity: 2 * channels)
        return (workspace, workspace + channels, workspace + 2 * channels, sums)
    }

    public override var couplesSamplesInTraining: Bool { true }

    public override var config: [String: String] {
        ["name": name, "axis": "\(axis)", "momentum": "\(momentum)", "epsilon": "\(epsilon)",
         "center": "\(center)", "scale": "\(scale)"]
    }

    private func indices() -> (gamma: Int?, beta: Int?, mean: Int, variance: Int) {
        let g = scale ? 0 : nil
        let b = center ? (scale ? 1 : 0) : nil
        let m = (scale ? 1 : 0) + (center ? 1 : 0)
        return (g, b, m, m + 1)
    }

    public override func forward(_ c: LayerContext) {
        let channels = c.inputShapes[0].last!, rows = c.batch * (c.inputSize / channels)
        let w = indices()
        let (mean, inverse, ab, acc) = regions(c.workspace, channels: channels)
        let x = c.input, y = c.output
        if c.training {
            // Batch moments per channel, accumulated in Double (rows reach 10⁵ in a CNN), over
            // the unmasked rows when there is a mask.
            let mask = c.inputMasks[0], n = statisticsCount(c, rows: rows)
            acc.initialize(repeating: 0, count: 2 * channels)
            for r in 0..<rows where mask?[r] != 0 {
                let xr = x + r * channels
                for j in 0..<channels { acc[j] += Double(xr[j]) }
            }
            for j in 0..<channels { mean[j] = Float(acc[j] / n) }
            for r in 0..<rows where mask?[r] != 0 {
                let xr = x + r * channels
                for j in 0..<channels { let d = Double(xr[j] - mean[j]); acc[channels + j] += d * d }
            }
            let movingMean = c.weights[w.mean], movingVariance = c.weights[w.variance]
            for j in 0..<channels {
                let variance = Float(acc[channels + j] / n)
                inverse[j] = 1 / (variance + epsilon).squareRoot()
                movingMean[j] = movingMean[j] * momentum + mean[j] * (1 - momentum)
                movingVariance[j] = movingVariance[j] * momentum + variance * (1 - momentum)
            }
        } else {
            let movingMean = c.weights[w.mean], movingVariance = c.weights[w.variance]
            for j in 0..<channels {
                mean[j] = movingMean[j]
                inverse[j] = 1 / (movingVariance[j] + epsilon).squareRoot()
            }
        }
        let gamma: UnsafeMutablePointer<Float>? = w.gamma.map { c.weights[$0] }
        let beta: UnsafeMutablePointer<Float>? = w.beta.map { c.weights[$0] }
        // y = x · a + b per channel, one fused multiply-add per element.
        for j in 0..<channels {
            let a = inverse[j] * (gamma?[j] ?? 1)
            ab[j] = a
            ab[channels + j] = (beta?[j] ?? 0) - mean[j] * a
        }
        for r in 0..<rows {
            let xr = x + r * channels, yr = y + r * channels
            for j in 0..<channels { yr[j] = xr[j] * ab[j] + ab[channels + j] }
        }
    }

    public override func backward(_ c: LayerContext) {
        let channels = c.inputShapes[0].last!, rows = c.batch * (c.inputSize / channels)
        let w = indices()
        let (mean, inverse, _, sums) = regions(c.workspace, channels: channels)
        let x = c.input, dy = c.outputGradient!
        // Σ dy and Σ dy·x̂ per channel: the gradients of beta and gamma.
        sums.initialize(repeating: 0, count: 2 * channels)
        for r in 0..<rows {
            let xr = x + r * channels, dr = dy + r * channels
            for j in 0..<channels {
                sums[j] += Double(dr[j])
                sums[channels + j] += Double(dr[j] * (xr[j] - mean[j]) * inverse[j])
            }
        }
        let accumulate = c.accumulateWeightGradients
        if let g = w.gamma {
            let dg = c.weightGradients[g]
            for j in 0..<channels { dg[j] = (accumulate ? dg[j] : 0) + Float(sums[channels + j]) }
        }
        if let b = w.beta {
            let db = c.weightGradients[b]
            for j in 0..<channels { db[j] = (accumulate ? db[j] : 0) + Float(sums[j]) }
        }
        guard let dx = c.inputGradient else { return }
        let gamma: UnsafeMutablePointer<Float>? = w.gamma.map { c.weights[$0] }
        if c.training {
            // dx = γ/σ · (dy − Σdy/n − x̂ · Σ(dy·x̂)/n): the batch statistics depend on x. With a
            // mask, every position's output depends on the statistics of the n unmasked ones,
            // so the sums stay over all positions and the correction reaches unmasked rows only.
            let mask = c.inputMasks[0], n = statisticsCount(c, rows: rows)
            for r in 0..<rows {
                let xr = x + r * channels, dr = dy + r * channels, gr = dx + r * channels
                if mask?[r] == 0 {
                    for j in 0..<channels { gr[j] = (gamma?[j] ?? 1) * inverse[j] * dr[j] }
                    continue
                }
                for j in 0..<channels {
                    let xhat = (xr[j] - mean[j]) * inverse[j]
                    let centered = dr[j] - Float(sums[j] / n) - xhat * Float(sums[channels + j] / n)
                    gr[j] = (gamma?[j] ?? 1) * inverse[j] * centered
                }
            }
        } else {
            for r in 0..<rows {
                let dr = dy + r * channels, gr = dx + r * channels
                for j in 0..<channels { gr[j] = dr[j] * (gamma?[j] ?? 1) * inverse[j] }
            }
        }
    }
}
