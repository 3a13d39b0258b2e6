@testable import Kestrel
import KestrelAllocationCounter
import XCTest

// Sequence layers (LSTM, GRU, SimpleRNN, Bidirectional, MultiHeadAttention, Attention, AdditiveAttention, Embedding) against Keras 3 (JAX backend): output,
// every input's gradient and every weight's gradient of sum(output · projection), with the
// same weights, and for the *_masked cases with a mask on the input (steps masked at the end,
// the start and in between). Fixtures: Fixtures/recurrent_layers.json, written by the `recurrent_layers`
// group of make_fixtures.py. Tolerance 1e-4 relative, as for the convolution layers.

struct SequenceLayerFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let layer: String
        let config: [String: FixtureValue]
        let inputs: [KerasFixtureTensor]
        let weights: [KerasFixtureTensor]
        let weightPaths: [String]
        let output: KerasFixtureTensor
        let projection: KerasFixtureTensor
        let inputGradients: [KerasFixtureTensor]
        let weightGradients: [KerasFixtureTensor]
        /// The first input's mask `(batch, steps)`, for the masked cases.
        let mask: KerasFixtureTensor?
        /// Each input's mask (or null), for attention called with a mask list.
        let inputMasks: [KerasFixtureTensor?]?
        /// The dropout masks Keras's cell used, in Kestrel's layout (input, then recurrent).
        let dropoutMasks: KerasFixtureTensor?
        /// Keras call arguments (`use_causal_mask`, `training`).
        let call: [String: FixtureValue]?
        /// The non-trainable weights a training call leaves (BatchNormalization's moving statistics).
        let updatedNonTrainable: [KerasFixtureTensor]?
    }
    let cases: [Case]
}

/// Runs a built layer with one or more inputs forward and backward once over owned buffers.
struct MultiInputLayerRun {
    var output: [Float], inputGradients: [[Float]], weightGradients: [[Float]]
    /// The output's mask, for a layer that computes one.
    var outputMask: [Float]?
    /// The outputs after the first (a recurrent layer's final states), when asked for.
    var additionalOutputs: [[Float]] = []

