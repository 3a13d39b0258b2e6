@testable import Kestrel
import XCTest

/// RandomFlip, RandomRotation, RandomZoom and RandomTranslation: shapes and argument errors,
/// gradients of the per-sample resampling, inference as the identity, exact known transforms,
/// and the spread of the random draws. Their outputs and input gradients against Keras (with
/// each range one value wide, so Keras's draw is fixed) are in ConvReferenceTests
/// (fixtures `random_*`).
final class AugmentationLayerTests: XCTestCase {
    func testShapesAndErrors() throws {
        let make: [() -> Layer] = [{ RandomFlip() }, { RandomRotation(0.1) }, { RandomZoom(heightFactor: 0.2) },
                                   { RandomTranslation(heightFactor: 0.1, widthFactor: 0.2) }]
        for make in make {
            let layer = make()
            XCTAssertEqual(try layer.build(inputShape: [5, 4, 3]), [5, 4, 3])
            XCTAssertEqual(layer.parameterCount, 0)
            assertThrowsMessage(try make().build(inputShape: [5, 4]), contains: [layer.className, "rank 3"])
        }
        XCTAssertEqual(AugmentationRange(0.2).bounds?.lower, -0.2)
        XCTAssertEqual(AugmentationRange(0.3, -0.1).bounds?.lower, -0.1)
        let literal: AugmentationRange = [0.1, 0.4]
        XCTAssertEqual(literal.bounds?.upper, 0.4)
        assertThrowsMessage(try RandomRotation(1.5).build(inputShape: [4, 4, 1]),
                            contains: ["RandomRotation", "factor", "[-1.0, 1.0]", "1.5"])
        assertThrowsMessage(try RandomZoom(heightFactor: [-1, 0.2]).build(inputShape: [4, 4, 1]),
                            contains: ["RandomZoom", "heightFactor", "(-1.0, 1.0]"])
        assertThrowsMessage(try RandomZoom(heightFactor: 0.2, widthFactor: [0.1, 0.2, 0.3]).build(inputShape: [4, 4, 1]),
                            contains: ["widthFactor", "one number or two"])
        assertThrowsMessage(try RandomTranslation(heightFactor: 0.1, widthFactor: -2).build(inputShape: [4, 4, 1]),
                            contains: ["RandomTranslation", "widthFactor"])
    }

    func testGradients() throws {
        let layers: [(String, Layer)] = [
            ("rotation reflect bilinear", RandomRotation(0.2, seed: 1)),
            ("rotation constant nearest", RandomRotation(0.3, fillMode: .constant, interpolation: .nearest, seed: 2, fillValue: 0.5)),
            ("zoom wrap", RandomZoom(heightFactor: 0.3, widthFactor: [-0.4, 0.2], fillMode: .wrap, seed: 3)),
            ("zoom nearest fill", RandomZoom(heightFactor: [0.1, 0.5], fillMode: .nearest, seed: 4)),
            ("translation constant", RandomTranslation(heightFactor: 0.3, widthFactor: 0.3, fillMode: .constant, seed: 5)),
            ("flip both", RandomFlip(seed: 6)),
            ("flip horizontal", RandomFlip(mode: .horizontal, seed: 7)),
        ]
        for (label, layer) in layers {
            try LayerHarness(layer, inputShapes: [[5, 4, 2]], batch: 3).check(label: " " + label)
        }
    }

    /// Outside training the layers are the identity (Keras applies augmentation only in `fit`).
    func testInferencePassesImagesThrough() throws {
        let x = Tensor.randomUniform([8, 6, 5, 2])
        for layer in [RandomFlip(seed: 1), RandomRotation(0.4, seed: 2), RandomZoom(heightFactor: 0.5, seed: 3),
                      RandomTranslation(heightFactor: 0.5, widthFactor: 0.5, seed: 4)] as [Layer] {
            XCTAssertEqual(try layer(x, training: false), x, layer.className)
            XCTAssertNotEqual(try layer(x, training: true), x, layer.className)
        }
    }

    /// Transforms with a known result: a quarter turn (counter-clockwise, as Keras's positive
    /// angles), a whole-pixel shift with a constant fill, a zoom by exactly 1.
    func testKnownTransforms() throws {
        let image = Tensor(shape: [1, 3, 3, 1], scalars: (0..<9).map { Float($0) })
        let quarter = try RandomRotation([0.25, 0.25])(image, training: true)
        // np.rot90: out[i][j] = in[j][n − 1 − i].
        let expected: [Float] = [2, 5, 8, 1, 4, 7, 0, 3, 6]
        for (a, e) in zip(quarter.scalars, expected) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        let shifted = try RandomTranslation(heightFactor: [1.0 / 3, 1.0 / 3], widthFactor: 0, fillMode: .constant, fillValue: -1)(
            image, training: true)
        for (a, e) in zip(shifted.scalars, [-1, -1, -1, 0, 1, 2, 3, 4, 5] as [Float]) { XCTAssertEqual(a, e, accuracy: 1e-5) }
        XCTAssertEqual(try RandomZoom(heightFactor: 0)(image, training: true), image)
        let wrapped = try RandomTranslation(heightFactor: 0, widthFactor: [1.0 / 3, 1.0 / 3], fillMode: .wrap)(image, training: true)
        for (a, e) in zip(wrapped.scalars, [2, 0, 1, 5, 3, 4, 8, 6, 7] as [Float]) { XCTAssertEqual(a, e, accuracy: 1e-5) }
    }

