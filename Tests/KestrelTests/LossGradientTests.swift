@testable import Kestrel
import XCTest

/// Every loss's gradient with respect to the predictions, against central differences.
final class LossGradientTests: XCTestCase {
    func checkGradient(_ loss: Loss, yTrue: Tensor, yPred: Tensor, file: StaticString = #filePath, line: UInt = #line) throws {
        let (_, gradient) = try loss.valueAndGradient(yTrue, yPred)
        let h: Float = 1e-3
        for i in 0..<yPred.count {
            var plus = yPred, minus = yPred
            plus.scalars[i] += h
            minus.scalars[i] -= h
            let numeric = (Double(try loss(yTrue, plus)) - Double(try loss(yTrue, minus))) / Double(2 * h)
            XCTAssertEqual(Double(gradient.scalars[i]), numeric, accuracy: 2e-3 * max(1, abs(numeric)),
                           "\(loss.name) d/dpred[\(i)]", file: file, line: line)
        }
    }

    var rng = RandomGenerator(seed: 21)

    func logits(_ shape: [Int]) -> Tensor { Tensor.randomUniform(shape, minval: -2, maxval: 2, generator: &rng) }

    func probabilities(_ shape: [Int]) -> Tensor { ActivationFunction.softmax(logits(shape)) }

    func testSparseCategoricalCrossentropy() throws {
        let labels = Tensor(labels: [0, 3, 1, 2])
        try checkGradient(SparseCategoricalCrossentropy(fromLogits: true), yTrue: labels, yPred: logits([4, 4]))
        try checkGradient(SparseCategoricalCrossentropy(), yTrue: labels, yPred: probabilities([4, 4]))
        // Sequence outputs: labels per position.
        let seqLabels = Tensor(shape: [2, 3], scalars: [0, 1, 2, 2, 1, 0])
        try checkGradient(SparseCategoricalCrossentropy(fromLogits: true), yTrue: seqLabels, yPred: logits([2, 3, 3]))
    }

    func testCategoricalCrossentropy() throws {
        let onehot = Tensor(shape: [3, 4], scalars: [1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0])
        try checkGradient(CategoricalCrossentropy(fromLogits: true), yTrue: onehot, yPred: logits([3, 4]))
        try checkGradient(CategoricalCrossentropy(fromLogits: true, labelSmoothing: 0.1), yTrue: onehot, yPred: logits([3, 4]))
        try checkGradient(CategoricalCrossentropy(), yTrue: onehot, yPred: probabilities([3, 4]))
        try checkGradient(CategoricalCrossentropy(labelSmoothing: 0.2), yTrue: onehot, yPred: probabilities([3, 4]))
    }

    func testBinaryCrossentropy() throws {
        let targets = Tensor(shape: [4, 2], scalars: [1, 0, 0, 1, 1, 1, 0, 0])
        try checkGradient(BinaryCrossentropy(fromLogits: true), yTrue: targets, yPred: logits([4, 2]))
        try checkGradient(BinaryCrossentropy(fromLogits: true, labelSmoothing: 0.1), yTrue: targets, yPred: logits([4, 2]))
        let p = Tensor.randomUniform([4, 2], minval: 0.05, maxval: 0.95, generator: &rng)
        try checkGradient(BinaryCrossentropy(), yTrue: targets, yPred: p)
    }

    func testRegressionLosses() throws {
        let y = logits([3, 2]), p = logits([3, 2])
        try checkGradient(MeanSquaredError(), yTrue: y, yPred: p)
        try checkGradient(MeanAbsoluteError(), yTrue: y, yPred: p)
        try checkGradient(Huber(), yTrue: y, yPred: p)
        try checkGradient(Huber(delta: 0.3), yTrue: y, yPred: p)
        // A one-unit output accepts labels without the unit axis, as in Keras.
        XCTAssertEqual(try MeanSquaredError()(Tensor([1, 2]), Tensor(shape: [2, 1], scalars: [1, 4])), 2)
    }

