/// A stateful metric (Keras `keras.metrics.Metric`): `reset`, `update` per batch, `result`.
///
/// Metrics read raw prediction and label buffers, so that updating one during training
/// allocates nothing.
open class Metric {
    /// The name in logs and History (Keras's: "accuracy", "mean_squared_error", …).
    public var name: String
    var total: Double = 0
    var count: Double = 0

    /// A metric with the given log name.
    public init(name: String) { self.name = name }

    /// Clears the state (start of each epoch and evaluation).
    open func reset() {
        total = 0
        count = 0
    }

    /// Accumulates one batch of `batch` samples.
    open func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                     outputShape: [Int]) {
        preconditionFailure("\(type(of: self)) does not implement update")
    }

    /// The value over everything accumulated since the last reset.
    open func result() -> Float { count == 0 ? 0 : Float(total / count) }

    /// Updates the metric from label and prediction tensors (batch first).
    public func update(_ yTrue: Tensor, _ yPred: Tensor) {
        yTrue.scalars.withUnsafeBufferPointer { t in
            yPred.scalars.withUnsafeBufferPointer { p in
                update(predictions: p.baseAddress!, labels: t.baseAddress!, batch: yPred.shape.first ?? 0,
                       outputShape: Array(yPred.shape.dropFirst()))
            }
        }
    }
}

/// The weighted mean of values it is given (Keras `Mean`); tracks the loss during `fit`.
public final class Mean: Metric {
    /// A running mean.
    public override init(name: String = "mean") { super.init(name: name) }

    /// Adds `value` with weight `weight` (e.g. a batch's mean loss weighted by its size).
    public func update(value: Float, weight: Float = 1) {
        total += Double(value) * Double(weight)
        count += Double(weight)
    }

    /// Treats each prediction as a value to average.
    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let n = batch * outputShape.reduce(1, *)
        for i in 0..<n { total += Double(predictions[i]) }
        count += Double(n)
    }
}

/// The fraction of samples whose highest-scoring class is the integer label
/// (Keras `SparseCategoricalAccuracy`).
public final class SparseCategoricalAccuracy: Metric {
    /// A sparse categorical accuracy metric.
    public override init(name: String = "sparse_categorical_accuracy") { super.init(name: name) }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let classes = outputShape.last ?? 1
        let rows = batch * outputShape.dropLast().reduce(1, *)
        var hits = 0
        for r in 0..<rows where Kernels.argmax(predictions + r * classes, count: classes) == Int(labels[r]) { hits += 1 }
        total += Double(hits)
        count += Double(rows)
    }
}

/// The fraction of samples whose highest-scoring class is the label's highest
/// (Keras `CategoricalAccuracy`, one-hot labels).
public final class CategoricalAccuracy: Metric {
    /// A categorical accuracy metric.
    public override init(name: String = "categorical_accuracy") { super.init(name: name) }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let classes = outputShape.last ?? 1
        let rows = batch * outputShape.dropLast().reduce(1, *)
        var hits = 0
        for r in 0..<rows where Kernels.argmax(predictions + r * classes, count: classes)
            == Kernels.argmax(labels + r * classes, count: classes) { hits += 1 }
        total += Double(hits)
        count += Double(rows)
    }
}

/// The fraction of elements where `prediction > threshold` equals the 0/1 label
/// (Keras `BinaryAccuracy`, threshold 0.5).
public final class BinaryAccuracy: Metric {
    /// The decision threshold applied to predictions.
    public let threshold: Float

    /// A binary accuracy metric.
    public init(name: String = "binary_accuracy", threshold: Float = 0.5) {
        self.threshold = threshold
        super.init(name: name)
    }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let n = batch * outputShape.reduce(1, *)
        var hits = 0
        for i in 0..<n where (predictions[i] > threshold ? Float(1) : 0) == labels[i] { hits += 1 }
        total += Double(hits)
        count += Double(n)
    }
}

/// Whether the target class is among the `k` highest scores (Keras `TopKCategoricalAccuracy`
/// for one-hot labels, `SparseTopKCategoricalAccuracy` for integer labels; k defaults to 5).
public final class TopKCategoricalAccuracy: Metric {
    /// How many top classes count as a hit.
    public let k: Int
    /// Whether labels are class indices (sparse) rather than one-hot rows.
    public let sparse: Bool

