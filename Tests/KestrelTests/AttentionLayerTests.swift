@testable import Kestrel
import XCTest

/// MultiHeadAttention: shapes and errors, gradients against finite differences (self- and
/// cross-attention with query and value of different lengths, a separate key, another
/// output size, masks, the causal mask, dropout), what masks and the causal mask do, dropout's
/// expectation, the Functional self-attention block of the benchmark, and allocation-free
/// training steps.
final class AttentionLayerTests: XCTestCase {
    func testShapeInferenceAndErrors() throws {
        let mha = MultiHeadAttention(numHeads: 4, keyDim: 16)
        XCTAssertEqual(try mha.build(inputShapes: [[28, 64], [28, 64]]), [28, 64])
        XCTAssertEqual(mha.weightSpecs.map(\.name), ["query/kernel", "query/bias", "key/kernel", "key/bias",
                                                     "value/kernel", "value/bias", "attention_output/kernel",
                                                     "attention_output/bias"])
        XCTAssertEqual(mha.weightSpecs.map(\.shape), [[64, 4, 16], [4, 16], [64, 4, 16], [4, 16], [64, 4, 16], [4, 16],
                                                      [4, 16, 64], [64]])
        XCTAssertEqual(try MultiHeadAttention(numHeads: 2, keyDim: 3, valueDim: 5, outputShape: 6)
            .build(inputShapes: [[4, 7], [9, 2], [9, 8]]), [4, 6])
        assertThrowsMessage(try MultiHeadAttention(numHeads: 2, keyDim: 3).build(inputShapes: [[4, 7]]),
                            contains: ["MultiHeadAttention", "[query, value]", "1"])
        assertThrowsMessage(try MultiHeadAttention(numHeads: 2, keyDim: 3).build(inputShapes: [[4, 7], [5, 2], [6, 2]]),
                            contains: ["MultiHeadAttention", "same number of timesteps", "[6, 2]", "[5, 2]"])
        assertThrowsMessage(try MultiHeadAttention(numHeads: 2, keyDim: 3).build(inputShapes: [[4, 7], [5]]),
                            contains: ["MultiHeadAttention", "value", "(timesteps, features)", "[5]"])
        assertThrowsMessage(try MultiHeadAttention(numHeads: 0, keyDim: 3).build(inputShapes: [[4, 7], [4, 7]]),
                            contains: ["MultiHeadAttention", "numHeads"])
        assertThrowsMessage(try MultiHeadAttention(numHeads: 2, keyDim: 3, dropout: 1).build(inputShapes: [[4, 7], [4, 7]]),
                            contains: ["MultiHeadAttention", "dropout", "[0, 1)", "1.0"])
        // One causal setting per layer: a second call may not change it.
        let x = Input(shape: [5, 4])
        let causal = MultiHeadAttention(numHeads: 1, keyDim: 2)
        _ = try causal(query: x, value: x, useCausalMask: true)
        XCTAssertTrue(causal.useCausalMask)
        _ = try causal(query: x, value: x)
        assertThrowsMessage(try causal(query: x, value: x, useCausalMask: false),
                            contains: ["MultiHeadAttention", "useCausalMask must be true", "found false"])
        let dot = Attention()
        _ = try dot([x, x])
        assertThrowsMessage(try dot([x, x], useCausalMask: true), contains: ["Attention", "useCausalMask must be false"])
    }

