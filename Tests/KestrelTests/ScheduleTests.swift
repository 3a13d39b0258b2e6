import Foundation
@testable import Kestrel
import XCTest

/// Schedule values worked out by hand from Keras's formulas.
final class ScheduleTests: XCTestCase {
    func testExponentialDecay() throws {
        let smooth = try ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5)
        XCTAssertEqual(smooth(0), 0.1, accuracy: 1e-8)
        XCTAssertEqual(smooth(5), 0.1 * Float(0.5.squareRoot()), accuracy: 1e-7)
        XCTAssertEqual(smooth(20), 0.025, accuracy: 1e-8)
        let stairs = try ExponentialDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5, staircase: true)
        XCTAssertEqual(stairs(9), 0.1, accuracy: 1e-8)
        XCTAssertEqual(stairs(10), 0.05, accuracy: 1e-8)
        XCTAssertThrowsError(try ExponentialDecay(initialLearningRate: 0.1, decaySteps: 0, decayRate: 0.5))
    }

    func testPiecewiseConstantDecayBoundariesAreInclusiveBelow() throws {
        let s = try PiecewiseConstantDecay(boundaries: [100, 110], values: [1.0, 0.5, 0.1])
        XCTAssertEqual([0, 100, 101, 110, 111, 10_000].map { s($0) }, [1.0, 1.0, 0.5, 0.5, 0.1, 0.1])
        XCTAssertThrowsError(try PiecewiseConstantDecay(boundaries: [1, 2], values: [1, 2])) {
            XCTAssertTrue("\($0)".contains("PiecewiseConstantDecay"))
        }
        XCTAssertThrowsError(try PiecewiseConstantDecay(boundaries: [5, 2], values: [1, 2, 3]))
    }

    func testPolynomialDecay() throws {
        let linear = try PolynomialDecay(initialLearningRate: 0.1, decaySteps: 10, endLearningRate: 0.01)
        XCTAssertEqual(linear(0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(linear(5), 0.055, accuracy: 1e-7)
        XCTAssertEqual(linear(50), 0.01, accuracy: 1e-7)
        let square = try PolynomialDecay(initialLearningRate: 1, decaySteps: 10, endLearningRate: 0, power: 2)
        XCTAssertEqual(square(5), 0.25, accuracy: 1e-7)
        // cycle: at step 15 the horizon is 20, so p = 0.75.
        let cycling = try PolynomialDecay(initialLearningRate: 1, decaySteps: 10, endLearningRate: 0, cycle: true)
        XCTAssertEqual(cycling(15), 0.25, accuracy: 1e-7)
        XCTAssertEqual(cycling(0), 1, accuracy: 1e-7)
    }

    func testInverseTimeDecay() throws {
        let s = try InverseTimeDecay(initialLearningRate: 0.1, decaySteps: 1, decayRate: 0.5)
        XCTAssertEqual(s(2), 0.05, accuracy: 1e-8)
        let stairs = try InverseTimeDecay(initialLearningRate: 0.1, decaySteps: 10, decayRate: 1, staircase: true)
        XCTAssertEqual(stairs(9), 0.1, accuracy: 1e-8)
        XCTAssertEqual(stairs(10), 0.05, accuracy: 1e-8)
    }

    func testCosineDecayWithAndWithoutWarmup() throws {
        let s = try CosineDecay(initialLearningRate: 0.1, decaySteps: 100, alpha: 0.1)
        XCTAssertEqual(s(0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(s(50), 0.1 * (0.9 * 0.5 + 0.1), accuracy: 1e-7)
        XCTAssertEqual(s(100), 0.01, accuracy: 1e-7)
        XCTAssertEqual(s(1000), 0.01, accuracy: 1e-7)
        let warm = try CosineDecay(initialLearningRate: 0, decaySteps: 100, warmupTarget: 0.1, warmupSteps: 10)
        XCTAssertEqual(warm(0), 0, accuracy: 1e-8)
        XCTAssertEqual(warm(5), 0.05, accuracy: 1e-7)
        XCTAssertEqual(warm(10), 0.1, accuracy: 1e-7)
        XCTAssertEqual(warm(60), 0.05, accuracy: 1e-7)
        XCTAssertEqual(warm(110), 0, accuracy: 1e-7)
        XCTAssertEqual(warm(500), 0, accuracy: 1e-7)
    }

    func testCosineDecayRestarts() throws {
        // Periods of 10, 20, 40 steps; each restart starts at mMul times the last start.
        let s = try CosineDecayRestarts(initialLearningRate: 1, firstDecaySteps: 10, tMul: 2, mMul: 0.5)
        XCTAssertEqual(s(0), 1, accuracy: 1e-6)
        XCTAssertEqual(s(5), 0.5, accuracy: 1e-6)
        XCTAssertEqual(s(10), 0.5, accuracy: 1e-6)   // restart 1 at half height
        XCTAssertEqual(s(20), 0.25, accuracy: 1e-6)  // halfway through the 20-step period
        XCTAssertEqual(s(30), 0.25, accuracy: 1e-6)  // restart 2
        let even = try CosineDecayRestarts(initialLearningRate: 1, firstDecaySteps: 10, tMul: 1, alpha: 0.2)
        XCTAssertEqual(even(25), 0.2 + 0.8 * 0.5, accuracy: 1e-6)
    }

    func testOptimizersEvaluateTheScheduleAtEachStep() throws {
        let schedule = try PiecewiseConstantDecay(boundaries: [0, 1], values: [1, 0.5, 0.25])
        let model = Sequential { Dense(1, useBias: false, inputShape: [1]) }
        model.compile(optimizer: SGD(learningRate: schedule), loss: MeanSquaredError())
        try model.setWeights([Tensor(shape: [1, 1], scalars: [0])])
        // Loss (w·1 - 1)²: gradient 2(w - 1). Rates 1, 0.5, 0.25 at steps 0, 1, 2.
        var w: Float = 0
        var rates: [Float] = []
        for _ in 0..<3 {
            try model.trainOnBatch(Tensor(shape: [1, 1], scalars: [1]), Tensor(shape: [1, 1], scalars: [1]))
            rates.append(model.optimizer!.learningRate)
            let rate = rates.last!
            w -= rate * 2 * (w - 1)
            XCTAssertEqual(try model.getWeights()[0].scalars[0], w, accuracy: 1e-6)
        }
        XCTAssertEqual(rates, [1, 0.5, 0.25])
        XCTAssertEqual(model.optimizer!.iterations, 3)
        // Every optimizer accepts a schedule and keeps its Float initialiser.
        let decay = try ExponentialDecay(initialLearningRate: 0.2, decaySteps: 1, decayRate: 0.5)
        for optimizer in [Adam(learningRate: decay), AdamW(learningRate: decay), RMSprop(learningRate: decay),
                          Adagrad(learningRate: decay), SGD(learningRate: decay, momentum: 0.9)] as [Optimizer] {
            XCTAssertEqual(optimizer.learningRate, 0.2, accuracy: 1e-8, optimizer.name)
            XCTAssertNotNil(optimizer.learningRateSchedule)
        }
        XCTAssertNil(Adam(learningRate: 0.01).learningRateSchedule)
    }
}
