/// Adds or removes slices, rows and columns at the borders of `(depth, height, width,
/// channels)` or `(height, width, channels)` samples, or steps at the ends of `(steps,
/// channels)` ones: the machinery of `ZeroPadding1D/2D/3D` (amounts ≥ 0 added) and
/// `Cropping1D/2D/3D` (amounts removed).
public class SpatialBorder: Layer {
    /// Per spatial axis, the amount before and after: `[[top, bottom], [left, right]]` for
    /// images, `[[front, back], [top, bottom], [left, right]]` for volumes, `[[start, end]]`
    /// for sequences.
    public let amounts: [[Int]]
    /// Whether the amounts are removed (cropping) rather than added as zeros (padding).
    let crops: Bool
    /// The number of spatial axes (1 for sequences, 2 for images, 3 for volumes).
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
            let layout = rank == 1 ? "[start, end]" : rank == 2 ? "[[top, bottom], [left, right]]"
                : "[[front, back], [top, bottom], [left, right]]"
            throw KestrelError.invalidArgument("\(describe): expected \(layout) of non-negative integers, found \(rank == 1 ? "\(amounts.first ?? [])" : "\(amounts)")")
        }
        guard inputShape.count == rank + 1 else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected samples of rank \(rank + 1) \(sampleLayout(rank: rank)), found shape \(inputShape)")
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
    /// `toLarger` writes into the larger one (zeroing it first). Every sample is seen as a
    /// volume: images have depth 1, sequences depth 1 and height 1.
    private func copy(batch: Int, large: [Int], small: [Int], from: UnsafePointer<Float>,
                      to: UnsafeMutablePointer<Float>, toLarger: Bool) {
        // Sizes and leading amounts of the volume view's axis 0, 1 or 2.
        func size(_ shape: [Int], _ axis: Int) -> Int { axis < 3 - rank ? 1 : shape[axis - 3 + rank] }
        func before(_ axis: Int) -> Int { axis < 3 - rank ? 0 : amounts[axis - 3 + rank][0] }
        let channels = large[rank]
        let largeHeight = size(large, 1), largeWidth = size(large, 2)
        let smallDepth = size(small, 0), smallHeight = size(small, 1), smallWidth = size(small, 2)
        let largeSize = large.reduce(1, *), smallSize = small.reduce(1, *)
        let count = smallWidth * channels
        if toLarger { to.update(repeating: 0, count: batch * largeSize) }
        for n in 0..<batch {
            for d in 0..<smallDepth {
                for i in 0..<smallHeight {
                    let largeRow = n * largeSize
                        + (((d + before(0)) * largeHeight + i + before(1)) * largeWidth + before(2)) * channels
                    let smallRow = n * smallSize + (d * smallHeight + i) * count
                    if toLarger { (to + largeRow).update(from: from + smallRow, count: count) }
                    else { (to + smallRow).update(from: from + largeRow, count: count) }
                }
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

/// Adds slices, rows and columns of zeros around `(depth, height, width, channels)` samples
/// (Keras `ZeroPadding3D`).
public final class ZeroPadding3D: SpatialBorder {
    /// The same padding on both sides of each axis: `1`, or `[slices, rows, columns]` (Keras default 1).
    public init(padding: SpatialSize = 1, inputShape: [Int]? = nil, name: String? = nil) {
        let v = padding.resolved(rank: 3) ?? padding.values
        super.init(amounts: v.count == 3 ? v.map { [$0, $0] } : [v], crops: false, rank: 3,
                   inputShape: inputShape, name: name)
    }

    /// Explicit padding `[[front, back], [top, bottom], [left, right]]`.
    public init(padding: [[Int]], inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: padding, crops: false, rank: 3, inputShape: inputShape, name: name)
    }
}

/// Removes slices, rows and columns at the borders of `(depth, height, width, channels)`
/// samples (Keras `Cropping3D`).
public final class Cropping3D: SpatialBorder {
    /// The same cropping on both sides of each axis: `1`, or `[slices, rows, columns]` (Keras default 1).
    public init(cropping: SpatialSize = 1, inputShape: [Int]? = nil, name: String? = nil) {
        let v = cropping.resolved(rank: 3) ?? cropping.values
        super.init(amounts: v.count == 3 ? v.map { [$0, $0] } : [v], crops: true, rank: 3,
                   inputShape: inputShape, name: name)
    }

    /// Explicit cropping `[[front, back], [top, bottom], [left, right]]`.
    public init(cropping: [[Int]], inputShape: [Int]? = nil, name: String? = nil) {
        super.init(amounts: cropping, crops: true, rank: 3, inputShape: inputShape, name: name)
    }
}
