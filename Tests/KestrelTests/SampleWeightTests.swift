@testable import Kestrel
import XCTest

// Fixture: Fixtures/sample_weights.json, written by make_weight_fixtures.py next to this file
// (Keras 3.15 on TensorFlow).

/// Sample and class weights as Keras applies them: losses called with `sample_weight`, `fit`
/// with `class_weight` or `sample_weight`, `evaluate` with `sample_weight`, the split of
/// weights by `validationSplit`, and weights on a masked sequence output.
final class SampleWeightTests: XCTestCase {
    struct Fixture: Decodable {
        struct LossCase: Decodable {
            let loss: String
            let yTrue, yPred, sampleWeight: KerasFixtureTensor
            let value: Float
        }
        struct Trained: Decodable {
            let weights: [KerasFixtureTensor]
            let loss: [Float]
            let accuracy: [Float]?
        }
        struct Training: Decodable {
            let x, y: KerasFixtureTensor
            let classWeight: [String: Float]
            let initialWeights: [KerasFixtureTensor]
            let classWeighted, sampleWeighted: Trained
            let evaluateSampleWeight: KerasFixtureTensor
            let evaluate: [String: Float]
            let split: [String: Float]
        }
        struct Masked: Decodable {
            let tokens, labels, sampleWeight: KerasFixtureTensor
            let weights: [KerasFixtureTensor]
            let loss, unweightedLoss: Float
        }
        let losses: [LossCase]
        let training: Training
        let masked: Masked
    }

    func fixture() throws -> Fixture { try KerasFixtures.load("sample_weights", as: Fixture.self) }

    func testWeightedLossesMatchKeras() throws {
        let losses: [String: Loss] = [
            "mean_squared_error": MeanSquaredError(), "mean_absolute_error": MeanAbsoluteError(), "huber": Huber(),
            "sparse_categorical_crossentropy_logits": SparseCategoricalCrossentropy(fromLogits: true),
            "categorical_crossentropy": CategoricalCrossentropy(), "binary_crossentropy": BinaryCrossentropy(),
            "mean_squared_error_sequence": MeanSquaredError(),
        ]
        let cases = try fixture().losses
        XCTAssertEqual(cases.count, losses.count)
        for c in cases {
            let loss = try XCTUnwrap(losses[c.loss], c.loss)
            let value = try loss(c.yTrue.tensor, c.yPred.tensor, sampleWeight: c.sampleWeight.tensor)
            assertMatchesKeras([value], [c.value], c.loss)
            // All weights 1 is the unweighted loss.
            let ones = Tensor(filling: 1, shape: c.sampleWeight.shape)
            XCTAssertEqual(try loss(c.yTrue.tensor, c.yPred.tensor, sampleWeight: ones),
                           try loss(c.yTrue.tensor, c.yPred.tensor), accuracy: 1e-6, c.loss)
        }
        assertThrowsMessage(try MeanSquaredError()(Tensor.zeros([4, 3]), Tensor.zeros([4, 3]), sampleWeight: Tensor.zeros([3])),
                            contains: ["one weight per sample", "[4]", "[3]"])
    }

