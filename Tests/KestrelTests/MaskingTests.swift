@testable import Kestrel
import KestrelAllocationCounter
import XCTest

// Masks from Embedding(maskZero:) and Masking, carried through the plan to the layers that skip
// masked steps (the recurrent layers, Bidirectional, GlobalAveragePooling1D), with Keras's
// propagation rules. The per-layer numbers against Keras 3 are in RecurrentReferenceTests
// (the *_masked cases).
final class MaskingTests: XCTestCase {
    /// Token sequences of length 6 with right padding, left padding, a gap and none.
    static let tokens: [[Float]] = [[3, 1, 4, 1, 0, 0], [0, 0, 0, 5, 9, 2], [6, 5, 0, 3, 5, 8], [9, 7, 9, 3, 2, 3]]

    static func recurrentLayers() -> [(String, () -> [Layer])] {
        [("LSTM", { [LSTM(3)] }), ("GRU", { [GRU(3)] }), ("GRU reset before", { [GRU(3, resetAfter: false)] }),
         ("SimpleRNN", { [SimpleRNN(3)] }), ("LSTM backwards", { [LSTM(3, goBackwards: true)] }),
         ("Bidirectional LSTM", { [Bidirectional(LSTM(2))] }),
         ("Bidirectional GRU sequences, Dense, then LSTM",
          { [Bidirectional(GRU(2, returnSequences: true)), Dense(3, activation: .tanh), LSTM(2)] })]
    }

