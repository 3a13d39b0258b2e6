@testable import Kestrel
import XCTest

/// Gradient checks and behaviour of BatchNormalization and LayerNormalization.
final class NormalizationTests: XCTestCase {
    func testBatchNormalizationGradientsInTrainingAndInference() throws {
        for training in [true, false] {
            for (center, scale) in [(true, true), (false, true), (true, false)] {
                let layer = BatchNormalization(center: center, scale: scale)
                try LayerHarness(layer, inputShapes: [[3, 2, 4]], batch: 3, training: training)
                    .check(label: " training \(training) center \(center) scale \(scale)")
            }
        }
        try LayerHarness(BatchNormalization(), inputShapes: [[5]], batch: 6, training: true).check(label: " dense")
    }

    func testLayerNormalizationGradients() throws {
        try LayerHarness(LayerNormalization(), inputShapes: [[3, 6]], batch: 2).check()
        try LayerHarness(LayerNormalization(center: false), inputShapes: [[5]], batch: 3).check(label: " no center")
        try LayerHarness(LayerNormalization(scale: false), inputShapes: [[5]], batch: 3).check(label: " no scale")
    }

    func testBatchNormalizationUsesMovingStatisticsInInferenceAndCountsThemNonTrainable() throws {
        let model = Sequential {
            Input(shape: [4, 4, 3])
            Conv2D(2, kernelSize: 3)
            BatchNormalization()
            Flatten()
            Dense(2)
        }
        let summary = try model.summaryText()
        // Conv 3·3·3·2+2 = 56, BN 4·2 = 8 (4 non-trainable), Dense 8·2+2 = 18.
        XCTAssertTrue(summary.contains("Total params: 82"), summary)
        XCTAssertTrue(summary.contains("Trainable params: 78"), summary)
        XCTAssertTrue(summary.contains("Non-trainable params: 4 "), summary)

        let bn = BatchNormalization(momentum: 0.5)
        let x = Tensor(shape: [4, 1], scalars: [1, 2, 3, 6])   // mean 3, biased variance 3.5
        let trainingOutput = try bn(x, training: true)
        let weights = bn.getWeights()   // gamma, beta, moving mean, moving variance
        XCTAssertEqual(weights[2].scalars[0], 1.5, accuracy: 1e-6)          // 0·0.5 + 3·0.5
        XCTAssertEqual(weights[3].scalars[0], 2.25, accuracy: 1e-6)         // 1·0.5 + 3.5·0.5
        XCTAssertEqual(trainingOutput.scalars[0], (1 - 3) / (3.5 + 1e-3).squareRoot(), accuracy: 1e-5)
        let inference = try bn(x)
        XCTAssertEqual(inference.scalars[3], (6 - 1.5) / (2.25 + 1e-3).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(bn.getWeights()[2].scalars[0], 1.5, "inference must not move the statistics")
    }

    func testNormalizationErrors() throws {
        assertThrowsMessage(try BatchNormalization(axis: 1).build(inputShape: [4, 4, 3]),
                            contains: ["BatchNormalization", "axis 1", "[4, 4, 3]"])
        assertThrowsMessage(try LayerNormalization(axis: 0).build(inputShape: [4, 3]),
                            contains: ["LayerNormalization", "axis 0"])
    }
}
