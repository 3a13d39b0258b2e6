import Kestrel

/// The parameters and fitted attributes shared by `MLPClassifier` and `MLPRegressor`
/// (scikit-learn `BaseMultilayerPerceptron`), with scikit-learn's names and defaults.
///
/// Parameters are plain properties: change them between fits, or let `GridSearch` set them.
/// They are checked when `fit` runs, which throws `KestrelError.invalidArgument` naming the
/// parameter, the allowed values and the value found.
public class MultilayerPerceptron {
    /// The number of units of each hidden layer (scikit-learn `hidden_layer_sizes`, default `[100]`).
    public var hiddenLayerSizes: [Int]
    /// The hidden layers' activation (default `.relu`).
    public var activation: MLPActivation
    /// The optimizer (default `.adam`).
    public var solver: MLPSolver
    /// Strength of the L2 penalty on the weight matrices (default 1e-4).
    public var alpha: Float
    /// Samples per minibatch; nil means scikit-learn's "auto", `min(200, samples)`.
    public var batchSize: Int?
    /// The SGD learning-rate schedule (default `.constant`).
    public var learningRate: LearningRateSchedule
    /// The initial step size (default 0.001).
    public var learningRateInit: Float
    /// The exponent of the inverse-scaling schedule (default 0.5).
    public var powerT: Float
    /// The most epochs (iterations over the data) `fit` runs (default 200).
    public var maxIter: Int
    /// Whether to shuffle the samples each epoch (default true).
    public var shuffle: Bool
    /// Seeds weight initialisation, shuffling and the early-stopping split; nil draws a fresh
    /// seed on each fit (scikit-learn `random_state=None`).
    public var randomState: UInt64?
    /// The improvement below which an epoch counts as no improvement (default 1e-4).
    public var tol: Float
    /// Whether to print the loss of each epoch.
    public var verbose: Bool
    /// Whether `fit` continues from the current weights instead of starting afresh.
    public var warmStart: Bool
    /// The SGD momentum (default 0.9).
    public var momentum: Float
    /// Whether SGD uses Nesterov's momentum (default true).
    public var nesterovsMomentum: Bool
    /// Whether to stop when the score on a held-out validation set stops improving, keeping
    /// the best weights (default false).
    public var earlyStopping: Bool
    /// The share of the training samples held out for early stopping (default 0.1).
    public var validationFraction: Float
    /// Adam's first-moment decay (default 0.9).
    public var beta1: Float
    /// Adam's second-moment decay (default 0.999).
    public var beta2: Float
    /// Adam's epsilon (default 1e-8, scikit-learn's value, not Keras's 1e-7).
    public var epsilon: Float
    /// How many epochs without `tol` improvement end training (default 10).
    public var nIterNoChange: Int

    let engine = MLPEngine()

    /// An MLP estimator with scikit-learn's defaults.
    public convenience init(hiddenLayerSizes: [Int] = [100], activation: MLPActivation = .relu,
                            solver: MLPSolver = .adam, alpha: Float = 1e-4, batchSize: Int? = nil,
                            learningRate: LearningRateSchedule = .constant, learningRateInit: Float = 1e-3,
                            powerT: Float = 0.5, maxIter: Int = 200, shuffle: Bool = true,
                            randomState: UInt64? = nil, tol: Float = 1e-4, verbose: Bool = false,
                            warmStart: Bool = false, momentum: Float = 0.9, nesterovsMomentum: Bool = true,
                            earlyStopping: Bool = false, validationFraction: Float = 0.1, beta1: Float = 0.9,
                            beta2: Float = 0.999, epsilon: Float = 1e-8, nIterNoChange: Int = 10) {
        self.init(parameters: MLPParameters(
            hiddenLayerSizes: hiddenLayerSizes, activation: activation, solver: solver, alpha: alpha,
            batchSize: batchSize, learningRate: learningRate, learningRateInit: learningRateInit, powerT: powerT,
            maxIter: maxIter, shuffle: shuffle, randomState: randomState, tol: tol, verbose: verbose,
            warmStart: warmStart, momentum: momentum, nesterovsMomentum: nesterovsMomentum,
            earlyStopping: earlyStopping, validationFraction: validationFraction, beta1: beta1, beta2: beta2,
            epsilon: epsilon, nIterNoChange: nIterNoChange))
    }

