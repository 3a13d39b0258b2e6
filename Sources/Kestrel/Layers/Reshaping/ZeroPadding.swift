/// Adds or removes rows and columns at the borders of `(height, width, channels)` samples:
/// the machinery of `ZeroPadding2D` (amounts ≥ 0 added) and `Cropping2D` (amounts removed).
public class SpatialBorder: Layer {
    /// Rows before and after, columns before and after: `[[top, bottom], [left, right]]`.
    public let amounts: [[Int]]
    /// Whether the amounts are removed (cropping) rather than added as zeros (padding).
    let crops: Bool

    init(amounts: [[Int]], crops: Bool, inputShape: [Int]?, name: String?) {
        self.amounts = amounts
        self.crops = crops
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let describe = "\(name) (\(className))"
        guard amounts.count == 2, amounts.allSatisfy({ $0.count == 2 && $0.allSatisfy { $0 >= 0 } }) else {
            throw KestrelError.invalidArgument(
                "\(describe): expected [[top, bottom], [left, right]] of non-negative integers, found \(amounts)")
        }
        guard inputShape.count == 3 else {
            throw KestrelError.shapeMismatch("\(describe): expected samples of rank 3 (height, width, channels), found shape \(inputShape)")
        }
        let sign = crops ? -1 : 1
        let h = inputShape[0] + sign * (amounts[0][0] + amounts[0][1])
        let w = inputShape[1] + sign * (amounts[1][0] + amounts[1][1])
        guard h > 0, w > 0 else {
            throw KestrelError.shapeMismatch("\(describe): cropping \(amounts) leaves nothing of input shape \(inputShape)")
        }
        return [h, w, inputShape[2]]
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, crops ? "cropping" : "padding": "\(amounts)"] }

    /// Copies the overlapping region row by row between the larger and the smaller sample;
    /// `toLarger` writes into the larger one (zeroing it first).
    private func copy(batch: Int, large: [Int], small: [Int], from: UnsafePointer<Float>,
                      to: UnsafeMutablePointer<Float>, toLarger: Bool) {
        let channels = large[2], top = amounts[0][0], left = amounts[1][0]
        let largeSize = large.reduce(1, *), smallSize = small.reduce(1, *)
        if toLarger { to.update(repeating: 0, count: batch * largeSize) }
        for n in 0..<batch {
            for i in 0..<small[0] {
                let largeRow = n * largeSize + ((i + top) * large[1] + left) * channels
                let smallRow = n * smallSize + i * small[1] * channels
                let count = small[1] * channels
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
