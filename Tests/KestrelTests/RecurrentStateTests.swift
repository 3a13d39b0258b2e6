@testable import Kestrel
import XCTest

// Layer calls that return several tensors: the recurrent layers' and Bidirectional's
// `returnState` and `initialState` (Keras `return_state`, `initial_state`) and
// MultiHeadAttention's `returnAttentionScores`, against Keras 3 (Fixtures/recurrent_states.json,
// the `recurrent_states` group of make_fixtures.py: outputs, final states or scores, and the
// gradients of sum(output·P) + Σ sum(extra_k·P_k) with respect to every input and weight), by
// finite differences through encoder–decoder models, and the encoder–decoder workflow of Keras's
// seq2seq example.

struct RecurrentStateFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let layer: String
        let config: [String: FixtureValue]
        let inputs: [KerasFixtureTensor]
        let weights: [KerasFixtureTensor]
        let outputs: [KerasFixtureTensor]
        let projections: [KerasFixtureTensor]
        let inputGradients: [KerasFixtureTensor]
        let weightGradients: [KerasFixtureTensor]
        let mask: KerasFixtureTensor?
        /// MultiHeadAttention's `use_causal_mask`.
        let causal: Bool?
    }
    let cases: [Case]
}

final class RecurrentStateTests: XCTestCase {
    func testStatesMatchKeras() throws {
        let fixture = try KerasFixtures.load("recurrent_states", as: RecurrentStateFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.layer)), ["LSTM", "GRU", "SimpleRNN", "Bidirectional", "MultiHeadAttention"])
        XCTAssertEqual(fixture.cases.filter { $0.mask != nil }.count, 3, "masked cases")
        for c in fixture.cases {
            var config = c.config
            // (A Bidirectional layer's wrapped layer has return_state in its own config.)
            if c.layer != "Bidirectional" { config["return_state"] = .bool(true) }
            let layer = try RecurrentReferenceTests.makeLayer(className: c.layer, config: config, caseName: c.name)
            if let attention = layer as? MultiHeadAttention {
                // Keras's call arguments; the returned scores are the softmax's weights.
                attention.returnAttentionScores = true
                attention.useCausalMask = c.causal ?? false
            }
            try layer.build(inputShapes: c.inputs.map { Array($0.shape.dropFirst()) })
            try layer.setWeights(c.weights.map(\.tensor))
            let run = try MultiInputLayerRun(layer, inputs: c.inputs.map(\.tensor), projection: c.projections[0].values,
                                             additionalProjections: c.projections.dropFirst().map(\.values),
                                             mask: c.mask?.values)
            XCTAssertEqual(1 + run.additionalOutputs.count, c.outputs.count, "\(c.name): outputs")
            for (k, (actual, expected)) in zip([run.output] + run.additionalOutputs, c.outputs).enumerated() {
                assertMatchesKeras(actual, expected.values, rtol: 1e-4, "\(c.name) output \(k)")
            }
            XCTAssertEqual(run.inputGradients.count, c.inputGradients.count, "\(c.name): inputs")
            for (k, (g, e)) in zip(run.inputGradients, c.inputGradients).enumerated() {
                assertMatchesKeras(g, e.values, rtol: 1e-4, "\(c.name) gradient of input \(k)")
            }
            for (k, (g, e)) in zip(run.weightGradients, c.weightGradients).enumerated() {
                // Attention's key bias moves every score of a row alike, which the softmax
                // cancels: its gradient is zero, and both sides hold rounding noise.
                if layer is MultiHeadAttention && layer.weightSpecs[k].name == "key/bias" {
                    XCTAssertLessThan(e.values.map(abs).max()!, 1e-6, "\(c.name): Keras's key bias gradient")
                    XCTAssertLessThan(g.map(abs).max()!, 1e-6, "\(c.name): key bias gradient")
                    continue
                }
                assertMatchesKeras(g, e.values, rtol: 1e-4, "\(c.name) gradient of weight \(k)")
            }
            // The states' gradients matter: without them the weights' gradients differ.
            let outputOnly = try MultiInputLayerRun(layer, inputs: c.inputs.map(\.tensor), projection: c.projections[0].values,
                                                    mask: c.mask?.values)
            XCTAssertGreaterThan(zip(outputOnly.weightGradients[1], c.weightGradients[1].values).map { abs($0 - $1) }.max()!,
                                 1e-3, c.name)
        }
    }

    func testCallsReturnKerasListsAndCheckTheirArguments() throws {
        let x = Input(shape: [5, 3])
        let lstm: [SymbolicTensor] = try LSTM(4, returnState: true)(x)
        XCTAssertEqual(lstm.map(\.shape), [[4], [4], [4]])
        let sequences: [SymbolicTensor] = try GRU(2, returnSequences: true, returnState: true)(x)
        XCTAssertEqual(sequences.map(\.shape), [[5, 2], [2]])
        let plain: [SymbolicTensor] = try SimpleRNN(2)(x)
        XCTAssertEqual(plain.map(\.shape), [[2]])
        // The single-tensor call gives the output alone.
        XCTAssertEqual(try LSTM(4, returnState: true)(x).shape, [4])
        assertThrowsMessage(try LSTM(4)(x, initialState: [lstm[1]]), contains: ["expected a sequence and optionally 2 initial states", "found 2 inputs"])
        assertThrowsMessage(try GRU(3)(x, initialState: [lstm[1]]), contains: ["initial state 0 must have shape [3]", "found [4]"])
        assertThrowsMessage(try Sequential([InputLayer(shape: [5, 3]), LSTM(4, returnState: true), Dense(1)]).build(),
                            contains: ["returnState", "functional API"])
        assertThrowsMessage(try Sequential([InputLayer(shape: [5, 3]), Bidirectional(GRU(4, returnState: true)), Dense(1)]).build(),
                            contains: ["(Bidirectional) has returnState", "functional API"])
        let both: [SymbolicTensor] = try Bidirectional(LSTM(2, returnState: true))(x, initialState: [lstm[1], lstm[1], lstm[1], lstm[1]].map {
            try Dense(2)($0)
        })
        XCTAssertEqual(both.map(\.shape), [[4], [2], [2], [2], [2]])
        assertThrowsMessage(try Bidirectional(LSTM(2, returnState: true), backwardLayer: GRU(2, goBackwards: true))(x),
                            contains: ["same returnState"])
        assertThrowsMessage(try Bidirectional(GRU(2, returnState: true))(x, initialState: [lstm[1]]),
                            contains: ["optionally 2 initial states", "found 2 inputs"])
        // Attention scores, Keras's return_attention_scores: (heads, Tq, Tv).
        let context = Input(shape: [7, 2])
        let attended = try MultiHeadAttention(numHeads: 3, keyDim: 2)(query: x, value: context, returnAttentionScores: true)
        XCTAssertEqual(attended.map(\.shape), [[5, 3], [3, 5, 7]])
        XCTAssertEqual(try MultiHeadAttention(numHeads: 3, keyDim: 2)(query: x, value: context, returnAttentionScores: false)
                        .map(\.shape), [[5, 3]])
    }

    /// An encoder whose only path to the loss is its final states, a decoder starting from
    /// them, and a GRU and a SimpleRNN starting from states computed by other layers.
    static func encoderDecoder(masked: Bool = false) throws -> Model {
        let source = Input(shape: [4, 3]), target = Input(shape: [3, 2])
        var sequence = source
        if masked { sequence = try Masking(maskValue: 0)(source) }
        let encoder: [SymbolicTensor] = try LSTM(3, returnState: true)(sequence)
        let decoder = try LSTM(3, returnSequences: true, returnState: true)(target, initialState: [encoder[1], encoder[2]])
        let gru = try GRU(2, returnState: true, resetAfter: false)(decoder[0], initialState: [try Dense(2)(encoder[2])])
        let simple = try SimpleRNN(2, goBackwards: true)(target, initialState: [gru[1]])
        let both = try Bidirectional(LSTM(2, returnSequences: true, returnState: true), mergeMode: .sum)(
            target, initialState: [encoder[1], encoder[2], gru[1], gru[1]].map { try Dense(2)($0) })
        let joined = try Concatenate()([decoder[1], decoder[2], simple[0], try GlobalAveragePooling1D()(decoder[0]),
                                        both[2], both[3], try Flatten()(both[0])])
        return try Model(inputs: [source, target], outputs: [try Dense(3, activation: .softmax)(joined)])
    }

    static func sequences(_ samples: Int, seed: UInt64) -> (Tensor, Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        var a = [Float](repeating: 0, count: samples * 12), b = [Float](repeating: 0, count: samples * 6)
        a.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        b.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        return (Tensor(shape: [samples, 4, 3], scalars: a), Tensor(shape: [samples, 3, 2], scalars: b),
                Tensor(labels: (0..<samples).map { $0 % 3 }))
    }

    func testEncoderDecoderGradientsMatchFiniteDifferences() throws {
        for masked in [false, true] {
            Kestrel.setRandomSeed(21)
            let model = try Self.encoderDecoder(masked: masked)
            model.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy())
            let (a, b, y) = Self.sequences(4, seed: 3)
            var source = a.scalars
            if masked {
                // The first sample's last step and the second's first are padding.
                for j in 9..<12 { source[j] = 0 }
                for j in 12..<15 { source[j] = 0 }
            }
            let x = [Tensor(shape: a.shape, scalars: source), b]
            let (loss, gradients) = try model.lossAndGradients(x, [y])
            XCTAssertTrue(loss.isFinite)
            let checked = try assertModelGradientsMatchFiniteDifferences(model, analytic: gradients.tensors, step: 1e-2,
                                                                         perWeight: 5) {
                try model.lossAndGradients(x, [y]).loss
            }
            XCTAssertGreaterThan(checked, 60)
            // The encoder's weights reach the loss through its states alone.
            let encoder = model.layers.first { $0 is LSTM }!
            let index = model.layers.prefix { $0 !== encoder }.reduce(0) { $0 + $1.weightSpecs.count }
            XCTAssertGreaterThan(gradients.tensors[index].scalars.map(abs).max()!, 1e-4, "masked \(masked)")
        }
    }

    func testAttentionScoresAsModelOutputsAndInputs() throws {
        // The scores feed a later layer (gradient checked) and are a model output (predicted
        // the same as the softmax of the scaled products); rows sum to one.
        Kestrel.setRandomSeed(31)
        let x = Input(shape: [4, 3])
        let attention = try MultiHeadAttention(numHeads: 2, keyDim: 2)(query: x, value: x, useCausalMask: true,
                                                                      returnAttentionScores: true)
        let joined = try Concatenate()([try Flatten()(attention[0]), try Flatten()(attention[1])])
        let model = try Model(inputs: [x], outputs: [try Dense(2, activation: .softmax)(joined), attention[1]])
        model.compile(optimizer: SGD(learningRate: 0), losses: [SparseCategoricalCrossentropy(), MeanSquaredError()],
                      lossWeights: [1, 0.5])
        var rng = RandomGenerator(seed: 6)
        var values = [Float](repeating: 0, count: 3 * 12), targets = [Float](repeating: 0, count: 3 * 32)
        values.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        targets.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: 0, high: 0.5) }
        let inputs = [Tensor(shape: [3, 4, 3], scalars: values)]
        let y = [Tensor(labels: [0, 1, 1]), Tensor(shape: [3, 2, 4, 4], scalars: targets)]
        let (_, gradients) = try model.lossAndGradients(inputs, y)
        let checked = try assertModelGradientsMatchFiniteDifferences(model, analytic: gradients.tensors, step: 1e-2,
                                                                     perWeight: 6) {
            try model.lossAndGradients(inputs, y).loss
        }
        XCTAssertGreaterThan(checked, 40)
        let scores = try model.predict(inputs)[1]
        XCTAssertEqual(scores.shape, [3, 2, 4, 4])
        for row in 0..<(3 * 2 * 4) {
            let r = Array(scores.scalars[(row * 4)..<(row * 4 + 4)])
            XCTAssertEqual(r.reduce(0, +), 1, accuracy: 1e-5)
            XCTAssertEqual(r[(row % 4 + 1)...].reduce(0, +), 0, "causal: no weight on later steps")
        }
    }

    func testOnlyTheStatesCarryTheAnswer() throws {
        // The label is the first token of the source; the decoder reads zeros, so it can only
        // answer from the encoder's final states.
        Kestrel.setRandomSeed(5)
        let n = 384, steps = 4, vocabulary = 3
        var rng = RandomGenerator(seed: 9)
        var tokens = [Float](repeating: 0, count: n * steps * vocabulary), labels: [Int] = []
        for i in 0..<n {
            for s in 0..<steps {
                let t = Int(rng.nextUnitFloat() * Float(vocabulary)) % vocabulary
                if s == 0 { labels.append(t) }
                tokens[(i * steps + s) * vocabulary + t] = 1
            }
        }
        let source = Input(shape: [steps, vocabulary]), target = Input(shape: [2, 1])
        let encoder: [SymbolicTensor] = try LSTM(16, returnState: true)(source)
        let decoder = try LSTM(16)(target, initialState: [encoder[1], encoder[2]])
        let model = try Model(inputs: [source, target], outputs: [try Dense(vocabulary, activation: .softmax)(decoder[0])])
        model.compile(optimizer: Adam(learningRate: 0.02), loss: SparseCategoricalCrossentropy(), metrics: ["accuracy"])
        let x = [Tensor(shape: [n, steps, vocabulary], scalars: tokens), Tensor.zeros([n, 2, 1])]
        let history = try model.fit(x, [Tensor(labels: labels)], batchSize: 32, epochs: 25, verbose: 0)
        XCTAssertGreaterThan(history["accuracy"]!.last!, 0.95)
    }

    func testStepByStepDecodingRepeatsTheWholeSequence() throws {
        // Keras's seq2seq inference: the decoder trained on whole sequences runs one step at a
        // time from the states it returned, in a second model sharing its layers.
        Kestrel.setRandomSeed(8)
        let source = Input(shape: [4, 3]), target = Input(shape: [5, 2])
        let encoderLayer = LSTM(6, returnState: true), decoderLayer = GRU(6, returnSequences: true, returnState: true)
        let head = Dense(2, activation: .softmax)
        let encoder: [SymbolicTensor] = try encoderLayer(source)
        let decoded = try decoderLayer(target, initialState: [encoder[1]])
        let training = try Model(inputs: [source, target], outputs: [try head(decoded[0])])

        let encoderModel = try Model(inputs: [source], outputs: [encoder[1]])
        let step = Input(shape: [1, 2]), state = Input(shape: [6])
        let stepped = try decoderLayer(step, initialState: [state])
        let decoderModel = try Model(inputs: [step, state], outputs: [try head(stepped[0]), stepped[1]])

        var rng = RandomGenerator(seed: 2)
        var a = [Float](repeating: 0, count: 2 * 12), b = [Float](repeating: 0, count: 2 * 10)
        a.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        b.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        let whole = try training.predict([Tensor(shape: [2, 4, 3], scalars: a), Tensor(shape: [2, 5, 2], scalars: b)])[0]
        var h = try encoderModel.predict([Tensor(shape: [2, 4, 3], scalars: a)])[0]
        /// Step `s` of both samples, `(2, 2)` values from `(2, 5, 2)` ones.
        func stepValues(_ v: [Float], _ s: Int) -> [Float] {
            var out: [Float] = []
            for r in 0..<2 { let start = (r * 5 + s) * 2; out += v[start..<(start + 2)] }
            return out
        }
        for s in 0..<5 {
            let input = Tensor(shape: [2, 1, 2], scalars: stepValues(b, s))
            let outputs = try decoderModel.predict([input, h])
            let expected = stepValues(whole.scalars, s)
            assertClose(outputs[0].scalars, expected, tolerance: 1e-5, "step \(s)")
            h = outputs[1]
        }
    }

    func testSummaryListsStatesAndTheirReaders() throws {
        let model = try Self.encoderDecoder()
        let text = try model.summaryText()
        XCTAssertTrue(text.contains("[(None, 3), (None"), text)
        XCTAssertTrue(text.contains("lstm") && text.contains("[0][1]") && text.contains("[0][2]"), text)
        let dot = try model.graphvizSource()
        XCTAssertFalse(dot.contains("OutputSelector"))
    }

    func testTrainingWithStatesAllocatesNothing() throws {
        let x = Input(shape: [6, 4])
        let encoder: [SymbolicTensor] = try LSTM(8, returnState: true)(x)
        let decoder = try GRU(8, returnSequences: true)(x, initialState: [encoder[1]])
        let last = try SimpleRNN(4)(decoder[0], initialState: [try Dense(4)(encoder[2])])
        let both = try Bidirectional(GRU(4, returnState: true))(x, initialState: [try Dense(4)(encoder[1]), last[0]])
        let joined = try Concatenate()([last[0], both[1], both[2]])
        let model = try Model(inputs: x, outputs: try Dense(3, activation: .softmax)(joined))
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy())
        var rng = RandomGenerator(seed: 4)
        var values = [Float](repeating: 0, count: 64 * 24)
        values.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        try assertTrainingStepsAllocateNothing(model, x: Tensor(shape: [64, 6, 4], scalars: values),
                                               y: Tensor(labels: (0..<64).map { $0 % 3 }), batchSize: 16)
    }
}