    /// RandomFlip mirrors about half the images, each whole; "horizontal_and_vertical" turns
    /// an image half way or leaves it (one draw, as Keras).
    func testFlipsWholeImagesAboutHalfTheTime() throws {
        let x = Tensor(shape: [200, 2, 3, 1], scalars: (0..<1200).map { Float($0 % 6) })
        for mode in FlipMode.allCases {
            let y = try RandomFlip(mode: mode, seed: 11)(x, training: true)
            var flipped = 0
            for n in 0..<200 {
                let image = Array(y.scalars[(n * 6)..<(n * 6 + 6)])
                let mirrored: [Float] = switch mode {
                case .horizontal: [2, 1, 0, 5, 4, 3]
                case .vertical: [3, 4, 5, 0, 1, 2]
                case .horizontalAndVertical: [5, 4, 3, 2, 1, 0]
                }
                if image == mirrored { flipped += 1 } else { XCTAssertEqual(image, [0, 1, 2, 3, 4, 5], "\(mode) image \(n)") }
            }
            XCTAssertGreaterThan(flipped, 70, "\(mode)")
            XCTAssertLessThan(flipped, 130, "\(mode)")
        }
    }

    /// Rotation angles spread over the whole range: a single bright pixel off-centre lands at
    /// angles covering both directions.
    func testDrawsCoverTheRange() throws {
        var scalars = [Float](repeating: 0, count: 400 * 9 * 9)
        for n in 0..<400 { scalars[n * 81 + 4 * 9 + 8] = 1 }   // row 4, column 8: right of centre
        let y = try RandomRotation(0.25, fillMode: .constant, interpolation: .nearest, seed: 3)(
            Tensor(shape: [400, 9, 9, 1], scalars: scalars), training: true)
        var above = 0, below = 0
        for n in 0..<400 {
            guard let k = (0..<81).first(where: { y.scalars[n * 81 + $0] == 1 }) else { continue }
            if k / 9 < 4 { above += 1 } else if k / 9 > 4 { below += 1 }
        }
        // ±90°: about half the pixels turn up (counter-clockwise), half down.
        XCTAssertGreaterThan(above, 120)
        XCTAssertGreaterThan(below, 120)
    }
}

/// RandomContrast, RandomBrightness and RandomCrop: shapes and argument errors, gradients
/// (cropping, resizing and the clip), inference, exact known results and the spread of the
/// draws. Contrast and brightness against Keras are in ConvReferenceTests (`random_contrast_*`,
/// `random_brightness_*`); RandomCrop's resize is Resizing's, checked against Keras there.
final class ColorAndCropAugmentationTests: XCTestCase {
    func testShapesAndErrors() throws {
        XCTAssertEqual(try RandomContrast(0.2).build(inputShape: [5, 4, 3]), [5, 4, 3])
        XCTAssertEqual(try RandomBrightness(0.2).build(inputShape: [5, 4, 3]), [5, 4, 3])
        XCTAssertEqual(try RandomCrop(3, 2).build(inputShape: [5, 4, 3]), [3, 2, 3])
        XCTAssertEqual(try RandomCrop(8, 9).build(inputShape: [5, 4, 3]), [8, 9, 3])
        for layer in [RandomContrast(0.1), RandomBrightness(0.1), RandomCrop(2, 2)] as [Layer] {
            assertThrowsMessage(try layer.build(inputShape: [5, 4]), contains: [layer.className, "rank 3", "[5, 4]"])
        }
        // Keras's documented range: one number f is 1 − f…1 + f, a pair [a, b] 1 − a…1 + b.
        XCTAssertEqual(RandomContrast(0.2).contrastRange?.lower ?? 0, 0.8, accuracy: 1e-7)
        XCTAssertEqual(RandomContrast(0.2).contrastRange?.upper ?? 0, 1.2, accuracy: 1e-7)
        XCTAssertEqual(RandomContrast([0.4, 0.1]).contrastRange?.lower ?? 0, 0.9, accuracy: 1e-7)
        XCTAssertEqual(RandomContrast([0.4, 0.1]).contrastRange?.upper ?? 0, 1.4, accuracy: 1e-7)
        assertThrowsMessage(try RandomContrast(1.5).build(inputShape: [4, 4, 1]),
                            contains: ["RandomContrast", "factor", "[0.0, 1.0]", "1.5"])
        assertThrowsMessage(try RandomContrast([0.1, -2]).build(inputShape: [4, 4, 1]), contains: ["[-1.0, 1.0]", "-2.0"])
        assertThrowsMessage(try RandomBrightness([0.1, 1.2]).build(inputShape: [4, 4, 1]),
                            contains: ["RandomBrightness", "factor", "[-1.0, 1.0]"])
        assertThrowsMessage(try RandomBrightness(0.1, valueRange: 0...Float.infinity).build(inputShape: [4, 4, 1]),
                            contains: ["RandomBrightness", "valueRange", "finite"])
        assertThrowsMessage(try RandomCrop(0, 2).build(inputShape: [4, 4, 1]), contains: ["RandomCrop", "positive", "0"])
    }

