@testable import Kestrel
import XCTest

/// Gradient checks and behaviour of the normalization layers (Batch, Layer, Group, Unit).
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

    func testGroupNormalizationGradients() throws {
        try LayerHarness(GroupNormalization(groups: 2), inputShapes: [[3, 2, 4]], batch: 2).check(label: " 2 groups")
        try LayerHarness(GroupNormalization(groups: -1, center: false), inputShapes: [[5, 3]], batch: 2)
            .check(label: " instance, no center")
        try LayerHarness(GroupNormalization(groups: 1, scale: false), inputShapes: [[6]], batch: 3).check(label: " 1 group, no scale")
    }

    func testGroupNormalizationNormalisesEachGroupOfEachSample() throws {
        let layer = GroupNormalization(groups: 2, epsilon: 0)
        // One sample, 2 positions × 4 channels: group 0 is channels 0–1, group 1 channels 2–3.
        let x = Tensor(shape: [1, 2, 4], scalars: [1, 3, 10, 10, 5, 7, 20, 40])
        let y = try layer(x).scalars
        XCTAssertEqual(layer.weightSpecs.map(\.name), ["gamma", "beta"])
        // Group 0: 1, 3, 5, 7 (mean 4, σ √5); group 1: 10, 10, 20, 40 (mean 20, σ √150).
        let r5 = Float(5).squareRoot(), r150 = Float(150).squareRoot()
        let expected: [Float] = [-3 / r5, -1 / r5, -10 / r150, -10 / r150, 1 / r5, 3 / r5, 0, 20 / r150]
        for (a, e) in zip(y, expected) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        XCTAssertEqual(try GroupNormalization(groups: -1).build(inputShape: [3, 3, 6]), [3, 3, 6])
    }

    func testUnitNormalizationGradientsAndZeroVectors() throws {
        try LayerHarness(UnitNormalization(), inputShapes: [[3, 4]], batch: 2).check()
        try LayerHarness(UnitNormalization(axis: 1), inputShapes: [[3, 4]], batch: 2).check(label: " axis 1")
        try LayerHarness(UnitNormalization(axes: [1, 2]), inputShapes: [[2, 3, 2]], batch: 2).check(label: " axes [1, 2]")
        let y = try UnitNormalization()(Tensor(shape: [2, 2], scalars: [3, -4, 0, 0])).scalars
        XCTAssertEqual(y, [0.6, -0.8, 0, 0])
        XCTAssertEqual(try UnitNormalization(axes: [-2, -1]).build(inputShape: [2, 3, 4]), [2, 3, 4])
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
        assertThrowsMessage(try GroupNormalization(groups: 3).build(inputShape: [4, 4]),
                            contains: ["GroupNormalization", "groups (3)", "channels (4)"])
        assertThrowsMessage(try GroupNormalization(groups: 8).build(inputShape: [4, 4]),
                            contains: ["GroupNormalization", "groups (8)"])
        assertThrowsMessage(try GroupNormalization(groups: 0).build(inputShape: [4]), contains: ["groups", "0"])
        assertThrowsMessage(try GroupNormalization(axis: 1).build(inputShape: [4, 4]), contains: ["GroupNormalization", "axis 1"])
        assertThrowsMessage(try UnitNormalization(axes: [1, 3]).build(inputShape: [2, 3, 4]),
                            contains: ["UnitNormalization", "adjacent"])
        assertThrowsMessage(try UnitNormalization(axis: 3).build(inputShape: [4, 2]), contains: ["UnitNormalization", "axis 3"])
    }
}
