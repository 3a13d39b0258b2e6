@testable import Kestrel
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif

final class FunctionalAPITests: XCTestCase {
    /// The residual block of the docs: Dense → (Dense → Dense) + skip → Dense.
    func residualModel() throws -> Model {
        let inputs = Input(shape: [12], name: "features")
        let h = try Dense(8, activation: .relu, name: "stem")(inputs)
        let branch = try Dense(8, activation: .tanh, name: "branch_b")(try Dense(8, activation: .relu, name: "branch_a")(h))
        let merged = try Add(name: "residual")([h, branch])
        let outputs = try Dense(3, name: "head")(merged)
        return try Model(inputs: inputs, outputs: outputs, name: "residual_net")
    }

    func testSequentialAndFunctionalGiveIdenticalOutputsAndGradients() throws {
        Kestrel.setRandomSeed(12)
        let sequential = Sequential {
            Dense(6, activation: .relu, inputShape: [5])
            Dropout(0.0)
            Dense(4, activation: .softmax)
        }
        let input = Input(shape: [5])
        let l1 = Dense(6, activation: .relu), l2 = Dense(4, activation: .softmax)
        let functional = try Model(inputs: input, outputs: try l2(try l1(input)))
        try functional.setWeights(try sequential.getWeights())

        var rng = RandomGenerator(seed: 2)
        let x = Tensor.randomUniform([7, 5], minval: -1, maxval: 1, generator: &rng)
        let y = Tensor(labels: [0, 1, 2, 3, 0, 1, 2])
        XCTAssertEqual(try sequential.predict(x), try functional.predict(x))
        for model in [sequential, functional] as [Model] {
            model.compile(optimizer: SGD(learningRate: 0.5), loss: SparseCategoricalCrossentropy())
            _ = try model.trainOnBatch(x, y)
        }
        // Same gradients ⇒ same SGD step ⇒ same weights.
        XCTAssertEqual(try sequential.getWeights(), try functional.getWeights())
    }

    /// Finite differences on the whole model's loss through a merge and a shared layer.
    func checkModelGradients(_ model: Model, _ xs: [Tensor], _ ys: [Tensor], loss: Loss,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        model.compile(optimizer: SGD(learningRate: 0), loss: loss)
        let samples = try model.prepareInputs(xs, "test")
        let t = try model.prepareTargets(ys, samples: samples, "test")
        let plan = try model.plan(capacity: samples, training: true)
        let labels = t.labels(capacity: samples)
        for (k, x) in xs.enumerated() {
            x.scalars.withUnsafeBufferPointer { plan.inputBuffer(k).update(from: $0.baseAddress!, count: $0.count) }
        }
        for (k, y) in ys.enumerated() {
            y.scalars.withUnsafeBufferPointer { labels[k].update(from: $0.baseAddress!, count: $0.count) }
        }
        func lossValue() -> Double {
            t.reset()
            model.testStep(plan, t, labels: labels, batch: samples)
            return Double(t.lossTracker.result())
        }
        model.trainStep(plan, t, labels: labels, batch: samples)   // lr 0: only fills gradients
        let store = model.store!
        let analytic = Array(UnsafeBufferPointer(start: store.gradients, count: store.count))
        let h: Float = 1e-2
        var checked = 0
        for i in stride(from: 0, to: store.count, by: max(1, store.count / 80)) {
            let saved = store.values[i]
            store.values[i] = saved + h
            let plus = lossValue()
            store.values[i] = saved - h
            let minus = lossValue()
            store.values[i] = saved
            let numeric = (plus - minus) / Double(2 * h)
            XCTAssertEqual(Double(analytic[i]), numeric, accuracy: 2e-2 * max(1, abs(numeric)),
                           "parameter \(i)", file: file, line: line)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 10)
    }

    func testResidualGradientsThroughAdd() throws {
        Kestrel.setRandomSeed(3)
        let model = try residualModel()
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.randomUniform([5, 12], minval: -1, maxval: 1, generator: &rng)
        try checkModelGradients(model, [x], [Tensor(labels: [0, 1, 2, 1, 0])],
                                loss: SparseCategoricalCrossentropy(fromLogits: true))
    }