    /// An estimator with the given parameters (used by the public initialisers and `clone`).
    init(parameters p: MLPParameters) {
        hiddenLayerSizes = p.hiddenLayerSizes; activation = p.activation; solver = p.solver; alpha = p.alpha
        batchSize = p.batchSize; learningRate = p.learningRate; learningRateInit = p.learningRateInit
        powerT = p.powerT; maxIter = p.maxIter; shuffle = p.shuffle; randomState = p.randomState; tol = p.tol
        verbose = p.verbose; warmStart = p.warmStart; momentum = p.momentum
        nesterovsMomentum = p.nesterovsMomentum; earlyStopping = p.earlyStopping
        validationFraction = p.validationFraction; beta1 = p.beta1; beta2 = p.beta2; epsilon = p.epsilon
        nIterNoChange = p.nIterNoChange
    }

    var parameters: MLPParameters {
        MLPParameters(hiddenLayerSizes: hiddenLayerSizes, activation: activation, solver: solver, alpha: alpha,
                      batchSize: batchSize, learningRate: learningRate, learningRateInit: learningRateInit,
                      powerT: powerT, maxIter: maxIter, shuffle: shuffle, randomState: randomState, tol: tol,
                      verbose: verbose, warmStart: warmStart, momentum: momentum,
                      nesterovsMomentum: nesterovsMomentum, earlyStopping: earlyStopping,
                      validationFraction: validationFraction, beta1: beta1, beta2: beta2, epsilon: epsilon,
                      nIterNoChange: nIterNoChange)
    }

    // MARK: Fitted attributes

    /// Whether `fit` or `partialFit` has run.
    public var isFitted: Bool { engine.isFitted }
    /// The mean training loss (with the L2 penalty) of each epoch (scikit-learn `loss_curve_`).
    public var lossCurve: [Float] { engine.lossCurve }
    /// The last epoch's training loss (scikit-learn `loss_`).
    public var loss: Float? { engine.lastLoss }
    /// The lowest epoch loss; nil with early stopping, as in scikit-learn (`best_loss_`).
    public var bestLoss: Float? { engine.bestLoss }
    /// The epochs run by the last `fit` (1 after `partialFit`; scikit-learn `n_iter_`).
    public var nIter: Int { engine.nIter }
    /// The training samples seen since initialisation (scikit-learn `t_`).
    public var samplesSeen: Int { engine.samplesSeen }
    /// The validation score of each epoch when `earlyStopping` is on (`validation_scores_`).
    public var validationScores: [Double]? { engine.validationScores }
    /// The best validation score when `earlyStopping` is on (`best_validation_score_`).
    public var bestValidationScore: Double? { engine.bestValidationScore }
    /// The weight matrices, `[fanIn, fanOut]` per layer (scikit-learn `coefs_`).
    public var coefs: [Tensor] { engine.parameters().coefs }
    /// The bias vectors per layer (scikit-learn `intercepts_`).
    public var intercepts: [Tensor] { engine.parameters().intercepts }
    /// The number of features seen in `fit` (scikit-learn `n_features_in_`).
    public var nFeaturesIn: Int? { engine.nFeatures }
    /// The number of layers including input and output (scikit-learn `n_layers_`).
    public var nLayers: Int? { engine.isFitted ? engine.layerUnits.count : nil }
    /// The number of output units (scikit-learn `n_outputs_`).
    public var nOutputs: Int? { engine.layerUnits.last }
    /// The output activation: "softmax", "logistic" or "identity" (`out_activation_`).
    public var outActivation: String? {
        guard engine.isFitted else { return nil }
        switch engine.output {
        case .softmax: return "softmax"
        case .logistic: return "logistic"
        case .identity: return "identity"
        }
    }
    /// scikit-learn's ConvergenceWarning text when the last `fit` reached `maxIter` without
    /// converging (printed to standard error only when `verbose`), else nil.
    public var convergenceWarning: String? { engine.convergenceWarning }