    /// `mask` is the first input's mask `(batch, positions)`, if it has one; `masks`, if given,
    /// every input's.
    /// `additionalProjections` weigh the outputs after the first in the objective, one per output.
    init(_ layer: Layer, inputs: [Tensor], projection: [Float], additionalProjections: [[Float]] = [],
         mask: [Float]? = nil, masks: [[Float]?]? = nil, training: Bool = true) throws {
        let samples = inputs.map { Array($0.shape.dropFirst()) }, batch = inputs[0].shape[0]
        let outShape = try layer.build(inputShapes: samples)
        let outCount = batch * outShape.reduce(1, *)
        let ws = layer.workspaceSize(batch: batch, inputShapes: samples, training: training)
        let xs = inputs.map { t -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(t.count, 1))
            p.initialize(from: t.scalars, count: t.count)
            return p
        }
        // Gradients start as NaN: a layer must overwrite (not add to) them.
        let dxs = inputs.map { t -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(t.count, 1))
            p.initialize(repeating: .nan, count: max(t.count, 1))
            return p
        }
        let y = UnsafeMutablePointer<Float>.allocate(capacity: outCount), dy = UnsafeMutablePointer<Float>.allocate(capacity: outCount)
        y.initialize(repeating: 0, count: outCount)
        dy.initialize(from: projection, count: outCount)
        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: max(ws, 1))
        workspace.initialize(repeating: .nan, count: max(ws, 1))
        defer { (xs + dxs + [y, dy, workspace]).forEach { $0.deallocate() } }
        for (spec, g) in zip(layer.weightSpecs, layer.gradientPointers()) { g.update(repeating: .nan, count: spec.count) }
        let c = LayerContext(inputShapes: samples, outputShape: outShape, inputs: xs, output: y, workspace: workspace,
                             weights: layer.weightPointers(), weightGradients: layer.gradientPointers(),
                             generator: RandomGenerator(seed: 1))
        c.batch = batch
        c.training = training
        c.outputGradient = dy
        c.inputGradients = dxs
        let extraShapes = layer.additionalOutputShapes(forInputs: samples)
        let extras = extraShapes.map { shape -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: batch * shape.reduce(1, *))
            p.initialize(repeating: .nan, count: batch * shape.reduce(1, *))
            return p
        }
        let extraGradients = additionalProjections.map { values -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
            p.initialize(from: values, count: values.count)
            return p
        }
        defer { (extras + extraGradients).forEach { $0.deallocate() } }
        c.additionalOutputs = extras
        c.additionalOutputGradients = extras.indices.map { $0 < extraGradients.count ? extraGradients[$0] : nil }
        let allMasks: [[Float]?] = masks ?? inputs.indices.map { $0 == 0 ? mask : nil }
        let maskBuffers = allMasks.map { m -> UnsafeMutablePointer<Float>? in
            m.map { values in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
                p.initialize(from: values, count: values.count)
                return p
            }
        }
        defer { maskBuffers.forEach { $0?.deallocate() } }
        var outputMaskBuffer = [Float](repeating: .nan, count: outCount / max(outShape.last ?? 1, 1))
        let computesMask = try layer.maskHandling(inputsMasked: allMasks.map { $0 != nil }, training: training) == .compute
        outputMaskBuffer.withUnsafeMutableBufferPointer { om in
            c.inputMasks = maskBuffers
            if computesMask { c.outputMask = om.baseAddress! }
            layer.forward(c)
            if computesMask { layer.forwardMask(c) }
            layer.backward(c)
            c.inputMasks = inputs.map { _ in nil }
            c.outputMask = nil
        }
        if computesMask { outputMask = outputMaskBuffer }
        additionalOutputs = zip(extras, extraShapes).map { Array(UnsafeBufferPointer(start: $0, count: batch * $1.reduce(1, *))) }
        output = Array(UnsafeBufferPointer(start: y, count: outCount))
        inputGradients = zip(dxs, inputs).map { Array(UnsafeBufferPointer(start: $0, count: $1.count)) }
        // The trainable weights' gradients (Keras differentiates those only).
        weightGradients = zip(layer.weightSpecs, layer.gradientPointers()).filter(\.0.trainable).map {
            Array(UnsafeBufferPointer(start: $0.1, count: $0.0.count))
        }
    }
}

final class RecurrentReferenceTests: XCTestCase {
    /// The Kestrel layer for a fixture case, from Keras's class name and constructor arguments.
    static func makeLayer(_ c: SequenceLayerFixture.Case) throws -> Layer {
        try makeLayer(className: c.layer, config: c.config, caseName: c.name)
    }

