import Foundation
import Kestrel

/// Settings shared by `KerasClassifier` and `KerasRegressor` (as in SciKeras): how the
/// wrapped model is built, compiled and trained.
public struct KerasTraining {
    /// Makes the optimizer when the built model is not compiled yet (default `Adam()`).
    public var optimizer: () -> Optimizer
    /// Epochs per `fit` (SciKeras default 1).
    public var epochs: Int
    /// Samples per batch (Keras default 32).
    public var batchSize: Int
    /// Keras's verbosity for `fit` (0 silent).
    public var verbose: Int
    /// Whether `fit` shuffles each epoch.
    public var shuffle: Bool
    /// The share of samples `fit` holds out for validation (the last ones, as Keras).
    public var validationSplit: Float
    /// Callbacks for each `fit`.
    public var callbacks: [Callback]
    /// Seeds Kestrel's global generator before the model is built (weights, shuffles); this
    /// affects the whole process, like Keras's `set_random_seed`.
    public var randomState: UInt64?

    /// Training settings with SciKeras's and Keras's defaults.
    public init(optimizer: @escaping () -> Optimizer = { Adam() }, epochs: Int = 1, batchSize: Int = 32,
                verbose: Int = 0, shuffle: Bool = true, validationSplit: Float = 0, callbacks: [Callback] = [],
                randomState: UInt64? = nil) {
        self.optimizer = optimizer
        self.epochs = epochs
        self.batchSize = batchSize
        self.verbose = verbose
        self.shuffle = shuffle
        self.validationSplit = validationSplit
        self.callbacks = callbacks
        self.randomState = randomState
    }
}

/// Builds a model from `build`, sized for samples of shape `sampleShape`.
private func buildModel(_ build: () throws -> Model, sampleShape: [Int], training: KerasTraining) throws -> Model {
    if let seed = training.randomState { Kestrel.setRandomSeed(seed) }
    let model = try build()
    if let sequential = model as? Sequential, sequential.inputShape == nil {
        try sequential.build(inputShape: sampleShape)
    } else {
        try model.build()
    }
    return model
}

/// Checks a batch of samples of any rank for a Keras model.
private func sampleBatch(_ x: Tensor, _ caller: String) throws -> Tensor {
    guard x.rank >= 2 else {
        throw KestrelError.shapeMismatch("\(caller): expected samples along the first axis, found shape \(x.shape)")
    }
    guard x.shape[0] > 0 else { throw KestrelError.invalidArgument("\(caller): found 0 samples, expected at least 1") }
    return x
}

/// Any Kestrel model with scikit-learn's classifier calls (SciKeras `KerasClassifier`).
///
/// `build` makes a fresh model for every `fit`, so the estimator can be cloned for
/// cross-validation and grid search. A model that `build` leaves uncompiled is compiled with
/// `training.optimizer` and, by the number of outputs, `SparseCategoricalCrossentropy` or (one
/// output, two classes) `BinaryCrossentropy`, both `fromLogits: outputsAreLogits`. Labels of any
/// `Hashable` type are mapped to class indices 0…k-1 in the order of `classes`.
public final class KerasClassifier<Label: Hashable>: Classifier {
    /// Makes the model to train.
    public var build: () throws -> Model
    /// Whether the model's outputs are logits (true) or probabilities, when `build` leaves the
    /// model uncompiled; a compiled model's loss says it instead.
    public var outputsAreLogits: Bool
    /// How to compile and train the model.
    public var training: KerasTraining

    /// The model trained by the last `fit`.
    public private(set) var model: Model?
    /// The History of the last `fit`.
    public private(set) var history: History?
    /// The classes seen in `fit`, sorted when `Comparable`.
    public private(set) var classes: [Label] = []
    private var classIndex: [Label: Int] = [:]

    /// A classifier around the models `build` makes.
    public init(outputsAreLogits: Bool = true, training: KerasTraining = KerasTraining(),
                build: @escaping () throws -> Model) {
        self.build = build
        self.outputsAreLogits = outputsAreLogits
        self.training = training
    }

    /// Builds, compiles if needed, and trains a new model.
    @discardableResult
    public func fit(_ x: Tensor, _ y: [Label]) throws -> Self {
        let caller = "KerasClassifier.fit"
        let samples = try sampleBatch(x, caller)
        try checkSameLength(samples.shape[0], y.count, caller)
        classes = distinctLabels(y)
        guard classes.count >= 2 else {
            throw KestrelError.invalidArgument("\(caller): expected at least 2 classes, found \(classes.count)")
        }
        classIndex = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        let network = try buildModel(build, sampleShape: Array(samples.shape.dropFirst()), training: training)
        let outputs = network.outputShape?.last ?? 0
        guard outputs == classes.count || (outputs == 1 && classes.count == 2) else {
            throw KestrelError.shapeMismatch(
                "\(caller): the model has \(outputs) outputs for \(classes.count) classes; expected \(classes.count) (or 1 for two classes)")
        }
        // A compiled model has its optimizer at once (its loss is resolved only when fit starts).
        if network.optimizer == nil {
            let loss: Loss = outputs == 1
                ? BinaryCrossentropy(fromLogits: outputsAreLogits)
                : SparseCategoricalCrossentropy(fromLogits: outputsAreLogits)
            network.compile(optimizer: training.optimizer(), loss: loss, metrics: [.accuracy])
        }
        let labels = Tensor(labels: y.map { classIndex[$0]! })
        history = try network.fit(samples, labels, batchSize: training.batchSize, epochs: training.epochs,
                                  verbose: training.verbose, callbacks: training.callbacks,
                                  validationSplit: training.validationSplit, shuffle: training.shuffle)
        model = network
        return self
    }