    /// The checked feature matrix of a fitted estimator.
    func fittedFeatures(_ x: Tensor, _ caller: String) throws -> Tensor {
        guard engine.isFitted else {
            throw KestrelError.notReady("\(caller): this estimator is not fitted yet; call fit first")
        }
        return try featureMatrix(x, caller, features: engine.nFeatures)
    }
}

/// A multi-layer perceptron classifier trained with Adam or SGD on log-loss (scikit-learn
/// `MLPClassifier`): softmax outputs for more than two classes, one logistic output for two.
///
/// Labels may be any `Hashable` type; `classes` are sorted when the type is `Comparable`.
/// `MLPClassifier(...)` without a type argument takes `Int` labels.
public final class MLPClassifier<Label: Hashable>: MultilayerPerceptron, Classifier {
    /// The class labels, in the order of `predictProba`'s columns (scikit-learn `classes_`).
    public private(set) var classes: [Label] = []
    private var classIndex: [Label: Int] = [:]

    private func setClasses(_ found: [Label], _ caller: String) throws {
        guard found.count >= 2 else {
            throw KestrelError.invalidArgument(
                "\(caller): expected at least 2 classes, found \(found.count) (\(found.map { "\($0)" }.joined(separator: ", ")))")
        }
        classes = found
        classIndex = Dictionary(uniqueKeysWithValues: found.enumerated().map { ($1, $0) })
    }

    private func codes(_ y: [Label], _ caller: String) throws -> [Int] {
        try y.map { label in
            guard let c = classIndex[label] else {
                throw KestrelError.invalidArgument(
                    "\(caller): y has the label \(label), which is not one of the classes [\(classes.map { "\($0)" }.joined(separator: ", "))]")
            }
            return c
        }
    }

    /// Trains from scratch (or from the current weights with `warmStart`) for up to `maxIter`
    /// epochs, stopping early as scikit-learn does.
    @discardableResult
    public func fit(_ x: Tensor, _ y: [Label]) throws -> Self {
        let caller = "MLPClassifier.fit"
        let features = try featureMatrix(x, caller)
        try checkSameLength(features.shape[0], y.count, caller)
        let reset = !engine.isFitted || !warmStart
        let found = distinctLabels(y)
        if reset {
            try setClasses(found, caller)
        } else if Set(found) != Set(classes) {
            throw KestrelError.invalidArgument(
                "\(caller): warmStart can only be used where y has the same classes as in the previous call to fit; previously \(classes), y has \(found)")
        }
        try train(features, y, incremental: false, reset: reset, caller)
        return self
    }

    /// Runs one epoch over `x` (scikit-learn `partial_fit`); `classes` lists every label and
    /// is required on the first call.
    @discardableResult
    public func partialFit(_ x: Tensor, _ y: [Label], classes: [Label]? = nil) throws -> Self {
        let caller = "MLPClassifier.partialFit"
        let features = try featureMatrix(x, caller)
        try checkSameLength(features.shape[0], y.count, caller)
        let reset = !engine.isFitted
        if reset {
            guard let classes else {
                throw KestrelError.invalidArgument("\(caller): classes must be given on the first call to partialFit")
            }
            try setClasses(distinctLabels(classes), caller)
        } else if let classes, Set(classes) != Set(self.classes) {
            throw KestrelError.invalidArgument(
                "\(caller): classes \(classes) is not the same as on the first call, \(self.classes)")
        }
        try train(features, y, incremental: true, reset: reset, caller)
        return self
    }

    /// `partialFit` for rows of plain arrays.
    @discardableResult
    public func partialFit(_ x: [[Float]], _ y: [Label], classes: [Label]? = nil) throws -> Self {
        try partialFit(featureTensor(x, "MLPClassifier.partialFit"), y, classes: classes)
    }

    private func train(_ x: Tensor, _ y: [Label], incremental: Bool, reset: Bool, _ caller: String) throws {
        let yCodes = try codes(y, caller)
        let binary = classes.count == 2
        let n = yCodes.count
        let targets = binary ? Tensor(shape: [n, 1], scalars: yCodes.map { Float($0) }) : Tensor(labels: yCodes)
        try engine.train(x, targets, outputs: binary ? 1 : classes.count, output: binary ? .logistic : .softmax,
                         parameters: parameters, estimator: "MLPClassifier", incremental: incremental,
                         reset: reset, stratify: yCodes) { [engine] vx, vy in
            let predicted = Self.predictedCodes(try engine.forward(vx), binary: binary)
            let correct = zip(predicted, vy.scalars).filter { Float($0) == $1 }.count
            return Double(correct) / Double(predicted.count)
        }
    }