    /// A top-k accuracy metric.
    public init(k: Int = 5, sparse: Bool = false, name: String? = nil) {
        self.k = k
        self.sparse = sparse
        super.init(name: name ?? (sparse ? "sparse_top_k_categorical_accuracy" : "top_k_categorical_accuracy"))
    }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let classes = outputShape.last ?? 1
        let rows = batch * outputShape.dropLast().reduce(1, *)
        var hits = 0
        for r in 0..<rows {
            let p = predictions + r * classes
            let target = sparse ? Int(labels[r]) : Kernels.argmax(labels + r * classes, count: classes)
            let value = p[target]
            // In top k when fewer than k classes score strictly higher (TensorFlow's in_top_k).
            var higher = 0
            for j in 0..<classes where p[j] > value { higher += 1 }
            if higher < k { hits += 1 }
        }
        total += Double(hits)
        count += Double(rows)
    }
}

/// Mean squared error as a metric (Keras `MeanSquaredError` metric, log name "mean_squared_error").
public final class MeanSquaredErrorMetric: Metric {
    /// A mean squared error metric.
    public override init(name: String = "mean_squared_error") { super.init(name: name) }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let n = batch * outputShape.reduce(1, *)
        for i in 0..<n { let d = Double(predictions[i] - labels[i]); total += d * d }
        count += Double(n)
    }
}

/// Mean absolute error as a metric (Keras `MeanAbsoluteError` metric, log name "mean_absolute_error").
public final class MeanAbsoluteErrorMetric: Metric {
    /// A mean absolute error metric.
    public override init(name: String = "mean_absolute_error") { super.init(name: name) }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let n = batch * outputShape.reduce(1, *)
        for i in 0..<n { total += Double(abs(predictions[i] - labels[i])) }
        count += Double(n)
    }
}

/// A loss's value as a metric, averaged over every sample seen (Keras's metrics of the same
/// formulas: `MeanSquaredLogarithmicError`, `MeanAbsolutePercentageError`, `LogCoshError`,
/// `CosineSimilarity` (the similarity itself, where the loss is its negative), `Hinge`,
/// `SquaredHinge`, `CategoricalHinge`, `KLDivergence`, `Poisson`).
public final class LossMetric: Metric {
    /// The loss whose value is averaged.
    public let loss: Loss
    /// −1 where Keras's metric is the loss's negative (cosine similarity), else 1.
    let sign: Double

    /// The metric of `loss` (its value, negated for `CosineSimilarity` as Keras's metric is),
    /// logged as `name` (the loss's by default).
    public init(_ loss: Loss, name: String? = nil) {
        self.loss = loss
        sign = loss is CosineSimilarity ? -1 : 1
        super.init(name: name ?? loss.name)
    }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        guard batch > 0 else { return }
        // Every sample has as many rows as the others: the batch's mean weighs as its size.
        let value = loss.compute(predictions: predictions, labels: labels, batch: batch, outputShape: outputShape, gradient: nil)
        total += sign * Double(value) * Double(batch)
        count += Double(batch)
    }
}

/// The square root of the mean squared error over everything seen (Keras `RootMeanSquaredError`).
public final class RootMeanSquaredError: Metric {
    /// A root mean squared error metric.
    public override init(name: String = "root_mean_squared_error") { super.init(name: name) }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let n = batch * outputShape.reduce(1, *)
        for i in 0..<n { let d = Double(predictions[i] - labels[i]); total += d * d }
        count += Double(n)
    }

    public override func result() -> Float { count == 0 ? 0 : Float((total / count).squareRoot()) }
}

/// A metric named in `compile`, resolved against the model's output and label shapes when
/// training starts, the way Keras resolves the string "accuracy".
public struct MetricSpec: ExpressibleByStringLiteral, Sendable {
    let key: String
    let make: @Sendable (_ outputShape: [Int], _ labelShape: [Int]) -> Metric

    /// A metric from a factory (a custom `Metric` subclass).
    public init(name: String, _ make: @escaping @Sendable () -> Metric) {
        key = name
        self.make = { _, _ in make() }
    }

