import Foundation
import Kestrel

/// Per-column statistics in double precision, so that large tables do not lose accuracy.
private func columnMeansAndVariances(_ x: Tensor) -> (mean: [Double], variance: [Double]) {
    let n = x.shape[0], f = x.shape[1]
    var mean = [Double](repeating: 0, count: f)
    var squares = [Double](repeating: 0, count: f)
    x.scalars.withUnsafeBufferPointer { p in
        for r in 0..<n { for j in 0..<f { mean[j] += Double(p[r * f + j]) } }
        for j in 0..<f { mean[j] /= Double(n) }
        for r in 0..<n {
            for j in 0..<f {
                let d = Double(p[r * f + j]) - mean[j]
                squares[j] += d * d
            }
        }
    }
    return (mean, squares.map { $0 / Double(n) })
}

/// Applies `(x - shift[j]) * factor[j]` to every column.
private func affine(_ x: Tensor, shift: [Double], factor: [Double]) -> Tensor {
    let f = shift.count
    var out = x
    out.scalars.withUnsafeMutableBufferPointer { p in
        for i in 0..<p.count {
            let j = i % f
            p[i] = Float((Double(p[i]) - shift[j]) * factor[j])
        }
    }
    return out
}

/// Standardises each feature to zero mean and unit variance (scikit-learn `StandardScaler`).
/// Constant features keep a scale of 1, as in scikit-learn.
public final class StandardScaler: Transformer {
    /// Whether to subtract the mean.
    public var withMean: Bool
    /// Whether to divide by the standard deviation.
    public var withStd: Bool
    /// Each feature's mean (scikit-learn `mean_`).
    public private(set) var mean: [Double]?
    /// Each feature's population variance (scikit-learn `var_`).
    public private(set) var variance: [Double]?
    /// The divisor of each feature (scikit-learn `scale_`).
    public private(set) var scale: [Double]?
    /// The number of samples seen (scikit-learn `n_samples_seen_`).
    public private(set) var nSamplesSeen = 0

    /// A standard scaler (scikit-learn defaults: center and scale).
    public init(withMean: Bool = true, withStd: Bool = true) {
        self.withMean = withMean
        self.withStd = withStd
    }

    /// Computes the mean and standard deviation of each column.
    @discardableResult
    public func fit(_ x: Tensor) throws -> Self {
        let m = try featureMatrix(x, "StandardScaler.fit")
        let stats = columnMeansAndVariances(m)
        mean = stats.mean
        variance = stats.variance
        // Near-constant columns would blow up; scikit-learn treats a zero deviation as 1.
        scale = stats.variance.map { $0.squareRoot() < 10 * Double.ulpOfOne ? 1 : $0.squareRoot() }
        nSamplesSeen = m.shape[0]
        return self
    }

    /// Centres and scales `x` with the fitted statistics.
    public func transform(_ x: Tensor) throws -> Tensor {
        guard let mean, let scale else { throw KestrelError.notReady("StandardScaler.transform: call fit first") }
        let m = try featureMatrix(x, "StandardScaler.transform", features: mean.count)
        return affine(m, shift: withMean ? mean : mean.map { _ in 0 },
                      factor: withStd ? scale.map { 1 / $0 } : scale.map { _ in 1 })
    }

    /// Undoes `transform` (scikit-learn `inverse_transform`).
    public func inverseTransform(_ x: Tensor) throws -> Tensor {
        guard let mean, let scale else { throw KestrelError.notReady("StandardScaler.inverseTransform: call fit first") }
        let m = try featureMatrix(x, "StandardScaler.inverseTransform", features: mean.count)
        let factor = withStd ? scale : scale.map { _ in 1 }
        let shift = withMean ? zip(mean, factor).map { -$0 / $1 } : mean.map { _ in 0 }
        return affine(m, shift: shift, factor: factor)
    }

    /// An unfitted scaler with the same options.
    public func clone() -> StandardScaler { StandardScaler(withMean: withMean, withStd: withStd) }
}

/// Scales each feature linearly into `featureRange` (scikit-learn `MinMaxScaler`, default 0…1).
public final class MinMaxScaler: Transformer {
    /// The target range of each feature.
    public var featureRange: ClosedRange<Float>
    /// Each feature's minimum in the fitted data (scikit-learn `data_min_`).
    public private(set) var dataMin: [Double]?
    /// Each feature's maximum in the fitted data (scikit-learn `data_max_`).
    public private(set) var dataMax: [Double]?

