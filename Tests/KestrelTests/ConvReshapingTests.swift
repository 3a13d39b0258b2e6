@testable import Kestrel
import XCTest

/// Gradient checks and shapes of the transposed, depthwise and separable convolutions, the
/// image reshaping layers and spatial dropout.
final class ConvReshapingTests: XCTestCase {
    func testTransposedDepthwiseAndSeparableGradients() throws {
        let cases: [(String, () -> Layer, [Int])] = [
            ("transpose 3 strides 2 valid", { Conv2DTranspose(3, kernelSize: 3, strides: 2) }, [3, 3, 2]),
            ("transpose 4 strides 2 same", { Conv2DTranspose(2, kernelSize: 4, strides: 2, padding: .same) }, [3, 2, 3]),
            ("transpose [3,2] same tanh", { Conv2DTranspose(2, kernelSize: [3, 2], padding: .same, activation: .tanh) }, [3, 3, 2]),
            ("transpose dilation 2", { Conv2DTranspose(2, kernelSize: 2, dilationRate: 2) }, [3, 3, 2]),
            ("transpose 3 strides 2 valid output padding 1",
             { Conv2DTranspose(2, kernelSize: 3, strides: 2, outputPadding: 1) }, [3, 2, 2]),
            ("transpose [3,2] strides [3,2] same output padding [2,1]",
             { Conv2DTranspose(2, kernelSize: [3, 2], strides: [3, 2], padding: .same, outputPadding: [2, 1]) }, [2, 3, 2]),
            ("transpose 4 strides 2 same output padding 0 sigmoid",
             { Conv2DTranspose(2, kernelSize: 4, strides: 2, padding: .same, outputPadding: 0, activation: .sigmoid) }, [3, 2, 2]),
            ("transpose 1d 3 strides 2", { Conv1DTranspose(3, kernelSize: 3, strides: 2) }, [4, 2]),
            ("transpose 1d 4 strides 3 same output padding 2 tanh",
             { Conv1DTranspose(2, kernelSize: 4, strides: 3, padding: .same, outputPadding: 2, activation: .tanh) }, [3, 2]),
            ("transpose 1d dilation 2 no bias", { Conv1DTranspose(2, kernelSize: 2, dilationRate: 2, useBias: false) }, [4, 3]),
            ("depthwise 3", { DepthwiseConv2D(kernelSize: 3) }, [5, 5, 3]),
            ("depthwise x2 same strides 2", { DepthwiseConv2D(kernelSize: 3, strides: 2, padding: .same, depthMultiplier: 2) }, [5, 4, 2]),
            ("depthwise dilation 2", { DepthwiseConv2D(kernelSize: 2, dilationRate: 2, useBias: false) }, [5, 5, 2]),
            ("separable 3", { SeparableConv2D(4, kernelSize: 3) }, [5, 5, 3]),
            ("separable x2 same strides 2", { SeparableConv2D(3, kernelSize: 3, strides: 2, padding: .same, depthMultiplier: 2) }, [5, 4, 2]),
            ("depthwise 1d 3", { DepthwiseConv1D(kernelSize: 3) }, [6, 3]),
            ("depthwise 1d x2 same strides 2 tanh",
             { DepthwiseConv1D(kernelSize: 3, strides: 2, padding: .same, depthMultiplier: 2, activation: .tanh) }, [7, 2]),
            ("depthwise 1d dilation 2", { DepthwiseConv1D(kernelSize: 2, dilationRate: 2, useBias: false) }, [6, 2]),
            ("separable 1d 3", { SeparableConv1D(4, kernelSize: 3) }, [6, 3]),
            ("separable 1d x2 same strides 2 no bias",
             { SeparableConv1D(3, kernelSize: 3, strides: 2, padding: .same, depthMultiplier: 2, useBias: false) }, [7, 2]),
        ]
        for (label, make, shape) in cases {
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(label: " " + label)
        }
    }

