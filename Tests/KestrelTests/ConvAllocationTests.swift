@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// A CNN training step (im2col columns, pooling indices, BN statistics, dropout masks, weight
/// penalties and constraints) must not touch the heap once its plan exists.
final class ConvAllocationTests: XCTestCase {
    func testCNNTrainingStepAllocatesNothing() throws {
        let model = Sequential {
            Input(shape: [12, 12, 1])
            Conv2D(4, kernelSize: 3, padding: .same, activation: .relu, kernelRegularizer: .l2(1e-3),
                   kernelConstraint: .maxNorm(2, axis: 3))
            BatchNormalization()
            MaxPooling2D()
            SpatialDropout2D(0.2)
            DepthwiseConv2D(kernelSize: 3, depthMultiplier: 2)
            Conv2DTranspose(3, kernelSize: 2, strides: 2)
            AveragePooling2D(poolSize: 2)
            LayerNormalization()
            GlobalAveragePooling2D()
            Dropout(0.3)
            Dense(3, kernelConstraint: .nonNeg)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let x = Tensor.randomUniform([16, 12, 12, 1])
        let y = Tensor(labels: (0..<16).map { $0 % 3 })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 8)
    }

    /// Per-channel and per-unit scratch grows with the layer: wide layers must not allocate
    /// either (stack scratch over about a kilobyte goes to the heap).
    func testWideLayersAllocateNothing() throws {
        let model = Sequential {
            Input(shape: [4, 4, 1])
            Conv2D(600, kernelSize: 3, padding: .same, kernelConstraint: .maxNorm(2, axis: 3))
            BatchNormalization()
            GlobalAveragePooling2D()
            Dense(700, kernelConstraint: .unitNorm)
            Dense(3, kernelConstraint: .maxNorm(1, axis: 1))
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = Tensor.randomUniform([16, 4, 4, 1])
        let y = Tensor(labels: (0..<16).map { $0 % 3 })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 8)
    }
}
