@testable import Kestrel
import XCTest

// A whole `fit` against Keras 3's: a small convnet (Conv2D → MaxPooling2D → Flatten → Dense
// softmax, Adam) from the same initial weights, without shuffling or dropout, so that every
// batch's running loss, each epoch's loss and accuracy and the final weights must be Keras's.
// This pins what the per-layer fixtures cannot: how fit averages a partial last batch, how the
// optimizer counts steps across epochs, how the loss and metrics are aggregated.
// Fixture: Fixtures/training.json (the `training` group of make_fixtures.py).

struct TrainingFixture: Decodable {
    let x: KerasFixtureTensor
    let y: [Int]
    let initialWeights: [KerasFixtureTensor]
    let batchLosses: [Float]
    let epochLosses: [Float]
    let epochAccuracies: [Float]
    let finalWeights: [KerasFixtureTensor]
}

final class TrainingReferenceTests: XCTestCase {
    final class BatchLosses: Callback {
        var losses: [Float] = []
        func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) { losses.append(logs["loss"] ?? .nan) }
    }

    func testFitMatchesKeras() throws {
        let fixture = try KerasFixtures.load("training", as: TrainingFixture.self)
        let model = Sequential {
            Input(shape: [6, 6, 1])
            Conv2D(4, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Flatten()
            Dense(3, activation: .softmax)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
        try model.setWeights(fixture.initialWeights.map(\.tensor))
        let recorder = BatchLosses()
        let labels = Tensor(shape: [fixture.y.count], scalars: fixture.y.map(Float.init))
        let history = try model.fit(fixture.x.tensor, labels, batchSize: 16, epochs: fixture.epochLosses.count,
                                    verbose: 0, callbacks: [recorder], shuffle: false)
        // 1e-4: nine Adam steps compound the last-bit differences of the layers (1e-5 each).
        assertMatchesKeras(recorder.losses, fixture.batchLosses, rtol: 1e-4, "running loss after each batch")
        assertMatchesKeras(history.history["loss"] ?? [], fixture.epochLosses, rtol: 1e-4, "epoch losses")
        XCTAssertEqual(history.history["accuracy"] ?? [], fixture.epochAccuracies, "epoch accuracies")
        let weights = try model.getWeights()
        XCTAssertEqual(weights.count, fixture.finalWeights.count)
        for (i, (w, expected)) in zip(weights, fixture.finalWeights).enumerated() {
            XCTAssertEqual(w.shape, expected.shape)
            assertMatchesKeras(w.scalars, expected.values, rtol: 1e-4, "final weight \(i)")
        }
    }
}
