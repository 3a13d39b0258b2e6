import Foundation
import XCTest
@testable import Kestrel

// TextVectorization, StringLookup and IntegerLookup against Keras 3 (TensorFlow's string ops).
// Fixture: Fixtures/text_preprocessing.json, written by make_text_fixtures.py next to this
// file: each case has the Keras constructor arguments, the data Keras adapted on, the
// vocabulary it ended with (order matters: ties in count are broken by the tokens' bytes) and
// the outputs of some calls, which Kestrel must repeat exactly (TF-IDF to 1e-6 relative).
final class TextPreprocessingTests: XCTestCase {
    /// The fixture's cases as JSON objects: their configs tell an absent argument (the
    /// default) from an explicit null (none), which Decodable would blur.
    static func cases() throws -> [[String: Any]] {
        guard let url = Bundle.module.url(forResource: "text_preprocessing", withExtension: "json", subdirectory: "Fixtures") else {
            throw KerasFixtureError("fixture text_preprocessing.json is missing; run make_text_fixtures.py")
        }
        return try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
    }

    private func mode(_ c: [String: Any]) -> LookupOutputMode {
        LookupOutputMode(rawValue: c["output_mode"] as? String ?? "int")!
    }

    private func floats(_ any: Any?) -> [Float]? { (any as? [NSNumber])?.map(\.floatValue) }

    private func makeTextVectorization(_ c: [String: Any]) throws -> TextVectorization {
        var standardize: TextVectorization.Standardization? = .lowerAndStripPunctuation
        if c.keys.contains("standardize") {
            switch c["standardize"] as? String {
            case "lower": standardize = .lower
            case "strip_punctuation": standardize = .stripPunctuation
            case "lower_and_strip_punctuation": standardize = .lowerAndStripPunctuation
            default: standardize = nil
            }
        }
        var split: TextVectorization.Split? = .whitespace
        if c.keys.contains("split") { split = (c["split"] as? String) == "character" ? .character : nil }
        var ngrams: TextVectorization.NGrams?
        if let n = c["ngrams"] as? Int { ngrams = .init(upTo: n) }
        if let widths = c["ngrams"] as? [Int] { ngrams = .init(widths: widths) }
        return try TextVectorization(maxTokens: c["max_tokens"] as? Int, standardize: standardize, split: split,
                                     ngrams: ngrams, outputMode: mode(c),
                                     outputSequenceLength: c["output_sequence_length"] as? Int,
                                     padToMaxTokens: c["pad_to_max_tokens"] as? Bool ?? false,
                                     vocabulary: c["vocabulary"] as? [String], idfWeights: floats(c["idf_weights"]))
    }

    private func assertOutput(_ got: Tensor, _ expected: [String: Any], _ what: String) {
        let shape = expected["shape"] as! [Int], values = floats(expected["values"])!
        XCTAssertEqual(got.shape, shape, "\(what): shape")
        guard got.shape == shape else { return }
        for (i, (g, e)) in zip(got.scalars, values).enumerated() where abs(g - e) > 1e-6 * max(1, abs(e)) {
            XCTFail("\(what): element \(i) is \(g), Keras gives \(e)")
            return
        }
    }

