@testable import Kestrel
import XCTest

// TensorFlow's string hashes, bit for bit: Fingerprint64 (FarmHash), StrongKeyedHash
// (SipHash-2-4), FingerprintCat64 through `tf.sparse.cross_hashed`, and the Keras 3 layers on
// top of them. Fixture: Fixtures/hash_fixtures.json, written by make_hash_fixtures.py next to
// this file (TensorFlow 2.21, Keras 3.15). 64-bit numbers are decimal strings there; signed
// ones (hash keys, int64 features) stand for their two's-complement bits.
final class FingerprintTests: XCTestCase {
    struct Fixture: Decodable {
        struct StringCase: Decodable {
            let text: String
            let utf8Length: Int
            /// One bucket per `fastNumBuckets`.
            let fast: [String]
            /// Per `strongKeys`, one bucket per `strongNumBuckets`.
            let strong: [[String]]
        }
        struct CrossCase: Decodable {
            /// "string" or "int" per feature; `features[f][row]`.
            let kinds: [String]
            let features: [[String]]
            /// nil: the op's default key.
            let hashKey: String?
            let numBuckets: String
            let buckets: [String]
        }
        struct HashingCase: Decodable {
            let numBins: Int
            let salt: [String]?
            let maskValue: String?
            /// "string", "int32", "int64" or "float64".
            let dtype: String
            let inputs: [String]
            let outputs: [Int]
        }
        struct CrossingCase: Decodable {
            let kinds: [String]
            let features: [[String]]
            let numBins: Int
            let outputs: [Int]
        }
        struct LookupCase: Decodable {
            /// "string" (StringLookup) or "int" (IntegerLookup).
            let kind: String
            let vocabulary: [String]
            let numOovIndices: Int
            let maskToken: String?
            let oovMethod: String
            let salt: [String]?
            let inputs: [String]
            let outputs: [Int]
        }
        struct KerasCases: Decodable {
            let hashing: [HashingCase]
            let hashedCrossing: [CrossingCase]
            let lookup: [LookupCase]
        }
        let tensorflowVersion: String
        let fastNumBuckets: [String]
        let strongKeys: [[String]]
        let strongNumBuckets: [String]
        let strings: [StringCase]
        let crosses: [CrossCase]
        let keras: KerasCases
    }

    func fixture() throws -> Fixture { try KerasFixtures.load("hash_fixtures", as: Fixture.self) }

    /// The 64 bits a fixture number stands for (negative ones as two's complement).
    func bits(_ decimal: String) throws -> UInt64 {
        if let value = UInt64(decimal) { return value }
        return UInt64(bitPattern: try XCTUnwrap(Int64(decimal), "not a 64-bit integer: \(decimal)"))
    }

    func key(_ pair: [String]) throws -> (UInt64, UInt64) {
        XCTAssertEqual(pair.count, 2)
        return (try bits(pair[0]), try bits(pair[1]))
    }

    func crossFeature(_ kind: String, _ value: String) throws -> CategoricalValue {
        kind == "string" ? .string(value) : .integer(try XCTUnwrap(Int(value)))
    }

    /// `crossHashedBucket` over a row of features.
    func crossBucket(_ features: [CategoricalValue], numBuckets: Int, hashKey: UInt64 = defaultCrossHashKey) -> Int {
        crossHashedBucket(featureCount: features.count, numBuckets: numBuckets, hashKey: hashKey) { features[$0].crossHash }
    }

    /// `tf.strings.to_hash_bucket_fast` for every FarmHash length path (0, 1–3, 4–7, 8–16,
    /// 17–32, 33–64, more than 64 bytes), ASCII and multi-byte UTF-8.
    func testFingerprint64MatchesToHashBucketFast() throws {
        let f = try fixture()
        let lengths = Set(f.strings.map(\.utf8Length))
        for path in [0...0, 1...3, 4...7, 8...16, 17...32, 33...64, 65...128, 129...Int.max] {
            XCTAssert(lengths.contains { path.contains($0) }, "fixture has no string of \(path) bytes")
        }
        let counts = try f.fastNumBuckets.map(bits)
        for c in f.strings {
            XCTAssertEqual(c.text.utf8.count, c.utf8Length, "\(c.text.debugDescription) decoded to other bytes")
            let hash = fingerprint64(c.text)
            // The other entry points must agree: raw bytes, an array, a non-contiguous collection.
            let bytes = Array(c.text.utf8)
            XCTAssertEqual(bytes.withUnsafeBytes { fingerprint64($0) }, hash)
            XCTAssertEqual(fingerprint64(bytes), hash)
            XCTAssertEqual(fingerprint64(c.text.utf8.lazy.map { $0 }), hash)
            for (n, expected) in zip(counts, c.fast) {
                XCTAssertEqual(hash % n, try bits(expected),
                               "to_hash_bucket_fast(\(c.text.debugDescription) [\(c.utf8Length) bytes], \(n))")
                if n < UInt64(Int.max) {
                    XCTAssertEqual(UInt64(hashBucket(c.text, key: nil, numBuckets: Int(n))), try bits(expected))
                }
            }
        }
    }

