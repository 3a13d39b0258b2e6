import Kestrel
import KestrelAllocationCounter
@testable import KestrelLearn
import XCTest

/// The estimators train through Kestrel's compiled plan with their own loss (L2 penalty in
/// the reported value) and optimizer (scikit-learn's Adam and SGD): a step must still touch
/// the heap only while warming up, as DESIGN.md asks of every training step.
final class MLPAllocationTests: XCTestCase {
    func testEstimatorTrainingStepAllocatesNothing() throws {
        #if DEBUG
        throw XCTSkip("allocation counts are checked in release builds (swift test -c release)")
        #endif
        XCTAssertNotEqual(kestrel_allocation_counter_active(), 0, "allocation counter inactive")
        let samples = 48
        let x = Tensor(shape: [samples, 5], scalars: (0..<(samples * 5)).map { Float(($0 * 7) % 11) / 11 })
        let labels = (0..<samples).map { $0 % 3 }
        for solver in MLPSolver.allCases {
            let clf = MLPClassifier<Int>(hiddenLayerSizes: [16], solver: solver, alpha: 1e-3, batchSize: 16,
                                         maxIter: 2, randomState: 1)
            try clf.fit(x, labels)
            let model = try XCTUnwrap(clf.engine.model)
            let y = Tensor(labels: labels)
            try model.runTrainingSteps(x, y, batchSize: 16, count: 3)   // warm-up
            let before = kestrel_allocation_count()
            try model.runTrainingSteps(x, y, batchSize: 16, count: 50)
            let fifty = kestrel_allocation_count() - before
            // runTrainingSteps allocates a fixed handful per call (its index array): compare
            // 50 steps with 1, so that any per-step allocation shows up 49 times more.
            let beforeOne = kestrel_allocation_count()
            try model.runTrainingSteps(x, y, batchSize: 16, count: 1)
            let one = kestrel_allocation_count() - beforeOne
            // A stray allocation by another thread of the test runner can add one to either count.
            XCTAssertLessThanOrEqual(fifty, one + 2, "\(solver): allocations grow with the number of steps (50: \(fifty), 1: \(one))")
        }
    }
}