    /// Masks, the causal mask and dropout: gradients against central differences (the masks
    /// and the dropout draws held fixed), including query steps with nothing to attend to.
    func testMaskedCausalAndDropoutGradients() throws {
        Kestrel.setRandomSeed(33)
        let queryMask: [Float] = [1, 0, 1, 1, 1, 1, 0, 0], valueMask: [Float] = [1, 1, 0, 1, 0, 0, 0, 0]
        let keyMask: [Float] = [0, 1, 1, 1, 1, 1, 1, 1]
        let cases: [(String, Layer, [[Int]], [[Float]?])] = [
            ("MHA, query, value and key masks", MultiHeadAttention(numHeads: 2, keyDim: 2), [[4, 3], [4, 2], [4, 3]],
             [queryMask, valueMask, keyMask]),
            ("MHA, causal", MultiHeadAttention(numHeads: 2, keyDim: 3, useCausalMask: true), [[4, 3], [4, 3]], []),
            ("MHA, causal, query 4 value 3, masks", MultiHeadAttention(numHeads: 1, keyDim: 2, outputShape: 2, useCausalMask: true),
             [[4, 3], [3, 2]], [queryMask, [1, 0, 1, 1, 1, 0]]),
            ("MHA, dropout, value mask", MultiHeadAttention(numHeads: 2, keyDim: 2, dropout: 0.3), [[3, 2], [4, 3]],
             [nil, valueMask]),
            ("Attention, causal", Attention(useScale: true, useCausalMask: true), [[4, 3], [4, 3]], []),
            // (Not every step masked: Keras's −1e9 then swamps the scores in float, so central
            // differences see none of the gradient that flows through them.)
            ("AdditiveAttention, causal, dropout, value mask", AdditiveAttention(dropout: 0.2, useCausalMask: true),
             [[3, 2], [4, 2]], [nil, [1, 1, 0, 1, 1, 0, 1, 1]]),
        ]
        for (label, layer, shapes, masks) in cases {
            let harness = try LayerHarness(layer, inputShapes: shapes, batch: 2)
            harness.inputMasks = masks
            harness.check(epsilon: 3e-3, label: " " + label)
        }
    }

    /// The causal mask: a query step's output does not depend on later steps; a masked value
    /// step gets no weight; a query step with nothing to attend to outputs the output bias.
    func testCausalAndMaskedAttentionSemantics() throws {
        Kestrel.setRandomSeed(34)
        let input = Input(shape: [5, 3])
        let mha = MultiHeadAttention(numHeads: 2, keyDim: 2, biasInitializer: .constant(0.25))
        let model = try Model(inputs: input, outputs: try mha(query: input, value: input, useCausalMask: true))
        let x = Tensor.randomUniform([1, 5, 3], minval: -1, maxval: 1)
        var changed = x.scalars
        for i in 9..<15 { changed[i] += 0.5 }     // steps 3 and 4
        let y = try model.predict(x), yChanged = try model.predict(Tensor(shape: [1, 5, 3], scalars: changed))
        XCTAssertEqual(Array(y.scalars[0..<9]), Array(yChanged.scalars[0..<9]), "steps 0–2 do not see steps 3–4")
        XCTAssertGreaterThan(zip(y.scalars[9...], yChanged.scalars[9...]).map { abs($0 - $1) }.max()!, 1e-3)
        // Without the causal mask every step sees the change.
        mha.useCausalMask = false
        let open = try model.predict(Tensor(shape: [1, 5, 3], scalars: changed))
        XCTAssertGreaterThan(zip(open.scalars[0..<9], yChanged.scalars[0..<9]).map { abs($0 - $1) }.max()!, 1e-3)

        // Masked value steps and a query step with nothing left: its weights are zero.
        let layer = MultiHeadAttention(numHeads: 1, keyDim: 2, biasInitializer: .constant(0.25))
        let harness = try LayerHarness(layer, inputShapes: [[2, 3], [3, 3]], batch: 1)
        harness.inputMasks = [[1, 1], [0, 0, 0]]
        let (all, _, ins, ws) = harness.forward()
        ins.forEach { $0.deallocate() }; ws.deallocate()
        XCTAssertEqual(all, [Float](repeating: 0.25, count: 6), "no key to attend to: the output bias alone")
        harness.inputMasks = [[1, 1], [1, 0, 1]]
        let (masked, _, ins2, ws2) = harness.forward()
        ins2.forEach { $0.deallocate() }; ws2.deallocate()
        var moved = harness.inputs[1]
        for f in 3..<6 { moved[f] += 1 }          // the masked value step
        harness.inputs[1] = moved
        let (after, _, ins3, ws3) = harness.forward()
        ins3.forEach { $0.deallocate() }; ws3.deallocate()
        XCTAssertEqual(masked, after, "a masked value step gets no weight")
    }

