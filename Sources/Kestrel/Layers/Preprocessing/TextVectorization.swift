/// Turns texts into token indices or bag-of-words vectors (Keras `TextVectorization`), outside
/// the model: standardize, split, form n-grams, then look the tokens up in a vocabulary learned
/// by `adapt` or given.
///
/// In `.int` mode index 0 is padding (the empty string) and 1 the unknown token `[UNK]`; the
/// other modes have no padding entry, so `[UNK]` is 0. Standardization follows TensorFlow's:
/// only ASCII letters are lowercased and only ASCII punctuation is stripped.
public final class TextVectorization: IndexLookup<String> {
    /// How texts are cleaned before splitting (Keras `standardize`; nil leaves them as they are).
    public enum Standardization {
        /// ASCII letters lowercased, ASCII punctuation removed (Keras's default).
        case lowerAndStripPunctuation
        /// ASCII letters lowercased.
        case lower
        /// ASCII punctuation removed.
        case stripPunctuation
        /// A function of your own.
        case custom((String) -> String)
    }

    /// How a text becomes tokens (Keras `split`; nil keeps each text as one token).
    public enum Split {
        /// On runs of ASCII whitespace, leading and trailing whitespace ignored (Keras's default).
        case whitespace
        /// Into Unicode scalars (Keras's `"character"`, TensorFlow's UTF-8 characters).
        case character
        /// A function of your own.
        case custom((String) -> [String])
    }