    func testGradients() throws {
        let layers: [(String, Layer, [Int], Bool)] = [
            ("contrast", RandomContrast(0.4, valueRange: -1.6...1.6, seed: 1), [4, 3, 2], true),
            ("contrast no clip", RandomContrast([0.3, 0.6], valueRange: -50...50, seed: 2), [3, 3, 3], true),
            ("brightness", RandomBrightness(0.3, valueRange: -1...1, seed: 3), [4, 3, 2], true),
            ("crop", RandomCrop(3, 2, seed: 4), [5, 4, 2], true),
            ("crop too small: resized", RandomCrop(4, 5, seed: 5), [3, 6, 1], true),
            ("crop inference", RandomCrop(3, 3, seed: 6), [5, 4, 2], false),
        ]
        for (label, layer, shape, training) in layers {
            try LayerHarness(layer, inputShapes: [shape], batch: 3, training: training).check(label: " " + label)
        }
    }

    /// Outside training contrast and brightness are the identity; RandomCrop resizes the centred
    /// window of the target's aspect ratio, as Resizing with cropToAspectRatio.
    func testInference() throws {
        let x = Tensor.randomUniform([4, 6, 5, 2], minval: 0, maxval: 255)
        for layer in [RandomContrast(0.5, seed: 1), RandomBrightness(0.5, seed: 2)] as [Layer] {
            XCTAssertEqual(try layer(x, training: false), x, layer.className)
            XCTAssertNotEqual(try layer(x, training: true), x, layer.className)
        }
        for (height, width) in [(3, 2), (4, 4), (9, 3), (6, 5)] {
            let resized = try Resizing(height, width, cropToAspectRatio: true)(x)
            XCTAssertEqual(try RandomCrop(height, width)(x, training: false), resized, "\(height)×\(width)")
        }
        // In training too when the input does not cover the target.
        XCTAssertEqual(try RandomCrop(9, 3)(x, training: true), try Resizing(9, 3, cropToAspectRatio: true)(x))
        XCTAssertEqual(try RandomCrop(6, 5)(x, training: true), x)
    }

    /// One-value ranges give known results: contrast 2 about each channel's mean, brightness
    /// +1 on 0…10, both clipped.
    func testKnownResults() throws {
        let image = Tensor(shape: [1, 2, 2, 2], scalars: [1, 10, 2, 10, 3, 10, 10, 0])
        // Channel means 4 and 7.5; (x − m)·2 + m, clipped to 0…10.
        let contrast = try RandomContrast([-1, 1], valueRange: 0...10)(image, training: true)
        XCTAssertEqual(contrast.scalars, [0, 10, 0, 10, 2, 10, 10, 0])
        let brighter = try RandomBrightness([0.1, 0.1], valueRange: 0...10)(image, training: true)
        XCTAssertEqual(brighter.scalars, [2, 10, 3, 10, 4, 10, 10, 1])
    }

    /// The drawn factors spread over the whole range, on both sides of 1 for contrast (Keras
    /// 3.x's own single-number reading only raises it), and each image draws its own.
    func testDrawsCoverTheRange() throws {
        let x = Tensor(shape: [300, 1, 2, 1], scalars: (0..<600).map { (i: Int) -> Float in i % 2 == 0 ? 100 : 110 })
        let contrast = try RandomContrast(0.5, seed: 9)(x, training: true)
        let c = contrast.scalars
        let factors: [Float] = (0..<300).map { (n: Int) -> Float in (c[2 * n + 1] - c[2 * n]) / 10 }
        XCTAssertGreaterThanOrEqual(factors.min()!, 0.5 - 1e-4)
        XCTAssertLessThanOrEqual(factors.max()!, 1.5 + 1e-4)
        XCTAssertGreaterThan(factors.filter { $0 < 0.75 }.count, 50)
        XCTAssertGreaterThan(factors.filter { $0 > 1.25 }.count, 50)
        let brightness = try RandomBrightness(0.2, seed: 9)(x, training: true)
        let b = brightness.scalars
        let deltas: [Float] = (0..<300).map { (n: Int) -> Float in b[2 * n] - 100 }
        XCTAssertGreaterThanOrEqual(deltas.min()!, -51.001)
        XCTAssertLessThanOrEqual(deltas.max()!, 51.001)
        XCTAssertGreaterThan(deltas.filter { $0 < -25 }.count, 50)
        XCTAssertGreaterThan(deltas.filter { $0 > 25 }.count, 50)
    }

