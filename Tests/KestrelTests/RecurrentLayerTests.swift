@testable import Kestrel
import XCTest

/// LSTM, GRU, SimpleRNN and Embedding: shapes, Keras's initial values, gradients against finite
/// differences in every configuration, learning a task that needs memory, and allocation-free
/// training steps. Their outputs and gradients against Keras are in RecurrentReferenceTests.
final class RecurrentLayerTests: XCTestCase {
    func testLSTMShapeInferenceAndErrors() throws {
        XCTAssertEqual(try LSTM(7).build(inputShape: [5, 3]), [7])
        XCTAssertEqual(try LSTM(7, returnSequences: true).build(inputShape: [5, 3]), [5, 7])
        let lstm = LSTM(4)
        try lstm.build(inputShape: [6, 3])
        XCTAssertEqual(lstm.weightSpecs.map(\.name), ["kernel", "recurrent_kernel", "bias"])
        XCTAssertEqual(lstm.weightSpecs.map(\.shape), [[3, 16], [4, 16], [16]])
        XCTAssertEqual(LSTM(4, useBias: false).weightSpecs(forInputsOrEmpty: [[6, 3]]).count, 2)
        assertThrowsMessage(try LSTM(4).build(inputShape: [12]), contains: ["LSTM", "(timesteps, features)", "[12]"])
        assertThrowsMessage(try LSTM(0).build(inputShape: [3, 2]), contains: ["LSTM", "units", "0"])
        assertThrowsMessage(try LSTM(3, activation: .softmax).build(inputShape: [3, 2]),
                            contains: ["LSTM", "activation", "softmax"])
    }

