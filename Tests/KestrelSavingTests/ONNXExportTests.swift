import Foundation
import Kestrel
import KestrelONNX
import XCTest

/// ONNX export, checked by `onnx.checker` and run by onnxruntime against Kestrel's predictions.
final class ONNXExportTests: XCTestCase {
    /// The Fashion-MNIST tutorial's model, trained a little on random data.
    static func tutorialModel() throws -> (Model, Tensor) {
        Kestrel.setRandomSeed(12)
        let model = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = Tensor.randomUniform([20, 28, 28])
        _ = try model.fit(x, Tensor(shape: [20], scalars: (0..<20).map { Float($0 % 10) }), batchSize: 10, epochs: 1, verbose: 0)
        return (model, x)
    }

    /// A small CNN in the style of Keras's mnist_convnet, with batch normalization and the
    /// padding and pooling variants.
    static func cnn() throws -> (Model, Tensor) {
        Kestrel.setRandomSeed(13)
        let model = Sequential {
            Input(shape: [12, 12, 2])
            Conv2D(6, kernelSize: 3, padding: .same, activation: .relu)
            BatchNormalization()
            MaxPooling2D(poolSize: 2)
            Conv2D(8, kernelSize: [3, 2], strides: [2, 1], activation: .tanh)
            AveragePooling2D(poolSize: 2, strides: 1, padding: .same)
            Flatten()
            Dropout(0.5)
            Dense(16, activation: .gelu)
            LayerNormalization()
            Dense(5, activation: .softmax)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy())
        let x = Tensor.randomUniform([9, 12, 12, 2], minval: -1, maxval: 1)
        // Training moves BatchNormalization's statistics away from their initial values.
        _ = try model.fit(x, Tensor(shape: [9], scalars: (0..<9).map { Float($0 % 5) }), batchSize: 3, epochs: 2, verbose: 0)
        return (model, x)
    }

    private func compareWithOnnxRuntime(_ model: Model, _ x: Tensor, name: String) throws {
        try compareWithOnnxRuntime(model, [x], name: name)
    }