    /// Dropout drops attention weights in training only, scaled so the expectation is the
    /// inference output.
    func testMultiHeadAttentionDropoutIsUnbiasedAndTrainingOnly() throws {
        Kestrel.setRandomSeed(35)
        let layer = MultiHeadAttention(numHeads: 2, keyDim: 2, dropout: 0.4)
        let inference = try LayerHarness(layer, inputShapes: [[3, 2], [4, 2]], batch: 1, training: false)
        let (expected, _, ins, ws) = inference.forward()
        ins.forEach { $0.deallocate() }; ws.deallocate()
        let training = try LayerHarness(layer, inputShapes: [[3, 2], [4, 2]], batch: 1, training: true)
        var mean = [Double](repeating: 0, count: expected.count)
        let draws = 4000
        var differing = 0
        for draw in 0..<draws {
            training.seed = UInt64(draw + 1)
            let (y, _, ins, ws) = training.forward()
            ins.forEach { $0.deallocate() }; ws.deallocate()
            if zip(y, expected).contains(where: { abs($0 - $1) > 1e-4 }) { differing += 1 }
            for i in y.indices { mean[i] += Double(y[i]) / Double(draws) }
        }
        XCTAssertGreaterThan(differing, draws * 9 / 10, "training draws masks")
        for i in mean.indices { XCTAssertEqual(mean[i], Double(expected[i]), accuracy: 0.03, "output \(i)") }
    }

    func testGradients() throws {
        Kestrel.setRandomSeed(31)
        try LayerHarness(MultiHeadAttention(numHeads: 2, keyDim: 3), inputShapes: [[4, 5], [4, 5]], batch: 2)
            .check(epsilon: 3e-3, label: " self-shaped")
        try LayerHarness(MultiHeadAttention(numHeads: 3, keyDim: 2, valueDim: 4), inputShapes: [[3, 5], [6, 4]], batch: 2)
            .check(epsilon: 3e-3, label: " query 3 steps, value 6")
        try LayerHarness(MultiHeadAttention(numHeads: 2, keyDim: 2, useBias: false, outputShape: 3),
                         inputShapes: [[2, 3], [5, 2], [5, 4]], batch: 2)
            .check(epsilon: 3e-3, label: " key input, no bias, outputShape 3")
    }

    func testScoreAttentionGradientsInEveryMode() throws {
        Kestrel.setRandomSeed(32)
        let cases: [(String, () -> Layer, [[Int]])] = [
            ("dot", { Attention() }, [[3, 4], [5, 4]]),
            ("dot, scaled, key", { Attention(useScale: true) }, [[3, 4], [5, 2], [5, 4]]),
            ("concat", { Attention(scoreMode: .concat) }, [[3, 2], [4, 2]]),
            ("concat, scaled, key", { Attention(useScale: true, scoreMode: .concat) }, [[2, 3], [4, 2], [4, 3]]),
            ("additive", { AdditiveAttention() }, [[3, 4], [5, 4]]),
            ("additive, unscaled, key", { AdditiveAttention(useScale: false) }, [[3, 2], [4, 3], [4, 2]]),
            ("dot, dropout", { Attention(dropout: 0.3) }, [[3, 4], [5, 4]]),
            ("additive, dropout, key", { AdditiveAttention(dropout: 0.3) }, [[3, 2], [4, 3], [4, 2]]),
        ]
        for (label, make, shapes) in cases {
            let layer = make()
            if let attention = layer as? Attention, attention.useScale {
                // Away from 1, so the scale's own gradient is not a special case.
                try layer.build(inputShapes: shapes)
                try layer.setWeights(layer.getWeights().map { Tensor(shape: $0.shape, scalars: $0.scalars.map { _ in 0.7 }) })
            }
            try LayerHarness(layer, inputShapes: shapes, batch: 2).check(epsilon: 3e-3, label: " " + label)
        }
    }

