@testable import Kestrel
import XCTest

/// The initialisers' distributions and the orthogonal initialiser's orthogonality.
final class InitializerTests: XCTestCase {
    func sample(_ initializer: Initializer, _ shape: [Int], seed: UInt64 = 3) -> [Float] {
        var values = [Float](repeating: .nan, count: shape.reduce(1, *))
        var rng = RandomGenerator(seed: seed)
        values.withUnsafeMutableBufferPointer { initializer.fill($0, shape: shape, generator: &rng) }
        return values
    }

    func moments(_ v: [Float]) -> (mean: Float, std: Float) {
        let mean = v.reduce(0, +) / Float(v.count)
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(v.count)
        return (mean, variance.squareRoot())
    }

    func testOrthogonalGivesOrthonormalRowsOrColumns() {
        for (shape, gain) in [([6, 4], Float(1)), ([3, 3, 2, 5], 1), ([4, 9], 2), ([5, 5], 0.5)] {
            let w = sample(.orthogonal(gain: gain), shape)
            let cols = shape.last!, rows = w.count / cols
            // Tall (or square): columns orthonormal; wide: rows orthonormal; times gain².
            let tall = rows >= cols
            let count = tall ? cols : rows
            for a in 0..<count {
                for b in 0..<count {
                    var dot: Float = 0
                    for k in 0..<(tall ? rows : cols) {
                        dot += tall ? w[k * cols + a] * w[k * cols + b] : w[a * cols + k] * w[b * cols + k]
                    }
                    XCTAssertEqual(dot, a == b ? gain * gain : 0, accuracy: 1e-4, "shape \(shape) (\(a), \(b))")
                }
            }
        }
        XCTAssertEqual(Initializer.orthogonal, .orthogonal(gain: 1))
    }

    func testTruncatedNormalStaysWithinTwoStandardDeviations() {
        let v = sample(.truncatedNormal(mean: 1, stddev: 0.5), [20_000])
        XCTAssertTrue(v.allSatisfy { abs($0 - 1) <= 1.0 })
        let (mean, std) = moments(v)
        XCTAssertEqual(mean, 1, accuracy: 0.01)
        // A normal truncated at ±2σ keeps 0.8796 of its standard deviation.
        XCTAssertEqual(std, 0.5 * 0.8796, accuracy: 0.01)
        XCTAssertEqual(Initializer.truncatedNormal, .truncatedNormal(mean: 0, stddev: 0.05))
    }

    func testVarianceScalingFamiliesUseKerasFans() {
        // A conv kernel (3, 3, 4, 8): fan in 36, fan out 72.
        let shape = [3, 3, 4, 8]
        let glorot = sample(.glorotUniform, shape)
        XCTAssertLessThanOrEqual(glorot.map(abs).max()!, (6.0 / 108).squareRoot())
        let he = sample(.heNormal, [30, 40, 4, 8])
        XCTAssertEqual(moments(he).std, (2.0 / Float(30 * 40 * 4)).squareRoot(), accuracy: 0.002)
        let lecun = sample(.lecunUniform, shape)
        XCTAssertLessThanOrEqual(lecun.map(abs).max()!, (3.0 / 36).squareRoot())
        XCTAssertEqual(sample(.constant(0.3), [4]), [0.3, 0.3, 0.3, 0.3])
        XCTAssertEqual(sample(.ones, [2]), [1, 1])
        XCTAssertEqual(sample(.zeros, [2]), [0, 0])
        let uniform = sample(.randomUniform, [1000])
        XCTAssertTrue(uniform.allSatisfy { abs($0) <= 0.05 })
    }

    func testLayersAcceptTheNewInitialisers() throws {
        let conv = Conv2D(8, kernelSize: 3, kernelInitializer: .orthogonal)
        try conv.build(inputShape: [5, 5, 4])
        XCTAssertEqual(conv.getWeights()[0].shape, [3, 3, 4, 8])
        XCTAssertTrue(conv.getWeights()[0].scalars.allSatisfy(\.isFinite))
    }
}
