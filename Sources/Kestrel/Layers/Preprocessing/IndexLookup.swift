import Foundation

/// How a lookup or text-vectorization layer encodes the indices it finds (Keras `output_mode`).
public enum LookupOutputMode: String, Sendable, CaseIterable {
    /// The indices themselves (Keras `"int"`).
    case int
    /// Each index as a one-hot vector the size of the vocabulary (Keras `"one_hot"`).
    case oneHot = "one_hot"
    /// One vector per sample with 1 at every index present (Keras `"multi_hot"`).
    case multiHot = "multi_hot"
    /// One vector per sample counting each index (Keras `"count"`).
    case count
    /// Counts weighted by each token's inverse document frequency (Keras `"tf_idf"`).
    case tfIdf = "tf_idf"
}

/// The vocabulary and the token → index mapping behind `StringLookup`, `IntegerLookup` and
/// `TextVectorization`: index 0 is the mask token in `.int` mode when there is one, then come
/// the out-of-vocabulary (OOV) indices, then the tokens.
struct LookupTable<Token: Hashable> {
    let describe: String
    let maxTokens: Int?
    let numOOVIndices: Int
    let maskToken: Token?
    let oovToken: Token
    let outputMode: LookupOutputMode
    let padToMaxTokens: Bool
    let invert: Bool
    /// Whether a vocabulary came with the layer, which then cannot adapt (as in Keras).
    let hasInputVocabulary: Bool
    /// The order Keras breaks ties in count with (high to low): strings by their UTF-8 bytes.
    let precedes: (Token, Token) -> Bool
    /// The OOV bucket (`0..<numOOVIndices`) of a token when there are several.
    let oovBucket: (Token) -> Int
    let render: (Token) -> String

    /// The learned or given tokens, without the mask and OOV entries.
    private(set) var tokens: [Token] = []
    private var indices: [Token: Int] = [:]
    /// Inverse document frequencies, one per output position (`.tfIdf` only).
    private(set) var idfWeights: [Float]?

    init(describe: String, maxTokens: Int?, numOOVIndices: Int, maskToken: Token?, oovToken: Token,
         vocabulary: [Token]?, idfWeights: [Float]?, invert: Bool, outputMode: LookupOutputMode,
         padToMaxTokens: Bool, precedes: @escaping (Token, Token) -> Bool, oovBucket: @escaping (Token) -> Int,
         render: @escaping (Token) -> String) throws {
        self.describe = describe
        self.maxTokens = maxTokens
        self.numOOVIndices = numOOVIndices
        self.maskToken = maskToken
        self.oovToken = oovToken
        self.invert = invert
        self.outputMode = outputMode
        self.padToMaxTokens = padToMaxTokens
        self.precedes = precedes
        self.oovBucket = oovBucket
        self.render = render
        hasInputVocabulary = vocabulary != nil
        if let maxTokens, maxTokens <= 1 {
            throw KestrelError.invalidArgument("\(describe): maxTokens must be greater than 1 when set, found \(maxTokens)")
        }
        if padToMaxTokens && maxTokens == nil {
            throw KestrelError.invalidArgument("\(describe): padToMaxTokens needs maxTokens, found nil")
        }
        guard numOOVIndices >= 0 else {
            throw KestrelError.invalidArgument("\(describe): numOOVIndices must be 0 or more, found \(numOOVIndices)")
        }
        if invert && outputMode != .int {
            throw KestrelError.invalidArgument("\(describe): invert needs outputMode .int, found .\(outputMode)")
        }
        if idfWeights != nil && outputMode != .tfIdf {
            throw KestrelError.invalidArgument("\(describe): idfWeights are only for outputMode .tfIdf, found .\(outputMode)")
        }
        if let vocabulary {
            if outputMode == .tfIdf && idfWeights == nil {
                throw KestrelError.invalidArgument("\(describe): a vocabulary with outputMode .tfIdf needs idfWeights, found nil")
            }
            try setVocabulary(vocabulary, idfWeights: idfWeights)
        }
    }

