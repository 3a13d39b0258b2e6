/// Normalises each sample over its last axis to zero mean and unit variance, then scales by
/// `gamma` and shifts by `beta` (Keras `LayerNormalization`); the same in training and inference.
public final class LayerNormalization: Layer {
    public override var supportsMasking: Bool { true }
    /// The axis normalised over (only the last axis, -1, is supported).
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

    /// A layer normalization with Keras's defaults.
    public init(axis: Int = -1, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true,
                betaInitializer: Initializer = .zeros, gammaInitializer: Initializer = .ones,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.axis = axis
        self.epsilon = epsilon
        self.center = center
        self.scale = scale
        self.betaInitializer = betaInitializer
        self.gammaInitializer = gammaInitializer
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty, axis == -1 || axis == inputShape.count else {
            throw KestrelError.invalidArgument(
                "\(name) (LayerNormalization): only the last axis (-1) is supported, found axis \(axis) for input shape \(inputShape)")
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
        let d = inputShapes[0].last ?? 1
        return 2 * batch * (inputShapes[0].reduce(1, *) / max(d, 1))   // mean and 1/σ per row
    }

    public override var config: [String: String] {
        ["name": name, "axis": "\(axis)", "epsilon": "\(epsilon)", "center": "\(center)", "scale": "\(scale)"]
    }

    public override func forward(_ c: LayerContext) {
        let d = c.inputShapes[0].last!, rows = c.batch * (c.inputSize / d)
        let gamma: UnsafeMutablePointer<Float>? = scale ? c.weights[0] : nil
        let beta: UnsafeMutablePointer<Float>? = center ? c.weights[scale ? 1 : 0] : nil
        let means = c.workspace, inverses = c.workspace + rows
        for r in 0..<rows {
            let x = c.input + r * d, y = c.output + r * d
            var s: Float = 0
            for j in 0..<d { s += x[j] }
            let mean = s / Float(d)
            var v: Float = 0
            for j in 0..<d { let e = x[j] - mean; v += e * e }
            let inverse = 1 / (v / Float(d) + epsilon).squareRoot()
            means[r] = mean
            inverses[r] = inverse
            for j in 0..<d { y[j] = (x[j] - mean) * inverse * (gamma?[j] ?? 1) + (beta?[j] ?? 0) }
        }
    }

    public override func backward(_ c: LayerContext) {
        let d = c.inputShapes[0].last!, rows = c.batch * (c.inputSize / d)
        let gamma: UnsafeMutablePointer<Float>? = scale ? c.weights[0] : nil
        let dGamma: UnsafeMutablePointer<Float>? = scale ? c.weightGradients[0] : nil
        let dBeta: UnsafeMutablePointer<Float>? = center ? c.weightGradients[scale ? 1 : 0] : nil
        if !c.accumulateWeightGradients {
            dGamma?.update(repeating: 0, count: d)
            dBeta?.update(repeating: 0, count: d)
        }
        let means = c.workspace, inverses = c.workspace + rows
        for r in 0..<rows {
            let x = c.input + r * d, dy = c.outputGradient! + r * d
            let mean = means[r], inverse = inverses[r]
            var sum: Float = 0, dot: Float = 0
            for j in 0..<d {
                let xhat = (x[j] - mean) * inverse
                let g = dy[j] * (gamma?[j] ?? 1)
                sum += g
                dot += g * xhat
                dGamma?[j] += dy[j] * xhat
                dBeta?[j] += dy[j]
            }
            guard let dx = c.inputGradient.map({ $0 + r * d }) else { continue }
            // dx = 1/σ · (g − mean(g) − x̂ · mean(g·x̂)), g = dy·γ.
            let n = Float(d)
            for j in 0..<d {
                let xhat = (x[j] - mean) * inverse
                dx[j] = inverse * (dy[j] * (gamma?[j] ?? 1) - sum / n - xhat * dot / n)
            }
        }
    }
}
