/// A category value as Keras's hashing layers take it: a string or an integer
/// (`maskValue: 0`, `maskValue: "[MASK]"`).
public enum CategoricalValue: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    CustomStringConvertible {
    /// A string value, hashed as its UTF-8 bytes.
    case string(String)
    /// An integer value, hashed as its decimal form.
    case integer(Int)

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }

    /// The value as a string: how Keras hashes integers (their decimal form).
    public var text: String {
        switch self {
        case .string(let s): s
        case .integer(let i): String(i)
        }
    }

    /// What `tf.sparse.cross_hashed` folds in for this value (`HashedCrossing`): a string's
    /// `Fingerprint64`; an integer's own two's-complement bits, not hashed (TensorFlow casts
    /// every integer dtype to int64 first).
    var crossHash: UInt64 {
        switch self {
        case .string(let s): fingerprint64(s)
        case .integer(let i): UInt64(bitPattern: Int64(i))
        }
    }

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .integer(let i): "\(i)"
        }
    }
}

/// Hashes categorical values into a fixed number of bins (Keras `Hashing`), so a feature with
/// many or unknown categories needs no vocabulary: strings (outside the model, like
/// `StringLookup`) or whole numbers (inside the model, or outside as a `Tensor`).
///
/// A value goes to bin `Fingerprint64(value) % numBins`, TensorFlow's FarmHash fingerprint of
/// its UTF-8 bytes (of its decimal form for a number; non-whole numbers are truncated toward
/// zero first), so bins are Keras's; with `salt`, SipHash-2-4 keyed by the salt instead (one
/// value `s` is the key `(s, s)`). With `maskValue`, that value goes to bin 0 and the others
/// to `1 + hash % (numBins − 1)`. The bins are encoded as `outputMode` says.
public final class Hashing: Layer {
    /// The number of bins, the mask bin included.
    public let numBins: Int
    /// The value that goes to bin 0, if any.
    public let maskValue: CategoricalValue?
    /// The SipHash key words when the layer is salted.
    public let salt: [UInt64]?
    /// How the bins are encoded.
    public let outputMode: LookupOutputMode
    private let encoding: CategoricalEncoding
    private let key: (UInt64, UInt64)?

    private var describe: String { "\(name) (Hashing)" }

    /// A hashing layer with Keras's arguments and defaults; `salt` holds one value or two.
    public init(numBins: Int, maskValue: CategoricalValue? = nil, salt: [UInt64]? = nil,
                outputMode: LookupOutputMode = .int, inputShape: [Int]? = nil, name: String? = nil) throws {
        let describe = "\(name ?? "hashing") (Hashing)"
        guard numBins >= 1 else {
            throw KestrelError.invalidArgument("\(describe): numBins must be at least 1, found \(numBins)")
        }
        self.numBins = numBins
        self.maskValue = maskValue
        self.salt = salt
        self.outputMode = outputMode
        key = try hashKey(salt, describe)
        encoding = try CategoricalEncoding(mode: outputMode, depth: numBins, allowed: [.int, .oneHot, .multiHot, .count],
                                           describe: describe)
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        encoding.outputShape(for: inputShape)
    }

    public override var config: [String: String] {
        var c = ["name": name, "num_bins": "\(numBins)", "output_mode": outputMode.rawValue]
        if let maskValue { c["mask_value"] = maskValue.description }
        if let salt { c["salt"] = "\(salt)" }
        return c
    }

    /// The bins hashes fall into (one is kept for the mask when there is a mask value).
    private var hashBins: UInt64 { UInt64(maskValue != nil && numBins > 1 ? numBins - 1 : numBins) }
    private var masks: Bool { maskValue != nil && numBins > 1 }

    /// The bin of a string.
    func bin(_ string: String) -> Int {
        if masks, string == maskValue?.text { return 0 }
        return hashBucket(string, key: key, numBuckets: Int(hashBins)) + (masks ? 1 : 0)
    }

    /// The bin of a number: the hash of its decimal form after truncation, written on the
    /// stack so that a training step allocates nothing.
    func bin(_ value: Float) -> Int {
        if masks, case .integer(let m)? = maskValue, value == Float(m) { return 0 }
        let integer = Int64(exactly: value.rounded(.towardZero)) ?? (value < 0 ? .min : .max)
        let h = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { digits -> UInt64 in
            var magnitude = integer.magnitude, end = 24
            repeat {
                end -= 1
                digits[end] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            if integer < 0 {
                end -= 1
                digits[end] = UInt8(ascii: "-")
            }
            return categoryHash(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: digits[end...])), key: key)
        }
        return Int(h % hashBins) + (masks ? 1 : 0)
    }

    public override func forward(_ c: LayerContext) {
        let x = c.input
        encoding.encode(batch: c.batch, inputShape: c.inputShapes[0], into: c.output) { bin(x[$0]) }
    }

    public override func backward(_ c: LayerContext) {
        // Bins are categories: no gradient flows back.
        c.inputGradient?.update(repeating: 0, count: c.batch * c.inputSize)
    }

    /// Hashes a list of strings: bins `(n)`, one-hot rows `(n, numBins)`, or, in the
    /// multi-hot and count modes, one vector `(numBins)` for the whole list (Keras treats the
    /// last axis as the sample).
    public func callAsFunction(_ strings: [String]) throws -> Tensor {
        guard outputMode == .multiHot || outputMode == .count else { return encode(strings, batch: strings.count, sample: []) }
        return try encode(strings, batch: 1, sample: [strings.count]).reshaped([numBins])
    }

    /// Hashes rows of strings, all of one length: `(rows, length)` bins, `(rows, length,
    /// numBins)` one-hot vectors (`(rows, numBins)` for rows of one string), or `(rows, numBins)`.
    public func callAsFunction(_ rows: [[String]]) throws -> Tensor {
        let (values, shape) = try rectangular(rows, describe)
        return encode(values, batch: shape[0], sample: [shape[1]])
    }

    private func encode(_ strings: [String], batch: Int, sample: [Int]) -> Tensor {
        let bins = strings.map(bin)
        var out = Tensor.zeros([batch] + encoding.outputShape(for: sample))
        out.scalars.withUnsafeMutableBufferPointer { o in
            encoding.encode(batch: batch, inputShape: sample, into: o.baseAddress!) { bins[$0] }
        }
        return out
    }
}
