@testable import Kestrel
import XCTest

// Fixture: Fixtures/structured_preprocessing.json, written by make_structured_fixtures.py next
// to this file (Keras 3.15 on TensorFlow 2.21).

/// The structured-data preprocessing layers against Keras: CategoryEncoding, Discretization
/// (given boundaries and Keras's adapted quantiles), Hashing, HashedCrossing, and the lookups'
/// hashed OOV indices; their shapes, errors and gradients; and a model built from them.
final class StructuredPreprocessingTests: XCTestCase {
    struct Fixture: Decodable {
        struct Category: Decodable {
            let numTokens: Int
            let mode: String
            let values: KerasFixtureTensor
            let countWeights: KerasFixtureTensor?
            let output: KerasFixtureTensor
        }
        struct Given: Decodable {
            let boundaries: [Float]
            let mode: String
            let values, output: KerasFixtureTensor
        }
        struct Adapted: Decodable {
            let label: String
            let data: KerasFixtureTensor
            let numBins: Int
            let epsilon: Double
            let boundaries: [Float]
            let probe, output: KerasFixtureTensor
        }
        struct Hash: Decodable {
            let numBins: Int
            let maskValue: HashValue?
            let salt: [UInt64]?
            let mode: String
            let strings: [String]?
            let shape: [Int]?
            let integers: KerasFixtureTensor?
            let output: KerasFixtureTensor
        }
        struct Crossing: Decodable {
            let numBins: Int
            let mode: String
            let left, right: [String]?
            let leftIntegers, rightIntegers: KerasFixtureTensor?
            let output: KerasFixtureTensor
        }
        struct Lookup: Decodable {
            let kind: String
            let vocabulary: [HashValue]
            let numOovIndices: Int
            let strings: [String]?
            let integers: KerasFixtureTensor?
            let output: KerasFixtureTensor
        }
        /// A string or an integer, as Keras's mask values and vocabularies may be.
        enum HashValue: Decodable {
            case string(String), integer(Int)
            init(from decoder: Decoder) throws {
                let c = try decoder.singleValueContainer()
                if let i = try? c.decode(Int.self) { self = .integer(i) } else { self = .string(try c.decode(String.self)) }
            }
        }
        let categoryEncoding: [Category]
        let discretizationGiven: [Given]
        let discretizationAdapted: [Adapted]
        let hashing: [Hash]
        let hashedCrossing: [Crossing]
        let lookups: [Lookup]
    }

    static let fixture = Result { try KerasFixtures.load("structured_preprocessing", as: Fixture.self) }

    func mode(_ name: String) throws -> LookupOutputMode {
        try XCTUnwrap(LookupOutputMode(rawValue: name), name)
    }

    /// Runs a layer of one or two inputs (batch first) through a functional model.
    func run(_ layer: Layer, _ inputs: [Tensor]) throws -> Tensor {
        let symbols = inputs.map { Input(shape: Array($0.shape.dropFirst())) }
        let output = inputs.count == 1 ? try layer(symbols[0]) : try layer(symbols)
        let model = try Model(inputs: symbols, outputs: [output])
        return try model.predict(inputs, batchSize: 3)[0]
    }

    func testCategoryEncodingMatchesKeras() throws {
        let fixture = try Self.fixture.get()
        XCTAssertEqual(fixture.categoryEncoding.count, 9)
        for c in fixture.categoryEncoding {
            let layer = try CategoryEncoding(numTokens: c.numTokens, outputMode: try mode(c.mode))
            let inputs = [c.values.tensor] + (c.countWeights.map { [$0.tensor] } ?? [])
            let y = try run(layer, inputs)
            XCTAssertEqual(y.shape, c.output.shape, "\(c.mode) of \(c.values.shape)")
            XCTAssertEqual(y.scalars, c.output.values, "\(c.mode) of \(c.values.values)")
        }
    }