    /// The n-gram widths formed from the split tokens (Keras `ngrams`): an integer `n` means
    /// widths 1 through n, a list the widths given. N-grams join tokens with a space, and come
    /// width by width in the order of the widths.
    public struct NGrams: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
        /// The widths, in output order.
        public let widths: [Int]
        /// Widths 1 through `n`.
        public init(upTo n: Int) { widths = n >= 1 ? Array(1...n) : [n] }
        /// The widths given.
        public init(widths: [Int]) { self.widths = widths }
        public init(integerLiteral value: Int) { self.init(upTo: value) }
        public init(arrayLiteral elements: Int...) { widths = elements }
    }

    /// The name used in error messages.
    public let name: String
    /// How texts are cleaned.
    public let standardize: Standardization?
    /// How texts become tokens.
    public let split: Split?
    /// The n-grams formed, if any.
    public let ngrams: NGrams?
    /// In `.int` mode, the length every output row is padded or truncated to (nil: the
    /// longest text of the call).
    public let outputSequenceLength: Int?

    /// A text vectorizer with Keras's arguments and defaults. `maxTokens` counts the padding
    /// and unknown entries.
    public init(maxTokens: Int? = nil, standardize: Standardization? = .lowerAndStripPunctuation,
                split: Split? = .whitespace, ngrams: NGrams? = nil, outputMode: LookupOutputMode = .int,
                outputSequenceLength: Int? = nil, padToMaxTokens: Bool = false, vocabulary: [String]? = nil,
                idfWeights: [Float]? = nil, name: String? = nil) throws {
        let name = name ?? "text_vectorization"
        let describe = "\(name) (TextVectorization)"
        self.name = name
        self.standardize = standardize
        self.split = split
        self.ngrams = ngrams
        self.outputSequenceLength = outputSequenceLength
        if let ngrams, ngrams.widths.isEmpty || ngrams.widths.contains(where: { $0 < 1 }) {
            throw KestrelError.invalidArgument("\(describe): ngrams must be positive widths, found \(ngrams.widths)")
        }
        if let outputSequenceLength {
            guard outputMode == .int else {
                throw KestrelError.invalidArgument(
                    "\(describe): outputSequenceLength is only for outputMode .int, found .\(outputMode)")
            }
            guard outputSequenceLength > 0 else {
                throw KestrelError.invalidArgument("\(describe): outputSequenceLength must be positive, found \(outputSequenceLength)")
            }
        }
        if outputMode == .oneHot && split != nil {
            throw KestrelError.invalidArgument(
                "\(describe): outputMode .oneHot encodes one token per text, so it needs split: nil")
        }
        super.init(table: try LookupTable(
            describe: describe, maxTokens: maxTokens, numOOVIndices: 1, maskToken: "", oovToken: "[UNK]",
            vocabulary: vocabulary, idfWeights: idfWeights, invert: false, outputMode: outputMode,
            padToMaxTokens: padToMaxTokens, precedes: { $0.utf8.lexicographicallyPrecedes($1.utf8) },
            oovBucket: { _ in 0 }, render: { "\"\($0)\"" }))
    }

    /// Learns the vocabulary from texts, each a document (Keras `adapt`): tokens by count,
    /// ties broken by the tokens' bytes, high to low, the first `maxTokens` kept.
    public func adapt(_ texts: [String]) throws {
        let parts = partsFor(texts.count)
        var tallies = [LookupTable<String>.Tally](repeating: .init(), count: parts)
        let frequencies = outputMode == .tfIdf
        tallies.withUnsafeMutableBufferPointer { tallies in
            Parallel.forEach(parts: parts) { part in
                for i in Self.range(of: part, parts, texts.count) { tallies[part].add(self.tokens(texts[i]), documentFrequencies: frequencies) }
            }
        }
        var total = tallies[0]
        for t in tallies.dropFirst() { total.merge(t) }
        try table.adapt(total)
    }

    /// How many parts a pass over `count` texts is cut into: one per Kestrel thread when the
    /// standardization and split are Keras's named ones (your own functions may not be
    /// thread-safe) and there are enough texts to be worth it.
    private func partsFor(_ count: Int) -> Int {
        if case .custom? = split { return 1 }
        guard builtInStandardization != nil, count >= 256 else { return 1 }
        return Parallel.scratchSlots
    }

    /// Texts `part` of `parts` covers.
    private static func range(of part: Int, _ parts: Int, _ count: Int) -> Range<Int> {
        (part * count / parts)..<((part + 1) * count / parts)
    }

    /// What `text` is looked up as: standardized, split, in n-grams.
    public func tokens(_ text: String) -> [String] {
        var text = text
        if let (lower, strip) = builtInStandardization {
            if case .whitespace? = split { return grams(Self.standardizedWords(text, lower: lower, strip: strip)) }
            if lower || strip { text = Self.standardized(text, lower: lower, strip: strip) }
        } else if case .custom(let f)? = standardize {
            text = f(text)
        }
        let tokens: [String]
        switch split {
        case .whitespace?: tokens = Self.whitespaceSplit(text)
        case .character?: tokens = text.unicodeScalars.map { String($0) }
        case .custom(let f)?: tokens = f(text)
        case nil: tokens = [text]
        }
        return grams(tokens)
    }

    /// Whether the standardization is one of Keras's named ones (or none), and which steps it takes.
    private var builtInStandardization: (lower: Bool, strip: Bool)? {
        switch standardize {
        case .lowerAndStripPunctuation?: return (true, true)
        case .lower?: return (true, false)
        case .stripPunctuation?: return (false, true)
        case nil: return (false, false)
        case .custom?: return nil
        }
    }

    /// The n-grams of split tokens (the tokens themselves without `ngrams`).
    private func grams(_ tokens: [String]) -> [String] {
        guard let ngrams else { return tokens }
        var grams: [String] = []
        for width in ngrams.widths where tokens.count >= width {
            if width == 1 { grams += tokens; continue }
            for start in 0...(tokens.count - width) { grams.append(tokens[start..<start + width].joined(separator: " ")) }
        }
        return grams
    }

    /// Vectorizes texts: `(texts, length)` indices in `.int` mode, padded with 0 (to
    /// `outputSequenceLength`, or to the longest text; `(texts)` for unsplit texts without a
    /// length); `(texts, depth)` vectors in the other modes.
    public func callAsFunction(_ texts: [String]) throws -> Tensor {
        // A local copy: calling through the stored property would copy the table per token.
        let lookup = table
        if outputMode == .int && (split != nil || outputSequenceLength != nil) {
            // With a fixed length each text is tokenized as its row is filled; without, all
            // first, to find the longest.
            let tokenized = outputSequenceLength == nil ? texts.map(tokens(_:)) : nil
            let length = outputSequenceLength ?? tokenized!.map(\.count).max() ?? 0
            var out = [Float](repeating: 0, count: texts.count * length)
            let parts = partsFor(texts.count)
            out.withUnsafeMutableBufferPointer { out in
                Parallel.forEach(parts: parts) { part in
                    for row in Self.range(of: part, parts, texts.count) {
                        for (j, token) in (tokenized?[row] ?? self.tokens(texts[row])).prefix(length).enumerated() {
                            // The lookup has OOV indices and a mask index, so every token has an index.
                            out[row * length + j] = Float(try! lookup.index(of: token)!)
                        }
                    }
                }
            }
            return Tensor(shape: [texts.count, length], scalars: out)
        }
        let tokenized = texts.map(tokens(_:))
        if outputMode != .int {
            // An unsplit text is a sample of one token.
            guard split != nil else { return try lookup.encode(tokenized.map { $0[0] }, shape: [texts.count, 1]) }
            return Tensor(shape: [texts.count, lookup.depth], scalars: try lookup.bags(tokenized))
        }
        // Unsplit texts without a length: one index per text.
        return try lookup.encode(tokenized.map { $0[0] }, shape: [texts.count])
    }

    private static func isASCIIPunctuation(_ b: UInt8) -> Bool {
        (33...47).contains(b) || (58...64).contains(b) || (91...96).contains(b) || (123...126).contains(b)
    }

    /// TensorFlow's `lower` (ASCII letters only) and Keras's punctuation pattern (every ASCII
    /// punctuation character), byte by byte: UTF-8 never uses ASCII bytes inside other characters.
    static func standardized(_ text: String, lower: Bool, strip: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            if strip && isASCIIPunctuation(b) { continue }
            bytes.append(lower && (65...90).contains(b) ? b + 32 : b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `standardized` then `whitespaceSplit` in one pass, without the intermediate string.
    static func standardizedWords(_ text: String, lower: Bool, strip: Bool) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(bytes.count, 1)) { word in
                var words: [String] = [], length = 0
                for b in bytes {
                    if b == 32 || (9...13).contains(b) {
                        if length > 0 { words.append(String(decoding: word[0..<length], as: UTF8.self)) }
                        length = 0
                    } else if !(strip && isASCIIPunctuation(b)) {
                        word[length] = lower && (65...90).contains(b) ? b + 32 : b
                        length += 1
                    }
                }
                if length > 0 { words.append(String(decoding: word[0..<length], as: UTF8.self)) }
                return words
            }
        }
    }

    /// Tokens between runs of ASCII whitespace (space, tab, newline, vertical tab, form feed,
    /// carriage return), as TensorFlow's `strings.split` without a separator.
    static func whitespaceSplit(_ text: String) -> [String] {
        text.utf8.split(whereSeparator: { $0 == 32 || (9...13).contains($0) }).map { String(decoding: $0, as: UTF8.self) }
    }
}
