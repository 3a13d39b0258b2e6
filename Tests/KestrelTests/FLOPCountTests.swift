@testable import Kestrel
import XCTest

/// The arithmetic the plan counts (`Layer.flops`, `Model.flops`) against hand-computed values:
/// a multiply-add is two operations; forward, weight gradients and input gradients each cost
/// one product of the same size.
final class FLOPCountTests: XCTestCase {
    private func layerFLOPs(_ layer: Layer, input: [Int], batch: Int) throws -> LayerFLOPs {
        _ = try layer.build(inputShape: input)
        return layer.flops(batch: batch, inputShapes: [input])
    }

    func testDense() throws {
        let f = try layerFLOPs(Dense(128), input: [784], batch: 32)
        XCTAssertEqual(f, LayerFLOPs(forward: 6_422_528, weightGradients: 6_422_528, inputGradients: 6_422_528))
        // On a sequence, every step is a row of the product.
        XCTAssertEqual(try layerFLOPs(Dense(4), input: [7, 3], batch: 2).forward, 2 * 2 * 7 * 3 * 4)
    }

    func testConvolutions() throws {
        // Output 26×26, window 3×3×1, 32 filters.
        XCTAssertEqual(try layerFLOPs(Conv2D(32, kernelSize: 3), input: [28, 28, 1], batch: 128).forward,
                       2 * 128 * 26 * 26 * 9 * 32)
        // Strides 2 with "same" padding: output 5×5.
        XCTAssertEqual(try layerFLOPs(Conv2D(8, kernelSize: 3, strides: 2, padding: .same), input: [9, 9, 2], batch: 3).forward,
                       2 * 3 * 25 * 18 * 8)
        // Two groups: each filter sees half of the 4 channels.
        XCTAssertEqual(try layerFLOPs(Conv2D(6, kernelSize: 3, groups: 2), input: [6, 6, 4], batch: 2).forward,
                       2 * 2 * 16 * 18 * 6)
        // Dilation 2 widens the window but not its taps: output 2×2.
        XCTAssertEqual(try layerFLOPs(Conv2D(5, kernelSize: 3, dilationRate: 2), input: [6, 6, 1], batch: 1).forward,
                       2 * 4 * 9 * 5)
        XCTAssertEqual(try layerFLOPs(Conv1D(4, kernelSize: 3), input: [10, 2], batch: 2).forward, 2 * 2 * 8 * 6 * 4)
        // One 3×3 window per channel and multiplier.
        XCTAssertEqual(try layerFLOPs(DepthwiseConv2D(kernelSize: 3, depthMultiplier: 2), input: [8, 8, 3], batch: 2).forward,
                       2 * 2 * 36 * 9 * 3 * 2)
        // Depthwise, then a 1×1 mixing the 3 channels into 4.
        XCTAssertEqual(try layerFLOPs(SeparableConv2D(4, kernelSize: 3), input: [8, 8, 3], batch: 2).forward,
                       2 * 2 * 36 * (9 * 3 + 3 * 4))
        // Each input pixel spreads over a 2×2 window of 4 filters.
        XCTAssertEqual(try layerFLOPs(Conv2DTranspose(4, kernelSize: 2, strides: 2), input: [5, 5, 3], batch: 2).forward,
                       2 * 2 * 25 * 4 * 3 * 4)
        XCTAssertEqual(try layerFLOPs(MaxPooling2D(), input: [8, 8, 3], batch: 2), LayerFLOPs())
    }

    func testRecurrentAndAttention() throws {
        // 28 steps of 28 features into 4·128 gates, plus the recurrent 128 → 4·128 per step.
        let lstm = try layerFLOPs(LSTM(128), input: [28, 28], batch: 2)
        XCTAssertEqual(lstm.forward, 2 * 2 * 28 * 512 * (28 + 128))
        XCTAssertEqual(lstm.inputGradients, 2 * 2 * 28 * 512 * 28)
        // Query 3×8, value 5×6: projections to 2 heads of 4, scores 3×5 per head, output 8.
        let mha = MultiHeadAttention(numHeads: 2, keyDim: 4)
        _ = try mha.build(inputShapes: [[3, 8], [5, 6]])
        let f = mha.flops(batch: 1, inputShapes: [[3, 8], [5, 6]])
        let projections = 3 * 8 * 8 + 5 * 6 * 8 + 5 * 6 * 8, attention = 2 * 3 * 5 * (4 + 4), output = 3 * 8 * 8
        XCTAssertEqual(f.forward, 2 * (projections + attention + output))
    }

    /// A training step counts the first layer's input gradient out (nothing needs it).
    func testModelTrainingStepOfTheTutorialAndTheConvnet() throws {
        let mlp = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
        let first = 2 * 32 * 784 * 128, second = 2 * 32 * 128 * 10
        XCTAssertEqual(try mlp.flops(batchSize: 32, training: false), first + second)
        XCTAssertEqual(try mlp.flops(batchSize: 32), 2 * first + 3 * second)

        let convnet = Sequential {
            Input(shape: [28, 28, 1])
            Conv2D(32, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Conv2D(64, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Flatten()
            Dropout(0.5)
            Dense(10, activation: .softmax)
        }
        let c1 = 2 * 128 * 26 * 26 * 9 * 32, c2 = 2 * 128 * 11 * 11 * 288 * 64, d = 2 * 128 * 1600 * 10
        XCTAssertEqual(try convnet.flops(batchSize: 128), 2 * c1 + 3 * c2 + 3 * d)
        XCTAssertThrowsError(try convnet.flops(batchSize: 0))

        // The benchmark's floor runs the products a step makes, the direct first convolution's
        // counted as the im2col products it replaces: the same operations as the plan counts.
        convnet.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [])
        let x = Tensor.randomUniform([128, 28, 28, 1]), y = Tensor(labels: (0..<128).map { $0 % 10 })
        let traced = try Kernels.traceGEMMs { try convnet.runTrainingSteps(x, y, batchSize: 128, count: 1) }
        XCTAssertEqual(traced.map(\.flops).reduce(0, +), 2 * c1 + 3 * c2 + 3 * d)
        // The convolutions' tile products are shared out over the threads; the Dense layer's split.
        XCTAssertEqual(traced.filter(\.shared).map(\.flops).reduce(0, +), 2 * c1 + 3 * c2)
    }
}
