import Foundation
import Kestrel

/// The hidden-layer activation of an MLP (scikit-learn `activation`).
public enum MLPActivation: String, Sendable, CaseIterable {
    /// No-op, `f(x) = x`.
    case identity
    /// The logistic sigmoid, `f(x) = 1 / (1 + exp(-x))`.
    case logistic
    /// The hyperbolic tangent.
    case tanh
    /// The rectified linear unit, `f(x) = max(0, x)`.
    case relu

    var kestrel: ActivationFunction {
        switch self {
        case .identity: return .linear
        case .logistic: return .sigmoid
        case .tanh: return .tanh
        case .relu: return .relu
        }
    }
}

/// The weight optimizer of an MLP (scikit-learn `solver`; `lbfgs` is not provided).
public enum MLPSolver: String, Sendable, CaseIterable {
    /// Adam with scikit-learn's epsilon 1e-8.
    case adam
    /// Stochastic gradient descent with (Nesterov) momentum and a learning-rate schedule.
    case sgd
}

/// How the SGD learning rate changes (scikit-learn `learning_rate`; used only by `.sgd`).
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    /// Always `learningRateInit`.
    case constant
    /// `learningRateInit / (t + 1)^powerT` after each iteration, t the samples seen so far.
    case invscaling
    /// Divided by 5 whenever `nIterNoChange` iterations fail to improve by `tol`.
    case adaptive
}

/// The output function paired with the loss, as scikit-learn picks it: softmax with log-loss
/// (multiclass), logistic with log-loss (binary, multilabel), identity with squared error.
enum MLPOutput {
    case softmax, logistic, identity
}

/// The L2 penalty shared by the loss (which reports it) and the optimizer (which adds its
/// gradient). scikit-learn adds `alpha / (2·batch)·Σ‖W‖²` over the weight matrices (not the
/// biases) to each batch's loss, hence `alpha·W / batch` to each weight gradient.
final class MLPPenalty {
    var alpha: Float = 0
    /// Samples in the batch being trained (set by the loss, read by the optimizer).
    var batch = 1
    /// Σ‖W‖² of the weights as they are now.
    var squaredNorm: Double = 0
}

/// scikit-learn's MLP losses on the output layer's pre-activations, with the L2 penalty
/// included in the reported value, so that the epoch mean Kestrel's `fit` logs equals
/// scikit-learn's `loss_`.
final class MLPLoss: Loss {
    let output: MLPOutput
    let penalty: MLPPenalty

    init(output: MLPOutput, penalty: MLPPenalty) {
        self.output = output
        self.penalty = penalty
        super.init(name: output == .identity ? "squared_error" : "log_loss")
    }

    override func labelSize(outputShape: [Int], labelShape: [Int]) throws -> Int {
        if output == .softmax {
            guard labelShape.isEmpty else {
                throw KestrelError.shapeMismatch("\(name): expected class indices, found labels of shape \(labelShape)")
            }
            return 1
        }
        guard labelShape == outputShape else {
            throw KestrelError.shapeMismatch("\(name): targets of shape \(labelShape) for outputs \(outputShape)")
        }
        return outputShape.reduce(1, *)
    }

    override func compute(predictions z: UnsafePointer<Float>, labels y: UnsafePointer<Float>, batch: Int,
                          outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        penalty.batch = batch
        let k = outputShape.reduce(1, *)
        let inverseBatch = 1 / Float(batch)
        var total: Double = 0
        switch output {
        case .softmax:
            // Log-loss of softmax; its gradient with respect to the logits is p - onehot.
            for r in 0..<batch {
                let row = z + r * k
                let target = Int(y[r])
                var m = -Float.infinity
                for j in 0..<k { m = max(m, row[j]) }
                var s: Float = 0
                for j in 0..<k { s += expf(row[j] - m) }
                total += Double(logf(s) + m - row[target])
                if let g = gradient?.advanced(by: r * k) {
                    let scale = inverseBatch / s
                    for j in 0..<k { g[j] = expf(row[j] - m) * scale }
                    g[target] -= inverseBatch
                }
            }
            total /= Double(batch)
        case .logistic:
            // Binary log-loss per output, averaged over samples and summed over outputs as
            // scikit-learn's `binary_log_loss`; softplus form for stability.
            for i in 0..<(batch * k) {
                let v = z[i], t = y[i]
                total += Double(max(v, 0) - v * t + log1pf(expf(-abs(v))))
                gradient?[i] = (1 / (1 + expf(-v)) - t) * inverseBatch
            }
            total /= Double(batch)
        case .identity:
            // scikit-learn reports half the mean squared error over samples and outputs, but its
            // gradient is (prediction - target) / batch, not divided by the outputs.
            for i in 0..<(batch * k) {
                let d = z[i] - y[i]
                total += Double(d * d)
                gradient?[i] = d * inverseBatch
            }
            total /= 2 * Double(batch * k)
        }
        return Float(total + 0.5 * Double(penalty.alpha) * penalty.squaredNorm / Double(batch))
    }
}

