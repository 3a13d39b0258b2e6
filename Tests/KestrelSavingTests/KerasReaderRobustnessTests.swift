import Foundation
import Kestrel
import KestrelKeras
import XCTest
import ZIPFoundation

/// Truncated, corrupted and hostile `.keras` and `.weights.h5` files: each must throw a
/// `KestrelError.fileError` naming the file, never crash, never load half a model.
final class KerasReaderRobustnessTests: XCTestCase {
    /// A small valid archive (compiled, with optimizer state) and the model it came from.
    func validArchive(in dir: ScratchDirectory) throws -> (path: String, model: Model, x: Tensor) {
        Kestrel.setRandomSeed(21)
        let model = Sequential { Input(shape: [5]); Dense(4, activation: .relu); Dense(2) }
        model.compile(optimizer: Adam(), loss: MeanSquaredError())
        let x = Tensor.randomUniform([6, 5])
        _ = try model.fit(x, Tensor.randomUniform([6, 2]), batchSize: 3, epochs: 1, verbose: 0)
        let path = dir.file("valid.keras")
        try model.save(to: path)
        return (path, model, x)
    }

    func assertFileError(_ path: String, containing fragment: String, file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case KestrelError.fileError(let message) = error else {
                return XCTFail("expected a fileError, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(message.contains(path), "message does not name the file: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(fragment), "message lacks '\(fragment)': \(message)", file: file, line: line)
        }
    }

    /// Rewrites an archive with one member replaced (or removed when `data` is nil).
    func rewrite(_ source: String, to destination: String, member: String, data: Data?) throws {
        let input = try Archive(url: URL(fileURLWithPath: source), accessMode: .read)
        let output = try Archive(url: URL(fileURLWithPath: destination), accessMode: .create)
        for entry in input {
            var content = Data()
            _ = try input.extract(entry) { content.append($0) }
            if entry.path == member {
                guard let data else { continue }
                content = data
            }
            let bytes = content
            try output.addEntry(with: entry.path, type: .file, uncompressedSize: Int64(bytes.count)) { position, size in
                bytes.subdata(in: Int(position)..<(Int(position) + size))
            }
        }
    }