    /// A min-max scaler.
    public init(featureRange: ClosedRange<Float> = 0...1) {
        self.featureRange = featureRange
    }

    /// Records each column's minimum and maximum.
    @discardableResult
    public func fit(_ x: Tensor) throws -> Self {
        guard featureRange.lowerBound < featureRange.upperBound else {
            throw KestrelError.invalidArgument(
                "MinMaxScaler: featureRange must have its minimum below its maximum, found \(featureRange)")
        }
        let m = try featureMatrix(x, "MinMaxScaler.fit")
        let f = m.shape[1]
        var low = [Double](repeating: .infinity, count: f), high = [Double](repeating: -.infinity, count: f)
        for (i, v) in m.scalars.enumerated() {
            low[i % f] = min(low[i % f], Double(v))
            high[i % f] = max(high[i % f], Double(v))
        }
        dataMin = low
        dataMax = high
        return self
    }

    /// Each column's multiplier (scikit-learn `scale_`); a constant column gets the range's width.
    public var scale: [Double]? {
        guard let dataMin, let dataMax else { return nil }
        let width = Double(featureRange.upperBound - featureRange.lowerBound)
        return zip(dataMin, dataMax).map { $1 - $0 == 0 ? width : width / ($1 - $0) }
    }

    /// Maps each column's fitted minimum…maximum onto `featureRange`.
    public func transform(_ x: Tensor) throws -> Tensor {
        guard let dataMin, let scale else { throw KestrelError.notReady("MinMaxScaler.transform: call fit first") }
        let m = try featureMatrix(x, "MinMaxScaler.transform", features: dataMin.count)
        // x·scale + (low - min·scale), written as (x - shift)·scale.
        let low = Double(featureRange.lowerBound)
        return affine(m, shift: zip(dataMin, scale).map { $0 - low / $1 }, factor: scale)
    }

    /// An unfitted scaler with the same range.
    public func clone() -> MinMaxScaler { MinMaxScaler(featureRange: featureRange) }
}

/// Maps labels of any `Hashable` type to 0…classes-1 and back (scikit-learn `LabelEncoder`).
public final class LabelEncoder<Label: Hashable> {
    /// The distinct labels, sorted when `Comparable` (scikit-learn `classes_`).
    public private(set) var classes: [Label] = []
    private var index: [Label: Int] = [:]

    /// An unfitted encoder.
    public init() {}

    /// Learns the distinct labels.
    @discardableResult
    public func fit(_ y: [Label]) -> Self {
        classes = distinctLabels(y)
        index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        return self
    }

    /// The index of each label; throws for a label not seen in `fit`.
    public func transform(_ y: [Label]) throws -> [Int] {
        try y.enumerated().map { i, label in
            guard let c = index[label] else {
                throw KestrelError.invalidArgument("LabelEncoder.transform: y contains the unseen label \(label) at position \(i)")
            }
            return c
        }
    }

    /// Fits and encodes.
    public func fitTransform(_ y: [Label]) throws -> [Int] { try fit(y).transform(y) }

    /// The label of each index.
    public func inverseTransform(_ codes: [Int]) throws -> [Label] {
        try codes.map { c in
            guard c >= 0 && c < classes.count else {
                throw KestrelError.invalidArgument("LabelEncoder.inverseTransform: index \(c) is not in 0..<\(classes.count)")
            }
            return classes[c]
        }
    }
}

/// Encodes categorical columns as one-hot indicator columns (scikit-learn `OneHotEncoder`,
/// dense output). Each input column's categories are sorted when `Comparable`.
public final class OneHotEncoder<Category: Hashable> {
    /// What to do with a category not seen in `fit`.
    public enum UnknownHandling: Sendable {
        /// Throw an error naming the row, column and value (scikit-learn `handle_unknown="error"`).
        case error
        /// Encode it as all zeros (scikit-learn `handle_unknown="ignore"`).
        case ignore
    }

    /// The handling of unseen categories.
    public var handleUnknown: UnknownHandling
    /// Each column's categories, in output order (scikit-learn `categories_`).
    public private(set) var categories: [[Category]] = []
    private var index: [[Category: Int]] = []

