@testable import Kestrel
import XCTest

final class LayerGradientTests: XCTestCase {
    static let allActivations: [ActivationFunction] = [
        .linear, .relu, .sigmoid, .tanh, .softmax, .elu, .elu(alpha: 0.5), .selu, .gelu, .gelu(approximate: true),
        .softplus, .softsign, .swish, .leakyRelu, .hardSigmoid, .exponential,
    ]

    func testDenseGradientsForEveryActivation() throws {
        Kestrel.setRandomSeed(17)
        for activation in Self.allActivations {
            let layer = Dense(4, activation: activation)
            try LayerHarness(layer, inputShapes: [[5]], batch: 3).check(epsilon: 3e-3, label: " \(activation)")
        }
    }

    func testDenseWithoutBiasAndOnRank3Input() throws {
        try LayerHarness(Dense(3, useBias: false), inputShapes: [[4]], batch: 2).check()
        try LayerHarness(Dense(3, activation: .tanh), inputShapes: [[2, 4]], batch: 2).check()
    }

    func testActivationLayerGradients() throws {
        for activation in Self.allActivations {
            try LayerHarness(Activation(activation), inputShapes: [[2, 6]], batch: 3, avoid: [0, -3, 3])
                .check(label: " \(activation)")
        }
    }

    func testReLUVariantsGradients() throws {
        try LayerHarness(ReLU(), inputShapes: [[7]], batch: 4).check()
        try LayerHarness(ReLU(maxValue: 0.8, negativeSlope: 0.1, threshold: 0.2), inputShapes: [[7]], batch: 4,
                         avoid: [0.2, 0.8]).check()
        try LayerHarness(LeakyReLU(), inputShapes: [[7]], batch: 4).check()
        try LayerHarness(LeakyReLU(negativeSlope: 0.05), inputShapes: [[7]], batch: 4).check()
    }

    func testELUAndPReLUGradients() throws {
        try LayerHarness(ELU(), inputShapes: [[7]], batch: 4).check()
        try LayerHarness(ELU(alpha: 0.4), inputShapes: [[2, 3]], batch: 3).check(label: " alpha 0.4")
        // Slopes drawn at random so that negative inputs have a gradient to check.
        let slopes = Initializer.randomUniform(minval: -0.5, maxval: 0.5)
        try LayerHarness(PReLU(alphaInitializer: slopes), inputShapes: [[3, 4]], batch: 3).check(label: " elementwise")
        try LayerHarness(PReLU(alphaInitializer: slopes, sharedAxes: [1, 2]), inputShapes: [[3, 2, 4]], batch: 2)
            .check(label: " shared [1, 2]")
        try LayerHarness(PReLU(alphaInitializer: slopes, sharedAxes: [2]), inputShapes: [[3, 2, 4]], batch: 2)
            .check(label: " shared [2]")
    }

    func testPReLUSlopesAndSharing() throws {
        let layer = PReLU(sharedAxes: [1, 2])
        XCTAssertEqual(try layer.build(inputShape: [2, 3, 2]), [2, 3, 2])
        XCTAssertEqual(layer.weightSpecs.map(\.shape), [[1, 1, 2]])
        try layer.setWeights([Tensor(shape: [1, 1, 2], scalars: [0.1, -2])])
        // Channel 0 slopes 0.1, channel 1 slopes −2; positive inputs pass.
        let x = Tensor(shape: [1, 2, 3, 2], scalars: [-1, -1, 2, 3, -4, -5, 1, -2, -3, 0.5, 6, -7])
        XCTAssertEqual(try layer(x).scalars, [-0.1, 2, 2, 3, -0.4, 10, 1, 4, -0.3, 0.5, 6, 14])
        XCTAssertEqual(try PReLU().build(inputShape: [3, 4]), [3, 4])
        assertThrowsMessage(try PReLU(sharedAxes: [3]).build(inputShape: [3, 4]), contains: ["PReLU", "sharedAxes", "3", "[3, 4]"])
        assertThrowsMessage(try PReLU(sharedAxes: [0]).build(inputShape: [3, 4]), contains: ["PReLU", "batch axis"])
    }