    func testKerasReference() throws {
        var checked: Set<String> = []
        for entry in try Self.cases() {
            let name = entry["name"] as! String, c = entry["config"] as! [String: Any]
            let queries = entry["queries"] as! [[String: Any]]
            switch entry["layer"] as! String {
            case "TextVectorization":
                let layer = try makeTextVectorization(c)
                if let data = entry["adapt"] as? [String] { try layer.adapt(data) }
                XCTAssertEqual(layer.vocabulary(), entry["vocabulary"] as! [String], "\(name): vocabulary")
                XCTAssertEqual(layer.vocabularySize, entry["vocabulary_size"] as! Int, name)
                if let idf = floats(entry["idf_weights"]) {
                    XCTAssertEqual(layer.idfWeights?.count, idf.count, "\(name): idf weights")
                    for (g, e) in zip(layer.idfWeights ?? [], idf) { XCTAssertEqual(g, e, accuracy: 1e-6 * max(1, e), name) }
                }
                for q in queries { assertOutput(try layer(q["input"] as! [String]), q["output"] as! [String: Any], name) }
            case "StringLookup":
                let layer = try StringLookup(maxTokens: c["max_tokens"] as? Int, numOOVIndices: c["num_oov_indices"] as? Int ?? 1,
                                             maskToken: c["mask_token"] as? String, vocabulary: c["vocabulary"] as? [String],
                                             invert: c["invert"] as? Bool ?? false, outputMode: mode(c),
                                             padToMaxTokens: c["pad_to_max_tokens"] as? Bool ?? false)
                if let data = entry["adapt"] as? [String] { try layer.adapt(data) }
                if let data = entry["adapt"] as? [[String]] { try layer.adapt(data) }
                XCTAssertEqual(layer.vocabulary(), entry["vocabulary"] as! [String], "\(name): vocabulary")
                XCTAssertEqual(layer.vocabularySize, entry["vocabulary_size"] as! Int, name)
                if let idf = floats(entry["idf_weights"]) {
                    for (g, e) in zip(layer.idfWeights ?? [], idf) { XCTAssertEqual(g, e, accuracy: 1e-6 * max(1, e), name) }
                }
                for q in queries {
                    let out = q["output"] as! [String: Any]
                    if c["invert"] as? Bool == true {
                        let input = q["input"] as? [[Int]] ?? [q["input"] as! [Int]]
                        let shape = q["input"] is [[Int]] ? [input.count, input[0].count] : [input[0].count]
                        let got = try layer(Tensor(shape: shape, scalars: input.flatMap { $0 }.map(Float.init)))
                        XCTAssertEqual(got, out["values"] as! [String], name)
                    } else if let rows = q["input"] as? [[String]] {
                        assertOutput(try layer(rows), out, name)
                    } else {
                        assertOutput(try layer(q["input"] as! [String]), out, name)
                    }
                }
            case "IntegerLookup":
                let layer = try IntegerLookup(maxTokens: c["max_tokens"] as? Int, numOOVIndices: c["num_oov_indices"] as? Int ?? 1,
                                              maskToken: c["mask_token"] as? Int, vocabulary: c["vocabulary"] as? [Int],
                                              invert: c["invert"] as? Bool ?? false, outputMode: mode(c))
                if let data = entry["adapt"] as? [Int] { try layer.adapt(data) }
                XCTAssertEqual(layer.vocabulary(), entry["vocabulary"] as! [Int], "\(name): vocabulary")
                for q in queries {
                    let input = q["input"] as? [[Int]] ?? [q["input"] as! [Int]]
                    let shape = q["input"] is [[Int]] ? [input.count, input[0].count] : [input[0].count]
                    assertOutput(try layer(Tensor(shape: shape, scalars: input.flatMap { $0 }.map(Float.init))),
                                 q["output"] as! [String: Any], name)
                }
            default:
                XCTFail("unknown layer in \(name)")
            }
            checked.insert(entry["layer"] as! String)
        }
        XCTAssertEqual(checked, ["TextVectorization", "StringLookup", "IntegerLookup"])
    }