    static func makeLayer(className: String, config k: [String: FixtureValue], caseName: String) throws -> Layer {
        func bool(_ key: String, _ fallback: Bool) -> Bool {
            if case .bool(let b)? = k[key] { return b }
            return fallback
        }
        func rate(_ key: String) -> Float {
            if case .number(let v)? = k[key] { return Float(v) }
            return 0
        }
        func activation(_ key: String, _ fallback: ActivationFunction) throws -> ActivationFunction {
            guard case .string(let s)? = k[key] else { return fallback }
            return try ActivationFunction(named: s)
        }
        switch className {
        case "Bidirectional":
            guard case .object(let inner)? = k["layer"], case .string(let innerClass)? = inner["class_name"],
                  case .object(let innerConfig)? = inner["config"],
                  let layer = try makeLayer(className: innerClass, config: innerConfig, caseName: caseName) as? RecurrentLayer else {
                throw KerasFixtureError("\(caseName): Bidirectional needs a recurrent layer")
            }
            var merge = BidirectionalMerge.concat
            if case .string(let s)? = k["merge_mode"] { merge = try XCTUnwrap(BidirectionalMerge(rawValue: s)) }
            return Bidirectional(layer, mergeMode: merge)
        case "LSTM":
            return LSTM(k["units"]!.int!, activation: try activation("activation", .tanh),
                        recurrentActivation: try activation("recurrent_activation", .sigmoid),
                        useBias: bool("use_bias", true), dropout: rate("dropout"), recurrentDropout: rate("recurrent_dropout"),
                        returnSequences: bool("return_sequences", false), returnState: bool("return_state", false),
                        goBackwards: bool("go_backwards", false), zeroOutputForMask: bool("zero_output_for_mask", false))
        case "GRU":
            return GRU(k["units"]!.int!, activation: try activation("activation", .tanh),
                       recurrentActivation: try activation("recurrent_activation", .sigmoid),
                       useBias: bool("use_bias", true), dropout: rate("dropout"), recurrentDropout: rate("recurrent_dropout"),
                       returnSequences: bool("return_sequences", false), returnState: bool("return_state", false),
                       goBackwards: bool("go_backwards", false), zeroOutputForMask: bool("zero_output_for_mask", false),
                       resetAfter: bool("reset_after", true))
        case "SimpleRNN":
            return SimpleRNN(k["units"]!.int!, activation: try activation("activation", .tanh), useBias: bool("use_bias", true),
                             dropout: rate("dropout"), recurrentDropout: rate("recurrent_dropout"), returnSequences: bool("return_sequences", false),
                             returnState: bool("return_state", false), goBackwards: bool("go_backwards", false),
                             zeroOutputForMask: bool("zero_output_for_mask", false))
        case "MultiHeadAttention":
            return MultiHeadAttention(numHeads: k["num_heads"]!.int!, keyDim: k["key_dim"]!.int!,
                                      valueDim: k["value_dim"]?.int, useBias: bool("use_bias", true),
                                      outputShape: k["output_shape"]?.int)
        case "Embedding":
            return Embedding(inputDim: k["input_dim"]!.int!, outputDim: k["output_dim"]!.int!)
        case "Attention":
            var mode = Attention.ScoreMode.dot
            if case .string(let s)? = k["score_mode"] { mode = try XCTUnwrap(Attention.ScoreMode(rawValue: s)) }
            return Attention(useScale: bool("use_scale", false), scoreMode: mode)
        case "AdditiveAttention":
            return AdditiveAttention(useScale: bool("use_scale", true))
        case "GlobalAveragePooling1D":
            return GlobalAveragePooling1D()
        case "BatchNormalization":
            return BatchNormalization(momentum: k["momentum"]?.float ?? 0.99)
        case "Masking":
            guard case .number(let v)? = k["mask_value"] else { throw KerasFixtureError("\(caseName): mask_value") }
            return Masking(maskValue: Float(v))
        default:
            throw KerasFixtureError("no Kestrel layer for Keras \(className) (case \(caseName))")
        }
    }