    /// The first OOV index: 1 when the mask token takes index 0 (`.int` mode), else 0.
    var oovStart: Int { maskToken != nil && outputMode == .int ? 1 : 0 }
    /// The index of the first token.
    var tokenStart: Int { oovStart + numOOVIndices }
    /// Indices in use, the mask and OOV ones included.
    var vocabularySize: Int { tokenStart + tokens.count }

    /// The vocabulary in index order; with the special tokens, entry `i` is what index `i` means.
    func vocabulary(includeSpecialTokens: Bool) -> [Token] {
        guard includeSpecialTokens else { return tokens }
        return (oovStart == 1 ? [maskToken!] : []) + Array(repeating: oovToken, count: numOOVIndices) + tokens
    }

    private mutating func install(_ tokens: [Token]) {
        self.tokens = tokens
        indices = Dictionary(uniqueKeysWithValues: tokens.enumerated().map { ($1, tokenStart + $0) })
    }

    /// Sets the vocabulary (optionally starting with the mask and OOV entries, in index order) and,
    /// for `.tfIdf`, its weights, checked as Keras checks them.
    mutating func setVocabulary(_ vocabulary: [Token], idfWeights: [Float]?) throws {
        if outputMode == .tfIdf && idfWeights == nil {
            throw KestrelError.invalidArgument("\(describe): outputMode .tfIdf needs idfWeights with the vocabulary, found nil")
        }
        if outputMode != .tfIdf && idfWeights != nil {
            throw KestrelError.invalidArgument("\(describe): idfWeights are only for outputMode .tfIdf, found .\(outputMode)")
        }
        guard !vocabulary.isEmpty else { throw KestrelError.invalidArgument("\(describe): the vocabulary is empty") }
        let specials = self.vocabulary(includeSpecialTokens: true).prefix(tokenStart)
        let foundSpecials = vocabulary.count >= tokenStart && vocabulary.prefix(tokenStart).elementsEqual(specials)
        let tokens = foundSpecials ? Array(vocabulary.dropFirst(tokenStart)) : vocabulary
        var seen = Set<Token>(), repeated: [String] = []
        for t in tokens where !seen.insert(t).inserted { repeated.append(render(t)) }
        guard repeated.isEmpty else {
            throw KestrelError.invalidArgument("\(describe): the vocabulary repeats \(repeated.prefix(10).joined(separator: ", "))")
        }
        let specialsText = specials.map(render).joined(separator: ", ")
        if let maskToken, seen.contains(maskToken) {
            throw KestrelError.invalidArgument(
                "\(describe): the mask token \(render(maskToken)) is in the vocabulary; leave the mask and OOV tokens out, or put them first in this order: [\(specialsText)]")
        }
        if invert && seen.contains(oovToken) {
            throw KestrelError.invalidArgument(
                "\(describe): the OOV token \(render(oovToken)) is in the vocabulary; leave the mask and OOV tokens out, or put them first in this order: [\(specialsText)]")
        }
        if let maxTokens, tokenStart + tokens.count > maxTokens {
            throw KestrelError.invalidArgument(
                "\(describe): a vocabulary of \(tokenStart + tokens.count) entries (mask and OOV included) exceeds maxTokens \(maxTokens)")
        }
        if let idfWeights {
            guard idfWeights.count == vocabulary.count else {
                throw KestrelError.invalidArgument(
                    "\(describe): idfWeights must have one weight per vocabulary entry (\(vocabulary.count)), found \(idfWeights.count)")
            }
            // Keras gives the special entries the mean weight when the vocabulary leaves them out.
            let front = foundSpecials ? 0 : tokenStart
            let mean = Float(idfWeights.reduce(0.0) { $0 + Double($1) } / Double(idfWeights.count))
            var weights = Array(repeating: mean, count: front) + idfWeights
            if padToMaxTokens, let maxTokens { weights += Array(repeating: 0, count: max(0, maxTokens - weights.count)) }
            self.idfWeights = weights
        }
        install(tokens)
    }

    /// Learns the vocabulary from documents (Keras `adapt`): tokens by count, high to low, ties
    /// broken by the tokens themselves, high to low; the first `maxTokens` entries kept.
    mutating func adapt(_ documents: [[Token]]) throws {
        var tally = Tally()
        for document in documents { tally.add(document, documentFrequencies: outputMode == .tfIdf) }
        try adapt(tally)
    }

