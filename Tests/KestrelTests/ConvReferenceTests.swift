@testable import Kestrel
import XCTest

// Image and sequence layers against Keras 3 (JAX backend): output, input gradient and weight
// gradients of sum(output · projection), and, for training-mode BatchNormalization, the
// updated moving statistics. Fixtures: Fixtures/conv_layers.json, written by the
// `conv_layers` group of make_fixtures.py.
//
// Tolerance 1e-4 relative (the bar), with assertMatchesKeras's 1%-of-peak floor for
// elements that cancel to near zero.

/// A JSON scalar or list, for layer configurations of any shape.
enum FixtureValue: Decodable, Equatable {
    case number(Double), bool(Bool), string(String), list([FixtureValue]), object([String: FixtureValue]), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let o = try? c.decode([String: FixtureValue].self) { self = .object(o) }
        else { self = .list(try c.decode([FixtureValue].self)) }
    }

    var int: Int? { if case .number(let d) = self { return Int(d) }; return nil }
    var float: Float? { if case .number(let d) = self { return Float(d) }; return nil }
    var ints: [Int]? {
        if case .list(let l) = self { return l.compactMap(\.int) }
        return int.map { [$0] }
    }
    var size: SpatialSize? { ints.map { $0.count == 1 ? SpatialSize($0[0]) : SpatialSize($0) } }
}

struct ConvLayerFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let layer: String
        let config: [String: FixtureValue]
        let training: Bool
        let input: KerasFixtureTensor
        let weights: [KerasFixtureTensor]
        let output: KerasFixtureTensor
        let projection: KerasFixtureTensor
        let inputGradient: KerasFixtureTensor
        let weightGradients: [KerasFixtureTensor]
        let updatedNonTrainable: [KerasFixtureTensor]?
    }
    let cases: [Case]
}

/// Runs a built layer forward and backward once over owned buffers.
struct LayerRun {
    var output: [Float], inputGradient: [Float], weightGradients: [[Float]]

    init(_ layer: Layer, input: Tensor, projection: [Float], training: Bool) throws {
        let sample = Array(input.shape.dropFirst()), batch = input.shape[0]
        let outShape = try layer.build(inputShape: sample)
        let outCount = batch * outShape.reduce(1, *)
        let ws = layer.workspaceSize(batch: batch, inputShapes: [sample], training: training)
        var x = input.scalars, y = [Float](repeating: 0, count: outCount), dy = projection
        var dx = [Float](repeating: .nan, count: x.count), workspace = [Float](repeating: 0, count: max(ws, 1))
        // Gradients start as NaN: a layer must overwrite (not add to) them.
        for (spec, g) in zip(layer.weightSpecs, layer.gradientPointers()) { g.update(repeating: .nan, count: spec.count) }
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            dy.withUnsafeMutableBufferPointer { dyp in dx.withUnsafeMutableBufferPointer { dxp in
                workspace.withUnsafeMutableBufferPointer { wp in
                    let c = LayerContext(inputShapes: [sample], outputShape: outShape, inputs: [xp.baseAddress!],
                                         output: yp.baseAddress!, workspace: wp.baseAddress!,
                                         weights: layer.weightPointers(), weightGradients: layer.gradientPointers(),
                                         generator: RandomGenerator(seed: 1))
                    c.batch = batch
                    c.training = training
                    c.outputGradient = dyp.baseAddress!
                    c.inputGradients = [dxp.baseAddress!]
                    if layer.isIdentity(training: training) {
                        yp.baseAddress!.update(from: xp.baseAddress!, count: outCount)
                        dxp.baseAddress!.update(from: dyp.baseAddress!, count: outCount)
                    } else {
                        layer.forward(c)
                        layer.backward(c)
                    }
                }
            } }
        } }
        output = y
        inputGradient = dx
        weightGradients = zip(layer.weightSpecs, layer.gradientPointers()).filter { $0.0.trainable }.map {
            Array(UnsafeBufferPointer(start: $0.1, count: $0.0.count))
        }
    }
}

final class ConvReferenceTests: XCTestCase {
    /// The Kestrel layer for a fixture case, from Keras's class name and constructor arguments.
    static func makeLayer(_ c: ConvLayerFixture.Case) throws -> Layer {
        try makeLayer(c.layer, config: c.config, caseName: c.name)
    }

