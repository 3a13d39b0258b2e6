@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// The 3-D layers (video clips and volumetric scans, `(depth, height, width, channels)`):
/// finite-difference gradients in each configuration, shape inference and errors, a
/// definition-level convolution, consistency with the 2-D layers, and a small volume
/// classifier that learns and trains without allocating. Their outputs and gradients against
/// Keras are in ConvReferenceTests (fixtures conv_layers.json).
final class VolumeLayerTests: XCTestCase {
    func testConv3DGradientsAcrossConfigurations() throws {
        let cases: [(String, () -> Layer, [Int])] = [
            ("conv 2 valid", { Conv3D(3, kernelSize: 2) }, [3, 4, 3, 2]),
            ("conv [2,3,2] strides [1,2,2] same relu",
             { Conv3D(3, kernelSize: [2, 3, 2], strides: [1, 2, 2], padding: .same, activation: .relu) }, [3, 5, 4, 2]),
            ("conv dilation 2 same no bias", { Conv3D(2, kernelSize: 2, padding: .same, dilationRate: 2, useBias: false) },
             [4, 3, 4, 1]),
            ("conv groups 2 tanh", { Conv3D(4, kernelSize: 2, groups: 2, activation: .tanh) }, [3, 3, 3, 4]),
            ("conv pointwise", { Conv3D(3, kernelSize: 1) }, [2, 3, 2, 4]),
            ("conv strides 2 valid", { Conv3D(2, kernelSize: 3, strides: 2) }, [5, 5, 5, 2]),
            ("transpose 2 strides 2", { Conv3DTranspose(2, kernelSize: 2, strides: 2) }, [2, 3, 2, 2]),
            ("transpose 3 strides [1,2,2] same tanh",
             { Conv3DTranspose(2, kernelSize: 3, strides: [1, 2, 2], padding: .same, activation: .tanh) }, [2, 2, 3, 2]),
            ("transpose output padding", { Conv3DTranspose(1, kernelSize: 3, strides: 2, padding: .same, outputPadding: 1) },
             [2, 2, 2, 2]),
        ]
        for (label, make, shape) in cases {
            let epsilon: Float = label.contains("relu") ? 2e-3 : 1e-2
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(epsilon: epsilon, label: " " + label)
        }
    }

    func testPoolingAndReshapingGradients() throws {
        let cases: [(String, () -> Layer, [Int])] = [
            ("max 2", { MaxPooling3D() }, [4, 4, 5, 2]),
            ("max 3 strides 2 same", { MaxPooling3D(poolSize: 3, strides: 2, padding: .same) }, [5, 4, 5, 2]),
            ("max [1,2,2]", { MaxPooling3D(poolSize: [1, 2, 2]) }, [3, 4, 4, 2]),
            ("average 2", { AveragePooling3D(poolSize: 2) }, [4, 4, 4, 2]),
            ("average [2,3,2] strides [1,2,2] same", { AveragePooling3D(poolSize: [2, 3, 2], strides: [1, 2, 2], padding: .same) },
             [3, 5, 4, 2]),
            ("global max", { GlobalMaxPooling3D() }, [2, 3, 4, 3]),
            ("global average keepdims", { GlobalAveragePooling3D(keepDims: true) }, [2, 3, 4, 3]),
            ("zero padding 1", { ZeroPadding3D() }, [2, 3, 2, 2]),
            ("zero padding asymmetric", { ZeroPadding3D(padding: [[1, 0], [0, 2], [2, 1]]) }, [2, 2, 3, 2]),
            ("cropping 1", { Cropping3D() }, [4, 4, 5, 2]),
            ("cropping asymmetric", { Cropping3D(cropping: [[0, 1], [2, 0], [1, 1]]) }, [3, 4, 4, 2]),
            ("upsampling 2", { UpSampling3D() }, [2, 2, 3, 2]),
            ("upsampling [1,3,2]", { UpSampling3D(size: [1, 3, 2]) }, [2, 2, 2, 2]),
        ]
        for (label, make, shape) in cases {
            try LayerHarness(make(), inputShapes: [shape], batch: 2).check(label: " " + label)
        }
        try LayerHarness(SpatialDropout3D(0.4), inputShapes: [[2, 3, 2, 6]], batch: 3, training: true).check()
    }