    /// Training crops one window per batch (as Keras), the same for every image in it, at
    /// positions covering every offset over repeated batches.
    func testCropsOneRandomWindowPerBatch() throws {
        let (rows, columns, height, width) = (6, 5, 3, 2)
        let count = 4 * rows * columns
        let x = Tensor(shape: [4, rows, columns, 1], scalars: (0..<count).map { Float($0) })
        let layer = RandomCrop(height, width, seed: 12)
        var seen = Set<[Int]>()
        for _ in 0..<200 {
            let y = try layer(x, training: true)
            XCTAssertEqual(y.shape, [4, height, width, 1])
            let first = Int(y.scalars[0])
            let (top, left) = (first / columns, first % columns)
            XCTAssertLessThanOrEqual(top, rows - height)
            XCTAssertLessThanOrEqual(left, columns - width)
            for n in 0..<4 {
                for i in 0..<height {
                    for j in 0..<width {
                        let source: Int = n * rows * columns + (top + i) * columns + left + j
                        let index: Int = (n * height + i) * width + j
                        XCTAssertEqual(y.scalars[index], Float(source))
                    }
                }
            }
            seen.insert([top, left])
        }
        XCTAssertEqual(seen.count, (rows - height + 1) * (columns - width + 1))
    }

    func testRandomInvertAndGrayscaleChooseImagesWithKerasProbabilities() throws {
        try LayerHarness(RandomInvert(factor: [0.5, 0.5], valueRange: 0...1), inputShapes: [[3, 2, 2]], batch: 4).check(label: " invert")
        try LayerHarness(RandomGrayscale(), inputShapes: [[2, 3, 3]], batch: 4).check(label: " grayscale")
        let x = Tensor.randomUniform([400, 2, 2, 3], minval: 0, maxval: 1)
        // One number f draws each image's probability from 0…f (Keras 3): 1.0 inverts half.
        let inverted = try RandomInvert(valueRange: 0...1, seed: 3)(x, training: true)
        var count = 0
        for b in 0..<400 {
            let first = b * 12
            if abs(inverted.scalars[first] - (1 - x.scalars[first])) < 1e-6 && abs(inverted.scalars[first] - x.scalars[first]) > 1e-6 {
                count += 1
                for i in first..<(first + 12) { XCTAssertEqual(inverted.scalars[i], 1 - x.scalars[i], accuracy: 1e-6) }
            } else {
                XCTAssertEqual(Array(inverted.scalars[first..<(first + 12)]), Array(x.scalars[first..<(first + 12)]))
            }
        }
        XCTAssertEqual(Double(count) / 400, 0.5, accuracy: 0.08)
        let grey = try RandomGrayscale(factor: 0.3, seed: 4)(x, training: true)
        var greyCount = 0
        for p in 0..<(400 * 4) {
            let (r, g, b) = (x.scalars[3 * p], x.scalars[3 * p + 1], x.scalars[3 * p + 2])
            guard grey.scalars[3 * p] != r || grey.scalars[3 * p + 1] != g else { continue }
            greyCount += 1
            let luma = 0.2989 * r + 0.587 * g + 0.114 * b
            for k in 0..<3 { XCTAssertEqual(grey.scalars[3 * p + k], luma, accuracy: 1e-6) }
        }
        XCTAssertEqual(Double(greyCount) / 1600, 0.3, accuracy: 0.08)
        XCTAssertEqual(try RandomGrayscale(factor: 1)(x).scalars, x.scalars, "inference passes images through")
        assertThrowsMessage(try RandomGrayscale().build(inputShape: [4, 4, 2]), contains: ["RandomGrayscale", "3 channels", "[4, 4, 2]"])
        assertThrowsMessage(try RandomGrayscale(factor: 1.5).build(inputShape: [4, 4, 3]), contains: ["factor", "1.5"])
        assertThrowsMessage(try RandomInvert(factor: [0.2, 1.4]).build(inputShape: [4, 4, 1]), contains: ["RandomInvert", "factor"])
    }
}