    /// Keras's other losses: regression (log, percentage, log-cosh, cosine), hinge and
    /// probabilistic ones; values against Keras are in KerasReferenceTests.
    func testOtherKerasLosses() throws {
        let positive = Tensor.randomUniform([3, 4], minval: 0.2, maxval: 3, generator: &rng)
        let y = logits([3, 4]), p = logits([3, 4])
        try checkGradient(MeanSquaredLogarithmicError(), yTrue: positive, yPred: Tensor.randomUniform([3, 4], minval: 0.2, maxval: 3, generator: &rng))
        try checkGradient(MeanAbsolutePercentageError(), yTrue: y, yPred: p)
        try checkGradient(LogCosh(), yTrue: y, yPred: p)
        try checkGradient(CosineSimilarity(), yTrue: y, yPred: p)
        try checkGradient(CosineSimilarity(), yTrue: logits([2, 3, 4]), yPred: logits([2, 3, 4]))
        let binary = Tensor(shape: [3, 4], scalars: [1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1])
        let signed = Tensor(shape: [3, 4], scalars: binary.scalars.map { 2 * $0 - 1 })
        for loss in [Hinge(), SquaredHinge()] as [Loss] {
            try checkGradient(loss, yTrue: binary, yPred: p)
            // 0/1 labels are turned into −1/1, as in Keras.
            XCTAssertEqual(try loss(binary, p), try loss(signed, p), accuracy: 1e-6, loss.name)
        }
        let onehot = Tensor(shape: [3, 4], scalars: [1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0])
        try checkGradient(CategoricalHinge(), yTrue: onehot, yPred: p)
        try checkGradient(KLDivergence(), yTrue: probabilities([3, 4]), yPred: probabilities([3, 4]))
        try checkGradient(Poisson(), yTrue: Tensor(shape: [3, 4], scalars: (0..<12).map { Float($0 % 4) }), yPred: positive)
        let targets = Tensor(shape: [3, 4], scalars: [1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1])
        try checkGradient(BinaryFocalCrossentropy(), yTrue: targets, yPred: Tensor.randomUniform([3, 4], minval: 0.05, maxval: 0.95, generator: &rng))
        try checkGradient(BinaryFocalCrossentropy(applyClassBalancing: true, gamma: 3, fromLogits: true, labelSmoothing: 0.1),
                          yTrue: targets, yPred: p)
        try checkGradient(CategoricalFocalCrossentropy(), yTrue: onehot, yPred: probabilities([3, 4]))
        try checkGradient(CategoricalFocalCrossentropy(alpha: 0.5, gamma: 1, fromLogits: true, labelSmoothing: 0.2), yTrue: onehot, yPred: p)
        // γ = 0 and α = 1 are the plain cross-entropies.
        XCTAssertEqual(try BinaryFocalCrossentropy(gamma: 0, fromLogits: true)(targets, p), try BinaryCrossentropy(fromLogits: true)(targets, p),
                       accuracy: 1e-5)
        XCTAssertEqual(try CategoricalFocalCrossentropy(alpha: 1, gamma: 0, fromLogits: true)(onehot, p),
                       try CategoricalCrossentropy(fromLogits: true)(onehot, p), accuracy: 1e-5)
        // Exact values on simple cases.
        XCTAssertEqual(try CosineSimilarity()(Tensor(shape: [1, 2], scalars: [1, 0]), Tensor(shape: [1, 2], scalars: [3, 0])), -1, accuracy: 1e-6)
        XCTAssertEqual(try MeanAbsolutePercentageError()(Tensor(shape: [1, 2], scalars: [2, 4]), Tensor(shape: [1, 2], scalars: [1, 5])),
                       37.5, accuracy: 1e-4)
        XCTAssertEqual(try CategoricalHinge()(Tensor(shape: [1, 3], scalars: [0, 1, 0]), Tensor(shape: [1, 3], scalars: [0.5, 2, 1.5])),
                       0.5, accuracy: 1e-6)
        XCTAssertEqual(try KLDivergence()(Tensor(shape: [1, 2], scalars: [0.5, 0.5]), Tensor(shape: [1, 2], scalars: [0.5, 0.5])), 0,
                       accuracy: 1e-7)
    }

    func testFusedSoftmaxCrossentropyMatchesSeparateSoftmax() throws {
        let z = logits([5, 7])
        let labels = Tensor(labels: [0, 6, 3, 2, 1])
        let fused = try SparseCategoricalCrossentropy(fromLogits: true)(labels, z)
        let separate = try SparseCategoricalCrossentropy()(labels, ActivationFunction.softmax(z))
        XCTAssertEqual(fused, separate, accuracy: 1e-5)
    }

