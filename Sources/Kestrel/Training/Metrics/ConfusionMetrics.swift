import Foundation

/// Which confusion-matrix count a `ConfusionCount` metric keeps.
public enum ConfusionCount: String, Sendable, CaseIterable {
    /// Positive labels predicted positive (Keras `TruePositives`).
    case truePositives = "true_positives"
    /// Negative labels predicted positive (Keras `FalsePositives`).
    case falsePositives = "false_positives"
    /// Negative labels predicted negative (Keras `TrueNegatives`).
    case trueNegatives = "true_negatives"
    /// Positive labels predicted negative (Keras `FalseNegatives`).
    case falseNegatives = "false_negatives"
}

/// The counts of a binary confusion matrix at one decision threshold, as Keras's
/// confusion-matrix metrics keep them: a label is positive when it is not 0, a prediction
/// when it is above the threshold; every element of the output is one decision (or, with
/// `classId`, every element of that class's column).
struct ConfusionTally {
    var truePositives = 0.0, falsePositives = 0.0, trueNegatives = 0.0, falseNegatives = 0.0

    mutating func add(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int, outputShape: [Int],
                      threshold: Float, classId: Int?) {
        let n = batch * outputShape.reduce(1, *)
        let width = outputShape.last ?? 1
        for i in 0..<n where classId.map({ i % width == $0 }) ?? true {
            let positive = labels[i] != 0, predicted = predictions[i] > threshold
            switch (positive, predicted) {
            case (true, true): truePositives += 1
            case (false, true): falsePositives += 1
            case (false, false): trueNegatives += 1
            case (true, false): falseNegatives += 1
            }
        }
    }
}

/// The base of the metrics read from a confusion matrix at one decision threshold: a label
/// is positive when it is not 0, a prediction when it is above the threshold; `classId`
/// limits the counts to one class's column of a multi-class output.
public class ThresholdConfusionMetric: Metric {
    /// The decision threshold applied to predictions.
    public let threshold: Float
    /// The class whose column counts, or nil for every element.
    public let classId: Int?
    var tally = ConfusionTally()

    init(threshold: Float, classId: Int?, name: String) {
        self.threshold = threshold
        self.classId = classId
        super.init(name: name)
    }

    public override func reset() { tally = ConfusionTally() }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        tally.add(predictions: predictions, labels: labels, batch: batch, outputShape: outputShape, threshold: threshold,
                  classId: classId)
    }
}

/// One confusion-matrix count at a threshold (Keras `TruePositives`, `FalsePositives`,
/// `TrueNegatives`, `FalseNegatives`; threshold 0.5): the count since the last reset.
public final class ConfusionCountMetric: ThresholdConfusionMetric {
    /// The count kept.
    public let kind: ConfusionCount

    /// A confusion-matrix count with Keras's default threshold.
    public init(_ kind: ConfusionCount, threshold: Float = 0.5, name: String? = nil) {
        self.kind = kind
        super.init(threshold: threshold, classId: nil, name: name ?? kind.rawValue)
    }

    public override func result() -> Float {
        switch kind {
        case .truePositives: Float(tally.truePositives)
        case .falsePositives: Float(tally.falsePositives)
        case .trueNegatives: Float(tally.trueNegatives)
        case .falseNegatives: Float(tally.falseNegatives)
        }
    }
}

/// The fraction of positive predictions that are right, `tp / (tp + fp)` (0 when nothing is
/// predicted positive), at a threshold (Keras `Precision`, threshold 0.5).
public final class Precision: ThresholdConfusionMetric {
    /// A precision metric with Keras's defaults.
    public override init(threshold: Float = 0.5, classId: Int? = nil, name: String = "precision") {
        super.init(threshold: threshold, classId: classId, name: name)
    }

    public override func result() -> Float {
        let predicted = tally.truePositives + tally.falsePositives
        return predicted == 0 ? 0 : Float(tally.truePositives) / Float(predicted)
    }
}

/// The fraction of positive labels predicted positive, `tp / (tp + fn)` (0 without positive
/// labels), at a threshold (Keras `Recall`, threshold 0.5).
public final class Recall: ThresholdConfusionMetric {
    /// A recall metric with Keras's defaults.
    public override init(threshold: Float = 0.5, classId: Int? = nil, name: String = "recall") {
        super.init(threshold: threshold, classId: classId, name: name)
    }

    public override func result() -> Float {
        let positives = tally.truePositives + tally.falseNegatives
        return positives == 0 ? 0 : Float(tally.truePositives) / Float(positives)
    }
}

/// The area under the ROC or precision-recall curve (Keras `AUC`), approximated as Keras
/// does: predictions (clipped to 0…1, or the sigmoid of logits with `fromLogits`) counted
/// into `numThresholds` evenly spaced thresholds, `−ε` and `1 + ε` at the ends; the ROC area
/// summed by trapezoids (or the lower or upper rectangles), the PR area interpolated as Davis
/// and Goadrich describe. Every element of the output is one decision; a label is positive
/// when it is not 0.
public final class AUC: Metric {
    /// The curve whose area is computed.
    public enum Curve: String, Sendable, CaseIterable {
        /// Recall against the false-positive rate (Keras `"ROC"`).
        case roc = "ROC"
        /// Precision against recall (Keras `"PR"`).
        case pr = "PR"
    }

