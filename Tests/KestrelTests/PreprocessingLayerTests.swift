@testable import Kestrel
import XCTest

/// Rescaling, Normalization and Resizing: shapes, errors, gradients, `adapt`, and the Keras
/// regression tutorial's use (an adapted Normalization first in a trained model). Their outputs
/// and input gradients against Keras are in ConvReferenceTests (fixtures `rescaling_*`,
/// `normalization_*`, `resizing_*`).
final class PreprocessingLayerTests: XCTestCase {
    func testShapesAndErrors() throws {
        XCTAssertEqual(try Rescaling(1 / 255).build(inputShape: [28, 28, 1]), [28, 28, 1])
        let cases: [([Int], [Int], [Int])] = [
            ([-1], [2, 3, 4], [4]), ([1, 3], [2, 3, 4], [2, 4]), ([3, 1], [2, 3, 4], [2, 4]),
            ([], [2, 3, 4], []), ([-2], [5, 6], [5]), ([1], [7], [7]),
        ]
        for (axis, shape, kept) in cases {
            let layer = Normalization(axis: axis)
            XCTAssertEqual(try layer.build(inputShape: shape), shape)
            XCTAssertEqual(layer.keptShape, kept, "axis \(axis) of \(shape)")
            // Keras's non-trainable mean, variance and count (a scalar).
            XCTAssertEqual(layer.weightSpecs.map(\.shape), [kept, kept, []])
            XCTAssertEqual(layer.trainableParameterCount, 0)
        }
        XCTAssertEqual(Normalization(axis: 2).axis, [2])
        XCTAssertTrue(try Normalization(mean: [1, 2], variance: [3, 4]).build(inputShape: [3, 2]) == [3, 2])
        XCTAssertEqual(Normalization(mean: [1], variance: [1]).weightSpecs.count, 0)
        assertThrowsMessage(try Normalization(axis: 0).build(inputShape: [3]), contains: ["Normalization", "axis 0", "batch axis"])
        assertThrowsMessage(try Normalization(axis: 3).build(inputShape: [3, 4]), contains: ["axis 3", "[3, 4]"])
        assertThrowsMessage(try Normalization(axis: [-1, 2]).build(inputShape: [3, 4]), contains: ["twice"])
        assertThrowsMessage(try Normalization(mean: [1, 2, 3], variance: [1, 2, 3]).build(inputShape: [3, 2]),
                            contains: ["1 or 2 values", "found 3 and 3"])
        assertThrowsMessage(try Normalization(mean: [1]).build(inputShape: [3]), contains: ["both mean and variance"])
        assertThrowsMessage(try Rescaling(.infinity).build(inputShape: [3]), contains: ["Rescaling", "finite"])
    }

    func testResizingShapesAndErrors() throws {
        XCTAssertEqual(try Resizing(7, 5).build(inputShape: [3, 4, 2]), [7, 5, 2])
        XCTAssertEqual(try Resizing(2, 2, cropToAspectRatio: true).build(inputShape: [6, 4, 3]), [2, 2, 3])
        assertThrowsMessage(try Resizing(0, 5).build(inputShape: [3, 4, 2]), contains: ["Resizing", "positive", "0"])
        assertThrowsMessage(try Resizing(2, 5).build(inputShape: [3, 4]), contains: ["Resizing", "rank 3"])
        // The same size resizes to itself, and a crop of the same aspect ratio is the image.
        let image = Tensor.randomUniform([2, 4, 6, 3])
        XCTAssertEqual(try Resizing(4, 6)(image), image)
        XCTAssertEqual(try Resizing(4, 6, interpolation: .nearest, cropToAspectRatio: true)(image), image)
        // Halving by nearest keeps every second pixel from index 1: floor((o + 0.5) · 2).
        let halved = try Resizing(2, 3, interpolation: .nearest)(image)
        XCTAssertEqual(halved[1, 1, 2, 0], image[1, 3, 5, 0])
        XCTAssertEqual(halved[0, 0, 0, 2], image[0, 1, 1, 2])
    }

    /// CenterCrop: the centred window (its start rounded down) in training and inference, or
    /// the centred window of the target's aspect ratio resized when the image is smaller.
    func testCenterCrop() throws {
        XCTAssertEqual(try CenterCrop(3, 2).build(inputShape: [6, 5, 2]), [3, 2, 2])
        XCTAssertEqual(CenterCrop(3, 2).window(forInputShape: [6, 5, 2]).top, 1)
        XCTAssertTrue(CenterCrop(3, 2).window(forInputShape: [6, 5, 2]) == (1, 1, 3, 2))
        XCTAssertTrue(CenterCrop(4, 6).window(forInputShape: [5, 3, 1]) == Resizing.centredCropBox(rows: 5, columns: 3, height: 4, width: 6))
        assertThrowsMessage(try CenterCrop(0, 2).build(inputShape: [3, 4, 2]), contains: ["CenterCrop", "positive", "0"])
        assertThrowsMessage(try CenterCrop(2, 2).build(inputShape: [3, 4]), contains: ["CenterCrop", "rank 3"])
        let image = Tensor.randomUniform([2, 6, 5, 2])
        let layer = CenterCrop(3, 2)
        let cropped = try layer(image)
        for n in 0..<2 { for i in 0..<3 { for j in 0..<2 { for ch in 0..<2 {
            XCTAssertEqual(cropped[n, i, j, ch], image[n, i + 1, j + 1, ch])
        } } } }
        XCTAssertEqual(try layer(image, training: true), cropped, "the same window in training")
        try LayerHarness(CenterCrop(3, 2), inputShapes: [[6, 5, 2]], batch: 2).check(label: " center crop")
        try LayerHarness(CenterCrop(4, 6), inputShapes: [[5, 3, 1]], batch: 2).check(label: " center crop resizing")
    }