/// scikit-learn's `AdamOptimizer` and `SGDOptimizer` over Kestrel's flat parameter buffer,
/// with the L2 penalty's gradient added to the weight matrices. Its moments live in the base
/// class's slots, so checkpoints and `optimizerState()` see them as Adam's and SGD's.
final class MLPOptimizer: Optimizer {
    let solver: MLPSolver
    let schedule: LearningRateSchedule
    let learningRateInit: Float
    let powerT: Float
    let momentum: Float
    let nesterov: Bool
    let beta1: Float, beta2: Float, epsilon: Float
    let penalty: MLPPenalty
    /// Index of each weight matrix, by the start of its range in the parameter buffer.
    private let kernelIndex: [Int: Int]
    private var kernelNorms: [Double]
    /// scikit-learn's Adam time step `t`.
    private(set) var step = 0
    private var seenIterations = -1
    private var adamRate: Float = 0

    init(parameters p: MLPParameters, kernelRanges: [Range<Int>], parameterCount: Int, penalty: MLPPenalty) {
        solver = p.solver
        schedule = p.learningRate
        learningRateInit = p.learningRateInit
        powerT = p.powerT
        momentum = p.momentum
        nesterov = p.nesterovsMomentum
        beta1 = p.beta1
        beta2 = p.beta2
        epsilon = p.epsilon
        self.penalty = penalty
        var index: [Int: Int] = [:]
        for (i, r) in kernelRanges.enumerated() { index[r.lowerBound] = i }
        kernelIndex = index
        kernelNorms = Array(repeating: 0, count: kernelRanges.count)
        super.init(name: p.solver.rawValue, learningRate: p.learningRateInit)
    }

    override var slotsPerParameter: Int { solver == .adam ? 2 : 1 }
    override var slotNames: [String] { solver == .adam ? ["momentum", "velocity"] : ["momentum"] }

    /// Records ‖W‖² of each weight matrix before the first step.
    func setKernelNorms(_ norms: [Double]) {
        kernelNorms = norms
        penalty.squaredNorm = norms.reduce(0, +)
    }

    override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                         range: Range<Int>) {
        if iterations != seenIterations {
            seenIterations = iterations
            step += 1
            if solver == .adam {
                let t = Double(step)
                adamRate = Float(Double(learningRateInit) * (1 - pow(Double(beta2), t)).squareRoot()
                                 / (1 - pow(Double(beta1), t)))
            }
        }
        let kernel = kernelIndex[range.lowerBound]
        let decay: Float = kernel == nil ? 0 : penalty.alpha / Float(penalty.batch)
        let m = slot(0)
        let lo = range.lowerBound, hi = range.upperBound
        let tracksNorm = kernel != nil && penalty.alpha != 0
        // Σ‖W‖² of this matrix after the step, when the fused Adam kernel computed it.
        var squares: Float?
        switch solver {
        case .adam:
            if tracksNorm {
                squares = Kernels.adamStep(weights: w, gradients: g, firstMoments: m, secondMoments: slot(1),
                                           range: range, rate: adamRate, beta1: beta1, beta2: beta2,
                                           epsilon: epsilon, l2: decay)
            } else {
                Kernels.adamStep(weights: w, gradients: g, firstMoments: m, secondMoments: slot(1), range: range,
                                 rate: adamRate, beta1: beta1, beta2: beta2, epsilon: epsilon)
            }
        case .sgd:
            let mu = momentum, lr = learningRate
            if nesterov {
                for i in lo..<hi {
                    let gi = g[i] + decay * w[i]
                    m[i] = mu * m[i] - lr * gi
                    w[i] += mu * m[i] - lr * gi
                }
            } else {
                for i in lo..<hi {
                    let gi = g[i] + decay * w[i]
                    m[i] = mu * m[i] - lr * gi
                    w[i] += m[i]
                }
            }
        }
        if let kernel, tracksNorm {
            // Keep Σ‖W‖² current for the next batch's reported loss.
            let s = Double(squares ?? Kernels.sumOfSquares(w + lo, count: hi - lo))
            penalty.squaredNorm += s - kernelNorms[kernel]
            kernelNorms[kernel] = s
        }
    }

    /// scikit-learn's `iteration_ends`: the inverse-scaling schedule after each iteration.
    func iterationEnds(samplesSeen t: Int) {
        if solver == .sgd && schedule == .invscaling {
            learningRate = learningRateInit / powf(Float(t + 1), powerT)
        }
    }

    /// scikit-learn's `trigger_stopping`: true to stop; the adaptive schedule first divides
    /// the learning rate by 5 until it falls to 1e-6.
    func triggerStopping() -> Bool {
        guard solver == .sgd && schedule == .adaptive else { return true }
        if learningRate <= 1e-6 { return true }
        learningRate /= 5
        return false
    }
}