    func testShapesAndErrors() throws {
        XCTAssertEqual(try Conv3D(8, kernelSize: 3).build(inputShape: [16, 32, 32, 1]), [14, 30, 30, 8])
        XCTAssertEqual(try Conv3D(4, kernelSize: [1, 3, 3], strides: 2, padding: .same).build(inputShape: [5, 8, 7, 2]),
                       [3, 4, 4, 4])
        let conv = Conv3D(6, kernelSize: [3, 2, 1], groups: 3)
        try conv.build(inputShape: [5, 5, 5, 9])
        XCTAssertEqual(conv.weightSpecs.map(\.shape), [[3, 2, 1, 3, 6], [6]])
        XCTAssertEqual(try Conv3DTranspose(4, kernelSize: 3, strides: 2).build(inputShape: [3, 5, 5, 2]), [7, 11, 11, 4])
        XCTAssertEqual(try Conv3DTranspose(4, kernelSize: 3, strides: [1, 2, 2], padding: .same).build(inputShape: [3, 5, 5, 2]),
                       [3, 10, 10, 4])
        let transpose = Conv3DTranspose(4, kernelSize: [3, 2, 2])
        try transpose.build(inputShape: [3, 5, 5, 2])
        XCTAssertEqual(transpose.weightSpecs.map(\.shape), [[3, 2, 2, 4, 2], [4]])
        XCTAssertEqual(try MaxPooling3D().build(inputShape: [8, 9, 10, 3]), [4, 4, 5, 3])
        XCTAssertEqual(try AveragePooling3D(poolSize: [1, 2, 2], padding: .same).build(inputShape: [3, 5, 5, 1]), [3, 3, 3, 1])
        XCTAssertEqual(try GlobalMaxPooling3D().build(inputShape: [2, 3, 4, 5]), [5])
        XCTAssertEqual(try GlobalAveragePooling3D(keepDims: true).build(inputShape: [2, 3, 4, 5]), [1, 1, 1, 5])
        XCTAssertEqual(try ZeroPadding3D(padding: [1, 2, 0]).build(inputShape: [3, 3, 3, 1]), [5, 7, 3, 1])
        XCTAssertEqual(try Cropping3D().build(inputShape: [4, 5, 6, 2]), [2, 3, 4, 2])
        XCTAssertEqual(try UpSampling3D(size: [1, 2, 3]).build(inputShape: [2, 3, 4, 2]), [2, 6, 12, 2])
        XCTAssertEqual(try SpatialDropout3D(0.2).build(inputShape: [2, 3, 4, 2]), [2, 3, 4, 2])

        assertThrowsMessage(try Conv3D(4, kernelSize: 3).build(inputShape: [28, 28, 1]),
                            contains: ["Conv3D", "rank 4 (depth, height, width, channels)", "[28, 28, 1]"])
        assertThrowsMessage(try Conv3D(4, kernelSize: [3, 3]).build(inputShape: [8, 8, 8, 1]),
                            contains: ["Conv3D", "kernelSize", "3 of them", "[3, 3]"])
        assertThrowsMessage(try Conv3D(4, kernelSize: 5).build(inputShape: [3, 8, 8, 1]),
                            contains: ["Conv3D", "does not fit", "[3, 8, 8, 1]"])
        assertThrowsMessage(try Conv3D(4, kernelSize: 3, padding: .causal).build(inputShape: [8, 8, 8, 1]),
                            contains: ["causal", "Conv1D"])
        assertThrowsMessage(try Conv3DTranspose(4, kernelSize: 3).build(inputShape: [5, 5, 2]),
                            contains: ["Conv3DTranspose", "rank 4 (depth, height, width, channels)"])
        assertThrowsMessage(try MaxPooling3D().build(inputShape: [4, 4, 2]), contains: ["MaxPooling3D", "rank 4", "[4, 4, 2]"])
        assertThrowsMessage(try GlobalAveragePooling3D().build(inputShape: [4, 4, 2]),
                            contains: ["GlobalAveragePooling3D", "rank 4 (depth, height, width, channels)"])
        assertThrowsMessage(try ZeroPadding3D(padding: [[1, 1], [1, 1]]).build(inputShape: [3, 3, 3, 1]),
                            contains: ["ZeroPadding3D", "[[front, back], [top, bottom], [left, right]]"])
        assertThrowsMessage(try Cropping3D(cropping: [1, 2, 1]).build(inputShape: [4, 4, 4, 1]),
                            contains: ["Cropping3D", "leaves nothing"])
        assertThrowsMessage(try UpSampling3D(size: [2, 2]).build(inputShape: [2, 2, 2, 1]),
                            contains: ["UpSampling3D", "size", "[2, 2]"])
        assertThrowsMessage(try UpSampling3D().build(inputShape: [2, 2, 1]), contains: ["UpSampling3D", "rank 4"])
        assertThrowsMessage(try SpatialDropout3D(0.5).build(inputShape: [4, 3, 2]), contains: ["SpatialDropout3D", "rank 4"])
    }

