@testable import Kestrel
import XCTest

/// Records every hook call, and can stop training after a given epoch.
final class RecordingCallback: Callback {
    var events: [String] = []
    var stopAfterEpoch: Int?
    weak var model: Model?
    func setModel(_ model: Model) { self.model = model }
    func onTrainBegin(logs: [String: Float]) { events.append("trainBegin") }
    func onTrainEnd(logs: [String: Float]) { events.append("trainEnd") }
    func onEpochBegin(_ epoch: Int, logs: [String: Float]) { events.append("epochBegin\(epoch)") }
    func onEpochEnd(_ epoch: Int, logs: [String: Float]) {
        events.append("epochEnd\(epoch):" + logs.keys.sorted().joined(separator: ","))
        if epoch == stopAfterEpoch { model?.stopTraining = true }
    }
    func onTrainBatchBegin(_ batch: Int, logs: [String: Float]) { events.append("batchBegin\(batch)") }
    func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) { events.append("batchEnd\(batch)") }
    func onTestBegin(logs: [String: Float]) { events.append("testBegin") }
    func onTestEnd(logs: [String: Float]) { events.append("testEnd") }
    func onPredictBegin(logs: [String: Float]) { events.append("predictBegin") }
    func onPredictEnd(logs: [String: Float]) { events.append("predictEnd") }
}

final class ModelAPITests: XCTestCase {
    func tutorialModel() -> Sequential {
        Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
    }