    private static func predictedCodes(_ probabilities: Tensor, binary: Bool) -> [Int] {
        // scikit-learn's LabelBinarizer thresholds one logistic output at 0.5 (strictly above).
        binary ? probabilities.scalars.map { $0 > 0.5 ? 1 : 0 } : probabilities.argmax()
    }

    /// The probability of each class, columns ordered as `classes` (scikit-learn `predict_proba`).
    public func predictProba(_ x: Tensor) throws -> Tensor {
        let p = try engine.forward(fittedFeatures(x, "MLPClassifier.predictProba"))
        guard classes.count == 2 else { return p }
        var both = [Float](repeating: 0, count: p.count * 2)
        for (i, v) in p.scalars.enumerated() {
            both[2 * i] = 1 - v
            both[2 * i + 1] = v
        }
        return Tensor(shape: [p.count, 2], scalars: both)
    }

    /// The most probable class of each row.
    public func predict(_ x: Tensor) throws -> [Label] {
        let p = try engine.forward(fittedFeatures(x, "MLPClassifier.predict"))
        return Self.predictedCodes(p, binary: classes.count == 2).map { classes[$0] }
    }

    /// The accuracy of `predict(x)` against `y`.
    public func score(_ x: Tensor, _ y: [Label]) throws -> Double {
        try checkSameLength(x.rank >= 1 ? x.shape[0] : 0, y.count, "MLPClassifier.score")
        return try accuracyScore(y, predict(x))
    }

    /// An unfitted classifier with the same parameters.
    public func clone() -> MLPClassifier<Label> {
        MLPClassifier<Label>(parameters: parameters)
    }
}

extension MLPClassifier where Label == Int {
    /// An MLP classifier with integer labels and scikit-learn's defaults.
    public convenience init(hiddenLayerSizes: [Int] = [100], activation: MLPActivation = .relu,
                            solver: MLPSolver = .adam, alpha: Float = 1e-4, batchSize: Int? = nil,
                            learningRate: LearningRateSchedule = .constant, learningRateInit: Float = 1e-3,
                            powerT: Float = 0.5, maxIter: Int = 200, shuffle: Bool = true,
                            randomState: UInt64? = nil, tol: Float = 1e-4, verbose: Bool = false,
                            warmStart: Bool = false, momentum: Float = 0.9, nesterovsMomentum: Bool = true,
                            earlyStopping: Bool = false, validationFraction: Float = 0.1, beta1: Float = 0.9,
                            beta2: Float = 0.999, epsilon: Float = 1e-8, nIterNoChange: Int = 10) {
        // Calls the designated initialiser: the public one of the same signature would be
        // this initialiser again for Int labels.
        self.init(parameters: MLPParameters(
            hiddenLayerSizes: hiddenLayerSizes, activation: activation, solver: solver, alpha: alpha,
            batchSize: batchSize, learningRate: learningRate, learningRateInit: learningRateInit, powerT: powerT,
            maxIter: maxIter, shuffle: shuffle, randomState: randomState, tol: tol, verbose: verbose,
            warmStart: warmStart, momentum: momentum, nesterovsMomentum: nesterovsMomentum,
            earlyStopping: earlyStopping, validationFraction: validationFraction, beta1: beta1, beta2: beta2,
            epsilon: epsilon, nIterNoChange: nIterNoChange))
    }

    /// Trains on class indices held in a tensor (e.g. `FashionMNIST` labels).
    @discardableResult
    public func fit(_ x: Tensor, labels: Tensor) throws -> Self {
        try fit(x, integerLabels(labels, "MLPClassifier.fit"))
    }

    /// Scores against class indices held in a tensor.
    public func score(_ x: Tensor, labels: Tensor) throws -> Double {
        try score(x, integerLabels(labels, "MLPClassifier.score"))
    }
}

