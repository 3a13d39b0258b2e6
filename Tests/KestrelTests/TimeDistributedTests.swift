@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// TimeDistributed: shapes and errors, gradients through several wrapped layers, each step
/// computed as the wrapped layer computes one sample, shared weights, and a training step
/// that allocates nothing.
final class TimeDistributedTests: XCTestCase {
    func testShapesWeightsAndErrors() throws {
        let conv = TimeDistributed(Conv2D(4, kernelSize: 3))
        XCTAssertEqual(try conv.build(inputShape: [5, 8, 8, 2]), [5, 6, 6, 4])
        XCTAssertEqual(conv.weightSpecs.map(\.shape), [[3, 3, 2, 4], [4]])
        XCTAssertEqual(try TimeDistributed(Flatten()).build(inputShape: [3, 4, 2]), [3, 8])
        XCTAssertEqual(try TimeDistributed(Dense(7)).build(inputShape: [3, 4]), [3, 7])
        assertThrowsMessage(try TimeDistributed(Dense(2)).build(inputShape: [4]), contains: ["TimeDistributed", "timesteps", "[4]"])
        assertThrowsMessage(try TimeDistributed(Conv2D(2, kernelSize: 3)).build(inputShape: [4, 5, 5]),
                            contains: ["Conv2D"])
    }

    func testGradients() throws {
        Kestrel.setRandomSeed(7)
        try LayerHarness(TimeDistributed(Dense(3, activation: .tanh)), inputShapes: [[4, 5]], batch: 2).check(label: " dense")
        try LayerHarness(TimeDistributed(Conv2D(2, kernelSize: 2, padding: .same)), inputShapes: [[3, 4, 4, 2]], batch: 2)
            .check(label: " conv2d")
        try LayerHarness(TimeDistributed(MaxPooling2D(poolSize: 2)), inputShapes: [[2, 4, 4, 3]], batch: 2).check(label: " pooling")
        // Step by step in training (each step's own batch statistics), all at once in inference.
        try LayerHarness(TimeDistributed(BatchNormalization()), inputShapes: [[3, 4]], batch: 3, training: true)
            .check(label: " batch normalization, training")
        try LayerHarness(TimeDistributed(BatchNormalization()), inputShapes: [[3, 2, 2]], batch: 2, training: false)
            .check(label: " batch normalization, inference")
        try LayerHarness(TimeDistributed(Dropout(0.3)), inputShapes: [[3, 4]], batch: 2, training: true).check(label: " dropout")
    }

    func testEachStepIsTheWrappedLayerOnThatFrame() throws {
        Kestrel.setRandomSeed(8)
        let wrapped = TimeDistributed(Conv2D(3, kernelSize: 2, activation: .relu))
        let frames = Tensor.randomUniform([2, 4, 5, 5, 2], minval: -1, maxval: 1)
        let y = try wrapped(frames)
        XCTAssertEqual(y.shape, [2, 4, 4, 4, 3])
        // The same convolution, with the wrapper's weights, on each frame alone.
        let conv = Conv2D(3, kernelSize: 2, activation: .relu)
        try conv.build(inputShape: [5, 5, 2])
        try conv.setWeights(wrapped.getWeights())
        XCTAssertEqual(wrapped.layer.getWeights(), wrapped.getWeights(), "the wrapped layer shares the wrapper's weights")
        let frameSize = 5 * 5 * 2, outSize = 4 * 4 * 3
        for b in 0..<2 {
            for t in 0..<4 {
                let start = (b * 4 + t) * frameSize
                let frame = Tensor(shape: [1, 5, 5, 2], scalars: Array(frames.scalars[start..<(start + frameSize)]))
                let expected = try conv(frame).scalars
                let outStart = (b * 4 + t) * outSize
                XCTAssertEqual(Array(y.scalars[outStart..<(outStart + outSize)]), expected, "sample \(b) step \(t)")
            }
        }
    }

    func testVideoClassifierTrainsAndItsStepAllocatesNothing() throws {
        Kestrel.setRandomSeed(9)
        let model = Sequential {
            Input(shape: [4, 6, 6, 1])
            TimeDistributed(Conv2D(4, kernelSize: 3, activation: .relu, kernelRegularizer: .l2(0.01)))
            TimeDistributed(BatchNormalization())
            TimeDistributed(MaxPooling2D(poolSize: 2))
            TimeDistributed(Flatten())
            TimeDistributed(Dropout(0.2))
            GRU(5)
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        // Class 1: a bright square moves right over the frames; class 0: it stays.
        var x = Tensor.zeros([32, 4, 6, 6, 1])
        var labels: [Float] = []
        for s in 0..<32 {
            let moving = s % 2, row = s % 4
            for t in 0..<4 {
                let column = moving == 1 ? t : 1
                for dy in 0..<2 { for dx in 0..<2 { x.scalars[(((s * 4 + t) * 6 + row + dy) * 6 + column + dx)] = 1 } }
            }
            labels.append(Float(moving))
        }
        let y = Tensor(shape: [32], scalars: labels)
        let history = try model.fit(x, y, batchSize: 8, epochs: 30, verbose: 0)
        XCTAssertGreaterThan(history.history["accuracy"]!.last!, 0.95)
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 8)
    }
}