/// A snapshot of an MLP estimator's parameters, validated once per `fit`.
struct MLPParameters {
    var hiddenLayerSizes: [Int]
    var activation: MLPActivation
    var solver: MLPSolver
    var alpha: Float
    var batchSize: Int?
    var learningRate: LearningRateSchedule
    var learningRateInit: Float
    var powerT: Float
    var maxIter: Int
    var shuffle: Bool
    var randomState: UInt64?
    var tol: Float
    var verbose: Bool
    var warmStart: Bool
    var momentum: Float
    var nesterovsMomentum: Bool
    var earlyStopping: Bool
    var validationFraction: Float
    var beta1: Float
    var beta2: Float
    var epsilon: Float
    var nIterNoChange: Int

    /// Throws for values scikit-learn's parameter constraints reject.
    func validate(_ estimator: String) throws {
        func fail(_ name: String, _ expected: String, _ found: Any) -> KestrelError {
            .invalidArgument("\(estimator): \(name) must be \(expected), found \(found)")
        }
        if let bad = hiddenLayerSizes.first(where: { $0 <= 0 }) {
            throw fail("hiddenLayerSizes", "positive layer sizes", "\(bad) in \(hiddenLayerSizes)")
        }
        guard alpha >= 0, alpha.isFinite else { throw fail("alpha", ">= 0", alpha) }
        if let batchSize, batchSize < 1 { throw fail("batchSize", ">= 1 (or nil for auto)", batchSize) }
        guard learningRateInit > 0, learningRateInit.isFinite else { throw fail("learningRateInit", "> 0", learningRateInit) }
        guard powerT >= 0 else { throw fail("powerT", ">= 0", powerT) }
        guard maxIter >= 1 else { throw fail("maxIter", ">= 1", maxIter) }
        guard tol >= 0 else { throw fail("tol", ">= 0", tol) }
        guard momentum >= 0, momentum <= 1 else { throw fail("momentum", "in [0, 1]", momentum) }
        guard validationFraction > 0, validationFraction < 1 else {
            throw fail("validationFraction", "in (0, 1)", validationFraction)
        }
        guard beta1 >= 0, beta1 < 1 else { throw fail("beta1", "in [0, 1)", beta1) }
        guard beta2 >= 0, beta2 < 1 else { throw fail("beta2", "in [0, 1)", beta2) }
        guard epsilon > 0 else { throw fail("epsilon", "> 0", epsilon) }
        guard nIterNoChange >= 1 else { throw fail("nIterNoChange", ">= 1", nIterNoChange) }
    }
}

/// Calls `body` with each epoch's mean training loss when the epoch ends; `body` returns true
/// to end `fit` there.
final class EpochEndHandler: Callback {
    private let body: (Float) throws -> Bool
    private weak var model: Model?

    init(_ body: @escaping (Float) throws -> Bool) { self.body = body }

    func setModel(_ model: Model) { self.model = model }

    func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        if try body(logs["loss"] ?? .nan) { model?.stopTraining = true }
    }
}

/// The network, optimizer and training state behind `MLPClassifier` and `MLPRegressor`:
/// scikit-learn's `BaseMultilayerPerceptron._fit_stochastic`, running all its epochs in one
/// call of Kestrel's compiled `fit`.
final class MLPEngine {
    private(set) var model: Sequential?
    private(set) var optimizer: MLPOptimizer?
    private(set) var loss: MLPLoss?
    let penalty = MLPPenalty()
    private(set) var layerUnits: [Int] = []
    private(set) var output: MLPOutput = .identity

    var lossCurve: [Float] = []
    var lastLoss: Float?
    var bestLoss: Float?
    var validationScores: [Double]?
    var bestValidationScore: Double?
    var noImprovementCount = 0
    var nIter = 0
    var samplesSeen = 0
    var convergenceWarning: String?
    private var bestWeights: [Tensor]?

    var isFitted: Bool { model != nil }
    var nFeatures: Int? { layerUnits.first }