    /// Token counts (and, for `.tfIdf`, document counts) of some documents; the tallies of
    /// parts of the data add up.
    struct Tally {
        var counts: [Token: Int] = [:], documentCounts: [Token: Int] = [:], documents = 0

        mutating func add(_ document: [Token], documentFrequencies: Bool) {
            documents += 1
            for t in document { counts[t, default: 0] += 1 }
            if documentFrequencies { for t in Set(document) { documentCounts[t, default: 0] += 1 } }
        }

        mutating func merge(_ other: Tally) {
            documents += other.documents
            counts.merge(other.counts, uniquingKeysWith: +)
            documentCounts.merge(other.documentCounts, uniquingKeysWith: +)
        }
    }

    /// Learns the vocabulary from the tally of the data (see `adapt(_:)`).
    mutating func adapt(_ tally: Tally) throws {
        if hasInputVocabulary {
            throw KestrelError.invalidArgument("\(describe): cannot adapt a layer created with a vocabulary")
        }
        var counts = tally.counts
        let documentCounts = tally.documentCounts
        // Keras keeps the vocabulary it had when the data holds no token at all.
        guard !counts.isEmpty else { return }
        if let maskToken { counts[maskToken] = nil }
        counts[oovToken] = nil
        var ranked = counts.sorted { a, b in a.value != b.value ? a.value > b.value : precedes(b.key, a.key) }.map(\.key)
        if let maxTokens { ranked = Array(ranked.prefix(max(0, maxTokens - tokenStart))) }
        install(ranked)
        if outputMode == .tfIdf {
            let n = Double(tally.documents)
            let idf = ranked.map { Float(log(1 + n / Double(1 + documentCounts[$0]!))) }
            let mean = idf.isEmpty ? 0 : idf.reduce(0, +) / Float(idf.count)
            var weights = Array(repeating: mean, count: tokenStart) + idf
            if padToMaxTokens, let maxTokens { weights += Array(repeating: 0, count: max(0, maxTokens - weights.count)) }
            idfWeights = weights
        }
    }

    /// A token's index; nil for the mask token outside `.int` mode (Keras drops it there).
    func index(of token: Token) throws -> Int? {
        if let maskToken, token == maskToken { return outputMode == .int ? 0 : nil }
        if let i = indices[token] { return i }
        switch numOOVIndices {
        case 0:
            throw KestrelError.invalidArgument(
                "\(describe): \(render(token)) is not in the vocabulary and numOOVIndices is 0 (set it to 1 to map unknown tokens to an OOV index)")
        case 1: return oovStart
        default: return oovStart + oovBucket(token)
        }
    }

    /// The width of the encoded vectors.
    var depth: Int { padToMaxTokens ? maxTokens! : vocabularySize }

    /// Looks up `tokens` (row-major, of `shape`) and encodes them: `.int` keeps the shape;
    /// `.oneHot` adds an axis of `depth` (or replaces a last axis of 1); the others reduce the
    /// last axis (a sample's tokens) to one vector of `depth`.
    func encode(_ tokens: [Token], shape: [Int]) throws -> Tensor {
        if outputMode == .int { return Tensor(shape: shape, scalars: try tokens.map { Float(try index(of: $0)!) }) }
        if outputMode == .oneHot {
            let found = try tokens.map(index(of:)), depth = try checkedDepth()
            let outShape = shape.count > 1 && shape.last == 1 ? shape.dropLast() + [depth] : shape + [depth]
            var out = [Float](repeating: 0, count: found.count * depth)
            for (i, index) in found.enumerated() { if let index, index < depth { out[i * depth + index] = 1 } }
            return Tensor(shape: outShape, scalars: out)
        }
        let length = shape.last ?? 1, samples = length == 0 ? shape.dropLast().reduce(1, *) : tokens.count / length
        let rows = (0..<samples).map { tokens[($0 * length)..<(($0 + 1) * length)] }
        return Tensor(shape: Array(shape.dropLast()) + [depth], scalars: try bags(rows))
    }

