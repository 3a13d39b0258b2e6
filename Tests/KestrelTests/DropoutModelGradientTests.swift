@testable import Kestrel
import XCTest

/// The mnist_convnet shape (convolution + ReLU, max pooling, Flatten, Dropout, Dense softmax)
/// differentiated as a whole in training mode, with Dropout's mask held fixed: the step-by-step
/// comparison with Keras runs with dropout 0, which makes Dropout the identity, so this is
/// where the fused plan's handling of an active Dropout is checked.
final class DropoutModelGradientTests: XCTestCase {
    func makeModel(rate: Float) throws -> Sequential {
        Kestrel.setRandomSeed(21)
        let model = Sequential {
            Input(shape: [6, 6, 2])
            Conv2D(3, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Flatten()
            Dropout(rate)
            Dense(4, activation: .softmax)
        }
        model.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy())
        try model.build()
        return model
    }

    /// Loss and gradients of one batch with the mask drawn from `maskSeed`.
    func lossAndGradients(_ model: Model, _ x: Tensor, _ y: Tensor, maskSeed: UInt64) throws -> (Float, [Tensor]) {
        try model.plan(capacity: x.shape[0], training: true).reseed(maskSeed)
        let (loss, gradients) = try model.lossAndGradients(x, y)
        return (loss, gradients.tensors)
    }

    func testGradientsThroughActiveDropoutMatchFiniteDifferences() throws {
        try check(rate: 0.5)
    }

    func testGradientsWithoutDropoutMatchFiniteDifferences() throws {
        try check(rate: 0)
    }

    /// Every weight's analytic gradient against central differences, the mask fixed by reseeding.
    func check(rate: Float) throws {
        let model = try makeModel(rate: rate)
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.randomUniform([5, 6, 6, 2], minval: -1, maxval: 1, generator: &rng)
        let y = Tensor(labels: [0, 3, 1, 2, 3])
        // The first call settles the plan (compile's fused softmax loss is decided then).
        _ = try model.lossAndGradients(x, y)
        let (loss, analytic) = try lossAndGradients(model, x, y, maskSeed: 99)
        XCTAssertEqual(loss, try lossAndGradients(model, x, y, maskSeed: 99).0, "same mask, same loss")
        if rate > 0 {
            // The mask is in effect: another mask gives another loss, and so does no dropout.
            XCTAssertNotEqual(loss, try lossAndGradients(model, x, y, maskSeed: 100).0)
            let plain = try makeModel(rate: 0)
            try plain.setWeights(try model.getWeights())
            XCTAssertNotEqual(loss, try plain.lossAndGradients(x, y).loss)
        }

        // A small step: with 2e-3, one pooled ReLU output of this batch sits within a step of its
        // kink and the central difference averages the two sides.
        let checked = try assertModelGradientsMatchFiniteDifferences(model, analytic: analytic, step: 2e-4,
                                                                     perWeight: 12) {
            try lossAndGradients(model, x, y, maskSeed: 99).0
        }
        XCTAssertGreaterThan(checked, 30)
    }

    /// A short last batch (`fit`'s 60,000 = 468 × 128 + 96) runs in the plan built for full
    /// batches, whose rows past the batch still hold the previous step's activations, gradients
    /// and mask: the same rows with the same mask must give the same loss and gradients as in a
    /// plan built for exactly that batch.
    func testShortBatchInLargerPlanMatchesExactPlan() throws {
        let model = try makeModel(rate: 0.5)
        var rng = RandomGenerator(seed: 12)
        let full = Tensor.randomUniform([8, 6, 6, 2], minval: -1, maxval: 1, generator: &rng)
        let fullLabels = Tensor(labels: [1, 0, 3, 2, 2, 1, 0, 3])
        let x = Tensor.randomUniform([5, 6, 6, 2], minval: -1, maxval: 1, generator: &rng)
        let y = Tensor(labels: [0, 3, 1, 2, 3])
        _ = try model.lossAndGradients(x, y)
        let (exactLoss, exactGradients) = try lossAndGradients(model, x, y, maskSeed: 5)

        // A full batch first, so that every buffer of the larger plan holds other values.
        _ = try lossAndGradients(model, full, fullLabels, maskSeed: 6)
        let plan = try model.plan(capacity: 8, training: true)
        let targets = try model.prepareTargets([y], samples: 5, "test")
        let labels = targets.labels(capacity: 8)
        targets.reset()
        x.scalars.withUnsafeBufferPointer { plan.inputBuffer(0).update(from: $0.baseAddress!, count: $0.count) }
        y.scalars.withUnsafeBufferPointer { labels[0].update(from: $0.baseAddress!, count: $0.count) }
        plan.reseed(5)
        let loss = model.forwardBackward(plan, targets, labels: labels, batch: 5)
        let gradients = Gradients(model: model, store: model.store!).tensors

        XCTAssertEqual(loss, exactLoss, accuracy: 1e-6)
        for (a, b) in zip(gradients, exactGradients) { assertClose(a.scalars, b.scalars, tolerance: 1e-6) }
    }
}
