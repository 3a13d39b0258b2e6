@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// A training step must not touch the heap once its plan exists (DESIGN.md: "a training step
/// then runs the plan with no heap allocation").
final class AllocationTests: XCTestCase {
    func testCounterSeesAllocations() throws {
        try XCTSkipUnless(kestrel_allocation_counter_active() != 0,
                          "the allocation counter is not interposed in this test binary")
        let before = kestrel_allocation_count()
        let array = [Int](repeating: 1, count: 1000)
        XCTAssertEqual(array.count, 1000)
        XCTAssertGreaterThan(kestrel_allocation_count(), before)
    }

    func testTutorialMLPTrainingStepAllocatesNothing() throws {
        let model = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let x = Tensor.randomUniform([64, 28, 28])
        let y = Tensor(labels: (0..<64).map { $0 % 10 })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 32, steps: 50)
    }

    func testEveryOptimizerAndLossStepAllocatesNothing() throws {
        let optimizers: [() -> Optimizer] = [
            { SGD(momentum: 0.9, nesterov: true) }, { Adam(amsgrad: true) }, { AdamW() },
            { RMSprop(centered: true) }, { Adagrad() }, { Adam(clipnorm: 1, clipvalue: 0.5, globalClipnorm: 1) },
        ]
        for make in optimizers {
            let model = Sequential {
                Dense(8, activation: .gelu, inputShape: [5])
                Dense(1, activation: .sigmoid)
            }
            model.compile(optimizer: make(), loss: BinaryCrossentropy(), metrics: [.accuracy])
            let x = Tensor.randomUniform([40, 5])
            let y = Tensor(labels: (0..<40).map { $0 % 2 })
            try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 16, steps: 50)
        }
    }
}