    func config(of archive: String) throws -> [String: Any] {
        let a = try Archive(url: URL(fileURLWithPath: archive), accessMode: .read)
        var data = Data()
        _ = try a.extract(a["config.json"]!) { data.append($0) }
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func testHostileArchivesThrowNamedErrors() throws {
        let dir = try ScratchDirectory()
        let (valid, _, _) = try validArchive(in: dir)
        let missing = dir.file("missing.keras")
        assertFileError(missing, containing: "no such file") { _ = try Model.load(from: missing) }

        let notZip = dir.file("text.keras")
        try Data("hello, not a zip".utf8).write(to: URL(fileURLWithPath: notZip))
        assertFileError(notZip, containing: "zip") { _ = try Model.load(from: notZip) }

        let badJSON = dir.file("badjson.keras")
        try rewrite(valid, to: badJSON, member: "config.json", data: Data("{\"class_name\": ".utf8))
        assertFileError(badJSON, containing: "not valid JSON") { _ = try Model.load(from: badJSON) }

        let noWeights = dir.file("noweights.keras")
        try rewrite(valid, to: noWeights, member: "model.weights.h5", data: nil)
        assertFileError(noWeights, containing: "model.weights.h5") { _ = try Model.load(from: noWeights) }

        let notHDF5 = dir.file("nothdf5.keras")
        try rewrite(valid, to: notHDF5, member: "model.weights.h5", data: Data(repeating: 7, count: 4096))
        assertFileError(notHDF5, containing: "HDF5") { _ = try Model.load(from: notHDF5) }

        func mutateConfig(_ name: String, _ change: (inout [String: Any]) -> Void) throws -> String {
            var c = try config(of: valid)
            change(&c)
            let path = dir.file(name)
            try rewrite(valid, to: path, member: "config.json", data: try JSONSerialization.data(withJSONObject: c))
            return path
        }
        func mutateLayer(_ index: Int, _ change: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
            { c in
                var inner = c["config"] as! [String: Any]
                var layers = inner["layers"] as! [[String: Any]]
                change(&layers[index])
                inner["layers"] = layers
                c["config"] = inner
            }
        }
        let unknown = try mutateConfig("unknown.keras", mutateLayer(1) { $0["class_name"] = "TimeMachine" })
        assertFileError(unknown, containing: "unknown or unsupported layer class 'TimeMachine'") { _ = try Model.load(from: unknown) }

        let huge = try mutateConfig("huge.keras", mutateLayer(1) { l in
            var c = l["config"] as! [String: Any]
            c["units"] = 200_000_000
            l["config"] = c
        })
        assertFileError(huge, containing: "more than") { _ = try Model.load(from: huge) }

        let wrongShape = try mutateConfig("shape.keras", mutateLayer(1) { l in
            var c = l["config"] as! [String: Any]
            c["units"] = 3
            l["config"] = c
        })
        assertFileError(wrongShape, containing: "expected") { _ = try Model.load(from: wrongShape) }

        let badUnits = try mutateConfig("units.keras", mutateLayer(1) { l in
            var c = l["config"] as! [String: Any]
            c["units"] = "four"
            l["config"] = c
        })
        assertFileError(badUnits, containing: "'units' should be an integer") { _ = try Model.load(from: badUnits) }

        // Regularizers and constraints: Keras's string aliases read with Keras's defaults; what
        // Kestrel cannot apply is refused rather than dropped.
        func withLayerKey(_ key: String, _ value: Any) -> (inout [String: Any]) -> Void {
            mutateLayer(1) { l in
                var c = l["config"] as! [String: Any]
                c[key] = value
                l["config"] = c
            }
        }
        let alias = try mutateConfig("alias.keras", withLayerKey("kernel_regularizer", "l2"))
        XCTAssertEqual((try Model.load(from: alias).layers[0] as? Dense)?.kernelRegularizer, .l2(0.01))
        let aliasConstraint = try mutateConfig("alias-constraint.keras", withLayerKey("bias_constraint", "non_neg"))
        XCTAssertEqual((try Model.load(from: aliasConstraint).layers[0] as? Dense)?.biasConstraint, .nonNeg)
        let activity = try mutateConfig("activity.keras", withLayerKey("activity_regularizer", "l1"))
        XCTAssertEqual(try Model.load(from: activity).layers[0].activityRegularizer, .l1(0.01))
        let activityOrthogonal = try mutateConfig("activity-orthogonal.keras", withLayerKey("activity_regularizer", [
            "module": "keras.regularizers", "class_name": "OrthogonalRegularizer", "config": ["factor": 0.01]]))
        assertFileError(activityOrthogonal, containing: "OrthogonalRegularizer regularizer; Kestrel implements L1, L2 and L1L2") {
            _ = try Model.load(from: activityOrthogonal)
        }
        let orthogonal = try mutateConfig("orthogonal.keras", withLayerKey("kernel_regularizer", [
            "module": "keras.regularizers", "class_name": "OrthogonalRegularizer", "config": ["factor": 0.01]]))
        assertFileError(orthogonal, containing: "OrthogonalRegularizer regularizer; Kestrel implements L1, L2 and L1L2") {
            _ = try Model.load(from: orthogonal)
        }
        let negative = try mutateConfig("negative.keras", withLayerKey("kernel_regularizer", [
            "module": "keras.regularizers", "class_name": "L2", "config": ["l2": -1]]))
        assertFileError(negative, containing: "non-negative number for 'l2'") { _ = try Model.load(from: negative) }
        let minMax = try mutateConfig("minmax.keras", withLayerKey("kernel_constraint", [
            "module": "keras.constraints", "class_name": "MinMaxNorm", "config": ["min_value": 0, "max_value": 1]]))
        assertFileError(minMax, containing: "MinMaxNorm constraint") { _ = try Model.load(from: minMax) }
        let badAxis = try mutateConfig("axis.keras", withLayerKey("kernel_constraint", [
            "module": "keras.constraints", "class_name": "UnitNorm", "config": ["axis": "rows"]]))
        assertFileError(badAxis, containing: "integer or a list of integers for 'axis'") { _ = try Model.load(from: badAxis) }

        let badModel = try mutateConfig("model.keras") { $0["class_name"] = "Transformer" }
        assertFileError(badModel, containing: "unsupported model class") { _ = try Model.load(from: badModel) }

        // Nested models: the valid model's Dense layers moved into a nested Sequential.
        func nest(_ c: inout [String: Any], inputShape: Int, depth: Int) {
            var outer = c["config"] as! [String: Any]
            let layers = outer["layers"] as! [[String: Any]]
            var inner: [String: Any] = ["class_name": "Sequential", "config": ["name": "inner", "layers": layers]]
            var innerConfig = inner["config"] as! [String: Any]
            var innerLayers = layers
            var input = innerLayers[0]["config"] as! [String: Any]
            input["batch_shape"] = [NSNull(), inputShape]
            innerLayers[0]["config"] = input
            innerConfig["layers"] = innerLayers
            inner["config"] = innerConfig
            for level in 1..<depth {
                inner = ["class_name": "Sequential", "config": ["name": "inner\(level)", "layers": [layers[0], inner]]]
            }
            outer["layers"] = [layers[0], inner]
            c["config"] = outer
        }
        // Well-formed, but the weights file keeps them at layers/dense, not under layers/sequential/.
        let moved = try mutateConfig("moved.keras") { nest(&$0, inputShape: 5, depth: 1) }
        assertFileError(moved, containing: "missing group 'layers/sequential/layers/dense/vars'") { _ = try Model.load(from: moved) }
        let misfit = try mutateConfig("misfit.keras") { nest(&$0, inputShape: 7, depth: 1) }
        assertFileError(misfit, containing: "does not fit") { _ = try Model.load(from: misfit) }
        let deep = try mutateConfig("deep.keras") { nest(&$0, inputShape: 5, depth: 40) }
        assertFileError(deep, containing: "nested more than 32 levels") { _ = try Model.load(from: deep) }
    }

    /// UpSampling2D's interpolation and Conv2DTranspose's output_padding as Keras writes them:
    /// accepted where Kestrel computes the same thing, refused by name where it does not.
    func testInterpolationAndOutputPaddingFromArchives() throws {
        let dir = try ScratchDirectory()
        let model = Sequential {
            Input(shape: [3, 3, 2])
            UpSampling2D(size: 2)
            Conv2DTranspose(2, kernelSize: 3, strides: 2)
        }
        try model.build()
        let path = dir.file("image.keras")
        try model.save(to: path)
        func with(_ name: String, layer index: Int, _ key: String, _ value: Any) throws -> String {
            var c = try config(of: path)
            var inner = c["config"] as! [String: Any]
            var layers = inner["layers"] as! [[String: Any]]
            var layerConfig = layers[index]["config"] as! [String: Any]
            layerConfig[key] = value
            layers[index]["config"] = layerConfig
            inner["layers"] = layers
            c["config"] = inner
            let out = dir.file(name)
            try rewrite(path, to: out, member: "config.json", data: try JSONSerialization.data(withJSONObject: c))
            return out
        }
        let bilinear = try with("bilinear.keras", layer: 1, "interpolation", "bilinear")
        XCTAssertEqual((try Model.load(from: bilinear).layers[0] as? UpSampling2D)?.interpolation, .bilinear)
        let bicubic = try with("bicubic.keras", layer: 1, "interpolation", "bicubic")
        assertFileError(bicubic, containing: "interpolation 'bicubic' is not supported (only nearest and bilinear)") {
            _ = try Model.load(from: bicubic)
        }
        let padded = try with("padded.keras", layer: 2, "output_padding", [1, 0])
        let loaded = try Model.load(from: padded)
        XCTAssertEqual((loaded.layers[1] as? Conv2DTranspose)?.outputPadding, [1, 0])
        XCTAssertEqual(loaded.outputShape, [14, 13, 2])
        let tooWide = try with("too-wide.keras", layer: 2, "output_padding", [2, 0])
        assertFileError(tooWide, containing: "output_padding must be non-negative and less than strides [2, 2], found [2, 0]") {
            _ = try Model.load(from: tooWide)
        }
    }

    /// Options of Embedding, LSTM and MultiHeadAttention that Kestrel does not implement, in
    /// the layer's config or in its call, are refused naming the layer, the key, what Kestrel
    /// expects and what the file holds; what Kestrel computes the same is accepted.
    func testSequenceLayerOptionsKestrelLacksAreRefused() throws {
        let dir = try ScratchDirectory()
        let sequence = KerasArchiveTests.sequenceModel()
        try sequence.build()
        let sequencePath = dir.file("sequence.keras")
        try sequence.save(to: sequencePath)
        let attention = try KerasArchiveTests.attentionModel()
        try attention.build()
        let attentionPath = dir.file("attention.keras")
        try attention.save(to: attentionPath)

        /// The archive at `source` with `edit` applied to the entry of `layer` in its config.
        func edited(_ source: String, layer: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
            var c = try config(of: source)
            var inner = c["config"] as! [String: Any]
            var layers = inner["layers"] as! [[String: Any]]
            let index = try XCTUnwrap(layers.firstIndex { ($0["config"] as? [String: Any])?["name"] as? String == layer })
            edit(&layers[index])
            inner["layers"] = layers
            c["config"] = inner
            let out = dir.file("edited-\(UUID().uuidString).keras")
            try rewrite(source, to: out, member: "config.json", data: try JSONSerialization.data(withJSONObject: c))
            return out
        }
        func setting(_ source: String, layer: String, _ key: String, _ value: Any) throws -> String {
            try edited(source, layer: layer) { entry in
                var layerConfig = entry["config"] as! [String: Any]
                layerConfig[key] = value
                entry["config"] = layerConfig
            }
        }
        let recurrent = KerasArchiveTests.recurrentModel()
        try recurrent.build()
        let recurrentPath = dir.file("recurrent.keras")
        try recurrent.save(to: recurrentPath)
        let dense: [String: Any] = ["class_name": "Dense", "config": ["name": "d", "units": 2]]
        for (source, layer, key, value, message) in [
            (recurrentPath, "encoder", "dropout", 1.5 as Any, "GRU dropout must be in [0, 1), found 1.5"),
            (recurrentPath, "summed", "merge_mode", NSNull(), "Bidirectional 'summed': 'merge_mode' must be concat, sum, mul or ave"),
            (recurrentPath, "summed", "merge_mode", "max", "Bidirectional merge_mode 'max' is not supported (only concat, sum, mul and ave)"),
            (recurrentPath, "mixed", "layer", dense, "Bidirectional 'mixed': 'layer' must be an LSTM, GRU or SimpleRNN"),
            (sequencePath, "encoder", "recurrent_dropout", 1.5, "LSTM recurrent_dropout must be in [0, 1), found 1.5"),
            (recurrentPath, "encoder", "recurrent_dropout", -0.5, "GRU recurrent_dropout must be in [0, 1), found -0.5"),
            // A Sequential model cannot pass a list of tensors on (Keras fails there too).
            (sequencePath, "encoder", "return_state", true, "layer 'encoder' (LSTM) has returnState, so it returns several tensors"),
            (sequencePath, "encoder", "stateful", true, "LSTM 'encoder': 'stateful' must be false"),
            (sequencePath, "encoder", "recurrent_regularizer", ["class_name": "OrthogonalRegularizer", "config": [:]] as [String: Any],
             "OrthogonalRegularizer regularizer; Kestrel implements L1, L2 and L1L2"),
            (attentionPath, "self_attention", "attention_axes", [2], "MultiHeadAttention 'self_attention': 'attention_axes' must be null or [1] (Kestrel does not implement other values), found [2]"),
            (attentionPath, "self_attention", "dropout", 1.5, "MultiHeadAttention dropout must be in [0, 1), found 1.5"),
            (attentionPath, "self_attention", "use_gate", true, "MultiHeadAttention 'self_attention': 'use_gate' must be false"),
            (attentionPath, "cross_attention", "output_shape", [5, 2], "MultiHeadAttention 'cross_attention': 'output_shape' must be null or one positive size"),
            (attentionPath, "cross_attention", "sliding_window", 2, "MultiHeadAttention 'cross_attention': 'sliding_window' must be null"),
        ] {
            let path = try setting(source, layer: layer, key, value)
            assertFileError(path, containing: message) { _ = try Model.load(from: path) }
        }

        // Masks are implemented: mask_zero loads.
        let masked = try Model.load(from: try setting(sequencePath, layer: "tokens", "mask_zero", true))
        XCTAssertEqual((masked.layers.first as? Embedding)?.maskZero, true)

        // Input dropout is implemented: it loads, with its seed.
        let dropping = try Model.load(from: try edited(sequencePath, layer: "encoder") { entry in
            var config = entry["config"] as! [String: Any]
            config["dropout"] = 0.2
            config["seed"] = 7
            entry["config"] = config
        })
        let encoder = try XCTUnwrap(dropping.layers.first { $0.name == "encoder" } as? LSTM)
        XCTAssertEqual(encoder.dropout, 0.2)
        XCTAssertEqual(encoder.seed, 7)
        // So is LSTM's recurrent dropout.
        let recurrentDropping = try Model.load(from: try setting(sequencePath, layer: "encoder", "recurrent_dropout", 0.25))
        XCTAssertEqual((recurrentDropping.layers.first { $0.name == "encoder" } as? LSTM)?.recurrentDropout, 0.25)

        // Call options: a causal mask, an initial state.
        func calling(_ source: String, layer: String, _ key: String, _ value: Any) throws -> String {
            try edited(source, layer: layer) { entry in
                var nodes = entry["inbound_nodes"] as! [[String: Any]]
                var kwargs = nodes[0]["kwargs"] as! [String: Any]
                kwargs[key] = value
                nodes[0]["kwargs"] = kwargs
                entry["inbound_nodes"] = nodes
            }
        }
        let causal = try calling(attentionPath, layer: "cross_attention", "use_causal_mask", true)
        XCTAssertEqual((try Model.load(from: causal).layers.last { $0 is MultiHeadAttention } as? MultiHeadAttention)?.useCausalMask,
                       true)
        let notBool = try calling(attentionPath, layer: "cross_attention", "use_causal_mask", "yes")
        assertFileError(notBool, containing: "MultiHeadAttention 'cross_attention': 'use_causal_mask' must be null or false") {
            _ = try Model.load(from: notBool)
        }
        let unmasked = try calling(attentionPath, layer: "cross_attention", "use_causal_mask", false)
        let q = Tensor.randomUniform([2, 4, 6]), v = Tensor.randomUniform([2, 3, 5])
        XCTAssertEqual(try Model.load(from: unmasked).predict([q, v])[0], try attention.predict([q, v])[0])

        // Accepted as Keras also writes them: a bare output size, attention_axes null or 1,
        // tensors passed by keyword (`mha(query=q, value=v, key=k)`).
        let bare = try setting(attentionPath, layer: "cross_attention", "output_shape", 5)
        XCTAssertEqual((try Model.load(from: bare).layers.last { $0 is MultiHeadAttention } as? MultiHeadAttention)?.outputShape, 5)
        for axes in [NSNull() as Any, 1] {
            let path = try setting(attentionPath, layer: "self_attention", "attention_axes", axes)
            XCTAssertNoThrow(try Model.load(from: path))
        }
        let keywords = try edited(attentionPath, layer: "cross_attention") { entry in
            var nodes = entry["inbound_nodes"] as! [[String: Any]]
            let args = nodes[0]["args"] as! [Any]
            nodes[0]["args"] = [args[0]]
            nodes[0]["kwargs"] = ["value": args[1], "key": args[2], "training": false]
            entry["inbound_nodes"] = nodes
        }
        XCTAssertEqual(try Model.load(from: keywords).predict([q, v])[0], try attention.predict([q, v])[0])
    }

    /// Keras 3's functional archives record masks as operations (`NotEqual`, `Any`, `LogicalOr`)
    /// passed to layers by a `mask` keyword. Kestrel skips them and propagates its own masks,
    /// but only where its masks reach the same calls; any other tensor as a mask is refused.
    func testRecordedMasksMustBeKestrelsOwn() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(8)
        func model(maskZero: Bool) throws -> Model {
            let tokens = Input(shape: [5], name: "ids")
            let x = try Embedding(inputDim: 6, outputDim: 3, maskZero: maskZero, name: "tokens")(tokens)
            return try Model(inputs: tokens, outputs: try Dense(2, name: "head")(try LSTM(2, name: "encoder")(x)))
        }
        let plain = try model(maskZero: false)
        try plain.save(to: dir.file("plain.keras"))
        let c = try config(of: dir.file("plain.keras"))
        /// The archive with a NotEqual operation on the input, given to the LSTM as its mask
        /// (or, with `maskFrom`, another layer's output), and Embedding's mask_zero as given.
        func recorded(maskZero: Bool, maskFrom producer: String = "not_equal") throws -> String {
            var outer = c, inner = outer["config"] as! [String: Any]
            var layers = inner["layers"] as! [[String: Any]]
            let input: [String: Any] = ["class_name": "__keras_tensor__",
                                        "config": ["shape": [NSNull(), 5], "dtype": "float32", "keras_history": ["ids", 0, 0]]]
            layers.insert(["module": "keras.src.ops.numpy", "class_name": "NotEqual", "config": ["name": "not_equal"],
                           "name": "not_equal", "inbound_nodes": [["args": [input, 0], "kwargs": [:] as [String: Any]]]], at: 2)
            for i in layers.indices {
                let name = (layers[i]["config"] as? [String: Any])?["name"] as? String
                if name == "tokens" {
                    var config = layers[i]["config"] as! [String: Any]
                    config["mask_zero"] = maskZero
                    layers[i]["config"] = config
                }
                if name == "encoder" {
                    var nodes = layers[i]["inbound_nodes"] as! [[String: Any]]
                    nodes[0]["kwargs"] = ["mask": ["class_name": "__keras_tensor__",
                                                   "config": ["shape": [NSNull(), 5], "dtype": "bool",
                                                              "keras_history": [producer, 0, 0]]]]
                    layers[i]["inbound_nodes"] = nodes
                }
            }
            inner["layers"] = layers
            outer["config"] = inner
            let out = dir.file("recorded-\(UUID().uuidString).keras")
            try rewrite(dir.file("plain.keras"), to: out, member: "config.json", data: try JSONSerialization.data(withJSONObject: outer))
            return out
        }
        let x = Tensor(shape: [2, 5], scalars: [1, 2, 0, 0, 0, 0, 3, 4, 5, 1])
        let loaded = try Model.load(from: try recorded(maskZero: true))
        let expected = try model(maskZero: true)
        try expected.build()
        try expected.setWeights(plain.getWeights())
        XCTAssertEqual(try loaded.predict(x).scalars, try expected.predict(x).scalars)
        XCTAssertNotEqual(try loaded.predict(x).scalars, try plain.predict(x).scalars)

        let unmasked = try recorded(maskZero: false)
        assertFileError(unmasked, containing: "passes 'encoder' a mask that Kestrel's mask propagation does not produce there") {
            _ = try Model.load(from: unmasked)
        }
        let other = try recorded(maskZero: true, maskFrom: "tokens")
        assertFileError(other, containing: "LSTM 'encoder': 'mask' must be null or false") { _ = try Model.load(from: other) }
    }