    /// `tf.strings.to_hash_bucket_strong` with keys whose two words differ, so a swapped or
    /// byte-reversed key fails.
    func testStrongKeyedHashMatchesToHashBucketStrong() throws {
        let f = try fixture()
        let keys = try f.strongKeys.map(key)
        let counts = try f.strongNumBuckets.map(bits)
        for c in f.strings {
            XCTAssertEqual(c.strong.count, keys.count)
            for (k, perKey) in zip(keys, c.strong) {
                let hash = strongKeyedHash(key: k, c.text)
                XCTAssertEqual(strongKeyedHash(key: k, c.text.utf8.lazy.map { $0 }), hash)
                for (n, expected) in zip(counts, perKey) {
                    XCTAssertEqual(hash % n, try bits(expected),
                                   "to_hash_bucket_strong(\(c.text.debugDescription) [\(c.utf8Length) bytes], \(n), key=\(k))")
                    XCTAssertEqual(UInt64(hashBucket(c.text, key: k, numBuckets: Int(n))), try bits(expected))
                }
            }
        }
    }

    /// `tf.sparse.cross_hashed` on dense string, int64 and mixed features: default, explicit,
    /// zero and negative hash keys; bucket counts Int64.max, 10 and 0 (none).
    func testCrossHashedMatchesSparseCrossHashed() throws {
        let f = try fixture()
        for c in f.crosses {
            let hashKey = try c.hashKey.map(bits)
            let numBuckets = Int(try XCTUnwrap(Int64(c.numBuckets)))
            for row in c.buckets.indices {
                let features = try zip(c.kinds, c.features).map { try crossFeature($0, $1[row]) }
                let expected = try bits(c.buckets[row])
                let label = "cross_hashed(\(features), num_buckets=\(numBuckets), hash_key=\(c.hashKey ?? "default"))"
                let bucket = hashKey.map { crossBucket(features, numBuckets: numBuckets, hashKey: $0) }
                    ?? crossBucket(features, numBuckets: numBuckets)
                XCTAssertEqual(UInt64(bucket), expected, label)

                // The same fold spelled out, pinning FingerprintCat64's argument order.
                var hash = hashKey ?? defaultCrossHashKey
                if hash == 0 { hash = defaultCrossHashKey }
                for feature in features {
                    let featureHash: UInt64
                    switch feature {
                    case .string(let s): featureHash = fingerprint64(s)
                    case .integer(let i): featureHash = UInt64(bitPattern: Int64(i))
                    }
                    hash = fingerprintCat64(hash, featureHash)
                }
                XCTAssertEqual(hash % (numBuckets > 0 ? UInt64(numBuckets) : UInt64(Int64.max)), expected, label)
            }
        }
    }

    /// Keras's `Hashing`: integers hashed as decimal strings, floats truncated to int64 first,
    /// an int salt `s` as the key `[s, s]`, and `mask_value` to 0 with the rest shifted up one.
    func testKerasHashingHashesDecimalStrings() throws {
        for c in try fixture().keras.hashing {
            let masking = c.maskValue != nil && c.numBins > 1
            let bins = masking ? c.numBins - 1 : c.numBins
            let salt = try c.salt.map(key)
            for (input, expected) in zip(c.inputs, c.outputs) {
                let token: String
                let masked: Bool
                switch c.dtype {
                case "string":
                    token = input
                    masked = masking && input == c.maskValue
                case "float64":
                    // The mask is compared before the cast; tf.cast truncates toward zero.
                    let x = try XCTUnwrap(Double(input))
                    token = String(Int64(x))
                    masked = masking && x == Double(c.maskValue!)
                default:
                    token = input
                    masked = masking && Int64(input) == Int64(c.maskValue!)
                }
                let bucket = hashBucket(token, key: salt, numBuckets: bins)
                let actual = masked ? 0 : (masking ? bucket + 1 : bucket)
                XCTAssertEqual(actual, expected, "Hashing(num_bins=\(c.numBins), salt=\(c.salt ?? []), mask_value=\(c.maskValue ?? "None"))(\(c.dtype) \(input))")
            }
        }
    }

    /// Keras's `HashedCrossing` is `tf.sparse.cross_hashed` with the default key, integers
    /// crossed as int64 (not as strings).
    func testKerasHashedCrossingIsCrossHashed() throws {
        for c in try fixture().keras.hashedCrossing {
            for row in c.outputs.indices {
                let features = try zip(c.kinds, c.features).map { try crossFeature($0, $1[row]) }
                XCTAssertEqual(crossBucket(features, numBuckets: c.numBins), c.outputs[row],
                               "HashedCrossing(num_bins=\(c.numBins))(\(features))")
            }
        }
    }

    /// `StringLookup` / `IntegerLookup` with several OOV indices: OOV start plus the string's
    /// fast (or, salted, strong) hash bucket; integers by floormod unless `oov_method="farmhash"`,
    /// which hashes their decimal strings.
    func testKerasLookupOOVBuckets() throws {
        for c in try fixture().keras.lookup {
            let oovStart = c.maskToken == nil ? 0 : 1
            let tokenStart = oovStart + c.numOovIndices
            let salt = try c.salt.map(key)
            for (input, expected) in zip(c.inputs, c.outputs) {
                let actual: Int
                if let mask = c.maskToken, input == mask {
                    actual = 0
                } else if let position = c.vocabulary.firstIndex(of: input) {
                    actual = tokenStart + position
                } else if c.kind == "int" && c.oovMethod == "floormod" {
                    let x = try XCTUnwrap(Int64(input)), n = Int64(c.numOovIndices)
                    actual = oovStart + Int(((x % n) + n) % n)
                } else {
                    actual = oovStart + hashBucket(input, key: salt, numBuckets: c.numOovIndices)
                }
                XCTAssertEqual(actual, expected, "\(c.kind) lookup (num_oov_indices=\(c.numOovIndices), mask=\(c.maskToken ?? "None"), \(c.oovMethod), salt=\(c.salt ?? []))(\(input))")
            }
        }
    }
}
