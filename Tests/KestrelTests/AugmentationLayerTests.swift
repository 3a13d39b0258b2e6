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
