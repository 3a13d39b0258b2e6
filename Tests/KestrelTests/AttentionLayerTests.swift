@testable import Kestrel
import XCTest

/// MultiHeadAttention: shapes and errors, gradients against finite differences (self- and
/// cross-attention with query and value of different lengths, a separate key, another
/// output size), the Functional self-attention block of the benchmark, and allocation-free
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
    }
}