    func testCategoryEncodingShapesErrorsAndGradients() throws {
        XCTAssertEqual(try CategoryEncoding(numTokens: 4, outputMode: .oneHot).build(inputShape: [1]), [4])
        XCTAssertEqual(try CategoryEncoding(numTokens: 4, outputMode: .oneHot).build(inputShape: [3]), [3, 4])
        XCTAssertEqual(try CategoryEncoding(numTokens: 4, outputMode: .oneHot).build(inputShape: []), [4])
        XCTAssertEqual(try CategoryEncoding(numTokens: 4).build(inputShape: [3]), [4])
        XCTAssertEqual(try CategoryEncoding(numTokens: 4, outputMode: .count).build(inputShape: [2, 5]), [2, 4])
        assertThrowsMessage(try CategoryEncoding(numTokens: 0), contains: ["CategoryEncoding", "numTokens", "0"])
        assertThrowsMessage(try CategoryEncoding(numTokens: 3, outputMode: .int),
                            contains: ["CategoryEncoding", "outputMode", ".int"])
        assertThrowsMessage(try CategoryEncoding(numTokens: 3).build(inputShapes: [[2], [2]]),
                            contains: ["count weights", ".count", ".multiHot"])
        assertThrowsMessage(try CategoryEncoding(numTokens: 3, outputMode: .count).build(inputShapes: [[2], [3]]),
                            contains: ["count weights", "[2]", "[3]"])
        // The count weights are differentiable (each one's gradient is its category's); the
        // values are not. Values sit between whole numbers, where truncation is constant.
        let harness = try LayerHarness(try CategoryEncoding(numTokens: 3, outputMode: .count),
                                       inputShapes: [[4], [4]], batch: 3)
        harness.inputs[0] = (0..<12).map { Float(($0 * 7) % 4) + 0.5 }   // 3.5 is outside: counts nowhere
        harness.check(label: " (count weights)")
        let oneHot = try LayerHarness(try CategoryEncoding(numTokens: 4, outputMode: .oneHot), inputShapes: [[1]], batch: 4)
        oneHot.inputs[0] = [0.5, 3.5, 1.5, 2.5]
        oneHot.check(label: " (zero gradient)")
    }

    func testDiscretizationMatchesKeras() throws {
        let fixture = try Self.fixture.get()
        for c in fixture.discretizationGiven {
            let layer = try Discretization(binBoundaries: c.boundaries, outputMode: try mode(c.mode))
            let y = try run(layer, [c.values.tensor])
            XCTAssertEqual(y.shape, c.output.shape, c.mode)
            XCTAssertEqual(y.scalars, c.output.values, c.mode)
        }
        XCTAssertEqual(fixture.discretizationAdapted.count, 8)
        for c in fixture.discretizationAdapted {
            let layer = try Discretization(numBins: c.numBins, epsilon: c.epsilon)
            try layer.adapt(c.data.tensor)
            let boundaries = try XCTUnwrap(layer.binBoundaries, c.label)
            XCTAssertEqual(boundaries.count, c.boundaries.count, c.label)
            // Keras interpolates in float64 from float32 data; the boundaries agree to float32's last bits.
            assertMatchesKeras(boundaries, c.boundaries, rtol: 1e-6, c.label)
            XCTAssertEqual(try layer(c.probe.tensor).scalars, c.output.values, c.label)
        }
    }

    func testDiscretizationShapesAndErrors() throws {
        let layer = try Discretization(binBoundaries: [0, 1], outputMode: .oneHot)
        XCTAssertEqual(try layer.build(inputShape: [1]), [3])
        XCTAssertEqual(try Discretization(binBoundaries: [0, 1], outputMode: .multiHot).build(inputShape: [4]), [3])
        XCTAssertEqual(try Discretization(binBoundaries: [0, 1]).build(inputShape: [4, 2]), [4, 2])
        assertThrowsMessage(try Discretization(), contains: ["Discretization", "binBoundaries or numBins"])
        assertThrowsMessage(try Discretization(binBoundaries: [0], numBins: 3), contains: ["not both"])
        assertThrowsMessage(try Discretization(binBoundaries: [1, 0]), contains: ["ascending", "1.0 before 0.0"])
        assertThrowsMessage(try Discretization(numBins: 0), contains: ["numBins", "at least 1", "0"])
        assertThrowsMessage(try Discretization(numBins: 3, outputMode: .tfIdf), contains: ["outputMode", ".tfIdf"])
        assertThrowsMessage(try Discretization(numBins: 3).build(inputShape: [1]), contains: ["adapt"])
        assertThrowsMessage(try Discretization(binBoundaries: [0]).adapt(Tensor([1, 2])), contains: ["binBoundaries", "numBins"])
        assertThrowsMessage(try Discretization(numBins: 2).adapt(Tensor([1, .nan])), contains: ["finite", "nan"])
        // A step function: no gradient flows back.
        let harness = try LayerHarness(try Discretization(binBoundaries: [-0.5, 0.5]), inputShapes: [[3]], batch: 2,
                                       avoid: [-0.5, 0.5])
        harness.check(label: " (zero gradient)")
    }