    func testArgumentErrorsNameTheLayerAndArgument() {
        assertThrowsMessage(try TextVectorization(maxTokens: 1), contains: ["text_vectorization (TextVectorization)", "maxTokens must be greater than 1", "found 1"])
        assertThrowsMessage(try TextVectorization(outputMode: .multiHot, outputSequenceLength: 4),
                            contains: ["outputSequenceLength is only for outputMode .int", "found .multiHot"])
        assertThrowsMessage(try TextVectorization(outputMode: .oneHot), contains: ["needs split: nil"])
        assertThrowsMessage(try TextVectorization(ngrams: [0, 2]), contains: ["ngrams must be positive widths", "[0, 2]"])
        assertThrowsMessage(try TextVectorization(padToMaxTokens: true), contains: ["padToMaxTokens needs maxTokens"])
        assertThrowsMessage(try TextVectorization(outputMode: .tfIdf, vocabulary: ["a"]), contains: ["needs idfWeights"])
        assertThrowsMessage(try StringLookup(numOOVIndices: -1, name: "colors"), contains: ["colors (StringLookup)", "numOOVIndices must be 0 or more", "found -1"])
        assertThrowsMessage(try StringLookup(numOOVIndices: 2, salt: [1, 2, 3], name: "colors"), contains: ["colors (StringLookup)", "salt", "one value or two", "found 3"])
        assertThrowsMessage(try StringLookup(vocabulary: ["a", "b", "a"]), contains: ["the vocabulary repeats \"a\""])
        assertThrowsMessage(try StringLookup(maskToken: "", vocabulary: ["a", ""]), contains: ["mask token \"\" is in the vocabulary", "[\"\", \"[UNK]\"]"])
        assertThrowsMessage(try StringLookup(maxTokens: 3, vocabulary: ["a", "b", "c"]), contains: ["4 entries", "exceeds maxTokens 3"])
        assertThrowsMessage(try StringLookup(invert: true, outputMode: .count), contains: ["invert needs outputMode .int"])
        assertThrowsMessage(try IntegerLookup(idfWeights: [1], outputMode: .multiHot), contains: ["idfWeights are only for outputMode .tfIdf"])
        assertThrowsMessage(try IntegerLookup(vocabulary: [1, 2], idfWeights: [1], outputMode: .tfIdf),
                            contains: ["one weight per vocabulary entry (2), found 1"])
    }

    func testCallErrors() throws {
        let strict = try StringLookup(numOOVIndices: 0, vocabulary: ["x", "y"])
        assertThrowsMessage(try strict(["x", "q"]), contains: ["\"q\" is not in the vocabulary and numOOVIndices is 0"])
        assertThrowsMessage(try strict([["x"], ["x", "y"]]), contains: ["same number of tokens", "row 0 has 1, row 1 has 2"])
        assertThrowsMessage(try strict(Tensor([1, 2])), contains: ["needs invert: true"])
        let inverse = try StringLookup(vocabulary: ["x"], invert: true)
        assertThrowsMessage(try inverse(["x"]), contains: ["invert: true maps indices (a Tensor) to strings"])
        assertThrowsMessage(try inverse(Tensor([0.5])), contains: ["indices must be whole numbers, found 0.5"])
        let fixed = try TextVectorization(vocabulary: ["a"])
        assertThrowsMessage(try fixed.adapt(["a b"]), contains: ["cannot adapt a layer created with a vocabulary"])
        let unadapted = try TextVectorization(outputMode: .multiHot)
        assertThrowsMessage(try unadapted(["a b"]), contains: ["outputMode .multiHot needs a vocabulary", "adapt"])
        assertThrowsMessage(try IntegerLookup()(Tensor([1.5])), contains: ["integer_lookup (IntegerLookup)", "inputs must be whole numbers, found 1.5"])
    }

    func testTokensCustomFunctionsAndVocabularyRoundTrip() throws {
        let v = try TextVectorization(standardize: .custom { $0.replacingOccurrences(of: "-", with: " ") },
                                      split: .custom { $0.split(separator: " ").map(String.init).reversed() }, ngrams: [1, 2])
        XCTAssertEqual(v.tokens("a-b c"), ["c", "b", "a", "c b", "b a"])
        try v.adapt(["a-b c", "c c"])
        XCTAssertEqual(v.vocabulary(), ["", "[UNK]", "c", "c c", "c b", "b a", "b", "a"])
        // A vocabulary read back (special entries included) gives the same indices.
        let copy = try TextVectorization(standardize: v.standardize, split: v.split, ngrams: v.ngrams, vocabulary: v.vocabulary())
        XCTAssertEqual(try copy(["b-a c", "zz"]), try v(["b-a c", "zz"]))
        XCTAssertEqual(try v(["b-a c", "zz"]).shape, [2, 5])
        // Re-adapting replaces the vocabulary.
        try v.adapt(["q"])
        XCTAssertEqual(v.vocabulary(includeSpecialTokens: false), ["q"])
        // Keras keeps the vocabulary when the data has no token at all.
        try v.adapt([""])
        XCTAssertEqual(v.vocabulary(includeSpecialTokens: false), ["q"])
        XCTAssertEqual(try v(["", ""]).shape, [2, 0])
    }