    func testSharedLayerGradientsAccumulate() throws {
        Kestrel.setRandomSeed(4)
        let a = Input(shape: [4], name: "left"), b = Input(shape: [4], name: "right")
        let shared = Dense(5, activation: .tanh, name: "shared")
        let ea = try shared(a), eb = try shared(b)
        let merged = try Concatenate()([ea, eb, try Multiply()([ea, eb])])
        let out = try Dense(1, activation: .sigmoid)(merged)
        let model = try Model(inputs: [a, b], outputs: [out])
        XCTAssertEqual(model.layers.filter { $0 === shared }.count, 1)
        var rng = RandomGenerator(seed: 1)
        let xa = Tensor.randomUniform([6, 4], minval: -1, maxval: 1, generator: &rng)
        let xb = Tensor.randomUniform([6, 4], minval: -1, maxval: 1, generator: &rng)
        try checkModelGradients(model, [xa, xb], [Tensor(labels: [0, 1, 1, 0, 1, 0])], loss: BinaryCrossentropy())
    }

    func testMergeLayerGradientsAndShapes() throws {
        for layer in [Add(), Subtract(), Multiply(), Average(), Maximum(), Minimum()] as [Layer] {
            try LayerHarness(layer, inputShapes: [[3, 2], [3, 2]], batch: 2).check(label: " \(layer.className)")
        }
        try LayerHarness(Add(), inputShapes: [[4], [4], [4]], batch: 2).check()
        try LayerHarness(Concatenate(axis: 1), inputShapes: [[2, 3], [1, 3]], batch: 2).check()
        try LayerHarness(Concatenate(), inputShapes: [[2, 3], [2, 1]], batch: 2).check()
        try LayerHarness(Dot(axes: 1), inputShapes: [[5], [5]], batch: 3).check()
        try LayerHarness(Dot(axes: 1, normalize: true), inputShapes: [[5], [5]], batch: 3).check()
        try LayerHarness(Dot(axes: (2, 2)), inputShapes: [[3, 4], [2, 4]], batch: 2).check()
        try LayerHarness(Dot(axes: (1, 1)), inputShapes: [[4, 3], [4, 2]], batch: 2).check()
        try LayerHarness(Dot(axes: (2, 1), normalize: true), inputShapes: [[3, 4], [4, 2]], batch: 2).check()

        XCTAssertEqual(try Concatenate().build(inputShapes: [[2, 3], [2, 5]]), [2, 8])
        XCTAssertEqual(try Dot(axes: (2, 2)).build(inputShapes: [[3, 4], [2, 4]]), [3, 2])
        XCTAssertEqual(try Dot(axes: 1).build(inputShapes: [[7], [7]]), [1])
        assertThrowsMessage(try Add().build(inputShapes: [[3], [4]]), contains: ["Add", "[3]", "[4]"])
        assertThrowsMessage(try Subtract().build(inputShapes: [[3], [3], [3]]), contains: ["exactly 2"])
        assertThrowsMessage(try Concatenate().build(inputShapes: [[2, 3], [4, 3]]), contains: ["[2, 3]", "[4, 3]"])
        assertThrowsMessage(try Dot(axes: 1).build(inputShapes: [[3], [4]]), contains: ["Dot", "3", "4"])
    }

    func testGraphErrorsAreCaughtWhenTheModelIsBuilt() throws {
        let a = Input(shape: [3], name: "a"), b = Input(shape: [3], name: "b"), unused = Input(shape: [2], name: "unused")
        let sum = try Add()([a, b])
        assertThrowsMessage(try Model(inputs: [a], outputs: [sum]), contains: ["depends on input 'b'"])
        assertThrowsMessage(try Model(inputs: [a, b, unused], outputs: [sum]), contains: ["input 'unused'", "not used"])
        assertThrowsMessage(try Dense(2)(Input(shape: [])), contains: ["Dense"])
        assertThrowsMessage(try Add()([a, Input(shape: [4])]), contains: ["[3]", "[4]"])
        assertThrowsMessage(try Model(inputs: [sum], outputs: [sum]), contains: ["Input(shape:)"])
        let shared = Dense(2)
        _ = try shared(a)
        assertThrowsMessage(try shared(Input(shape: [5])), contains: ["built for input shape [3]", "[5]"])
        let x = Input(shape: [2])
        let twin = try Dense(2, name: "twin")(try Dense(2, name: "twin")(x))
        assertThrowsMessage(try Model(inputs: x, outputs: twin).build(), contains: ["twin", "unique"])
    }

