@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// `fit`, `evaluate` and `predict` reading batches from a `BatchDataset` (Keras `PyDataset`).
final class BatchDatasetTests: XCTestCase {
    /// Records the batches asked for and the epoch hooks, over fixed batches.
    final class Recording: BatchDataset {
        let batches: [Batch]
        let endless: Bool
        var requested: [Int] = []
        var events: [String] = []
        init(_ batches: [Batch], endless: Bool = false) {
            self.batches = batches
            self.endless = endless
            requested.reserveCapacity(1000)
        }
        /// Batches read ahead (see `BatchDataset.prefetch`).
        var prefetch = 0
        /// The index whose reading throws.
        var failing: Int?
        var batchCount: Int? { endless ? nil : batches.count }
        func batch(_ index: Int) throws -> Batch {
            requested.append(index)
            if index == failing { throw KestrelError.fileError("batch \(index) is unreadable") }
            return batches[index % batches.count]
        }
        func onEpochBegin() { events.append("begin") }
        func onEpochEnd() { events.append("end") }
    }

    func classifier(seed: UInt64, dropout: Float = 0.25) -> Sequential {
        Kestrel.setRandomSeed(seed)
        let model = Sequential {
            Dense(16, activation: .relu, inputShape: [6])
            Dropout(dropout)
            Dense(3)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        return model
    }

    func data(_ count: Int, seed: UInt64 = 5) -> (Tensor, Tensor) {
        var rng = RandomGenerator(seed: seed)
        let x = Tensor.randomUniform([count, 6], minval: -1, maxval: 1, generator: &rng)
        let v = x.scalars
        var labels: [Int] = []
        for i in 0..<count {
            let sum: Float = v[i * 6] + v[i * 6 + 1]
            labels.append(sum > 0.3 ? 2 : (v[i * 6 + 2] > 0 ? 1 : 0))
        }
        let y = Tensor(labels: labels)
        return (x, y)
    }

    /// Batches read from a dataset train exactly as the same arrays do (dropout included): the
    /// same batches in the same order give the same weights, history, evaluation and predictions.
    func testDatasetTrainsAsArraysDo() throws {
        let (x, y) = data(100)
        let (vx, vy) = data(30, seed: 9)
        let arrays = classifier(seed: 3), batches = classifier(seed: 3)
        XCTAssertEqual(try arrays.getWeights(), try batches.getWeights())
        let h1 = try arrays.fit(x, y, batchSize: 16, epochs: 3, verbose: 0, validationData: (vx, vy), shuffle: false,
                                seed: 11)
        let h2 = try batches.fit(try TensorBatches(x, y, batchSize: 16), epochs: 3, verbose: 0,
                                 validationData: try TensorBatches(vx, vy, batchSize: 32), shuffle: false, seed: 11)
        XCTAssertEqual(try arrays.getWeights(), try batches.getWeights())
        XCTAssertEqual(h1.history["loss"], h2.history["loss"])
        XCTAssertEqual(h1.history["accuracy"], h2.history["accuracy"])
        XCTAssertEqual(Set(h2.history.keys), ["loss", "accuracy", "val_loss", "val_accuracy"])
        for (a, b) in zip(h1.history["val_loss"]!, h2.history["val_loss"]!) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        XCTAssertGreaterThan(h2.history["accuracy"]!.last!, h2.history["accuracy"]!.first!)

        let e1 = try arrays.evaluate(vx, vy, batchSize: 7, verbose: 0)
        let e2 = try batches.evaluate(try TensorBatches(vx, vy, batchSize: 7), verbose: 0)
        XCTAssertEqual(e1["loss"]!, e2["loss"]!, accuracy: 1e-6)
        XCTAssertEqual(e1["accuracy"], e2["accuracy"])
        let p1 = try arrays.predict(vx, batchSize: 8)
        let p2: Tensor = try batches.predict(try TensorBatches(vx, batchSize: 8))
        XCTAssertEqual(p1, p2)
        XCTAssertEqual(p2.shape, [30, 3])
        // `steps` reads only the first batches.
        XCTAssertEqual(try batches.predict(try TensorBatches(vx, batchSize: 8), steps: 2).shape, [16, 3])
    }

    /// A fit resumed at a later epoch (as `BackupAndRestore` resumes) repeats the batch order
    /// and dropout masks of an uninterrupted one with the same seed.
    func testResumedFitRepeatsTheUninterruptedOne() throws {
        let (x, y) = data(60)
        let whole = classifier(seed: 8, dropout: 0.5), resumed = classifier(seed: 8, dropout: 0.5)
        try whole.fit(try TensorBatches(x, y, batchSize: 8), epochs: 4, verbose: 0, seed: 9)
        try resumed.fit(try TensorBatches(x, y, batchSize: 8), epochs: 2, verbose: 0, seed: 9)
        XCTAssertNotEqual(try whole.getWeights(), try resumed.getWeights())
        try resumed.fit(try TensorBatches(x, y, batchSize: 8), epochs: 4, verbose: 0, initialEpoch: 2, seed: 9)
        XCTAssertEqual(try whole.getWeights(), try resumed.getWeights())
    }

    /// `validationFreq` validates after every n-th epoch, counted from 1 as Keras counts
    /// (from `initialEpoch` on), for arrays and datasets alike.
    func testValidationFrequency() throws {
        let (x, y) = data(40)
        let (vx, vy) = data(12, seed: 4)
        final class Validations: Callback {
            var epochs: [Int] = []
            func onEpochEnd(_ epoch: Int, logs: [String: Float]) { if logs["val_loss"] != nil { epochs.append(epoch) } }
        }
        let a = Validations(), b = Validations(), c = Validations()
        let h = try classifier(seed: 1).fit(x, y, batchSize: 8, epochs: 5, verbose: 0, callbacks: [a], validationData: (vx, vy),
                                            validationFreq: 2)
        XCTAssertEqual(a.epochs, [1, 3])
        XCTAssertEqual(h.history["loss"]?.count, 5)
        XCTAssertEqual(h.history["val_loss"]?.count, 2)
        try classifier(seed: 1).fit(try TensorBatches(x, y, batchSize: 8), epochs: 7, verbose: 0, callbacks: [b],
                                    validationData: try TensorBatches(vx, vy), validationFreq: 3)
        XCTAssertEqual(b.epochs, [2, 5])
        try classifier(seed: 1).fit(x, y, epochs: 4, verbose: 0, callbacks: [c], validationSplit: 0.25, initialEpoch: 1,
                                    validationFreq: 2)
        XCTAssertEqual(c.epochs, [1, 3])
        assertThrowsMessage(try classifier(seed: 1).fit(x, y, verbose: 0, validationFreq: 0),
                            contains: ["validationFreq must be a positive number of epochs, found 0"])
    }

    /// Keras's order: every batch once per epoch, in a new random order each epoch when shuffled;
    /// the dataset's epoch hooks around each epoch and around validation.
    func testShuffledEpochsVisitEveryBatchOnce() throws {
        let (x, y) = data(50)
        let batches = try (0..<5).map { try TensorBatches(x, y, batchSize: 10).batch($0) }
        let recording = Recording(batches), validation = Recording(Array(batches.prefix(2)))
        let model = classifier(seed: 1)
        try model.fit(recording, epochs: 3, verbose: 0, validationData: validation, seed: 4)
        // The first batch is read once up front to check the data against the model.
        XCTAssertEqual(recording.requested.first, 0)
        let epochs = stride(from: 1, to: 16, by: 5).map { Array(recording.requested[$0..<($0 + 5)]) }
        for order in epochs { XCTAssertEqual(order.sorted(), [0, 1, 2, 3, 4]) }
        XCTAssertNotEqual(epochs[0], epochs[1], "the batch order is redrawn each epoch")
        XCTAssertEqual(recording.events, Array(repeating: ["begin", "end"], count: 3).flatMap { $0 })
        XCTAssertEqual(validation.events.count, 6)
        XCTAssertEqual(validation.requested.filter { $0 == 1 }.count, 3)

        // The same seed repeats the same order; shuffle: false reads them in order.
        let again = Recording(batches)
        try classifier(seed: 1).fit(again, epochs: 3, verbose: 0, seed: 4)
        XCTAssertEqual(again.requested, recording.requested)
        let ordered = Recording(batches)
        try classifier(seed: 1).fit(ordered, epochs: 2, verbose: 0, shuffle: false)
        XCTAssertEqual(ordered.requested, [0, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    }

    /// `stepsPerEpoch` continues the pass in the next epoch and ends an epoch early when the
    /// pass runs out (Keras 3's epoch iterator); an endless dataset counts on.
    func testStepsPerEpochContinuesThePass() throws {
        let (x, y) = data(50)
        let batches = try (0..<5).map { try TensorBatches(x, y, batchSize: 10).batch($0) }
        let recording = Recording(batches)
        let model = classifier(seed: 1)
        let history = try model.fit(recording, epochs: 3, verbose: 0, shuffle: false, stepsPerEpoch: 3)
        XCTAssertEqual(Array(recording.requested.dropFirst()), [0, 1, 2, 3, 4, 0, 1, 2])
        XCTAssertEqual(history.history["loss"]?.count, 3)

        let endless = Recording(batches, endless: true)
        assertThrowsMessage(try classifier(seed: 1).fit(endless, verbose: 0),
                            contains: ["endless", "stepsPerEpoch"])
        try classifier(seed: 1).fit(endless, epochs: 2, verbose: 0, stepsPerEpoch: 4)
        XCTAssertEqual(Array(endless.requested.dropFirst()), Array(0..<8))
        assertThrowsMessage(try classifier(seed: 1).evaluate(endless, verbose: 0), contains: ["endless", "steps"])
        XCTAssertEqual(try classifier(seed: 1).predict(endless, steps: 3).shape, [30, 3])
    }

    /// A batch that does not fit the model or the first batch is refused by index.
    func testMismatchedBatchesAreNamed() throws {
        let (x, y) = data(20)
        let good = Batch(x[batch: 0..<10], y[batch: 0..<10])
        let wide = Batch(Tensor.zeros([10, 7]), y[batch: 0..<10])
        let oneHot = Batch(x[batch: 10..<20], Tensor.zeros([10, 3]))
        let badLabel = Batch(x[batch: 10..<20], Tensor(labels: Array(repeating: 5, count: 10)))
        assertThrowsMessage(try classifier(seed: 1).fit(Recording([good, wide]), verbose: 0, shuffle: false),
                            contains: ["batch 1", "[10, 7]", "[6]"])
        assertThrowsMessage(try classifier(seed: 1).fit(Recording([good, oneHot]), verbose: 0, shuffle: false),
                            contains: ["batch 1", "[10, 3]", "first batch"])
        assertThrowsMessage(try classifier(seed: 1).fit(Recording([good, badLabel]), verbose: 0, shuffle: false),
                            contains: ["label 5.0"])
        let empty = Batch(Tensor.zeros([0, 6]), Tensor(labels: [Int]()))
        assertThrowsMessage(try classifier(seed: 1).fit(Recording([empty, good]), verbose: 0), contains: ["batch 0 is empty"])
        assertThrowsMessage(try classifier(seed: 1).fit(Recording([good, empty]), verbose: 0, shuffle: false),
                            contains: ["batch 1", "at least one sample"])
        assertThrowsMessage(try TensorBatches(x, Tensor(labels: [1, 2]), batchSize: 4), contains: ["same number of samples"])
        assertThrowsMessage(try TensorBatches(x, y, batchSize: 0), contains: ["batchSize", "0"])
    }

    /// A model with two inputs and two outputs reads them from one batch, in name order.
    func testSeveralInputsAndOutputs() throws {
        Kestrel.setRandomSeed(2)
        let a = Input(shape: [4], name: "a"), b = Input(shape: [2], name: "b")
        let merged = try Concatenate()([a, b])
        let h = try Dense(8, activation: .tanh)(merged)
        let model = try Model(inputs: [a, b], outputs: [try Dense(1, name: "value")(h), try Dense(2, name: "kind")(h)])
        model.compile(optimizer: SGD(learningRate: 0.1),
                      losses: ["value": MeanSquaredError(), "kind": SparseCategoricalCrossentropy(fromLogits: true)])
        var rng = RandomGenerator(seed: 3)
        let xa = Tensor.randomUniform([24, 4], generator: &rng), xb = Tensor.randomUniform([24, 2], generator: &rng)
        let value = Tensor.randomUniform([24, 1], generator: &rng), kind = Tensor(labels: (0..<24).map { $0 % 2 })
        let before = try model.evaluate([xa, xb], [value, kind], batchSize: 8, verbose: 0)
        let viaBatches = try model.evaluate(try TensorBatches(inputs: [xa, xb], targets: [value, kind], batchSize: 8),
                                            verbose: 0)
        XCTAssertEqual(before["loss"]!, viaBatches["loss"]!, accuracy: 1e-6)
        XCTAssertEqual(before["kind_loss"]!, viaBatches["kind_loss"]!, accuracy: 1e-6)
        let history = try model.fit(try TensorBatches(inputs: [xa, xb], targets: [value, kind], batchSize: 8),
                                    epochs: 5, verbose: 0)
        XCTAssertLessThan(history.history["loss"]!.last!, history.history["loss"]!.first!)
        let outputs = try model.predictOutputs(try TensorBatches(inputs: [xa, xb], batchSize: 5))
        XCTAssertEqual(outputs.map(\.shape), [[24, 1], [24, 2]])
        XCTAssertEqual(outputs, try model.predict([xa, xb], batchSize: 24))
        assertThrowsMessage(try model.predict(try TensorBatches(inputs: [xa, xb], batchSize: 5)) as Tensor,
                            contains: ["2 outputs", "predictOutputs"])
    }

    /// Once the plan exists, `fit` on a dataset whose batches are ready allocates nothing per
    /// step: checking and copying a batch touches no heap.
    func testDatasetStepsAllocateNothing() throws {
        #if DEBUG
        throw XCTSkip("allocation counts are checked in release builds (swift test -c release)")
        #else
        XCTAssertNotEqual(kestrel_allocation_counter_active(), 0)
        final class Counter: Callback {
            var counts: [UInt64] = []
            init() { counts.reserveCapacity(200) }
            func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) { counts.append(kestrel_allocation_count()) }
        }
        let (x, y) = data(400)
        let weights = Tensor(shape: [400], scalars: (0..<400).map { Float($0 % 3) / 2 })
        // Plain batches, batches with sample weights, and class weights read from the labels.
        for (weighted, classWeight) in [(false, nil), (true, nil), (false, [0: 2, 2: 0.5])] as [(Bool, [Int: Float]?)] {
            let batches = try (0..<50).map {
                try TensorBatches(x, y, sampleWeights: weighted ? weights : nil, batchSize: 8).batch($0)
            }
            let model = classifier(seed: 1)
            let counter = Counter()
            try model.fit(Recording(batches), epochs: 1, verbose: 0, callbacks: [counter], shuffle: false,
                          classWeight: classWeight)
            let grown = counter.counts.last! - counter.counts[5]
            XCTAssertLessThanOrEqual(grown, 2, "allocations over 44 steps (weights \(weighted), classes \(classWeight != nil)): \(grown)")
        }
        #endif
    }

    /// Batches read ahead on a background thread give the same training, evaluation and
    /// predictions as batches read on demand; a reading error reaches the caller; stopping
    /// early, or a short pass, leaves no reader behind.
    func testPrefetchingChangesNothingButWhen() throws {
        let (x, y) = data(90)
        let batches = try (0..<9).map { try TensorBatches(x, y, batchSize: 10).batch($0) }
        let onDemand = Recording(batches), ahead = Recording(batches)
        ahead.prefetch = 3
        let m1 = classifier(seed: 6), m2 = classifier(seed: 6)
        let h1 = try m1.fit(onDemand, epochs: 3, verbose: 0, validationData: Recording(batches), seed: 2)
        let validation = Recording(batches)
        validation.prefetch = 2
        let h2 = try m2.fit(ahead, epochs: 3, verbose: 0, validationData: validation, seed: 2)
        XCTAssertEqual(try m1.getWeights(), try m2.getWeights())
        XCTAssertEqual(h1.history["val_loss"], h2.history["val_loss"])
        XCTAssertEqual(ahead.requested, onDemand.requested)
        XCTAssertEqual(ahead.events, onDemand.events)
        XCTAssertEqual(try m1.evaluate(onDemand, verbose: 0), try m2.evaluate(ahead, verbose: 0))
        XCTAssertEqual(try m1.predict(onDemand) as Tensor, try m2.predict(ahead) as Tensor)

        let broken = Recording(batches)
        broken.prefetch = 2
        broken.failing = 4
        assertThrowsMessage(try classifier(seed: 6).fit(broken, epochs: 2, verbose: 0, shuffle: false),
                            contains: ["batch 4 is unreadable"])
        assertThrowsMessage(try classifier(seed: 6).predict(broken) as Tensor, contains: ["batch 4 is unreadable"])

        final class StopAfter: Callback {
            weak var model: Model?
            func setModel(_ model: Model) { self.model = model }
            func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) { if batch == 1 { model?.stopTraining = true } }
        }
        let stopped = Recording(batches)
        stopped.prefetch = 4
        let history = try classifier(seed: 6).fit(stopped, epochs: 5, verbose: 0, callbacks: [StopAfter()])
        XCTAssertEqual(history.history["loss"]?.count, 1)
        let short = Recording(batches)
        short.prefetch = 2
        try classifier(seed: 6).fit(short, epochs: 2, verbose: 0, shuffle: false, stepsPerEpoch: 6)
        XCTAssertEqual(Array(short.requested.dropFirst()), [0, 1, 2, 3, 4, 5, 6, 7, 8])
    }
}