/// Integer labels from a tensor of whole numbers.
func integerLabels(_ labels: Tensor, _ caller: String) throws -> [Int] {
    try labels.scalars.enumerated().map { i, v in
        guard v.isFinite, v == v.rounded() else {
            throw KestrelError.invalidArgument("\(caller): label \(v) at position \(i) is not a whole number")
        }
        return Int(v)
    }
}

/// A multi-layer perceptron regressor trained with Adam or SGD on half the squared error,
/// with identity outputs (scikit-learn `MLPRegressor`).
public final class MLPRegressor: MultilayerPerceptron, Estimator {
    /// Trains on one target per sample.
    @discardableResult
    public func fit(_ x: Tensor, _ y: [Float]) throws -> Self {
        try fit(x, targets: Tensor(shape: [y.count, 1], scalars: y))
    }

    /// Trains on targets of shape `[samples]` or `[samples, outputs]` (multi-output regression).
    @discardableResult
    public func fit(_ x: Tensor, targets: Tensor) throws -> Self {
        try train(x, targets, incremental: false, caller: "MLPRegressor.fit")
        return self
    }

    /// Runs one epoch over `x` (scikit-learn `partial_fit`).
    @discardableResult
    public func partialFit(_ x: Tensor, _ y: [Float]) throws -> Self {
        try train(x, Tensor(shape: [y.count, 1], scalars: y), incremental: true, caller: "MLPRegressor.partialFit")
        return self
    }

    /// `partialFit` for rows of plain arrays.
    @discardableResult
    public func partialFit(_ x: [[Float]], _ y: [Float]) throws -> Self {
        try partialFit(featureTensor(x, "MLPRegressor.partialFit"), y)
    }

    private func train(_ x: Tensor, _ y: Tensor, incremental: Bool, caller: String) throws {
        let features = try featureMatrix(x, caller)
        guard y.rank == 1 || y.rank == 2 else {
            throw KestrelError.shapeMismatch("\(caller): targets must have shape [samples] or [samples, outputs], found \(y.shape)")
        }
        try checkSameLength(features.shape[0], y.shape[0], caller)
        if let bad = y.scalars.firstIndex(where: { !$0.isFinite }) {
            throw KestrelError.invalidArgument("\(caller): y contains \(y.scalars[bad]) at position \(bad); expected finite values")
        }
        let targets = y.rank == 1 ? Tensor(shape: [y.shape[0], 1], scalars: y.scalars) : y
        let outputs = targets.shape[1]
        let reset = incremental ? !engine.isFitted : (!engine.isFitted || !warmStart)
        if !reset, outputs != engine.layerUnits.last {
            throw KestrelError.shapeMismatch(
                "\(caller): y has \(outputs) outputs, but the estimator was fitted with \(engine.layerUnits.last ?? 0)")
        }
        try engine.train(features, targets, outputs: outputs, output: .identity, parameters: parameters,
                         estimator: "MLPRegressor", incremental: incremental, reset: reset,
                         stratify: nil) { [engine] vx, vy in
            try r2Score(vy, engine.forward(vx))
        }
    }

    /// The predicted outputs, `[samples, outputs]`.
    public func predictOutputs(_ x: Tensor) throws -> Tensor {
        try engine.forward(fittedFeatures(x, "MLPRegressor.predictOutputs"))
    }

    /// The predicted target of each row (single-output regressors; see `predictOutputs`).
    public func predict(_ x: Tensor) throws -> [Float] {
        let out = try engine.forward(fittedFeatures(x, "MLPRegressor.predict"))
        guard out.shape[1] == 1 else {
            throw KestrelError.invalidArgument(
                "MLPRegressor.predict: the estimator has \(out.shape[1]) outputs; use predictOutputs")
        }
        return out.scalars
    }

    /// The coefficient of determination R² of `predict(x)` against `y`.
    public func score(_ x: Tensor, _ y: [Float]) throws -> Double {
        try r2Score(y, predict(x))
    }

    /// R² averaged uniformly over outputs, for multi-output targets.
    public func score(_ x: Tensor, targets: Tensor) throws -> Double {
        try r2Score(targets, predictOutputs(x))
    }

    /// An unfitted regressor with the same parameters.
    public func clone() -> MLPRegressor {
        MLPRegressor(parameters: parameters)
    }
}
