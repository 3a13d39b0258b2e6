import Foundation
import Kestrel

/// How per-class precision, recall and F1 are combined into one number (scikit-learn `average`).
public enum Average<Label: Hashable> {
    /// Only the given positive class's value (scikit-learn `average="binary"`, `pos_label`).
    case binary(positive: Label)
    /// From the total true positives, false positives and false negatives over all classes.
    case micro
    /// The unweighted mean over classes.
    case macro
    /// The mean over classes weighted by each class's number of true samples (support).
    case weighted
}

/// The fraction of predictions equal to the true labels (scikit-learn `accuracy_score`).
public func accuracyScore<Label: Equatable>(_ yTrue: [Label], _ yPred: [Label]) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "accuracyScore")
    return Double(zip(yTrue, yPred).filter { $0 == $1 }.count) / Double(yTrue.count)
}

/// The confusion matrix: entry `[i][j]` counts samples of true class `labels[i]` predicted as
/// `labels[j]` (scikit-learn `confusion_matrix`). `labels` defaults to every label seen,
/// sorted when `Comparable`.
public func confusionMatrix<Label: Hashable>(_ yTrue: [Label], _ yPred: [Label], labels: [Label]? = nil) throws -> [[Int]] {
    try checkPairs(yTrue.count, yPred.count, "confusionMatrix")
    let order = labels ?? distinctLabels(yTrue + yPred)
    guard !order.isEmpty else { throw KestrelError.invalidArgument("confusionMatrix: labels must not be empty") }
    let index = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    var matrix = Array(repeating: Array(repeating: 0, count: order.count), count: order.count)
    for (t, p) in zip(yTrue, yPred) {
        if let i = index[t], let j = index[p] { matrix[i][j] += 1 }
    }
    return matrix
}

/// Precision, recall, F1 and support of each class, in the order of `labels`.
public struct ClassMetrics: Sendable, Equatable {
    /// True positives / predicted positives (0 when nothing was predicted, as scikit-learn's default).
    public var precision: [Double]
    /// True positives / actual positives (0 when the class has no samples).
    public var recall: [Double]
    /// The harmonic mean of precision and recall (0 when both are 0).
    public var f1: [Double]
    /// The number of true samples of each class.
    public var support: [Int]
}

/// Per-class precision, recall, F1 and support (scikit-learn `precision_recall_fscore_support`
/// with `average=None`).
public func precisionRecallFScoreSupport<Label: Hashable>(_ yTrue: [Label], _ yPred: [Label],
                                                          labels: [Label]? = nil) throws -> ClassMetrics {
    let order = labels ?? distinctLabels(yTrue + yPred)
    let m = try confusionMatrix(yTrue, yPred, labels: order)
    var result = ClassMetrics(precision: [], recall: [], f1: [], support: [])
    for i in order.indices {
        let tp = Double(m[i][i])
        let predicted = Double(m.reduce(0) { $0 + $1[i] })
        let actual = m[i].reduce(0, +)
        let p = predicted > 0 ? tp / predicted : 0
        let r = actual > 0 ? tp / Double(actual) : 0
        result.precision.append(p)
        result.recall.append(r)
        result.f1.append(p + r > 0 ? 2 * p * r / (p + r) : 0)
        result.support.append(actual)
    }
    return result
}

private enum Measure { case precision, recall, f1 }

private func averaged<Label: Hashable>(_ measure: Measure, _ yTrue: [Label], _ yPred: [Label],
                                       _ average: Average<Label>, _ caller: String) throws -> Double {
    let order = distinctLabels(yTrue + yPred)
    let stats = try precisionRecallFScoreSupport(yTrue, yPred, labels: order)
    let values: [Double]
    switch measure {
    case .precision: values = stats.precision
    case .recall: values = stats.recall
    case .f1: values = stats.f1
    }
    switch average {
    case .binary(let positive):
        guard let i = order.firstIndex(of: positive) else {
            throw KestrelError.invalidArgument(
                "\(caller): the positive label \(positive) is not among the labels \(order)")
        }
        guard order.count <= 2 else {
            throw KestrelError.invalidArgument(
                "\(caller): average .binary needs at most 2 labels, found \(order.count); use .micro, .macro or .weighted")
        }
        return values[i]
    case .macro:
        return values.reduce(0, +) / Double(values.count)
    case .weighted:
        let total = stats.support.reduce(0, +)
        guard total > 0 else { return 0 }
        return zip(values, stats.support).reduce(0) { $0 + $1.0 * Double($1.1) } / Double(total)
    case .micro:
        // Every false positive of one class is a false negative of another, so micro
        // precision, recall and F1 all equal the accuracy over the listed labels.
        let m = try confusionMatrix(yTrue, yPred, labels: order)
        let tp = order.indices.reduce(0) { $0 + m[$1][$1] }
        let all = m.joined().reduce(0, +)
        return all > 0 ? Double(tp) / Double(all) : 0
    }
}

/// Precision: of the samples predicted as a class, the share that belong to it
/// (scikit-learn `precision_score`).
public func precisionScore<Label: Hashable>(_ yTrue: [Label], _ yPred: [Label], average: Average<Label> = .macro) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "precisionScore")
    return try averaged(.precision, yTrue, yPred, average, "precisionScore")
}

/// Recall: of the samples of a class, the share predicted as it (scikit-learn `recall_score`).
public func recallScore<Label: Hashable>(_ yTrue: [Label], _ yPred: [Label], average: Average<Label> = .macro) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "recallScore")
    return try averaged(.recall, yTrue, yPred, average, "recallScore")
}

