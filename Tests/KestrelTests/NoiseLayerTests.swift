@testable import Kestrel
import XCTest

/// GaussianNoise, GaussianDropout and AlphaDropout: gradients with a fixed draw, the
/// identity in inference, and the statistics of their training draws (Keras's formulas).
final class NoiseLayerTests: XCTestCase {
    func testGradientsWithAFixedDraw() throws {
        for training in [true, false] {
            try LayerHarness(GaussianNoise(0.3), inputShapes: [[4, 3]], batch: 2, training: training).check(label: " \(training)")
            try LayerHarness(GaussianDropout(0.3), inputShapes: [[4, 3]], batch: 2, training: training).check(label: " \(training)")
            try LayerHarness(AlphaDropout(0.3), inputShapes: [[4, 3]], batch: 2, training: training).check(label: " \(training)")
        }
    }

    func testInferenceIsTheIdentity() throws {
        let x = Tensor(shape: [2, 3], scalars: [1, -2, 3, 0.5, 0, -1])
        for layer in [GaussianNoise(0.5), GaussianDropout(0.5), AlphaDropout(0.5), Identity()] as [Layer] {
            XCTAssertEqual(try layer(x).scalars, x.scalars, layer.className)
            XCTAssertTrue(layer.isIdentity(training: false), layer.className)
        }
        XCTAssertTrue(Identity().isIdentity(training: true))
    }

    /// Mean and standard deviation of a tensor's scalars.
    func moments(_ t: Tensor) -> (mean: Double, sd: Double) {
        let v = t.scalars.map(Double.init), n = Double(v.count)
        let mean = v.reduce(0, +) / n
        return (mean, (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot())
    }

    func testGaussianNoiseAddsNoiseOfTheGivenSpread() throws {
        let x = Tensor(shape: [200, 100], scalars: Array(repeating: 2, count: 20_000))
        let layer = GaussianNoise(0.25, seed: 4)
        let y = try layer(x, training: true)
        let (mean, sd) = moments(y)
        XCTAssertEqual(mean, 2, accuracy: 0.01)
        XCTAssertEqual(sd, 0.25, accuracy: 0.01)
        // Seeded layers repeat; successive calls draw afresh.
        XCTAssertEqual(try GaussianNoise(0.25, seed: 4)(x, training: true).scalars, y.scalars)
        XCTAssertNotEqual(try layer(x, training: true).scalars, y.scalars)
    }

    func testGaussianDropoutMultipliesByNoiseOfMeanOne() throws {
        let x = Tensor(shape: [200, 100], scalars: Array(repeating: -3, count: 20_000))
        let rate: Float = 0.2
        let (mean, sd) = moments(try GaussianDropout(rate, seed: 9)(x, training: true))
        XCTAssertEqual(mean, -3, accuracy: 0.02)
        XCTAssertEqual(sd, 3 * Double((rate / (1 - rate)).squareRoot()), accuracy: 0.02)
    }

    func testAlphaDropoutKeepsZeroMeanAndUnitVariance() throws {
        // Standard normal inputs stay standard normal in distribution (the point of the layer).
        var rng = RandomGenerator(seed: 21)
        var values = [Float](repeating: 0, count: 40_000)
        values.withUnsafeMutableBufferPointer { rng.fillNormal($0, mean: 0, stddev: 1) }
        let x = Tensor(shape: [400, 100], scalars: values)
        let layer = AlphaDropout(0.3, seed: 2)
        let y = try layer(x, training: true)
        let (mean, sd) = moments(y)
        XCTAssertEqual(mean, 0, accuracy: 0.02)
        XCTAssertEqual(sd, 1, accuracy: 0.02)
        // Every output is either a·x + b (kept) or the dropped value, about 30 % of them.
        let (a, b) = layer.affine
        let dropped = a * Float(AlphaDropout.droppedValue) + b
        var droppedCount = 0
        for (xi, yi) in zip(x.scalars, y.scalars) where abs(yi - (a * xi + b)) > 1e-5 {
            XCTAssertEqual(yi, dropped, "neither kept nor dropped")
            droppedCount += 1
        }
        XCTAssertEqual(Double(droppedCount) / 40_000, 0.3, accuracy: 0.01)
        // Keras's constants for rate 0.3.
        XCTAssertEqual(a, 0.860_952_6, accuracy: 1e-6)
        XCTAssertEqual(b, 0.454_092_1, accuracy: 1e-6)
    }

    func testRatesAreValidated() throws {
        assertThrowsMessage(try GaussianNoise(-1).build(inputShape: [3]), contains: ["GaussianNoise", "stddev", "-1"])
        assertThrowsMessage(try GaussianDropout(1).build(inputShape: [3]), contains: ["GaussianDropout", "rate", "1.0"])
        assertThrowsMessage(try AlphaDropout(-0.1).build(inputShape: [3]), contains: ["AlphaDropout", "rate", "-0.1"])
    }
}