    /// Multi-hot, count or TF-IDF vectors, one row of `depth` per sample; samples may differ
    /// in length (a text's tokens).
    func bags<Sample: Collection>(_ samples: [Sample]) throws -> [Float] where Sample.Element == Token {
        let depth = try checkedDepth()
        var out = [Float](repeating: 0, count: samples.count * depth)
        for (s, sample) in samples.enumerated() {
            for token in sample {
                guard let index = try index(of: token), index < depth else { continue }
                if outputMode == .multiHot { out[s * depth + index] = 1 } else { out[s * depth + index] += 1 }
            }
        }
        if outputMode == .tfIdf, let idf = idfWeights {
            for s in 0..<samples.count { for j in 0..<min(depth, idf.count) { out[s * depth + j] *= idf[j] } }
        }
        return out
    }

    /// `depth`, once there is a vocabulary to encode against.
    private func checkedDepth() throws -> Int {
        guard vocabularySize > tokenStart || padToMaxTokens else {
            throw KestrelError.notReady(
                "\(describe): outputMode .\(outputMode) needs a vocabulary; call adapt(_:) or pass vocabulary:")
        }
        return depth
    }

    /// What an index means (an inverting lookup): the mask token at 0 when there is one, a
    /// token, or the OOV token for an OOV index or one outside the vocabulary.
    func token(at index: Int) -> Token {
        if let maskToken, index == 0 { return maskToken }
        return index >= tokenStart && index < vocabularySize ? tokens[index - tokenStart] : oovToken
    }

    /// The whole numbers in `x`, or a thrown error naming the first that is not one.
    func wholeNumbers(_ x: Tensor, _ what: String) throws -> [Int] {
        try x.scalars.map { v in
            guard v.rounded() == v, abs(v) < 9e15 else {
                throw KestrelError.invalidArgument("\(describe): \(what) must be whole numbers, found \(v)")
            }
            return Int(v)
        }
    }
}

/// The SipHash key of a salt: one value `s` is the key `(s, s)`, two are the key's words (Keras's
/// `salt`); nil without one.
func hashKey(_ salt: [UInt64]?, _ describe: String) throws -> (UInt64, UInt64)? {
    guard let salt else { return nil }
    guard salt.count == 1 || salt.count == 2 else {
        throw KestrelError.invalidArgument("\(describe): salt must hold one value or two, found \(salt.count)")
    }
    return (salt[0], salt[salt.count - 1])
}

/// Rows of equal length, flattened, with their shape.
func rectangular<T>(_ rows: [[T]], _ describe: String) throws -> (values: [T], shape: [Int]) {
    let length = rows.first?.count ?? 0
    if let bad = rows.firstIndex(where: { $0.count != length }) {
        throw KestrelError.shapeMismatch(
            "\(describe): every row must have the same number of tokens; row 0 has \(length), row \(bad) has \(rows[bad].count)")
    }
    return (rows.flatMap { $0 }, [rows.count, length])
}

/// The vocabulary shared by `StringLookup`, `IntegerLookup` and `TextVectorization` (Keras's
/// internal `IndexLookup`): what each index means, how it is learned or set, and how indices
/// are encoded.
public class IndexLookup<Token: Hashable> {
    var table: LookupTable<Token>

    init(table: LookupTable<Token>) { self.table = table }

    /// How the indices are encoded.
    public var outputMode: LookupOutputMode { table.outputMode }
    /// Indices in use, the mask and OOV ones included (Keras `vocabulary_size()`).
    public var vocabularySize: Int { table.vocabularySize }
    /// The inverse document frequency of each output position (`.tfIdf` only).
    public var idfWeights: [Float]? { table.idfWeights }

    /// The vocabulary in index order; with the special entries, entry `i` is what index `i`
    /// means (Keras `get_vocabulary()`).
    public func vocabulary(includeSpecialTokens: Bool = true) -> [Token] {
        table.vocabulary(includeSpecialTokens: includeSpecialTokens)
    }

    /// Replaces the vocabulary (and, for `.tfIdf`, its weights) (Keras `set_vocabulary`); the
    /// mask and OOV entries may lead it, in index order, or be left out.
    public func setVocabulary(_ vocabulary: [Token], idfWeights: [Float]? = nil) throws {
        try table.setVocabulary(vocabulary, idfWeights: idfWeights)
    }
}

