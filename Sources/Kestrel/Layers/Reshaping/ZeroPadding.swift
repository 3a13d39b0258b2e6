/// Adds or removes rows and columns at the borders of `(height, width, channels)` samples, or
/// steps at the ends of `(steps, channels)` ones: the machinery of `ZeroPadding1D/2D` (amounts
/// ≥ 0 added) and `Cropping1D/2D` (amounts removed).
public class SpatialBorder: Layer {
    /// Per spatial axis, the amount before and after: `[[top, bottom], [left, right]]`, or
    /// `[[start, end]]` for sequences.
    public let amounts: [[Int]]
    /// Whether the amounts are removed (cropping) rather than added as zeros (padding).
    let crops: Bool
    /// The number of spatial axes (1 for sequences, 2 for images).
    let rank: Int

    init(amounts: [[Int]], crops: Bool, rank: Int = 2, inputShape: [Int]?, name: String?) {
        self.amounts = amounts
        self.crops = crops
        self.rank = rank
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let describe = "\(name) (\(className))"
        guard amounts.count == rank, amounts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0 >= 0 } }) else {
            let layout = rank == 1 ? "[start, end]" : "[[top, bottom], [left, right]]"
            throw KestrelError.invalidArgument("\(describe): expected \(layout) of non-negative integers, found \(rank == 1 ? "\(amounts.first ?? [])" : "\(amounts)")")
        }
        guard inputShape.count == rank + 1 else {
            let layout = rank == 1 ? "2 (steps, channels)" : "3 (height, width, channels)"
            throw KestrelError.shapeMismatch("\(describe): expected samples of rank \(layout), found shape \(inputShape)")
        }
        let sign = crops ? -1 : 1
        let spatial = (0..<rank).map { inputShape[$0] + sign * (amounts[$0][0] + amounts[$0][1]) }
        guard spatial.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.shapeMismatch("\(describe): cropping \(amounts) leaves nothing of input shape \(inputShape)")
        }
        return spatial + [inputShape[rank]]
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] {
        ["name": name, crops ? "cropping" : "padding": rank == 1 ? "\(amounts[0])" : "\(amounts)"]
    }

    /// Copies the overlapping region row by row between the larger and the smaller sample;
    /// `toLarger` writes into the larger one (zeroing it first). Sequences are images one
    /// column wide.
    private func copy(batch: Int, large: [Int], small: [Int], from: UnsafePointer<Float>,
                      to: UnsafeMutablePointer<Float>, toLarger: Bool) {
        let channels = large[rank], top = amounts[0][0], left = rank == 1 ? 0 : amounts[1][0]
        let largeWidth = rank == 1 ? 1 : large[1], smallRows = small[0], smallWidth = rank == 1 ? 1 : small[1]
        let largeSize = large.reduce(1, *), smallSize = small.reduce(1, *)
        if toLarger { to.update(repeating: 0, count: batch * largeSize) }
        for n in 0..<batch {
            for i in 0..<smallRows {
                let largeRow = n * largeSize + ((i + top) * largeWidth + left) * channels
                let smallRow = n * smallSize + i * smallWidth * channels
                let count = smallWidth * channels
                if toLarger { (to + largeRow).update(from: from + smallRow, count: count) }
                else { (to + smallRow).update(from: from + largeRow, count: count) }
            }
        }
    }

    public override func forward(_ c: LayerContext) {
        let input = c.inputShapes[0], output = c.outputShape
        if crops { copy(batch: c.batch, large: input, small: output, from: c.input, to: c.output, toLarger: false) }
        else { copy(batch: c.batch, large: output, small: input, from: c.input, to: c.output, toLarger: true) }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let input = c.inputShapes[0], output = c.outputShape
        if crops { copy(batch: c.batch, large: input, small: output, from: c.outputGradient!, to: dx, toLarger: true) }
        else { copy(batch: c.batch, large: output, small: input, from: c.outputGradient!, to: dx, toLarger: false) }
    }
}

/// Adds rows and columns of zeros around `(height, width, channels)` samples (Keras `ZeroPadding2D`).
public final class ZeroPadding2D: SpatialBorder {
    /// The same padding on both sides of each axis: `1`, or `[rows, columns]` (Keras default 1).
    public init(padding: SpatialSize = 1, inputShape: [Int]? = nil, name: String? = nil) {
        let v = padding.resolved(rank: 2) ?? padding.values
        super.init(amounts: v.count == 2 ? [[v[0], v[0]], [v[1], v[1]]] : [v], crops: false,
                   inputShape: inputShape, name: name)
    }

    /// Explicit padding `[[top, bottom], [left, right]]`.
    public init(padding: [[Int]], inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: padding, crops: false, inputShape: inputShape, name: name)
    }
}

/// Removes rows and columns at the borders of `(height, width, channels)` samples (Keras `Cropping2D`).
public final class Cropping2D: SpatialBorder {
    /// The same cropping on both sides of each axis: `1`, or `[rows, columns]` (Keras default 0).
    public init(cropping: SpatialSize = 0, inputShape: [Int]? = nil, name: String? = nil) {
        let v = cropping.resolved(rank: 2) ?? cropping.values
        super.init(amounts: v.count == 2 ? [[v[0], v[0]], [v[1], v[1]]] : [v], crops: true,
                   inputShape: inputShape, name: name)
    }

    /// Explicit cropping `[[top, bottom], [left, right]]`.
    public init(cropping: [[Int]], inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: cropping, crops: true, inputShape: inputShape, name: name)
    }
}

/// Adds zero steps at the start and end of `(steps, channels)` sequences (Keras `ZeroPadding1D`).
public final class ZeroPadding1D: SpatialBorder {
    /// The same padding at both ends (Keras default 1).
    public init(padding: Int = 1, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: [[padding, padding]], crops: false, rank: 1, inputShape: inputShape, name: name)
    }

    /// Padding `[start, end]`.
    public init(padding: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: [padding], crops: false, rank: 1, inputShape: inputShape, name: name)
    }
}

/// Removes steps at the start and end of `(steps, channels)` sequences (Keras `Cropping1D`).
public final class Cropping1D: SpatialBorder {
    /// The same cropping at both ends (Keras default 1).
    public init(cropping: Int = 1, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: [[cropping, cropping]], crops: true, rank: 1, inputShape: inputShape, name: name)
    }

    /// Cropping `[start, end]`.
    public init(cropping: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: [cropping], crops: true, rank: 1, inputShape: inputShape, name: name)
    }
}