    func value(_ v: Fixture.HashValue) -> CategoricalValue {
        switch v {
        case .string(let s): .string(s)
        case .integer(let i): .integer(i)
        }
    }

    func testHashingMatchesKeras() throws {
        let fixture = try Self.fixture.get()
        XCTAssertEqual(fixture.hashing.count, 12)
        for c in fixture.hashing {
            let label = "\(c.numBins) bins, mask \(String(describing: c.maskValue)), salt \(c.salt ?? []), \(c.mode)"
            let layer = try Hashing(numBins: c.numBins, maskValue: c.maskValue.map(value), salt: c.salt,
                                    outputMode: try mode(c.mode))
            let y: Tensor
            if let strings = c.strings, let shape = c.shape {
                y = try layer(stride(from: 0, to: strings.count, by: shape[1]).map { Array(strings[$0..<$0 + shape[1]]) })
                if shape[1] == 1 {
                    // A flat list gives the same bins (one-hot rows; `.int` without the axis of 1).
                    XCTAssertEqual(try layer(strings).scalars, c.output.values, label)
                }
            } else {
                // Integers hash inside a model as Keras hashes an int64 feature.
                y = try run(layer, [try XCTUnwrap(c.integers).tensor])
            }
            XCTAssertEqual(y.shape, c.output.shape, label)
            XCTAssertEqual(y.scalars, c.output.values, label)
        }
        // The flat multi-hot form is one vector for the whole list, as in Keras.
        let counts = try Hashing(numBins: 6, outputMode: .count)(["a", "b", "a"])
        XCTAssertEqual(counts.shape, [6])
        XCTAssertEqual(counts.scalars.reduce(0, +), 3)
        XCTAssertEqual(try Hashing(numBins: 6, outputMode: .count)([["a", "b", "a"]]).scalars, counts.scalars)
    }

    func testHashingShapesErrorsAndGradient() throws {
        XCTAssertEqual(try Hashing(numBins: 5).build(inputShape: [3]), [3])
        XCTAssertEqual(try Hashing(numBins: 5, outputMode: .oneHot).build(inputShape: [1]), [5])
        XCTAssertEqual(try Hashing(numBins: 5, outputMode: .multiHot).build(inputShape: [3]), [5])
        assertThrowsMessage(try Hashing(numBins: 0), contains: ["Hashing", "numBins", "0"])
        assertThrowsMessage(try Hashing(numBins: 3, salt: [1, 2, 3]), contains: ["salt", "one value or two", "3"])
        assertThrowsMessage(try Hashing(numBins: 3, outputMode: .tfIdf), contains: ["outputMode", ".tfIdf"])
        assertThrowsMessage(try Hashing(numBins: 3)([["a"], ["b", "c"]]), contains: ["same number", "row 1 has 2"])
        // Non-whole numbers are truncated toward zero first, as Keras casts floats to int64.
        let layer = try Hashing(numBins: 1000)
        XCTAssertEqual(try layer(Tensor([2.9, -2.9, 2, -2])).scalars.map(Int.init), [2, -2, 2, -2].map { layer.bin(Float($0)) })
        XCTAssertEqual(layer.bin(Float(7)), layer.bin("7"))
        XCTAssertEqual(layer.bin(Float(-123)), layer.bin("-123"))
        let harness = try LayerHarness(try Hashing(numBins: 4, outputMode: .oneHot), inputShapes: [[1]], batch: 3)
        harness.inputs[0] = [1.5, 20.5, -3.5]
        harness.check(label: " (zero gradient)")
    }