/// Maps strings to indices of a vocabulary learned by `adapt` or given (Keras `StringLookup`),
/// outside the model: strings in, a `Tensor` out, ready for an `Embedding` or `Dense` layer.
///
/// Indices: the mask token (if any) is 0 in `.int` mode, then the OOV indices, then the
/// vocabulary by frequency. With several OOV indices an unknown string goes to the one its
/// FarmHash fingerprint picks (`Fingerprint64 % numOOVIndices`, SipHash with `salt`), as in
/// Keras. With `invert`, indices map back to strings.
public final class StringLookup: IndexLookup<String> {
    /// The name used in error messages.
    public let name: String

    /// A string lookup with Keras's arguments and defaults. `maxTokens` counts the mask and
    /// OOV entries; `numOOVIndices` 0 makes unknown strings an error. `salt` (one value or
    /// two) keys the hash of unknown strings when there are several OOV indices.
    public init(maxTokens: Int? = nil, numOOVIndices: Int = 1, maskToken: String? = nil, oovToken: String = "[UNK]",
                vocabulary: [String]? = nil, idfWeights: [Float]? = nil, invert: Bool = false,
                outputMode: LookupOutputMode = .int, padToMaxTokens: Bool = false, salt: [UInt64]? = nil,
                name: String? = nil) throws {
        let name = name ?? "string_lookup"
        self.name = name
        let describe = "\(name) (StringLookup)"
        let key = try hashKey(salt, describe)
        let buckets = max(numOOVIndices, 1)
        super.init(table: try LookupTable(
            describe: describe, maxTokens: maxTokens, numOOVIndices: numOOVIndices, maskToken: maskToken,
            oovToken: oovToken, vocabulary: vocabulary, idfWeights: idfWeights, invert: invert, outputMode: outputMode,
            padToMaxTokens: padToMaxTokens, precedes: { $0.utf8.lexicographicallyPrecedes($1.utf8) },
            oovBucket: { hashBucket($0, key: key, numBuckets: buckets) },
            render: { "\"\($0)\"" }))
    }

    /// Learns the vocabulary from strings, each its own document (Keras `adapt` on a list).
    public func adapt(_ data: [String]) throws { try table.adapt(data.map { [$0] }) }

    /// Learns the vocabulary from documents of tokens (document frequencies count for `.tfIdf`).
    public func adapt(_ documents: [[String]]) throws { try table.adapt(documents) }

    /// Looks up a list of tokens: indices `(n)`, one-hot rows `(n, depth)`, or, in the
    /// multi-hot, count and TF-IDF modes, one vector `(depth)` for the whole list (Keras treats
    /// the last axis as the sample).
    public func callAsFunction(_ tokens: [String]) throws -> Tensor {
        try checkForward()
        return try table.encode(tokens, shape: [tokens.count])
    }

    /// Looks up rows of tokens, all of one length: `(rows, length)` indices, `(rows, length,
    /// depth)` one-hot vectors (`(rows, depth)` for rows of one token), or `(rows, depth)`.
    public func callAsFunction(_ rows: [[String]]) throws -> Tensor {
        try checkForward()
        let (values, shape) = try rectangular(rows, table.describe)
        return try table.encode(values, shape: shape)
    }

    /// Maps indices back to strings, in the tensor's row-major order (a layer made with `invert`).
    public func callAsFunction(_ indices: Tensor) throws -> [String] {
        guard table.invert else {
            throw KestrelError.invalidArgument("\(table.describe): mapping indices to strings needs invert: true")
        }
        return try table.wholeNumbers(indices, "indices").map(table.token(at:))
    }

    private func checkForward() throws {
        if table.invert {
            throw KestrelError.invalidArgument("\(table.describe): a layer made with invert: true maps indices (a Tensor) to strings")
        }
    }
}

