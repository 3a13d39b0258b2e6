@testable import functional_examples
import Kestrel
import KestrelDatasets
import XCTest

/// The Functional API guide's models train on Fashion-MNIST data (the committed subset, so the
/// test runs everywhere).
final class FunctionalExamplesTests: XCTestCase {
    func subset() throws -> (train: LabeledImages, test: LabeledImages) {
        try FashionMNIST.load(path: FashionMNIST.dataset.subsetDirectories.first { FileManager.default.fileExists(atPath: $0) })
    }

    func testResidualModelTrains() throws {
        Kestrel.setRandomSeed(1)
        let (train, test) = try subset()
        let model = try residualModel()
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let history = try model.fit(train.images / 255, train.labels, epochs: 5, verbose: 0)
        XCTAssertLessThan(history["loss"]!.last!, history["loss"]!.first!)
        let result = try model.evaluate(test.images / 255, test.labels, verbose: 0)
        XCTAssertGreaterThan(result["accuracy"]!, 0.72, "5 epochs on 2000 images")
    }

    func testTwoInputTwoOutputModelTrains() throws {
        Kestrel.setRandomSeed(2)
        let (train, test) = try subset()
        let model = try twoHeadedModel()
        model.compile(optimizer: Adam(),
                      losses: [SparseCategoricalCrossentropy(fromLogits: true), MeanSquaredError()],
                      lossWeights: [1, 10], metrics: [[.accuracy], ["mae"]])
        let trainImages = train.images / 255, testImages = test.images / 255
        let (p, c) = try rowProfilesAndCoverage(trainImages)
        let (tp, tc) = try rowProfilesAndCoverage(testImages)
        let history = try model.fit([trainImages, p], [train.labels, c], epochs: 5, verbose: 0)
        XCTAssertEqual(history["class_out_loss"]!.count, 5)
        let result = try model.evaluate([testImages, tp], [test.labels, tc], verbose: 0)
        XCTAssertGreaterThan(result["class_out_accuracy"]!, 0.7)
        // Predicting the mean coverage leaves an error of 0.150 on these test images.
        XCTAssertLessThan(result["coverage_out_mean_absolute_error"]!, 0.1)
    }
}
