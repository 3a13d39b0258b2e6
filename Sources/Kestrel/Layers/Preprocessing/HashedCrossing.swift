/// Crosses categorical features into one by hashing each combination of their values into
/// `numBins` bins (Keras `HashedCrossing`): `(city, weekday)` becomes one feature a linear
/// model can weigh per pair. Inside the model it crosses whole-number inputs (two or more,
/// each one value per sample, truncated toward zero); outside it crosses columns of strings
/// or integers.
///
/// The bins are TensorFlow's `sparse.cross_hashed`: starting from its default key, each
/// feature's hash (FarmHash `Fingerprint64` of a string's bytes, an integer's own 64 bits) is
/// folded in with `FingerprintCat64`, and the result taken modulo `numBins`, so the bins are
/// Keras's. `outputMode` is `.int` (the bins) or `.oneHot`.
public final class HashedCrossing: Layer {
    /// The number of bins.
    public let numBins: Int
    /// How the bins are encoded.
    public let outputMode: LookupOutputMode
    private let encoding: CategoricalEncoding

    private var describe: String { "\(name) (HashedCrossing)" }

    /// A feature cross with Keras's arguments and defaults.
    public init(numBins: Int, outputMode: LookupOutputMode = .int, name: String? = nil) throws {
        let describe = "\(name ?? "hashed_crossing") (HashedCrossing)"
        guard numBins >= 1 else {
            throw KestrelError.invalidArgument("\(describe): numBins must be at least 1, found \(numBins)")
        }
        self.numBins = numBins
        self.outputMode = outputMode
        encoding = try CategoricalEncoding(mode: outputMode, depth: numBins, allowed: [.int, .oneHot], describe: describe)
        super.init(name: name)
    }

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        guard shapes.count >= 2 else {
            throw KestrelError.shapeMismatch("\(describe): expected at least 2 inputs to cross, found \(shapes.count)")
        }
        for (i, shape) in shapes.enumerated() where shape != [] && shape != [1] {
            throw KestrelError.shapeMismatch(
                "\(describe): every input must hold one value per sample (shape [] or [1]); input \(i) has shape \(shape)")
        }
        guard shapes.allSatisfy({ $0 == shapes[0] }) else {
            throw KestrelError.shapeMismatch("\(describe): the inputs must have equal shapes, found \(shapes)")
        }
        return encoding.outputShape(for: shapes[0])
    }

    public override var config: [String: String] {
        ["name": name, "num_bins": "\(numBins)", "output_mode": outputMode.rawValue]
    }

    private static func integerHash(_ value: Float) -> UInt64 {
        UInt64(bitPattern: Int64(exactly: value.rounded(.towardZero)) ?? (value < 0 ? .min : .max))
    }

    public override func forward(_ c: LayerContext) {
        let inputs = c.inputs, count = inputs.count
        encoding.encode(batch: c.batch, inputShape: c.inputShapes[0], into: c.output) { n in
            crossHashedBucket(featureCount: count, numBuckets: numBins) { Self.integerHash(inputs[$0][n]) }
        }
    }

    public override func backward(_ c: LayerContext) {
        // Bins are categories: no gradient flows back.
        for g in c.inputGradients { g?.update(repeating: 0, count: c.batch) }
    }

    /// Crosses columns of values (strings, integers or both), one value per sample in each:
    /// bins `(samples)` or one-hot rows `(samples, numBins)`.
    public func callAsFunction(_ columns: [[CategoricalValue]]) throws -> Tensor {
        _ = try outputShape(forInputs: columns.map { _ in [] })
        let samples = columns[0].count
        if let bad = columns.firstIndex(where: { $0.count != samples }) {
            throw KestrelError.shapeMismatch(
                "\(describe): every column must have as many values as column 0 (\(samples)); column \(bad) has \(columns[bad].count)")
        }
        let bins = (0..<samples).map { n in
            crossHashedBucket(featureCount: columns.count, numBuckets: numBins) { columns[$0][n].crossHash }
        }
        var out = Tensor.zeros([samples] + encoding.outputShape(for: []))
        out.scalars.withUnsafeMutableBufferPointer { o in
            encoding.encode(batch: samples, inputShape: [], into: o.baseAddress!) { bins[$0] }
        }
        return out
    }

    /// Crosses columns of strings, one value per sample in each (see the general form).
    public func callAsFunction(_ columns: [[String]]) throws -> Tensor {
        try callAsFunction(columns.map { $0.map(CategoricalValue.string) })
    }
}