    func testLabelErrorsAreThrownWithClearMessages() {
        let loss = SparseCategoricalCrossentropy(fromLogits: true)
        assertThrowsMessage(try loss(Tensor(labels: [0, 10]), logits([2, 10])), contains: ["label 10", "[0, 10)"])
        assertThrowsMessage(try loss(Tensor([0, 1.5]), logits([2, 10])), contains: ["1.5", "class index"])
        assertThrowsMessage(try loss(Tensor(shape: [2, 3], scalars: [0, 0, 0, 0, 0, 0]), logits([2, 10])),
                            contains: ["[3]", "[10]"])
        assertThrowsMessage(try MeanSquaredError()(logits([2, 3]), logits([2, 4])), contains: ["[3]", "[4]"])
    }
}

/// Cross-entropy on a sigmoid or softmax output is computed from the logits, as Keras's
/// TensorFlow backend does: same values, and no gradient lost to a saturated activation.
final class LogitsFusionTests: XCTestCase {
    func blobs() -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: 2)
        var x = [Float](), y = [Float]()
        for i in 0..<200 {
            let c = i % 2
            let (a, b) = rng.nextGaussianPair()
            x += [a + (c == 0 ? -3 : 3), b]
            y.append(Float(c))
        }
        return (Tensor(shape: [200, 2], scalars: x), Tensor(shape: [200, 1], scalars: y))
    }

    func testSaturatedSigmoidStillLearns() throws {
        let (x, y) = blobs()
        Kestrel.setRandomSeed(1)
        let model = Sequential { Dense(1, activation: .sigmoid, inputShape: [2]) }
        // Start saturated on the wrong side: |z| ≈ 24, where float32's sigmoid is exactly 0 or 1
        // and a clipped probability-form cross-entropy has no gradient at all.
        try model.setWeights([Tensor(shape: [2, 1], scalars: [-8, 0]), Tensor([0])])
        model.compile(optimizer: Adam(learningRate: 0.05), loss: BinaryCrossentropy(), metrics: [.accuracy])
        XCTAssertLessThan(try model.evaluate(x, y, verbose: 0)["accuracy"]!, 0.1)
        try model.fit(x, y, epochs: 60, verbose: 0)
        XCTAssertGreaterThan(try model.evaluate(x, y, verbose: 0)["accuracy"]!, 0.95)
    }

    func testLossValuesMatchTheProbabilityForm() throws {
        let (x, y) = blobs()
        Kestrel.setRandomSeed(2)
        let sigmoidModel = Sequential { Dense(1, activation: .sigmoid, inputShape: [2]) }
        sigmoidModel.compile(loss: BinaryCrossentropy())
        let reported = try sigmoidModel.evaluate(x, y, verbose: 0)["loss"]!
        XCTAssertEqual(reported, try BinaryCrossentropy()(y, try sigmoidModel.predict(x)), accuracy: 1e-5)

        let softmaxModel = Sequential {
            Dense(3, inputShape: [2])
            Softmax()
        }
        softmaxModel.compile(loss: SparseCategoricalCrossentropy())
        let labels = Tensor(labels: (0..<200).map { $0 % 3 })
        let value = try softmaxModel.evaluate(x, labels, verbose: 0)["loss"]!
        XCTAssertEqual(value, try SparseCategoricalCrossentropy()(labels, try softmaxModel.predict(x)), accuracy: 1e-5)
        // Gradients through the fused path agree with the unfused one on the same weights.
        let unfused = Sequential {
            Dense(3, inputShape: [2])
            Softmax()
            Activation(.linear)
        }
        try unfused.setWeights(try softmaxModel.getWeights())
        unfused.compile(loss: SparseCategoricalCrossentropy())
        let a = try softmaxModel.lossAndGradients(x, labels).gradients.tensors
        let b = try unfused.lossAndGradients(x, labels).gradients.tensors
        for (ga, gb) in zip(a, b) { assertClose(ga.scalars, gb.scalars, tolerance: 1e-4) }
    }
}