/// Maps integers to indices of a vocabulary learned by `adapt` or given (Keras
/// `IntegerLookup`), outside the model; integers are given as `[Int]` or as a `Tensor` of
/// whole numbers.
///
/// Indices: the mask token (if any) is 0 in `.int` mode, then the OOV indices (an unknown
/// value `v` goes to OOV index `v mod numOOVIndices`, Keras's default `.floorMod`, or with
/// `.farmHash` to the one the fingerprint of its decimal form picks), then the vocabulary by
/// frequency. With `invert`, indices map back to values.
public final class IntegerLookup: IndexLookup<Int> {
    /// How unknown integers are spread over several OOV indices (Keras `oov_method`).
    public enum OOVMethod: String, Sendable, CaseIterable {
        /// The value modulo the number of OOV indices (Keras `"floormod"`).
        case floorMod = "floormod"
        /// The FarmHash fingerprint of the value's decimal form (Keras `"farmhash"`), or SipHash
        /// keyed by `salt`.
        case farmHash = "farmhash"
    }

    /// The name used in error messages.
    public let name: String

    /// An integer lookup with Keras's arguments and defaults (`oovToken` -1, no mask token).
    /// `maxTokens` counts the mask and OOV entries; `salt` (one value or two, `.farmHash`
    /// only) keys the hash of unknown values.
    public init(maxTokens: Int? = nil, numOOVIndices: Int = 1, maskToken: Int? = nil, oovToken: Int = -1,
                vocabulary: [Int]? = nil, idfWeights: [Float]? = nil, invert: Bool = false,
                outputMode: LookupOutputMode = .int, padToMaxTokens: Bool = false, oovMethod: OOVMethod = .floorMod,
                salt: [UInt64]? = nil, name: String? = nil) throws {
        let name = name ?? "integer_lookup"
        self.name = name
        let describe = "\(name) (IntegerLookup)"
        if salt != nil && oovMethod != .farmHash {
            throw KestrelError.invalidArgument("\(describe): salt needs oovMethod .farmHash, found .\(oovMethod)")
        }
        let key = try hashKey(salt, describe)
        let buckets = max(numOOVIndices, 1)
        let bucket: (Int) -> Int = switch oovMethod {
        case .floorMod: { (($0 % buckets) + buckets) % buckets }
        case .farmHash: { hashBucket(String($0), key: key, numBuckets: buckets) }
        }
        super.init(table: try LookupTable(
            describe: describe, maxTokens: maxTokens, numOOVIndices: numOOVIndices,
            maskToken: maskToken, oovToken: oovToken, vocabulary: vocabulary, idfWeights: idfWeights, invert: invert,
            outputMode: outputMode, padToMaxTokens: padToMaxTokens, precedes: { $0 < $1 },
            oovBucket: bucket, render: { "\($0)" }))
    }

    /// Learns the vocabulary from values, each its own document (Keras `adapt` on a list).
    public func adapt(_ data: [Int]) throws { try table.adapt(data.map { [$0] }) }

    /// Learns the vocabulary from a tensor: rank 1 is one document per value, otherwise each
    /// sample (first axis) is a document.
    public func adapt(_ data: Tensor) throws {
        let values = try table.wholeNumbers(data, "adapt data")
        let perDocument = data.shape.count <= 1 ? 1 : data.shape.dropFirst().reduce(1, *)
        guard perDocument > 0 else { return }
        try table.adapt(stride(from: 0, to: values.count, by: perDocument).map { Array(values[$0..<$0 + perDocument]) })
    }

    /// Looks up whole numbers (or, with `invert`, maps indices back to values): `.int` keeps
    /// the shape; `.oneHot` adds an axis of the vocabulary's size (replacing a last axis of 1);
    /// the other modes reduce the last axis, a sample's values, to one vector.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        if table.invert {
            let values = try table.wholeNumbers(x, "indices").map { Float(table.token(at: $0)) }
            return Tensor(shape: x.shape, scalars: values)
        }
        return try table.encode(try table.wholeNumbers(x, "inputs"), shape: x.shape)
    }

    /// Looks up a list of values (see `callAsFunction(_: Tensor)`).
    public func callAsFunction(_ values: [Int]) throws -> Tensor {
        try callAsFunction(Tensor(shape: [values.count], scalars: values.map(Float.init)))
    }
}