    init(key: String, make: @escaping @Sendable ([Int], [Int]) -> Metric) {
        self.key = key
        self.make = make
    }

    /// A metric by its Keras string name ("accuracy", "acc", "mse", "mae", "top_k_categorical_accuracy", …).
    public init(stringLiteral name: String) {
        do { self = try MetricSpec(named: name) } catch {
            let message = "\(error)"
            self = MetricSpec(key: name) { _, _ in UnknownMetric(name: name, message: message) }
        }
    }

    /// A metric by its Keras string name; throws for unknown names.
    public init(named name: String) throws {
        switch name {
        case "accuracy", "acc": self = .accuracy
        case "sparse_categorical_accuracy": self = .sparseCategoricalAccuracy
        case "categorical_accuracy": self = .categoricalAccuracy
        case "binary_accuracy": self = .binaryAccuracy()
        case "top_k_categorical_accuracy": self = .topKCategoricalAccuracy()
        case "sparse_top_k_categorical_accuracy": self = .sparseTopKCategoricalAccuracy()
        case "mse", "mean_squared_error": self = .meanSquaredError
        case "mae", "mean_absolute_error": self = .meanAbsoluteError
        case "precision": self = .precision()
        case "recall": self = .recall()
        case "auc": self = .auc()
        case "root_mean_squared_error": self = .rootMeanSquaredError
        case "msle", "mean_squared_logarithmic_error": self = .meanSquaredLogarithmicError
        case "mape", "mean_absolute_percentage_error": self = .meanAbsolutePercentageError
        case "logcosh", "log_cosh", "log_cosh_error": self = .logCoshError
        case "cosine_similarity": self = .cosineSimilarity
        case "hinge": self = .hinge
        case "squared_hinge": self = .squaredHinge
        case "categorical_hinge": self = .categoricalHinge
        case "kld", "kl_divergence": self = .klDivergence
        case "poisson": self = .poisson
        default:
            if let kind = ConfusionCount(rawValue: name) {
                self = .confusionCount(kind)
                return
            }
            throw KestrelError.invalidArgument(
                "metrics: unknown metric '\(name)'; expected accuracy, sparse_categorical_accuracy, categorical_accuracy, binary_accuracy, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mse, mae, root_mean_squared_error, msle, mape, logcosh, cosine_similarity, hinge, squared_hinge, categorical_hinge, kl_divergence, poisson, precision, recall, auc, true_positives, false_positives, true_negatives or false_negatives")
        }
    }

