@testable import Kestrel
import XCTest

/// Finite-difference gradient checks of the convolution layers in each configuration.
final class ConvGradientTests: XCTestCase {
    func testConv2DGradientsAcrossConfigurations() throws {
        let cases: [(String, () -> Conv2D, [Int])] = [
            ("3x3 valid", { Conv2D(4, kernelSize: 3) }, [6, 5, 3]),
            ("3x3 same relu", { Conv2D(3, kernelSize: 3, padding: .same, activation: .relu, useBias: false) }, [4, 4, 2]),
            ("2x3 strides 2 same", { Conv2D(3, kernelSize: [2, 3], strides: 2, padding: .same) }, [7, 6, 2]),
            ("strides [2,1] valid tanh", { Conv2D(2, kernelSize: 3, strides: [2, 1], activation: .tanh) }, [7, 5, 2]),
            ("dilation 2 same", { Conv2D(3, kernelSize: 3, padding: .same, dilationRate: 2) }, [6, 6, 2]),
            ("dilation [1,2] valid", { Conv2D(2, kernelSize: [2, 2], dilationRate: [1, 2]) }, [4, 6, 3]),
            ("groups 2", { Conv2D(4, kernelSize: 3, groups: 2) }, [5, 5, 4]),
            ("groups 3 same strides 2", { Conv2D(6, kernelSize: 3, strides: 2, padding: .same, groups: 3) }, [5, 4, 3]),
            ("pointwise", { Conv2D(3, kernelSize: 1) }, [3, 4, 5]),
            ("pointwise strided", { Conv2D(3, kernelSize: 1, strides: 2) }, [5, 4, 2]),
            ("no bias swish", { Conv2D(3, kernelSize: 2, activation: .swish, useBias: false) }, [4, 4, 2]),
            ("softmax", { Conv2D(4, kernelSize: 2, activation: .softmax) }, [3, 3, 2]),
        ]
        for (label, make, shape) in cases {
            // A smaller step for ReLU, whose kink many outputs of a summed window sit near.
            let epsilon: Float = label.contains("relu") ? 2e-3 : 1e-2
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(epsilon: epsilon, label: " " + label)
        }
    }

    func testConv1DGradientsAcrossConfigurations() throws {
        let cases: [(String, () -> Conv1D, [Int])] = [
            ("k3 valid", { Conv1D(4, kernelSize: 3) }, [8, 3]),
            ("k3 same strides 2", { Conv1D(3, kernelSize: 3, strides: 2, padding: .same) }, [9, 2]),
            ("k2 causal dilation 2", { Conv1D(3, kernelSize: 2, padding: .causal, dilationRate: 2) }, [7, 2]),
            ("groups 2 relu", { Conv1D(4, kernelSize: 3, groups: 2, activation: .relu) }, [6, 4]),
        ]
        for (label, make, shape) in cases {
            let epsilon: Float = label.contains("relu") ? 2e-3 : 1e-2
            try LayerHarness(make(), inputShapes: [shape], batch: 3).check(epsilon: epsilon, label: " " + label)
        }
    }

    func testConvShapeInferenceAndErrors() throws {
        XCTAssertEqual(try Conv2D(32, kernelSize: 3).build(inputShape: [28, 28, 1]), [26, 26, 32])
        XCTAssertEqual(try Conv2D(8, kernelSize: 3, strides: 2, padding: .same).build(inputShape: [7, 8, 3]), [4, 4, 8])
        XCTAssertEqual(try Conv2D(8, kernelSize: 3, dilationRate: 2).build(inputShape: [9, 9, 3]), [5, 5, 8])
        XCTAssertEqual(try Conv1D(5, kernelSize: 4, padding: .causal).build(inputShape: [10, 2]), [10, 5])
        let conv = Conv2D(6, kernelSize: [3, 2], groups: 3)
        try conv.build(inputShape: [5, 5, 9])
        XCTAssertEqual(conv.weightSpecs.map(\.shape), [[3, 2, 3, 6], [6]])
        assertThrowsMessage(try Conv2D(4, kernelSize: 3).build(inputShape: [28, 28]),
                            contains: ["Conv2D", "rank 3", "[28, 28]"])
        assertThrowsMessage(try Conv2D(4, kernelSize: 5).build(inputShape: [3, 3, 1]),
                            contains: ["Conv2D", "does not fit", "[3, 3, 1]"])
        assertThrowsMessage(try Conv2D(4, kernelSize: 3, groups: 3).build(inputShape: [8, 8, 4]),
                            contains: ["Conv2D", "divisible by groups", "input channels (4)"])
        assertThrowsMessage(try Conv2D(4, kernelSize: [3, 3, 3]).build(inputShape: [8, 8, 4]),
                            contains: ["kernelSize", "[3, 3, 3]"])
        assertThrowsMessage(try Conv2D(0, kernelSize: 3).build(inputShape: [8, 8, 4]), contains: ["filters", "0"])
        assertThrowsMessage(try Conv2D(2, kernelSize: 3, padding: .causal).build(inputShape: [8, 8, 4]),
                            contains: ["causal", "Conv1D"])
    }

