@testable import Kestrel
import XCTest

final class SavingTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kestrel-saving-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func model(seed: UInt64) -> Sequential {
        Kestrel.setRandomSeed(seed)
        return Sequential(name: "m") {
            Dense(6, activation: .relu, inputShape: [4], name: "hidden")
            Dropout(0.25)
            Dense(3, name: "out")
        }
    }

    func testSafetensorsRoundTripAndLayout() throws {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, -6.5])
        let b = Tensor(shape: [], scalars: [7])
        try Safetensors.write([("a", a), ("b", b)], metadata: ["format": "pt"], to: path("t.safetensors"))
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("t.safetensors"))))
        let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8
        XCTAssertEqual(headerLength % 8, 0, "header padded to 8 bytes")
        XCTAssertEqual(bytes[8], UInt8(ascii: "{"))
        XCTAssertEqual(bytes.count, 8 + headerLength + 7 * 4)
        let (tensors, metadata) = try Safetensors.read(from: path("t.safetensors"))
        XCTAssertEqual(tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(tensors[0].tensor, a)
        XCTAssertEqual(tensors[1].tensor, b)
        XCTAssertEqual(metadata, ["format": "pt"])
    }

    /// Builds a file from a header string and data bytes.
    func file(_ header: String, data: [UInt8] = [], lengthOverride: UInt64? = nil) -> Data {
        var d = Data()
        withUnsafeBytes(of: (lengthOverride ?? UInt64(header.utf8.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(contentsOf: Array(header.utf8))
        d.append(contentsOf: data)
        return d
    }

    func testSafetensorsReaderRejectsWhatTheReferenceRejects() {
        let four = [UInt8](repeating: 0, count: 4)
        let cases: [(Data, String)] = [
            (Data([1, 2, 3]), "shorter than the 8-byte"),
            (file("{}", lengthOverride: 200_000_000), "exceeds the limit"),
            (file("{}", lengthOverride: 50), "past the end"),
            (file("[1]"), "does not start with '{'"),
            (file("{\"a\": "), "not a JSON object"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", data: four), "two data_offsets"),
            (file("{\"a\": {\"dtype\": \"I4\", \"shape\": [1], \"data_offsets\": [0, 4]}}", data: four), "dtype I4"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", data: four), "needs 8 bytes"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", data: four + four), "gap"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", data: four), "overlaps"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", data: four + four), "trailing bytes"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", data: four), "end at byte 8"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [3037000500, 3037000500, 4], \"data_offsets\": [0, 4]}}", data: four), "overflows"),
            (file("{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", data: four), "non-negative"),
            (file("{\"__metadata__\": {\"x\": 1}}"), "strings to strings"),
        ]
        for (data, fragment) in cases {
            assertThrowsMessage(try Safetensors.parse(data, path: "case.safetensors"), contains: ["case.safetensors", fragment])
        }
        var invalidUTF8 = file("{\"a\":1}")
        invalidUTF8[10] = 0xFF
        assertThrowsMessage(try Safetensors.parse(invalidUTF8, path: "u.safetensors"), contains: ["UTF-8"])
    }

    /// Random corruptions of a valid file: every case either loads or throws; none crashes.
    func testSafetensorsFuzzNeverCrashes() throws {
        let m = model(seed: 1)
        try m.saveWeights(to: path("w.safetensors"))
        let valid = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path("w.safetensors"))))
        var rng = RandomGenerator(seed: 77)
        var tried = 0, rejected = 0
        for _ in 0..<3000 {
            var bytes = valid
            switch rng.next() % 4 {
            case 0: bytes = Array(bytes.prefix(Int(rng.next() % UInt64(bytes.count))))
            case 1: for _ in 0..<(1 + rng.next() % 8) { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            case 2: let i = Int(rng.next() % 8); bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(bytes.count)))
            }
            tried += 1
            do { _ = try Safetensors.parse(Data(bytes)) } catch { rejected += 1 }
        }
        print("safetensors fuzz: \(tried) corrupted files tried, \(rejected) rejected, 0 crashes")
        XCTAssertEqual(tried, 3000)
        XCTAssertGreaterThan(rejected, 2000)
    }

    /// GRU, SimpleRNN and Bidirectional weights (both halves, forward first) go through
    /// safetensors with Keras's positional names, and through PyTorch naming and back.
    func testGRUAndBidirectionalWeightsRoundTrip() throws {
        func make(_ seed: UInt64) -> Sequential {
            Kestrel.setRandomSeed(seed)
            return Sequential {
                Input(shape: [5, 3])
                GRU(4, returnSequences: true, name: "gru")
                Bidirectional(SimpleRNN(3), mergeMode: .ave, name: "both")
                Dense(2, name: "head")
            }
        }
        let a = make(6), b = make(7), c = make(8)
        let x = Tensor.randomUniform([2, 5, 3])
        XCTAssertNotEqual(try a.predict(x, verbose: 0), try b.predict(x, verbose: 0))
        try a.saveWeights(to: path("rnn.safetensors"))
        let names = try Safetensors.read(from: path("rnn.safetensors")).tensors.map(\.name)
        XCTAssertTrue(names.contains("layers/gru/vars/2") && names.contains("layers/bidirectional/vars/5"), "\(names)")
        try b.loadWeights(from: path("rnn.safetensors"))
        XCTAssertEqual(try a.predict(x, verbose: 0), try b.predict(x, verbose: 0))
        try a.saveWeights(to: path("rnn-torch.safetensors"), naming: .pytorch())
        try c.loadWeights(from: path("rnn-torch.safetensors"), naming: .pytorch())
        XCTAssertEqual(try a.predict(x, verbose: 0), try c.predict(x, verbose: 0))
    }

    /// LSTM, Embedding and MultiHeadAttention weights go through safetensors with Keras's
    /// positional names and come back identical (same predictions).
    func testRecurrentAndAttentionWeightsRoundTrip() throws {
        func make(_ seed: UInt64) throws -> Model {
            Kestrel.setRandomSeed(seed)
            let tokens = Input(shape: [6])
            let embedded = try Embedding(inputDim: 20, outputDim: 8)(tokens)
            let attended = try MultiHeadAttention(numHeads: 2, keyDim: 4)([embedded, embedded])
            let summary = try LSTM(5)(attended)
            return try Model(inputs: tokens, outputs: Dense(3)(summary))
        }
        let a = try make(4), b = try make(5)
        let x = Tensor(shape: [2, 6], scalars: (0..<12).map { Float($0 % 20) })
        XCTAssertNotEqual(try a.predict(x, verbose: 0), try b.predict(x, verbose: 0))
        try a.saveWeights(to: path("seq.safetensors"))
        let names = try Safetensors.read(from: path("seq.safetensors")).tensors.map(\.name)
        XCTAssertTrue(names.contains("layers/lstm/vars/1"), "\(names)")
        XCTAssertTrue(names.contains("layers/multi_head_attention/vars/7"), "\(names)")
        try b.loadWeights(from: path("seq.safetensors"))
        XCTAssertEqual(try a.getWeights(), try b.getWeights())
        XCTAssertEqual(try a.predict(x, verbose: 0), try b.predict(x, verbose: 0))
    }

    func testSaveLoadWeightsKerasAndPyTorchNames() throws {
        let a = model(seed: 2), b = model(seed: 3)
        try a.saveWeights(to: path("k.safetensors"))
        let (tensors, metadata) = try Safetensors.read(from: path("k.safetensors"))
        XCTAssertEqual(tensors.map(\.name), ["layers/dense/vars/0", "layers/dense/vars/1", "layers/dense_1/vars/0",
                                              "layers/dense_1/vars/1"])
        XCTAssertEqual(metadata["format"], "keras")
        XCTAssertNotEqual(try a.getWeights(), try b.getWeights())
        try b.loadWeights(from: path("k.safetensors"))
        XCTAssertEqual(try a.getWeights(), try b.getWeights())

        try a.saveWeights(to: path("p.safetensors"), naming: .pytorch(modules: ["hidden": "fc1", "out": "fc2"]))
        let (pt, ptMeta) = try Safetensors.read(from: path("p.safetensors"))
        XCTAssertEqual(pt.map(\.name), ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"])
        XCTAssertEqual(ptMeta["format"], "pt")
        XCTAssertEqual(pt[0].tensor.shape, [6, 4], "Linear.weight is (out, in)")
        XCTAssertEqual(pt[0].tensor, try a.getWeights()[0].transposed())
        let c = model(seed: 4)
        try c.loadWeights(from: path("p.safetensors"), naming: .pytorch(modules: ["hidden": "fc1", "out": "fc2"]))
        XCTAssertEqual(try c.getWeights(), try a.getWeights())
    }

    /// PyTorch flattens a feature map channels-first: a Dense kernel reading a `Flatten`ed
    /// `(H, W, C)` map (or a Conv1D's `(steps, C)`) has its rows reordered in the PyTorch
    /// layout; one reading plain `(rows, columns)` inputs keeps them.
    func testPyTorchLayoutReordersDenseAfterFlattenOfFeatureMaps() throws {
        Kestrel.setRandomSeed(6)
        let image = Sequential { Input(shape: [2, 3, 2]); Flatten(); Dropout(0.5); Dense(4, name: "fc") }
        let sequence = Sequential { Input(shape: [4, 3]); Conv1D(2, kernelSize: 2, name: "conv"); ReLU(); Flatten(); Dense(4, name: "fc") }
        let rows = Sequential { Input(shape: [3, 2]); Flatten(); Dense(4, name: "fc") }
        for (model, map) in [(image, [2, 3, 2]), (sequence, [3, 2]), (rows, nil)] as [(Sequential, [Int]?)] {
            let file = path("\(model.name).safetensors")
            try model.saveWeights(to: file, naming: .pytorch())
            let stored = try Safetensors.read(from: file).tensors.first { $0.name == "fc.weight" }!.tensor
            let kernel = try model.getLayer(name: "fc").getWeights()[0]          // (features, 4)
            let features = kernel.shape[0]
            XCTAssertEqual(stored.shape, [4, features])
            for o in 0..<4 {
                for f in 0..<features {
                    // Channels-last feature f = s·C + c is channels-first column c·S + s.
                    var column = f
                    if let map {
                        let channels = map.last!, spatial = features / channels
                        column = (f % channels) * spatial + f / channels
                    }
                    XCTAssertEqual(stored.scalars[o * features + column], kernel.scalars[f * 4 + o], "\(model.name) \(o) \(f)")
                }
            }
            let before = try model.getWeights()
            try model.setWeights(before.map { Tensor.zeros($0.shape) })
            try model.loadWeights(from: file, naming: .pytorch())
            XCTAssertEqual(try model.getWeights(), before, "\(model.name): loading undoes the reordering")
        }
    }

    func testLoadWeightsChecksEverythingFirst() throws {
        let a = model(seed: 5)
        let before = try a.getWeights()
        try Safetensors.write([("layers/dense/vars/0", Tensor.zeros([4, 6])), ("layers/dense/vars/1", Tensor.zeros([6])),
                               ("layers/dense_1/vars/0", Tensor.zeros([5, 3])), ("layers/dense_1/vars/1", Tensor.zeros([3]))],
                              to: path("bad.safetensors"))
        assertThrowsMessage(try a.loadWeights(from: path("bad.safetensors")), contains: ["layers/dense_1/vars/0", "[5, 3]", "[6, 3]"])
        XCTAssertEqual(try a.getWeights(), before, "nothing loaded from a bad file")
        try Safetensors.write([("layers/dense/vars/0", Tensor.zeros([4, 6]))], to: path("short.safetensors"))
        assertThrowsMessage(try a.loadWeights(from: path("short.safetensors")), contains: ["missing", "layers/dense_1/vars/0"])
        assertThrowsMessage(try a.loadWeights(from: path("absent.safetensors")), contains: ["absent.safetensors"])
        assertThrowsMessage(try a.saveWeights(to: path("w.h5")), contains: [".safetensors"])
    }

    func testPyTorchConvolutionLayout() {
        // A (kH, kW, in, out) = (1, 2, 2, 3) kernel becomes (out, in, kH, kW) = (3, 2, 1, 2).
        let kernel = Tensor(shape: [1, 2, 2, 3], scalars: (0..<12).map(Float.init))
        let spec = WeightSpec(name: "kernel", shape: [1, 2, 2, 3], initializer: .zeros)
        let (to, from) = PyTorchLayout.conversion(for: Dense(1), spec: spec)
        let oihw = to(kernel)
        XCTAssertEqual(oihw.shape, [3, 2, 1, 2])
        // Element (o=2, i=1, h=0, w=1) is kernel[h=0, w=1, i=1, o=2] = ((0*2+1)*2+1)*3+2 = 11.
        XCTAssertEqual(oihw[2, 1, 0, 1], 11)
        XCTAssertEqual(from(oihw), kernel)
    }

    func testOptimizerStateRoundTrip() throws {
        let a = model(seed: 6)
        a.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = Tensor.randomUniform([20, 4]), y = Tensor(labels: (0..<20).map { $0 % 3 })
        try a.fit(x, y, batchSize: 5, epochs: 1, verbose: 0)
        let state = try a.optimizerState()
        XCTAssertEqual(state.iterations, 4)
        XCTAssertEqual(state.slotNames, ["momentum", "velocity"])
        XCTAssertEqual(state.slots[0].map(\.shape), [[4, 6], [6], [6, 3], [3]])
        XCTAssertEqual(a.trainableVariableNames, ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"])
        let b = model(seed: 6)
        b.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try b.setOptimizerState(state)
        XCTAssertEqual(try b.optimizerState(), state)
        let sgd = model(seed: 6)
        sgd.compile(optimizer: SGD(momentum: 0.9), loss: MeanSquaredError())
        assertThrowsMessage(try sgd.setOptimizerState(state), contains: ["momentum", "velocity"])
    }

    /// Train 3 epochs straight, or 1 epoch, checkpoint, a new process-like start, resume from
    /// epoch 1: the same weights (shuffles and dropout masks depend on the fit seed and epoch).
    func testCheckpointResumeMatchesUninterruptedTraining() throws {
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.randomUniform([48, 4], generator: &rng), y = Tensor(labels: (0..<48).map { $0 % 3 })
        func fresh() -> Sequential {
            Kestrel.setRandomSeed(10)
            let m = Sequential {
                Dense(6, activation: .relu, inputShape: [4])
                Dropout(0.25)
                Dense(3)
            }
            m.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
            return m
        }
        let straight = fresh()
        Kestrel.setRandomSeed(11)
        try straight.fit(x, y, batchSize: 8, epochs: 3, verbose: 0)

        let first = fresh()
        Kestrel.setRandomSeed(11)
        try first.fit(x, y, batchSize: 8, epochs: 1, verbose: 0)
        try first.saveCheckpoint(to: path("ckpt.safetensors"), epoch: 1)

        // Built anew in the same process: other automatic layer names, same positional paths.
        let resumed = fresh()
        XCTAssertNotEqual(resumed.layers.map(\.name), first.layers.map(\.name))
        Kestrel.setRandomSeed(11)
        let epoch = try resumed.loadCheckpoint(from: path("ckpt.safetensors"))
        XCTAssertEqual(epoch, 1)
        try resumed.fit(x, y, batchSize: 8, epochs: 3, verbose: 0, initialEpoch: epoch)
        XCTAssertEqual(try resumed.getWeights(), try straight.getWeights())
    }
}