    /// "accuracy": binary when the output has one unit, sparse categorical when labels have
    /// one axis fewer than outputs (or a last axis of 1), categorical otherwise.
    public static let accuracy = MetricSpec(key: "accuracy") { output, label in
        let isBinary = output.last == 1
        let isSparse = label.count < output.count || (label.last == 1 && (output.last ?? 1) > 1)
        if isBinary { return BinaryAccuracy(name: "accuracy") }
        if isSparse { return SparseCategoricalAccuracy(name: "accuracy") }
        return CategoricalAccuracy(name: "accuracy")
    }
    /// Keras `SparseCategoricalAccuracy`.
    public static let sparseCategoricalAccuracy = MetricSpec(key: "sparse_categorical_accuracy") { _, _ in SparseCategoricalAccuracy() }
    /// Keras `CategoricalAccuracy`.
    public static let categoricalAccuracy = MetricSpec(key: "categorical_accuracy") { _, _ in CategoricalAccuracy() }
    /// Keras `BinaryAccuracy`.
    public static func binaryAccuracy(threshold: Float = 0.5) -> MetricSpec {
        MetricSpec(key: "binary_accuracy") { _, _ in BinaryAccuracy(threshold: threshold) }
    }
    /// Keras `TopKCategoricalAccuracy`.
    public static func topKCategoricalAccuracy(k: Int = 5) -> MetricSpec {
        MetricSpec(key: "top_k_categorical_accuracy") { _, _ in TopKCategoricalAccuracy(k: k) }
    }
    /// Keras `SparseTopKCategoricalAccuracy`.
    public static func sparseTopKCategoricalAccuracy(k: Int = 5) -> MetricSpec {
        MetricSpec(key: "sparse_top_k_categorical_accuracy") { _, _ in TopKCategoricalAccuracy(k: k, sparse: true) }
    }
    /// Keras `Precision` (threshold 0.5; `classId`: one class's column).
    public static func precision(threshold: Float = 0.5, classId: Int? = nil, name: String = "precision") -> MetricSpec {
        MetricSpec(key: name) { _, _ in Precision(threshold: threshold, classId: classId, name: name) }
    }
    /// Keras `Recall` (threshold 0.5; `classId`: one class's column).
    public static func recall(threshold: Float = 0.5, classId: Int? = nil, name: String = "recall") -> MetricSpec {
        MetricSpec(key: name) { _, _ in Recall(threshold: threshold, classId: classId, name: name) }
    }
    /// Keras `AUC` (200 thresholds, the ROC curve, interpolated); `curve: .pr` for the area
    /// under the precision-recall curve.
    public static func auc(numThresholds: Int = 200, curve: AUC.Curve = .roc,
                           summationMethod: AUC.SummationMethod = .interpolation, fromLogits: Bool = false,
                           name: String? = nil) -> MetricSpec {
        let name = name ?? "auc"
        return MetricSpec(key: name) { _, _ in
            do {
                return try AUC(numThresholds: numThresholds, curve: curve, summationMethod: summationMethod,
                               fromLogits: fromLogits, name: name)
            } catch {
                return UnknownMetric(name: name, message: "\(error)")
            }
        }
    }
    /// Keras `TruePositives`, `FalsePositives`, `TrueNegatives` or `FalseNegatives` (threshold 0.5).
    public static func confusionCount(_ kind: ConfusionCount, threshold: Float = 0.5, name: String? = nil) -> MetricSpec {
        let name = name ?? kind.rawValue
        return MetricSpec(key: name) { _, _ in ConfusionCountMetric(kind, threshold: threshold, name: name) }
    }
    /// Mean squared error ("mse").
    public static let meanSquaredError = MetricSpec(key: "mean_squared_error") { _, _ in MeanSquaredErrorMetric() }
    /// Mean absolute error ("mae").
    public static let meanAbsoluteError = MetricSpec(key: "mean_absolute_error") { _, _ in MeanAbsoluteErrorMetric() }
    /// Keras `RootMeanSquaredError`.
    public static let rootMeanSquaredError = MetricSpec(key: "root_mean_squared_error") { _, _ in RootMeanSquaredError() }
    /// Keras `MeanSquaredLogarithmicError` ("msle").
    public static let meanSquaredLogarithmicError = lossMetric("mean_squared_logarithmic_error") { MeanSquaredLogarithmicError() }
    /// Keras `MeanAbsolutePercentageError` ("mape").
    public static let meanAbsolutePercentageError = lossMetric("mean_absolute_percentage_error") { MeanAbsolutePercentageError() }
    /// Keras `LogCoshError` ("logcosh").
    public static let logCoshError = lossMetric("logcosh") { LogCosh() }
    /// Keras `CosineSimilarity` (over the last axis; 1 when prediction and label point the same way).
    public static let cosineSimilarity = lossMetric("cosine_similarity") { CosineSimilarity() }
    /// Keras `Hinge`.
    public static let hinge = lossMetric("hinge") { Hinge() }
    /// Keras `SquaredHinge`.
    public static let squaredHinge = lossMetric("squared_hinge") { SquaredHinge() }
    /// Keras `CategoricalHinge`.
    public static let categoricalHinge = lossMetric("categorical_hinge") { CategoricalHinge() }
    /// Keras `KLDivergence` ("kld").
    public static let klDivergence = lossMetric("kl_divergence") { KLDivergence() }
    /// Keras `Poisson`.
    public static let poisson = lossMetric("poisson") { Poisson() }

    private static func lossMetric(_ name: String, _ loss: @escaping @Sendable () -> Loss) -> MetricSpec {
        MetricSpec(key: name) { _, _ in LossMetric(loss(), name: name) }
    }
}

/// Stands for a metric `compile` could not make (an unknown name, an invalid argument);
/// `compile` rejects it with its message.
final class UnknownMetric: Metric {
    let message: String

    init(name: String, message: String) {
        self.message = message
        super.init(name: name)
    }
}