    /// A direct (definition-level) convolution to check the im2col lowering independently of Keras.
    func testConv2DMatchesDirectSum() throws {
        let layer = Conv2D(3, kernelSize: [3, 2], strides: [2, 1], padding: .same, dilationRate: 1, groups: 1)
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randomUniform([2, 5, 4, 2], minval: -1, maxval: 1, generator: &rng)
        XCTAssertEqual(try layer(x).shape, [2, 3, 4, 3])
        let kernel = Tensor.randomUniform([3, 2, 2, 3], minval: -1, maxval: 1, generator: &rng)
        try layer.setWeights([kernel, Tensor([0.1, -0.2, 0.3])])
        let y2 = try layer(x)
        // Keras "same" with stride 2 over 5 rows: 3 outputs, total padding 2 → 1 before.
        for n in 0..<2 { for oh in 0..<3 { for ow in 0..<4 { for f in 0..<3 {
            var s: Float = [0.1, -0.2, 0.3][f]
            for ki in 0..<3 { for kj in 0..<2 { for ch in 0..<2 {
                let ih = oh * 2 - 1 + ki, iw = ow - 0 + kj
                if ih >= 0 && ih < 5 && iw >= 0 && iw < 4 { s += x[n, ih, iw, ch] * kernel[ki, kj, ch, f] }
            } } }
            XCTAssertEqual(y2[n, oh, ow, f], s, accuracy: 1e-5)
        } } } }
    }
}

/// Finite-difference gradient checks of the pooling layers.
final class PoolingGradientTests: XCTestCase {
    func testPooling2DGradients() throws {
        let cases: [(String, () -> Layer, [Int])] = [
            ("max 2", { MaxPooling2D() }, [4, 6, 3]),
            ("max 3 strides 2 same", { MaxPooling2D(poolSize: 3, strides: 2, padding: .same) }, [5, 5, 2]),
            ("max [2,3] strides 1", { MaxPooling2D(poolSize: [2, 3], strides: 1) }, [4, 5, 2]),
            ("max odd valid", { MaxPooling2D() }, [5, 5, 2]),
            // Windows that tile the image but whose last one reaches past it.
            ("max 2 same odd", { MaxPooling2D(padding: .same) }, [5, 5, 2]),
            ("average 2", { AveragePooling2D(poolSize: 2) }, [4, 4, 3]),
            ("average 3 strides 2 same", { AveragePooling2D(poolSize: 3, strides: 2, padding: .same) }, [5, 6, 2]),
            ("average [1,2] same", { AveragePooling2D(poolSize: [1, 2], padding: .same) }, [3, 5, 2]),
        ]
        for (label, make, shape) in cases {
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(label: " " + label)
        }
    }

    func testPooling1DAndGlobalPoolingGradients() throws {
        let cases: [(String, () -> Layer, [Int])] = [
            ("max1d 2", { MaxPooling1D() }, [7, 3]),
            ("max1d 3 strides 1 same", { MaxPooling1D(poolSize: 3, strides: 1, padding: .same) }, [6, 2]),
            ("average1d 3 strides 2 same", { AveragePooling1D(poolSize: 3, strides: 2, padding: .same) }, [7, 2]),
            ("global max 2d", { GlobalMaxPooling2D() }, [3, 4, 5]),
            ("global average 2d keepdims", { GlobalAveragePooling2D(keepDims: true) }, [3, 4, 5]),
            ("global max 1d", { GlobalMaxPooling1D() }, [6, 3]),
            ("global average 1d", { GlobalAveragePooling1D() }, [6, 3]),
        ]
        for (label, make, shape) in cases {
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(label: " " + label)
        }
    }

    func testPoolingShapesAndErrors() throws {
        XCTAssertEqual(try MaxPooling2D().build(inputShape: [26, 26, 32]), [13, 13, 32])
        XCTAssertEqual(try MaxPooling2D().build(inputShape: [11, 11, 64]), [5, 5, 64])
        XCTAssertEqual(try MaxPooling2D(poolSize: 3, strides: 2, padding: .same).build(inputShape: [7, 7, 1]), [4, 4, 1])
        XCTAssertEqual(try AveragePooling1D(poolSize: 4).build(inputShape: [10, 2]), [2, 2])
        XCTAssertEqual(try GlobalAveragePooling2D().build(inputShape: [4, 4, 7]), [7])
        XCTAssertEqual(try GlobalMaxPooling1D(keepDims: true).build(inputShape: [4, 7]), [1, 7])
        assertThrowsMessage(try MaxPooling2D().build(inputShape: [10, 3]), contains: ["MaxPooling2D", "rank 3", "[10, 3]"])
        assertThrowsMessage(try MaxPooling2D(poolSize: 4).build(inputShape: [3, 3, 1]), contains: ["does not fit"])
        assertThrowsMessage(try GlobalAveragePooling1D().build(inputShape: [4, 4, 2]),
                            contains: ["GlobalAveragePooling1D", "rank 2", "[4, 4, 2]"])
    }

    func testMaxPoolingPicksTheWindowMaximum() throws {
        let x = Tensor(shape: [1, 2, 4, 1], scalars: [1, 5, -2, 0, 3, 2, 7, -1])
        XCTAssertEqual(try MaxPooling2D()(x).scalars, [5, 7])
        XCTAssertEqual(try AveragePooling2D(poolSize: 2)(x).scalars, [2.75, 1])
        XCTAssertEqual(try GlobalMaxPooling2D()(x).scalars, [7])
    }
}