    func testHashedCrossingMatchesKeras() throws {
        let fixture = try Self.fixture.get()
        XCTAssertEqual(fixture.hashedCrossing.count, 4)
        for c in fixture.hashedCrossing {
            let layer = try HashedCrossing(numBins: c.numBins, outputMode: try mode(c.mode))
            let y: Tensor
            if let left = c.left, let right = c.right {
                y = try layer([left, right])
            } else {
                y = try run(layer, [try XCTUnwrap(c.leftIntegers).tensor, try XCTUnwrap(c.rightIntegers).tensor])
            }
            XCTAssertEqual(y.scalars, c.output.values, "\(c.numBins) bins, \(c.mode)")
            XCTAssertEqual(Array(y.shape.prefix(1)), Array(c.output.shape.prefix(1)))
        }
        // Integers cross by their own bits, not their decimal form: [1] × ["x"] is not ["1"] × ["x"].
        let layer = try HashedCrossing(numBins: 1 << 20)
        XCTAssertNotEqual(try layer([[.integer(1)], [.string("x")]]).scalars, try layer([["1"], ["x"]]).scalars)
        assertThrowsMessage(try HashedCrossing(numBins: 3).build(inputShapes: [[1]]), contains: ["at least 2 inputs", "1"])
        assertThrowsMessage(try HashedCrossing(numBins: 3).build(inputShapes: [[2], [2]]), contains: ["one value per sample", "[2]"])
        assertThrowsMessage(try HashedCrossing(numBins: 3).build(inputShapes: [[1], []]), contains: ["equal shapes"])
        assertThrowsMessage(try HashedCrossing(numBins: 3, outputMode: .multiHot), contains: ["outputMode", ".multiHot"])
        assertThrowsMessage(try HashedCrossing(numBins: 3)([["a", "b"], ["c"]]), contains: ["column 1 has 1"])
        XCTAssertEqual(try HashedCrossing(numBins: 7, outputMode: .oneHot).build(inputShapes: [[1], [1], [1]]), [7])
        let harness = try LayerHarness(try HashedCrossing(numBins: 5, outputMode: .oneHot), inputShapes: [[1], [1]], batch: 3)
        harness.inputs = [[1.5, -2.5, 7.5], [0.5, 3.5, 9.5]]
        harness.check(label: " (zero gradient)")
    }

    func testLookupsHashUnknownTokensIntoSeveralOOVIndices() throws {
        let fixture = try Self.fixture.get()
        for c in fixture.lookups {
            let y: Tensor
            if c.kind == "string" {
                let vocabulary = c.vocabulary.map { value($0).text }
                y = try StringLookup(numOOVIndices: c.numOovIndices, vocabulary: vocabulary)(try XCTUnwrap(c.strings))
            } else {
                let vocabulary = c.vocabulary.compactMap { if case .integer(let i) = $0 { i } else { nil } }
                y = try IntegerLookup(numOOVIndices: c.numOovIndices, vocabulary: vocabulary)(try XCTUnwrap(c.integers).tensor)
            }
            XCTAssertEqual(y.scalars, c.output.values, c.kind)
        }
        // FarmHash spreads integers by their decimal form; a salt keys SipHash instead.
        let words = (0..<40).map { "w\($0)" }
        let plain = try StringLookup(numOOVIndices: 4, vocabulary: ["a"])(words).scalars
        let salted = try StringLookup(numOOVIndices: 4, vocabulary: ["a"], salt: [7])(words).scalars
        XCTAssertEqual(Set(plain), [0, 1, 2, 3])
        XCTAssertNotEqual(plain, salted)
        XCTAssertEqual(plain, words.map { Float(fingerprint64($0) % 4) })
        XCTAssertEqual(salted, words.map { Float(strongKeyedHash(key: (7, 7), $0) % 4) })
        let farm = try IntegerLookup(numOOVIndices: 4, vocabulary: [1], oovMethod: .farmHash)(Tensor([8, 12, 16, -4]))
        XCTAssertEqual(farm.scalars, [8, 12, 16, -4].map { Float(fingerprint64(String($0)) % 4) })
        assertThrowsMessage(try IntegerLookup(numOOVIndices: 4, salt: [1]), contains: ["salt", ".farmHash", ".floorMod"])
    }