    /// The Kestrel layer for a Keras class name and constructor arguments.
    static func makeLayer(_ className: String, config k: [String: FixtureValue], caseName: String) throws -> Layer {
        let c = (layer: className, name: caseName)
        func size(_ key: String, _ fallback: SpatialSize) -> SpatialSize { k[key]?.size ?? fallback }
        func padding() throws -> Padding {
            guard case .string(let s)? = k["padding"] else { return .valid }
            guard let p = Padding(rawValue: s) else { throw KerasFixtureError("unknown padding \(s)") }
            return p
        }
        func activation() throws -> ActivationFunction {
            guard case .string(let s)? = k["activation"] else { return .linear }
            return try ActivationFunction(named: s)
        }
        func bool(_ key: String, _ fallback: Bool) -> Bool {
            if case .bool(let b)? = k[key] { return b }
            return fallback
        }
        let useBias = bool("use_bias", true)
        switch c.layer {
        case "Conv2D":
            return Conv2D(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                          padding: try padding(), dilationRate: size("dilation_rate", 1), groups: k["groups"]?.int ?? 1,
                          activation: try activation(), useBias: useBias)
        case "Conv1D":
            return Conv1D(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                          padding: try padding(), dilationRate: size("dilation_rate", 1), groups: k["groups"]?.int ?? 1,
                          activation: try activation(), useBias: useBias)
        case "Conv3D":
            return Conv3D(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                          padding: try padding(), dilationRate: size("dilation_rate", 1), groups: k["groups"]?.int ?? 1,
                          activation: try activation(), useBias: useBias)
        case "MaxPooling2D": return MaxPooling2D(poolSize: size("pool_size", 2), strides: k["strides"]?.size, padding: try padding())
        case "AveragePooling2D":
            return AveragePooling2D(poolSize: size("pool_size", 2), strides: k["strides"]?.size, padding: try padding())
        case "MaxPooling1D": return MaxPooling1D(poolSize: size("pool_size", 2), strides: k["strides"]?.size, padding: try padding())
        case "AveragePooling1D":
            return AveragePooling1D(poolSize: size("pool_size", 2), strides: k["strides"]?.size, padding: try padding())
        case "MaxPooling3D": return MaxPooling3D(poolSize: size("pool_size", 2), strides: k["strides"]?.size, padding: try padding())
        case "AveragePooling3D":
            return AveragePooling3D(poolSize: size("pool_size", 2), strides: k["strides"]?.size, padding: try padding())
        case "GlobalMaxPooling2D": return GlobalMaxPooling2D(keepDims: bool("keepdims", false))
        case "GlobalAveragePooling2D": return GlobalAveragePooling2D(keepDims: bool("keepdims", false))
        case "GlobalMaxPooling1D": return GlobalMaxPooling1D(keepDims: bool("keepdims", false))
        case "GlobalAveragePooling1D": return GlobalAveragePooling1D(keepDims: bool("keepdims", false))
        case "GlobalMaxPooling3D": return GlobalMaxPooling3D(keepDims: bool("keepdims", false))
        case "GlobalAveragePooling3D": return GlobalAveragePooling3D(keepDims: bool("keepdims", false))
        case "Conv2DTranspose":
            return Conv2DTranspose(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                                   padding: try padding(), outputPadding: k["output_padding"]?.size,
                                   dilationRate: size("dilation_rate", 1),
                                   activation: try activation(), useBias: useBias)
        case "Conv1DTranspose":
            return Conv1DTranspose(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                                   padding: try padding(), outputPadding: k["output_padding"]?.size,
                                   dilationRate: size("dilation_rate", 1), activation: try activation(), useBias: useBias)
        case "Conv3DTranspose":
            return Conv3DTranspose(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                                   padding: try padding(), outputPadding: k["output_padding"]?.size,
                                   dilationRate: size("dilation_rate", 1), activation: try activation(), useBias: useBias)
        case "DepthwiseConv2D":
            return DepthwiseConv2D(kernelSize: size("kernel_size", 1), strides: size("strides", 1), padding: try padding(),
                                   depthMultiplier: k["depth_multiplier"]?.int ?? 1, dilationRate: size("dilation_rate", 1),
                                   activation: try activation(), useBias: useBias)
        case "DepthwiseConv1D":
            return DepthwiseConv1D(kernelSize: size("kernel_size", 1), strides: size("strides", 1), padding: try padding(),
                                   depthMultiplier: k["depth_multiplier"]?.int ?? 1, dilationRate: size("dilation_rate", 1),
                                   activation: try activation(), useBias: useBias)
        case "SeparableConv1D":
            return SeparableConv1D(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                                   padding: try padding(), depthMultiplier: k["depth_multiplier"]?.int ?? 1,
                                   dilationRate: size("dilation_rate", 1), activation: try activation(), useBias: useBias)
        case "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D":
            func named(_ key: String, _ fallback: ActivationFunction) throws -> ActivationFunction {
                guard case .string(let s)? = k[key] else { return fallback }
                return try ActivationFunction(named: s)
            }
            let (filters, kernel, strides, pad) = (k["filters"]!.int!, size("kernel_size", 1), size("strides", 1), try padding())
            let (dilation, act, recurrent) = (size("dilation_rate", 1), try named("activation", .tanh),
                                              try named("recurrent_activation", .sigmoid))
            let (sequences, backwards) = (bool("return_sequences", false), bool("go_backwards", false))
            switch c.layer {
            case "ConvLSTM1D":
                return ConvLSTM1D(filters, kernelSize: kernel, strides: strides, padding: pad, dilationRate: dilation,
                                  activation: act, recurrentActivation: recurrent, useBias: useBias,
                                  returnSequences: sequences, goBackwards: backwards)
            case "ConvLSTM2D":
                return ConvLSTM2D(filters, kernelSize: kernel, strides: strides, padding: pad, dilationRate: dilation,
                                  activation: act, recurrentActivation: recurrent, useBias: useBias,
                                  returnSequences: sequences, goBackwards: backwards)
            default:
                return ConvLSTM3D(filters, kernelSize: kernel, strides: strides, padding: pad, dilationRate: dilation,
                                  activation: act, recurrentActivation: recurrent, useBias: useBias,
                                  returnSequences: sequences, goBackwards: backwards)
            }
        case "SeparableConv2D":
            return SeparableConv2D(k["filters"]!.int!, kernelSize: size("kernel_size", 1), strides: size("strides", 1),
                                   padding: try padding(), depthMultiplier: k["depth_multiplier"]?.int ?? 1,
                                   dilationRate: size("dilation_rate", 1), activation: try activation(), useBias: useBias)
        case "BatchNormalization":
            return BatchNormalization(momentum: k["momentum"]?.float ?? 0.99, epsilon: k["epsilon"]?.float ?? 1e-3,
                                      center: bool("center", true), scale: bool("scale", true))
        case "LayerNormalization":
            return LayerNormalization(epsilon: k["epsilon"]?.float ?? 1e-3, center: bool("center", true),
                                      scale: bool("scale", true))
        case "ZeroPadding2D":
            if case .list(let rows)? = k["padding"], rows.allSatisfy({ $0.ints?.count == 2 }), case .list = rows[0] {
                return ZeroPadding2D(padding: rows.map { $0.ints! })
            }
            return ZeroPadding2D(padding: size("padding", 1))
        case "Cropping2D":
            if case .list(let rows)? = k["cropping"], case .list = rows[0] {
                return Cropping2D(cropping: rows.map { $0.ints! })
            }
            return Cropping2D(cropping: size("cropping", 0))
        case "ZeroPadding3D":
            if case .list(let rows)? = k["padding"], rows.allSatisfy({ $0.ints?.count == 2 }), case .list = rows[0] {
                return ZeroPadding3D(padding: rows.map { $0.ints! })
            }
            return ZeroPadding3D(padding: size("padding", 1))
        case "Cropping3D":
            // Keras's Cropping3D crops 1 on every side by default (Cropping2D: 0).
            if case .list(let rows)? = k["cropping"], case .list = rows[0] {
                return Cropping3D(cropping: rows.map { $0.ints! })
            }
            return Cropping3D(cropping: size("cropping", 1))
        case "ZeroPadding1D":
            return k["padding"]?.ints.map { $0.count == 2 ? ZeroPadding1D(padding: $0) : ZeroPadding1D(padding: $0[0]) } ?? ZeroPadding1D()
        case "Cropping1D":
            return k["cropping"]?.ints.map { $0.count == 2 ? Cropping1D(cropping: $0) : Cropping1D(cropping: $0[0]) } ?? Cropping1D()
        case "UpSampling1D": return UpSampling1D(size: k["size"]?.int ?? 2)
        case "UpSampling2D":
            var interpolation = Interpolation.nearest
            if case .string(let name)? = k["interpolation"] {
                guard let known = Interpolation(rawValue: name) else { throw KerasFixtureError("unknown interpolation \(name)") }
                interpolation = known
            }
            return UpSampling2D(size: size("size", 2), interpolation: interpolation)
        case "UpSampling3D": return UpSampling3D(size: size("size", 2))
        case "Permute": return Permute(k["dims"]!.ints!)
        case "RepeatVector": return RepeatVector(k["n"]!.int!)
        case "RandomRotation", "RandomZoom", "RandomTranslation":
            func range(_ key: String) -> AugmentationRange? {
                guard let values = k[key], case .list(let l) = values else { return k[key]?.float.map { AugmentationRange($0) } }
                return AugmentationRange(l.compactMap(\.float)[0], l.compactMap(\.float)[1])
            }
            var fill = FillMode.reflect, interpolation = Interpolation.bilinear
            if case .string(let s)? = k["fill_mode"] { fill = try XCTUnwrap(FillMode(rawValue: s)) }
            if case .string(let s)? = k["interpolation"] { interpolation = try XCTUnwrap(Interpolation(rawValue: s)) }
            let value = k["fill_value"]?.float ?? 0
            switch c.layer {
            case "RandomRotation":
                return RandomRotation(range("factor")!, fillMode: fill, interpolation: interpolation, fillValue: value)
            case "RandomZoom":
                return RandomZoom(heightFactor: range("height_factor")!, widthFactor: range("width_factor"), fillMode: fill,
                                  interpolation: interpolation, fillValue: value)
            default:
                return RandomTranslation(heightFactor: range("height_factor")!, widthFactor: range("width_factor")!,
                                         fillMode: fill, interpolation: interpolation, fillValue: value)
            }
        case "RandomContrast", "RandomBrightness":
            // The fixtures give the factor as a pair (Keras's own reading of one number differs
            // for contrast) and the value range when it is not Keras's 0…255.
            guard case .list(let factor)? = k["factor"] else { throw KerasFixtureError("\(c.name): factor must be a pair") }
            let ends = factor.compactMap(\.float)
            var valueRange: ClosedRange<Float> = 0...255
            if case .list(let l)? = k["value_range"] { valueRange = l[0].float!...l[1].float! }
            return c.layer == "RandomContrast"
                ? RandomContrast(AugmentationRange(ends[0], ends[1]), valueRange: valueRange)
                : RandomBrightness(AugmentationRange(ends[0], ends[1]), valueRange: valueRange)
        case "Rescaling": return Rescaling(k["scale"]!.float!, offset: k["offset"]?.float ?? 0)
        case "CenterCrop":
            return CenterCrop(k["height"]!.int!, k["width"]!.int!)
        case "Resizing":
            var interpolation = Interpolation.bilinear
            if case .string(let s)? = k["interpolation"] { interpolation = try XCTUnwrap(Interpolation(rawValue: s)) }
            return Resizing(k["height"]!.int!, k["width"]!.int!, interpolation: interpolation,
                            cropToAspectRatio: bool("crop_to_aspect_ratio", false))
        case "Normalization":
            // Keras's axis: an int, a list, or null for none; absent for the last axis.
            let axis: [Int] = k["axis"] == .null ? [] : k["axis"]?.ints ?? [-1]
            func values(_ key: String) -> [Float]? {
                guard case .list(let l)? = k[key] else { return nil }
                return l.compactMap(\.float)
            }
            return Normalization(axis: axis, mean: values("mean"), variance: values("variance"), invert: bool("invert", false))
        case "ELU": return ELU(alpha: k["alpha"]?.float ?? 1)
        case "PReLU": return PReLU(sharedAxes: k["shared_axes"]?.ints)
        case "GaussianNoise": return GaussianNoise(k["stddev"]!.float!)
        case "GaussianDropout": return GaussianDropout(k["rate"]!.float!)
        case "AlphaDropout": return AlphaDropout(k["rate"]!.float!)
        case "SpatialDropout1D": return SpatialDropout1D(k["rate"]!.float!)
        case "SpatialDropout2D": return SpatialDropout2D(k["rate"]!.float!)
        case "SpatialDropout3D": return SpatialDropout3D(k["rate"]!.float!)
        case "Identity": return Identity()
        case "RandomInvert":
            guard case .list(let factor)? = k["factor"], case .list(let range)? = k["value_range"] else {
                throw KerasFixtureError("\(c.name): RandomInvert needs a factor pair and a value range")
            }
            return RandomInvert(factor: AugmentationRange(factor[0].float!, factor[1].float!),
                                valueRange: range[0].float!...range[1].float!)
        case "RandomGrayscale": return RandomGrayscale(factor: k["factor"]!.float!)
        case "Dense": return Dense(k["units"]!.int!, activation: try activation(), useBias: useBias)
        case "TimeDistributed":
            guard case .object(let inner)? = k["layer"], case .string(let innerClass)? = inner["class_name"],
                  case .object(let innerConfig)? = inner["config"] else {
                throw KerasFixtureError("\(c.name): TimeDistributed needs a layer")
            }
            return TimeDistributed(try makeLayer(innerClass, config: innerConfig, caseName: c.name))
        case "GroupNormalization":
            return GroupNormalization(groups: k["groups"]?.int ?? 32, epsilon: k["epsilon"]?.float ?? 1e-3,
                                      center: bool("center", true), scale: bool("scale", true))
        case "UnitNormalization":
            let axes = k["axis"]?.ints ?? [-1]
            return axes.count == 1 ? UnitNormalization(axis: axes[0]) : UnitNormalization(axes: axes)
        default:
            throw KerasFixtureError("no Kestrel layer for Keras \(c.layer) (case \(c.name))")
        }
    }