    func testReshapingLayerGradients() throws {
        let cases: [(String, () -> Layer, [Int])] = [
            ("zero padding 1", { ZeroPadding2D() }, [3, 4, 2]),
            ("zero padding asymmetric", { ZeroPadding2D(padding: [[1, 2], [0, 3]]) }, [3, 4, 2]),
            ("cropping", { Cropping2D(cropping: [[1, 0], [2, 1]]) }, [4, 6, 2]),
            ("cropping symmetric", { Cropping2D(cropping: 1) }, [4, 4, 2]),
            ("upsampling 2", { UpSampling2D() }, [3, 2, 2]),
            ("upsampling [2,3]", { UpSampling2D(size: [2, 3]) }, [2, 3, 2]),
            ("upsampling bilinear 2", { UpSampling2D(interpolation: .bilinear) }, [3, 2, 2]),
            ("upsampling bilinear [3,1]", { UpSampling2D(size: [3, 1], interpolation: .bilinear) }, [2, 3, 2]),
            ("upsampling bilinear 4 on one pixel", { UpSampling2D(size: 4, interpolation: .bilinear) }, [1, 1, 3]),
            ("permute [2,1]", { Permute([2, 1]) }, [3, 4]),
            ("permute [3,1,2]", { Permute([3, 1, 2]) }, [3, 4, 2]),
            ("repeat vector", { RepeatVector(3) }, [5]),
            ("zero padding 1d", { ZeroPadding1D(padding: [2, 1]) }, [3, 2]),
            ("cropping 1d", { Cropping1D(cropping: [1, 2]) }, [5, 2]),
            ("upsampling 1d", { UpSampling1D(size: 3) }, [3, 2]),
        ]
        for (label, make, shape) in cases {
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(label: " " + label)
        }
    }

    func testSpatialDropoutDropsWholeChannelsInTrainingOnly() throws {
        try LayerHarness(SpatialDropout2D(0.4), inputShapes: [[3, 3, 6]], batch: 3, training: true).check()
        try LayerHarness(SpatialDropout1D(0.4), inputShapes: [[5, 6]], batch: 3, training: true).check()
        try assertDropsWholeChannels(SpatialDropout2D(0.5, seed: 3), shape: [4, 3, 3, 8])
        assertThrowsMessage(try SpatialDropout2D(0.5).build(inputShape: [4, 3]), contains: ["SpatialDropout2D", "rank 3"])
        assertThrowsMessage(try SpatialDropout1D(1.5).build(inputShape: [4, 3]), contains: ["rate", "1.5"])
    }