    func classifier(_ f: Fixture.Training) throws -> Sequential {
        let model = Sequential {
            Input(shape: [4])
            Dense(5, activation: .tanh)
            Dense(3)
        }
        model.compile(optimizer: SGD(learningRate: 0.2), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        try model.setWeights(f.initialWeights.map(\.tensor))
        return model
    }

    /// Two epochs of Keras's `fit` with `class_weight`, and with the same weights given per
    /// sample, end with Keras's weights and report its losses; `evaluate` and a split agree.
    func testFitAndEvaluateWithWeightsMatchKeras() throws {
        let f = try fixture().training
        let classWeight = Dictionary(uniqueKeysWithValues: f.classWeight.map { (Int($0.key)!, $0.value) })
        let byClass = try classifier(f)
        let h1 = try byClass.fit(f.x.tensor, f.y.tensor, batchSize: 4, epochs: 2, verbose: 0, shuffle: false,
                                 classWeight: classWeight)
        for (w, e) in zip(try byClass.getWeights(), f.classWeighted.weights) { assertMatchesKeras(w.scalars, e.values, "class-weighted weights") }
        assertMatchesKeras(h1.history["loss"]!, f.classWeighted.loss, "class-weighted loss")
        XCTAssertEqual(h1.history["accuracy"]!, f.classWeighted.accuracy!, "metrics stay unweighted")

        let weights = Tensor(shape: [10], scalars: f.y.values.map { classWeight[Int($0)] ?? 1 })
        let bySample = try classifier(f)
        let h2 = try bySample.fit(f.x.tensor, f.y.tensor, batchSize: 4, epochs: 2, verbose: 0, shuffle: false,
                                  sampleWeight: weights)
        for (w, e) in zip(try bySample.getWeights(), f.sampleWeighted.weights) { assertMatchesKeras(w.scalars, e.values, "sample-weighted weights") }
        assertMatchesKeras(h2.history["loss"]!, f.sampleWeighted.loss, "sample-weighted loss")

        let evaluated = try bySample.evaluate(f.x.tensor, f.y.tensor, batchSize: 3, verbose: 0,
                                              sampleWeight: f.evaluateSampleWeight.tensor)
        assertMatchesKeras([evaluated["loss"]!], [f.evaluate["loss"]!], "evaluate loss")
        XCTAssertEqual(evaluated["accuracy"]!, f.evaluate["accuracy"]!, accuracy: 1e-6)

        let split = try classifier(f)
        let h3 = try split.fit(f.x.tensor, f.y.tensor, batchSize: 4, epochs: 1, verbose: 0, validationSplit: 0.3,
                               shuffle: false, sampleWeight: weights)
        assertMatchesKeras(h3.history["loss"]!, [f.split["loss"]!], "split loss")
        assertMatchesKeras(h3.history["val_loss"]!, [(f.split["val_loss"] ?? f.split["valLoss"])!], "split val_loss")

        // The same training from batches carrying their weights, and from batches with classWeight.
        let fromBatches = try classifier(f)
        try fromBatches.fit(try TensorBatches(f.x.tensor, f.y.tensor, sampleWeights: weights, batchSize: 4), epochs: 2,
                            verbose: 0, shuffle: false)
        XCTAssertEqual(try fromBatches.getWeights(), try bySample.getWeights())
        let fromClasses = try classifier(f)
        try fromClasses.fit(try TensorBatches(f.x.tensor, f.y.tensor, batchSize: 4), epochs: 2, verbose: 0, shuffle: false,
                            classWeight: classWeight)
        XCTAssertEqual(try fromClasses.getWeights(), try byClass.getWeights())
        XCTAssertEqual(try bySample.evaluate(try TensorBatches(f.x.tensor, f.y.tensor, sampleWeights: f.evaluateSampleWeight.tensor,
                                                               batchSize: 3), verbose: 0)["loss"]!,
                       evaluated["loss"]!, accuracy: 1e-6)

        // trainOnBatch takes them too: one step on the whole set, both ways.
        let a = try classifier(f), b = try classifier(f)
        _ = try a.trainOnBatch(f.x.tensor, f.y.tensor, classWeight: classWeight)
        _ = try b.trainOnBatch(f.x.tensor, f.y.tensor, sampleWeight: weights)
        XCTAssertEqual(try a.getWeights(), try b.getWeights())
    }

    /// Keras multiplies the mask by the sample weights: Σ w·loss over unmasked steps / their number.
    func testMaskedSequenceOutputWeightsMatchKeras() throws {
        let f = try fixture().masked
        let model = Sequential {
            Input(shape: [5])
            Embedding(inputDim: 6, outputDim: 4, maskZero: true)
            Dense(2)
        }
        model.compile(optimizer: SGD(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try model.setWeights(f.weights.map(\.tensor))
        let weighted = try model.evaluate(f.tokens.tensor, f.labels.tensor, batchSize: 3, verbose: 0,
                                          sampleWeight: f.sampleWeight.tensor)
        assertMatchesKeras([weighted["loss"]!], [f.loss], "masked weighted loss")
        let plain = try model.evaluate(f.tokens.tensor, f.labels.tensor, batchSize: 3, verbose: 0)
        assertMatchesKeras([plain["loss"]!], [f.unweightedLoss], "masked loss")
        // Training with weights moves the weights differently from training without.
        let before = try model.getWeights()
        _ = try model.trainOnBatch(f.tokens.tensor, f.labels.tensor, sampleWeight: f.sampleWeight.tensor)
        let weightedStep = try model.getWeights()
        try model.setWeights(before)
        _ = try model.trainOnBatch(f.tokens.tensor, f.labels.tensor)
        XCTAssertNotEqual(try model.getWeights(), weightedStep)
    }

    func testArgumentErrors() throws {
        let model = Sequential {
            Input(shape: [4])
            Dense(3)
        }
        model.compile(optimizer: SGD(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = Tensor.zeros([6, 4]), y = Tensor(labels: [0, 1, 2, 0, 1, 2])
        assertThrowsMessage(try model.fit(x, y, verbose: 0, sampleWeight: Tensor.zeros([5])),
                            contains: ["fit", "one weight per sample", "[6]", "[5]"])
        assertThrowsMessage(try model.fit(x, y, verbose: 0, classWeight: [0: 2], sampleWeight: Tensor.zeros([6])),
                            contains: ["classWeight or sampleWeight, not both"])
        assertThrowsMessage(try model.evaluate(x, y, verbose: 0, sampleWeight: Tensor.zeros([6, 2])),
                            contains: ["evaluate", "one weight per sample"])
        let sequences = Sequential {
            Input(shape: [3, 4])
            Dense(2)
        }
        sequences.compile(optimizer: SGD(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        assertThrowsMessage(try sequences.fit(Tensor.zeros([2, 3, 4]), Tensor.zeros([2, 3]), verbose: 0, classWeight: [1: 2]),
                            contains: ["classWeight needs labels of class indices"])
    }
}