    /// Keras's structured-data tutorial in small: a numeric feature bucketed by an adapted
    /// Discretization, integer codes one-hot encoded, a high-cardinality code hashed, two codes
    /// crossed, and a string feature looked up outside the model; a classifier learns a rule
    /// that needs the bucket, the cross and the looked-up string.
    func testAStructuredDataClassifierLearns() throws {
        Kestrel.setRandomSeed(3)
        var rng = RandomGenerator(seed: 21)
        let n = 800
        var age = [Float](), sex = [Float](), cp = [Float](), zip = [Float](), thal = [String](), labels = [Float]()
        let kinds = ["normal", "fixed", "reversible"]
        for _ in 0..<n {
            let a = 30 + 40 * rng.nextUnitFloat(), s = Float(Int(rng.nextUnitFloat() * 2)), c = Float(Int(rng.nextUnitFloat() * 4))
            let t = kinds[Int(rng.nextUnitFloat() * 3) % 3]
            age.append(a); sex.append(s); cp.append(c); zip.append(Float(Int(rng.nextUnitFloat() * 90_000) + 10_000)); thal.append(t)
            labels.append((a > 55) != (s == 1 && c == 3) || t == "fixed" ? 1 : 0)
        }
        let ageBuckets = try Discretization(numBins: 4)
        try ageBuckets.adapt(Tensor(shape: [n, 1], scalars: age))
        let lookup = try StringLookup(vocabulary: kinds, outputMode: .oneHot)
        let thalEncoded = try lookup(thal.map { [$0] })
        XCTAssertEqual(thalEncoded.shape, [n, 4])

        let (ageIn, sexIn, cpIn, zipIn, thalIn) = (Input(shape: [1]), Input(shape: [1]), Input(shape: [1]), Input(shape: [1]),
                                                   Input(shape: [4]))
        let features = try Concatenate()([
            try Discretization(binBoundaries: ageBuckets.binBoundaries, outputMode: .oneHot)(ageIn),
            try CategoryEncoding(numTokens: 2, outputMode: .oneHot)(sexIn),
            try CategoryEncoding(numTokens: 4, outputMode: .oneHot)(cpIn),
            try Hashing(numBins: 8, outputMode: .oneHot)(zipIn),
            try HashedCrossing(numBins: 16, outputMode: .oneHot)([sexIn, cpIn]),
            thalIn,
        ])
        let hidden = try Dense(16, activation: .relu)(features)
        let model = try Model(inputs: [ageIn, sexIn, cpIn, zipIn, thalIn], outputs: [try Dense(1, activation: .sigmoid)(hidden)])
        model.compile(optimizer: Adam(learningRate: 0.02), loss: BinaryCrossentropy(), metrics: [.binaryAccuracy()])
        let column = { (v: [Float]) in Tensor(shape: [n, 1], scalars: v) }
        let x = [column(age), column(sex), column(cp), column(zip), thalEncoded]
        let y = [column(labels)]
        _ = try model.fit(x, y, batchSize: 32, epochs: 40, verbose: 0)
        let accuracy = try XCTUnwrap(try model.evaluate(x, y, verbose: 0)["binary_accuracy"])
        XCTAssertGreaterThanOrEqual(accuracy, 0.97)
        // Bucketing by the adapted boundaries is what the rule needs: ages split at 4 quantiles.
        XCTAssertEqual(try XCTUnwrap(ageBuckets.binBoundaries).count, 3)
    }

    /// The categorical layers inside a model leave a training step allocation-free (the
    /// hashed numbers are written on the stack).
    func testTrainingThroughCategoricalLayersAllocatesNothing() throws {
        Kestrel.setRandomSeed(4)
        let input = Input(shape: [1])
        let crossed = try HashedCrossing(numBins: 5, outputMode: .oneHot)(
            [try Hashing(numBins: 50)(input), try Discretization(binBoundaries: [9])(input)])
        let features = try Concatenate()([
            try Hashing(numBins: 8, maskValue: 0, outputMode: .multiHot)(input),
            try CategoryEncoding(numTokens: 40, outputMode: .count)(input),
            try Discretization(binBoundaries: [5, 10, 20], outputMode: .oneHot)(input),
            crossed,
        ])
        let model = try Model(inputs: [input], outputs: [try Dense(3, activation: .softmax)(features)])
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy())
        let x = Tensor(shape: [64, 1], scalars: (0..<64).map { Float(($0 * 37) % 41) })
        let y = Tensor(shape: [64], scalars: (0..<64).map { Float($0 % 3) })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 16)
    }
}
