/// Standardises inputs as `(x − mean) / max(√variance, 1e-7)` with one mean and variance per
/// position along `axis`, learned from data by `adapt(_:)` or given (Keras `Normalization`);
/// with `invert` it maps standardised values back (`mean + x · √variance`).
public final class Normalization: Layer {
    public override var supportsMasking: Bool { true }
    /// The axes that keep their own mean and variance, Keras's way: negative from the end,
    /// positive counting the batch axis as 0. Empty: one mean and variance for every value
    /// (Keras `axis=None`).
    public let axis: [Int]
    /// Whether the layer undoes the standardisation instead.
    public let invert: Bool
    /// The mean given at construction (one value, or one per kept position), if any; otherwise
    /// the layer has Keras's non-trainable weights `mean`, `variance` and `count`, set by
    /// `adapt(_:)` or `setWeights`.
    public let mean: [Float]?
    /// The variance given with `mean`.
    public let variance: [Float]?

    /// Keras's smallest standard deviation (`backend.epsilon()`).
    static let epsilon: Float = 1e-7

    /// For each scalar of a sample, the index of its mean and variance.
    private var parameterIndex: [Int] = []
    /// The shape of the mean and variance once built (the kept axes' sizes).
    public private(set) var keptShape: [Int] = []
    /// The kept axes once built, as sample axes (0 is the first axis after the batch), ascending.
    public private(set) var keptAxes: [Int] = []

    /// A normalization keeping a mean and variance per position along `axis` (Keras default
    /// the last axis); `mean` and `variance` fix them instead of `adapt(_:)`.
    public init(axis: [Int] = [-1], mean: [Float]? = nil, variance: [Float]? = nil, invert: Bool = false,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.axis = axis
        self.mean = mean
        self.variance = variance
        self.invert = invert
        super.init(name: name, inputShape: inputShape)
    }

    /// A normalization keeping a mean and variance per position along one axis.
    public convenience init(axis: Int, mean: [Float]? = nil, variance: [Float]? = nil, invert: Bool = false,
                            inputShape: [Int]? = nil, name: String? = nil) {
        self.init(axis: [axis], mean: mean, variance: variance, invert: invert, inputShape: inputShape, name: name)
    }