    func testLSTMStartsWithKerasInitialValues() throws {
        Kestrel.setRandomSeed(3)
        let lstm = LSTM(5)
        try lstm.build(inputShape: [4, 6])
        let w = lstm.getWeights()
        // Bias: zeros except the forget gate's ones (unit_forget_bias).
        XCTAssertEqual(w[2].scalars, [Float](repeating: 0, count: 5) + [Float](repeating: 1, count: 5)
                       + [Float](repeating: 0, count: 10))
        // Orthogonal recurrent kernel (5 × 20, wide): its rows are orthonormal.
        let u = w[1].scalars
        for i in 0..<5 {
            for j in 0..<5 {
                var dot: Float = 0
                for k in 0..<20 { dot += u[i * 20 + k] * u[j * 20 + k] }
                XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-4)
            }
        }
        // Glorot-uniform kernel: within ±sqrt(6 / (6 + 20)).
        XCTAssertLessThanOrEqual(w[0].scalars.map(abs).max()!, (6 / Float(26)).squareRoot())
        let plain = LSTM(5, unitForgetBias: false)
        try plain.build(inputShape: [4, 6])
        XCTAssertEqual(plain.getWeights()[2].scalars, [Float](repeating: 0, count: 20))
    }

    func testLSTMGradientsInEveryConfiguration() throws {
        Kestrel.setRandomSeed(21)
        for returnSequences in [false, true] {
            for goBackwards in [false, true] {
                let label = " returnSequences \(returnSequences) goBackwards \(goBackwards)"
                let layer = LSTM(3, returnSequences: returnSequences, goBackwards: goBackwards)
                try LayerHarness(layer, inputShapes: [[4, 2]], batch: 3).check(epsilon: 3e-3, label: label)
            }
        }
        try LayerHarness(LSTM(2, useBias: false, returnSequences: true), inputShapes: [[3, 3]], batch: 2)
            .check(epsilon: 3e-3, label: " no bias")
        try LayerHarness(LSTM(3, activation: .relu, recurrentActivation: .hardSigmoid), inputShapes: [[3, 2]], batch: 2)
            .check(epsilon: 3e-3, label: " relu/hard_sigmoid")
    }

    func testGRUAndSimpleRNNShapesAndErrors() throws {
        XCTAssertEqual(try GRU(7).build(inputShape: [5, 3]), [7])
        XCTAssertEqual(try SimpleRNN(7, returnSequences: true).build(inputShape: [5, 3]), [5, 7])
        let gru = GRU(4)
        try gru.build(inputShape: [6, 3])
        XCTAssertEqual(gru.weightSpecs.map(\.name), ["kernel", "recurrent_kernel", "bias"])
        // Keras's shapes: two bias rows (input and recurrent) with reset_after, one without.
        XCTAssertEqual(gru.weightSpecs.map(\.shape), [[3, 12], [4, 12], [2, 12]])
        XCTAssertEqual(GRU(4, resetAfter: false).weightSpecs(forInputsOrEmpty: [[6, 3]]).map(\.shape), [[3, 12], [4, 12], [12]])
        XCTAssertEqual(SimpleRNN(4).weightSpecs(forInputsOrEmpty: [[6, 3]]).map(\.shape), [[3, 4], [4, 4], [4]])
        XCTAssertEqual(SimpleRNN(4, useBias: false).weightSpecs(forInputsOrEmpty: [[6, 3]]).count, 2)
        for layer in [GRU(3), SimpleRNN(3)] as [Layer] {
            assertThrowsMessage(try layer.build(inputShape: [12]), contains: [layer.className, "(timesteps, features)", "[12]"])
        }
        assertThrowsMessage(try GRU(0).build(inputShape: [3, 2]), contains: ["GRU", "units", "0"])
        assertThrowsMessage(try GRU(3, recurrentActivation: .softmax).build(inputShape: [3, 2]),
                            contains: ["GRU", "recurrentActivation", "softmax"])
        assertThrowsMessage(try SimpleRNN(3, activation: .gelu).build(inputShape: [3, 2]), contains: ["SimpleRNN", "activation", "gelu"])
        // The FLOPs of one step's products: 3 gate blocks for GRU, 1 for SimpleRNN.
        XCTAssertEqual(GRU(8).flops(batch: 2, inputShapes: [[5, 4]]).forward, 2 * 10 * 24 * (4 + 8))
        XCTAssertEqual(SimpleRNN(8).flops(batch: 2, inputShapes: [[5, 4]]).forward, 2 * 10 * 8 * (4 + 8))
    }

    func testGRUAndSimpleRNNGradientsInEveryConfiguration() throws {
        Kestrel.setRandomSeed(22)
        for returnSequences in [false, true] {
            for goBackwards in [false, true] {
                for resetAfter in [true, false] {
                    let label = " GRU returnSequences \(returnSequences) goBackwards \(goBackwards) resetAfter \(resetAfter)"
                    let layer = GRU(3, returnSequences: returnSequences, goBackwards: goBackwards, resetAfter: resetAfter)
                    try LayerHarness(layer, inputShapes: [[4, 2]], batch: 3).check(epsilon: 3e-3, label: label)
                }
                let label = " SimpleRNN returnSequences \(returnSequences) goBackwards \(goBackwards)"
                let layer = SimpleRNN(3, returnSequences: returnSequences, goBackwards: goBackwards)
                try LayerHarness(layer, inputShapes: [[4, 2]], batch: 3).check(epsilon: 3e-3, label: label)
            }
        }
        try LayerHarness(GRU(2, useBias: false, returnSequences: true), inputShapes: [[3, 3]], batch: 2)
            .check(epsilon: 3e-3, label: " GRU no bias")
        try LayerHarness(GRU(2, useBias: false, resetAfter: false), inputShapes: [[3, 3]], batch: 2)
            .check(epsilon: 3e-3, label: " GRU reset before, no bias")
        try LayerHarness(SimpleRNN(3, activation: .sigmoid, useBias: false), inputShapes: [[3, 2]], batch: 2)
            .check(epsilon: 3e-3, label: " SimpleRNN sigmoid, no bias")
    }

    /// GRU and SimpleRNN learn the same memory task as the LSTM, and train without allocating.
    func testGRUAndSimpleRNNLearnAndTrainWithoutAllocating() throws {
        Kestrel.setRandomSeed(5)
        let (x, y) = Self.countingOnes(seed: 10)
        for recurrent in [GRU(8), GRU(8, resetAfter: false), SimpleRNN(8)] as [Layer] {
            let model = Sequential { Input(shape: [7, 1]); recurrent; Dense(2) }
            model.compile(optimizer: Adam(learningRate: 0.02), loss: SparseCategoricalCrossentropy(fromLogits: true),
                          metrics: [.accuracy])
            try model.fit(x, y, batchSize: 32, epochs: 40, verbose: 0)
            XCTAssertGreaterThan(try model.evaluate(x, y, verbose: 0)["accuracy"]!, 0.95, recurrent.className)
        }
        let stacked = Sequential {
            Input(shape: [6, 4])
            GRU(8, returnSequences: true)
            SimpleRNN(6, returnSequences: true, goBackwards: true)
            GRU(5, goBackwards: true, resetAfter: false)
            Dense(3)
        }
        stacked.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        try assertTrainingStepsAllocateNothing(stacked, x: Tensor.randomUniform([20, 6, 4]),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)
    }

    /// Keras's `dropout`: one mask per sequence (the same features dropped at every step),
    /// kept features scaled by 1/(1 − rate); nothing dropped in inference.
    func testInputDropoutMasksEachSequenceOnceInTrainingOnly() throws {
        Kestrel.setRandomSeed(6)
        for layer in [LSTM(3, dropout: 0.4), GRU(3, dropout: 0.4, returnSequences: true), SimpleRNN(3, dropout: 0.4, goBackwards: true)]
            as [RecurrentLayer] {
            try LayerHarness(layer, inputShapes: [[4, 5]], batch: 3, training: true).check(epsilon: 3e-3, label: " \(layer.className)")
        }
        try LayerHarness(Bidirectional(GRU(2, dropout: 0.3)), inputShapes: [[3, 4]], batch: 2, training: true)
            .check(epsilon: 3e-3, label: " bidirectional")
        // With every kernel row but one zero, the output only sees that input feature; when the
        // mask drops it, every step of the sequence loses it, so the last state is the bias's.
        let layer = SimpleRNN(1, activation: .linear, dropout: 0.5, seed: 3)
        try layer.build(inputShape: [3, 4])
        try layer.setWeights([Tensor(shape: [4, 1], scalars: [1, 0, 0, 0]), Tensor(shape: [1, 1], scalars: [1]),
                              Tensor(shape: [1], scalars: [0])])
        let x = Tensor(shape: [200, 3, 4], scalars: Array(repeating: 1, count: 2400))
        let inference = try layer(x).scalars
        XCTAssertEqual(Set(inference), [3], "inference: 1 + 1 + 1 through the identity recurrence")
        let training = try layer(x, training: true).scalars
        // Kept: every step adds 1/(1 − 0.5) = 2; dropped: every step adds 0.
        XCTAssertEqual(Set(training), [0, 6])
        XCTAssertEqual(Double(training.filter { $0 == 0 }.count) / 200, 0.5, accuracy: 0.1)
        assertThrowsMessage(try LSTM(2, dropout: 1).build(inputShape: [3, 2]), contains: ["LSTM", "dropout", "1.0"])
        let model = Sequential { Input(shape: [6, 4]); LSTM(5, dropout: 0.2, returnSequences: true); GRU(4, dropout: 0.3); Dense(3) }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try assertTrainingStepsAllocateNothing(model, x: Tensor.randomUniform([20, 6, 4]),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)
    }

    /// Recurrent dropout (LSTM, GRU, SimpleRNN): one mask of the previous state per gate and
    /// sequence, the same at every step, in training only; gradients with the masks held fixed.
    func testRecurrentDropoutMasksTheStateOncePerSequenceInTrainingOnly() throws {
        Kestrel.setRandomSeed(12)
        for layer in [LSTM(3, dropout: 0.3, recurrentDropout: 0.4, returnSequences: true), LSTM(2, recurrentDropout: 0.5),
                      GRU(3, dropout: 0.2, recurrentDropout: 0.4, returnSequences: true),
                      GRU(2, recurrentDropout: 0.5, resetAfter: false),
                      GRU(2, activation: .relu, recurrentDropout: 0.3, goBackwards: true),
                      SimpleRNN(3, dropout: 0.2, recurrentDropout: 0.5, goBackwards: true)] as [RecurrentLayer] {
            try LayerHarness(layer, inputShapes: [[4, 3]], batch: 3, training: true).check(epsilon: 3e-3, label: " \(layer.className)")
            // With padding masked as well.
            let padded = try LayerHarness(layer, inputShapes: [[4, 3]], batch: 3, training: true)
            padded.inputMask = [1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1]
            padded.check(epsilon: 3e-3, label: " \(layer.className) masked")
        }
        try LayerHarness(Bidirectional(LSTM(2, recurrentDropout: 0.3, returnSequences: true)), inputShapes: [[3, 2]], batch: 2,
                         training: true).check(epsilon: 3e-3, label: " bidirectional")
        // A linear unit whose state doubles back into itself: a kept state (mask 2) gives
        // 1, 1 + 2·1 = 3, 1 + 2·3 = 7 over three steps of ones; a dropped one gives 1, 1, 1.
        let layer = SimpleRNN(1, activation: .linear, recurrentDropout: 0.5, seed: 4)
        try layer.build(inputShape: [3, 1])
        try layer.setWeights([Tensor(shape: [1, 1], scalars: [1]), Tensor(shape: [1, 1], scalars: [1]),
                              Tensor(shape: [1], scalars: [0])])
        let x = Tensor(shape: [400, 3, 1], scalars: Array(repeating: 1, count: 1200))
        XCTAssertEqual(Set(try layer(x).scalars), [3], "inference: 1 + 1 + 1")
        let training = try layer(x, training: true).scalars
        XCTAssertEqual(Set(training), [1, 7])
        XCTAssertEqual(Double(training.filter { $0 == 1 }.count) / 400, 0.5, accuracy: 0.08)
        assertThrowsMessage(try LSTM(2, recurrentDropout: 1).build(inputShape: [3, 2]), contains: ["LSTM", "recurrentDropout", "1.0"])
        let model = Sequential {
            Input(shape: [6, 4])
            Bidirectional(LSTM(5, dropout: 0.2, recurrentDropout: 0.2, returnSequences: true))
            GRU(4, recurrentDropout: 0.3, returnSequences: true)
            SimpleRNN(4, recurrentDropout: 0.3)
            Dense(3)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try assertTrainingStepsAllocateNothing(model, x: Tensor.randomUniform([20, 6, 4]),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)
    }

    func testBidirectionalShapesWeightsAndErrors() throws {
        XCTAssertEqual(try Bidirectional(LSTM(4)).build(inputShape: [5, 3]), [8])
        XCTAssertEqual(try Bidirectional(GRU(4, returnSequences: true)).build(inputShape: [5, 3]), [5, 8])
        XCTAssertEqual(try Bidirectional(SimpleRNN(4), mergeMode: .sum).build(inputShape: [5, 3]), [4])
        let both = Bidirectional(LSTM(4, name: "encoder"))
        XCTAssertEqual(both.backwardLayer.name, "backward_encoder")
        XCTAssertTrue(both.backwardLayer.goBackwards)
        try both.build(inputShape: [5, 3])
        XCTAssertEqual(both.weightSpecs.map(\.name), ["forward_layer/kernel", "forward_layer/recurrent_kernel", "forward_layer/bias",
                                                      "backward_layer/kernel", "backward_layer/recurrent_kernel", "backward_layer/bias"])
        XCTAssertEqual(both.parameterCount, 2 * (3 * 16 + 4 * 16 + 16))
        // Each half starts as Keras's LSTM does: its forget-gate bias at one.
        let w = both.getWeights()
        XCTAssertEqual(Array(w[2].scalars[4..<8]), [1, 1, 1, 1])
        XCTAssertEqual(Array(w[5].scalars[4..<8]), [1, 1, 1, 1])
        XCTAssertNotEqual(w[0], w[3])
        // A given backward layer: other units are fine concatenated, not summed.
        XCTAssertEqual(try Bidirectional(GRU(4), backwardLayer: GRU(2, goBackwards: true)).build(inputShape: [5, 3]), [6])
        assertThrowsMessage(try Bidirectional(GRU(4), mergeMode: .ave, backwardLayer: GRU(2, goBackwards: true)).build(inputShape: [5, 3]),
                            contains: ["Bidirectional", "ave", "4", "2"])
        assertThrowsMessage(try Bidirectional(GRU(4), backwardLayer: GRU(4)).build(inputShape: [5, 3]),
                            contains: ["Bidirectional", "goBackwards"])
        assertThrowsMessage(try Bidirectional(GRU(4), backwardLayer: GRU(4, returnSequences: true, goBackwards: true))
                                .build(inputShape: [5, 3]), contains: ["Bidirectional", "returnSequences"])
        assertThrowsMessage(try Bidirectional(LSTM(4)).build(inputShape: [5]), contains: ["(timesteps, features)"])
    }

    func testBidirectionalGradientsInEveryMergeMode() throws {
        Kestrel.setRandomSeed(23)
        for mode in BidirectionalMerge.allCases {
            for returnSequences in [false, true] {
                let layer = Bidirectional(LSTM(3, returnSequences: returnSequences), mergeMode: mode)
                try LayerHarness(layer, inputShapes: [[4, 2]], batch: 2)
                    .check(epsilon: 3e-3, label: " LSTM \(mode) returnSequences \(returnSequences)")
            }
        }
        try LayerHarness(Bidirectional(GRU(2, returnSequences: true), backwardLayer: SimpleRNN(3, returnSequences: true, goBackwards: true)),
                         inputShapes: [[3, 2]], batch: 2).check(epsilon: 3e-3, label: " GRU forward, SimpleRNN backward")
    }

    /// Both directions together learn the memory task (in either merge mode), and a stack of
    /// them with mixed halves trains without allocating.
    func testBidirectionalLearnsAndTrainsWithoutAllocating() throws {
        Kestrel.setRandomSeed(6)
        let (x, y) = Self.countingOnes(seed: 11)
        for mode in [BidirectionalMerge.concat, .sum] {
            let model = Sequential { Input(shape: [7, 1]); Bidirectional(GRU(6), mergeMode: mode); Dense(2) }
            model.compile(optimizer: Adam(learningRate: 0.02), loss: SparseCategoricalCrossentropy(fromLogits: true),
                          metrics: [.accuracy])
            try model.fit(x, y, batchSize: 32, epochs: 40, verbose: 0)
            XCTAssertGreaterThan(try model.evaluate(x, y, verbose: 0)["accuracy"]!, 0.95, "\(mode)")
        }
        let stacked = Sequential {
            Input(shape: [6, 4])
            Bidirectional(LSTM(5, returnSequences: true), mergeMode: .mul)
            Bidirectional(SimpleRNN(3), backwardLayer: GRU(2, goBackwards: true))
            Dense(3)
        }
        stacked.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        try assertTrainingStepsAllocateNothing(stacked, x: Tensor.randomUniform([20, 6, 4]),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)
    }

    func testEmbeddingLooksUpRowsAndScattersGradients() throws {
        let embedding = Embedding(inputDim: 4, outputDim: 2)
        XCTAssertEqual(try embedding.build(inputShape: [3]), [3, 2])
        try embedding.setWeights([Tensor(shape: [4, 2], scalars: [0, 1, 10, 11, 20, 21, 30, 31])])
        let y = try embedding(Tensor(shape: [2, 3], scalars: [3, 0, 1, 2, 2, 7]))
        // Index 7 is outside the table: a zero row.
        XCTAssertEqual(y.scalars, [30, 31, 0, 1, 10, 11, 20, 21, 20, 21, 0, 0])
        assertThrowsMessage(try Embedding(inputDim: 0, outputDim: 2).build(inputShape: [3]), contains: ["Embedding", "inputDim"])
        // Inputs are indices (avoid the kink of truncation by keeping them mid-integer).
        let harness = try LayerHarness(Embedding(inputDim: 5, outputDim: 3), inputShapes: [[4]], batch: 2)
        harness.inputs = [[0.5, 1.5, 4.5, 1.5, 2.5, 3.5, 0.5, 4.5]]
        harness.check(label: " embedding")
    }

    func testLSTMAndEmbeddingModelsTrainWithoutAllocating() throws {
        let model = Sequential {
            Input(shape: [6, 4])
            LSTM(8, returnSequences: true)
            LSTM(5, goBackwards: true)
            Dense(3)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        try assertTrainingStepsAllocateNothing(model, x: Tensor.randomUniform([20, 6, 4]),
                                               y: Tensor(labels: (0..<20).map { $0 % 3 }), batchSize: 8)

        let text = Sequential {
            Input(shape: [5])
            Embedding(inputDim: 10, outputDim: 4)
            LSTM(6)
            Dense(2)
        }
        text.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let tokens = Tensor(shape: [16, 5], scalars: (0..<80).map { Float($0 * 7 % 10) })
        try assertTrainingStepsAllocateNothing(text, x: tokens, y: Tensor(labels: (0..<16).map { $0 % 2 }), batchSize: 8)
    }

    func testLSTMLearnsToCountOnes() throws {
        Kestrel.setRandomSeed(4)
        let (x, y) = Self.countingOnes(seed: 9)
        let model = Sequential {
            Input(shape: [7, 1])
            LSTM(8)
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 0.02), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        try model.fit(x, y, batchSize: 32, epochs: 40, verbose: 0)
        let accuracy = try model.evaluate(x, y, verbose: 0)["accuracy"]!
        XCTAssertGreaterThan(accuracy, 0.95)
    }
}

extension RecurrentLayerTests {
    /// 256 sequences of 7 random bits labelled by whether they hold more ones than zeros: a
    /// task that needs memory of every step.
    static func countingOnes(seed: UInt64) -> (x: Tensor, y: Tensor) {
        var rng = RandomGenerator(seed: seed)
        var values: [Float] = [], labels: [Int] = []
        for _ in 0..<256 {
            var ones = 0
            for _ in 0..<7 {
                let bit: Float = rng.nextUnitFloat() < 0.5 ? 1 : 0
                ones += Int(bit)
                values.append(bit)
            }
            labels.append(ones > 3 ? 1 : 0)
        }
        return (Tensor(shape: [256, 7, 1], scalars: values), Tensor(labels: labels))
    }
}

extension Layer {
    /// The weight specs for input shapes, or none when they don't fit (for terse tests).
    func weightSpecs(forInputsOrEmpty shapes: [[Int]]) -> [WeightSpec] { (try? weightSpecs(forInputs: shapes)) ?? [] }
}