    func testSequenceLayersMatchKeras() throws {
        let fixture = try KerasFixtures.load("recurrent_layers", as: SequenceLayerFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.layer)), ["LSTM", "GRU", "SimpleRNN", "Bidirectional", "MultiHeadAttention", "Embedding",
                                                          "Attention", "AdditiveAttention", "GlobalAveragePooling1D", "Masking",
                                                          "BatchNormalization"])
        XCTAssertEqual(fixture.cases.filter { $0.mask != nil }.count, 10, "masked cases")
        XCTAssertEqual(fixture.cases.filter { $0.inputMasks != nil }.count, 6, "masked attention cases")
        XCTAssertEqual(fixture.cases.filter { $0.call?["use_causal_mask"] != nil }.count, 4, "causal attention cases")
        XCTAssertEqual(fixture.cases.filter { $0.updatedNonTrainable != nil }.count, 1, "masked batch normalization")
        XCTAssertEqual(fixture.cases.filter { $0.dropoutMasks != nil }.count, 6, "recurrent dropout cases")
        for c in fixture.cases {
            let layer = try Self.makeLayer(c)
            try layer.build(inputShapes: c.inputs.map { Array($0.shape.dropFirst()) })
            XCTAssertEqual(layer.weightSpecs.map(\.shape), c.weights.map(\.shape), "\(c.name) weight shapes")
            // Keras's variable paths end with Kestrel's weight names (LSTM's sit in its cell).
            // (Bidirectional's halves sit in forward_… and backward_… layers.)
            for (spec, path) in zip(layer.weightSpecs, c.weightPaths) {
                let name = layer is Bidirectional ? String(spec.name.split(separator: "/").last!) : spec.name
                XCTAssertTrue(path.hasSuffix("/" + name), "\(c.name): \(spec.name) vs Keras \(path)")
                if layer is Bidirectional {
                    let half = spec.name.hasPrefix("forward_layer") ? "/forward_" : "/backward_"
                    XCTAssertTrue(path.contains(half), "\(c.name): \(spec.name) vs Keras \(path)")
                }
            }
            try layer.setWeights(c.weights.map(\.tensor))
            if case .bool(let causal)? = c.call?["use_causal_mask"] {
                XCTAssertTrue(causal)
                // The causal mask matters: without it the layer computes something else.
                let plain = try MultiInputLayerRun(layer, inputs: c.inputs.map(\.tensor), projection: c.projection.values,
                                                   masks: c.inputMasks?.map { $0?.values })
                XCTAssertGreaterThan(zip(plain.output, c.output.values).map { abs($0 - $1) }.max()!, 1e-3, c.name)
                if let mha = layer as? MultiHeadAttention { mha.useCausalMask = causal }
                if let attention = layer as? ScoreAttention { attention.useCausalMask = causal }
            }
            if let masks = c.dropoutMasks {
                let recurrent = try XCTUnwrap(layer as? RecurrentLayer)
                XCTAssertGreaterThan(recurrent.recurrentDropout, 0)
                recurrent.replayedDropoutMasks = masks.values
                // The masks matter: without them the layer computes something else.
                let plain = try MultiInputLayerRun(layer, inputs: c.inputs.map(\.tensor), projection: c.projection.values,
                                                   training: false)
                XCTAssertGreaterThan(zip(plain.output, c.output.values).map { abs($0 - $1) }.max()!, 1e-3, c.name)
            }
            let run = try MultiInputLayerRun(layer, inputs: c.inputs.map(\.tensor), projection: c.projection.values,
                                             mask: c.mask?.values, masks: c.inputMasks?.map { $0?.values })
            assertMatchesKeras(run.output, c.output.values, rtol: 1e-4, "\(c.name) output")
            if let updated = c.updatedNonTrainable {
                let moving = zip(layer.weightSpecs, try layer.getWeights()).filter { !$0.0.trainable }.map(\.1)
                XCTAssertEqual(moving.count, updated.count, c.name)
                for (k, (m, e)) in zip(moving, updated).enumerated() {
                    assertMatchesKeras(m.scalars, e.values, rtol: 1e-4, "\(c.name) updated non-trainable weight \(k)")
                }
            }
            if let masking = layer as? Masking {
                // The mask Masking attaches: 0 where every feature of a step is the mask value.
                let x = c.inputs[0].values, features = c.inputs[0].shape.last!
                let expected = stride(from: 0, to: x.count, by: features).map { p in
                    x[p..<(p + features)].allSatisfy { $0 == masking.maskValue } ? Float(0) : 1
                }
                XCTAssertEqual(run.outputMask, expected, "\(c.name) mask")
                XCTAssertEqual(expected.filter { $0 == 0 }.count, 2, "\(c.name): two masked steps")
            }
            XCTAssertEqual(run.inputGradients.count, c.inputGradients.count)
            for (i, (g, e)) in zip(run.inputGradients, c.inputGradients).enumerated() {
                assertMatchesKeras(g, e.values, rtol: 1e-4, "\(c.name) gradient of input \(i)")
            }
            XCTAssertEqual(run.weightGradients.count, c.weightGradients.count, "\(c.name) trainable weights")
            for (i, (g, e)) in zip(run.weightGradients, c.weightGradients).enumerated() {
                // The key bias adds the same amount to every score of a query row, which the
                // softmax cancels: its gradient is zero, and both sides hold rounding noise.
                if c.weightPaths[i].hasSuffix("key/bias") {
                    XCTAssertLessThan(e.values.map(abs).max()!, 1e-6, "\(c.name): Keras's key bias gradient")
                    XCTAssertLessThan(g.map(abs).max()!, 1e-6, "\(c.name): key bias gradient")
                    continue
                }
                assertMatchesKeras(g, e.values, rtol: 1e-4, "\(c.name) gradient of weight \(i)")
            }
        }
    }
}