    func testLayersMatchKeras() throws {
        let fixture = try KerasFixtures.load("conv_layers", as: ConvLayerFixture.self)
        XCTAssertGreaterThanOrEqual(fixture.cases.count, 134)
        for c in fixture.cases {
            let layer: Layer
            do { layer = try Self.makeLayer(c) } catch { XCTFail("\(c.name): \(error)"); continue }
            let run = try LayerRun(layer, input: c.input.tensor, projection: c.projection.values, training: c.training)
            // setWeights needs the built layer; rerun with Keras's weights.
            try layer.setWeights(c.weights.map(\.tensor))
            let result = try LayerRun(layer, input: c.input.tensor, projection: c.projection.values, training: c.training)
            _ = run
            XCTAssertEqual(layer.weightSpecs.map(\.shape), c.weights.map(\.shape), "\(c.name) weight shapes")
            assertMatchesKeras(result.output, c.output.values, rtol: 1e-4, "\(c.name) output")
            assertMatchesKeras(result.inputGradient, c.inputGradient.values, rtol: 1e-4, "\(c.name) input gradient")
            XCTAssertEqual(result.weightGradients.count, c.weightGradients.count, "\(c.name) trainable weights")
            for (i, (g, e)) in zip(result.weightGradients, c.weightGradients).enumerated() {
                assertMatchesKeras(g, e.values, rtol: 1e-4, "\(c.name) gradient of weight \(i)")
            }
            if let updated = c.updatedNonTrainable {
                let nonTrainable = zip(layer.weightSpecs, layer.getWeights()).filter { !$0.0.trainable }.map(\.1)
                XCTAssertEqual(nonTrainable.count, updated.count, "\(c.name) non-trainable weights")
                for (i, (w, e)) in zip(nonTrainable, updated).enumerated() {
                    assertMatchesKeras(w.scalars, e.values, rtol: 1e-4, "\(c.name) updated non-trainable weight \(i)")
                }
            }
        }
    }
}
