@testable import Kestrel
import Foundation
import XCTest

/// The vectorised exp, sigmoid, tanh, swish and softmax (CKestrelKernels' vmath.h) against
/// double-precision references, over the whole float range they are used on.
final class VectorMathTests: XCTestCase {
    /// Inputs from -100 to 100 in uneven steps, tiny values around 0, and a length that is not a
    /// multiple of the vector width, so that the scalar tail runs too.
    static let inputs: [Float] = {
        var values: [Float] = []
        var x: Float = -100
        while x <= 100 { values.append(x); x += 0.0137 }
        for e in stride(from: -30, through: -1, by: 1) { values += [Float(pow(2, Double(e))), -Float(pow(2, Double(e)))] }
        values += [0, 0.625, -0.625, 0.6249999, 87, -87, 88, 88.5, -87.5, -104]
        return values
    }()

    /// Applies `f` in place and out of place, checks both agree, and returns the largest error
    /// relative to the reference. Where the reference is below 1e-30 in magnitude, the result
    /// need only be too: near the bottom of the float range the vector code flushes toward 0
    /// (swish of -89 is -2e-37 exactly, 0 here and in libm's `x / (1 + expf(-x))`).
    func worstError(_ f: ActivationFunction, _ reference: (Double) -> Double) -> Double {
        let x = Self.inputs
        var y = [Float](repeating: .nan, count: x.count)
        var inPlace = x
        x.withUnsafeBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { f.apply(xs.baseAddress!, $0.baseAddress!, count: x.count, rowLength: x.count) }
        }
        inPlace.withUnsafeMutableBufferPointer {
            f.apply($0.baseAddress!, $0.baseAddress!, count: x.count, rowLength: x.count)
        }
        XCTAssertEqual(y, inPlace, "\(f): in place differs")
        var worst = 0.0
        for (xi, yi) in zip(x, y) {
            let r = reference(Double(xi))
            if abs(r) < 1e-30 {
                XCTAssertLessThan(abs(yi), 1e-30, "\(f)(\(xi))")
            } else if r.isInfinite {
                XCTAssertEqual(Double(yi), r, "\(f)(\(xi))")
            } else {
                worst = max(worst, abs(Double(yi) - r) / abs(r))
            }
        }
        return worst
    }

    func testSigmoidTanhExpSwishMatchDoublePrecision() {
        // A few units in the last place (2^-23 ≈ 1.2e-7).
        XCTAssertLessThan(worstError(.tanh) { Foundation.tanh($0) }, 4e-7)
        XCTAssertLessThan(worstError(.sigmoid) { 1 / (1 + Foundation.exp(-$0)) }, 4e-7)
        XCTAssertLessThan(worstError(.swish) { $0 / (1 + Foundation.exp(-$0)) }, 4e-7)
        XCTAssertLessThan(worstError(.exponential) { Foundation.exp($0) > Double(Float.greatestFiniteMagnitude) ? .infinity : Foundation.exp($0) }, 4e-7)
    }

    func testSaturationAndSpecialValues() {
        let x: [Float] = [-200, 200, .infinity, -.infinity, 0]
        func run(_ f: ActivationFunction) -> [Float] {
            var y = x
            y.withUnsafeMutableBufferPointer { f.apply($0.baseAddress!, $0.baseAddress!, count: x.count, rowLength: x.count) }
            return y
        }
        XCTAssertEqual(run(.sigmoid), [0, 1, 1, 0, 0.5])
        XCTAssertEqual(run(.tanh), [-1, 1, 1, -1, 0])
        XCTAssertEqual(run(.exponential), [0, .infinity, .infinity, 0, 1])
        var nan: [Float] = [.nan]
        nan.withUnsafeMutableBufferPointer { ActivationFunction.tanh.apply($0.baseAddress!, $0.baseAddress!, count: 1, rowLength: 1) }
        XCTAssertTrue(nan[0].isNaN)
    }

    func testSoftmaxRowsMatchDoublePrecision() {
        // Rows of several widths (below, at and beyond the eight lanes, with a tail), one with
        // values far apart.
        for columns in [1, 3, 8, 10, 37] {
            let rows = 5
            var x = [Float](repeating: 0, count: rows * columns)
            var generator = RandomGenerator(seed: UInt64(columns))
            x.withUnsafeMutableBufferPointer { generator.fillUniform($0, low: -20, high: 20) }
            x[0] = 90
            var y = x
            y.withUnsafeMutableBufferPointer { Kernels.softmaxRows($0.baseAddress!, $0.baseAddress!, rows: rows, columns: columns) }
            for r in 0..<rows {
                // The shifted values as the kernel forms them (in float): what is left to check
                // is exp, the sum and the division.
                let row = x[(r * columns)..<((r + 1) * columns)]
                let m = row.max()!
                let shifted = row.map { Double($0 - m) }
                let sum = shifted.map { Foundation.exp($0) }.reduce(0, +)
                for j in 0..<columns {
                    let reference = Foundation.exp(shifted[j]) / sum
                    XCTAssertEqual(Double(y[r * columns + j]), reference, accuracy: 1e-6 * max(reference, 1e-30) + 1e-37,
                                   "columns \(columns) row \(r) column \(j)")
                }
            }
        }
    }
}