    func testGradients() throws {
        try LayerHarness(Rescaling(0.25, offset: -1), inputShapes: [[3, 2]], batch: 2).check(label: " rescaling")
        try LayerHarness(Resizing(5, 3), inputShapes: [[3, 4, 2]], batch: 2).check(label: " resizing bilinear")
        try LayerHarness(Resizing(2, 5, interpolation: .nearest), inputShapes: [[3, 4, 2]], batch: 2).check(label: " resizing nearest")
        try LayerHarness(Resizing(3, 3, cropToAspectRatio: true), inputShapes: [[5, 3, 1]], batch: 2).check(label: " resizing crop")
        let variants: [(String, Normalization, [Int])] = [
            ("last axis", Normalization(), [3, 4]),
            ("axes 1 and 3", Normalization(axis: [1, 3]), [2, 3, 2]),
            ("one mean, inverted", Normalization(axis: [], invert: true), [2, 3]),
        ]
        for (label, layer, shape) in variants {
            let harness = try LayerHarness(layer, inputShapes: [shape], batch: 2)
            let kept = layer.keptShape, count = kept.reduce(1, *)
            try layer.setWeights([Tensor(shape: kept, scalars: (0..<count).map { Float($0) * 0.3 - 0.5 }),
                                  Tensor(shape: kept, scalars: (0..<count).map { Float($0) * 0.7 + 0.2 }),
                                  Tensor(shape: [], scalars: [0])])
            harness.check(label: " normalization \(label)")
        }
        try LayerHarness(Normalization(mean: [1, -2], variance: [0.5, 3]), inputShapes: [[3, 2]], batch: 2).check(label: " given")
    }

    /// `adapt` sets each kept position's mean and population variance (Keras: `np.mean`,
    /// `np.var` over the other axes) and leaves `count` at 0 as Keras does.
    func testAdaptComputesPopulationStatistics() throws {
        let data = Tensor(shape: [4, 2], scalars: [1, 10, 2, 20, 3, 30, 4, 40])
        let layer = Normalization()
        try layer.adapt(data)
        let w = layer.getWeights()
        XCTAssertEqual(w[0].scalars, [2.5, 25])
        XCTAssertEqual(w[1].scalars, [1.25, 125])
        XCTAssertEqual(w[2].scalars, [0])
        let y = try layer(data)
        for (k, v) in y.scalars.enumerated() {
            let column = k % 2, mean: Float = column == 0 ? 2.5 : 25, deviation = (column == 0 ? Float(1.25) : 125).squareRoot()
            XCTAssertEqual(v, (data.scalars[k] - mean) / deviation, accuracy: 1e-6)
        }
        // One mean and variance over everything; then over image channels.
        let whole = Normalization(axis: [])
        try whole.adapt(data)
        XCTAssertEqual(whole.getWeights()[0].scalars[0], 13.75, accuracy: 1e-5)
        XCTAssertEqual(whole.getWeights()[1].scalars[0], (data.scalars.map { ($0 - 13.75) * ($0 - 13.75) }.reduce(0, +) / 8), accuracy: 1e-3)
        let images = Tensor(shape: [2, 2, 1, 3], scalars: (0..<12).map { Float($0) })
        let channels = Normalization()
        try channels.adapt(images)
        XCTAssertEqual(channels.getWeights()[0].scalars, [4.5, 5.5, 6.5])
        XCTAssertEqual(channels.getWeights()[1].scalars, [11.25, 11.25, 11.25])

        assertThrowsMessage(try layer.adapt(Tensor(shape: [2, 3], scalars: Array(repeating: 0, count: 6))),
                            contains: ["Normalization", "built for samples of shape [2]", "[2, 3]"])
        assertThrowsMessage(try Normalization(mean: [0], variance: [1]).adapt(data), contains: ["adapt has nothing to set"])
        assertThrowsMessage(try Normalization().adapt(Tensor(shape: [3], scalars: [1, 2, 3])), contains: ["at least 2 axes"])
    }

    /// The Keras regression tutorial: `normalizer.adapt(train_features)`, then the normalizer
    /// first in a Sequential trained with Adam and MAE. Training leaves its statistics alone.
    func testAdaptedNormalizationInATrainedModel() throws {
        Kestrel.setRandomSeed(31)
        let x = Tensor.randomUniform([64, 3], minval: 0, maxval: 100)
        let y = Tensor(shape: [64, 1], scalars: (0..<64).map { n in
            0.05 * x.scalars[n * 3] - 0.02 * x.scalars[n * 3 + 1] + 3
        })
        let normalizer = Normalization(axis: -1)
        try normalizer.adapt(x)
        let statistics = normalizer.getWeights()
        let model = Sequential {
            Input(shape: [3])
            normalizer
            Dense(16, activation: .relu)
            Dense(1)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanAbsoluteError())
        let history = try model.fit(x, y, batchSize: 16, epochs: 30, verbose: 0)
        let losses = try XCTUnwrap(history.history["loss"])
        XCTAssertLessThan(losses.last!, losses.first! * 0.5, "training reduces the loss")
        XCTAssertEqual(normalizer.getWeights(), statistics, "the optimizer leaves the statistics alone")
        XCTAssertEqual(model.layers[0].trainableParameterCount, 0)
        XCTAssertEqual(model.layers[0].parameterCount, 7)
    }
}
