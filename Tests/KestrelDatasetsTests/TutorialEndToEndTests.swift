import Kestrel
import KestrelDatasets
import XCTest

/// The Fashion-MNIST tutorial, end to end, on real data.
final class TutorialEndToEndTests: XCTestCase {
    func tutorialModel() -> Sequential {
        Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
    }

    func train(_ data: LabeledImages, epochs: Int, seed: UInt64) throws -> (Sequential, History) {
        Kestrel.setRandomSeed(seed)
        let model = tutorialModel()
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let history = try model.fit(data.images / 255, data.labels, epochs: epochs, verbose: 0)
        return (model, history)
    }

    /// Same seed, same weights and history after an epoch on the committed subset.
    func testDeterministicOnSubset() throws {
        let subset = try FashionMNIST.load(path: FashionMNIST.dataset.subsetDirectories.first {
            FileManager.default.fileExists(atPath: $0)
        })
        let (a, ha) = try train(subset.train, epochs: 1, seed: 5)
        let (b, hb) = try train(subset.train, epochs: 1, seed: 5)
        XCTAssertEqual(try a.getWeights(), try b.getWeights())
        XCTAssertEqual(ha.history, hb.history)
        let result = try a.evaluate(subset.test.images / 255, subset.test.labels, verbose: 0)
        XCTAssertGreaterThan(result["accuracy"]!, 0.6, "one epoch on 2000 images")
    }

    /// The tutorial's claim: at least 0.86 test accuracy after 5 epochs with the defaults.
    func testTutorialReachesKerasAccuracyOnFullData() throws {
        let location = try FashionMNIST.locate()
        try XCTSkipIf(location.isSubset, "the full Fashion-MNIST is not installed (scripts/setup.sh installs it)")
        let data = try FashionMNIST.load(from: location)
        let (model, history) = try train(data.train, epochs: 5, seed: 42)
        XCTAssertEqual(history["loss"]!.count, 5)
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first!)
        let result = try model.evaluate(data.test.images / 255, data.test.labels, verbose: 0)
        XCTAssertGreaterThanOrEqual(result["accuracy"]!, 0.86)
    }
}