    func testTwoInputsTwoOutputsTrainWithKerasNames() throws {
        Kestrel.setRandomSeed(5)
        let image = Input(shape: [6, 6], name: "image"), extra = Input(shape: [2], name: "extra")
        let features = try Dense(16, activation: .relu)(try Flatten()(image))
        let joined = try Concatenate()([features, try Dense(4, activation: .relu)(extra)])
        let classOut = try Dense(3, name: "class_out")(joined)
        let valueOut = try Dense(1, name: "value_out")(joined)
        let model = try Model(inputs: [image, extra], outputs: [classOut, valueOut])
        XCTAssertEqual(model.inputNames, ["image", "extra"])
        XCTAssertEqual(model.outputNames, ["class_out", "value_out"])
        model.compile(optimizer: Adam(learningRate: 0.01),
                      losses: ["class_out": SparseCategoricalCrossentropy(fromLogits: true), "value_out": MeanSquaredError()],
                      lossWeights: ["value_out": 0.5],
                      metrics: ["class_out": [.accuracy], "value_out": ["mae"]])
        var rng = RandomGenerator(seed: 3)
        let n = 240
        let images = Tensor.randomUniform([n, 6, 6], generator: &rng)
        let extras = Tensor.randomUniform([n, 2], generator: &rng)
        // Class from which third of the image is brightest; value from the extra features.
        var classes = [Int](), values = [Float]()
        for i in 0..<n {
            let px = Array(images.scalars[(i * 36)..<(i * 36 + 36)])
            let thirds = [px[0..<12], px[12..<24], px[24..<36]].map { $0.reduce(0, +) }
            classes.append(thirds.firstIndex(of: thirds.max()!)!)
            values.append(extras.scalars[2 * i] - extras.scalars[2 * i + 1])
        }
        let x = ["image": images, "extra": extras]
        let y = ["class_out": Tensor(labels: classes), "value_out": Tensor(shape: [n, 1], scalars: values)]
        let history = try model.fit(x, y, batchSize: 16, epochs: 30, verbose: 0, validationSplit: 0.25)
        XCTAssertEqual(Set(history.history.keys), [
            "loss", "class_out_loss", "value_out_loss", "class_out_accuracy", "value_out_mean_absolute_error",
            "val_loss", "val_class_out_loss", "val_value_out_loss", "val_class_out_accuracy",
            "val_value_out_mean_absolute_error",
        ])
        let last = history.history.mapValues { $0.last! }
        XCTAssertEqual(last["loss"]!, last["class_out_loss"]! + 0.5 * last["value_out_loss"]!, accuracy: 1e-3)
        let result = try model.evaluate(x, y, verbose: 0)
        XCTAssertGreaterThan(result["class_out_accuracy"]!, 0.8)
        XCTAssertLessThan(result["value_out_mean_absolute_error"]!, 0.1)
        let predictions = try model.predict(x)
        XCTAssertEqual(predictions["class_out"]!.shape, [n, 3])
        XCTAssertEqual(predictions["value_out"]!.shape, [n, 1])
        assertThrowsMessage(try model.predict(images), contains: ["2 inputs"])
    }

    func testNestedModelAsLayerSharesWeights() throws {
        let encoderInput = Input(shape: [4])
        let encoder = try Model(inputs: encoderInput, outputs: try Dense(2, name: "code")(encoderInput), name: "encoder")
        let x = Input(shape: [4])
        let outer = try Model(inputs: x, outputs: try Dense(1)(try encoder(x)))
        XCTAssertTrue(outer.layers.contains { $0 === (try! encoder.getLayer(name: "code")) })
        XCTAssertEqual(try outer.countParams(), 4 * 2 + 2 + 2 + 1)
        let probe = Tensor.ones([1, 4])
        let before = try encoder.predict(probe)
        outer.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
        _ = try outer.trainOnBatch(probe, Tensor.ones([1, 1]) * 5)
        XCTAssertNotEqual(try encoder.predict(probe), before, "training the outer model trains the shared encoder")
    }