    func testSummaryMatchesKerasLayout() throws {
        let model = Sequential(name: "tutorial") {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu, name: "hidden")
            Dense(10, name: "logits")
        }
        let text = try model.summaryText()
        XCTAssertTrue(text.hasPrefix("Model: \"tutorial\""))
        XCTAssertTrue(text.contains("┃ Layer (type)"))
        XCTAssertTrue(text.contains("│ hidden (Dense)"))
        XCTAssertTrue(text.contains("(None, 128)"))
        XCTAssertTrue(text.contains("100,480"))
        XCTAssertTrue(text.contains(" Total params: 101,770 (397.54 KB)"))
        XCTAssertTrue(text.contains(" Trainable params: 101,770 (397.54 KB)"))
        XCTAssertTrue(text.contains(" Non-trainable params: 0 (0.00 B)"))
        XCTAssertEqual(try model.countParams(), 101_770)
    }

    func testBuilderArrayAddAndPop() throws {
        let model = Sequential([Dense(4, inputShape: [3]), Dense(2)])
        XCTAssertEqual(model.layers.count, 2)
        try model.add(Dense(5))
        XCTAssertEqual(model.outputShape, [5])
        let popped = try model.pop()
        XCTAssertTrue(popped is Dense)
        try model.build()
        XCTAssertEqual(model.outputShape, [2])
        // Adding a layer that cannot take the current output is refused at once, and undone.
        assertThrowsMessage(try model.add(Reshape([3])), contains: ["Reshape", "[2]"])
        XCTAssertEqual(model.layers.count, 2)
        let empty = Sequential([])
        assertThrowsMessage(try empty.pop(), contains: ["no layers"])
        let withInput = Sequential {
            Input(shape: [6])
            Dense(2)
        }
        XCTAssertEqual(withInput.inputShape, [6])
        XCTAssertEqual(try withInput.countParams(), 14)
    }

    func testInputShapeComesFromDataWhenUndeclared() throws {
        let model = Sequential { Dense(3) }
        XCTAssertThrowsError(try model.summaryText())
        let out = try model.predict(Tensor.ones([2, 5]))
        XCTAssertEqual(out.shape, [2, 3])
        XCTAssertEqual(model.inputShape, [5])
    }

    func testWeightsRoundTripAndSetWeightsValidation() throws {
        let model = tutorialModel()
        let weights = try model.getWeights()
        XCTAssertEqual(weights.map(\.shape), [[784, 128], [128], [128, 10], [10]])
        var changed = weights
        changed[3] = Tensor([Float](repeating: 0.5, count: 10))
        try model.setWeights(changed)
        XCTAssertEqual(try model.getWeights()[3].scalars, [Float](repeating: 0.5, count: 10))
        assertThrowsMessage(try model.setWeights(Array(weights.prefix(3))), contains: ["expected 4", "found 3"])
        changed[0] = Tensor.zeros([10, 10])
        assertThrowsMessage(try model.setWeights(changed), contains: ["kernel", "[784, 128]", "[10, 10]"])
    }

    func testUserErrorsAreThrownWithMessages() throws {
        let model = tutorialModel()
        let x = Tensor.zeros([4, 28, 28]), y = Tensor(labels: [0, 1, 2, 3])
        assertThrowsMessage(try model.fit(x, y, verbose: 0), contains: ["compile"])
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        assertThrowsMessage(try model.fit(Tensor.zeros([4, 28, 27]), y, verbose: 0), contains: ["[28, 28]", "[28, 27]"])
        assertThrowsMessage(try model.fit(x, Tensor(labels: [0, 1, 2]), verbose: 0), contains: ["4 samples", "3"])
        assertThrowsMessage(try model.fit(x, Tensor(labels: [0, 1, 2, 12]), verbose: 0), contains: ["label 12", "[0, 10)"])
        assertThrowsMessage(try model.fit(x, y, batchSize: 0, verbose: 0), contains: ["batchSize", "0"])
        assertThrowsMessage(try model.fit(x, y, verbose: 0, validationSplit: 1.2), contains: ["validationSplit", "1.2"])
        assertThrowsMessage(try model.evaluate(x, Tensor.zeros([4, 3]), verbose: 0), contains: ["[3]"])
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: ["acuracy"])
        assertThrowsMessage(try model.fit(x, y, verbose: 0), contains: ["acuracy"])
        let bad = Sequential {
            Dense(4, inputShape: [3])
            Reshape([5])
        }
        assertThrowsMessage(try bad.build(), contains: ["Reshape", "[4]", "[5]"])
    }

    func testValidationSplitTakesTheLastSamplesBeforeShuffling() throws {
        // Labels 0 for the first 80 samples, 1 for the last 20: with validationSplit 0.2 the
        // validation set is exactly the last 20, so a model that always says 0 scores 0 there.
        let x = Tensor.zeros([100, 2])
        let y = Tensor(labels: (0..<100).map { $0 < 80 ? 0 : 1 })
        let model = Sequential {
            Dense(2, kernelInitializer: .zeros, inputShape: [2])
        }
        model.compile(optimizer: SGD(learningRate: 0), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        let history = try model.fit(x, y, epochs: 1, verbose: 0, validationSplit: 0.2)
        XCTAssertEqual(history["accuracy"]!, [1.0])
        XCTAssertEqual(history["val_accuracy"]!, [0.0])
        // validationData overrides the split.
        let h2 = try model.fit(x, y, epochs: 1, verbose: 0, validationSplit: 0.2,
                               validationData: (x[batch: 0..<10], y[batch: 0..<10]))
        XCTAssertEqual(h2["val_accuracy"]!, [1.0])
    }

    func testCallbacksHooksOrderInitialEpochAndStopTraining() throws {
        let model = Sequential { Dense(2, inputShape: [3]) }
        model.compile(optimizer: SGD(), loss: MeanSquaredError(), metrics: ["mae"])
        let x = Tensor.ones([10, 3]), y = Tensor.zeros([10, 2])
        let recorder = RecordingCallback()
        recorder.stopAfterEpoch = 3
        let history = try model.fit(x, y, batchSize: 4, epochs: 10, verbose: 0, callbacks: [recorder],
                                    validationData: (x, y), initialEpoch: 2)
        XCTAssertEqual(history.epoch, [2, 3])
        XCTAssertEqual(Array(recorder.events.prefix(9)), [
            "trainBegin", "epochBegin2", "batchBegin0", "batchEnd0", "batchBegin1", "batchEnd1",
            "batchBegin2", "batchEnd2", "testBegin",
        ])
        XCTAssertTrue(recorder.events.contains("epochEnd2:loss,mean_absolute_error,val_loss,val_mean_absolute_error"))
        XCTAssertEqual(recorder.events.last, "trainEnd")
        XCTAssertFalse(recorder.events.contains("epochBegin4"))
        _ = try model.predict(x, callbacks: [recorder])
        XCTAssertEqual(Array(recorder.events.suffix(2)), ["predictBegin", "predictEnd"])
    }

    func testOnBatchCallsAndEvaluateNames() throws {
        Kestrel.setRandomSeed(9)
        let model = Sequential { Dense(3, inputShape: [4]) }
        model.compile(optimizer: SGD(learningRate: 0.1), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy, .sparseTopKCategoricalAccuracy(k: 2)])
        XCTAssertTrue(model.loss is SparseCategoricalCrossentropy, "the compiled loss is visible before training")
        XCTAssertEqual(model.losses.count, 1)
        let x = Tensor.randomUniform([6, 4]), y = Tensor(labels: [0, 1, 2, 0, 1, 2])
        let before = try model.testOnBatch(x, y)
        XCTAssertEqual(Set(before.keys), ["loss", "accuracy", "sparse_top_k_categorical_accuracy"])
        let trained = try model.trainOnBatch(x, y)
        XCTAssertEqual(trained["loss"]!, before["loss"]!, accuracy: 1e-6, "train_on_batch reports the loss before its update")
        let after = try model.testOnBatch(x, y)
        XCTAssertLessThan(after["loss"]!, before["loss"]!)
        let direct = try model.predictOnBatch(x)
        assertClose(direct.scalars, try model.predict(x, batchSize: 4).scalars)
    }

    func testSameSeedGivesSameWeightsAndHistory() throws {
        func run(seed: UInt64) throws -> ([Tensor], [Float]) {
            Kestrel.setRandomSeed(seed)
            let model = Sequential {
                Dense(16, activation: .relu, inputShape: [8])
                Dropout(0.3)
                Dense(3)
            }
            model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
            var rng = RandomGenerator(seed: 4)
            let x = Tensor.randomUniform([96, 8], generator: &rng)
            let y = Tensor(labels: (0..<96).map { $0 % 3 })
            let history = try model.fit(x, y, batchSize: 16, epochs: 2, verbose: 0)
            return (try model.getWeights(), history["loss"]!)
        }
        let (w1, h1) = try run(seed: 7)
        let (w2, h2) = try run(seed: 7)
        let (w3, _) = try run(seed: 8)
        XCTAssertEqual(w1, w2)
        XCTAssertEqual(h1, h2)
        XCTAssertNotEqual(w1, w3)
    }

    func testNestedSequentialSharesWeights() throws {
        let base = tutorialModel()
        let probabilities = Sequential {
            base
            Softmax()
        }
        let x = Tensor.randomUniform([3, 28, 28])
        let logits = try base.predict(x)
        let p = try probabilities.predict(x)
        assertClose(p.scalars, ActivationFunction.softmax(logits).scalars)
        XCTAssertEqual(try probabilities.countParams(), try base.countParams())
    }

    func testProgressOutputLooksLikeKeras() {
        var text = ""
        let bar = ProgbarLogger(verbose: 1, epochs: 2, steps: 1875, interactive: false) { text += $0 }
        bar.onEpochBegin(0, logs: [:])
        bar.onTrainBatchEnd(1874, logs: ["loss": 0.4783, "accuracy": 0.8604])
        bar.onEpochEnd(0, logs: ["loss": 0.4783, "accuracy": 0.8604])
        let lines = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "Epoch 1/2")
        XCTAssertTrue(lines[1].hasPrefix("1875/1875 ━━━━━━━━━━━━━━━━━━━━ "), lines[1])
        XCTAssertTrue(lines[1].hasSuffix("/step - accuracy: 0.8604 - loss: 0.4783"), lines[1])
        var compact = ""
        let two = ProgbarLogger(verbose: 2, epochs: 1, steps: 1875, interactive: false) { compact += $0 }
        two.onEpochBegin(0, logs: [:])
        two.onEpochEnd(0, logs: ["loss": 0.00012, "accuracy": 0.9])
        XCTAssertTrue(compact.hasPrefix("1875/1875 - "), compact)
        XCTAssertTrue(compact.hasSuffix(" - accuracy: 0.9000 - loss: 1.2000e-04\n"), compact)
        XCTAssertFalse(compact.contains("Epoch"))
    }
}