    func testScoreAttentionShapesResultsAndErrors() throws {
        XCTAssertEqual(try Attention().build(inputShapes: [[3, 4], [5, 4]]), [3, 4])
        XCTAssertEqual(try Attention().build(inputShapes: [[3, 4], [5, 7], [5, 4]]), [3, 7])
        let additive = AdditiveAttention()
        XCTAssertEqual(try additive.build(inputShapes: [[2, 6], [3, 6]]), [2, 6])
        XCTAssertEqual(additive.weightSpecs.map(\.shape), [[6]])
        let scaled = Attention(useScale: true, scoreMode: .concat)
        try scaled.build(inputShapes: [[2, 6], [3, 6]])
        XCTAssertEqual(scaled.weightSpecs.map(\.name), ["scale", "concat_score_weight"])
        XCTAssertEqual(scaled.weightSpecs.map(\.shape), [[], []])
        // Query 1 matches key 0 far better than key 1: the output is value 0.
        let inputs = [Input(shape: [1, 2]), Input(shape: [2, 2]), Input(shape: [2, 2])]
        let model = try Model(inputs: inputs, outputs: [try Attention()(inputs)])
        let y = try model.predict([Tensor(shape: [1, 1, 2], scalars: [10, 0]), Tensor(shape: [1, 2, 2], scalars: [1, 2, 3, 4]),
                                   Tensor(shape: [1, 2, 2], scalars: [5, 0, -5, 0])])[0]
        XCTAssertEqual(y.scalars[0], 1, accuracy: 1e-6)
        XCTAssertEqual(y.scalars[1], 2, accuracy: 1e-6)
        assertThrowsMessage(try Attention().build(inputShapes: [[3, 4], [5, 3]]),
                            contains: ["Attention", "same number of features", "[3, 4]", "[5, 3]"])
        assertThrowsMessage(try AdditiveAttention().build(inputShapes: [[3, 4], [5, 2], [6, 4]]),
                            contains: ["AdditiveAttention", "same number of timesteps"])
        assertThrowsMessage(try Attention().build(inputShapes: [[3, 4]]), contains: ["Attention", "[query, value]", "1"])
        assertThrowsMessage(try Attention(dropout: 1).build(inputShapes: [[3, 4], [3, 4]]), contains: ["Attention", "dropout", "1.0"])
    }

    /// The benchmark's block: Dense → self-attention → residual Add → LayerNormalization →
    /// pooling → Dense, with the same tensor as query and value.
    static func attentionClassifier(steps: Int, features: Int, classes: Int) throws -> Model {
        let input = Input(shape: [steps, features])
        let x = try Dense(8)(input)
        let attended = try MultiHeadAttention(numHeads: 2, keyDim: 4)(query: x, value: x)
        let normalized = try LayerNormalization()(try Add()([x, attended]))
        let pooled = try GlobalAveragePooling1D()(normalized)
        return try Model(inputs: input, outputs: try Dense(classes, activation: .softmax)(pooled))
    }

    func testSelfAttentionModelGradientsMatchFiniteDifferences() throws {
        // The plan gives query and value separate gradient buffers and sums them into x's.
        Kestrel.setRandomSeed(5)
        let model = try Self.attentionClassifier(steps: 3, features: 2, classes: 2)
        model.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy())
        let x = Tensor.randomUniform([4, 3, 2]), y = Tensor(labels: [0, 1, 1, 0])
        let (loss, gradients) = try model.lossAndGradients(x, y)
        let checked = try assertModelGradientsMatchFiniteDifferences(model, analytic: gradients.tensors, step: 1e-2,
                                                                     perWeight: 5) {
            try model.lossAndGradients(x, y).loss
        }
        XCTAssertGreaterThan(checked, 40)
        XCTAssertTrue(loss.isFinite)
    }

    func testAttentionModelTrainsWithoutAllocating() throws {
        let model = try Self.attentionClassifier(steps: 6, features: 5, classes: 3)
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
        try assertTrainingStepsAllocateNothing(model, x: Tensor.randomUniform([20, 6, 5]),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)
        // Padded tokens into causal self-attention with dropout.
        let tokens = Input(shape: [6])
        let embedded = try Embedding(inputDim: 10, outputDim: 4, maskZero: true)(tokens)
        let attended = try MultiHeadAttention(numHeads: 2, keyDim: 2, dropout: 0.2)(query: embedded, value: embedded,
                                                                                    useCausalMask: true)
        let masked = try Model(inputs: tokens, outputs: try Dense(3, activation: .softmax)(try GlobalAveragePooling1D()(attended)))
        masked.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
        let ids: [Float] = (0..<120).map { (i: Int) -> Float in i % 7 == 3 ? 0 : Float((i * 5) % 10) }
        try assertTrainingStepsAllocateNothing(masked, x: Tensor(shape: [20, 6], scalars: ids),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)
    }
}
