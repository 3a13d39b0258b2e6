import Foundation
import Kestrel

/// A supervised model with scikit-learn's calls: `fit`, `predict`, `score`, and an unfitted
/// copy with the same parameters (scikit-learn `BaseEstimator` + `clone`).
///
/// Estimators are classes, as in scikit-learn: `fit` changes the estimator and returns it, so
/// calls chain (`try MLPClassifier().fit(x, y).predict(x)`).
public protocol Estimator: AnyObject {
    /// What the estimator predicts per sample: a class label or a number.
    associatedtype Target

    /// Learns from samples `x` (one row per sample) and their targets.
    @discardableResult
    func fit(_ x: Tensor, _ y: [Target]) throws -> Self

    /// The predicted target of each row of `x`.
    func predict(_ x: Tensor) throws -> [Target]

    /// The default score of the predictions on `x` against `y`: accuracy for classifiers,
    /// R² for regressors (higher is better).
    func score(_ x: Tensor, _ y: [Target]) throws -> Double

    /// An unfitted estimator with the same parameters (scikit-learn `clone`).
    func clone() throws -> Self
}

/// An estimator whose targets are class labels and that gives class probabilities.
public protocol Classifier: Estimator where Target: Hashable {
    /// The classes seen in `fit`, in the order of the probability columns (scikit-learn `classes_`).
    var classes: [Target] { get }

    /// The probability of each class (columns ordered as `classes`) for each row of `x`.
    func predictProba(_ x: Tensor) throws -> Tensor
}

/// A fitted transformation of feature matrices (scikit-learn transformers: scalers, encoders).
public protocol Transformer: AnyObject {
    /// Learns the transformation's statistics from `x`.
    @discardableResult
    func fit(_ x: Tensor) throws -> Self

    /// Applies the learned transformation.
    func transform(_ x: Tensor) throws -> Tensor

    /// An unfitted transformer with the same parameters.
    func clone() -> Self
}

public extension Transformer {
    /// Fits on `x` and returns `x` transformed (scikit-learn `fit_transform`).
    func fitTransform(_ x: Tensor) throws -> Tensor {
        try fit(x).transform(x)
    }

    /// Fits on rows of plain arrays.
    @discardableResult
    func fit(_ x: [[Float]]) throws -> Self { try fit(featureTensor(x, "\(Self.self).fit")) }

    /// Transforms rows of plain arrays.
    func transform(_ x: [[Float]]) throws -> [[Float]] {
        try rows(of: transform(featureTensor(x, "\(Self.self).transform")))
    }

    /// Fits on and transforms rows of plain arrays.
    func fitTransform(_ x: [[Float]]) throws -> [[Float]] {
        try rows(of: fitTransform(featureTensor(x, "\(Self.self).fitTransform")))
    }
}

public extension Estimator {
    /// Learns from rows of plain arrays.
    @discardableResult
    func fit(_ x: [[Float]], _ y: [Target]) throws -> Self {
        try fit(featureTensor(x, "\(Self.self).fit"), y)
    }

    /// Predicts from rows of plain arrays.
    func predict(_ x: [[Float]]) throws -> [Target] {
        try predict(featureTensor(x, "\(Self.self).predict"))
    }

    /// Scores on rows of plain arrays.
    func score(_ x: [[Float]], _ y: [Target]) throws -> Double {
        try score(featureTensor(x, "\(Self.self).score"), y)
    }
}

public extension Classifier {
    /// Class probabilities for rows of plain arrays.
    func predictProba(_ x: [[Float]]) throws -> [[Float]] {
        try rows(of: predictProba(featureTensor(x, "\(Self.self).predictProba")))
    }

    /// The natural logarithm of `predictProba` (scikit-learn `predict_log_proba`).
    func predictLogProba(_ x: Tensor) throws -> Tensor {
        try predictProba(x).map { logf($0) }
    }
}

/// The rows of a rank-2 tensor as arrays.
public func rows(of tensor: Tensor) -> [[Float]] {
    guard tensor.rank >= 1, tensor.shape[0] > 0 else { return [] }
    let width = tensor.sampleSize
    return (0..<tensor.shape[0]).map { Array(tensor.scalars[($0 * width)..<(($0 + 1) * width)]) }
}

/// A feature tensor from rows, with the caller named in the ragged-row error.
func featureTensor(_ x: [[Float]], _ caller: String) throws -> Tensor {
    let width = x.first?.count ?? 0
    for (i, row) in x.enumerated() where row.count != width {
        throw KestrelError.shapeMismatch(
            "\(caller): row \(i) has \(row.count) features, expected \(width) like row 0")
    }
    return Tensor(shape: [x.count, width], scalars: x.flatMap { $0 })
}

/// Checks a feature matrix as scikit-learn's `check_array` does and returns it as
/// `[samples, features]`: at least one sample and one feature, only finite values. Tensors of
/// higher rank (images) are flattened per sample, since every estimator here sees a table.
func featureMatrix(_ x: Tensor, _ caller: String, features expected: Int? = nil) throws -> Tensor {
    guard x.rank >= 2 else {
        throw KestrelError.shapeMismatch(
            "\(caller): expected a 2-D array of shape [samples, features], found shape \(x.shape); use a [n, 1] tensor for a single feature")
    }
    let n = x.shape[0], f = x.sampleSize
    guard n > 0 else { throw KestrelError.invalidArgument("\(caller): found 0 samples, expected at least 1") }
    guard f > 0 else { throw KestrelError.invalidArgument("\(caller): found 0 features, expected at least 1") }
    if let expected, expected != f {
        throw KestrelError.shapeMismatch(
            "\(caller): x has \(f) features, but the estimator was fitted with \(expected) features")
    }
    if let bad = x.scalars.firstIndex(where: { !$0.isFinite }) {
        throw KestrelError.invalidArgument(
            "\(caller): x contains \(x.scalars[bad]) at sample \(bad / f), feature \(bad % f); expected finite values")
    }
    return x.rank == 2 ? x : Tensor(shape: [n, f], scalars: x.scalars)
}

/// Checks that `x` and `y` have the same number of samples.
func checkSameLength(_ samples: Int, _ targets: Int, _ caller: String) throws {
    guard samples == targets else {
        throw KestrelError.shapeMismatch("\(caller): x has \(samples) samples but y has \(targets)")
    }
}

/// Arrays whose elements can be sorted; lets generic code over `Hashable` labels sort them
/// when they also are `Comparable` (scikit-learn sorts `classes_`).
protocol SortableArray {
    /// The array sorted ascending, type-erased.
    func sortedAscending() -> Any
}

extension Array: SortableArray where Element: Comparable {
    func sortedAscending() -> Any { sorted() }
}

/// The distinct labels of `labels`: sorted when the type is `Comparable` (as scikit-learn's
/// `classes_`), otherwise in order of first appearance.
func distinctLabels<Label: Hashable>(_ labels: [Label]) -> [Label] {
    var seen = Set<Label>()
    let unique = labels.filter { seen.insert($0).inserted }
    if let sortable = unique as? any SortableArray, let sorted = sortable.sortedAscending() as? [Label] {
        return sorted
    }
    return unique
}

/// A seed from the system generator, for estimators whose `randomState` is nil.
func freshSeed() -> UInt64 {
    var system = SystemRandomNumberGenerator()
    return system.next()
}
