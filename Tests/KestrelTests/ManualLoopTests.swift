@testable import Kestrel
import XCTest

/// The PyTorch-style loop: forward + loss + backward with `lossAndGradients`, then
/// `optimizer.apply(gradients, to: model)`, on the same plan as `fit`.
final class ManualLoopTests: XCTestCase {
    func makeModel(seed: UInt64) -> Sequential {
        Kestrel.setRandomSeed(seed)
        return Sequential {
            Dense(8, activation: .tanh, inputShape: [3])
            Dense(2)
        }
    }

    func testManualStepEqualsTrainOnBatch() throws {
        var rng = RandomGenerator(seed: 6)
        let x = Tensor.randomUniform([10, 3], minval: -1, maxval: 1, generator: &rng)
        let y = Tensor(labels: (0..<10).map { $0 % 2 })

        let a = makeModel(seed: 1), b = makeModel(seed: 1)
        a.compile(optimizer: Adam(learningRate: 0.05), loss: SparseCategoricalCrossentropy(fromLogits: true))
        b.compile(optimizer: Adam(learningRate: 0.05), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let optimizer = Adam(learningRate: 0.05)
        var losses: [Float] = []
        for _ in 0..<5 {
            let (loss, gradients) = try b.lossAndGradients(x, y)
            XCTAssertGreaterThan(gradients.globalNorm, 0)
            try optimizer.apply(gradients, to: b)
            losses.append(loss)
            let reported = try a.trainOnBatch(x, y)["loss"]!
            XCTAssertEqual(loss, reported, accuracy: 1e-6)
        }
        XCTAssertEqual(try a.getWeights(), try b.getWeights())
        XCTAssertLessThan(losses.last!, losses.first!)
        XCTAssertEqual(optimizer.iterations, 5)
    }

    func testGradientTensorsMatchFiniteDifferences() throws {
        let model = makeModel(seed: 2)
        model.compile(loss: MeanSquaredError())
        let x = Tensor.ones([4, 3]) * 0.3, y = Tensor.zeros([4, 2])
        let (loss, gradients) = try model.lossAndGradients(x, y)
        let g = gradients.tensors
        XCTAssertEqual(g.map(\.shape), [[3, 8], [8], [8, 2], [2]])
        var weights = try model.getWeights()
        let h: Float = 1e-2
        weights[3].scalars[1] += h
        try model.setWeights(weights)
        let (plus, _) = try model.lossAndGradients(x, y)
        weights[3].scalars[1] -= 2 * h
        try model.setWeights(weights)
        let (minus, _) = try model.lossAndGradients(x, y)
        XCTAssertEqual(g[3].scalars[1], (plus - minus) / (2 * h), accuracy: 1e-3)
        XCTAssertEqual(loss, (plus + minus) / 2, accuracy: 1e-3)
    }

    func testCallAsFunctionHonoursTrainingFlag() throws {
        Kestrel.setRandomSeed(3)
        let model = Sequential {
            Dropout(0.5, inputShape: [100])
        }
        let x = Tensor.ones([2, 100])
        XCTAssertEqual(try model(x), x, "inference: dropout is the identity")
        let dropped = try model(x, training: true)
        XCTAssertTrue(dropped.scalars.contains(0))
        XCTAssertTrue(dropped.scalars.contains(2))
    }

    func testGradientsOfAnotherModelAreRefused() throws {
        let a = makeModel(seed: 4), b = makeModel(seed: 5)
        a.compile(loss: MeanSquaredError())
        b.compile(loss: MeanSquaredError())
        let (_, gradients) = try a.lossAndGradients(Tensor.ones([2, 3]), Tensor.zeros([2, 2]))
        try b.build()
        assertThrowsMessage(try SGD().apply(gradients, to: b), contains: ["belong to model"])
    }
}
