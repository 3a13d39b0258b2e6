import Foundation

/// Buckets continuous values into ranges (Keras `Discretization`): with boundaries
/// `[b₀, b₁, …]` a value below b₀ goes to bucket 0, one in `[b₀, b₁)` to bucket 1, and so on;
/// the buckets are given as `binBoundaries` or learned by `adapt(_:)` as the data's
/// quantiles for `numBins` buckets, with Keras's approximate-quantile algorithm (so the same
/// data gives Keras's boundaries). The bucket indices are encoded as `outputMode` says
/// (`.int`, the default, gives the indices themselves).
///
/// A layer made with `numBins` must be adapted before it joins a model.
public final class Discretization: Layer {
    /// The bucket boundaries, ascending: given, or learned by `adapt(_:)`; nil until then.
    public private(set) var binBoundaries: [Float]?
    /// How the buckets are encoded, once there are boundaries (kept so a step computes nothing).
    private var encoding: CategoricalEncoding?
    /// The number of buckets `adapt(_:)` aims for (nil when boundaries were given).
    public let numBins: Int?
    /// The relative error tolerance of the quantile summary `adapt(_:)` builds (Keras default 0.01).
    public let epsilon: Double
    /// How the bucket indices are encoded.
    public let outputMode: LookupOutputMode

    private var describe: String { "\(name) (Discretization)" }

    /// A discretization layer with Keras's arguments and defaults; give either
    /// `binBoundaries` (ascending) or `numBins` (then call `adapt(_:)`).
    public init(binBoundaries: [Float]? = nil, numBins: Int? = nil, epsilon: Double = 0.01,
                outputMode: LookupOutputMode = .int, inputShape: [Int]? = nil, name: String? = nil) throws {
        let describe = "\(name ?? "discretization") (Discretization)"
        switch (binBoundaries, numBins) {
        case (nil, nil):
            throw KestrelError.invalidArgument("\(describe): give binBoundaries or numBins, found neither")
        case (.some, .some):
            throw KestrelError.invalidArgument("\(describe): give binBoundaries or numBins, not both")
        case let (nil, .some(bins)) where bins < 1:
            throw KestrelError.invalidArgument("\(describe): numBins must be at least 1, found \(bins)")
        default: break
        }
        if let binBoundaries {
            if let bad = zip(binBoundaries, binBoundaries.dropFirst()).first(where: { !($0.0 <= $0.1) }) {
                throw KestrelError.invalidArgument(
                    "\(describe): binBoundaries must be ascending, found \(bad.0) before \(bad.1)")
            }
            if let bad = binBoundaries.first(where: { !$0.isFinite }) {
                throw KestrelError.invalidArgument("\(describe): binBoundaries must be finite, found \(bad)")
            }
        }
        guard epsilon > 0, epsilon < 1 else {
            throw KestrelError.invalidArgument("\(describe): epsilon must be between 0 and 1, found \(epsilon)")
        }
        _ = try CategoricalEncoding(mode: outputMode, depth: 1, allowed: [.int, .oneHot, .multiHot, .count],
                                    describe: describe)
        self.numBins = numBins
        self.epsilon = epsilon
        self.outputMode = outputMode
        super.init(name: name, inputShape: inputShape)
        setBoundaries(binBoundaries)
    }