    /// A masked step is skipped: a padded sequence gives what the same weights give on the
    /// sequence without its padding, wherever the padding is.
    func testPaddingIsInvisibleToRecurrentLayers() throws {
        for (label, make) in Self.recurrentLayers() {
            Kestrel.setRandomSeed(3)
            let padded = Sequential([InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 4, maskZero: true)] + make())
            let output = try padded.predict(Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 }))
            let width = output.shape[1]
            for (row, sequence) in Self.tokens.enumerated() {
                let kept = sequence.filter { $0 != 0 }
                let plain = Sequential([InputLayer(shape: [kept.count]), Embedding(inputDim: 10, outputDim: 4)] + make())
                try plain.build()
                try plain.setWeights(padded.getWeights())
                let expected = try plain.predict(Tensor(shape: [1, kept.count], scalars: kept))
                assertClose(Array(output.scalars[(row * width)..<((row + 1) * width)]), expected.scalars, tolerance: 1e-5,
                            "\(label), sequence \(row)")
            }
            // Without the mask the padding counts, and the answers differ.
            let unmasked = Sequential([InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 4)] + make())
            try unmasked.build()
            try unmasked.setWeights(padded.getWeights())
            let different = try unmasked.predict(Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 }))
            XCTAssertGreaterThan(zip(different.scalars, output.scalars).map { abs($0 - $1) }.max()!, 1e-3, label)
        }
    }

    /// Padding is invisible to MultiHeadAttention (masked key steps get no weight, masked query
    /// steps are left out of the masked average), with and without the causal mask: the order
    /// of the kept steps is what the causal mask sees.
    func testPaddingIsInvisibleToMultiHeadAttention() throws {
        func model(steps: Int, maskZero: Bool, causal: Bool) throws -> Model {
            let input = Input(shape: [steps])
            let e = try Embedding(inputDim: 10, outputDim: 4, maskZero: maskZero)(input)
            let attended = try MultiHeadAttention(numHeads: 2, keyDim: 3, useCausalMask: causal)(query: e, value: e)
            return try Model(inputs: input, outputs: try Dense(2)(try GlobalAveragePooling1D()(attended)))
        }
        for causal in [false, true] {
            Kestrel.setRandomSeed(4)
            let padded = try model(steps: 6, maskZero: true, causal: causal)
            let x = Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 })
            let output = try padded.predict(x)
            for (row, sequence) in Self.tokens.enumerated() {
                let kept = sequence.filter { $0 != 0 }
                let plain = try model(steps: kept.count, maskZero: false, causal: causal)
                try plain.build()
                try plain.setWeights(padded.getWeights())
                let expected = try plain.predict(Tensor(shape: [1, kept.count], scalars: kept))
                assertClose(Array(output.scalars[(row * 2)..<((row + 1) * 2)]), expected.scalars, tolerance: 1e-5,
                            "causal \(causal), sequence \(row)")
            }
            let unmasked = try model(steps: 6, maskZero: false, causal: causal)
            try unmasked.build()
            try unmasked.setWeights(padded.getWeights())
            XCTAssertGreaterThan(zip(try unmasked.predict(x).scalars, output.scalars).map { abs($0 - $1) }.max()!, 1e-3)
        }
    }

    /// Returned sequences keep the mask: a masked step repeats the state carried over it, or is
    /// zero with `zeroOutputForMask` (which Bidirectional sets, as Keras does).
    func testReturnedSequencesAtMaskedSteps() throws {
        let x = Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 })
        for zero in [false, true] {
            let model = Sequential([InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 4, maskZero: true),
                                    GRU(3, returnSequences: true, zeroOutputForMask: zero)])
            let y = try model.predict(x)
            for (row, sequence) in Self.tokens.enumerated() {
                for step in 0..<6 where sequence[step] == 0 {
                    let at = Array(y.scalars[((row * 6 + step) * 3)..<((row * 6 + step + 1) * 3)])
                    if zero || step == 0 {
                        XCTAssertEqual(at, [0, 0, 0], "zero \(zero), sequence \(row) step \(step)")
                    } else {
                        let before = Array(y.scalars[((row * 6 + step - 1) * 3)..<((row * 6 + step) * 3)])
                        XCTAssertEqual(at, before, "sequence \(row) step \(step) carries the state")
                    }
                }
            }
        }
        let bidirectional = Bidirectional(LSTM(2, returnSequences: true))
        XCTAssertTrue(bidirectional.forwardLayer.zeroOutputForMask && bidirectional.backwardLayer.zeroOutputForMask)
        XCTAssertFalse(Bidirectional(LSTM(2)).forwardLayer.zeroOutputForMask)
    }

    /// Gradients of masked models, from the loss to the embeddings through every kind of mask
    /// consumer, against central differences.
    func testMaskedModelGradientsMatchFiniteDifferences() throws {
        Kestrel.setRandomSeed(11)
        let input = Input(shape: [6])
        let embedded = try Embedding(inputDim: 10, outputDim: 3, maskZero: true)(input)
        let sequences = try Bidirectional(GRU(2, returnSequences: true, resetAfter: false), mergeMode: .sum)(embedded)
        let projected = try Dense(3, activation: .tanh)(sequences)       // keeps the mask
        let last = try LSTM(2)(projected)
        let simple = try SimpleRNN(2, goBackwards: true)(embedded)
        let pooled = try GlobalAveragePooling1D()(try Add()([projected, try Dense(3)(embedded)]))
        // Attention: the query's mask on its output, the value's on its softmax.
        let attended = try GlobalAveragePooling1D()(try Attention(useScale: true)([projected, try Dense(3)(embedded)]))
        let joined = try Concatenate()([last, simple, pooled, attended])
        let model = try Model(inputs: input, outputs: try Dense(2, activation: .softmax)(joined))
        model.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy())
        let x = Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 }), y = Tensor(labels: [0, 1, 1, 0])
        let (loss, gradients) = try model.lossAndGradients(x, y)
        XCTAssertTrue(loss.isFinite)
        let checked = try assertModelGradientsMatchFiniteDifferences(model, analytic: gradients.tensors, step: 1e-2,
                                                                     perWeight: 6) {
            try model.lossAndGradients(x, y).loss
        }
        XCTAssertGreaterThan(checked, 60)
        // The padding token's row gets no gradient: every step that reads it is masked.
        let embeddings = model.layers.first { $0 is Embedding }!
        let index = model.layers.prefix { $0 !== embeddings }.reduce(0) { $0 + $1.weightSpecs.count }
        XCTAssertEqual(Array(gradients.tensors[index].scalars[0..<3]), [0, 0, 0])
    }

    /// Input and weight gradients of every mask-reading layer with a mask that skips steps at
    /// the end, the start and in the middle, against central differences (the mask held fixed).
    func testMaskedLayerGradientsMatchFiniteDifferences() throws {
        let mask: [Float] = [1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 0]   // (batch 3, steps 4)
        let layers: [(String, Layer)] = [
            ("LSTM", LSTM(3)), ("LSTM sequences backwards", LSTM(2, returnSequences: true, goBackwards: true)),
            ("LSTM zero output", LSTM(2, returnSequences: true, zeroOutputForMask: true)),
            ("GRU", GRU(3)), ("GRU sequences", GRU(2, returnSequences: true)),
            ("GRU reset before", GRU(2, goBackwards: true, resetAfter: false)),
            ("GRU relu, hard sigmoid", GRU(2, activation: .relu, recurrentActivation: .hardSigmoid, returnSequences: true)),
            ("SimpleRNN", SimpleRNN(3)), ("SimpleRNN sequences zero output", SimpleRNN(2, returnSequences: true, zeroOutputForMask: true)),
            ("Bidirectional LSTM", Bidirectional(LSTM(2))), ("Bidirectional GRU sequences", Bidirectional(GRU(2, returnSequences: true), mergeMode: .mul)),
            ("GlobalAveragePooling1D", GlobalAveragePooling1D()),
            ("BatchNormalization, statistics over unmasked steps", BatchNormalization(momentum: 0.5)),
        ]
        for (label, layer) in layers {
            Kestrel.setRandomSeed(7)
            let harness = try LayerHarness(layer, inputShapes: [[4, 2]], batch: 3, avoid: [0])
            harness.inputMask = mask
            harness.check(epsilon: 3e-3, label: "\(label), masked")
        }
    }

    /// Masking zeroes masked steps and masks them; GlobalAveragePooling1D averages the rest.
    func testMaskingAndMaskedAverage() throws {
        let x = Tensor(shape: [2, 3, 2], scalars: [1, 2, -1, -1, 3, 5, -1, -1, -1, -1, 4, 0])
        let model = Sequential([InputLayer(shape: [3, 2]), Masking(maskValue: -1), GlobalAveragePooling1D()])
        XCTAssertEqual(try model.predict(x).scalars, [2, 3.5, 4, 0])
        let masked = try Masking(maskValue: -1)(x)
        XCTAssertEqual(masked.scalars, [1, 2, 0, 0, 3, 5, 0, 0, 0, 0, 4, 0])
        // A sequence masked throughout averages to zero (Keras divides 0 by 0).
        XCTAssertEqual(try model.predict(Tensor(shape: [1, 3, 2], scalars: Array(repeating: -1, count: 6))).scalars, [0, 0])
    }

    /// Which nodes carry a mask follows Keras: layers that work per step pass it on, merges
    /// or it (only when every input has one), reshaping layers and the last state end it.
    func testMaskPropagationFollowsKeras() throws {
        let input = Input(shape: [5])
        let a = try Embedding(inputDim: 10, outputDim: 4, maskZero: true)(input)
        let b = try Embedding(inputDim: 10, outputDim: 4)(input)
        let dense = try Dense(4)(try Dropout(0.2)(a))
        let both = try Add()([dense, a])
        let one = try Add()([dense, b])
        let flat = try Flatten()(both)
        let sequences = try LSTM(2, returnSequences: true)(both)
        let state = try LSTM(2)(both)
        let model = try Model(inputs: [input], outputs: [flat, one, sequences, state])
        try model.build()
        let sources = try model.graph!.maskSources(training: true)
        func source(_ t: SymbolicTensor) -> Int? {
            sources[model.graph!.nodes.firstIndex { $0.layer === t.layer }!]
        }
        let embeddingNode = model.graph!.nodes.firstIndex { $0.layer === a.layer }!
        XCTAssertEqual(source(a), embeddingNode)
        XCTAssertNil(source(b))
        XCTAssertEqual(source(dense), embeddingNode)
        let addNode = model.graph!.nodes.firstIndex { $0.layer === both.layer }!
        XCTAssertEqual(source(both), addNode, "Add of two masked inputs computes their or")
        XCTAssertNil(source(one), "Add with an unmasked input has no mask")
        XCTAssertNil(source(flat))
        XCTAssertEqual(source(sequences), addNode)
        XCTAssertNil(source(state))
    }

    /// Layers whose Keras counterparts would use a mask in a way Kestrel does not are refused
    /// by name (Softmax: Keras broadcasts a mask of steps against the features).
    func testUnsupportedMaskUsesAreRefused() throws {
        func embedded() -> [Layer] { [InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 4, maskZero: true)] }

        let softmax = Sequential(embedded() + [Softmax()])
        assertThrowsMessage(try softmax.build(), contains: ["Softmax", "mask"])
    }

    /// Concatenating along the steps joins the masks along the steps (an input without one
    /// counts as kept throughout), as Keras does: an LSTM over two padded sequences joined end
    /// to end gives what it gives over their unpadded steps joined.
    func testConcatenatingStepsJoinsTheMasks() throws {
        let second: [[Float]] = [[0, 2, 0, 7, 0], [4, 4, 0, 0, 0], [1, 2, 3, 4, 5], [0, 0, 0, 0, 8]]
        func model(_ steps: (Int, Int), maskZero: Bool) throws -> Model {
            let a = Input(shape: [steps.0]), b = Input(shape: [steps.1])
            let first = try Embedding(inputDim: 10, outputDim: 3, maskZero: maskZero)(a)
            let second = try Embedding(inputDim: 10, outputDim: 2, maskZero: maskZero)(b)
            let joined = try Concatenate(axis: 1)([first, try Dense(3, activation: .tanh)(second)])
            return try Model(inputs: [a, b], outputs: [try LSTM(2)(joined)])
        }
        Kestrel.setRandomSeed(12)
        let padded = try model((6, 5), maskZero: true)
        let output = try padded.predict([Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 }),
                                         Tensor(shape: [4, 5], scalars: second.flatMap { $0 })])[0]
        for row in 0..<4 {
            let keptA = Self.tokens[row].filter { $0 != 0 }, keptB = second[row].filter { $0 != 0 }
            let plain = try model((keptA.count, keptB.count), maskZero: false)
            try plain.build()
            try plain.setWeights(padded.getWeights())
            let expected = try plain.predict([Tensor(shape: [1, keptA.count], scalars: keptA),
                                              Tensor(shape: [1, keptB.count], scalars: keptB)])[0]
            assertClose(Array(output.scalars[(row * 2)..<(row * 2 + 2)]), expected.scalars, tolerance: 1e-5, "sequence \(row)")
        }
        // An unmasked input's steps are all kept; the mask has the joined length.
        let tokens = Input(shape: [4]), frames = Input(shape: [3, 2])
        let e = try Embedding(inputDim: 10, outputDim: 2, maskZero: true)(tokens)
        let joined = try Concatenate(axis: 1)([e, frames])
        let model = try Model(inputs: [tokens, frames], outputs: [joined])
        try model.build()
        let plan = try model.plan(capacity: 1, training: false)
        plan.inputBuffer(0).update(from: [0, 3, 0, 5], count: 4)
        plan.inputBuffer(1).update(repeating: 0.5, count: 6)
        plan.forward(batch: 1)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: try XCTUnwrap(plan.outputMask(0)), count: 7)), [0, 1, 0, 1, 1, 1, 1])
    }

    /// A masked output (a tag per step) meets its loss as in Keras: the mean over unmasked
    /// steps, nothing from the padding, and metrics over unmasked steps only.
    func testMaskedOutputLossAndMetricsCountUnmaskedStepsOnly() throws {
        for fused in [true, false] {
            Kestrel.setRandomSeed(6)
            let tagger = Sequential([InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 4, maskZero: true),
                                     Bidirectional(GRU(3, returnSequences: true)),
                                     fused ? Dense(3, activation: .softmax) : Dense(3, activation: .tanh), Dense(3, activation: .softmax)])
            tagger.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy(), metrics: ["accuracy"])
            let x = Tensor(shape: [4, 6], scalars: Self.tokens.flatMap { $0 })
            var tags = (0..<24).map { Float($0 % 3) }
            let (loss, gradients) = try tagger.lossAndGradients(x, Tensor(shape: [4, 6], scalars: tags))
            // The definition: the mean of -log p(tag) over the 18 unpadded steps.
            let p = try tagger.predict(x).scalars
            let flat = Self.tokens.flatMap { $0 }
            let kept = flat.indices.filter { flat[$0] != 0 }
            XCTAssertEqual(kept.count, 18)
            let expected = kept.map { -log(Double(p[$0 * 3 + Int(tags[$0])])) }.reduce(0, +) / Double(kept.count)
            XCTAssertEqual(Double(loss), expected, accuracy: 1e-5, "fused \(fused)")
            let hits = kept.filter { i in (0..<3).max { p[i * 3 + $0] < p[i * 3 + $1] } == Int(tags[i]) }.count
            let metrics = try tagger.evaluate(x, Tensor(shape: [4, 6], scalars: tags), verbose: 0)
            XCTAssertEqual(metrics["accuracy"]!, Float(hits) / Float(kept.count), accuracy: 1e-6)
            XCTAssertEqual(Double(metrics["loss"]!), expected, accuracy: 1e-5)
            // Tags at padded steps change nothing.
            for i in flat.indices where flat[i] == 0 { tags[i] = Float((Int(tags[i]) + 1) % 3) }
            let (again, gradientsAgain) = try tagger.lossAndGradients(x, Tensor(shape: [4, 6], scalars: tags))
            XCTAssertEqual(again, loss)
            XCTAssertEqual(gradientsAgain.tensors.map(\.scalars), gradients.tensors.map(\.scalars))
            let checked = try assertModelGradientsMatchFiniteDifferences(tagger, analytic: gradients.tensors, step: 1e-2,
                                                                         perWeight: 4) {
                try tagger.lossAndGradients(x, Tensor(shape: [4, 6], scalars: tags)).loss
            }
            XCTAssertGreaterThan(checked, 20)
        }
        // A batch masked throughout has loss 0, as Keras's divide-no-nan gives.
        let tagger = Sequential([InputLayer(shape: [3]), Embedding(inputDim: 4, outputDim: 2, maskZero: true), Dense(2)])
        tagger.compile(optimizer: SGD(), loss: MeanSquaredError())
        XCTAssertEqual(try tagger.lossAndGradients(Tensor.zeros([2, 3]), Tensor.randomUniform([2, 3, 2])).loss, 0)
    }

    func testMaskedTrainingAllocatesNothing() throws {
        Kestrel.setRandomSeed(2)
        let model = Sequential([InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 8, maskZero: true),
                                Bidirectional(LSTM(8, returnSequences: true)), GRU(8), Dense(2, activation: .softmax)])
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy())
        let rows = (0..<32).map { Self.tokens[$0 % 4] }
        let x = Tensor(shape: [32, 6], scalars: rows.flatMap { $0 }), y = Tensor(labels: (0..<32).map { $0 % 2 })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 8)
        // With the loss on a masked output, packed positions included.
        let tagger = Sequential([InputLayer(shape: [6]), Embedding(inputDim: 10, outputDim: 8, maskZero: true),
                                 LSTM(8, returnSequences: true), Dense(3, activation: .softmax)])
        tagger.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: ["accuracy"])
        try assertTrainingStepsAllocateNothing(tagger, x: x, y: Tensor(shape: [32, 6], scalars: (0..<192).map { Float($0 % 3) }),
                                               batchSize: 8)
    }

    /// A task only the unpadded steps answer: is the sequence's last real token above 4? With
    /// right padding of random length, the model must carry the state over the padding.
    func testMaskedModelLearnsAcrossPadding() throws {
        Kestrel.setRandomSeed(4)
        var generator = RandomGenerator(seed: 9)
        var rows: [Float] = [], labels: [Int] = []
        for _ in 0..<512 {
            let length = 1 + Int(generator.nextUnitFloat() * 7.99)
            let tokens = (0..<length).map { _ in Float(1 + Int(generator.nextUnitFloat() * 8.99)) }
            rows += tokens + Array(repeating: 0, count: 8 - length)
            labels.append(tokens.last! > 4 ? 1 : 0)
        }
        let x = Tensor(shape: [512, 8], scalars: rows), y = Tensor(labels: labels)
        let model = Sequential([InputLayer(shape: [8]), Embedding(inputDim: 10, outputDim: 8, maskZero: true),
                                GRU(16), Dense(2, activation: .softmax)])
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(), metrics: ["accuracy"])
        try model.fit(x, y, batchSize: 32, epochs: 15, verbose: 0)
        let accuracy = try model.evaluate(x, y, verbose: 0)["accuracy"]!
        XCTAssertGreaterThan(accuracy, 0.95)
    }
}