    private var logits: Bool {
        switch model?.loss {
        case let l as SparseCategoricalCrossentropy: return l.fromLogits
        case let l as CategoricalCrossentropy: return l.fromLogits
        case let l as BinaryCrossentropy: return l.fromLogits
        default: return outputsAreLogits
        }
    }

    /// Class probabilities, columns ordered as `classes`.
    public func predictProba(_ x: Tensor) throws -> Tensor {
        guard let model else { throw KestrelError.notReady("KerasClassifier.predictProba: call fit first") }
        var out = try model.predict(sampleBatch(x, "KerasClassifier.predictProba"))
        let k = out.sampleSize, n = out.shape[0]
        if k == 1 {
            let p = logits ? out.scalars.map { 1 / (1 + expf(-$0)) } : out.scalars
            return Tensor(shape: [n, 2], scalars: p.flatMap { [1 - $0, $0] })
        }
        if logits {
            out.scalars.withUnsafeMutableBufferPointer { p in
                for r in 0..<n {
                    let row = p.baseAddress! + r * k
                    var m = -Float.infinity
                    for j in 0..<k { m = max(m, row[j]) }
                    var s: Float = 0
                    for j in 0..<k { row[j] = expf(row[j] - m); s += row[j] }
                    for j in 0..<k { row[j] /= s }
                }
            }
        }
        return try out.reshaped([n, k])
    }

    /// The most probable class of each sample.
    public func predict(_ x: Tensor) throws -> [Label] {
        try predictProba(x).argmax().map { classes[$0] }
    }

    /// The accuracy of `predict(x)` against `y`.
    public func score(_ x: Tensor, _ y: [Label]) throws -> Double { try accuracyScore(y, predict(x)) }

    /// An unfitted classifier with the same builder and settings.
    public func clone() -> KerasClassifier<Label> {
        KerasClassifier(outputsAreLogits: outputsAreLogits, training: training, build: build)
    }
}

/// Any Kestrel model with scikit-learn's regressor calls (SciKeras `KerasRegressor`).
/// A model that `build` leaves uncompiled is compiled with `training.optimizer` and
/// `MeanSquaredError`.
public final class KerasRegressor: Estimator {
    /// Makes the model to train.
    public var build: () throws -> Model
    /// How to compile and train the model.
    public var training: KerasTraining
    /// The model trained by the last `fit`.
    public private(set) var model: Model?
    /// The History of the last `fit`.
    public private(set) var history: History?

    /// A regressor around the models `build` makes.
    public init(training: KerasTraining = KerasTraining(), build: @escaping () throws -> Model) {
        self.build = build
        self.training = training
    }

    /// Builds, compiles if needed, and trains a new model on one target per sample.
    @discardableResult
    public func fit(_ x: Tensor, _ y: [Float]) throws -> Self {
        let caller = "KerasRegressor.fit"
        let samples = try sampleBatch(x, caller)
        try checkSameLength(samples.shape[0], y.count, caller)
        let network = try buildModel(build, sampleShape: Array(samples.shape.dropFirst()), training: training)
        guard network.outputShape == [1] else {
            throw KestrelError.shapeMismatch(
                "\(caller): expected a model with one output unit, found output shape \(network.outputShape ?? [])")
        }
        if network.optimizer == nil { network.compile(optimizer: training.optimizer(), loss: MeanSquaredError()) }
        history = try network.fit(samples, Tensor(shape: [y.count, 1], scalars: y), batchSize: training.batchSize,
                                  epochs: training.epochs, verbose: training.verbose, callbacks: training.callbacks,
                                  validationSplit: training.validationSplit, shuffle: training.shuffle)
        model = network
        return self
    }

    /// The model's output for each sample.
    public func predict(_ x: Tensor) throws -> [Float] {
        guard let model else { throw KestrelError.notReady("KerasRegressor.predict: call fit first") }
        return try model.predict(sampleBatch(x, "KerasRegressor.predict")).scalars
    }

    /// R² of `predict(x)` against `y`.
    public func score(_ x: Tensor, _ y: [Float]) throws -> Double { try r2Score(y, predict(x)) }

    /// An unfitted regressor with the same builder and settings.
    public func clone() -> KerasRegressor { KerasRegressor(training: training, build: build) }
}