    func testShapesAndErrors() throws {
        XCTAssertEqual(try Conv2DTranspose(4, kernelSize: 3, strides: 2).build(inputShape: [5, 5, 2]), [11, 11, 4])
        XCTAssertEqual(try Conv2DTranspose(4, kernelSize: 3, strides: 2, padding: .same).build(inputShape: [5, 5, 2]), [10, 10, 4])
        // With an output padding: (n − 1)·s + window + extra for "valid", (n − 1)·s + window mod 2
        // + extra for "same" (Keras); an even window and no extra make "same" one stride short.
        XCTAssertEqual(try Conv2DTranspose(4, kernelSize: 3, strides: 2, outputPadding: 1).build(inputShape: [5, 4, 2]), [12, 10, 4])
        XCTAssertEqual(try Conv2DTranspose(4, kernelSize: 3, strides: 2, padding: .same, outputPadding: [1, 0])
            .build(inputShape: [5, 4, 2]), [10, 7, 4])
        XCTAssertEqual(try Conv2DTranspose(4, kernelSize: 4, strides: 2, padding: .same, outputPadding: 0)
            .build(inputShape: [5, 4, 2]), [8, 6, 4])
        assertThrowsMessage(try Conv2DTranspose(4, kernelSize: 3, strides: [2, 1], outputPadding: 1).build(inputShape: [5, 5, 2]),
                            contains: ["Conv2DTranspose", "outputPadding", "less than strides", "[1, 1]"])
        assertThrowsMessage(try Conv2DTranspose(4, kernelSize: 3, strides: 2, outputPadding: [1, 1, 1]).build(inputShape: [5, 5, 2]),
                            contains: ["Conv2DTranspose", "outputPadding", "[1, 1, 1]"])
        assertThrowsMessage(try Conv2DTranspose(4, kernelSize: 2, strides: 2, padding: .same, outputPadding: 0)
            .build(inputShape: [1, 3, 2]), contains: ["Conv2DTranspose", "empty output"])
        XCTAssertEqual(try Conv1DTranspose(4, kernelSize: 3, strides: 2).build(inputShape: [5, 2]), [11, 4])
        XCTAssertEqual(try Conv1DTranspose(4, kernelSize: 3, strides: 2, padding: .same, outputPadding: 1).build(inputShape: [5, 2]), [10, 4])
        let transpose1D = Conv1DTranspose(4, kernelSize: 3)
        try transpose1D.build(inputShape: [5, 2])
        XCTAssertEqual(transpose1D.weightSpecs.map(\.shape), [[3, 4, 2], [4]])
        assertThrowsMessage(try Conv1DTranspose(4, kernelSize: 3).build(inputShape: [5, 5, 2]),
                            contains: ["Conv1DTranspose", "rank 2 (steps, channels)"])
        assertThrowsMessage(try Conv1DTranspose(4, kernelSize: [3, 3]).build(inputShape: [5, 2]),
                            contains: ["Conv1DTranspose", "kernelSize", "1 of them"])
        let transpose = Conv2DTranspose(4, kernelSize: [3, 2])
        try transpose.build(inputShape: [5, 5, 2])
        XCTAssertEqual(transpose.weightSpecs.map(\.shape), [[3, 2, 4, 2], [4]])
        let depthwise = DepthwiseConv2D(kernelSize: 3, depthMultiplier: 2)
        XCTAssertEqual(try depthwise.build(inputShape: [6, 6, 3]), [4, 4, 6])
        XCTAssertEqual(depthwise.weightSpecs.map(\.shape), [[3, 3, 3, 2], [6]])
        let depthwise1D = DepthwiseConv1D(kernelSize: 3, strides: 2, padding: .same, depthMultiplier: 3)
        XCTAssertEqual(try depthwise1D.build(inputShape: [7, 2]), [4, 6])
        XCTAssertEqual(depthwise1D.weightSpecs.map(\.shape), [[3, 2, 3], [6]])
        let separable1D = SeparableConv1D(5, kernelSize: 3, depthMultiplier: 2)
        XCTAssertEqual(try separable1D.build(inputShape: [8, 3]), [6, 5])
        XCTAssertEqual(separable1D.weightSpecs.map(\.shape), [[3, 3, 2], [1, 6, 5], [5]])
        assertThrowsMessage(try DepthwiseConv1D(kernelSize: 3).build(inputShape: [5, 5, 2]),
                            contains: ["DepthwiseConv1D", "rank 2 (steps, channels)", "[5, 5, 2]"])
        assertThrowsMessage(try SeparableConv1D(4, kernelSize: 3, padding: .causal).build(inputShape: [5, 2]),
                            contains: ["SeparableConv1D", "padding", "causal"])
        assertThrowsMessage(try SeparableConv1D(0, kernelSize: 3).build(inputShape: [5, 2]),
                            contains: ["SeparableConv1D", "filters", "0"])
        let separable = SeparableConv2D(5, kernelSize: 3, depthMultiplier: 2)
        XCTAssertEqual(try separable.build(inputShape: [6, 6, 3]), [4, 4, 5])
        XCTAssertEqual(separable.weightSpecs.map(\.name), ["depthwise_kernel", "pointwise_kernel", "bias"])
        XCTAssertEqual(separable.weightSpecs.map(\.shape), [[3, 3, 3, 2], [1, 1, 6, 5], [5]])
        XCTAssertEqual(try ZeroPadding2D(padding: [1, 2]).build(inputShape: [3, 3, 1]), [5, 7, 1])
        XCTAssertEqual(try Permute([2, 1]).build(inputShape: [3, 5]), [5, 3])
        assertThrowsMessage(try Cropping2D(cropping: 2).build(inputShape: [4, 6, 1]), contains: ["Cropping2D", "leaves nothing"])
        assertThrowsMessage(try Permute([1, 1]).build(inputShape: [3, 5]), contains: ["Permute", "permutation", "[1, 1]"])
        assertThrowsMessage(try RepeatVector(2).build(inputShape: [3, 5]), contains: ["RepeatVector", "rank 1"])
        assertThrowsMessage(try UpSampling2D().build(inputShape: [3, 5]), contains: ["UpSampling2D", "rank 3"])
        XCTAssertEqual(try ZeroPadding1D().build(inputShape: [4, 3]), [6, 3])
        XCTAssertEqual(try Cropping1D().build(inputShape: [4, 3]), [2, 3])
        XCTAssertEqual(try UpSampling1D().build(inputShape: [4, 3]), [8, 3])
        assertThrowsMessage(try Cropping1D(cropping: [2, 2]).build(inputShape: [4, 3]), contains: ["Cropping1D", "leaves nothing"])
        assertThrowsMessage(try ZeroPadding1D(padding: [1, -1]).build(inputShape: [4, 3]),
                            contains: ["ZeroPadding1D", "[start, end]", "[1, -1]"])
        assertThrowsMessage(try UpSampling1D().build(inputShape: [4, 3, 2]), contains: ["UpSampling1D", "rank 2"])
        assertThrowsMessage(try ZeroPadding1D().build(inputShape: [4, 3, 2]), contains: ["ZeroPadding1D", "rank 2 (steps, channels)"])
        assertThrowsMessage(try DepthwiseConv2D(kernelSize: 3, depthMultiplier: 0).build(inputShape: [5, 5, 1]),
                            contains: ["depthMultiplier", "0"])
    }
}
