/// Whether the hinge losses' labels are all 0 or 1, which Keras turns into −1 and 1 (deciding
/// over the labels of one call, as Keras does over its batch); other labels are used as they are.
func hingeLabelsAreBinary(_ labels: UnsafePointer<Float>, count: Int) -> Bool {
    (0..<count).allSatisfy { labels[$0] == 0 || labels[$0] == 1 }
}

/// The mean of `max(1 − y·ŷ, 0)` for labels of −1 or 1 (or 0 or 1, converted as in Keras)
/// against raw scores (Keras `Hinge`), the loss of a maximum-margin classifier.
public final class Hinge: ElementwiseLoss {
    /// A hinge loss.
    public init() { super.init(name: "hinge") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let binary = hingeLabelsAreBinary(labels, count: batch * outputShape.reduce(1, *))
        return elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            let label = binary ? 2 * y - 1 : y, margin = 1 - label * p
            return (max(margin, 0), margin > 0 ? -label : 0)
        }
    }
}

/// The mean of `max(1 − y·ŷ, 0)²` (Keras `SquaredHinge`), labels as for `Hinge`.
public final class SquaredHinge: ElementwiseLoss {
    /// A squared hinge loss.
    public init() { super.init(name: "squared_hinge") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let binary = hingeLabelsAreBinary(labels, count: batch * outputShape.reduce(1, *))
        return elementwiseMean(predictions, labels, batch: batch, outputShape: outputShape, gradient: gradient) { p, y in
            let label = binary ? 2 * y - 1 : y, margin = max(1 - label * p, 0)
            return (margin * margin, -2 * label * margin)
        }
    }
}

/// The multi-class hinge loss over one-hot labels along the last axis (Keras
/// `CategoricalHinge`): `max(max over wrong classes of ŷ − ŷ of the right class + 1, 0)`.
public final class CategoricalHinge: Loss {
    /// A categorical hinge loss.
    public init() { super.init(name: "categorical_hinge") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let width = outputShape.last ?? 1, rows = batch * outputShape.reduce(1, *) / max(width, 1)
        var total: Double = 0
        for r in 0..<rows {
            let p = predictions + r * width, t = labels + r * width
            var positive: Float = 0, negative = -Float.infinity, strongest = 0
            for j in 0..<width {
                positive += t[j] * p[j]
                let wrong = (1 - t[j]) * p[j]
                if wrong > negative { negative = wrong; strongest = j }
            }
            let value = negative - positive + 1
            total += Double(max(value, 0))
            guard let g = gradient.map({ $0 + r * width }) else { continue }
            for j in 0..<width {
                g[j] = value > 0 ? (-t[j] + (j == strongest ? 1 - t[j] : 0)) / Float(rows) : 0
            }
        }
        return Float(total / Double(max(rows, 1)))
    }
}