    /// The number of means (and variances) once built.
    private var keptCount: Int { keptShape.reduce(1, *) }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let describe = "\(name) (Normalization)"
        let rank = inputShape.count
        var kept: [Int] = []
        for a in axis {
            let resolved = a < 0 ? a + rank + 1 : a
            guard resolved >= 1, resolved <= rank else {
                throw KestrelError.invalidArgument(
                    "\(describe): axis \(a) is outside samples of shape \(inputShape) (0 is the batch axis, which cannot keep its own mean)")
            }
            guard !kept.contains(resolved - 1) else {
                throw KestrelError.invalidArgument("\(describe): axis \(axis) names axis \(a) twice")
            }
            kept.append(resolved - 1)
        }
        kept.sort()
        keptAxes = kept
        keptShape = kept.map { inputShape[$0] }
        let count = keptShape.reduce(1, *)
        if (mean == nil) != (variance == nil) {
            throw KestrelError.invalidArgument("\(describe): give both mean and variance, or neither (and call adapt)")
        }
        if let mean, let variance {
            guard mean.count == variance.count, mean.count == 1 || mean.count == count else {
                throw KestrelError.invalidArgument(
                    "\(describe): mean and variance must hold 1 or \(count) values (shape \(keptShape)), found \(mean.count) and \(variance.count)")
            }
        }
        // Strides of the kept axes within the kept shape, then each sample scalar's index.
        var keptStride = [Int](repeating: 0, count: rank)
        var step = 1
        for k in kept.reversed() { keptStride[k] = step; step *= inputShape[k] }
        let size = inputShape.reduce(1, *)
        parameterIndex = [Int](repeating: 0, count: size)
        for i in 0..<size {
            var rest = i, index = 0
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                index += (rest % inputShape[axis]) * keptStride[axis]
                rest /= inputShape[axis]
            }
            parameterIndex[i] = index
        }
        return inputShape
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        guard mean == nil else { return [] }
        return [WeightSpec(name: "mean", shape: keptShape, initializer: .zeros, trainable: false),
                WeightSpec(name: "variance", shape: keptShape, initializer: .ones, trainable: false),
                WeightSpec(name: "count", shape: [], initializer: .zeros, trainable: false)]
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        2 * keptCount
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] {
        ["name": name, "axis": "\(axis)", "invert": "\(invert)",
         "mean": mean.map { "\($0)" } ?? "None", "variance": variance.map { "\($0)" } ?? "None"]
    }

    /// Writes each kept position's mean and standard deviation (√variance, at least 1e-7) to
    /// `means` and `deviations`, from the given values or the weights `variables`.
    private func statistics(into means: UnsafeMutablePointer<Float>, _ deviations: UnsafeMutablePointer<Float>,
                            variables: [UnsafeMutablePointer<Float>]) {
        for p in 0..<keptCount {
            let (m, v): (Float, Float)
            if let mean, let variance {
                (m, v) = mean.count == 1 ? (mean[0], variance[0]) : (mean[p], variance[p])
            } else {
                (m, v) = (variables[0][p], variables[1][p])
            }
            means[p] = m
            deviations[p] = max(v.squareRoot(), Self.epsilon)
        }
    }

    /// Each kept position's mean and standard deviation (√variance, at least 1e-7) as the layer
    /// applies them, in `keptShape` order.
    public func statistics() throws -> (mean: [Float], deviation: [Float]) {
        guard isBuilt else {
            throw KestrelError.notReady("\(name).statistics: the layer is not built yet; build it, adapt it or build its model first")
        }
        var means = [Float](repeating: 0, count: keptCount), deviations = means
        let variables = mean == nil ? [weightPointer(0), weightPointer(1)] : []
        statistics(into: &means, &deviations, variables: variables)
        return (means, deviations)
    }

    public override func forward(_ c: LayerContext) {
        let means = c.workspace, deviations = c.workspace + keptCount
        statistics(into: means, deviations, variables: c.weights)
        let size = c.inputSize
        parameterIndex.withUnsafeBufferPointer { index in
            for n in 0..<c.batch {
                let x = c.input + n * size, y = c.output + n * size
                if invert {
                    for i in 0..<size { y[i] = means[index[i]] + x[i] * deviations[index[i]] }
                } else {
                    for i in 0..<size { y[i] = (x[i] - means[index[i]]) / deviations[index[i]] }
                }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        let deviations = c.workspace + keptCount
        let size = c.inputSize
        parameterIndex.withUnsafeBufferPointer { index in
            for n in 0..<c.batch {
                let g = dx + n * size, d = dy + n * size
                if invert {
                    for i in 0..<size { g[i] = d[i] * deviations[index[i]] }
                } else {
                    for i in 0..<size { g[i] = d[i] / deviations[index[i]] }
                }
            }
        }
    }

    /// Sets `mean` and `variance` to those of `data` (samples along its first axis), per kept
    /// position, as Keras's `adapt` does with an array: population variance, computed in double
    /// precision. Builds the layer for `data`'s sample shape if it is not built yet.
    public func adapt(_ data: Tensor) throws {
        let describe = "\(name) (Normalization)"
        guard mean == nil else {
            throw KestrelError.invalidArgument("\(describe): mean and variance were given at construction; adapt has nothing to set")
        }
        guard data.shape.count >= 2, data.shape[0] > 0 else {
            throw KestrelError.shapeMismatch(
                "\(describe).adapt: expected a batch of samples (at least 2 axes, at least one sample), found shape \(data.shape)")
        }
        let sample = Array(data.shape.dropFirst())
        if let built = builtInputShapes?.first {
            guard built == sample else {
                throw KestrelError.shapeMismatch("\(describe).adapt: built for samples of shape \(built), given data of shape \(data.shape)")
            }
        } else {
            try build(inputShape: sample)
        }
        let count = keptCount, size = sample.reduce(1, *), samples = data.shape[0]
        var sums = [Double](repeating: 0, count: count), squares = [Double](repeating: 0, count: count)
        data.scalars.withUnsafeBufferPointer { x in
            for n in 0..<samples {
                for i in 0..<size { sums[parameterIndex[i]] += Double(x[n * size + i]) }
            }
            let perParameter = Double(samples * size / count)
            for p in 0..<count { sums[p] /= perParameter }
            for n in 0..<samples {
                for i in 0..<size {
                    let d = Double(x[n * size + i]) - sums[parameterIndex[i]]
                    squares[parameterIndex[i]] += d * d
                }
            }
            for p in 0..<count { squares[p] /= perParameter }
        }
        let means = weightPointer(0), variances = weightPointer(1)
        for p in 0..<count {
            means[p] = Float(sums[p])
            variances[p] = Float(squares[p])
        }
    }
}