    /// How the area between thresholds is summed (Keras `summation_method`).
    public enum SummationMethod: String, Sendable, CaseIterable {
        /// Trapezoids for ROC; for PR, precision interpolated between thresholds.
        case interpolation
        /// The lower of the two heights.
        case minoring
        /// The higher of the two heights.
        case majoring
    }

    /// The number of thresholds (Keras default 200).
    public let numThresholds: Int
    /// The curve.
    public let curve: Curve
    /// The summation.
    public let summationMethod: SummationMethod
    /// Whether predictions are logits (a sigmoid is applied first).
    public let fromLogits: Bool
    // The counts at each threshold, gathered per bucket and summed from the top when read.
    private var positives: [Double], negatives: [Double]

    /// An AUC metric with Keras's defaults.
    public init(numThresholds: Int = 200, curve: Curve = .roc, summationMethod: SummationMethod = .interpolation,
                fromLogits: Bool = false, name: String = "auc") throws {
        guard numThresholds > 1 else {
            throw KestrelError.invalidArgument("\(name) (AUC): numThresholds must be greater than 1, found \(numThresholds)")
        }
        self.numThresholds = numThresholds
        self.curve = curve
        self.summationMethod = summationMethod
        self.fromLogits = fromLogits
        positives = Array(repeating: 0, count: numThresholds)
        negatives = Array(repeating: 0, count: numThresholds)
        super.init(name: name)
    }

    public override func reset() {
        for i in 0..<numThresholds {
            positives[i] = 0
            negatives[i] = 0
        }
    }

    public override func update(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                outputShape: [Int]) {
        let n = batch * outputShape.reduce(1, *)
        let scale = Float(numThresholds - 1)
        for i in 0..<n {
            var p = predictions[i]
            if fromLogits { p = 1 / (1 + Foundation.exp(-p)) }
            p = min(max(p, 0), 1)
            // A prediction is above threshold t_i = i / (n − 1) for every i below
            // ceil(p · (n − 1)) (Keras's bucket, at least the first: −ε is below everything).
            let bucket = max(Int((p * scale).rounded(.up)) - 1, 0)
            if labels[i] != 0 { positives[bucket] += 1 } else { negatives[bucket] += 1 }
        }
    }

    /// True and false positives at each threshold, and the totals, in Keras's float32.
    private func counts() -> (tp: [Float], fp: [Float], tn: [Float], fn: [Float]) {
        var tp = [Float](repeating: 0, count: numThresholds), fp = tp
        var above = 0.0, falseAbove = 0.0
        for i in stride(from: numThresholds - 1, through: 0, by: -1) {
            above += positives[i]
            falseAbove += negatives[i]
            tp[i] = Float(above)
            fp[i] = Float(falseAbove)
        }
        let allTrue = Float(above), allFalse = Float(falseAbove)
        return (tp, fp, fp.map { allFalse - $0 }, tp.map { allTrue - $0 })
    }

    public override func result() -> Float {
        let (tp, fp, tn, fn) = counts()
        func ratio(_ a: Float, _ b: Float) -> Float { b == 0 ? 0 : a / b }
        let m = numThresholds
        if curve == .pr && summationMethod == .interpolation {
            var area: Float = 0
            for i in 0..<(m - 1) {
                let dtp = tp[i] - tp[i + 1]
                let p0 = tp[i] + fp[i], p1 = tp[i + 1] + fp[i + 1]
                let slope = ratio(dtp, max(p0 - p1, 0))
                let intercept = tp[i + 1] - slope * p1
                let pRatio = p0 > 0 && p1 > 0 ? ratio(p0, max(p1, 0)) : 1
                area += ratio(slope * (dtp + intercept * Foundation.log(pRatio)), max(tp[i + 1] + fn[i + 1], 0))
            }
            return area
        }
        let recall = (0..<m).map { ratio(tp[$0], tp[$0] + fn[$0]) }
        let x: [Float], y: [Float]
        switch curve {
        case .roc: (x, y) = ((0..<m).map { ratio(fp[$0], fp[$0] + tn[$0]) }, recall)
        case .pr: (x, y) = (recall, (0..<m).map { ratio(tp[$0], tp[$0] + fp[$0]) })
        }
        var area: Float = 0
        for i in 0..<(m - 1) {
            let height: Float = switch summationMethod {
            case .interpolation: (y[i] + y[i + 1]) / 2
            case .minoring: min(y[i], y[i + 1])
            case .majoring: max(y[i], y[i + 1])
            }
            area += (x[i] - x[i + 1]) * height
        }
        return area
    }
}
