@testable import Kestrel
import XCTest

// Activity regularizers (Keras `activity_regularizer` on any layer, and the
// `ActivityRegularization` layer): the penalty of a layer's output, divided by the batch size
// as Keras 3 does, joins the loss in training and evaluation, and its gradient joins the
// output's. Fixture: Fixtures/activity_regularization.json (the `activity_regularization`
// group of make_fixtures.py), a whole Keras 3 fit with an odd-sized last batch.

struct ActivityRegularizationFixture: Decodable {
    let x: KerasFixtureTensor
    let y: KerasFixtureTensor
    let initialWeights: [KerasFixtureTensor]
    let initialLoss: Float
    let batchLosses: [Float]
    let epochLosses: [Float]
    let finalWeights: [KerasFixtureTensor]
}

final class ActivityRegularizationTests: XCTestCase {
    func testFitMatchesKeras() throws {
        let fixture = try KerasFixtures.load("activity_regularization", as: ActivityRegularizationFixture.self)
        let model = Sequential {
            Input(shape: [5])
            Dense(4, activation: .relu, activityRegularizer: .l1(0.05))
            ActivityRegularization(l1: 0.01, l2: 0.02)
            Dense(3, activityRegularizer: .l2(0.03))
        }
        model.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
        try model.setWeights(fixture.initialWeights.map(\.tensor))
        let evaluated = try model.evaluate(fixture.x.tensor, fixture.y.tensor, batchSize: 24, verbose: 0)
        assertMatchesKeras([evaluated["loss"]!], [fixture.initialLoss], rtol: 1e-5, "evaluate, with the penalties")
        // Without the penalties the loss is plainly smaller: they are counted.
        let plain = Sequential { Input(shape: [5]); Dense(4, activation: .relu); Dense(3) }
        plain.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
        try plain.setWeights(fixture.initialWeights.map(\.tensor))
        XCTAssertLessThan(try plain.evaluate(fixture.x.tensor, fixture.y.tensor, batchSize: 24, verbose: 0)["loss"]!,
                          fixture.initialLoss - 0.01)

        final class BatchLosses: Callback {
            var losses: [Float] = []
            func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) { losses.append(logs["loss"] ?? .nan) }
        }
        let recorder = BatchLosses()
        let history = try model.fit(fixture.x.tensor, fixture.y.tensor, batchSize: 10, epochs: fixture.epochLosses.count,
                                    verbose: 0, callbacks: [recorder], shuffle: false)
        assertMatchesKeras(recorder.losses, fixture.batchLosses, rtol: 1e-5, "running loss after each batch")
        assertMatchesKeras(history.history["loss"] ?? [], fixture.epochLosses, rtol: 1e-5, "epoch losses")
        for (i, (w, expected)) in zip(try model.getWeights(), fixture.finalWeights).enumerated() {
            assertMatchesKeras(w.scalars, expected.values, rtol: 1e-5, "final weight \(i)")
        }
    }

    /// Evaluation reports the mean loss plus every output's penalty over the number of
    /// samples, however the samples are batched.
    func testEvaluatedPenaltyIsThePenaltyPerSample() throws {
        Kestrel.setRandomSeed(8)
        let model = Sequential { Input(shape: [4]); Dense(3, activityRegularizer: .l1l2(l1: 0.2, l2: 0.5)) }
        model.compile(optimizer: SGD(), loss: MeanSquaredError())
        let x = Tensor.randomUniform([7, 4], minval: -1, maxval: 1), t = Tensor.randomUniform([7, 3])
        let y = try model.predict(x)
        let mse = zip(y.scalars, t.scalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 21
        let penalty = y.scalars.map { 0.2 * abs($0) + 0.5 * $0 * $0 }.reduce(0, +) / 7
        for batchSize in [7, 3] {
            let loss = try model.evaluate(x, t, batchSize: batchSize, verbose: 0)["loss"]!
            XCTAssertEqual(loss, mse + penalty, accuracy: 1e-5, "batches of \(batchSize)")
        }
    }

    /// Gradients with activity regularizers against central differences: on a layer read by
    /// two others (its gradient summed from both), on an identity layer after a merge, on a
    /// convolution feeding a pooling layer (which then does not run inside it) and on a softmax
    /// output (whose loss then reads the probabilities, not fused logits).
    func testGradientsMatchFiniteDifferences() throws {
        func model(penalised: Bool) throws -> Model {
            func r(_ regularizer: Regularizer) -> Regularizer? { penalised ? regularizer : nil }
            let input = Input(shape: [6, 2])
            let conv = try Conv1D(3, kernelSize: 2, activation: .tanh, activityRegularizer: r(.l2(0.3)))(input)
            let pooled = try Flatten()(try MaxPooling1D(poolSize: 2)(conv))
            let shared = try Dense(4, activation: .tanh, activityRegularizer: r(.l2(0.2)))(pooled)
            var merged = try Add()([try Dense(2)(shared), try Dense(2)(shared)])
            if penalised { merged = try ActivityRegularization(l2: 0.1)(merged) }
            // (L1 only where outputs stay away from 0, |y|'s kink: on the softmax.)
            let output = try Dense(2, activation: .softmax, activityRegularizer: r(.l1l2(l1: 0.1, l2: 0.4)))(merged)
            let model = try Model(inputs: input, outputs: output)
            model.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy())
            return model
        }
        Kestrel.setRandomSeed(9)
        let penalised = try model(penalised: true)
        let x = Tensor.randomUniform([5, 6, 2], minval: -1, maxval: 1), y = Tensor(labels: [0, 1, 1, 0, 1])
        let (loss, gradients) = try penalised.lossAndGradients(x, y)
        let checked = try assertModelGradientsMatchFiniteDifferences(penalised, analytic: gradients.tensors, step: 1e-2,
                                                                     perWeight: 6) {
            try penalised.lossAndGradients(x, y).loss
        }
        XCTAssertGreaterThan(checked, 40)
        // The penalties are in the loss: without them (the same weights) it is smaller.
        let plain = try model(penalised: false)
        try plain.build()
        try plain.setWeights(penalised.getWeights())
        XCTAssertLessThan(try plain.lossAndGradients(x, y).loss, loss - 1e-3)
    }

    func testTrainingWithActivityRegularizersAllocatesNothing() throws {
        let model = Sequential {
            Input(shape: [8])
            Dense(6, activation: .relu, activityRegularizer: .l1(1e-3))
            ActivityRegularization(l2: 1e-3)
            Dense(3, activation: .softmax)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
        try assertTrainingStepsAllocateNothing(model, x: Tensor.randomUniform([40, 8]),
                                               y: Tensor(labels: (0..<40).map { $0 % 3 }), batchSize: 16)
    }

    func testShapesAndErrors() throws {
        let layer = ActivityRegularization(l1: 0.1)
        XCTAssertEqual(try layer.build(inputShape: [3, 4]), [3, 4])
        XCTAssertEqual(layer.activityRegularizer, Regularizer(l1: 0.1))
        XCTAssertTrue(layer.isIdentity(training: true))
        assertThrowsMessage(try ActivityRegularization(l2: -1).build(inputShape: [3]),
                            contains: ["ActivityRegularization", "negative", "-1.0"])
        let inner = Dense(2, activityRegularizer: .l1())
        assertThrowsMessage(try TimeDistributed(inner).build(inputShape: [3, 4]),
                            contains: ["TimeDistributed", "activity regularizer", inner.name])
        let half = LSTM(2)
        half.activityRegularizer = .l2()
        assertThrowsMessage(try Bidirectional(half).build(inputShape: [3, 4]), contains: ["Bidirectional", "activity regularizer"])
        // The identity in prediction.
        let model = Sequential { Input(shape: [3]); ActivityRegularization(l1: 1) }
        let x = Tensor.randomUniform([2, 3])
        XCTAssertEqual(try model.predict(x).scalars, x.scalars)
    }
}