    /// Exports `model`, runs it in onnxruntime on `inputs` (fed to the model's inputs in
    /// order) and compares the first output with Kestrel's prediction.
    @discardableResult
    private func compareWithOnnxRuntime(_ model: Model, _ inputs: [Tensor], name: String) throws -> Float {
        let dir = try ScratchDirectory()
        let path = dir.file("\(name).onnx")
        try model.exportONNX(to: path)
        var arguments = ["onnx-run", path]
        for (k, x) in inputs.enumerated() {
            try TensorJSON.write(x, to: dir.file("x\(k).json"))
            arguments.append(dir.file("x\(k).json"))
        }
        try Python.helper(arguments + [dir.file("y.json")])
        let runtime = try TensorJSON.read(dir.file("y.json"))
        let ours = inputs.count == 1 ? try model.predict(inputs[0]) : try model.predict(inputs)[0]
        let difference = maxAbsDifference(ours, runtime)
        print("interop: onnxruntime ran Kestrel's \(name) export; max |Kestrel − onnxruntime| = \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5, name)
        return difference
    }

    func testOnnxRuntimeRunsTheTutorialModel() throws {
        let (model, x) = try Self.tutorialModel()
        try compareWithOnnxRuntime(model, x, name: "tutorial")
    }

    func testOnnxRuntimeRunsTheCNN() throws {
        let (model, x) = try Self.cnn()
        try compareWithOnnxRuntime(model, x, name: "cnn")
    }

    func testOnnxRuntimeRunsActivationsAndMerges() throws {
        Kestrel.setRandomSeed(14)
        let input = Input(shape: [6], name: "features")
        let a = try Dense(8, activation: .selu)(input)
        let b = try Dense(8, activation: .swish)(input)
        let c = try ReLU(maxValue: 0.6, negativeSlope: 0.2, threshold: 0.1)(try Add()([a, b]))
        let d = try LeakyReLU(negativeSlope: 0.25)(try Subtract()([a, b]))
        let e = try Concatenate()([c, d, try Multiply()([a, b]), try Maximum()([a, b]), try Minimum()([a, b]), try Average()([a, b])])
        let f = try Dense(6, activation: .elu)(try Activation(.softplus)(e))
        let g = try Reshape([2, 3])(try Dense(6, activation: .hardSigmoid)(f))
        let out = try Softmax(axis: 1)(try Dense(3, activation: .sigmoid)(g))
        let model = try Model(inputs: input, outputs: out, name: "mixed")
        try compareWithOnnxRuntime(model, Tensor.randomUniform([7, 6], minval: -2, maxval: 2), name: "activations")
    }

    func testOnnxRuntimeRunsActivationNoiseAndNormalizationLayers() throws {
        Kestrel.setRandomSeed(16)
        let model = Sequential {
            Input(shape: [4, 5, 6])
            GroupNormalization(groups: 3, epsilon: 0.01, betaInitializer: .randomUniform(minval: -0.5, maxval: 0.5),
                               gammaInitializer: .randomUniform(minval: 0.5, maxval: 1.5))
            PReLU(alphaInitializer: .randomUniform(minval: -0.5, maxval: 0.5), sharedAxes: [1, 2])
            GaussianNoise(0.2)
            GroupNormalization(groups: -1, scale: false)
            UnitNormalization(axes: [1, 2])
            ELU(alpha: 0.6)
            Flatten()
            Dense(8, activation: .selu)
            AlphaDropout(0.1)
            GaussianDropout(0.3)
            PReLU(alphaInitializer: .constant(0.25))
            Identity()
            UnitNormalization()
            Dense(3)
        }
        try compareWithOnnxRuntime(model, Tensor.randomUniform([5, 4, 5, 6], minval: -2, maxval: 2), name: "normalization")
    }

    func testOnnxRuntimeRunsReshapingLayers() throws {
        Kestrel.setRandomSeed(15)
        let model = Sequential {
            Input(shape: [5, 4, 2])
            ZeroPadding2D(padding: [[1, 0], [2, 1]])
            UpSampling2D(size: [2, 3])
            SpatialDropout2D(0.3)
            Cropping2D(cropping: [[1, 2], [0, 3]])
            Conv2D(3, kernelSize: 2, strides: 2)
            UpSampling2D(size: [3, 2], interpolation: .bilinear)
            Permute([2, 1, 3])
            Reshape([-1, 3])
            ZeroPadding1D(padding: [1, 2])
            UpSampling1D(size: 3)
            Cropping1D(cropping: [2, 1])
            GlobalAveragePooling1D()
            RepeatVector(2)
            Flatten()
            Dense(4)
        }
        try compareWithOnnxRuntime(model, Tensor.randomUniform([3, 5, 4, 2], minval: -1, maxval: 1), name: "reshaping")
    }

    func testOnnxRuntimeRunsPreprocessingLayers() throws {
        Kestrel.setRandomSeed(19)
        let x = Tensor.randomUniform([5, 2, 3], minval: 0, maxval: 255)
        let perChannel = Normalization()
        try perChannel.adapt(x)
        let model = Sequential {
            Input(shape: [2, 3])
            Rescaling(1 / 127.5, offset: -1)
            Normalization(axis: [1, 2], mean: [0, 0.1, 0.2, 0.3, 0.4, 0.5], variance: [1, 2, 3, 4, 5, 6])
            Normalization(axis: [], mean: [0.5], variance: [4], invert: true)
            Flatten()
            Dense(3)
        }
        try compareWithOnnxRuntime(model, x, name: "preprocessing")
        let adapted = Sequential { Input(shape: [2, 3]); perChannel; Dense(2) }
        try compareWithOnnxRuntime(adapted, x, name: "normalization-adapted")
        // Augmentation is for training: the export is the identity, as Kestrel's inference.
        let augmented = Sequential {
            Input(shape: [6, 5, 2])
            RandomFlip()
            RandomRotation(0.2)
            RandomZoom(heightFactor: 0.1)
            RandomTranslation(heightFactor: 0.1, widthFactor: 0.1)
            RandomContrast(0.2)
            RandomBrightness(0.1)
            Conv2D(2, kernelSize: 3)
            Flatten()
            Dense(2)
        }
        try compareWithOnnxRuntime(augmented, Tensor.randomUniform([3, 6, 5, 2]), name: "augmentation")
        for (name, resizing) in [("resizing-up", Resizing(9, 7)), ("resizing-down", Resizing(4, 3)),
                                 ("resizing-nearest", Resizing(4, 7, interpolation: .nearest)),
                                 ("resizing-crop", Resizing(5, 5, cropToAspectRatio: true)),
                                 // RandomCrop's inference: the centred window of the target's shape, resized.
                                 ("random-crop", RandomCrop(4, 2)), ("random-crop-larger", RandomCrop(8, 3)),
                                 ("center-crop", CenterCrop(3, 4)), ("center-crop-resizes", CenterCrop(7, 3))] as [(String, Layer)] {
            let model = Sequential { Input(shape: [6, 5, 2]); resizing; Flatten(); Dense(2) }
            try compareWithOnnxRuntime(model, Tensor.randomUniform([3, 6, 5, 2]), name: name)
        }
    }

    /// CategoryEncoding (every mode, count weights, values outside the categories and between
    /// whole numbers) and Discretization (every mode) as ONNX comparisons and reductions.
    func testOnnxRuntimeRunsCategoricalLayers() throws {
        Kestrel.setRandomSeed(37)
        let codes = Input(shape: [2]), amounts = Input(shape: [1]), weights = Input(shape: [2])
        let features = try Concatenate()([
            try CategoryEncoding(numTokens: 6)(codes),
            try CategoryEncoding(numTokens: 6, outputMode: .count)(codes),
            try CategoryEncoding(numTokens: 6, outputMode: .count)([codes, weights]),
            try Flatten()(try CategoryEncoding(numTokens: 6, outputMode: .oneHot)(codes)),
            try CategoryEncoding(numTokens: 3, outputMode: .oneHot)(amounts),
            try Discretization(binBoundaries: [-1, 0, 1.5])(amounts),
            try Discretization(binBoundaries: [-1, 0, 1.5], outputMode: .oneHot)(amounts),
            try Discretization(binBoundaries: [0, 2, 4], outputMode: .multiHot)(codes),
            try Discretization(binBoundaries: [0, 2, 4], outputMode: .count)(codes),
        ])
        let model = try Model(inputs: [codes, amounts, weights], outputs: [try Dense(3)(features)])
        let x = [Tensor(shape: [6, 2], scalars: [0, 5, 1, 1, 7, -1, 2.5, -0.5, 3, 3, 4, 6]),
                 Tensor(shape: [6, 1], scalars: [-2, -1, 0, 1.2, 1.5, 2.7]),
                 Tensor.randomUniform([6, 2], minval: 0, maxval: 2)]
        try compareWithOnnxRuntime(model, x, name: "categorical")
    }

    /// The 3-D layers: Conv (strides, dilation, groups), ConvTranspose with an output
    /// padding, Max/AveragePool with "same" windows, Pad, Slice, Resize and the global
    /// reductions over volumes.
    func testOnnxRuntimeRunsVolumeLayers() throws {
        Kestrel.setRandomSeed(41)
        let model = Sequential {
            Input(shape: [4, 6, 5, 2])
            ZeroPadding3D(padding: [[1, 0], [0, 1], [1, 1]])
            Conv3D(4, kernelSize: [2, 3, 3], strides: [1, 2, 1], padding: .same, activation: .relu)
            Conv3D(4, kernelSize: 2, dilationRate: [1, 1, 2], groups: 2)
            MaxPooling3D(poolSize: [2, 2, 3], strides: [1, 2, 1], padding: .same)
            SpatialDropout3D(0.3)
            Conv3DTranspose(3, kernelSize: 3, strides: 2, padding: .same, outputPadding: 1, activation: .tanh)
            AveragePooling3D(poolSize: 3, strides: 2, padding: .same)
            Cropping3D(cropping: [[0, 1], [1, 0], [0, 1]])
            UpSampling3D(size: [2, 1, 3])
        }
        let x = Tensor.randomUniform([3, 4, 6, 5, 2], minval: -1, maxval: 1)
        try compareWithOnnxRuntime(model, x, name: "volume-layers")
        let input = Input(shape: [4, 6, 5, 2])
        let features = try Conv3D(3, kernelSize: 2, activation: .relu)(input)
        let pooled = try Model(inputs: [input], outputs: [
            try Concatenate()([try GlobalMaxPooling3D()(features), try Flatten()(try GlobalAveragePooling3D(keepDims: true)(features))]),
        ])
        try compareWithOnnxRuntime(pooled, x, name: "volume-global-pooling")
    }

    /// LSTM, GRU (reset after and before) and SimpleRNN as ONNX's recurrent operators: sequences
    /// returned or not, read backwards, Keras's other activations, with and without bias, and
    /// Bidirectional in every merge mode.
    func testOnnxRuntimeRunsRecurrentLayers() throws {
        Kestrel.setRandomSeed(23)
        let x = Tensor.randomUniform([3, 6, 4], minval: -1, maxval: 1)
        let stacked = Sequential {
            Input(shape: [6, 4])
            LSTM(5, returnSequences: true)
            GRU(4, returnSequences: true, goBackwards: true)
            SimpleRNN(3, returnSequences: true)
            LSTM(3, goBackwards: true)
            Dense(2)
        }
        try compareWithOnnxRuntime(stacked, x, name: "recurrent-stack")
        let variants: [(String, Layer)] = [
            ("gru-reset-before", GRU(4, resetAfter: false)),
            ("gru-reset-before-no-bias-backwards", GRU(3, useBias: false, returnSequences: true, goBackwards: true, resetAfter: false)),
            ("gru-no-bias", GRU(3, useBias: false)),
            ("lstm-relu-hard-sigmoid", LSTM(4, activation: .relu, recurrentActivation: .hardSigmoid, returnSequences: true)),
            ("simple-rnn-relu-no-bias-backwards", SimpleRNN(4, activation: .relu, useBias: false, goBackwards: true)),
            ("simple-rnn-linear", SimpleRNN(3, activation: .linear)),
            ("bidirectional-lstm", Bidirectional(LSTM(3))),
            ("bidirectional-gru-sequences-ave", Bidirectional(GRU(3, returnSequences: true), mergeMode: .ave)),
            ("bidirectional-mixed-sequences", Bidirectional(SimpleRNN(2, returnSequences: true),
                                                            backwardLayer: LSTM(3, returnSequences: true, goBackwards: true))),
            ("bidirectional-rnn-mul", Bidirectional(SimpleRNN(3), mergeMode: .mul)),
            ("bidirectional-lstm-sequences-sum", Bidirectional(LSTM(2, returnSequences: true), mergeMode: .sum)),
        ]
        for (name, layer) in variants {
            let model = Sequential { Input(shape: [6, 4]); layer; Flatten(); Dense(2) }
            try compareWithOnnxRuntime(model, x, name: name)
        }
    }

    /// Returned and initial states: an encoder's final states start a decoder (ONNX's
    /// `initial_h`/`initial_c` and `Y_h`/`Y_c`), for LSTM, a reset-before GRU without bias, a
    /// backwards SimpleRNN, a Bidirectional LSTM; and a returned state as the model's output.
    func testOnnxRuntimeRunsRecurrentStates() throws {
        Kestrel.setRandomSeed(25)
        let source = Input(shape: [5, 4]), target = Input(shape: [3, 2])
        let encoder: [SymbolicTensor] = try LSTM(4, returnState: true)(source)
        let decoder = try LSTM(4, returnSequences: true, returnState: true)(target, initialState: [encoder[1], encoder[2]])
        let gru = try GRU(3, useBias: false, returnState: true, resetAfter: false)(decoder[0], initialState: [try Dense(3)(encoder[2])])
        let simple = try SimpleRNN(2, goBackwards: true)(target, initialState: [try Dense(2)(gru[1])])
        let both = try Bidirectional(LSTM(2, returnSequences: true, returnState: true), mergeMode: .ave)(
            source, initialState: [encoder[1], encoder[2], encoder[2], encoder[1]].map { try Dense(2)($0) })
        let joined = try Concatenate()([decoder[1], decoder[2], gru[1], simple[0], try Flatten()(decoder[0]),
                                        both[1], both[4], try Flatten()(both[0])])
        let inputs = [Tensor.randomUniform([3, 5, 4], minval: -1, maxval: 1), Tensor.randomUniform([3, 3, 2], minval: -1, maxval: 1)]
        try compareWithOnnxRuntime(try Model(inputs: [source, target], outputs: [try Dense(3)(joined), encoder[1]]), inputs,
                                   name: "recurrent-states")
        try compareWithOnnxRuntime(try Model(inputs: [source, target], outputs: [decoder[2], decoder[0]]), inputs,
                                   name: "recurrent-state-output")
        // Attention's returned weights (return_attention_scores), read by a layer and as an output.
        let attention = try MultiHeadAttention(numHeads: 2, keyDim: 3)(query: decoder[0], value: source, useCausalMask: true,
                                                                      returnAttentionScores: true)
        let read = try Dense(2)(try Concatenate()([try Flatten()(attention[0]), try Flatten()(attention[1])]))
        try compareWithOnnxRuntime(try Model(inputs: [source, target], outputs: [read]), inputs, name: "attention-scores")
        try compareWithOnnxRuntime(try Model(inputs: [source, target], outputs: [attention[1]]), inputs,
                                   name: "attention-scores-output")
    }

    /// ConvLSTM1D/2D/3D unrolled into Conv, Slice and the gate activations: returned
    /// sequences, strides and dilation, read backwards, Keras's other activations, without bias,
    /// and states returned and passed on as initial states.
    func testOnnxRuntimeRunsConvLSTMLayers() throws {
        Kestrel.setRandomSeed(43)
        let clip = Input(shape: [4, 6, 5, 2])
        let frames = try ConvLSTM2D(3, kernelSize: 3, padding: .same, returnSequences: true)(clip)
        let states: [SymbolicTensor] = try ConvLSTM2D(2, kernelSize: [3, 2], strides: 2, returnState: true, goBackwards: true)(frames)
        let again = try ConvLSTM2D(2, kernelSize: [3, 2], strides: 2, activation: .relu, recurrentActivation: .hardSigmoid,
                                   useBias: false)(frames, initialState: [states[1], states[2]])
        let joined = try Concatenate()([try Flatten()(states[0]), try Flatten()(again[0]), try Flatten()(states[2])])
        let x = Tensor.randomUniform([3, 4, 6, 5, 2], minval: -1, maxval: 1)
        try compareWithOnnxRuntime(try Model(inputs: [clip], outputs: [try Dense(3)(joined)]), x, name: "conv-lstm-2d")
        try compareWithOnnxRuntime(try Model(inputs: [clip], outputs: [states[2]]), x, name: "conv-lstm-state-output")
        let signals = Sequential {
            Input(shape: [5, 8, 2])
            ConvLSTM1D(3, kernelSize: 3, dilationRate: 2, returnSequences: true, goBackwards: true)
            ConvLSTM1D(2, kernelSize: 2, padding: .same, unitForgetBias: false)
        }
        try compareWithOnnxRuntime(signals, Tensor.randomUniform([3, 5, 8, 2], minval: -1, maxval: 1), name: "conv-lstm-1d")
        let volumes = Sequential { Input(shape: [3, 3, 4, 4, 1]); ConvLSTM3D(2, kernelSize: 2, padding: .same, returnSequences: true) }
        try compareWithOnnxRuntime(volumes, Tensor.randomUniform([2, 3, 3, 4, 4, 1], minval: -1, maxval: 1), name: "conv-lstm-3d")
    }

    /// Embedding as Gather (indices outside the table give zeros, as in Kestrel) and
    /// MultiHeadAttention written out: causal self-attention (with dropout, absent in
    /// inference), and cross-attention with a separate key, another output size and no biases.
    func testOnnxRuntimeRunsEmbeddingAndAttention() throws {
        Kestrel.setRandomSeed(24)
        let tokens = Input(shape: [6])
        let embedded = try Embedding(inputDim: 10, outputDim: 8)(tokens)
        let attended = try MultiHeadAttention(numHeads: 2, keyDim: 4, dropout: 0.2)(query: embedded, value: embedded,
                                                                                    useCausalMask: true)
        let text = try Model(inputs: tokens, outputs: Dense(3)(try GRU(5)(attended)))
        let ids = Tensor(shape: [3, 6], scalars: [0, 3, 9, 12, -1, 2.5, 1, 1, 4, 8, 7, 0, 5, 6, 2, 3, 9.9, 10] as [Float])
        try compareWithOnnxRuntime(text, ids, name: "embedding-attention")

        let query = Input(shape: [4, 5]), value = Input(shape: [6, 3]), key = Input(shape: [6, 2])
        let cross = try MultiHeadAttention(numHeads: 3, keyDim: 2, valueDim: 4, useBias: false, outputShape: 7)([query, value, key])
        let model = try Model(inputs: [query, value, key], outputs: [try Flatten()(cross)])
        try compareWithOnnxRuntime(model, [Tensor.randomUniform([2, 4, 5], minval: -1, maxval: 1),
                                           Tensor.randomUniform([2, 6, 3], minval: -1, maxval: 1),
                                           Tensor.randomUniform([2, 6, 2], minval: -1, maxval: 1)], name: "cross-attention")
    }

    func testOnnxRuntimeRunsTimeDistributedLayers() throws {
        Kestrel.setRandomSeed(19)
        let model = KerasInteropTests.videoModel()
        model.compile(optimizer: Adam(), loss: MeanSquaredError())
        let x = Tensor.randomUniform([5, 3, 6, 6, 2], minval: -1, maxval: 1)
        // Training moves the wrapped batch normalization's statistics off their initial values.
        _ = try model.fit(x, Tensor.randomUniform([5, 2]), batchSize: 5, epochs: 2, verbose: 0)
        try compareWithOnnxRuntime(model, x, name: "video")
    }

    func testOnnxRuntimeRunsScoreAttention() throws {
        Kestrel.setRandomSeed(18)
        let model = try KerasArchiveTests.scoreAttentionModel()
        let queries = Tensor.randomUniform([5, 4, 6], minval: -1, maxval: 1)
        let contexts = Tensor.randomUniform([5, 3, 5], minval: -1, maxval: 1)
        // The scale away from its initial 1, so that it is seen to be exported.
        let luong = try XCTUnwrap(model.layers.first { $0.name == "luong" })
        try luong.setWeights([Tensor(shape: [], scalars: [0.6])])
        try compareWithOnnxRuntime(model, [queries, contexts], name: "score-attention")
    }

    func testOnnxRuntimeRunsDepthwiseAndSeparableConvolutions() throws {
        Kestrel.setRandomSeed(16)
        let model = Sequential {
            Input(shape: [7, 6, 3])
            DepthwiseConv2D(kernelSize: 3, padding: .same, depthMultiplier: 2, activation: .relu)
            SeparableConv2D(4, kernelSize: [2, 3], strides: 2, activation: .tanh)
            GlobalAveragePooling2D()
            Dense(2)
        }
        try compareWithOnnxRuntime(model, Tensor.randomUniform([3, 7, 6, 3], minval: -1, maxval: 1), name: "depthwise")
        let sequence = Sequential {
            Input(shape: [9, 3])
            DepthwiseConv1D(kernelSize: 3, padding: .same, depthMultiplier: 2, activation: .relu)
            SeparableConv1D(4, kernelSize: 2, strides: 2, dilationRate: 1, activation: .tanh)
            DepthwiseConv1D(kernelSize: 2, dilationRate: 2, useBias: false)
            GlobalMaxPooling1D()
            Dense(2)
        }
        try compareWithOnnxRuntime(sequence, Tensor.randomUniform([3, 9, 3], minval: -1, maxval: 1), name: "depthwise-1d")
    }

    /// Conv2DTranspose as ConvTranspose: output sizes exactly as Keras computes them for
    /// "same" and "valid", including windows shorter than the stride (trailing rows only the
    /// bias reaches), dilation and output padding, with and without bias.
    func testOnnxRuntimeRunsTransposedConvolutions() throws {
        Kestrel.setRandomSeed(17)
        let cases: [(String, Conv2DTranspose)] = [
            ("same-k3-s2", Conv2DTranspose(3, kernelSize: 3, strides: 2, padding: .same, activation: .relu)),
            ("valid-k3-s2", Conv2DTranspose(2, kernelSize: 3, strides: 2)),
            ("valid-k2x1-s3x2", Conv2DTranspose(2, kernelSize: [2, 1], strides: [3, 2], activation: .tanh)),
            ("same-k1-s2", Conv2DTranspose(2, kernelSize: 1, strides: 2, padding: .same, useBias: false)),
            ("same-k4-s2", Conv2DTranspose(3, kernelSize: 4, strides: 2, padding: .same)),
            ("valid-k3-d2", Conv2DTranspose(2, kernelSize: 3, dilationRate: 2)),
            ("same-k3x2-d2", Conv2DTranspose(2, kernelSize: [3, 2], padding: .same, dilationRate: 2, activation: .sigmoid)),
            ("valid-k3-s2-op1", Conv2DTranspose(2, kernelSize: 3, strides: 2, outputPadding: 1)),
            ("same-k3-s2-op1x0", Conv2DTranspose(2, kernelSize: 3, strides: 2, padding: .same, outputPadding: [1, 0])),
            ("same-k4-s2-op0", Conv2DTranspose(2, kernelSize: 4, strides: 2, padding: .same, outputPadding: 0)),
            ("same-k5x2-s3x2-op2x1", Conv2DTranspose(2, kernelSize: [5, 2], strides: [3, 2], padding: .same, outputPadding: [2, 1])),
        ]
        for (name, layer) in cases {
            // A non-zero bias, so the rows only the bias reaches are checked too.
            let model = Sequential { Input(shape: [5, 4, 3]); layer }
            try model.build()
            var weights = layer.getWeights()
            if weights.count == 2 { weights[1] = Tensor.randomUniform(weights[1].shape, minval: -1, maxval: 1) }
            try layer.setWeights(weights)
            try compareWithOnnxRuntime(model, Tensor.randomUniform([2, 5, 4, 3], minval: -1, maxval: 1), name: "transpose-\(name)")
        }
        for (name, layer) in [("1d-valid-k3-s2", Conv1DTranspose(3, kernelSize: 3, strides: 2, activation: .relu)),
                              ("1d-same-k4-s3-op2", Conv1DTranspose(2, kernelSize: 4, strides: 3, padding: .same, outputPadding: 2)),
                              ("1d-same-k2-d3", Conv1DTranspose(2, kernelSize: 2, padding: .same, dilationRate: 3, useBias: false))] {
            let model = Sequential { Input(shape: [5, 3]); layer }
            try compareWithOnnxRuntime(model, Tensor.randomUniform([2, 5, 3], minval: -1, maxval: 1), name: "transpose-\(name)")
        }
        // In a decoder between other convolutions.
        let decoder = Sequential {
            Input(shape: [8, 8, 2])
            Conv2D(4, kernelSize: 3, strides: 2, padding: .same, activation: .relu)
            Conv2DTranspose(4, kernelSize: 3, strides: 2, padding: .same, activation: .relu)
            Conv2DTranspose(1, kernelSize: 3, padding: .same, activation: .sigmoid)
        }
        try compareWithOnnxRuntime(decoder, Tensor.randomUniform([3, 8, 8, 2]), name: "decoder")
    }

    /// Dot of per-sample matrices (batched MatMul over every pair of contracted axes Keras
    /// allows), with and without `normalize`, and Dot of vectors with `normalize`.
    func testOnnxRuntimeRunsDotOfMatrices() throws {
        Kestrel.setRandomSeed(18)
        let a = Input(shape: [3, 4], name: "a")
        let b = Input(shape: [5, 4], name: "b")
        let c = Input(shape: [3, 6], name: "c")
        let v = Input(shape: [4], name: "v")
        let ab = try Dot(axes: 2)([a, b])                                   // (3, 5)
        let ac = try Dot(axes: (1, 1), normalize: true)([a, c])             // (4, 6)
        let bt = try Permute([2, 1])(b)                                     // (4, 5)
        let abt = try Dot(axes: (-1, 1))([a, bt])                           // (3, 5)
        let ca = try Dot(axes: (1, 1))([c, a])                              // (6, 4)
        let normalized = try Dot(axes: (2, 2), normalize: true)([ca, try Dense(4)(b)])  // (6, 5)
        let pv = try Dot(axes: 1, normalize: true)([try Dense(4)(v), v])    // (1)
        let features = try Concatenate()([try Flatten()(ab), try Flatten()(ac), try Flatten()(abt),
                                          try Flatten()(normalized), pv])
        let model = try Model(inputs: [a, b, c, v], outputs: [try Dense(3)(features)], name: "dots")
        var inputs = [[3, 4], [5, 4], [3, 6], [4]].map { Tensor.randomUniform([4] + $0, minval: -1, maxval: 1) }
        // A zero vector: Keras's l2_normalize keeps it zero where ONNX's LpNormalization gives NaN.
        inputs[3] = Tensor(shape: [4, 4], scalars: inputs[3].scalars.enumerated().map { $0.offset < 4 ? 0 : $0.element })
        try compareWithOnnxRuntime(model, inputs, name: "dot")
    }

    /// A model holding nested models exports like its inlined layers.
    func testOnnxRuntimeRunsAModelWithNestedModels() throws {
        Kestrel.setRandomSeed(19)
        let block = Sequential { Input(shape: [6]); Dense(5, activation: .tanh); Dense(6) }
        let x = Input(shape: [6])
        let y = try Add()([try block(x), try block(try Dense(6)(x))])
        let model = try Model(inputs: x, outputs: try Dense(2)(y), name: "outer")
        try compareWithOnnxRuntime(model, Tensor.randomUniform([5, 6], minval: -1, maxval: 1), name: "nested")
    }

    /// A layer the exporter does not know (here a custom one) makes it throw, naming the
    /// layer, and leaves no file behind.
    func testUnsupportedLayerThrowsAndWritesNothing() throws {
        let dir = try ScratchDirectory()
        let model = Sequential { Input(shape: [4]); Doubling(name: "twice") }
        XCTAssertThrowsError(try model.exportONNX(to: dir.file("p.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("'twice' (Doubling)"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
        // A recurrent activation ONNX's operators lack is refused by name too.
        let selu = Sequential { Input(shape: [3, 2]); SimpleRNN(2, activation: .selu, name: "rnn") }
        XCTAssertThrowsError(try selu.exportONNX(to: dir.file("q.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("'rnn' (SimpleRNN)") && "\(error)".contains("selu"), "\(error)")
        }
        // ONNX values carry no mask: the layers that make one are refused by name.
        let embedded = Sequential { Input(shape: [5]); Embedding(inputDim: 8, outputDim: 3, maskZero: true, name: "tokens"); LSTM(2) }
        XCTAssertThrowsError(try embedded.exportONNX(to: dir.file("r.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("'tokens' (Embedding)") && "\(error)".contains("mask"), "\(error)")
        }
        let bins = try Hashing(numBins: 4, name: "bins")
        let hashing = Sequential { Input(shape: [1]); bins; Dense(2) }
        XCTAssertThrowsError(try hashing.exportONNX(to: dir.file("h.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("'bins' (Hashing)") && "\(error)".contains("FarmHash"), "\(error)")
        }
        let masking = Sequential { Input(shape: [5, 2]); Masking(name: "padding"); GRU(2) }
        XCTAssertThrowsError(try masking.exportONNX(to: dir.file("s.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("'padding' (Masking)") && "\(error)".contains("mask"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}

/// A user-defined layer (y = 2x) that has no ONNX translation.
private final class Doubling: Layer {
    override func forward(_ c: LayerContext) {
        for i in 0..<(c.batch * c.inputSize) { c.output[i] = 2 * c.input[i] }
    }

    override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        for i in 0..<(c.batch * c.inputSize) { dx[i] = 2 * dy[i] }
    }
}