    func testWeightsFileForAnotherArchitectureLeavesModelUnchanged() throws {
        let dir = try ScratchDirectory()
        let (_, model, x) = try validArchive(in: dir)
        let path = dir.file("m.weights.h5")
        try model.saveKerasWeights(to: path)
        let other = Sequential { Input(shape: [5]); Dense(4, activation: .relu); Dense(3) }
        let before = try other.getWeights()
        assertFileError(path, containing: "expected [4, 3]") { try other.loadKerasWeights(from: path) }
        // The first layer matched, but nothing may change when a later one fails.
        XCTAssertEqual(try other.getWeights(), before)
        _ = x
    }

    /// Random corruptions of a valid archive: byte flips, runs of random bytes, truncations
    /// and appended garbage. Each case must either throw a fileError naming the file or load
    /// a model that predicts exactly as the original (a change in bytes nobody reads).
    func testFuzzCorruptedKerasArchives() throws {
        let dir = try ScratchDirectory()
        let (valid, model, x) = try validArchive(in: dir)
        let expected = try model.predict(x).scalars
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: valid)))
        var g = RandomGenerator(seed: 2024)
        var rejected = 0, identical = 0
        let cases = 400
        for trial in 0..<cases {
            var b = bytes
            switch trial % 4 {
            case 0:
                for _ in 0..<(1 + Int(g.next() % 4)) { b[Int(g.next() % UInt64(b.count))] ^= UInt8(1 + g.next() % 255) }
            case 1:
                let start = Int(g.next() % UInt64(b.count)), length = 1 + Int(g.next() % 64)
                for i in start..<min(b.count, start + length) { b[i] = UInt8(truncatingIfNeeded: g.next()) }
            case 2:
                b = Array(b.prefix(Int(g.next() % UInt64(b.count))))
            default:
                b += (0..<(1 + Int(g.next() % 100))).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            }
            let path = dir.file("fuzz.keras")
            try Data(b).write(to: URL(fileURLWithPath: path))
            do {
                let loaded = try Model.load(from: path)
                XCTAssertEqual(try loaded.predict(x).scalars, expected, "trial \(trial) loaded a different model")
                identical += 1
            } catch KestrelError.fileError(let message) {
                XCTAssertTrue(message.contains(path), "trial \(trial): \(message)")
                rejected += 1
            }
        }
        print("fuzz .keras: \(cases) corrupted archives tried, \(rejected) rejected with a file error, \(identical) loaded identically, 0 crashes")
        XCTAssertEqual(rejected + identical, cases)
        XCTAssertGreaterThan(rejected, cases / 3)
    }

    /// The same over a bare `.weights.h5` file, read into a fresh model of the same
    /// architecture: a case either throws (and leaves the model untouched) or loads weights
    /// that predict exactly as the original.
    func testFuzzCorruptedWeightsFiles() throws {
        let dir = try ScratchDirectory()
        let (_, model, x) = try validArchive(in: dir)
        let expected = try model.predict(x).scalars
        let valid = dir.file("valid.weights.h5")
        try model.saveKerasWeights(to: valid)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: valid)))
        var g = RandomGenerator(seed: 77)
        var rejected = 0, loaded = 0
        let cases = 300
        let target = Sequential { Input(shape: [5]); Dense(4, activation: .relu); Dense(2) }
        target.compile(optimizer: Adam(), loss: MeanSquaredError())
        let pristine = try target.getWeights()
        for trial in 0..<cases {
            var b = bytes
            switch trial % 3 {
            case 0:
                for _ in 0..<(1 + Int(g.next() % 4)) { b[Int(g.next() % UInt64(b.count))] ^= UInt8(1 + g.next() % 255) }
            case 1:
                let start = Int(g.next() % UInt64(b.count)), length = 1 + Int(g.next() % 32)
                for i in start..<min(b.count, start + length) { b[i] = UInt8(truncatingIfNeeded: g.next()) }
            default:
                b = Array(b.prefix(Int(g.next() % UInt64(b.count))))
            }
            let path = dir.file("fuzz.weights.h5")
            try Data(b).write(to: URL(fileURLWithPath: path))
            try target.setWeights(pristine)
            do {
                try target.loadKerasWeights(from: path)
                // A flip inside a dataset's float bytes is undetectable (HDF5 stores no checksum
                // for contiguous data); what loads must still be finite values of the right shape.
                let got = try target.predict(x).scalars
                XCTAssertEqual(got.count, expected.count)
                XCTAssertTrue(got.allSatisfy(\.isFinite), "trial \(trial)")
                loaded += 1
            } catch KestrelError.fileError(let message) {
                XCTAssertTrue(message.contains(path), "trial \(trial): \(message)")
                XCTAssertEqual(try target.getWeights(), pristine, "trial \(trial) changed weights before failing")
                rejected += 1
            }
        }
        print("fuzz .weights.h5: \(cases) corrupted files tried, \(rejected) rejected with a file error, \(loaded) loaded, 0 crashes")
        XCTAssertEqual(rejected + loaded, cases)
        XCTAssertGreaterThan(rejected, cases / 3)
    }
}
