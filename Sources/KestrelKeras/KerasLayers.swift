import Foundation
import Kestrel

/// Translation between Kestrel layers and Keras 3 layer configs (class name + `config`).
enum KerasLayers {
    /// The Keras dtype policy object Keras 3 writes for float32 layers.
    static var float32Policy: [String: Any] { [
        "module": "keras", "class_name": "DTypePolicy", "config": ["name": "float32"], "registered_name": NSNull(),
    ] }

    /// Keras's `to_snake_case`, which names weight groups (shared with the core's layer names).
    static func snakeCase(_ name: String) -> String { LayerNames.snakeCase(name) }

    // MARK: Writing

    /// The Keras class name and config of a layer; throws for layers Keras cannot express.
    static func config(of layer: Layer) throws -> (className: String, config: [String: Any]) {
        var c: [String: Any] = ["name": layer.name, "trainable": layer.trainable, "dtype": float32Policy]
        let className: String
        switch layer {
        case let l as InputLayer:
            return ("InputLayer", ["batch_shape": [NSNull()] + l.shape, "dtype": "float32", "sparse": false,
                                   "ragged": false, "name": l.name, "optional": false])
        case let l as Dense:
            className = "Dense"
            c["units"] = l.units
            c["activation"] = try activationName(l.activation, layer: l)
            c["use_bias"] = l.useBias
            c["kernel_initializer"] = initializerConfig(l.kernelInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("kernel", l.kernelRegularizer, l.kernelConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
        case is Flatten:
            className = "Flatten"
            c["data_format"] = "channels_last"
        case let l as Reshape:
            className = "Reshape"
            c["target_shape"] = l.targetShape
        case let l as Activation:
            className = "Activation"
            c["activation"] = try activationName(l.function, layer: l)
        case let l as ReLU:
            className = "ReLU"
            c["max_value"] = l.maxValue.map { jsonNumber($0) as Any } ?? NSNull()
            c["negative_slope"] = jsonNumber(l.negativeSlope)
            c["threshold"] = jsonNumber(l.threshold)
        case let l as LeakyReLU:
            className = "LeakyReLU"
            c["negative_slope"] = jsonNumber(l.negativeSlope)
        case let l as Softmax:
            className = "Softmax"
            c["axis"] = l.axis
        case let l as Dropout:
            className = "Dropout"
            c["rate"] = jsonNumber(l.rate)
            c["seed"] = NSNull()
            c["noise_shape"] = NSNull()
        case is Add: className = "Add"
        case is Subtract: className = "Subtract"
        case is Multiply: className = "Multiply"
        case is Average: className = "Average"
        case is Maximum: className = "Maximum"
        case is Minimum: className = "Minimum"
        case let l as Concatenate:
            className = "Concatenate"
            c["axis"] = l.axis
        case let l as Dot:
            className = "Dot"
            c["axes"] = [l.axes.0, l.axes.1]
            c["normalize"] = l.normalize
        case let l as BaseConv:
            className = l.className
            c["filters"] = l.filters
            c["kernel_size"] = l.kernelSize
            c["strides"] = l.strides
            c["padding"] = l.padding.rawValue
            c["data_format"] = "channels_last"
            c["dilation_rate"] = l.dilationRate
            c["groups"] = l.groups
            c["activation"] = try activationName(l.activation, layer: l)
            c["use_bias"] = l.useBias
            c["kernel_initializer"] = initializerConfig(l.kernelInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("kernel", l.kernelRegularizer, l.kernelConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
        case let l as BasePooling:
            className = l.className
            c["pool_size"] = l.poolSize
            c["strides"] = l.strides
            c["padding"] = l.padding.rawValue
            c["data_format"] = "channels_last"
        case let l as BaseGlobalPooling:
            className = l.className
            c["data_format"] = "channels_last"
            c["keepdims"] = l.keepDims
        case let l as BatchNormalization:
            guard l.axis == -1 else { throw KestrelError.invalidArgument("\(l.name) (BatchNormalization): only axis -1 is saved") }
            className = "BatchNormalization"
            c["axis"] = -1
            c["momentum"] = jsonNumber(l.momentum)
            c["epsilon"] = jsonNumber(l.epsilon)
            c["center"] = l.center
            c["scale"] = l.scale
            c["beta_initializer"] = initializerConfig(l.betaInitializer)
            c["gamma_initializer"] = initializerConfig(l.gammaInitializer)
            c["moving_mean_initializer"] = initializerConfig(l.movingMeanInitializer)
            c["moving_variance_initializer"] = initializerConfig(l.movingVarianceInitializer)
            for key in ["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"] { c[key] = NSNull() }
            c["synchronized"] = false
        case let l as LayerNormalization:
            guard l.axis == -1 else { throw KestrelError.invalidArgument("\(l.name) (LayerNormalization): only axis -1 is saved") }
            className = "LayerNormalization"
            c["axis"] = -1
            c["epsilon"] = jsonNumber(l.epsilon)
            c["center"] = l.center
            c["scale"] = l.scale
            c["beta_initializer"] = initializerConfig(l.betaInitializer)
            c["gamma_initializer"] = initializerConfig(l.gammaInitializer)
            for key in ["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"] { c[key] = NSNull() }
        case let l as BaseConvTranspose:
            className = "Conv\(l.rank)DTranspose"
            c["filters"] = l.filters
            c["kernel_size"] = l.kernelSize
            c["strides"] = l.strides
            c["padding"] = l.padding.rawValue
            c["output_padding"] = l.outputPadding.map { $0 as Any } ?? NSNull()
            c["data_format"] = "channels_last"
            c["dilation_rate"] = l.dilationRate
            c["activation"] = try activationName(l.activation, layer: l)
            c["use_bias"] = l.useBias
            c["kernel_initializer"] = initializerConfig(l.kernelInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("kernel", l.kernelRegularizer, l.kernelConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
        case let l as BaseDepthwiseConv:
            className = l.className
            c["kernel_size"] = l.kernelSize
            c["strides"] = l.strides
            c["padding"] = l.padding.rawValue
            c["depth_multiplier"] = l.depthMultiplier
            c["data_format"] = "channels_last"
            c["dilation_rate"] = l.dilationRate
            c["activation"] = try activationName(l.activation, layer: l)
            c["use_bias"] = l.useBias
            c["depthwise_initializer"] = initializerConfig(l.depthwiseInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("depthwise", l.depthwiseRegularizer, l.depthwiseConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
        case let l as BaseSeparableConv:
            className = l.className
            c["filters"] = l.filters
            c["kernel_size"] = l.kernelSize
            c["strides"] = l.strides
            c["padding"] = l.padding.rawValue
            c["depth_multiplier"] = l.depthMultiplier
            c["data_format"] = "channels_last"
            c["dilation_rate"] = l.dilationRate
            c["activation"] = try activationName(l.activation, layer: l)
            c["use_bias"] = l.useBias
            c["depthwise_initializer"] = initializerConfig(l.depthwiseInitializer)
            c["pointwise_initializer"] = initializerConfig(l.pointwiseInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("depthwise", l.depthwiseRegularizer, l.depthwiseConstraint),
                                ("pointwise", l.pointwiseRegularizer, l.pointwiseConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
        case let l as Permute:
            className = "Permute"
            c["dims"] = l.dims
        case let l as RepeatVector:
            className = "RepeatVector"
            c["n"] = l.n
        case let l as AffineAugmentation:
            let range = augmentationRangeJSON
            switch l {
            case let rotation as RandomRotation:
                className = "RandomRotation"
                c["factor"] = range(rotation.factor)
            case let zoom as RandomZoom:
                className = "RandomZoom"
                c["height_factor"] = range(zoom.heightFactor)
                c["width_factor"] = zoom.widthFactor.map(range) ?? NSNull()
            case let translation as RandomTranslation:
                className = "RandomTranslation"
                c["height_factor"] = range(translation.heightFactor)
                c["width_factor"] = range(translation.widthFactor)
            default:
                throw KestrelError.invalidArgument("\(l.name) (\(l.className)): no Keras equivalent to save")
            }
            c["fill_mode"] = l.fillMode.rawValue
            c["interpolation"] = l.interpolation.rawValue
            c["fill_value"] = jsonNumber(l.fillValue)
            c["seed"] = seedJSON(l.seed)
            c["data_format"] = "channels_last"
        case let l as RandomFlip:
            className = "RandomFlip"
            c["mode"] = l.mode.rawValue
            c["seed"] = seedJSON(l.seed)
            c["data_format"] = "channels_last"
        case let l as RandomInvert:
            className = "RandomInvert"
            // The probability's range as Keras keeps it (one number f is 0…f in both).
            let p = l.probabilityRange ?? (0, 0)
            c["factor"] = [jsonNumber(p.lower), jsonNumber(p.upper)]
            c["value_range"] = [jsonNumber(l.valueRange.lowerBound), jsonNumber(l.valueRange.upperBound)]
            c["seed"] = seedJSON(l.seed)
            c["data_format"] = "channels_last"
        case let l as RandomGrayscale:
            className = "RandomGrayscale"
            c["factor"] = jsonNumber(l.factor)
            c["seed"] = seedJSON(l.seed)
            c["data_format"] = "channels_last"
        case let l as ColorAugmentation:
            switch l {
            case let contrast as RandomContrast:
                // Keras turns one number f into [0, f]; the pair keeps Kestrel's 1 − f…1 + f.
                className = "RandomContrast"
                let values = contrast.factor.values
                c["factor"] = (values.count == 1 ? [values[0], values[0]] : values).map(jsonNumber)
            case let brightness as RandomBrightness:
                className = "RandomBrightness"
                c["factor"] = augmentationRangeJSON(brightness.factor)
            default:
                throw KestrelError.invalidArgument("\(l.name) (\(l.className)): no Keras equivalent to save")
            }
            c["value_range"] = [jsonNumber(l.valueRange.lowerBound), jsonNumber(l.valueRange.upperBound)]
            c["seed"] = seedJSON(l.seed)
            c["data_format"] = "channels_last"
        case let l as RandomCrop:
            className = "RandomCrop"
            c["height"] = l.height
            c["width"] = l.width
            c["seed"] = seedJSON(l.seed)
            c["data_format"] = "channels_last"
        case let l as CenterCrop:
            className = "CenterCrop"
            c["height"] = l.height
            c["width"] = l.width
            c["data_format"] = "channels_last"
        case let l as Resizing:
            className = "Resizing"
            c["height"] = l.height
            c["width"] = l.width
            c["interpolation"] = l.interpolation.rawValue
            c["crop_to_aspect_ratio"] = l.cropToAspectRatio
            c["pad_to_aspect_ratio"] = false
            c["fill_mode"] = "constant"
            c["fill_value"] = 0.0
            c["antialias"] = false
            c["data_format"] = "channels_last"
        case let l as Rescaling:
            className = "Rescaling"
            c["scale"] = jsonNumber(l.scale)
            c["offset"] = jsonNumber(l.offset)
        case let l as Normalization:
            className = "Normalization"
            c["axis"] = l.axis
            c["invert"] = l.invert
            // A given mean and variance in the shape Keras broadcasts them from.
            func statistics(_ values: [Float]?) -> Any {
                guard let values else { return NSNull() }
                if values.count == 1 { return jsonNumber(values[0]) }
                func nest(_ flat: ArraySlice<Float>, _ shape: ArraySlice<Int>) -> Any {
                    guard shape.count > 1 else { return flat.map(jsonNumber) }
                    let step = flat.count / shape.first!
                    return (0..<shape.first!).map { i in
                        nest(flat[(flat.startIndex + i * step)..<(flat.startIndex + (i + 1) * step)], shape.dropFirst())
                    }
                }
                let shape = l.keptShape.reduce(1, *) == values.count ? l.keptShape : [values.count]
                return nest(values[...], shape[...])
            }
            c["mean"] = statistics(l.mean)
            c["variance"] = statistics(l.variance)
        case let l as UpSampling2D:
            className = "UpSampling2D"
            c["size"] = l.size
            c["data_format"] = "channels_last"
            c["interpolation"] = l.interpolation.rawValue
        case let l as SpatialBorder where l is ZeroPadding2D || l is Cropping2D || l is ZeroPadding3D || l is Cropping3D:
            // Keras writes a (before, after) pair per axis for images and volumes.
            className = l.className
            c[l is Cropping2D || l is Cropping3D ? "cropping" : "padding"] = l.amounts
            c["data_format"] = "channels_last"
        case let l as UpSampling3D:
            className = "UpSampling3D"
            c["size"] = l.size
            c["data_format"] = "channels_last"
        case let l as ZeroPadding1D:
            className = "ZeroPadding1D"
            c["padding"] = l.amounts[0]
            c["data_format"] = "channels_last"
        case let l as Cropping1D:
            className = "Cropping1D"
            c["cropping"] = l.amounts[0]
        case let l as UpSampling1D:
            className = "UpSampling1D"
            c["size"] = l.size
        case let l as Embedding:
            className = "Embedding"
            c["input_dim"] = l.inputDim
            c["output_dim"] = l.outputDim
            c["embeddings_initializer"] = initializerConfig(l.embeddingsInitializer)
            writePenalties(&c, [("embeddings", l.embeddingsRegularizer, l.embeddingsConstraint)])
            c["mask_zero"] = l.maskZero
            c["quantization_config"] = NSNull()
        case let l as RecurrentLayer:
            c["return_sequences"] = l.returnSequences
            c["return_state"] = l.returnState
            c["go_backwards"] = l.goBackwards
            c["stateful"] = false
            c["unroll"] = false
            c["zero_output_for_mask"] = l.zeroOutputForMask
            c["units"] = l.units
            c["activation"] = try activationName(l.activation, layer: l)
            switch l {
            case let lstm as LSTM:
                className = "LSTM"
                c["recurrent_activation"] = try activationName(lstm.recurrentActivation, layer: l)
                c["unit_forget_bias"] = lstm.unitForgetBias
            case let gru as GRU:
                className = "GRU"
                c["recurrent_activation"] = try activationName(gru.recurrentActivation, layer: l)
                c["reset_after"] = gru.resetAfter
            case is SimpleRNN:
                className = "SimpleRNN"
            default:
                throw KestrelError.invalidArgument("\(l.name) (\(l.className)): no Keras equivalent to save")
            }
            c["use_bias"] = l.useBias
            c["kernel_initializer"] = initializerConfig(l.kernelInitializer)
            c["recurrent_initializer"] = initializerConfig(l.recurrentInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("kernel", l.kernelRegularizer, l.kernelConstraint),
                                ("recurrent", l.recurrentRegularizer, l.recurrentConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
            c["dropout"] = jsonNumber(l.dropout)
            c["recurrent_dropout"] = jsonNumber(l.recurrentDropout)
            c["seed"] = seedJSON(l.seed)
        case let l as BaseConvLSTM:
            className = l.className
            c["filters"] = l.filters
            c["kernel_size"] = l.kernelSize
            c["strides"] = l.strides
            c["padding"] = l.padding.rawValue
            c["data_format"] = "channels_last"
            c["dilation_rate"] = l.dilationRate
            c["activation"] = try activationName(l.activation, layer: l)
            c["recurrent_activation"] = try activationName(l.recurrentActivation, layer: l)
            c["use_bias"] = l.useBias
            c["kernel_initializer"] = initializerConfig(l.kernelInitializer)
            c["recurrent_initializer"] = initializerConfig(l.recurrentInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            c["unit_forget_bias"] = l.unitForgetBias
            writePenalties(&c, [("kernel", l.kernelRegularizer, l.kernelConstraint),
                                ("recurrent", l.recurrentRegularizer, l.recurrentConstraint),
                                ("bias", l.biasRegularizer, l.biasConstraint)])
            c["dropout"] = jsonNumber(l.dropout)
            c["recurrent_dropout"] = jsonNumber(l.recurrentDropout)
            c["seed"] = seedJSON(l.seed)
            c["return_sequences"] = l.returnSequences
            c["return_state"] = l.returnState
            c["go_backwards"] = l.goBackwards
            c["stateful"] = false
        case let l as Bidirectional:
            className = "Bidirectional"
            c["merge_mode"] = l.mergeMode.rawValue
            // Both halves as whole layer entries; Keras names the forward one "forward_<name>".
            let shape: Any = l.builtInputShapes.map { [NSNull()] + $0[0] as [Any] } ?? NSNull()
            func entry(_ half: RecurrentLayer, name: String) throws -> [String: Any] {
                var (halfClass, halfConfig) = try config(of: half)
                halfConfig["name"] = name
                return ["module": "keras.layers", "class_name": halfClass, "config": halfConfig, "registered_name": NSNull(),
                        "build_config": ["input_shape": shape]]
            }
            c["layer"] = try entry(l.forwardLayer, name: bidirectionalForwardName(l))
            c["backward_layer"] = try entry(l.backwardLayer, name: l.backwardLayer.name)
        case let l as MultiHeadAttention:
            className = "MultiHeadAttention"
            c["num_heads"] = l.numHeads
            c["key_dim"] = l.keyDim
            c["value_dim"] = l.valueDim
            c["dropout"] = jsonNumber(l.dropout)
            c["use_bias"] = l.useBias
            c["use_gate"] = false
            // Keras keeps an output size as a one-element shape.
            c["output_shape"] = l.outputShape.map { [$0] as Any } ?? NSNull()
            // What Keras's default (None) becomes once built on sequences: the time axis.
            c["attention_axes"] = [1]
            c["sliding_window"] = NSNull()
            c["kernel_initializer"] = initializerConfig(l.kernelInitializer)
            c["bias_initializer"] = initializerConfig(l.biasInitializer)
            writePenalties(&c, [("kernel", l.kernelRegularizer, l.kernelConstraint), ("bias", l.biasRegularizer, l.biasConstraint)])
            c["seed"] = seedJSON(l.seed)
        case let l as ELU:
            className = "ELU"
            c["alpha"] = jsonNumber(l.alpha)
        case let l as PReLU:
            className = "PReLU"
            c["alpha_initializer"] = initializerConfig(l.alphaInitializer)
            c["alpha_regularizer"] = regularizerConfig(l.alphaRegularizer)
            c["alpha_constraint"] = constraintConfig(l.alphaConstraint)
            c["shared_axes"] = l.sharedAxes.map { $0 as Any } ?? NSNull()
        case let l as GaussianNoise:
            className = "GaussianNoise"
            c["stddev"] = jsonNumber(l.stddev)
            c["seed"] = seedJSON(l.seed)
        case let l as GaussianDropout:
            className = "GaussianDropout"
            c["rate"] = jsonNumber(l.rate)
            c["seed"] = seedJSON(l.seed)
        case let l as AlphaDropout:
            className = "AlphaDropout"
            c["rate"] = jsonNumber(l.rate)
            c["seed"] = seedJSON(l.seed)
            c["noise_shape"] = NSNull()
        case let l as ActivityRegularization:
            className = "ActivityRegularization"
            c["l1"] = jsonNumber(l.l1)
            c["l2"] = jsonNumber(l.l2)
        case is Identity:
            className = "Identity"
        case let l as Masking:
            className = "Masking"
            c["mask_value"] = jsonNumber(l.maskValue)
        case let l as CategoryEncoding:
            className = "CategoryEncoding"
            c["num_tokens"] = l.numTokens
            c["output_mode"] = l.outputMode.rawValue
            c["sparse"] = false
        case let l as Hashing:
            className = "Hashing"
            c["num_bins"] = l.numBins
            switch l.maskValue {
            case .string(let s)?: c["mask_value"] = s
            case .integer(let i)?: c["mask_value"] = i
            case nil: c["mask_value"] = NSNull()
            }
            // Keras takes one integer or a list of two (it refuses a list of one).
            let salt = l.salt?.map { Int64(bitPattern: $0) }
            c["salt"] = salt.map { $0.count == 1 ? $0[0] as Any : $0 as Any } ?? NSNull()
            c["output_mode"] = l.outputMode.rawValue
            c["sparse"] = false
        case let l as HashedCrossing:
            className = "HashedCrossing"
            c["num_bins"] = l.numBins
            c["output_mode"] = l.outputMode.rawValue
            c["sparse"] = false
        case let l as Discretization:
            className = "Discretization"
            // Keras's Discretization takes no `trainable` argument (its get_config leaves it out).
            c["trainable"] = nil
            c["bin_boundaries"] = l.binBoundaries.map { $0.map(jsonNumber) as Any } ?? NSNull()
            c["num_bins"] = l.numBins.map { $0 as Any } ?? NSNull()
            c["epsilon"] = l.epsilon
            c["output_mode"] = l.outputMode.rawValue
            c["sparse"] = false
        case let l as UnitNormalization:
            className = "UnitNormalization"
            c["axis"] = l.axis.count == 1 ? l.axis[0] as Any : l.axis as Any
        case let l as GroupNormalization:
            guard l.axis == -1 else { throw KestrelError.invalidArgument("\(l.name) (GroupNormalization): only axis -1 is saved") }
            className = "GroupNormalization"
            // Keras writes the resolved count once built (-1 becomes the channel count).
            c["groups"] = l.builtInputShapes.map { l.groupCount(channels: $0[0].last!) } ?? l.groups
            c["axis"] = -1
            c["epsilon"] = jsonNumber(l.epsilon)
            c["center"] = l.center
            c["scale"] = l.scale
            c["beta_initializer"] = initializerConfig(l.betaInitializer)
            c["gamma_initializer"] = initializerConfig(l.gammaInitializer)
            c["beta_regularizer"] = regularizerConfig(l.betaRegularizer)
            c["gamma_regularizer"] = regularizerConfig(l.gammaRegularizer)
            c["beta_constraint"] = constraintConfig(l.betaConstraint)
            c["gamma_constraint"] = constraintConfig(l.gammaConstraint)
        case let l as Attention:
            className = "Attention"
            c["use_scale"] = l.useScale
            c["score_mode"] = l.scoreMode.rawValue
            c["dropout"] = jsonNumber(l.dropout)
            c["seed"] = seedJSON(l.seed)
        case let l as AdditiveAttention:
            className = "AdditiveAttention"
            c["use_scale"] = l.useScale
            c["dropout"] = jsonNumber(l.dropout)
            c["seed"] = seedJSON(l.seed)
        case let l as TimeDistributed:
            className = "TimeDistributed"
            let (innerClass, innerConfig) = try config(of: l.layer)
            let shape: Any = l.builtInputShapes.map { [NSNull()] + Array($0[0].dropFirst()) as [Any] } ?? NSNull()
            c["layer"] = ["module": "keras.layers", "class_name": innerClass, "config": innerConfig, "registered_name": NSNull(),
                          "build_config": ["input_shape": shape]] as [String: Any]
        case let l as SpatialDropout:
            className = "SpatialDropout\(l.rank)D"
            // Keras's SpatialDropout layers take no `trainable` argument.
            c["trainable"] = nil
            c["rate"] = jsonNumber(l.rate)
            c["seed"] = NSNull()
            if l.rank >= 2 { c["data_format"] = "channels_last" }
        default:
            throw KestrelError.invalidArgument(
                "\(layer.name) (\(layer.className)): saving this layer type in the Keras format is not supported yet")
        }
        if let r = layer.activityRegularizer, !(layer is ActivityRegularization) {
            c["activity_regularizer"] = regularizerConfig(r)
        }
        return (className, c)
    }

    private static func activationName(_ f: ActivationFunction, layer: Layer) throws -> String {
        // Keras names activations by string only with their default parameters.
        let defaults: Set<ActivationFunction> = [.elu, .gelu, .leakyRelu]
        switch f {
        case .elu, .gelu, .leakyRelu:
            guard defaults.contains(f) else {
                throw KestrelError.invalidArgument(
                    "\(layer.name) (\(layer.className)): activation \(f) has non-default parameters, which a Keras config cannot name; use a separate layer (ELU, LeakyReLU)")
            }
        default: break
        }
        return f.kerasName
    }

    static func initializerConfig(_ i: Initializer) -> [String: Any] {
        let (name, config): (String, [String: Any]) = switch i {
        case .zeros: ("Zeros", [:])
        case .ones: ("Ones", [:])
        case .constant(let v): ("Constant", ["value": jsonNumber(v)])
        case .randomUniform(let lo, let hi): ("RandomUniform", ["minval": jsonNumber(lo), "maxval": jsonNumber(hi), "seed": NSNull()])
        case .randomNormal(let m, let s): ("RandomNormal", ["mean": jsonNumber(m), "stddev": jsonNumber(s), "seed": NSNull()])
        case .glorotUniform: ("GlorotUniform", ["seed": NSNull()])
        case .glorotNormal: ("GlorotNormal", ["seed": NSNull()])
        case .heUniform: ("HeUniform", ["seed": NSNull()])
        case .heNormal: ("HeNormal", ["seed": NSNull()])
        case .lecunUniform: ("LecunUniform", ["seed": NSNull()])
        case .lecunNormal: ("LecunNormal", ["seed": NSNull()])
        case .truncatedNormal(let m, let s): ("TruncatedNormal", ["mean": jsonNumber(m), "stddev": jsonNumber(s), "seed": NSNull()])
        case .orthogonal(let gain): ("Orthogonal", ["gain": jsonNumber(gain), "seed": NSNull()])
        }
        return ["module": "keras.initializers", "class_name": name, "config": config, "registered_name": NSNull()]
    }

    /// `<weight>_regularizer` and `<weight>_constraint` for each named weight, and no
    /// `activity_regularizer` (`config(of:)` writes the layer's own, if it has one).
    private static func writePenalties(_ c: inout [String: Any], _ weights: [(String, Regularizer?, Constraint?)]) {
        for (weight, regularizer, constraint) in weights {
            c["\(weight)_regularizer"] = regularizerConfig(regularizer)
            c["\(weight)_constraint"] = constraintConfig(constraint)
        }
        c["activity_regularizer"] = NSNull()
    }

    /// A regularizer as Keras serialises it (`L1`, `L2` or `L1L2`), or null.
    static func regularizerConfig(_ r: Regularizer?) -> Any {
        guard let r else { return NSNull() }
        let config: [String: Any] = switch r.kerasName {
        case "L1": ["l1": jsonNumber(r.l1)]
        case "L2": ["l2": jsonNumber(r.l2)]
        default: ["l1": jsonNumber(r.l1), "l2": jsonNumber(r.l2)]
        }
        return ["module": "keras.regularizers", "class_name": r.kerasName, "config": config, "registered_name": NSNull()]
    }

    /// A constraint as Keras serialises it (`MaxNorm`, `NonNeg`, `UnitNorm`), or null.
    static func constraintConfig(_ c: Constraint?) -> Any {
        guard let c else { return NSNull() }
        func axis(_ axes: [Int]) -> Any { axes.count == 1 ? axes[0] : axes }
        let config: [String: Any] = switch c {
        case .maxNorm(let maxValue, let axes): ["max_value": jsonNumber(maxValue), "axis": axis(axes)]
        case .nonNeg: [:]
        case .unitNorm(let axes): ["axis": axis(axes)]
        }
        return ["module": "keras.constraints", "class_name": c.kerasName, "config": config, "registered_name": NSNull()]
    }

    // MARK: Reading

    /// The Keras layer classes this reader understands (besides InputLayer).
    static let supportedClasses = [
        "Dense", "Flatten", "Reshape", "Activation", "ReLU", "LeakyReLU", "Softmax", "Dropout",
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
        "Conv1D", "Conv2D", "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
        "BatchNormalization", "LayerNormalization", "Permute", "RepeatVector", "UpSampling2D", "ZeroPadding2D",
        "Cropping2D", "SpatialDropout1D", "SpatialDropout2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D",
        "Conv1DTranspose", "ZeroPadding1D", "Cropping1D", "UpSampling1D", "Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation",
        "RandomContrast", "RandomBrightness", "RandomCrop", "Embedding", "LSTM", "GRU", "SimpleRNN", "Bidirectional", "MultiHeadAttention",
        "ELU", "PReLU", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Identity", "ActivityRegularization", "UnitNormalization", "GroupNormalization",
        "Attention", "AdditiveAttention", "TimeDistributed", "RandomInvert", "RandomGrayscale", "Masking",
        "CategoryEncoding", "Discretization", "Hashing", "HashedCrossing",
        "Conv3D", "Conv3DTranspose", "MaxPooling3D", "AveragePooling3D", "GlobalMaxPooling3D", "GlobalAveragePooling3D",
        "ZeroPadding3D", "Cropping3D", "UpSampling3D", "SpatialDropout3D", "DepthwiseConv1D", "SeparableConv1D",
        "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    ]

    /// A layer from its Keras class name and config; throws for unknown classes and bad values.
    static func layer(className: String, config c: JSONObject) throws -> Layer {
        let name = try c.string("name")
        guard !name.isEmpty, name.count <= 256 else {
            throw KestrelError.fileError("\(c.context): layer name must be 1 to 256 characters")
        }
        try checkDType(c, integers: ["CategoryEncoding", "Discretization", "Hashing", "HashedCrossing"].contains(className))
        let layer: Layer
        switch className {
        case "Dense":
            let units = try c.int("units")
            guard units > 0, units <= 1 << 28 else {
                throw KestrelError.fileError("\(c.context): 'units' must be positive, found \(units)")
            }
            layer = Dense(units, activation: try activation(c, "activation"), useBias: try c.bool("use_bias", default: true),
                          kernelInitializer: try initializer(c, "kernel_initializer", default: .glorotUniform),
                          biasInitializer: try initializer(c, "bias_initializer", default: .zeros),
                          kernelRegularizer: try regularizer(c, "kernel_regularizer"),
                          biasRegularizer: try regularizer(c, "bias_regularizer"),
                          kernelConstraint: try constraint(c, "kernel_constraint"),
                          biasConstraint: try constraint(c, "bias_constraint"), name: name)
        case "Flatten":
            if let format = try c.optionalString("data_format"), format != "channels_last" {
                throw KestrelError.fileError("\(c.context): data_format '\(format)' is not supported (Kestrel is channels-last)")
            }
            layer = Flatten(name: name)
        case "Reshape":
            let target = try c.ints("target_shape")
            guard !target.isEmpty, target.count <= 8, target.allSatisfy({ $0 == -1 || ($0 > 0 && $0 <= 1 << 31) }) else {
                throw KestrelError.fileError("\(c.context): invalid target_shape \(target)")
            }
            layer = Reshape(target, name: name)
        case "Activation":
            layer = Activation(try activation(c, "activation"), name: name)
        case "ReLU":
            layer = ReLU(maxValue: try c.optionalFloat("max_value"), negativeSlope: try c.float("negative_slope", default: 0),
                         threshold: try c.float("threshold", default: 0), name: name)
        case "LeakyReLU":
            // Keras 2 called the slope `alpha`.
            let slope = c.has("negative_slope") ? try c.float("negative_slope") : try c.float("alpha", default: 0.3)
            layer = LeakyReLU(negativeSlope: slope, name: name)
        case "Softmax":
            layer = Softmax(axis: try c.int("axis", default: -1), name: name)
        case "Dropout":
            let rate = try c.float("rate")
            guard rate >= 0, rate < 1 else { throw KestrelError.fileError("\(c.context): Dropout rate must be in [0, 1), found \(rate)") }
            if c.has("noise_shape") {
                throw KestrelError.fileError("\(c.context): Dropout with a noise_shape is not supported")
            }
            layer = Dropout(rate, seed: seed(c), name: name)
        case "ELU":
            layer = ELU(alpha: try c.float("alpha", default: 1), name: name)
        case "PReLU":
            var shared: [Int]? = nil
            if c.has("shared_axes") {
                let axes = try (try? c.ints("shared_axes")) ?? [c.int("shared_axes")]
                guard axes.allSatisfy({ $0 >= 1 && $0 <= 8 }) else {
                    throw KestrelError.fileError("\(c.context): PReLU shared_axes must be axes 1...8 after the batch axis, found \(axes)")
                }
                shared = axes
            }
            layer = PReLU(alphaInitializer: try initializer(c, "alpha_initializer", default: .zeros),
                          alphaRegularizer: try regularizer(c, "alpha_regularizer"),
                          alphaConstraint: try constraint(c, "alpha_constraint"), sharedAxes: shared, name: name)
        case "GaussianNoise":
            let stddev = try c.float("stddev")
            guard stddev >= 0, stddev.isFinite else {
                throw KestrelError.fileError("\(c.context): GaussianNoise stddev must be finite and >= 0, found \(stddev)")
            }
            layer = GaussianNoise(stddev, seed: seed(c), name: name)
        case "GaussianDropout", "AlphaDropout":
            let rate = try c.float("rate")
            guard rate >= 0, rate < 1 else {
                throw KestrelError.fileError("\(c.context): \(className) rate must be in [0, 1), found \(rate)")
            }
            if c.has("noise_shape") {
                throw KestrelError.fileError("\(c.context): AlphaDropout with a noise_shape is not supported")
            }
            layer = className == "GaussianDropout" ? GaussianDropout(rate, seed: seed(c), name: name)
                                                   : AlphaDropout(rate, seed: seed(c), name: name)
        case "ActivityRegularization":
            layer = ActivityRegularization(l1: try c.float("l1", default: 0), l2: try c.float("l2", default: 0), name: name)
        case "Identity":
            layer = Identity(name: name)
        case "Masking":
            layer = Masking(maskValue: try c.float("mask_value", default: 0), name: name)
        case "CategoryEncoding":
            try notSparse(c, className)
            let tokens = try c.int("num_tokens")
            guard tokens >= 1, tokens <= 1 << 24 else {
                throw KestrelError.fileError("\(c.context): CategoryEncoding num_tokens must be 1 to 2^24, found \(tokens)")
            }
            var mode = try option(c, "output_mode", LookupOutputMode.multiHot, layer: className)
            if try c.optionalString("output_mode") == "binary" { mode = .multiHot }
            layer = try CategoryEncoding(numTokens: tokens, outputMode: mode, name: name)
        case "Hashing":
            try notSparse(c, className)
            let bins = try c.int("num_bins")
            guard bins >= 1, bins <= 1 << 24 else {
                throw KestrelError.fileError("\(c.context): Hashing num_bins must be 1 to 2^24, found \(bins)")
            }
            var mask: CategoricalValue?
            if let text = c.values["mask_value"] as? String {
                mask = .string(text)
            } else if c.has("mask_value") {
                guard let value = jsonInt(c.values["mask_value"]) else {
                    throw KestrelError.fileError("\(c.context): Hashing mask_value should be a string or an integer, found \(describeJSON(c.values["mask_value"]))")
                }
                mask = .integer(value)
            }
            var salt: [UInt64]?
            if let one = jsonInt(c.values["salt"]) {
                salt = [UInt64(bitPattern: Int64(one))]
            } else if c.has("salt") {
                let words = try c.array("salt").compactMap(jsonInt)
                guard words.count == 2 else {
                    throw KestrelError.fileError("\(c.context): Hashing salt should be an integer or a list of 2, found \(describeJSON(c.values["salt"]))")
                }
                salt = words.map { UInt64(bitPattern: Int64($0)) }
            }
            layer = try Hashing(numBins: bins, maskValue: mask, salt: salt,
                                outputMode: try option(c, "output_mode", LookupOutputMode.int, layer: className), name: name)
        case "HashedCrossing":
            try notSparse(c, className)
            let bins = try c.int("num_bins")
            guard bins >= 1, bins <= 1 << 24 else {
                throw KestrelError.fileError("\(c.context): HashedCrossing num_bins must be 1 to 2^24, found \(bins)")
            }
            layer = try HashedCrossing(numBins: bins, outputMode: try option(c, "output_mode", LookupOutputMode.int, layer: className),
                                       name: name)
        case "Discretization":
            try notSparse(c, className)
            var boundaries: [Float]?
            if c.has("bin_boundaries") {
                let list = try c.array("bin_boundaries")
                let values = list.compactMap(jsonDouble)
                guard values.count == list.count, values.count < 1 << 24 else {
                    throw KestrelError.fileError("\(c.context): Discretization bin_boundaries should be a list of numbers")
                }
                boundaries = values.map(Float.init)
            }
            let bins = c.has("num_bins") ? try c.int("num_bins") : nil
            let epsilon = c.has("epsilon") ? jsonDouble(c.values["epsilon"]) : 0.01
            guard let epsilon, epsilon > 0, epsilon < 1 else {
                throw KestrelError.fileError("\(c.context): Discretization epsilon should be a number between 0 and 1, found \(describeJSON(c.values["epsilon"]))")
            }
            let mode = try option(c, "output_mode", LookupOutputMode.int, layer: className)
            // Keras saves both once adapted: the boundaries are what the layer learned.
            // (The number of bins is then not kept: the loaded layer has its boundaries.)
            layer = try Discretization(binBoundaries: boundaries, numBins: boundaries == nil ? bins : nil,
                                       epsilon: epsilon, outputMode: mode, name: name)
        case "UnitNormalization":
            let axes = try (try? c.ints("axis")) ?? [c.int("axis", default: -1)]
            guard !axes.isEmpty, axes.count <= 8 else {
                throw KestrelError.fileError("\(c.context): UnitNormalization axis must name 1 to 8 axes, found \(axes)")
            }
            layer = axes.count == 1 ? UnitNormalization(axis: axes[0], name: name) : UnitNormalization(axes: axes, name: name)
        case "GroupNormalization":
            try lastAxis(c)
            let groups = try c.int("groups", default: 32)
            guard groups == -1 || (groups > 0 && groups <= 1 << 20) else {
                throw KestrelError.fileError("\(c.context): GroupNormalization groups must be positive or -1, found \(groups)")
            }
            layer = GroupNormalization(groups: groups, epsilon: try c.float("epsilon", default: 1e-3),
                                       center: try c.bool("center", default: true), scale: try c.bool("scale", default: true),
                                       betaInitializer: try initializer(c, "beta_initializer", default: .zeros),
                                       gammaInitializer: try initializer(c, "gamma_initializer", default: .ones),
                                       betaRegularizer: try regularizer(c, "beta_regularizer"),
                                       gammaRegularizer: try regularizer(c, "gamma_regularizer"),
                                       betaConstraint: try constraint(c, "beta_constraint"),
                                       gammaConstraint: try constraint(c, "gamma_constraint"), name: name)
        case "Attention", "AdditiveAttention":
            let dropout = try c.float("dropout", default: 0)
            guard dropout >= 0, dropout < 1 else {
                throw KestrelError.fileError("\(c.context): \(className) dropout must be in [0, 1), found \(dropout)")
            }
            if className == "Attention" {
                let mode = try c.optionalString("score_mode") ?? "dot"
                guard let scoreMode = Attention.ScoreMode(rawValue: mode) else {
                    throw KestrelError.fileError("\(c.context): Attention score_mode must be 'dot' or 'concat', found '\(mode.prefix(40))'")
                }
                layer = Attention(useScale: try c.bool("use_scale", default: false), scoreMode: scoreMode, dropout: dropout,
                                  seed: seed(c), name: name)
            } else {
                layer = AdditiveAttention(useScale: try c.bool("use_scale", default: true), dropout: dropout, seed: seed(c), name: name)
            }
        case "TimeDistributed":
            let entry = try c.object("layer")
            let innerClass = try entry.string("class_name")
            guard supportedClasses.contains(innerClass) else {
                throw unsupported(c, className, name, "layer", expected: "a layer class Kestrel reads")
            }
            let inner = try Self.layer(className: innerClass, config: try entry.object("config"))
            guard !(inner is ScoreAttention || inner is MultiHeadAttention || inner is ElementwiseMerge || inner is Concatenate
                    || inner is Dot) else {
                throw unsupported(c, className, name, "layer", expected: "a layer of one input", found: innerClass)
            }
            layer = TimeDistributed(inner, name: name)
        case "Add": layer = Add(name: name)
        case "Subtract": layer = Subtract(name: name)
        case "Multiply": layer = Multiply(name: name)
        case "Average": layer = Average(name: name)
        case "Maximum": layer = Maximum(name: name)
        case "Minimum": layer = Minimum(name: name)
        case "Concatenate":
            layer = Concatenate(axis: try c.int("axis", default: -1), name: name)
        case "Dot":
            let axes = try c.ints("axes", count: 2)
            layer = Dot(axes: (axes[0], axes[1]), normalize: try c.bool("normalize", default: false), name: name)
        case "Conv1D", "Conv2D", "Conv3D":
            let rank = Self.rank(className)
            try channelsLast(c)
            let filters = try c.int("filters")
            let kernel = try c.ints("kernel_size", count: rank)
            guard filters > 0, filters <= 1 << 20, kernel.allSatisfy({ $0 > 0 && $0 <= 1 << 12 }) else {
                throw KestrelError.fileError("\(c.context): invalid filters \(filters) or kernel_size \(kernel)")
            }
            let strides = try c.has("strides") ? c.ints("strides", count: rank) : Array(repeating: 1, count: rank)
            let dilation = try c.has("dilation_rate") ? c.ints("dilation_rate", count: rank) : Array(repeating: 1, count: rank)
            let padding = try self.padding(c)
            let args = (filters, SpatialSize(kernel), SpatialSize(strides), padding, SpatialSize(dilation), try c.int("groups", default: 1),
                        try activation(c, "activation"), try c.bool("use_bias", default: true),
                        try initializer(c, "kernel_initializer", default: .glorotUniform), try initializer(c, "bias_initializer", default: .zeros))
            let penalties = (try regularizer(c, "kernel_regularizer"), try regularizer(c, "bias_regularizer"),
                             try constraint(c, "kernel_constraint"), try constraint(c, "bias_constraint"))
            switch rank {
            case 3:
                layer = Conv3D(args.0, kernelSize: args.1, strides: args.2, padding: args.3, dilationRate: args.4, groups: args.5,
                               activation: args.6, useBias: args.7, kernelInitializer: args.8, biasInitializer: args.9,
                               kernelRegularizer: penalties.0, biasRegularizer: penalties.1,
                               kernelConstraint: penalties.2, biasConstraint: penalties.3, name: name)
            case 2:
                layer = Conv2D(args.0, kernelSize: args.1, strides: args.2, padding: args.3, dilationRate: args.4, groups: args.5,
                               activation: args.6, useBias: args.7, kernelInitializer: args.8, biasInitializer: args.9,
                               kernelRegularizer: penalties.0, biasRegularizer: penalties.1,
                               kernelConstraint: penalties.2, biasConstraint: penalties.3, name: name)
            default:
                layer = Conv1D(args.0, kernelSize: args.1, strides: args.2, padding: args.3, dilationRate: args.4, groups: args.5,
                               activation: args.6, useBias: args.7, kernelInitializer: args.8, biasInitializer: args.9,
                               kernelRegularizer: penalties.0, biasRegularizer: penalties.1,
                               kernelConstraint: penalties.2, biasConstraint: penalties.3, name: name)
            }
        case "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D":
            let rank = Self.rank(className)
            try channelsLast(c)
            let pool = try c.has("pool_size") ? c.ints("pool_size", count: rank) : Array(repeating: 2, count: rank)
            let strides = try c.has("strides") ? c.ints("strides", count: rank) : pool
            guard (pool + strides).allSatisfy({ $0 > 0 && $0 <= 1 << 12 }) else {
                throw KestrelError.fileError("\(c.context): invalid pool_size \(pool) or strides \(strides)")
            }
            let padding = try self.padding(c)
            switch className {
            case "MaxPooling2D": layer = MaxPooling2D(poolSize: SpatialSize(pool), strides: SpatialSize(strides), padding: padding, name: name)
            case "AveragePooling2D": layer = AveragePooling2D(poolSize: SpatialSize(pool), strides: SpatialSize(strides), padding: padding, name: name)
            case "MaxPooling1D": layer = MaxPooling1D(poolSize: SpatialSize(pool), strides: SpatialSize(strides), padding: padding, name: name)
            case "MaxPooling3D": layer = MaxPooling3D(poolSize: SpatialSize(pool), strides: SpatialSize(strides), padding: padding, name: name)
            case "AveragePooling3D": layer = AveragePooling3D(poolSize: SpatialSize(pool), strides: SpatialSize(strides), padding: padding, name: name)
            default: layer = AveragePooling1D(poolSize: SpatialSize(pool), strides: SpatialSize(strides), padding: padding, name: name)
            }
        case "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
             "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D":
            try channelsLast(c)
            let keep = try c.bool("keepdims", default: false)
            switch className {
            case "GlobalMaxPooling2D": layer = GlobalMaxPooling2D(keepDims: keep, name: name)
            case "GlobalAveragePooling2D": layer = GlobalAveragePooling2D(keepDims: keep, name: name)
            case "GlobalMaxPooling1D": layer = GlobalMaxPooling1D(keepDims: keep, name: name)
            case "GlobalMaxPooling3D": layer = GlobalMaxPooling3D(keepDims: keep, name: name)
            case "GlobalAveragePooling3D": layer = GlobalAveragePooling3D(keepDims: keep, name: name)
            default: layer = GlobalAveragePooling1D(keepDims: keep, name: name)
            }
        case "BatchNormalization":
            try lastAxis(c)
            try rejectUnsupported(c, ["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"])
            layer = BatchNormalization(momentum: try c.float("momentum", default: 0.99), epsilon: try c.float("epsilon", default: 1e-3),
                                       center: try c.bool("center", default: true), scale: try c.bool("scale", default: true),
                                       betaInitializer: try initializer(c, "beta_initializer", default: .zeros),
                                       gammaInitializer: try initializer(c, "gamma_initializer", default: .ones),
                                       movingMeanInitializer: try initializer(c, "moving_mean_initializer", default: .zeros),
                                       movingVarianceInitializer: try initializer(c, "moving_variance_initializer", default: .ones),
                                       name: name)
        case "LayerNormalization":
            try lastAxis(c)
            try rejectUnsupported(c, ["beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"])
            if try c.bool("rms_scaling", default: false) {
                throw KestrelError.fileError("\(c.context): LayerNormalization with rms_scaling is not supported")
            }
            layer = LayerNormalization(epsilon: try c.float("epsilon", default: 1e-3), center: try c.bool("center", default: true),
                                       scale: try c.bool("scale", default: true),
                                       betaInitializer: try initializer(c, "beta_initializer", default: .zeros),
                                       gammaInitializer: try initializer(c, "gamma_initializer", default: .ones), name: name)
        case "Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
             "SeparableConv1D", "SeparableConv2D":
            try channelsLast(c)
            let rank = Self.rank(className)
            let kernel = try c.ints("kernel_size", count: rank)
            let strides = try c.has("strides") ? c.ints("strides", count: rank) : Array(repeating: 1, count: rank)
            let outputPadding = try c.has("output_padding") ? c.ints("output_padding", count: rank) : nil
            if let extra = outputPadding, !zip(extra, strides).allSatisfy({ $0 >= 0 && $0 < $1 }) {
                throw KestrelError.fileError("\(c.context): output_padding must be non-negative and less than strides \(strides), found \(extra)")
            }
            let dilation = try c.has("dilation_rate") ? c.ints("dilation_rate", count: rank) : Array(repeating: 1, count: rank)
            let filters = className.hasPrefix("Depthwise") ? 1 : try c.int("filters")
            let multiplier = try c.int("depth_multiplier", default: 1)
            guard filters > 0, filters <= 1 << 20, multiplier > 0, multiplier <= 1 << 12,
                  (kernel + strides + dilation).allSatisfy({ $0 > 0 && $0 <= 1 << 12 }) else {
                throw KestrelError.fileError("\(c.context): invalid filters, depth_multiplier, kernel_size, strides or dilation_rate")
            }
            let padding = try self.padding(c)
            let activation = try activation(c, "activation"), useBias = try c.bool("use_bias", default: true)
            let bias = try initializer(c, "bias_initializer", default: .zeros)
            let biasRegularizer = try regularizer(c, "bias_regularizer"), biasConstraint = try constraint(c, "bias_constraint")
            switch className {
            case "Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose":
                let (kernelInitializer, kernelRegularizer) = (try initializer(c, "kernel_initializer", default: .glorotUniform),
                                                              try regularizer(c, "kernel_regularizer"))
                let kernelConstraint = try constraint(c, "kernel_constraint")
                if rank == 3 {
                    layer = Conv3DTranspose(filters, kernelSize: SpatialSize(kernel), strides: SpatialSize(strides), padding: padding,
                                            outputPadding: outputPadding.map(SpatialSize.init), dilationRate: SpatialSize(dilation),
                                            activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                                            biasInitializer: bias, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                                            kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, name: name)
                } else if rank == 1 {
                    layer = Conv1DTranspose(filters, kernelSize: SpatialSize(kernel), strides: SpatialSize(strides), padding: padding,
                                            outputPadding: outputPadding.map(SpatialSize.init), dilationRate: SpatialSize(dilation),
                                            activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                                            biasInitializer: bias, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                                            kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, name: name)
                } else {
                    layer = Conv2DTranspose(filters, kernelSize: SpatialSize(kernel), strides: SpatialSize(strides), padding: padding,
                                            outputPadding: outputPadding.map(SpatialSize.init), dilationRate: SpatialSize(dilation),
                                            activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                                            biasInitializer: bias, kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                                            kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, name: name)
                }
            case "DepthwiseConv1D", "DepthwiseConv2D":
                let args = (kernel: SpatialSize(kernel), strides: SpatialSize(strides), dilation: SpatialSize(dilation),
                            initializer: try initializer(c, "depthwise_initializer", default: .glorotUniform),
                            regularizer: try regularizer(c, "depthwise_regularizer"),
                            constraint: try constraint(c, "depthwise_constraint"))
                layer = rank == 1
                    ? DepthwiseConv1D(kernelSize: args.kernel, strides: args.strides, padding: padding,
                                      depthMultiplier: multiplier, dilationRate: args.dilation, activation: activation,
                                      useBias: useBias, depthwiseInitializer: args.initializer, biasInitializer: bias,
                                      depthwiseRegularizer: args.regularizer, biasRegularizer: biasRegularizer,
                                      depthwiseConstraint: args.constraint, biasConstraint: biasConstraint, name: name)
                    : DepthwiseConv2D(kernelSize: args.kernel, strides: args.strides, padding: padding,
                                      depthMultiplier: multiplier, dilationRate: args.dilation, activation: activation,
                                      useBias: useBias, depthwiseInitializer: args.initializer, biasInitializer: bias,
                                      depthwiseRegularizer: args.regularizer, biasRegularizer: biasRegularizer,
                                      depthwiseConstraint: args.constraint, biasConstraint: biasConstraint, name: name)
            default:
                let initializers = (depthwise: try initializer(c, "depthwise_initializer", default: .glorotUniform),
                                    pointwise: try initializer(c, "pointwise_initializer", default: .glorotUniform))
                let regularizers = (depthwise: try regularizer(c, "depthwise_regularizer"),
                                    pointwise: try regularizer(c, "pointwise_regularizer"))
                let constraints = (depthwise: try constraint(c, "depthwise_constraint"),
                                   pointwise: try constraint(c, "pointwise_constraint"))
                layer = rank == 1
                    ? SeparableConv1D(filters, kernelSize: SpatialSize(kernel), strides: SpatialSize(strides), padding: padding,
                                      depthMultiplier: multiplier, dilationRate: SpatialSize(dilation), activation: activation,
                                      useBias: useBias, depthwiseInitializer: initializers.depthwise,
                                      pointwiseInitializer: initializers.pointwise, biasInitializer: bias,
                                      depthwiseRegularizer: regularizers.depthwise, pointwiseRegularizer: regularizers.pointwise,
                                      biasRegularizer: biasRegularizer, depthwiseConstraint: constraints.depthwise,
                                      pointwiseConstraint: constraints.pointwise, biasConstraint: biasConstraint, name: name)
                    : SeparableConv2D(filters, kernelSize: SpatialSize(kernel), strides: SpatialSize(strides), padding: padding,
                                      depthMultiplier: multiplier, dilationRate: SpatialSize(dilation), activation: activation,
                                      useBias: useBias, depthwiseInitializer: initializers.depthwise,
                                      pointwiseInitializer: initializers.pointwise, biasInitializer: bias,
                                      depthwiseRegularizer: regularizers.depthwise, pointwiseRegularizer: regularizers.pointwise,
                                      biasRegularizer: biasRegularizer, depthwiseConstraint: constraints.depthwise,
                                      pointwiseConstraint: constraints.pointwise, biasConstraint: biasConstraint, name: name)
            }
        case "Permute":
            let dims = try c.ints("dims")
            guard !dims.isEmpty, dims.count <= 8, Set(dims) == Set(1...dims.count) else {
                throw KestrelError.fileError("\(c.context): 'dims' must be a permutation of 1…n, found \(dims)")
            }
            layer = Permute(dims, name: name)
        case "RepeatVector":
            let n = try c.int("n")
            guard n > 0, n <= 1 << 20 else { throw KestrelError.fileError("\(c.context): invalid n \(n)") }
            layer = RepeatVector(n, name: name)
        case "RandomRotation", "RandomZoom", "RandomTranslation", "RandomFlip":
            try channelsLast(c)
            let seed = Self.seed(c)
            if className == "RandomFlip" {
                layer = RandomFlip(mode: try option(c, "mode", FlipMode.horizontalAndVertical, layer: className), seed: seed, name: name)
                break
            }
            func range(_ key: String) throws -> AugmentationRange { try augmentationRange(c, key) }
            let fill = try option(c, "fill_mode", FillMode.reflect, layer: className)
            let interpolation = try option(c, "interpolation", Interpolation.bilinear, layer: className)
            let value = try c.float("fill_value", default: 0)
            switch className {
            case "RandomRotation":
                layer = RandomRotation(try range("factor"), fillMode: fill, interpolation: interpolation, seed: seed,
                                       fillValue: value, name: name)
            case "RandomZoom":
                layer = RandomZoom(heightFactor: try range("height_factor"),
                                   widthFactor: c.has("width_factor") ? try range("width_factor") : nil, fillMode: fill,
                                   interpolation: interpolation, seed: seed, fillValue: value, name: name)
            default:
                layer = RandomTranslation(heightFactor: try range("height_factor"), widthFactor: try range("width_factor"),
                                          fillMode: fill, interpolation: interpolation, seed: seed, fillValue: value, name: name)
            }
        case "RandomInvert":
            try channelsLast(c)
            layer = RandomInvert(factor: c.has("factor") ? try augmentationRange(c, "factor") : 1.0,
                                 valueRange: try valueRange(c, default: 0...255), seed: Self.seed(c), name: name)
        case "RandomGrayscale":
            try channelsLast(c)
            layer = RandomGrayscale(factor: try c.float("factor", default: 0.5), seed: Self.seed(c), name: name)
        case "RandomContrast", "RandomBrightness":
            try channelsLast(c)
            let valueRange = try valueRange(c)
            var factor = try augmentationRange(c, "factor")
            if className == "RandomContrast" {
                // Keras reads one number f as [0, f] (contrast 1…1 + f); Kestrel's own archives write the pair.
                if factor.values.count == 1 { factor = AugmentationRange(0, factor.values[0]) }
                layer = RandomContrast(factor, valueRange: valueRange, seed: Self.seed(c), name: name)
            } else {
                layer = RandomBrightness(factor, valueRange: valueRange, seed: Self.seed(c), name: name)
            }
        case "RandomCrop":
            try channelsLast(c)
            let height = try c.int("height"), width = try c.int("width")
            guard height > 0, width > 0, height <= 1 << 16, width <= 1 << 16 else {
                throw KestrelError.fileError("\(c.context): invalid RandomCrop size \(height) × \(width)")
            }
            layer = RandomCrop(height, width, seed: Self.seed(c), name: name)
        case "CenterCrop":
            try channelsLast(c)
            let height = try c.int("height"), width = try c.int("width")
            guard height > 0, width > 0, height <= 1 << 16, width <= 1 << 16 else {
                throw KestrelError.fileError("\(c.context): invalid CenterCrop size \(height) × \(width)")
            }
            layer = CenterCrop(height, width, name: name)
        case "Resizing":
            try channelsLast(c)
            let height = try c.int("height"), width = try c.int("width")
            guard height > 0, width > 0, height <= 1 << 16, width <= 1 << 16 else {
                throw KestrelError.fileError("\(c.context): invalid Resizing size \(height) × \(width)")
            }
            let interpolation = try option(c, "interpolation", Interpolation.bilinear, layer: className)
            for key in ["pad_to_aspect_ratio", "antialias"] where try c.bool(key, default: false) {
                throw KestrelError.fileError("\(c.context): Resizing with \(key) is not supported")
            }
            layer = Resizing(height, width, interpolation: interpolation,
                             cropToAspectRatio: try c.bool("crop_to_aspect_ratio", default: false), name: name)
        case "Rescaling":
            guard let scale = jsonDouble(c.values["scale"]), scale.isFinite else {
                throw KestrelError.fileError("\(c.context): Rescaling scale must be one number (per-channel scales are not supported), found \(describeJSON(c.values["scale"]))")
            }
            let offset = c.has("offset") ? jsonDouble(c.values["offset"]) : 0
            guard let offset, offset.isFinite else {
                throw KestrelError.fileError("\(c.context): Rescaling offset must be one number, found \(describeJSON(c.values["offset"]))")
            }
            layer = Rescaling(Float(scale), offset: Float(offset), name: name)
        case "Normalization":
            // Keras's default is the last axis; null (its axis=None) keeps none.
            var axes = [-1]
            if let value = c.values["axis"] {
                if value is NSNull { axes = [] } else if let one = jsonInt(value) { axes = [one] } else { axes = try c.ints("axis") }
            }
            guard axes.count <= 8, axes.allSatisfy({ abs($0) <= 8 }) else {
                throw KestrelError.fileError("\(c.context): invalid Normalization axis \(axes)")
            }
            // A given mean and variance: a number or (nested) lists of numbers.
            func statistics(_ key: String) throws -> [Float]? {
                guard c.has(key) else { return nil }
                var values: [Float] = []
                func collect(_ value: Any?, depth: Int) throws {
                    if let d = jsonDouble(value), d.isFinite, values.count < 1 << 24 {
                        values.append(Float(d))
                    } else if let list = value as? [Any], depth < 8 {
                        for v in list { try collect(v, depth: depth + 1) }
                    } else {
                        throw KestrelError.fileError("\(c.context): Normalization '\(key)' should be a number or lists of numbers")
                    }
                }
                try collect(c.values[key], depth: 0)
                return values
            }
            layer = Normalization(axis: axes, mean: try statistics("mean"), variance: try statistics("variance"),
                                  invert: try c.bool("invert", default: false), name: name)
        case "UpSampling2D":
            try channelsLast(c)
            let interpolation = try option(c, "interpolation", Interpolation.nearest, layer: className)
            let size = try c.ints("size", count: 2)
            guard size.allSatisfy({ $0 > 0 && $0 <= 1 << 10 }) else { throw KestrelError.fileError("\(c.context): invalid size \(size)") }
            layer = UpSampling2D(size: SpatialSize(size), interpolation: interpolation, name: name)
        case "ZeroPadding2D", "Cropping2D":
            try channelsLast(c)
            let key = className == "ZeroPadding2D" ? "padding" : "cropping"
            let amounts = try borderAmounts(c, key)
            layer = className == "ZeroPadding2D" ? ZeroPadding2D(padding: amounts, name: name) : Cropping2D(cropping: amounts, name: name)
        case "ZeroPadding3D", "Cropping3D":
            try channelsLast(c)
            let key = className == "ZeroPadding3D" ? "padding" : "cropping"
            let amounts = try borderAmounts(c, key, rank: 3)
            layer = className == "ZeroPadding3D" ? ZeroPadding3D(padding: amounts, name: name) : Cropping3D(cropping: amounts, name: name)
        case "UpSampling3D":
            try channelsLast(c)
            let size = try c.ints("size", count: 3)
            guard size.allSatisfy({ $0 > 0 && $0 <= 1 << 10 }) else { throw KestrelError.fileError("\(c.context): invalid size \(size)") }
            layer = UpSampling3D(size: SpatialSize(size), name: name)
        case "ZeroPadding1D", "Cropping1D":
            try channelsLast(c)
            let key = className == "ZeroPadding1D" ? "padding" : "cropping"
            let amounts = try c.ints(key, count: 2)
            guard amounts.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else {
                throw KestrelError.fileError("\(c.context): invalid \(key) \(amounts)")
            }
            layer = className == "ZeroPadding1D" ? ZeroPadding1D(padding: amounts, name: name) : Cropping1D(cropping: amounts, name: name)
        case "UpSampling1D":
            let size = try c.int("size", default: 2)
            guard size > 0, size <= 1 << 10 else { throw KestrelError.fileError("\(c.context): invalid size \(size)") }
            layer = UpSampling1D(size: size, name: name)
        case "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D":
            try channelsLast(c)
            let rate = try c.float("rate")
            guard rate >= 0, rate < 1 else { throw KestrelError.fileError("\(c.context): rate must be in [0, 1), found \(rate)") }
            let seed = Self.seed(c)
            switch className {
            case "SpatialDropout3D": layer = SpatialDropout3D(rate, seed: seed, name: name)
            case "SpatialDropout2D": layer = SpatialDropout2D(rate, seed: seed, name: name)
            default: layer = SpatialDropout1D(rate, seed: seed, name: name)
            }
        case "Embedding":
            let inputDim = try c.int("input_dim"), outputDim = try c.int("output_dim")
            guard inputDim > 0, inputDim <= 1 << 28, outputDim > 0, outputDim <= 1 << 20 else {
                throw KestrelError.fileError("\(c.context): invalid input_dim \(inputDim) or output_dim \(outputDim)")
            }
            try requireDefaults(c, className, name, null: ["quantization_config", "lora_rank"])
            layer = Embedding(inputDim: inputDim, outputDim: outputDim,
                              embeddingsInitializer: try initializer(c, "embeddings_initializer", default: .randomUniform),
                              embeddingsRegularizer: try regularizer(c, "embeddings_regularizer"),
                              embeddingsConstraint: try constraint(c, "embeddings_constraint"),
                              maskZero: try c.bool("mask_zero", default: false), name: name)
        case "LSTM", "GRU", "SimpleRNN":
            let units = try c.int("units")
            guard units > 0, units <= 1 << 20 else { throw KestrelError.fileError("\(c.context): 'units' must be positive, found \(units)") }
            // `unroll` only changes how Keras schedules the steps: it is accepted.
            try requireDefaults(c, className, name, false: ["stateful"])
            let returnState = try c.bool("return_state", default: false)
            let kernelRegularizer = try regularizer(c, "kernel_regularizer")
            let recurrentRegularizer = try regularizer(c, "recurrent_regularizer")
            let biasRegularizer = try regularizer(c, "bias_regularizer")
            let kernelConstraint = try constraint(c, "kernel_constraint")
            let recurrentConstraint = try constraint(c, "recurrent_constraint")
            let biasConstraint = try constraint(c, "bias_constraint")
            let activationFunction = c.has("activation") ? try activation(c, "activation") : .tanh
            let recurrentActivation = c.has("recurrent_activation") ? try activation(c, "recurrent_activation") : .sigmoid
            let useBias = try c.bool("use_bias", default: true)
            let kernel = try initializer(c, "kernel_initializer", default: .glorotUniform)
            let recurrent = try initializer(c, "recurrent_initializer", default: .orthogonal)
            let bias = try initializer(c, "bias_initializer", default: .zeros)
            let sequences = try c.bool("return_sequences", default: false), backwards = try c.bool("go_backwards", default: false)
            let dropout = try c.float("dropout", default: 0), dropoutSeed = seed(c)
            let zeroOutput = try c.bool("zero_output_for_mask", default: false)
            let recurrentDropout = try c.float("recurrent_dropout", default: 0)
            guard recurrentDropout >= 0, recurrentDropout < 1 else {
                throw KestrelError.fileError("\(c.context): \(className) recurrent_dropout must be in [0, 1), found \(recurrentDropout)")
            }
            guard dropout >= 0, dropout < 1 else {
                throw KestrelError.fileError("\(c.context): \(className) dropout must be in [0, 1), found \(dropout)")
            }
            switch className {
            case "LSTM":
                layer = LSTM(units, activation: activationFunction, recurrentActivation: recurrentActivation, useBias: useBias,
                             kernelInitializer: kernel, recurrentInitializer: recurrent, biasInitializer: bias,
                             unitForgetBias: try c.bool("unit_forget_bias", default: true),
                             kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer,
                             biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint,
                             recurrentConstraint: recurrentConstraint, biasConstraint: biasConstraint, dropout: dropout,
                             recurrentDropout: recurrentDropout, seed: dropoutSeed,
                             returnSequences: sequences, returnState: returnState, goBackwards: backwards,
                             zeroOutputForMask: zeroOutput, name: name)
            case "GRU":
                layer = GRU(units, activation: activationFunction, recurrentActivation: recurrentActivation, useBias: useBias,
                            kernelInitializer: kernel, recurrentInitializer: recurrent, biasInitializer: bias,
                            kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer,
                            biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint,
                            recurrentConstraint: recurrentConstraint, biasConstraint: biasConstraint,
                            dropout: dropout, recurrentDropout: recurrentDropout, seed: dropoutSeed,
                            returnSequences: sequences, returnState: returnState, goBackwards: backwards,
                            zeroOutputForMask: zeroOutput, resetAfter: try c.bool("reset_after", default: true),
                            name: name)
            default:
                layer = SimpleRNN(units, activation: activationFunction, useBias: useBias, kernelInitializer: kernel,
                                  recurrentInitializer: recurrent, biasInitializer: bias,
                                  kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer,
                                  biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint,
                                  recurrentConstraint: recurrentConstraint, biasConstraint: biasConstraint, dropout: dropout,
                                  recurrentDropout: recurrentDropout, seed: dropoutSeed,
                                  returnSequences: sequences, returnState: returnState, goBackwards: backwards,
                                  zeroOutputForMask: zeroOutput, name: name)
            }
        case "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D":
            let rank = Self.rank(className)
            try channelsLast(c)
            try requireDefaults(c, className, name, false: ["stateful"])
            let filters = try c.int("filters")
            let kernel = try c.ints("kernel_size", count: rank)
            guard filters > 0, filters <= 1 << 20, kernel.allSatisfy({ $0 > 0 && $0 <= 1 << 12 }) else {
                throw KestrelError.fileError("\(c.context): invalid filters \(filters) or kernel_size \(kernel)")
            }
            let strides = try c.has("strides") ? c.ints("strides", count: rank) : Array(repeating: 1, count: rank)
            let dilation = try c.has("dilation_rate") ? c.ints("dilation_rate", count: rank) : Array(repeating: 1, count: rank)
            let dropout = try c.float("dropout", default: 0), recurrentDropout = try c.float("recurrent_dropout", default: 0)
            for (key, rate) in [("dropout", dropout), ("recurrent_dropout", recurrentDropout)] where !(rate >= 0 && rate < 1) {
                throw KestrelError.fileError("\(c.context): \(className) \(key) must be in [0, 1), found \(rate)")
            }
            let arguments = (filters: filters, kernel: SpatialSize(kernel), strides: SpatialSize(strides),
                             padding: try self.padding(c), dilation: SpatialSize(dilation),
                             activation: c.has("activation") ? try activation(c, "activation") : .tanh,
                             recurrentActivation: c.has("recurrent_activation") ? try activation(c, "recurrent_activation") : .sigmoid,
                             useBias: try c.bool("use_bias", default: true),
                             kernelInitializer: try initializer(c, "kernel_initializer", default: .glorotUniform),
                             recurrentInitializer: try initializer(c, "recurrent_initializer", default: .orthogonal),
                             biasInitializer: try initializer(c, "bias_initializer", default: .zeros),
                             unitForgetBias: try c.bool("unit_forget_bias", default: true))
            let penalties = (kernel: try regularizer(c, "kernel_regularizer"), recurrent: try regularizer(c, "recurrent_regularizer"),
                             bias: try regularizer(c, "bias_regularizer"), kernelConstraint: try constraint(c, "kernel_constraint"),
                             recurrentConstraint: try constraint(c, "recurrent_constraint"),
                             biasConstraint: try constraint(c, "bias_constraint"))
            let outputs = (sequences: try c.bool("return_sequences", default: false), state: try c.bool("return_state", default: false),
                           backwards: try c.bool("go_backwards", default: false))
            let a = arguments, p = penalties, o = outputs
            switch rank {
            case 1:
                layer = ConvLSTM1D(a.filters, kernelSize: a.kernel, strides: a.strides, padding: a.padding, dilationRate: a.dilation,
                                   activation: a.activation, recurrentActivation: a.recurrentActivation, useBias: a.useBias,
                                   kernelInitializer: a.kernelInitializer, recurrentInitializer: a.recurrentInitializer,
                                   biasInitializer: a.biasInitializer, unitForgetBias: a.unitForgetBias, kernelRegularizer: p.kernel,
                                   recurrentRegularizer: p.recurrent, biasRegularizer: p.bias, kernelConstraint: p.kernelConstraint,
                                   recurrentConstraint: p.recurrentConstraint, biasConstraint: p.biasConstraint, dropout: dropout,
                                   recurrentDropout: recurrentDropout, seed: seed(c), returnSequences: o.sequences,
                                   returnState: o.state, goBackwards: o.backwards, name: name)
            case 2:
                layer = ConvLSTM2D(a.filters, kernelSize: a.kernel, strides: a.strides, padding: a.padding, dilationRate: a.dilation,
                                   activation: a.activation, recurrentActivation: a.recurrentActivation, useBias: a.useBias,
                                   kernelInitializer: a.kernelInitializer, recurrentInitializer: a.recurrentInitializer,
                                   biasInitializer: a.biasInitializer, unitForgetBias: a.unitForgetBias, kernelRegularizer: p.kernel,
                                   recurrentRegularizer: p.recurrent, biasRegularizer: p.bias, kernelConstraint: p.kernelConstraint,
                                   recurrentConstraint: p.recurrentConstraint, biasConstraint: p.biasConstraint, dropout: dropout,
                                   recurrentDropout: recurrentDropout, seed: seed(c), returnSequences: o.sequences,
                                   returnState: o.state, goBackwards: o.backwards, name: name)
            default:
                layer = ConvLSTM3D(a.filters, kernelSize: a.kernel, strides: a.strides, padding: a.padding, dilationRate: a.dilation,
                                   activation: a.activation, recurrentActivation: a.recurrentActivation, useBias: a.useBias,
                                   kernelInitializer: a.kernelInitializer, recurrentInitializer: a.recurrentInitializer,
                                   biasInitializer: a.biasInitializer, unitForgetBias: a.unitForgetBias, kernelRegularizer: p.kernel,
                                   recurrentRegularizer: p.recurrent, biasRegularizer: p.bias, kernelConstraint: p.kernelConstraint,
                                   recurrentConstraint: p.recurrentConstraint, biasConstraint: p.biasConstraint, dropout: dropout,
                                   recurrentDropout: recurrentDropout, seed: seed(c), returnSequences: o.sequences,
                                   returnState: o.state, goBackwards: o.backwards, name: name)
            }
        case "Bidirectional":
            // Keras's merge_mode null returns the two halves as a list, which Kestrel's layers cannot.
            if c.values["merge_mode"] is NSNull {
                throw unsupported(c, className, name, "merge_mode", expected: "concat, sum, mul or ave")
            }
            let merge = try option(c, "merge_mode", BidirectionalMerge.concat, layer: className)
            func half(_ key: String) throws -> RecurrentLayer {
                let entry = try c.object(key)
                let halfClass = try entry.string("class_name")
                guard ["LSTM", "GRU", "SimpleRNN"].contains(halfClass),
                      let half = try Self.layer(className: halfClass, config: try entry.object("config")) as? RecurrentLayer else {
                    throw unsupported(c, className, name, key, expected: "an LSTM, GRU or SimpleRNN")
                }
                return half
            }
            let forward = try half("layer")
            layer = Bidirectional(forward, mergeMode: merge, backwardLayer: c.has("backward_layer") ? try half("backward_layer") : nil,
                                  name: name)
        case "MultiHeadAttention":
            let heads = try c.int("num_heads"), keyDim = try c.int("key_dim"), valueDim = try c.int("value_dim", default: keyDim)
            guard [heads, keyDim, valueDim].allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else {
                throw KestrelError.fileError("\(c.context): invalid num_heads \(heads), key_dim \(keyDim) or value_dim \(valueDim)")
            }
            // An output size: Keras writes it as a one-element shape, and accepts a bare integer.
            var outputSize: Int?
            if c.has("output_shape") {
                let sizes = try c.ints("output_shape", count: jsonInt(c.values["output_shape"]) == nil ? nil : 1)
                guard sizes.count == 1, sizes[0] > 0, sizes[0] <= 1 << 20 else {
                    throw unsupported(c, className, name, "output_shape", expected: "null or one positive size")
                }
                outputSize = sizes[0]
            }
            // Attention over the time axis (Keras's default for sequences, written [1] once built).
            if c.has("attention_axes") {
                let axes = try? c.ints("attention_axes", count: jsonInt(c.values["attention_axes"]) == nil ? nil : 1)
                guard axes == [1] else {
                    throw unsupported(c, className, name, "attention_axes", expected: "null or [1]")
                }
            }
            try requireDefaults(c, className, name, false: ["use_gate"], null: ["sliding_window"])
            let dropout = try c.float("dropout", default: 0)
            guard dropout >= 0, dropout < 1 else {
                throw KestrelError.fileError("\(c.context): MultiHeadAttention dropout must be in [0, 1), found \(dropout)")
            }
            layer = MultiHeadAttention(numHeads: heads, keyDim: keyDim, valueDim: valueDim, dropout: dropout,
                                       useBias: try c.bool("use_bias", default: true), outputShape: outputSize,
                                       kernelInitializer: try initializer(c, "kernel_initializer", default: .glorotUniform),
                                       biasInitializer: try initializer(c, "bias_initializer", default: .zeros),
                                       kernelRegularizer: try regularizer(c, "kernel_regularizer"),
                                       biasRegularizer: try regularizer(c, "bias_regularizer"),
                                       kernelConstraint: try constraint(c, "kernel_constraint"),
                                       biasConstraint: try constraint(c, "bias_constraint"), seed: seed(c), name: name)
        default:
            throw KestrelError.fileError(
                "\(c.context): unknown or unsupported layer class '\(className.prefix(80))'; Kestrel reads \(supportedClasses.joined(separator: ", "))")
        }
        // Any Keras layer may carry an activity regularizer (ActivityRegularization's is its l1 and l2).
        if !(layer is ActivityRegularization) { layer.activityRegularizer = try regularizer(c, "activity_regularizer") }
        layer.trainable = try c.bool("trainable", default: true)
        return layer
    }

    private static func channelsLast(_ c: JSONObject) throws {
        if let format = try c.optionalString("data_format"), format != "channels_last" {
            throw KestrelError.fileError("\(c.context): data_format '\(format.prefix(40))' is not supported (Kestrel is channels-last)")
        }
    }

    /// Keras's border amounts: one integer, a pair (symmetric per axis), or
    /// `[[top, bottom], [left, right]]`.
    /// The spatial axes a Keras class name ending in "1D", "2D" or "3D" (before any
    /// "Transpose") works on.
    private static func rank(_ className: String) -> Int {
        className.contains("3D") ? 3 : className.contains("2D") ? 2 : 1
    }

    /// A ZeroPadding/Cropping amount for `rank` axes: one integer, one per axis, or a
    /// (before, after) pair per axis.
    private static func borderAmounts(_ c: JSONObject, _ key: String, rank: Int = 2) throws -> [[Int]] {
        let layout = rank == 2 ? "[[top, bottom], [left, right]]" : "[[front, back], [top, bottom], [left, right]]"
        let fail = KestrelError.fileError("\(c.context): '\(key)' should be an integer, \(rank) integers or \(layout)")
        var amounts: [[Int]]
        if let i = jsonInt(c.values[key]) {
            amounts = Array(repeating: [i, i], count: rank)
        } else if let list = c.values[key] as? [Any], list.count == rank {
            if let each = list.map(jsonInt) as? [Int] {
                amounts = each.map { [$0, $0] }
            } else {
                amounts = try list.map { v -> [Int] in
                    guard let p = (v as? [Any])?.map(jsonInt) as? [Int], p.count == 2 else { throw fail }
                    return p
                }
            }
        } else {
            throw fail
        }
        guard amounts.joined().allSatisfy({ $0 >= 0 && $0 <= 1 << 16 }) else { throw fail }
        return amounts
    }

    private static func padding(_ c: JSONObject) throws -> Padding {
        let name = try c.optionalString("padding") ?? "valid"
        guard let p = Padding(rawValue: name.lowercased()) else {
            throw KestrelError.fileError("\(c.context): unknown padding '\(name.prefix(40))'")
        }
        return p
    }

    /// Normalization over the last axis only (Keras's default, given as -1 or a list [-1]).
    private static func lastAxis(_ c: JSONObject) throws {
        guard c.has("axis") else { return }
        let axes = try (try? c.ints("axis")) ?? [c.int("axis")]
        guard axes == [-1] else {
            throw KestrelError.fileError("\(c.context): normalization over axis \(axes) is not supported; Kestrel reads axis -1")
        }
    }

    /// Accepts a dtype given as a string or a DTypePolicy object, as Keras writes either; only
    /// float32 computation is supported.
    /// Refuses dtypes other than float32; `integers` allows the integer dtypes Keras gives the
    /// categorical layers (their outputs are whole numbers, exact in float32).
    static func checkDType(_ c: JSONObject, integers: Bool = false) throws {
        guard c.has("dtype") else { return }
        var name: String?
        if let s = c.values["dtype"] as? String {
            name = s
        } else if let policy = c.values["dtype"] as? [String: Any] {
            name = (policy["config"] as? [String: Any])?["name"] as? String
        }
        guard let name else { throw KestrelError.fileError("\(c.context): 'dtype' should be a string or a DTypePolicy") }
        guard name == "float32" || integers && ["int32", "int64"].contains(name) else {
            throw KestrelError.fileError("\(c.context): dtype '\(name.prefix(40))' is not supported; Kestrel computes in float32")
        }
    }

    private static func activation(_ c: JSONObject, _ key: String) throws -> ActivationFunction {
        guard c.has(key) else { return .linear }
        guard let name = c.values[key] as? String else {
            throw KestrelError.fileError("\(c.context): '\(key)' should be an activation name; custom activation objects are not supported")
        }
        do { return try ActivationFunction(named: name) } catch {
            throw KestrelError.fileError("\(c.context): unknown activation '\(name.prefix(40))'")
        }
    }

    /// An initializer from a Keras config (a string or an object); unknown ones fall back to
    /// the layer's default, since a loaded layer's weights come from the file anyway.
    private static func initializer(_ c: JSONObject, _ key: String, default fallback: Initializer) throws -> Initializer {
        guard c.has(key) else { return fallback }
        var className: String?
        var config: [String: Any] = [:]
        if let s = c.values[key] as? String {
            className = s.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
        } else if let o = c.values[key] as? [String: Any] {
            className = o["class_name"] as? String
            config = o["config"] as? [String: Any] ?? [:]
        }
        func number(_ k: String, _ d: Float) -> Float { jsonDouble(config[k]).map { Float($0) } ?? d }
        switch className {
        case "Zeros": return .zeros
        case "Ones": return .ones
        case "Constant": return .constant(number("value", 0))
        case "RandomUniform": return .randomUniform(minval: number("minval", -0.05), maxval: number("maxval", 0.05))
        case "RandomNormal": return .randomNormal(mean: number("mean", 0), stddev: number("stddev", 0.05))
        case "GlorotUniform": return .glorotUniform
        case "GlorotNormal": return .glorotNormal
        case "HeUniform": return .heUniform
        case "HeNormal": return .heNormal
        case "LecunUniform": return .lecunUniform
        case "LecunNormal": return .lecunNormal
        case "TruncatedNormal": return .truncatedNormal(mean: number("mean", 0), stddev: number("stddev", 0.05))
        case "Orthogonal": return .orthogonal(gain: number("gain", 1))
        default: return fallback
        }
    }

    /// A Keras class name and config from a string alias ("l2", "max_norm") or a serialised object.
    private static func kerasObject(_ c: JSONObject, _ key: String) throws -> (className: String, config: [String: Any])? {
        guard c.has(key) else { return nil }
        if let alias = c.values[key] as? String {
            return (alias.split(separator: "_").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(), [:])
        }
        guard let o = c.values[key] as? [String: Any], let className = o["class_name"] as? String else {
            throw KestrelError.fileError("\(c.context): '\(key)' should be a name or a serialised Keras object")
        }
        return (className, o["config"] as? [String: Any] ?? [:])
    }

    /// A non-negative finite factor from a regularizer or constraint config.
    private static func factor(_ config: [String: Any], _ name: String, default value: Float,
                               _ c: JSONObject, _ key: String) throws -> Float {
        guard let raw = config[name], !(raw is NSNull) else { return value }
        guard let d = jsonDouble(raw), d.isFinite, d >= 0 else {
            throw KestrelError.fileError("\(c.context): '\(key)' needs a non-negative number for '\(name)'")
        }
        return Float(d)
    }

    /// A weight regularizer (`L1`, `L2`, `L1L2`); others throw, since dropping one would
    /// silently change what training minimises.
    private static func regularizer(_ c: JSONObject, _ key: String) throws -> Regularizer? {
        guard let (className, config) = try kerasObject(c, key) else { return nil }
        switch className {
        case "L1": return .l1(try factor(config, "l1", default: 0.01, c, key))
        case "L2": return .l2(try factor(config, "l2", default: 0.01, c, key))
        case "L1L2", "L1L2Regularizer":
            return .l1l2(l1: try factor(config, "l1", default: 0, c, key), l2: try factor(config, "l2", default: 0, c, key))
        default:
            throw KestrelError.fileError(
                "\(c.context): '\(key)' is a \(className.prefix(40)) regularizer; Kestrel implements L1, L2 and L1L2")
        }
    }

    /// A weight constraint (`MaxNorm`, `NonNeg`, `UnitNorm`); others throw.
    private static func constraint(_ c: JSONObject, _ key: String) throws -> Constraint? {
        guard let (className, config) = try kerasObject(c, key) else { return nil }
        func axes() throws -> [Int] {
            guard let raw = config["axis"], !(raw is NSNull) else { return [0] }
            if let a = jsonInt(raw) { return [a] }
            if let list = raw as? [Any], !list.isEmpty, list.count <= 8 {
                let ints = list.compactMap(jsonInt)
                if ints.count == list.count { return ints }
            }
            throw KestrelError.fileError("\(c.context): '\(key)' needs an integer or a list of integers for 'axis'")
        }
        switch className {
        case "MaxNorm": return .maxNorm(maxValue: try factor(config, "max_value", default: 2, c, key), axes: try axes())
        case "NonNeg": return .nonNeg
        case "UnitNorm": return .unitNorm(axes: try axes())
        default:
            throw KestrelError.fileError(
                "\(c.context): '\(key)' is a \(className.prefix(40)) constraint; Kestrel implements MaxNorm, NonNeg and UnitNorm")
        }
    }

    /// Options Kestrel does not implement (activity regularizers, penalties on normalization
    /// weights): refusing the layer is better than training it without them.
    /// A string option naming one case of `E` (Keras lowercases these), or `fallback` when
    /// absent; anything else is refused with the choices Kestrel has.
    /// Refuses Keras's `sparse=True`: Kestrel's tensors are dense.
    private static func notSparse(_ c: JSONObject, _ layer: String) throws {
        if try c.bool("sparse", default: false) {
            throw KestrelError.fileError("\(c.context): \(layer) with sparse=true is not supported (Kestrel's outputs are dense)")
        }
    }

    private static func option<E: RawRepresentable & CaseIterable>(_ c: JSONObject, _ key: String, _ fallback: E,
                                                                    layer: String) throws -> E where E.RawValue == String {
        guard let text = try c.optionalString(key) else { return fallback }
        if let value = E(rawValue: text.lowercased()) { return value }
        let names = E.allCases.map(\.rawValue)
        let list = names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " and " + names.last!
        throw KestrelError.fileError("\(c.context): \(layer) \(key) '\(text.prefix(40))' is not supported (only \(list))")
    }

    /// The name Keras gives a Bidirectional's forward half: "forward_" and the layer's name
    /// (without a "forward_" it already has, so that names survive a round trip).
    static func bidirectionalForwardName(_ l: Bidirectional) -> String {
        let name = l.forwardLayer.name
        return name.hasPrefix("forward_") ? name : "forward_" + name
    }

    /// A Keras augmentation factor: one number or a list of two.
    /// An augmentation's `value_range`, two finite numbers in either order; `fallback` when absent
    /// (without one, an absent range is an error).
    private static func valueRange(_ c: JSONObject, default fallback: ClosedRange<Float>? = nil) throws -> ClosedRange<Float> {
        if let fallback, !c.has("value_range") { return fallback }
        guard let list = c.values["value_range"] as? [Any], list.count == 2, let a = jsonDouble(list[0]),
              let b = jsonDouble(list[1]), a.isFinite, b.isFinite else {
            throw KestrelError.fileError("\(c.context): 'value_range' should be a list of two numbers, found \(describeJSON(c.values["value_range"]))")
        }
        return Float(min(a, b))...Float(max(a, b))
    }

    private static func augmentationRange(_ c: JSONObject, _ key: String) throws -> AugmentationRange {
        if let one = jsonDouble(c.values[key]) { return AugmentationRange(Float(one)) }
        guard let list = c.values[key] as? [Any], list.count == 2, let a = jsonDouble(list[0]), let b = jsonDouble(list[1]) else {
            throw KestrelError.fileError("\(c.context): '\(key)' should be a number or a list of two numbers, found \(describeJSON(c.values[key]))")
        }
        return AugmentationRange(Float(a), Float(b))
    }

    /// An augmentation factor as Keras writes it: the number, or the list of two.
    private static func augmentationRangeJSON(_ r: AugmentationRange) -> Any {
        r.values.count == 1 ? jsonNumber(r.values[0]) : r.values.map(jsonNumber)
    }

    /// A random layer's `seed` (null: none).
    private static func seed(_ c: JSONObject) -> UInt64? {
        jsonInt(c.values["seed"]).map { UInt64(bitPattern: Int64($0)) }
    }

    /// A seed as Keras writes it: the integer, or null.
    private static func seedJSON(_ seed: UInt64?) -> Any { seed.map { Int(truncatingIfNeeded: $0) as Any } ?? NSNull() }

    /// The tensor arguments a Keras layer's call may also pass by keyword, in positional order.
    static func tensorKeywords(_ layer: Layer) -> [String] {
        switch layer {
        case is MultiHeadAttention: ["query", "value", "key"]
        case is RecurrentLayer, is Bidirectional, is BaseConvLSTM: ["sequences", "initial_state"]
        case is CategoryEncoding: ["inputs", "count_weights"]
        default: []
        }
    }

    /// Refuses call options Kestrel does not implement — MultiHeadAttention's explicit
    /// `attention_mask` — unless null
    /// or false. `training` is accepted (Kestrel's fit and predict set it). The attention
    /// layers' `use_causal_mask` sets the layer's `useCausalMask`, which must agree across the
    /// layer's calls. A `mask` made by one of `maskOperations` (Keras's record of a mask Kestrel
    /// propagates itself) is accepted for the layers that use one; returns whether there was one.
    static func checkCallKeywords(_ kwargs: [String: Any], of layer: Layer, context: String,
                                  maskOperations: Set<String> = []) throws -> Bool {
        if let causal = kwargs["use_causal_mask"], isJSONBool(causal), let value = causal as? Bool {
            let current: Bool? = (layer as? MultiHeadAttention)?.useCausalMask ?? (layer as? ScoreAttention)?.useCausalMask
            if let current {
                guard current == value || !layer.isBuilt else {
                    throw KestrelError.fileError(
                        "\(context).kwargs: \(layer.className) '\(layer.name.prefix(80))' is called with use_causal_mask \(value) here and \(current) before; Kestrel applies one setting to every call of a layer")
                }
                (layer as? MultiHeadAttention)?.useCausalMask = value
                (layer as? ScoreAttention)?.useCausalMask = value
            }
        }
        var masked = false
        if let mask = kwargs["mask"] as? [String: Any], let history = (mask["config"] as? [String: Any])?["keras_history"] as? [Any],
           let producer = history.first as? String, maskOperations.contains(producer),
           layer is RecurrentLayer || layer is Bidirectional || layer is GlobalAveragePooling1D {
            masked = true
        }
        guard layer is RecurrentLayer || layer is Bidirectional || layer is MultiHeadAttention || layer is Embedding
                || layer is ScoreAttention else { return masked }
        let tensors = tensorKeywords(layer)
        for (key, value) in kwargs.sorted(by: { $0.key < $1.key }) where key != "training" && !tensors.contains(key) {
            if value is NSNull || (isJSONBool(value) && value as? Bool == false) { continue }
            if key == "mask" && masked { continue }
            if key == "use_causal_mask" && isJSONBool(value) && (layer is MultiHeadAttention || layer is ScoreAttention) { continue }
            if key == "return_attention_scores", isJSONBool(value), let attention = layer as? MultiHeadAttention {
                // The call returns the weights too (tensor 1 of its node).
                attention.returnAttentionScores = true
                continue
            }
            // A list of no masks (Attention's `mask=[None, None]`).
            if let list = value as? [Any], list.allSatisfy({ $0 is NSNull }) { continue }
            throw unsupported(JSONObject(kwargs, context: context + ".kwargs"), layer.className, layer.name, key,
                              expected: "null or false")
        }
        return masked
    }

    /// Options that Kestrel's `className` layer does not implement: each must be absent or hold
    /// Keras's "off" value (0 for `zero`, false for `false`, null for `null`); anything else is
    /// refused naming the layer, the key, what Kestrel expects and what the file holds.
    private static func requireDefaults(_ c: JSONObject, _ className: String, _ name: String, zero: [String] = [],
                                        false falseKeys: [String] = [], null: [String] = []) throws {
        for key in zero where c.has(key) && jsonDouble(c.values[key]) != 0 {
            throw unsupported(c, className, name, key, expected: "0")
        }
        for key in falseKeys where c.has(key) && !(isJSONBool(c.values[key]) && c.values[key] as? Bool == false) {
            throw unsupported(c, className, name, key, expected: "false")
        }
        for key in null where c.has(key) {
            throw unsupported(c, className, name, key, expected: "null")
        }
    }

    /// The error for an option value Kestrel's layer does not implement.
    static func unsupported(_ c: JSONObject, _ className: String, _ name: String, _ key: String, expected: String,
                            found value: Any? = nil) -> KestrelError {
        let found = value ?? c.values[key]
        let shown: String
        if isJSONBool(found), let b = found as? Bool {
            shown = "\(b)"
        } else if let object = found as? [String: Any], let objectClass = object["class_name"] as? String {
            shown = "a serialised \(objectClass.prefix(40))"
        } else if let list = found as? [Any], list.count <= 8, list.allSatisfy({ jsonDouble($0) != nil }) {
            shown = "[" + list.map { describeJSON($0) }.joined(separator: ", ") + "]"
        } else {
            shown = describeJSON(found)
        }
        return KestrelError.fileError(
            "\(c.context): \(className) '\(name.prefix(80))': '\(key)' must be \(expected) (Kestrel does not implement other values), found \(shown)")
    }

    private static func rejectUnsupported(_ c: JSONObject, _ keys: [String]) throws {
        for key in keys where c.has(key) {
            throw KestrelError.fileError("\(c.context): '\(key)' is not supported by Kestrel; remove it before saving")
        }
    }
}