    /// A definition-level sum, to check the 3-D lowering independently of Keras.
    func testConv3DMatchesDirectSum() throws {
        let layer = Conv3D(2, kernelSize: [2, 3, 2], strides: [2, 1, 2], padding: .same, dilationRate: 1)
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.randomUniform([2, 5, 4, 5, 3], minval: -1, maxval: 1, generator: &rng)
        XCTAssertEqual(try layer(x).shape, [2, 3, 4, 3, 2])
        let kernel = Tensor.randomUniform([2, 3, 2, 3, 2], minval: -1, maxval: 1, generator: &rng)
        try layer.setWeights([kernel, Tensor([0.25, -0.5])])
        let y = try layer(x)
        // Keras "same": depth 5 by stride 2 → 3 outputs, total padding 1 → 0 before; height:
        // window 3, stride 1 → 1 before; width 5 by stride 2, window 2 → 3 outputs, padding 1 → 0 before.
        for n in 0..<2 { for od in 0..<3 { for oh in 0..<4 { for ow in 0..<3 { for f in 0..<2 {
            var s: Float = [0.25, -0.5][f]
            for a in 0..<2 { for ki in 0..<3 { for kj in 0..<2 { for ch in 0..<3 {
                let id = od * 2 + a, ih = oh - 1 + ki, iw = ow * 2 + kj
                if id < 5 && ih >= 0 && ih < 4 && iw < 5 { s += x[n, id, ih, iw, ch] * kernel[a, ki, kj, ch, f] }
            } } } }
            XCTAssertEqual(y[n, od, oh, ow, f], s, accuracy: 1e-5)
        } } } } }
    }

    /// A volume one slice deep through the 3-D layers gives what the 2-D layers give the slice.
    func testOneSliceVolumesMatchThe2DLayers() throws {
        var rng = RandomGenerator(seed: 9)
        let image = Tensor.randomUniform([2, 6, 5, 3], minval: -1, maxval: 1, generator: &rng)
        let volume = try image.reshaped([2, 1, 6, 5, 3])
        let conv2 = Conv2D(4, kernelSize: 3, strides: [2, 1], padding: .same, activation: .relu)
        let conv3 = Conv3D(4, kernelSize: [1, 3, 3], strides: [1, 2, 1], padding: .same, activation: .relu)
        let y2 = try conv2(image)
        try conv3.build(inputShape: [1, 6, 5, 3])
        try conv3.setWeights([try conv2.getWeights()[0].reshaped([1, 3, 3, 3, 4]), conv2.getWeights()[1]])
        // (The 2-D layer convolves so small a window directly, the 3-D one through im2col:
        // the same sums in another order.)
        for (a, b) in zip(try conv3(volume).scalars, y2.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertEqual(try MaxPooling3D(poolSize: [1, 2, 2])(volume).scalars, try MaxPooling2D()(image).scalars)
        XCTAssertEqual(try AveragePooling3D(poolSize: [1, 3, 2], strides: [1, 2, 2], padding: .same)(volume).scalars,
                       try AveragePooling2D(poolSize: [3, 2], strides: 2, padding: .same)(image).scalars)
        XCTAssertEqual(try UpSampling3D(size: [1, 2, 3])(volume).scalars, try UpSampling2D(size: [2, 3])(image).scalars)
        XCTAssertEqual(try ZeroPadding3D(padding: [[0, 0], [1, 2], [0, 1]])(volume).scalars,
                       try ZeroPadding2D(padding: [[1, 2], [0, 1]])(image).scalars)
    }

    func testSpatialDropout3DDropsWholeChannels() throws {
        try assertDropsWholeChannels(SpatialDropout3D(0.5, seed: 4), shape: [4, 2, 2, 2, 8])
    }

    /// Volumes with a bright cube in the front or back half: a small 3-D network tells them
    /// apart, and its training steps allocate nothing once planned.
    func testSmallVolumeClassifierLearnsAndAllocatesNothing() throws {
        var rng = RandomGenerator(seed: 11)
        let count = 96, (d, h, w) = (6, 6, 6)
        var scalars = [Float](repeating: 0, count: count * d * h * w)
        var labels: [Int] = []
        for n in 0..<count {
            let back = n % 2
            for i in 0..<(d * h * w) { scalars[n * d * h * w + i] = rng.nextUnitFloat() * 0.5 }
            let z = back == 1 ? 3 + Int(rng.nextUnitFloat() * 2) : Int(rng.nextUnitFloat() * 2)
            let y0 = Int(rng.nextUnitFloat() * 5), x0 = Int(rng.nextUnitFloat() * 5)
            for a in 0..<2 { for b in 0..<2 { for c in 0..<2 where z + a < d {
                scalars[n * d * h * w + ((z + a) * h + y0 + b) * w + x0 + c] += 1
            } } }
            labels.append(back)
        }
        let x = Tensor(shape: [count, d, h, w, 1], scalars: scalars)
        let y = Tensor(labels: labels)
        let model = Sequential {
            Input(shape: [d, h, w, 1])
            ZeroPadding3D(padding: [1, 0, 0])
            Conv3D(4, kernelSize: 3, padding: .same, activation: .relu)
            MaxPooling3D()
            SpatialDropout3D(0.1)
            Conv3DTranspose(4, kernelSize: 2, strides: [1, 1, 1])
            AveragePooling3D(poolSize: [1, 2, 2])
            Cropping3D(cropping: [[0, 0], [0, 1], [0, 1]])
            UpSampling3D(size: [1, 2, 1])
            Conv3D(4, kernelSize: 1, activation: .relu)
            GlobalMaxPooling3D()
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        let history = try model.fit(x, y, batchSize: 16, epochs: 30, verbose: 0)
        XCTAssertGreaterThan(history.history["accuracy"]!.last!, 0.9)
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 16, steps: 20)
    }
}