    /// A one-hot encoder.
    public init(handleUnknown: UnknownHandling = .error) {
        self.handleUnknown = handleUnknown
    }

    /// Learns each column's categories from rows of equal length.
    @discardableResult
    public func fit(_ rows: [[Category]]) throws -> Self {
        let width = try checkRows(rows, "OneHotEncoder.fit", expected: nil)
        categories = (0..<width).map { j in distinctLabels(rows.map { $0[j] }) }
        index = categories.map { Dictionary(uniqueKeysWithValues: $0.enumerated().map { ($1, $0) }) }
        return self
    }

    /// The indicator matrix, `[rows, Σ categories]`.
    public func transform(_ rows: [[Category]]) throws -> Tensor {
        guard !categories.isEmpty else { throw KestrelError.notReady("OneHotEncoder.transform: call fit first") }
        _ = try checkRows(rows, "OneHotEncoder.transform", expected: categories.count)
        let offsets = categories.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        let width = offsets.last!
        var out = [Float](repeating: 0, count: rows.count * width)
        for (r, row) in rows.enumerated() {
            for (j, value) in row.enumerated() {
                if let c = index[j][value] {
                    out[r * width + offsets[j] + c] = 1
                } else if handleUnknown == .error {
                    throw KestrelError.invalidArgument(
                        "OneHotEncoder.transform: unknown category \(value) in row \(r), column \(j)")
                }
            }
        }
        return Tensor(shape: [rows.count, width], scalars: out)
    }

    /// Fits and encodes.
    public func fitTransform(_ rows: [[Category]]) throws -> Tensor { try fit(rows).transform(rows) }

    private func checkRows(_ rows: [[Category]], _ caller: String, expected: Int?) throws -> Int {
        guard let width = expected ?? rows.first?.count, width > 0 else {
            throw KestrelError.invalidArgument("\(caller): expected at least one row with at least one column")
        }
        for (i, row) in rows.enumerated() where row.count != width {
            throw KestrelError.shapeMismatch("\(caller): row \(i) has \(row.count) columns, expected \(width)")
        }
        return width
    }
}

/// Transformers applied in order before a final estimator, with the estimator's calls
/// (scikit-learn `Pipeline`, e.g. a `StandardScaler` then an `MLPClassifier`). `fit` fits each
/// transformer on the output of the previous one.
public final class Pipeline<Final: Estimator>: Estimator {
    /// The transformers, applied first to last.
    public let transformers: [any Transformer]
    /// The final estimator.
    public let estimator: Final

    /// A pipeline of `transformers` followed by `estimator`.
    public init(_ transformers: [any Transformer], _ estimator: Final) {
        self.transformers = transformers
        self.estimator = estimator
    }

    /// A pipeline of one transformer followed by `estimator`.
    public convenience init(_ transformer: any Transformer, _ estimator: Final) {
        self.init([transformer], estimator)
    }

    private func transformed(_ x: Tensor) throws -> Tensor {
        try transformers.reduce(x) { try $1.transform($0) }
    }

    /// Fits each transformer in turn, then the estimator on the transformed samples.
    @discardableResult
    public func fit(_ x: Tensor, _ y: [Final.Target]) throws -> Self {
        let last = try transformers.reduce(x) { try $1.fitTransform($0) }
        try estimator.fit(last, y)
        return self
    }

    /// Predicts from transformed samples.
    public func predict(_ x: Tensor) throws -> [Final.Target] { try estimator.predict(transformed(x)) }

    /// Scores the estimator on transformed samples.
    public func score(_ x: Tensor, _ y: [Final.Target]) throws -> Double { try estimator.score(transformed(x), y) }

    /// An unfitted pipeline with clones of every step.
    public func clone() throws -> Pipeline<Final> {
        Pipeline(transformers.map { $0.clone() }, try estimator.clone())
    }
}

extension Pipeline: Classifier where Final: Classifier {
    /// The final classifier's classes.
    public var classes: [Final.Target] { estimator.classes }

    /// Class probabilities from transformed samples.
    public func predictProba(_ x: Tensor) throws -> Tensor { try estimator.predictProba(transformed(x)) }
}
