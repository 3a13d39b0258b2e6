@testable import Kestrel
import XCTest

/// LSTM and Embedding: shapes, Keras's initial values, gradients against finite differences
/// in every configuration, and allocation-free training steps.
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
        // The label is whether a sequence holds more ones than zeros: it needs memory of every step.
        Kestrel.setRandomSeed(4)
        var rng = RandomGenerator(seed: 9)
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
        let model = Sequential {
            Input(shape: [7, 1])
            LSTM(8)
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 0.02), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        let x = Tensor(shape: [256, 7, 1], scalars: values), y = Tensor(labels: labels)
        try model.fit(x, y, batchSize: 32, epochs: 40, verbose: 0)
        let accuracy = try model.evaluate(x, y, verbose: 0)["accuracy"]!
        XCTAssertGreaterThan(accuracy, 0.95)
    }
}

extension Layer {
    /// The weight specs for input shapes, or none when they don't fit (for terse tests).
    func weightSpecs(forInputsOrEmpty shapes: [[Int]]) -> [WeightSpec] { (try? weightSpecs(forInputs: shapes)) ?? [] }
}