    func testSoftmaxLayerGradientsOnEachAxis() throws {
        try LayerHarness(Softmax(), inputShapes: [[3, 4]], batch: 2).check()
        try LayerHarness(Softmax(axis: 1), inputShapes: [[3, 4]], batch: 2).check()
    }

    func testReshapingLayersAndDropoutGradients() throws {
        try LayerHarness(Flatten(), inputShapes: [[2, 3]], batch: 2).check()
        try LayerHarness(Reshape([3, -1]), inputShapes: [[2, 3]], batch: 2).check()
        try LayerHarness(Dropout(0.4), inputShapes: [[10]], batch: 3, training: true).check()
        try LayerHarness(Dropout(0.4), inputShapes: [[10]], batch: 3, training: false).check()
    }

    func testShapeInference() throws {
        XCTAssertEqual(try Dense(7).build(inputShape: [3, 5]), [3, 7])
        XCTAssertEqual(try Flatten().build(inputShape: [28, 28]), [784])
        XCTAssertEqual(try Reshape([-1, 2]).build(inputShape: [3, 4]), [6, 2])
        XCTAssertEqual(try Activation(.relu).build(inputShape: [4]), [4])
        XCTAssertEqual(try Dropout(0.5).build(inputShape: [4, 2]), [4, 2])
        XCTAssertEqual(try Softmax().build(inputShape: [9]), [9])
        XCTAssertEqual(try ReLU().build(inputShape: [1, 2, 3]), [1, 2, 3])
        XCTAssertEqual(try LeakyReLU().build(inputShape: [5]), [5])
        XCTAssertEqual(try ELU().build(inputShape: [2, 5]), [2, 5])
        XCTAssertEqual(try Identity().build(inputShape: [3, 1]), [3, 1])
        XCTAssertEqual(try GaussianNoise(0.1).build(inputShape: [4, 2]), [4, 2])
        XCTAssertEqual(try GaussianDropout(0.1).build(inputShape: [4]), [4])
        XCTAssertEqual(try AlphaDropout(0.1).build(inputShape: [2, 2, 2]), [2, 2, 2])
        assertThrowsMessage(try Reshape([5, -1]).build(inputShape: [3, 4]), contains: ["Reshape", "[3, 4]", "[5, -1]"])
        assertThrowsMessage(try Dense(3).build(inputShape: []), contains: ["Dense", "[]"])
        assertThrowsMessage(try Dense(0).build(inputShape: [4]), contains: ["units", "0"])
        assertThrowsMessage(try Dropout(1.5).build(inputShape: [4]), contains: ["rate", "1.5"])
        assertThrowsMessage(try Softmax(axis: 3).build(inputShape: [4]), contains: ["Softmax", "axis 3"])
    }

    func testDenseInitialisationFollowsKeras() throws {
        Kestrel.setRandomSeed(3)
        let dense = Dense(128)
        try dense.build(inputShape: [784])
        let kernel = dense.getWeights()[0].scalars
        let limit = (6.0 / Float(784 + 128)).squareRoot()
        XCTAssertTrue(kernel.allSatisfy { abs($0) <= limit })
        XCTAssertGreaterThan(kernel.max()!, 0.9 * limit)
        XCTAssertEqual(dense.getWeights()[1].scalars, [Float](repeating: 0, count: 128))
    }

    func testLayerNamesAreUniqueAndKerasLike() {
        XCTAssertEqual(LayerNames.snakeCase("LeakyReLU"), "leaky_re_lu")
        XCTAssertEqual(LayerNames.snakeCase("Conv2D"), "conv2d")
        XCTAssertEqual(LayerNames.snakeCase("BatchNormalization"), "batch_normalization")
        let a = Dense(2), b = Dense(2)
        XCTAssertNotEqual(a.name, b.name)
        XCTAssertTrue(b.name.hasPrefix("dense"))
    }
}