    private func setBoundaries(_ boundaries: [Float]?) {
        binBoundaries = boundaries
        encoding = boundaries.map { CategoricalEncoding(checkedMode: outputMode, depth: $0.count + 1) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard let encoding else {
            throw KestrelError.invalidArgument(
                "\(describe): the layer has no bin boundaries yet; call adapt(_:) before using it in a model")
        }
        return encoding.outputShape(for: inputShape)
    }

    public override var config: [String: String] {
        var c = ["name": name, "epsilon": "\(epsilon)", "output_mode": outputMode.rawValue]
        if let numBins { c["num_bins"] = "\(numBins)" }
        if let binBoundaries { c["bin_boundaries"] = "\(binBoundaries)" }
        return c
    }

    /// The bucket of a value: how many boundaries are at or below it (NumPy's `digitize`).
    private static func bucket(_ value: Float, _ boundaries: UnsafeBufferPointer<Float>) -> Int {
        var low = 0, high = boundaries.count
        while low < high {
            let middle = (low + high) / 2
            if boundaries[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    public override func forward(_ c: LayerContext) {
        guard let boundaries = binBoundaries, let encoding else {
            preconditionFailure("\(describe): planned without bin boundaries")
        }
        let x = c.input
        boundaries.withUnsafeBufferPointer { b in
            encoding.encode(batch: c.batch, inputShape: c.inputShapes[0], into: c.output) { Self.bucket(x[$0], b) }
        }
    }

    public override func backward(_ c: LayerContext) {
        // A step function: its gradient is zero wherever it is defined.
        c.inputGradient?.update(repeating: 0, count: c.batch * c.inputSize)
    }

    /// Learns `numBins` buckets of about equal counts from every value in `data`, as Keras's
    /// `adapt` does with an array: the values are summarised to the precision `epsilon`, and
    /// the boundaries interpolated from the summary's cumulative counts. With fewer values than
    /// that precision needs, the boundaries are the sorted values themselves (all but the
    /// largest), and there may be fewer buckets than `numBins`, as in Keras.
    public func adapt(_ data: Tensor) throws {
        guard let numBins else {
            throw KestrelError.invalidArgument(
                "\(describe): made with binBoundaries, so adapt has nothing to learn; make it with numBins")
        }
        guard data.count > 0 else {
            throw KestrelError.invalidArgument("\(describe).adapt: the data is empty")
        }
        if let bad = data.scalars.first(where: { !$0.isFinite }) {
            throw KestrelError.invalidArgument("\(describe).adapt: the data must be finite, found \(bad)")
        }
        let summary = Self.compress(Self.summarize(data.scalars, epsilon: epsilon), epsilon: epsilon)
        let boundaries = Array(Self.compress(summary, epsilon: 1 / Double(numBins)).values.dropLast())
        if outputMode != .int, builtOutputShape != nil, let old = binBoundaries, old.count != boundaries.count {
            throw KestrelError.shapeMismatch(
                "\(describe).adapt: the layer is built for \(old.count + 1) buckets, the data gives \(boundaries.count + 1)")
        }
        setBoundaries(boundaries)
    }

    /// A summary of sorted values: values at even intervals, each standing for as many values
    /// (Keras's `summarize`, in its float32 and float64 arithmetic).
    struct Summary {
        var values: [Float], weights: [Float]
    }

    static func summarize(_ data: [Float], epsilon: Double) -> Summary {
        let sorted = data.sorted()
        let step = max(Double(sorted.count) / (1 / epsilon), 1)
        let stride = Int(step)
        let picked = Swift.stride(from: Int(step - 1), to: sorted.count, by: stride).map { sorted[$0] }
        return Summary(values: picked, weights: Array(repeating: Float(step), count: picked.count))
    }

    /// Keras's `compress_summary`: when the summary has at least `1 / epsilon` entries, the
    /// values and cumulative weights at every `epsilon` of the total weight, interpolated
    /// linearly (NumPy's `interp`).
    static func compress(_ summary: Summary, epsilon: Double) -> Summary {
        let n = summary.values.count
        guard Double(n) * epsilon >= 1 else { return summary }
        var cumulative = [Float](repeating: 0, count: n)
        var running: Float = 0
        for i in 0..<n {
            running += summary.weights[i]
            cumulative[i] = running
        }
        let percents = cumulative.map { Double($0 / running) }
        let count = Int((1.0 / epsilon).rounded(.up))
        var values = [Float](), weights = [Float]()
        values.reserveCapacity(count)
        weights.reserveCapacity(count)
        let xs = summary.values.map(Double.init), cumulativeWeights = cumulative.map(Double.init)
        var previous = 0.0
        for i in 0..<count {
            let p = epsilon + Double(i) * epsilon
            values.append(Float(interpolate(p, percents, xs)))
            let weight = interpolate(p, percents, cumulativeWeights)
            weights.append(Float(weight - previous))
            previous = weight
        }
        return Summary(values: values, weights: weights)
    }

    /// NumPy's `interp` at one point: `ys` held constant beyond the ends of ascending `xs`.
    static func interpolate(_ x: Double, _ xs: [Double], _ ys: [Double]) -> Double {
        guard x >= xs[0] else { return ys[0] }
        guard x <= xs[xs.count - 1] else { return ys[ys.count - 1] }
        // The last j with xs[j] <= x.
        var low = 0, high = xs.count
        while low < high {
            let middle = (low + high) / 2
            if xs[middle] <= x { low = middle + 1 } else { high = middle }
        }
        let j = low - 1
        if j == xs.count - 1 || xs[j] == x { return ys[j] }
        let slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
        var y = slope * (x - xs[j]) + ys[j]
        if y.isNaN {
            y = slope * (x - xs[j + 1]) + ys[j + 1]
            if y.isNaN && ys[j] == ys[j + 1] { y = ys[j] }
        }
        return y
    }
}