    /// Many texts are tokenized and counted on Kestrel's threads, a part each; the result must
    /// be the one-thread result (your own functions run on one thread, so they give it).
    func testThreadedPassesMatchOneThread() throws {
        var generator = RandomGenerator(seed: 11)
        let texts = (0..<3000).map { _ in
            (0..<Int.random(in: 0..<40, using: &generator)).map { _ in
                "W\(Int.random(in: 0..<500, using: &generator))\(Bool.random(using: &generator) ? "," : "")"
            }.joined(separator: Bool.random(using: &generator) ? " " : "\t ")
        }
        for mode in [LookupOutputMode.int, .tfIdf] {
            let length = mode == .int ? 30 : nil
            let threaded = try TextVectorization(maxTokens: 300, ngrams: 2, outputMode: mode, outputSequenceLength: length)
            let single = try TextVectorization(maxTokens: 300, standardize: .custom { TextVectorization.standardized($0, lower: true, strip: true) },
                                               ngrams: 2, outputMode: mode, outputSequenceLength: length)
            try threaded.adapt(texts)
            try single.adapt(texts)
            XCTAssertEqual(threaded.vocabulary(), single.vocabulary())
            XCTAssertEqual(threaded.idfWeights, single.idfWeights)
            XCTAssertEqual(try threaded(texts), try single(texts))
        }
        let unpadded = try TextVectorization()
        try unpadded.adapt(texts)
        XCTAssertEqual(try unpadded(texts).shape, [3000, texts.map { unpadded.tokens($0).count }.max()!])
    }

    /// Keras's "basic text classification" pipeline: texts → TextVectorization → Embedding →
    /// GlobalAveragePooling1D → Dense. Reviews are made of words of a positive or a negative
    /// list among neutral ones; the model must learn which is which from the vocabulary alone.
    func testTextClassifierLearnsFromVectorizedTexts() throws {
        let positive = ["great", "wonderful", "superb", "loved", "brilliant", "moving"]
        let negative = ["awful", "boring", "terrible", "hated", "dull", "weak"]
        let neutral = ["the", "film", "plot", "actors", "was", "and", "a", "story", "with", "music", "scene", "ending"]
        var generator = RandomGenerator(seed: 7)
        func review(_ good: Bool) -> String {
            let words = (0..<12).map { i -> String in
                if i % 4 == 0 { return (good ? positive : negative)[Int.random(in: 0..<6, using: &generator)] }
                return neutral[Int.random(in: 0..<neutral.count, using: &generator)]
            }
            return words.joined(separator: Bool.random(using: &generator) ? " " : ", ").capitalized + "!"
        }
        let labels = (0..<600).map { $0 % 2 }
        let texts = labels.map { review($0 == 1) }
        let vectorize = try TextVectorization(maxTokens: 40, outputSequenceLength: 16)
        try vectorize.adapt(texts)
        XCTAssertEqual(vectorize.vocabularySize, 2 + positive.count + negative.count + neutral.count)
        let x = try vectorize(texts)
        XCTAssertEqual(x.shape, [600, 16])
        let y = Tensor(labels: labels)
        let model = Sequential {
            Embedding(inputDim: vectorize.vocabularySize, outputDim: 8)
            GlobalAveragePooling1D()
            Dense(1, activation: .sigmoid)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: BinaryCrossentropy(), metrics: [.accuracy])
        try model.fit(x[batch: 0..<500], y[batch: 0..<500], batchSize: 32, epochs: 15, verbose: 0, seed: 3)
        let accuracy = try model.evaluate(x[batch: 500..<600], y[batch: 500..<600], verbose: 0)["accuracy"]!
        XCTAssertGreaterThan(accuracy, 0.95)
    }
}
