@testable import Kestrel
import XCTest

final class ModelTrainingTests: XCTestCase {
    /// Two well-separated Gaussian blobs per class in 4 dimensions.
    func blobs(samples: Int, classes: Int, seed: UInt64) -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        var x = [Float](), y = [Float]()
        for i in 0..<samples {
            let c = i % classes
            for d in 0..<4 {
                let (g, _) = rng.nextGaussianPair()
                x.append(g * 0.5 + (d == c % 4 ? 3 : 0) + Float(c / 4) * 2)
            }
            y.append(Float(c))
        }
        return (Tensor(shape: [samples, 4], scalars: x), Tensor(shape: [samples], scalars: y))
    }

    func testMLPLearnsBlobsAndReportsKerasNames() throws {
        Kestrel.setRandomSeed(1)
        let (x, y) = blobs(samples: 600, classes: 3, seed: 2)
        let model = Sequential {
            Dense(16, activation: .relu, inputShape: [4])
            Dense(3)
        }
        model.compile(optimizer: Adam(learningRate: 0.01),
                      loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let history = try model.fit(x, y, epochs: 5, verbose: 0, validationSplit: 0.2)
        XCTAssertEqual(Set(history.history.keys), ["loss", "accuracy", "val_loss", "val_accuracy"])
        XCTAssertEqual(history.epoch, [0, 1, 2, 3, 4])
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first!)
        let result = try model.evaluate(x, y, verbose: 0)
        XCTAssertGreaterThan(result["accuracy"]!, 0.95)
        let probabilities = try model.predict(x)
        XCTAssertEqual(probabilities.shape, [600, 3])
    }
}