    /// The weights as scikit-learn's `coefs_` (each `[fanIn, fanOut]`) and `intercepts_`.
    func parameters() -> (coefs: [Tensor], intercepts: [Tensor]) {
        guard let weights = try? model?.getWeights() else { return ([], []) }
        return (stride(from: 0, to: weights.count, by: 2).map { weights[$0] },
                stride(from: 1, to: weights.count, by: 2).map { weights[$0] })
    }

    /// Builds a fresh network with scikit-learn's initialisation: weights and biases uniform
    /// in ±sqrt(f / (fanIn + fanOut)), f = 2 for logistic hidden units and 6 otherwise, drawn
    /// layer by layer, weights before biases.
    private func initialize(units: [Int], output: MLPOutput, parameters p: MLPParameters,
                            generator: inout RandomGenerator) throws {
        var layers: [Layer] = []
        for i in 1..<units.count {
            let last = i == units.count - 1
            layers.append(Dense(units[i], activation: last ? .linear : p.activation.kestrel,
                                inputShape: i == 1 ? [units[0]] : nil))
        }
        let network = Sequential(layers, name: "mlp")
        try network.build()
        var weights: [Tensor] = []
        let factor: Float = p.activation == .logistic ? 2 : 6
        for i in 0..<(units.count - 1) {
            let bound = (factor / Float(units[i] + units[i + 1])).squareRoot()
            weights.append(Tensor.randomUniform([units[i], units[i + 1]], minval: -bound, maxval: bound,
                                                generator: &generator))
            weights.append(Tensor.randomUniform([units[i + 1]], minval: -bound, maxval: bound,
                                                generator: &generator))
        }
        try network.setWeights(weights)
        model = network
        layerUnits = units
        self.output = output
        optimizer = nil
        lossCurve = []
        lastLoss = nil
        noImprovementCount = 0
        nIter = 0
        samplesSeen = 0
        if p.earlyStopping {
            validationScores = []
            bestValidationScore = -.infinity
            bestLoss = nil
        } else {
            validationScores = nil
            bestValidationScore = nil
            bestLoss = .infinity
        }
        bestWeights = weights
    }

