import Foundation
import Kestrel

extension ONNXGraphBuilder {
    /// Translates one layer call into ONNX nodes; returns the name of its output value.
    /// Values stay in Kestrel's channels-last layout between layers.
    mutating func translate(_ layer: Layer, inputs: [String], inputShapes: [[Int]], outputShape: [Int]) throws -> String {
        let base = layer.name
        func unsupported(_ why: String = "") -> KestrelError {
            KestrelError.invalidArgument(
                "exportONNX: layer '\(layer.name)' (\(layer.className)) has no ONNX translation yet\(why.isEmpty ? "" : ": \(why)")")
        }
        switch layer {
        case let l as Dense:
            let w = l.getWeights()
            let kernel = constant("\(base)/kernel", shape: w[0].shape, scalars: w[0].scalars)
            var y: String
            if inputShapes[0].count == 1 {
                // Gemm with Keras's (in, units) kernel as it is: transB = 0.
                var args = [inputs[0], kernel]
                if l.useBias { args.append(constant("\(base)/bias", shape: w[1].shape, scalars: w[1].scalars)) }
                y = op("Gemm", args, base: base)
            } else {
                y = op("MatMul", [inputs[0], kernel], base: base)
                if l.useBias { y = op("Add", [y, constant("\(base)/bias", shape: w[1].shape, scalars: w[1].scalars)], base: base) }
            }
            return try activation(l.activation, y, base: base, layer: l)
        case let l as Activation:
            return try activation(l.function, inputs[0], base: base, layer: l)
        case let l as ReLU:
            return relu(l, inputs[0], base: base)
        case let l as LeakyReLU:
            return op("LeakyRelu", [inputs[0]], base: base, [Attribute.float("alpha", l.negativeSlope)])
        case let l as Softmax:
            return op("Softmax", [inputs[0]], base: base, [Attribute.int("axis", l.axis)])
        case let l as ELU:
            return op("Elu", [inputs[0]], base: base, [Attribute.float("alpha", l.alpha)])
        case let l as PReLU:
            // The slopes broadcast against (batch, sample…) from the right, as PRelu allows.
            let alpha = l.getWeights()[0]
            return op("PRelu", [inputs[0], constant("\(base)/alpha", shape: alpha.shape, scalars: alpha.scalars)], base: base)
        case let l as UnitNormalization:
            // x / max(‖x‖, 1e-12), Keras's floor on the norm itself.
            let axes = try l.sampleAxes(inputShapes[0]).map { $0 + 1 }
            let squares = op("ReduceSumSquare", [inputs[0]], base: base, [Attribute.ints("axes", axes), Attribute.int("keepdims", 1)])
            let floor = constant("\(base)/floor", shape: [], scalars: [1e-12])
            return op("Div", [inputs[0], op("Max", [op("Sqrt", [squares], base: base), floor], base: base)], base: base)
        case let l as GroupNormalization:
            return groupNormalization(l, inputs[0], inputShape: inputShapes[0], base: base)
        case is Dropout, is SpatialDropout, is InputLayer, is AffineAugmentation, is RandomFlip, is ColorAugmentation,
             is GaussianNoise, is GaussianDropout, is AlphaDropout, is Identity, is ActivityRegularization, is RandomImageChoice:
            // Training-only layers: the identity in inference.
            return inputs[0]
        case let l as RecurrentLayer:
            return try recurrent(l, weights: l.getWeights(), inputs[0], initialState: Array(inputs.dropFirst()),
                                 inputShape: inputShapes[0], base: base)
        case let l as BaseConvLSTM:
            return try convLSTM(l, inputs[0], initialState: Array(inputs.dropFirst()), inputShape: inputShapes[0],
                                outputShape: outputShape, base: base)
        case let l as Bidirectional:
            // Each half on its own (the backward one reads a reversed sequence and returns its
            // states in reading order), the backward states put back in time order, merged.
            // Initial states: the forward half's, then the backward half's; so are returned ones.
            let weights = l.getWeights(), n = l.forwardWeightCount
            let states = Array(inputs.dropFirst()), split = states.isEmpty ? 0 : l.forwardLayer.stateCount
            let forward = try recurrent(l.forwardLayer, weights: Array(weights[..<n]), inputs[0],
                                        initialState: Array(states.prefix(split)), inputShape: inputShapes[0], base: base + "/forward")
            var backward = try recurrent(l.backwardLayer, weights: Array(weights[n...]), inputs[0],
                                         initialState: Array(states.dropFirst(split)), inputShape: inputShapes[0],
                                         base: base + "/backward")
            let returned = (additionalOutputs[forward] ?? []) + (additionalOutputs[backward] ?? [])
            if l.forwardLayer.returnSequences { backward = reversedSequence(backward, base: base) }
            let merged: String
            switch l.mergeMode {
            case .concat: merged = op("Concat", [forward, backward], base: base, [Attribute.int("axis", -1)])
            case .sum: merged = op("Add", [forward, backward], base: base)
            case .mul: merged = op("Mul", [forward, backward], base: base)
            case .ave:
                let half = constant("\(base)/half", shape: [], scalars: [0.5])
                merged = op("Mul", [op("Add", [forward, backward], base: base), half], base: base)
            }
            if !returned.isEmpty { additionalOutputs[merged] = returned }
            return merged
        case let l as Embedding where l.maskZero:
            // ONNX values carry no mask, so the layers that skip masked steps could not.
            throw unsupported("maskZero makes a mask, which ONNX values cannot carry")
        case is Masking:
            throw unsupported("it makes a mask, which ONNX values cannot carry")
        case let l as Embedding:
            return embedding(l, inputs[0], base: base)
        case let l as MultiHeadAttention:
            return attention(l, inputs, inputShapes: inputShapes, base: base)
        case let l as TimeDistributed:
            // The steps folded into the batch, the wrapped layer on each, unfolded again.
            let step = Array(inputShapes[0].dropFirst()), stepOut = Array(outputShape.dropFirst())
            let folded = op("Reshape", [inputs[0], int64Constant("\(base)/fold", [-1] + step.map(Int64.init))], base: base)
            let y = try translate(l.layer, inputs: [folded], inputShapes: [step], outputShape: stepOut)
            return op("Reshape", [y, int64Constant("\(base)/unfold", [-1] + outputShape.map(Int64.init))], base: base)
        case let l as ScoreAttention:
            return scoreAttention(l, inputs, inputShapes: inputShapes, base: base)
        case let l as Rescaling:
            let scaled = op("Mul", [inputs[0], constant("\(base)/scale", shape: [], scalars: [l.scale])], base: base)
            return op("Add", [scaled, constant("\(base)/offset", shape: [], scalars: [l.offset])], base: base)
        case let l as CategoryEncoding:
            // A float → int64 Cast truncates toward zero, as Kestrel's categories do.
            let index = op("Cast", [inputs[0]], base: base, [Attribute.int("to", Int(Onnx_TensorProto.DataType.int64.rawValue))])
            return categorical(index, mode: l.outputMode, depth: l.numTokens, inputShape: inputShapes[0],
                               countWeights: inputs.count > 1 ? inputs[1] : nil, base: base)
        case let l as Discretization:
            // The bucket is the number of boundaries at or below the value.
            guard let boundaries = l.binBoundaries else { throw unsupported("the layer has no bin boundaries") }
            let expanded = op("Unsqueeze", [inputs[0], int64Constant("\(base)/last", [-1])], base: base)
            let reached = op("GreaterOrEqual", [expanded, constant("\(base)/boundaries", shape: [boundaries.count], scalars: boundaries)],
                             base: base)
            let index = op("ReduceSum", [op("Cast", [reached], base: base, [Attribute.int("to", Int(Onnx_TensorProto.DataType.int64.rawValue))]),
                                         int64Constant("\(base)/axis", [-1])], base: base, [Attribute.int("keepdims", 0)])
            return categorical(index, mode: l.outputMode, depth: boundaries.count + 1, inputShape: inputShapes[0],
                               countWeights: nil, base: base)
        case is Hashing, is HashedCrossing:
            throw unsupported("ONNX has no FarmHash or SipHash operator; hash the values before the exported model")
        case let l as Normalization:
            // The statistics as constants broadcasting over the axes that share them.
            let (means, deviations) = try l.statistics()
            let shape = [1] + inputShapes[0].enumerated().map { l.keptAxes.contains($0.offset) ? $0.element : 1 }
            let mean = constant("\(base)/mean", shape: shape, scalars: means)
            let deviation = constant("\(base)/deviation", shape: shape, scalars: deviations)
            if l.invert {
                return op("Add", [op("Mul", [inputs[0], deviation], base: base), mean], base: base)
            }
            return op("Div", [op("Sub", [inputs[0], mean], base: base), deviation], base: base)
        case is Flatten:
            // Values are channels-last here, so ONNX's row-major Flatten matches Keras's order.
            return op("Flatten", [inputs[0]], base: base, [Attribute.int("axis", 1)])
        case is Reshape:
            let shape = int64Constant("\(base)/shape", [-1] + outputShape.map(Int64.init))
            return op("Reshape", [inputs[0], shape], base: base)
        case is Add: return op("Sum", inputs, base: base)
        case is Average: return op("Mean", inputs, base: base)
        case is Maximum: return op("Max", inputs, base: base)
        case is Minimum: return op("Min", inputs, base: base)
        case is Subtract:
            guard inputs.count == 2 else { throw unsupported("Subtract takes exactly 2 inputs") }
            return op("Sub", inputs, base: base)
        case is Multiply:
            var y = inputs[0]
            for x in inputs.dropFirst() { y = op("Mul", [y, x], base: base) }
            return y
        case let l as Concatenate:
            return op("Concat", inputs, base: base, [Attribute.int("axis", l.axis)])
        case let l as Dot:
            return dot(l, inputs, inputShapes: inputShapes, base: base)
        case let l as BaseConvTranspose:
            return try transposedConvolution(l, inputs[0], inputShape: inputShapes[0], outputShape: outputShape, base: base)
        case let l as BaseConv:
            return try convolution(l, inputs[0], inputShape: inputShapes[0], base: base)
        case let l as BasePooling:
            let rank = l.rank
            let spatial = Array(inputShapes[0].prefix(rank))
            var attributes = [Attribute.ints("kernel_shape", l.poolSize), Attribute.ints("strides", l.strides),
                              Attribute.ints("pads", Self.pads(spatial, kernel: l.poolSize, strides: l.strides,
                                                               dilation: Array(repeating: 1, count: rank), padding: l.padding))]
            let isMax = l is MaxPooling1D || l is MaxPooling2D || l is MaxPooling3D
            // Keras averages over the window's valid elements only.
            if !isMax { attributes.append(Attribute.int("count_include_pad", 0)) }
            let x = op("Transpose", [inputs[0]], base: base, [Attribute.ints("perm", Self.toChannelsFirst(rank))])
            let y = op(isMax ? "MaxPool" : "AveragePool", [x], base: base, attributes)
            return op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(rank))])
        case let l as BaseGlobalPooling:
            let isMax = l is GlobalMaxPooling1D || l is GlobalMaxPooling2D || l is GlobalMaxPooling3D
            // Opset 17's ReduceMean/ReduceMax take the axes as an attribute.
            return op(isMax ? "ReduceMax" : "ReduceMean", [inputs[0]], base: base,
                      [Attribute.ints("axes", Array(1...l.rank)), Attribute.int("keepdims", l.keepDims ? 1 : 0)])
        case let l as BatchNormalization:
            guard l.axis == -1 || l.axis == inputShapes[0].count else { throw unsupported("only the last axis is exported") }
            // Inference form folded into one scale and shift along the channel (last) axis.
            let w = Dictionary(uniqueKeysWithValues: zip(l.weightSpecs.map(\.name), l.getWeights()))
            let mean = w["moving_mean"]!.scalars, variance = w["moving_variance"]!.scalars
            let gamma = w["gamma"]?.scalars ?? Array(repeating: 1, count: mean.count)
            let beta = w["beta"]?.scalars ?? Array(repeating: 0, count: mean.count)
            let scale = (0..<mean.count).map { gamma[$0] / (variance[$0] + l.epsilon).squareRoot() }
            let shift = (0..<mean.count).map { beta[$0] - mean[$0] * scale[$0] }
            let y = op("Mul", [inputs[0], constant("\(base)/scale", shape: [scale.count], scalars: scale)], base: base)
            return op("Add", [y, constant("\(base)/shift", shape: [shift.count], scalars: shift)], base: base)
        case let l as LayerNormalization:
            guard l.axis == -1 || l.axis == inputShapes[0].count else { throw unsupported("only the last axis is exported") }
            let w = Dictionary(uniqueKeysWithValues: zip(l.weightSpecs.map(\.name), l.getWeights()))
            let c = inputShapes[0].last!
            let gamma = w["gamma"]?.scalars ?? Array(repeating: 1, count: c)
            let beta = w["beta"]?.scalars ?? Array(repeating: 0, count: c)
            return op("LayerNormalization", [inputs[0], constant("\(base)/gamma", shape: [c], scalars: gamma),
                                             constant("\(base)/beta", shape: [c], scalars: beta)], base: base,
                      [Attribute.int("axis", -1), Attribute.float("epsilon", l.epsilon)])
        case let l as BaseDepthwiseConv:
            let w = Dictionary(uniqueKeysWithValues: zip(l.weightSpecs.map(\.name), l.getWeights()))
            let y = depthwise(kernel: w["depthwise_kernel"]!, bias: w["bias"], x: op("Transpose", [inputs[0]], base: base,
                              [Attribute.ints("perm", Self.toChannelsFirst(l.rank))]), spatial: Array(inputShapes[0].prefix(l.rank)),
                              strides: l.strides, dilation: l.dilationRate, padding: l.padding, base: base)
            return try activation(l.activation, op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(l.rank))]),
                                  base: base, layer: l)
        case let l as BaseSeparableConv:
            let w = Dictionary(uniqueKeysWithValues: zip(l.weightSpecs.map(\.name), l.getWeights()))
            let d = depthwise(kernel: w["depthwise_kernel"]!, bias: nil, x: op("Transpose", [inputs[0]], base: base,
                              [Attribute.ints("perm", Self.toChannelsFirst(l.rank))]), spatial: Array(inputShapes[0].prefix(l.rank)),
                              strides: l.strides, dilation: l.dilationRate, padding: l.padding, base: base)
            // The pointwise kernel (1…, in, out) as ONNX's (out, in, 1…).
            let pointwise = w["pointwise_kernel"]!
            let (cin, cout) = (pointwise.shape[l.rank], pointwise.shape[l.rank + 1])
            var transposed = [Float](repeating: 0, count: cin * cout)
            for i in 0..<cin { for o in 0..<cout { transposed[o * cin + i] = pointwise.scalars[i * cout + o] } }
            let ones = Array(repeating: 1, count: l.rank)
            var args = [d, constant("\(base)/pointwise", shape: [cout, cin] + ones, scalars: transposed)]
            if let b = w["bias"] { args.append(constant("\(base)/bias", shape: [cout], scalars: b.scalars)) }
            let y = op("Conv", args, base: base, [Attribute.ints("kernel_shape", ones)])
            return try activation(l.activation, op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(l.rank))]),
                                  base: base, layer: l)
        case let l as Permute:
            return op("Transpose", [inputs[0]], base: base, [Attribute.ints("perm", [0] + l.dims)])
        case let l as RepeatVector:
            let expanded = op("Unsqueeze", [inputs[0], int64Constant("\(base)/axes", [1])], base: base)
            return op("Tile", [expanded, int64Constant("\(base)/repeats", [1, Int64(l.n), 1])], base: base)
        case let l as ZeroPadding2D:
            let a = l.amounts
            let pads = int64Constant("\(base)/pads", [0, a[0][0], a[1][0], 0, 0, a[0][1], a[1][1], 0].map(Int64.init))
            return op("Pad", [inputs[0], pads], base: base)
        case let l as Cropping2D:
            let a = l.amounts, s = inputShapes[0]
            return op("Slice", [inputs[0], int64Constant("\(base)/starts", [Int64(a[0][0]), Int64(a[1][0])]),
                                int64Constant("\(base)/ends", [Int64(s[0] - a[0][1]), Int64(s[1] - a[1][1])]),
                                int64Constant("\(base)/axes", [1, 2])], base: base)
        case let l as ZeroPadding3D:
            let a = l.amounts
            let pads = int64Constant("\(base)/pads", ([0] + a.map { $0[0] } + [0, 0] + a.map { $0[1] } + [0]).map(Int64.init))
            return op("Pad", [inputs[0], pads], base: base)
        case let l as Cropping3D:
            let a = l.amounts, s = inputShapes[0]
            return op("Slice", [inputs[0], int64Constant("\(base)/starts", a.map { Int64($0[0]) }),
                                int64Constant("\(base)/ends", (0..<3).map { Int64(s[$0] - a[$0][1]) }),
                                int64Constant("\(base)/axes", [1, 2, 3])], base: base)
        case let l as UpSampling3D:
            // Voxel (i, j, k) reads voxel (floor(i / size₀), …), as UpSampling2D's nearest mode.
            let scales = constant("\(base)/scales", shape: [5], scalars: [1] + l.size.map(Float.init) + [1])
            return op("Resize", [inputs[0], "", scales], base: base,
                      [Attribute.string("mode", "nearest"), Attribute.string("coordinate_transformation_mode", "asymmetric"),
                       Attribute.string("nearest_mode", "floor")])
        case let l as ZeroPadding1D:
            let a = l.amounts[0]
            return op("Pad", [inputs[0], int64Constant("\(base)/pads", [0, a[0], 0, 0, a[1], 0].map(Int64.init))], base: base)
        case let l as Cropping1D:
            let a = l.amounts[0], steps = inputShapes[0][0]
            return op("Slice", [inputs[0], int64Constant("\(base)/starts", [Int64(a[0])]),
                                int64Constant("\(base)/ends", [Int64(steps - a[1])]), int64Constant("\(base)/axes", [1])], base: base)
        case let l as UpSampling1D:
            // Step i reads step floor(i / size), along axis 1 of (batch, steps, channels).
            let scales = constant("\(base)/scales", shape: [3], scalars: [1, Float(l.size), 1])
            return op("Resize", [inputs[0], "", scales], base: base,
                      [Attribute.string("mode", "nearest"), Attribute.string("coordinate_transformation_mode", "asymmetric"),
                       Attribute.string("nearest_mode", "floor")])
        case let l as Resizing:
            return resize(inputs[0], crop: l.cropToAspectRatio ? l.cropBox(forInputShape: inputShapes[0]) : nil,
                          height: l.height, width: l.width, interpolation: l.interpolation, base: base)
        case let l as CenterCrop:
            // Its window, resampled at scale 1 (a copy) or resized when the image is smaller.
            return resize(inputs[0], crop: l.window(forInputShape: inputShapes[0]), height: l.height, width: l.width,
                          interpolation: .bilinear, base: base)
        case let l as RandomCrop:
            // Its inference: the centred window with the target's aspect ratio, resized.
            return resize(inputs[0], crop: l.resizeBox(forInputShape: inputShapes[0]), height: l.height, width: l.width,
                          interpolation: .bilinear, base: base)
        case let l as UpSampling2D:
            // Nearest: with "asymmetric" coordinates and "floor" rounding, output pixel i reads
            // input pixel floor(i / size), as Keras's repeat does. Bilinear: "half_pixel"
            // coordinates, which clamp at the border as Kestrel and Keras do.
            let x = op("Transpose", [inputs[0]], base: base, [Attribute.ints("perm", Self.toChannelsFirst(2))])
            let scales = constant("\(base)/scales", shape: [4], scalars: [1, 1, Float(l.size[0]), Float(l.size[1])])
            let attributes = l.interpolation == .nearest
                ? [Attribute.string("mode", "nearest"), Attribute.string("coordinate_transformation_mode", "asymmetric"),
                   Attribute.string("nearest_mode", "floor")]
                : [Attribute.string("mode", "linear"), Attribute.string("coordinate_transformation_mode", "half_pixel")]
            let y = op("Resize", [x, "", scales], base: base, attributes)
            return op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(2))])
        default:
            throw unsupported()
        }
    }

    /// ONNX permutations between channels-last `(N, spatial…, C)` and channels-first `(N, C, spatial…)`.
    static func toChannelsFirst(_ rank: Int) -> [Int] { [0, rank + 1] + Array(1...rank) }
    static func toChannelsLast(_ rank: Int) -> [Int] { [0] + Array(2...(rank + 1)) + [1] }

    /// ONNX `pads` (all befores, then all afters) reproducing Keras's padding for known sizes.
    static func pads(_ spatial: [Int], kernel: [Int], strides: [Int], dilation: [Int], padding: Padding) -> [Int] {
        var before: [Int] = [], after: [Int] = []
        for a in spatial.indices {
            let span = (kernel[a] - 1) * dilation[a] + 1
            switch padding {
            case .valid:
                before.append(0); after.append(0)
            case .same:
                let out = (spatial[a] + strides[a] - 1) / strides[a]
                let total = max((out - 1) * strides[a] + span - spatial[a], 0)
                before.append(total / 2); after.append(total - total / 2)
            case .causal:
                before.append(span - 1); after.append(0)
            }
        }
        return before + after
    }

    /// A depthwise convolution on a channels-first value: a grouped Conv with one group per
    /// input channel, Keras's `(k…, channels, multiplier)` kernel as `(channels·multiplier, 1, k…)`.
    mutating func depthwise(kernel: Tensor, bias: Tensor?, x: String, spatial: [Int], strides: [Int], dilation: [Int],
                            padding: Padding, base: String) -> String {
        let rank = kernel.shape.count - 2
        let window = Array(kernel.shape.prefix(rank)), taps = window.reduce(1, *)
        let (channels, multiplier) = (kernel.shape[rank], kernel.shape[rank + 1])
        var permuted = [Float](repeating: 0, count: kernel.count)
        for t in 0..<taps {
            for c in 0..<channels {
                for m in 0..<multiplier {
                    permuted[(c * multiplier + m) * taps + t] = kernel.scalars[(t * channels + c) * multiplier + m]
                }
            }
        }
        var args = [x, constant("\(base)/depthwise", shape: [channels * multiplier, 1] + window, scalars: permuted)]
        if let bias { args.append(constant("\(base)/bias", shape: [bias.count], scalars: bias.scalars)) }
        return op("Conv", args, base: base, [
            Attribute.ints("kernel_shape", window), Attribute.ints("strides", strides), Attribute.ints("dilations", dilation),
            Attribute.int("group", channels),
            Attribute.ints("pads", Self.pads(spatial, kernel: window, strides: strides, dilation: dilation, padding: padding)),
        ])
    }

    /// A convolution between transposes to and from ONNX's channels-first layout, with the
    /// kernel permuted from Keras's `(k…, in/groups, out)` to ONNX's `(out, in/groups, k…)`.
    mutating func convolution(_ l: BaseConv, _ x: String, inputShape: [Int], base: String) throws -> String {
        let rank = l.rank
        let w = l.getWeights()
        let weights = convolutionKernel(w[0], rank: rank, name: "\(base)/kernel")
        var args = [op("Transpose", [x], base: base, [Attribute.ints("perm", Self.toChannelsFirst(rank))]), weights]
        if l.useBias { args.append(constant("\(base)/bias", shape: [w[1].count], scalars: w[1].scalars)) }
        let spatial = Array(inputShape.prefix(rank))
        let y = op("Conv", args, base: base, [
            Attribute.ints("kernel_shape", l.kernelSize), Attribute.ints("strides", l.strides),
            Attribute.ints("dilations", l.dilationRate), Attribute.int("group", l.groups),
            Attribute.ints("pads", Self.pads(spatial, kernel: l.kernelSize, strides: l.strides, dilation: l.dilationRate, padding: l.padding)),
        ])
        let back = op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(rank))])
        return try activation(l.activation, back, base: base, layer: l)
    }

    /// Keras's convolution kernel `(k…, in/groups, out)` as ONNX's `(out, in/groups, k…)` constant.
    mutating func convolutionKernel(_ kernel: Tensor, rank: Int, name: String) -> String {
        let spatial = Array(kernel.shape.prefix(rank)), window = spatial.reduce(1, *)
        let inPerGroup = kernel.shape[rank], out = kernel.shape[rank + 1]
        var permuted = [Float](repeating: 0, count: kernel.count)
        for position in 0..<window {
            for i in 0..<inPerGroup {
                for o in 0..<out {
                    permuted[(o * inPerGroup + i) * window + position] = kernel.scalars[(position * inPerGroup + i) * out + o]
                }
            }
        }
        return constant(name, shape: [out, inPerGroup] + spatial, scalars: permuted)
    }

    /// A ConvLSTM unrolled over its (fixed) steps, channels-first in between: each step's input
    /// convolution (with the bias), the recurrent convolution of the previous state ("same",
    /// unit strides; none at step 0 without initial states, whose state is zero), the four gate
    /// blocks sliced off the channels, activated and combined as Keras's cell does. Returned
    /// sequences are in reading order, as in Keras; with `returnState` the final hidden and
    /// cell states are recorded in `additionalOutputs`.
    mutating func convLSTM(_ l: BaseConvLSTM, _ x: String, initialState: [String], inputShape: [Int], outputShape: [Int],
                           base: String) throws -> String {
        let rank = l.rank, steps = inputShape[0], f = l.filters, w = l.getWeights()
        let spatial = Array(inputShape.dropFirst().prefix(rank))
        var inputArguments = [convolutionKernel(w[0], rank: rank, name: "\(base)/kernel")]
        if l.useBias { inputArguments.append(constant("\(base)/bias", shape: [4 * f], scalars: w[2].scalars)) }
        let recurrentKernel = convolutionKernel(w[1], rank: rank, name: "\(base)/recurrent_kernel")
        let inputAttributes = [
            Attribute.ints("kernel_shape", l.kernelSize), Attribute.ints("strides", l.strides),
            Attribute.ints("dilations", l.dilationRate),
            Attribute.ints("pads", Self.pads(spatial, kernel: l.kernelSize, strides: l.strides, dilation: l.dilationRate,
                                             padding: l.padding)),
        ]
        // The state's spatial size: the layer's output without its steps and channels.
        let outputSpatial = Array(outputShape.suffix(rank + 1).prefix(rank))
        let ones = Array(repeating: 1, count: rank)
        let recurrentAttributes = [
            Attribute.ints("kernel_shape", l.kernelSize), Attribute.ints("strides", ones), Attribute.ints("dilations", ones),
            Attribute.ints("pads", Self.pads(outputSpatial, kernel: l.kernelSize, strides: ones, dilation: ones, padding: .same)),
        ]
        // (N, steps, spatial…, C) → (N, steps, C, spatial…): each step a channels-first image.
        let sequence = op("Transpose", [x], base: base, [Attribute.ints("perm", [0, 1, rank + 2] + Array(2...(rank + 1)))])
        func channelsFirst(_ state: String) -> String {
            op("Transpose", [state], base: base, [Attribute.ints("perm", Self.toChannelsFirst(rank))])
        }
        func channelsLast(_ state: String) -> String {
            op("Transpose", [state], base: base, [Attribute.ints("perm", Self.toChannelsLast(rank))])
        }
        var hidden = initialState.count == 2 ? channelsFirst(initialState[0]) : nil
        var cell = initialState.count == 2 ? channelsFirst(initialState[1]) : nil
        let axis = int64Constant("\(base)/gate_axis", [1])
        func gate(_ z: String, _ k: Int) -> String {
            op("Slice", [z, int64Constant("\(base)/gate_start_\(k)", [Int64(k * f)]),
                         int64Constant("\(base)/gate_end_\(k)", [Int64((k + 1) * f)]), axis], base: base)
        }
        var outputs: [String] = []
        for s in 0..<steps {
            let time = l.goBackwards ? steps - 1 - s : s
            let frame = op("Gather", [sequence, int64Constant("\(base)/step_\(s)", [Int64(time)], shape: [])], base: base,
                           [Attribute.int("axis", 1)])
            var z = op("Conv", [frame] + inputArguments, base: base, inputAttributes)
            if let h = hidden {
                z = op("Add", [z, op("Conv", [h, recurrentKernel], base: base, recurrentAttributes)], base: base)
            }
            let i = try activation(l.recurrentActivation, gate(z, 0), base: base, layer: l)
            let candidate = try activation(l.activation, gate(z, 2), base: base, layer: l)
            let o = try activation(l.recurrentActivation, gate(z, 3), base: base, layer: l)
            var next = op("Mul", [i, candidate], base: base)
            if let c = cell {
                let forget = try activation(l.recurrentActivation, gate(z, 1), base: base, layer: l)
                next = op("Add", [op("Mul", [forget, c], base: base), next], base: base)
            }
            cell = next
            let h = op("Mul", [o, try activation(l.activation, next, base: base, layer: l)], base: base)
            hidden = h
            if l.returnSequences { outputs.append(op("Unsqueeze", [channelsLast(h), axis], base: base)) }
        }
        let result = l.returnSequences ? op("Concat", outputs, base: base, [Attribute.int("axis", 1)]) : channelsLast(hidden!)
        if l.returnState { additionalOutputs[result] = [channelsLast(hidden!), channelsLast(cell!)] }
        return result
    }

    /// Keras's `Dot`: per-sample vectors give their inner product `(1)`; per-sample matrices a
    /// batched MatMul, each input first transposed so that its contracted axis is the inner
    /// one. `normalize` divides by the L2 norm along the contracted axis as Keras's
    /// `l2_normalize` does (`x / sqrt(max(Σx², 1e-12))`, so a zero vector stays zero).
    mutating func dot(_ l: Dot, _ inputs: [String], inputShapes: [[Int]], base: String) -> String {
        let rank = inputShapes[0].count
        // Contracted axes in full-tensor numbering (batch axis 0).
        func full(_ axis: Int) -> Int { axis < 0 ? rank + 1 + axis : axis }
        let (axisA, axisB) = (full(l.axes.0), full(l.axes.1))
        var (a, b) = (inputs[0], inputs[1])
        if l.normalize {
            a = l2Normalize(a, axis: axisA, base: base)
            b = l2Normalize(b, axis: axisB, base: base)
        }
        if rank == 1 {
            let product = op("Mul", [a, b], base: base)
            return op("ReduceSum", [product, int64Constant("\(base)/axes", [1])], base: base, [Attribute.int("keepdims", 1)])
        }
        // A as (batch, m, k) and B as (batch, k, n).
        if axisA == 1 { a = op("Transpose", [a], base: base, [Attribute.ints("perm", [0, 2, 1])]) }
        if axisB == 2 { b = op("Transpose", [b], base: base, [Attribute.ints("perm", [0, 2, 1])]) }
        return op("MatMul", [a, b], base: base)
    }

    /// The encodings of the categorical layers from int64 category indices of the input's
    /// shape, with Kestrel's shape rules: categories compared with `0..<depth` (values outside
    /// match none, so they count nowhere), then reduced over each sample's last axis for
    /// multi-hot (ReduceMax) and count (ReduceSum, times the count weights).
    mutating func categorical(_ index: String, mode: LookupOutputMode, depth: Int, inputShape: [Int],
                              countWeights: String?, base: String) -> String {
        let toFloat = Attribute.int("to", Int(Onnx_TensorProto.DataType.float.rawValue))
        guard mode != .int else { return op("Cast", [index], base: base, [toFloat]) }
        let last = int64Constant("\(base)/last", [-1])
        // A sample of one value is a sample of shape [1].
        var values = index, weights = countWeights
        if inputShape.isEmpty {
            values = op("Unsqueeze", [values, last], base: base)
            weights = weights.map { op("Unsqueeze", [$0, last], base: base) }
        }
        let categories = int64Constant("\(base)/categories", (0..<depth).map(Int64.init))
        if mode == .oneHot && (inputShape.last ?? 1) == 1 {
            return op("Cast", [op("Equal", [values, categories], base: base)], base: base, [toFloat])
        }
        let hot = op("Cast", [op("Equal", [op("Unsqueeze", [values, last], base: base), categories], base: base)], base: base,
                     [toFloat])
        switch mode {
        case .oneHot:
            return hot
        case .multiHot:
            return op("ReduceMax", [hot], base: base, [Attribute.ints("axes", [-2]), Attribute.int("keepdims", 0)])
        default:
            let counted = weights.map { op("Mul", [hot, op("Unsqueeze", [$0, last], base: base)], base: base) } ?? hot
            return op("ReduceSum", [counted, int64Constant("\(base)/values", [-2])], base: base, [Attribute.int("keepdims", 0)])
        }
    }

    /// Keras's `GroupNormalization` (channels last) in opset 17's operators: the sample viewed
    /// as (positions, groups, channels per group), mean and variance over positions and the
    /// group's channels, then the per-channel scale and shift on the original shape.
    mutating func groupNormalization(_ l: GroupNormalization, _ x: String, inputShape: [Int], base: String) -> String {
        let channels = inputShape.last!, g = l.groupCount(channels: channels)
        let positions = inputShape.reduce(1, *) / channels
        let grouped = op("Reshape", [x, int64Constant("\(base)/grouped", [-1, Int64(positions), Int64(g), Int64(channels / g)])],
                         base: base)
        let axes = [Attribute.ints("axes", [1, 3]), Attribute.int("keepdims", 1)]
        let centered = op("Sub", [grouped, op("ReduceMean", [grouped], base: base, axes)], base: base)
        let variance = op("ReduceMean", [op("Mul", [centered, centered], base: base)], base: base, axes)
        let epsilon = constant("\(base)/epsilon", shape: [], scalars: [l.epsilon])
        let normalized = op("Div", [centered, op("Sqrt", [op("Add", [variance, epsilon], base: base)], base: base)], base: base)
        var y = op("Reshape", [normalized, int64Constant("\(base)/shape", [-1] + inputShape.map(Int64.init))], base: base)
        let w = Dictionary(uniqueKeysWithValues: zip(l.weightSpecs.map(\.name), l.getWeights()))
        if let gamma = w["gamma"] { y = op("Mul", [y, constant("\(base)/gamma", shape: [channels], scalars: gamma.scalars)], base: base) }
        if let beta = w["beta"] { y = op("Add", [y, constant("\(base)/beta", shape: [channels], scalars: beta.scalars)], base: base) }
        return y
    }

    /// `x / sqrt(max(Σx² along axis, 1e-12))`, Keras's `l2_normalize` (ONNX's LpNormalization
    /// has no epsilon and turns a zero vector into NaN).
    mutating func l2Normalize(_ x: String, axis: Int, base: String) -> String {
        // Opset 17's ReduceSumSquare takes the axes as an attribute.
        let squares = op("ReduceSumSquare", [x], base: base, [Attribute.ints("axes", [axis]), Attribute.int("keepdims", 1)])
        let floor = constant("\(base)/epsilon", shape: [], scalars: [1e-12])
        let norm = op("Sqrt", [op("Max", [squares, floor], base: base)], base: base)
        return op("Div", [x, norm], base: base)
    }

    /// Keras's `Conv1DTranspose`/`Conv2DTranspose` as ONNX ConvTranspose between layout
    /// transposes. The leading pads are those of the convolution that maps Keras's output size
    /// back to the input size (the layer is that convolution's adjoint); trailing pads or
    /// `output_padding` make up the rest, so the output size is exactly Keras's.
    mutating func transposedConvolution(_ l: BaseConvTranspose, _ x: String, inputShape: [Int], outputShape: [Int],
                                        base: String) throws -> String {
        let w = l.getWeights()
        let kernel = w[0], rank = l.rank
        let window = Array(kernel.shape.prefix(rank)), out = kernel.shape[rank], cin = kernel.shape[rank + 1]
        let taps = window.reduce(1, *)
        // Keras's (window…, out, in) as ONNX's (in, out, window…).
        var permuted = [Float](repeating: 0, count: kernel.count)
        for t in 0..<taps {
            for o in 0..<out {
                for i in 0..<cin { permuted[(i * out + o) * taps + t] = kernel.scalars[(t * out + o) * cin + i] }
            }
        }
        let outSpatial = Array(outputShape.prefix(rank)), inSpatial = Array(inputShape.prefix(rank))
        // ONNX's size is (in − 1)·s + span − pads + output_padding: the leading pads place the
        // windows; trailing pads trim what overhangs the end, output_padding adds what is short.
        let before = try l.placement(forInputShape: inputShape).padBefore
        let natural = (0..<rank).map { (a: Int) -> Int in
            let span = (l.kernelSize[a] - 1) * l.dilationRate[a] + 1
            return (inSpatial[a] - 1) * l.strides[a] + span - before[a]
        }
        let after = (0..<rank).map { a in max(natural[a] - outSpatial[a], 0) }
        let pads = before + after
        let outputPadding = (0..<rank).map { a in outSpatial[a] - (natural[a] - after[a]) }
        var args = [op("Transpose", [x], base: base, [Attribute.ints("perm", Self.toChannelsFirst(rank))]),
                    constant("\(base)/kernel", shape: [cin, out] + window, scalars: permuted)]
        if l.useBias { args.append(constant("\(base)/bias", shape: [out], scalars: w[1].scalars)) }
        let y = op("ConvTranspose", args, base: base, [
            Attribute.ints("kernel_shape", window), Attribute.ints("strides", l.strides),
            Attribute.ints("dilations", l.dilationRate), Attribute.ints("pads", pads),
            Attribute.ints("output_padding", outputPadding),
        ])
        let back = op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(rank))])
        return try activation(l.activation, back, base: base, layer: l)
    }

    /// Applies an activation function to `x`.
    mutating func activation(_ f: ActivationFunction, _ x: String, base: String, layer: Layer) throws -> String {
        switch f {
        case .linear: return x
        case .relu: return op("Relu", [x], base: base)
        case .sigmoid: return op("Sigmoid", [x], base: base)
        case .tanh: return op("Tanh", [x], base: base)
        case .softmax: return op("Softmax", [x], base: base, [Attribute.int("axis", -1)])
        case .elu(let alpha): return op("Elu", [x], base: base, [Attribute.float("alpha", alpha)])
        case .selu:
            // Keras's constants (ONNX's defaults differ in the last digits).
            return op("Selu", [x], base: base, [Attribute.float("alpha", 1.6732632423543772),
                                                 Attribute.float("gamma", 1.0507009873554805)])
        case .softplus: return op("Softplus", [x], base: base)
        case .softsign: return op("Softsign", [x], base: base)
        case .exponential: return op("Exp", [x], base: base)
        case .leakyRelu(let slope): return op("LeakyRelu", [x], base: base, [Attribute.float("alpha", slope)])
        case .hardSigmoid:
            // Keras 3: relu6(x + 3) / 6.
            return op("HardSigmoid", [x], base: base, [Attribute.float("alpha", 1.0 / 6), Attribute.float("beta", 0.5)])
        case .swish:
            return op("Mul", [x, op("Sigmoid", [x], base: base)], base: base)
        case .gelu(let approximate):
            let half = constant("\(base)/half", shape: [], scalars: [0.5])
            let one = constant("\(base)/one", shape: [], scalars: [1])
            let inner: String
            if approximate {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let cube = op("Mul", [x, op("Mul", [x, x], base: base)], base: base)
                let c = constant("\(base)/c", shape: [], scalars: [0.044715])
                let k = constant("\(base)/k", shape: [], scalars: [Float((2 / Double.pi).squareRoot())])
                let sum = op("Add", [x, op("Mul", [cube, c], base: base)], base: base)
                inner = op("Tanh", [op("Mul", [sum, k], base: base)], base: base)
            } else {
                // 0.5·x·(1 + erf(x/√2))
                let root2 = constant("\(base)/sqrt2", shape: [], scalars: [Float(2.0.squareRoot())])
                inner = op("Erf", [op("Div", [x, root2], base: base)], base: base)
            }
            let gate = op("Mul", [half, op("Add", [one, inner], base: base)], base: base)
            return op("Mul", [x, gate], base: base)
        }
    }

    /// Keras's LSTM, GRU and SimpleRNN as ONNX's LSTM, GRU and RNN operators, one direction,
    /// time-major in between: the kernels transposed to ONNX's `(gates·units, features)` with
    /// the gate blocks in ONNX's order (LSTM's i f c o become i o f c; GRU's z r h stay), the
    /// biases as ONNX's input and recurrent halves. `goBackwards` reverses the sequence first,
    /// so returned sequences are in reading order, as in Keras. Initial states become the
    /// operator's `initial_h` (and `initial_c`); with `returnState` its `Y_h` (and `Y_c`) are
    /// recorded in `additionalOutputs`.
    mutating func recurrent(_ l: RecurrentLayer, weights w: [Tensor], _ x: String, initialState: [String] = [],
                            inputShape: [Int], base: String) throws -> String {
        let features = inputShape[1], u = l.units
        let opType: String, order: [Int], functions: [ActivationFunction]
        var attributes = [Attribute.int("hidden_size", u)]
        switch l {
        case let lstm as LSTM:
            (opType, order, functions) = ("LSTM", [0, 3, 1, 2], [lstm.recurrentActivation, l.activation, l.activation])
        case let gru as GRU:
            (opType, order, functions) = ("GRU", [0, 1, 2], [gru.recurrentActivation, l.activation])
            attributes.append(Attribute.int("linear_before_reset", gru.resetAfter ? 1 : 0))
        default:
            (opType, order, functions) = ("RNN", [0], [l.activation])
        }
        // ONNX's activation names; alpha and beta only for the functions that take them, in order.
        var names: [String] = [], alphas: [Float] = [], betas: [Float] = []
        for f in functions {
            switch f {
            case .tanh: names.append("Tanh")
            case .sigmoid: names.append("Sigmoid")
            case .relu: names.append("Relu")
            case .softplus: names.append("Softplus")
            case .linear: names.append("Affine"); alphas.append(1); betas.append(0)
            case .hardSigmoid: names.append("HardSigmoid"); alphas.append(1.0 / 6); betas.append(0.5)
            case .elu(let alpha): names.append("Elu"); alphas.append(alpha)
            case .leakyRelu(let slope): names.append("LeakyRelu"); alphas.append(slope)
            default:
                throw KestrelError.invalidArgument(
                    "exportONNX: layer '\(l.name)' (\(l.className)) has no ONNX translation yet: ONNX's \(opType) has no \(f.kerasName) activation")
            }
        }
        attributes.append(Attribute.strings("activations", names))
        if !alphas.isEmpty { attributes.append(Attribute.floats("activation_alpha", alphas)) }
        if !betas.isEmpty { attributes.append(Attribute.floats("activation_beta", betas)) }
        let g = order.count * u
        // Keras's (rows, gates·units) → ONNX's (gates·units, rows), gate blocks reordered.
        func onnxMatrix(_ t: Tensor, rows: Int) -> [Float] {
            var out = [Float](repeating: 0, count: rows * g)
            for (gate, kerasGate) in order.enumerated() {
                for j in 0..<u { for r in 0..<rows { out[(gate * u + j) * rows + r] = t.scalars[r * g + kerasGate * u + j] } }
            }
            return out
        }
        var arguments = [constant("\(base)/W", shape: [1, g, features], scalars: onnxMatrix(w[0], rows: features)),
                         constant("\(base)/R", shape: [1, g, u], scalars: onnxMatrix(w[1], rows: u))]
        if l.useBias {
            // ONNX: input biases, then recurrent ones (only a reset-after GRU has those in Keras).
            var bias = [Float](repeating: 0, count: 2 * g)
            let keras = w[2].scalars, halves = keras.count / g
            for half in 0..<halves {
                for (gate, kerasGate) in order.enumerated() {
                    for j in 0..<u { bias[half * g + gate * u + j] = keras[half * g + kerasGate * u + j] }
                }
            }
            arguments.append(constant("\(base)/B", shape: [1, 2 * g], scalars: bias))
        }
        if !initialState.isEmpty {
            // (batch, units) → (directions, batch, units), after the skipped optional inputs.
            if !l.useBias { arguments.append("") }
            arguments.append("")   // sequence_lens
            for (k, state) in initialState.enumerated() {
                arguments.append(op("Unsqueeze", [state, int64Constant("\(base)/state_axis_\(k)", [0])], base: base))
            }
        }
        let sequence = l.goBackwards ? reversedSequence(x, base: base) : x
        let timeMajor = op("Transpose", [sequence], base: base, [Attribute.ints("perm", [1, 0, 2])])
        let states = fresh(base), last = fresh(base), lastCell = fresh(base)
        add(opType, [timeMajor] + arguments, [states, last] + (l is LSTM ? [lastCell] : []), attributes)
        let result: String
        if l.returnSequences {
            // Y (steps, 1, batch, units) → (batch, steps, units).
            let squeezed = op("Squeeze", [states, int64Constant("\(base)/direction_axis", [1])], base: base)
            result = op("Transpose", [squeezed], base: base, [Attribute.ints("perm", [1, 0, 2])])
        } else {
            result = op("Squeeze", [last, int64Constant("\(base)/direction_axis", [0])], base: base)
        }
        if l.returnState {
            // Y_h (and Y_c) (1, batch, units) → (batch, units).
            additionalOutputs[result] = ([last] + (l is LSTM ? [lastCell] : [])).map {
                op("Squeeze", [$0, int64Constant("\(base)/state_direction_axis", [0])], base: base)
            }
        }
        return result
    }

    /// `(batch, steps, features)` with the steps in reverse order.
    mutating func reversedSequence(_ x: String, base: String) -> String {
        op("Slice", [x, int64Constant("\(base)/reverse_starts", [-1]), int64Constant("\(base)/reverse_ends", [Int64.min]),
                     int64Constant("\(base)/reverse_axes", [1]), int64Constant("\(base)/reverse_steps", [-1])], base: base)
    }

    /// Embedding as Gather from the table with one zero row appended, which indices outside
    /// 0..<inputDim select, as Kestrel's lookup gives zeros for them.
    mutating func embedding(_ l: Embedding, _ x: String, base: String) -> String {
        let table = l.getWeights()[0]
        let rows = constant("\(base)/embeddings", shape: [l.inputDim + 1, l.outputDim],
                            scalars: table.scalars + [Float](repeating: 0, count: l.outputDim))
        let count = constant("\(base)/input_dim", shape: [], scalars: [Float(l.inputDim)])
        let zero = constant("\(base)/zero", shape: [], scalars: [0])
        let valid = op("And", [op("GreaterOrEqual", [x, zero], base: base), op("Less", [x, count], base: base)], base: base)
        let index = op("Cast", [op("Where", [valid, x, count], base: base)], base: base,
                       [Attribute.int("to", Int(Onnx_TensorProto.DataType.int64.rawValue))])
        return op("Gather", [rows, index], base: base, [Attribute.int("axis", 0)])
    }

    /// Keras's `Attention` and `AdditiveAttention`: scores (a batched `MatMul` of query and
    /// transposed key, or the tanh terms of query and key broadcast against each other, summed
    /// over the features), the softmax over the key steps, and the weighted values.
    mutating func scoreAttention(_ l: ScoreAttention, _ inputs: [String], inputShapes: [[Int]], base: String) -> String {
        let key = inputs.count > 2 ? inputs[2] : inputs[1]
        let w = l.getWeights()
        func scalar(_ name: String, _ t: Tensor) -> String { constant("\(base)/\(name)", shape: [], scalars: t.scalars) }
        // (batch, Tq, 1, dim) + (batch, 1, Tv, dim): every query step against every key step.
        func pairSums() -> String {
            let q = op("Unsqueeze", [inputs[0], int64Constant("\(base)/query_axis", [2])], base: base)
            let k = op("Unsqueeze", [key, int64Constant("\(base)/key_axis", [1])], base: base)
            return op("Add", [q, k], base: base)
        }
        func sumFeatures(_ x: String) -> String {
            op("ReduceSum", [x, int64Constant("\(base)/features", [-1])], base: base, [Attribute.int("keepdims", 0)])
        }
        var scores: String
        if let a = l as? Attention {
            switch a.scoreMode {
            case .dot:
                let keyT = op("Transpose", [key], base: base, [Attribute.ints("perm", [0, 2, 1])])
                scores = op("MatMul", [inputs[0], keyT], base: base)
                if a.useScale { scores = op("Mul", [scores, scalar("scale", w[0])], base: base) }
            case .concat:
                var sums = pairSums()
                if a.useScale { sums = op("Mul", [sums, scalar("scale", w[0])], base: base) }
                scores = op("Mul", [sumFeatures(op("Tanh", [sums], base: base)), scalar("concat_score_weight", w[a.useScale ? 1 : 0])],
                            base: base)
            }
        } else {
            var terms = op("Tanh", [pairSums()], base: base)
            if let scale = w.first {
                terms = op("Mul", [terms, constant("\(base)/scale", shape: scale.shape, scalars: scale.scalars)], base: base)
            }
            scores = sumFeatures(terms)
        }
        if l.useCausalMask {
            scores = op("Add", [scores, causalBias(tq: inputShapes[0][0], tv: inputShapes[1][0], base: base)], base: base)
        }
        let weights = op("Softmax", [scores], base: base, [Attribute.int("axis", -1)])
        return op("MatMul", [weights, inputs[1]], base: base)
    }

    /// The causal mask as a constant `(Tq, Tv)` added to the scores before the softmax: −1e9
    /// where a key step comes after the query's own, so it gets no weight.
    mutating func causalBias(tq: Int, tv: Int, base: String) -> String {
        var bias = [Float](repeating: 0, count: tq * tv)
        for i in 0..<tq { for j in (i + 1)..<max(tv, i + 1) { bias[i * tv + j] = -1e9 } }
        return constant("\(base)/causal_mask", shape: [tq, tv], scalars: bias)
    }

    /// MultiHeadAttention written out: each projection one MatMul over `(features, heads·size)`
    /// and its bias, heads split into their own axis, scaled scores (the causal mask added),
    /// Softmax over the keys, the weighted values, and the output projection over
    /// `(heads·valueDim, outputs)`. Dropout is training-only, so absent.
    mutating func attention(_ l: MultiHeadAttention, _ inputs: [String], inputShapes: [[Int]], base: String) -> String {
        let w = l.getWeights(), h = l.numHeads
        var next = 0
        func weight() -> Tensor { defer { next += 1 }; return w[next] }
        // Keras's order: query, key, value (each kernel then bias), then the output projection.
        func project(_ x: String, length: Int, features: Int, size: Int, part: String, perm: [Int]) -> String {
            let kernel = weight()
            var y = op("MatMul", [x, constant("\(base)/\(part)/kernel", shape: [features, h * size], scalars: kernel.scalars)],
                       base: base)
            if l.useBias {
                y = op("Add", [y, constant("\(base)/\(part)/bias", shape: [h * size], scalars: weight().scalars)], base: base)
            }
            let split = op("Reshape", [y, int64Constant("\(base)/\(part)/heads", [0, Int64(length), Int64(h), Int64(size)])],
                           base: base)
            return op("Transpose", [split], base: base, [Attribute.ints("perm", perm)])
        }
        let key = inputShapes.count > 2 ? (inputs[2], inputShapes[2]) : (inputs[1], inputShapes[1])
        let (tq, tv) = (inputShapes[0][0], inputShapes[1][0])
        // (batch, heads, Tq, keyDim), (batch, heads, keyDim, Tv), (batch, heads, Tv, valueDim).
        let q = project(inputs[0], length: tq, features: inputShapes[0][1], size: l.keyDim, part: "query", perm: [0, 2, 1, 3])
        let k = project(key.0, length: tv, features: key.1[1], size: l.keyDim, part: "key", perm: [0, 2, 3, 1])
        let v = project(inputs[1], length: tv, features: inputShapes[1][1], size: l.valueDim, part: "value", perm: [0, 2, 1, 3])
        let scale = constant("\(base)/scale", shape: [], scalars: [1 / Float(l.keyDim).squareRoot()])
        var scores = op("MatMul", [op("Mul", [q, scale], base: base), k], base: base)
        if l.useCausalMask { scores = op("Add", [scores, causalBias(tq: tq, tv: tv, base: base)], base: base) }
        let weights = op("Softmax", [scores], base: base, [Attribute.int("axis", -1)])
        let heads = op("Transpose", [op("MatMul", [weights, v], base: base)], base: base, [Attribute.ints("perm", [0, 2, 1, 3])])
        let joined = op("Reshape", [heads, int64Constant("\(base)/joined", [0, Int64(tq), Int64(h * l.valueDim)])], base: base)
        let output = weight()
        let outputs = output.shape[2]
        var y = op("MatMul", [joined, constant("\(base)/attention_output/kernel", shape: [h * l.valueDim, outputs],
                                               scalars: output.scalars)], base: base)
        if l.useBias {
            y = op("Add", [y, constant("\(base)/attention_output/bias", shape: [outputs], scalars: weight().scalars)], base: base)
        }
        // Returned attention scores: the softmax's weights, (batch, heads, Tq, Tv) as in Kestrel.
        if l.returnAttentionScores { additionalOutputs[y] = [weights] }
        return y
    }

    /// A channels-last image resize: NCHW, the crop (if any) as a Slice, the output size from
    /// the input's batch and channels (the batch is symbolic) and the target height and width.
    mutating func resize(_ input: String, crop: (top: Int, left: Int, rows: Int, columns: Int)?, height: Int, width: Int,
                         interpolation: Interpolation, base: String) -> String {
        var x = op("Transpose", [input], base: base, [Attribute.ints("perm", Self.toChannelsFirst(2))])
        if let crop {
            x = op("Slice", [x, int64Constant("\(base)/crop_starts", [Int64(crop.top), Int64(crop.left)]),
                             int64Constant("\(base)/crop_ends", [Int64(crop.top + crop.rows), Int64(crop.left + crop.columns)]),
                             int64Constant("\(base)/crop_axes", [2, 3])], base: base)
        }
        let leading = op("Slice", [op("Shape", [x], base: base), int64Constant("\(base)/shape_starts", [0]),
                                   int64Constant("\(base)/shape_ends", [2])], base: base)
        let sizes = op("Concat", [leading, int64Constant("\(base)/size", [Int64(height), Int64(width)])], base: base,
                       [Attribute.int("axis", 0)])
        // Keras's nearest reads floor((o + 0.5) · in / out): "tf_half_pixel_for_nn" with "floor".
        let attributes = interpolation == .nearest
            ? [Attribute.string("mode", "nearest"), Attribute.string("coordinate_transformation_mode", "tf_half_pixel_for_nn"),
               Attribute.string("nearest_mode", "floor")]
            : [Attribute.string("mode", "linear"), Attribute.string("coordinate_transformation_mode", "half_pixel")]
        let y = op("Resize", [x, "", "", sizes], base: base, attributes)
        return op("Transpose", [y], base: base, [Attribute.ints("perm", Self.toChannelsLast(2))])
    }

    /// Keras's ReLU: `min(x·[x > threshold], maxValue) − negativeSlope·max(threshold − x, 0)`.
    mutating func relu(_ l: ReLU, _ x: String, base: String) -> String {
        if l.threshold == 0 && l.negativeSlope == 0 {
            let y = op("Relu", [x], base: base)
            guard let maxValue = l.maxValue else { return y }
            return op("Min", [y, constant("\(base)/max", shape: [], scalars: [maxValue])], base: base)
        }
        let threshold = constant("\(base)/threshold", shape: [], scalars: [l.threshold])
        let zero = constant("\(base)/zero", shape: [], scalars: [0])
        var positive = op("Where", [op("Greater", [x, threshold], base: base), x, zero], base: base)
        if let maxValue = l.maxValue {
            positive = op("Min", [positive, constant("\(base)/max", shape: [], scalars: [maxValue])], base: base)
        }
        guard l.negativeSlope != 0 else { return positive }
        let below = op("Relu", [op("Sub", [threshold, x], base: base)], base: base)
        let slope = constant("\(base)/slope", shape: [], scalars: [l.negativeSlope])
        return op("Sub", [positive, op("Mul", [below, slope], base: base)], base: base)
    }
}