/// F1: the harmonic mean of precision and recall (scikit-learn `f1_score`).
public func f1Score<Label: Hashable>(_ yTrue: [Label], _ yPred: [Label], average: Average<Label> = .macro) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "f1Score")
    return try averaged(.f1, yTrue, yPred, average, "f1Score")
}

/// The text report of per-class precision, recall, F1 and support with accuracy, macro and
/// weighted averages, laid out as scikit-learn's `classification_report`.
public func classificationReport<Label: Hashable>(_ yTrue: [Label], _ yPred: [Label], labels: [Label]? = nil,
                                                  targetNames: [String]? = nil, digits: Int = 2) throws -> String {
    try checkPairs(yTrue.count, yPred.count, "classificationReport")
    let order = labels ?? distinctLabels(yTrue + yPred)
    let names = targetNames ?? order.map { "\($0)" }
    guard names.count == order.count else {
        throw KestrelError.invalidArgument(
            "classificationReport: \(order.count) labels but \(names.count) target names")
    }
    let stats = try precisionRecallFScoreSupport(yTrue, yPred, labels: order)
    let width = max(names.map(\.count).max() ?? 0, "weighted avg".count, digits)
    func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(w - s.count, 0)) + s }
    func number(_ v: Double) -> String { pad(String(format: "%.\(digits)f", v), 9) }
    func line(_ name: String, _ p: Double, _ r: Double, _ f: Double, _ support: Int) -> String {
        pad(name, width) + " " + " " + number(p) + " " + number(r) + " " + number(f) + " " + pad("\(support)", 9) + "\n"
    }
    var report = pad("", width) + " " + ["precision", "recall", "f1-score", "support"].map { " " + pad($0, 9) }.joined() + "\n\n"
    for i in order.indices {
        report += line(names[i], stats.precision[i], stats.recall[i], stats.f1[i], stats.support[i])
    }
    report += "\n"
    let total = stats.support.reduce(0, +)
    // With every seen label listed, micro averages equal accuracy and scikit-learn prints
    // them as one "accuracy" line.
    let allLabels = labels == nil || Set(order) == Set(yTrue + yPred)
    let micro = try averaged(.f1, yTrue, yPred, .micro, "classificationReport")
    if allLabels {
        report += pad("accuracy", width) + " " + " " + pad("", 9) + " " + pad("", 9) + " " + number(micro) + " " + pad("\(total)", 9) + "\n"
    } else {
        report += line("micro avg", micro, micro, micro, total)
    }
    func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(v.count, 1)) }
    func weighted(_ v: [Double]) -> Double {
        total > 0 ? zip(v, stats.support).reduce(0) { $0 + $1.0 * Double($1.1) } / Double(total) : 0
    }
    report += line("macro avg", mean(stats.precision), mean(stats.recall), mean(stats.f1), total)
    report += line("weighted avg", weighted(stats.precision), weighted(stats.recall), weighted(stats.f1), total)
    return report
}

/// The coefficient of determination R² = 1 - Σ(y - ŷ)² / Σ(y - ȳ)² (scikit-learn `r2_score`);
/// 1 for a perfect fit of constant targets and 0 for an imperfect one, as scikit-learn's
/// `force_finite`.
public func r2Score(_ yTrue: [Float], _ yPred: [Float]) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "r2Score")
    let mean = yTrue.reduce(0.0) { $0 + Double($1) } / Double(yTrue.count)
    var residual = 0.0, totalSquares = 0.0
    for (t, p) in zip(yTrue, yPred) {
        residual += (Double(t) - Double(p)) * (Double(t) - Double(p))
        totalSquares += (Double(t) - mean) * (Double(t) - mean)
    }
    if totalSquares == 0 { return residual == 0 ? 1 : 0 }
    return 1 - residual / totalSquares
}

/// R² of each output column averaged uniformly (scikit-learn `multioutput="uniform_average"`),
/// for tensors of shape `[samples]` or `[samples, outputs]`.
public func r2Score(_ yTrue: Tensor, _ yPred: Tensor) throws -> Double {
    guard yTrue.count == yPred.count, yTrue.rank >= 1, yPred.rank >= 1, yTrue.shape[0] == yPred.shape[0] else {
        throw KestrelError.shapeMismatch("r2Score: targets \(yTrue.shape) and predictions \(yPred.shape) differ in shape")
    }
    let outputs = yTrue.rank == 1 ? 1 : yTrue.sampleSize
    var total = 0.0
    for j in 0..<outputs {
        let column = { (t: Tensor) in stride(from: j, to: t.count, by: outputs).map { t.scalars[$0] } }
        total += try r2Score(column(yTrue), column(yPred))
    }
    return total / Double(outputs)
}

/// The mean of squared differences (scikit-learn `mean_squared_error`).
public func meanSquaredError(_ yTrue: [Float], _ yPred: [Float]) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "meanSquaredError")
    return zip(yTrue, yPred).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
        / Double(yTrue.count)
}

/// The mean of absolute differences (scikit-learn `mean_absolute_error`).
public func meanAbsoluteError(_ yTrue: [Float], _ yPred: [Float]) throws -> Double {
    try checkPairs(yTrue.count, yPred.count, "meanAbsoluteError")
    return zip(yTrue, yPred).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(yTrue.count)
}

private func checkPairs(_ a: Int, _ b: Int, _ caller: String) throws {
    guard a == b else {
        throw KestrelError.shapeMismatch("\(caller): yTrue has \(a) values but yPred has \(b)")
    }
    guard a > 0 else { throw KestrelError.invalidArgument("\(caller): found 0 samples, expected at least 1") }
}