    /// Runs scikit-learn's stochastic training: `fit` (`incremental` false) runs up to
    /// `maxIter` epochs, `partialFit` one. `targets` are class indices `[n]` for softmax and
    /// `[n, outputs]` otherwise; `stratify` holds class indices for the early-stopping split;
    /// `validationScore` scores the network on the held-out samples.
    func train(_ x: Tensor, _ targets: Tensor, outputs: Int, output: MLPOutput, parameters p: MLPParameters,
               estimator: String, incremental: Bool, reset: Bool, stratify: [Int]?,
               validationScore: @escaping (Tensor, Tensor) throws -> Double) throws {
        try p.validate(estimator)
        if p.earlyStopping && incremental {
            throw KestrelError.invalidArgument("\(estimator).partialFit: does not support earlyStopping = true")
        }
        // scikit-learn re-creates its generator from random_state on every call.
        var generator = RandomGenerator(seed: p.randomState ?? freshSeed())
        let features = x.shape[1]
        if reset || model == nil {
            try initialize(units: [features] + p.hiddenLayerSizes + [outputs], output: output, parameters: p,
                           generator: &generator)
        } else if features != layerUnits[0] {
            throw KestrelError.shapeMismatch(
                "\(estimator): x has \(features) features, but the estimator was fitted with \(layerUnits[0]) features")
        }
        guard let model else { return }
        penalty.alpha = p.alpha
        if !incremental || optimizer == nil {
            let counts = zip(layerUnits.dropLast(), layerUnits.dropFirst()).map { ($0 * $1, $1) }
            var offset = 0
            var kernels: [Range<Int>] = []
            for (kernelCount, biasCount) in counts {
                kernels.append(offset..<(offset + kernelCount))
                offset += kernelCount + biasCount
            }
            let newOptimizer = MLPOptimizer(parameters: p, kernelRanges: kernels, parameterCount: offset,
                                            penalty: penalty)
            let newLoss = MLPLoss(output: output, penalty: penalty)
            model.compile(optimizer: newOptimizer, loss: newLoss)
            optimizer = newOptimizer
            loss = newLoss
        }
        guard let optimizer else { return }
        optimizer.setKernelNorms(parameters().coefs.map { w in
            w.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
        })

        var trainX = x, trainY = targets
        var validation: (Tensor, Tensor)?
        if p.earlyStopping {
            let (trainIndices, validationIndices) = try splitIndices(
                // Through the decimal text, so that 0.2 stays 0.2 and not 0.2000000030 (which
                // would hold out one sample more than scikit-learn).
                count: x.shape[0], testSize: Double("\(p.validationFraction)") ?? Double(p.validationFraction),
                stratify: stratify,
                generator: &generator, caller: estimator)
            guard validationIndices.count >= 2 else {
                throw KestrelError.invalidArgument(
                    "\(estimator): the validation set has \(validationIndices.count) sample(s), expected at least 2; increase validationFraction or the number of samples")
            }
            trainX = x.gathering(trainIndices)
            trainY = targets.gathering(trainIndices)
            validation = (x.gathering(validationIndices), targets.gathering(validationIndices))
        }
        let n = trainX.shape[0]
        let batchSize = min(max(p.batchSize ?? 200, 1), n)

        nIter = 0
        convergenceWarning = nil
        var stopped = false
        // All epochs run in one `fit` (one plan lookup, no copies of the data): `fit` shuffles
        // by index with a seed drawn from the estimator's generator, and this callback does
        // scikit-learn's end-of-iteration bookkeeping.
        let iterationEnd = EpochEndHandler { [self] epochLoss in
            guard epochLoss.isFinite else {
                throw KestrelError.numerical(
                    "\(estimator): the training loss became \(epochLoss) in iteration \(nIter + 1); scale the inputs (StandardScaler) or lower learningRateInit")
            }
            nIter += 1
            lastLoss = epochLoss
            samplesSeen += n
            lossCurve.append(epochLoss)
            if p.verbose { print(String(format: "Iteration %d, loss = %.8f", nIter, epochLoss)) }

            if let (validationX, validationY) = validation {
                let score = try validationScore(validationX, validationY)
                validationScores?.append(score)
                if p.verbose { print(String(format: "Validation score: %f", score)) }
                let best = bestValidationScore ?? -.infinity
                noImprovementCount = score < best + Double(p.tol) ? noImprovementCount + 1 : 0
                if score > best {
                    bestValidationScore = score
                    bestWeights = try model.getWeights()
                }
            } else {
                let best = bestLoss ?? .infinity
                noImprovementCount = epochLoss > best - p.tol ? noImprovementCount + 1 : 0
                if epochLoss < best { bestLoss = epochLoss }
            }
            optimizer.iterationEnds(samplesSeen: samplesSeen)

            if noImprovementCount > p.nIterNoChange {
                if optimizer.triggerStopping() {
                    if p.verbose {
                        let what = p.earlyStopping ? "Validation score" : "Training loss"
                        print("\(what) did not improve more than tol=\(p.tol) for \(p.nIterNoChange) consecutive epochs. Stopping.")
                    }
                    stopped = true
                    return true
                }
                noImprovementCount = 0
            }
            return false
        }
        try model.fit(trainX, trainY, batchSize: batchSize, epochs: incremental ? 1 : p.maxIter, verbose: 0,
                      callbacks: [iterationEnd], shuffle: p.shuffle, seed: generator.next())
        if !incremental && !stopped && nIter == p.maxIter {
            convergenceWarning = "\(estimator): Stochastic Optimizer: Maximum iterations (\(p.maxIter)) reached and the optimization hasn't converged yet."
            if p.verbose { FileHandle.standardError.write(Data((convergenceWarning! + "\n").utf8)) }
        }
        if p.earlyStopping, let bestWeights { try model.setWeights(bestWeights) }
        let weights = try model.getWeights()
        if weights.contains(where: { $0.scalars.contains { !$0.isFinite } }) {
            throw KestrelError.numerical(
                "\(estimator): the solver produced non-finite weights; the input data may contain large values and need to be scaled")
        }
    }

    /// The output layer's values for `x`: probabilities (softmax or logistic) or regression outputs.
    func forward(_ x: Tensor) throws -> Tensor {
        guard let model else { throw KestrelError.notReady("MLP: not fitted") }
        var z = try model.predict(x, batchSize: min(x.shape[0], 1024))
        let k = z.shape[1]
        switch output {
        case .identity:
            break
        case .logistic:
            z = z.map { 1 / (1 + expf(-$0)) }
        case .softmax:
            z.scalars.withUnsafeMutableBufferPointer { p in
                for r in 0..<(p.count / k) {
                    let row = p.baseAddress! + r * k
                    var m = -Float.infinity
                    for j in 0..<k { m = max(m, row[j]) }
                    var s: Float = 0
                    for j in 0..<k { row[j] = expf(row[j] - m); s += row[j] }
                    for j in 0..<k { row[j] /= s }
                }
            }
        }
        return z
    }
}