    func testFrozenLayersGetNoUpdatesAndCountAsNonTrainable() throws {
        let model = Sequential {
            Dense(3, inputShape: [2], name: "frozen")
            Dense(1, name: "free")
        }
        try model.build()
        let frozen = try model.getLayer(name: "frozen")
        frozen.trainable = false
        model.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
        let before = frozen.getWeights()
        _ = try model.trainOnBatch(Tensor.ones([4, 2]), Tensor.ones([4, 1]))
        XCTAssertEqual(frozen.getWeights(), before)
        let text = try model.summaryText()
        XCTAssertTrue(text.contains("Trainable params: 4 "), text)
        XCTAssertTrue(text.contains("Non-trainable params: 9 "), text)
        assertThrowsMessage(try model.getLayer(name: "nope"), contains: ["nope", "frozen, free"])
    }

    func testSummaryHasConnectedToColumn() throws {
        Kestrel.setRandomSeed(3)
        let model = try residualModel()
        let text = try model.summaryText()
        XCTAssertTrue(text.contains("Connected to"), text)
        XCTAssertTrue(text.contains("features (InputLayer)"), text)
        XCTAssertTrue(text.contains("stem[0][0]"), text)
        XCTAssertTrue(text.contains("branch_b[0][0]"), text)
        // The Add row lists both of its inputs, one per line.
        let addLines = text.split(separator: "\n").filter { $0.contains("stem[0][0]") || $0.contains("branch_b[0][0]") }
        XCTAssertGreaterThanOrEqual(addLines.count, 2)
        XCTAssertTrue(text.contains(" Total params: \(Model.grouped(try model.countParams()))"), text)
    }

    func testPlotModelWritesDotAndSVG() throws {
        Kestrel.setRandomSeed(3)
        let model = try residualModel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kestrel-plot-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let dotPath = dir.appendingPathComponent("model.dot").path
        try plotModel(model, to: dotPath)
        let dot = try String(contentsOfFile: dotPath, encoding: .utf8)
        XCTAssertTrue(dot.hasPrefix("digraph \"residual_net\""))
        XCTAssertEqual(dot.components(separatedBy: " -> ").count - 1, 6, "six edges: in→stem→a→b, stem→add, b→add, add→head")
        XCTAssertTrue(dot.contains("<b>residual</b> (Add)"))
        XCTAssertTrue(dot.contains("(None, 8), (None, 8)"))
        assertThrowsMessage(try plotModel(model, to: dir.appendingPathComponent("m.jpeg").path), contains: [".jpeg"])
        guard findExecutable("dot") != nil else {
            throw XCTSkip("Graphviz's dot is not installed (scripts/setup.sh installs it)")
        }
        let svgPath = dir.appendingPathComponent("model.svg").path
        try plotModel(model, to: svgPath)
        let data = try Data(contentsOf: URL(fileURLWithPath: svgPath))
        let parser = XMLParser(data: data)
        XCTAssertTrue(parser.parse(), "the SVG is well-formed XML")
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("branch_a"))
    }
}

/// Inference plans reuse buffers; inputs are filled before the pass, so none may share one.
final class InferencePlanTests: XCTestCase {
    func testSecondInputDoesNotOverwriteTheFirst() throws {
        let l = Input(shape: [3], name: "l"), r = Input(shape: [3], name: "r")
        let x = try ReLU()(l), y = try ReLU()(r)
        let model = try Model(inputs: [l, r], outputs: [try Dot(axes: 1)([x, y])])
        let a = Tensor(shape: [1, 3], scalars: [1, 2, 3]), b = Tensor(shape: [1, 3], scalars: [4, 5, 6])
        XCTAssertEqual(try model.predict([a, b])[0].scalars, [32], "x·y = 4 + 10 + 18")
        XCTAssertEqual(try model([a, b])[0].scalars, [32])
    }
}
