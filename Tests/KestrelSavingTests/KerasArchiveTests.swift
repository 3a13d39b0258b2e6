import Foundation
import Kestrel
import KestrelKeras
import XCTest
import ZIPFoundation

/// Save → load round trips of `.keras` archives and `.weights.h5` files.
final class KerasArchiveTests: XCTestCase {
    static func mlp() -> Sequential {
        Sequential {
            Input(shape: [4, 3])
            Flatten()
            Dense(16, activation: .relu)
            Dropout(0.25)
            Dense(8, activation: .tanh)
            Dense(3)
        }
    }

    static func data(samples: Int = 40) -> (Tensor, Tensor) {
        var g = RandomGenerator(seed: 11)
        let x = Tensor(shape: [samples, 4, 3], scalars: (0..<(samples * 12)).map { _ in g.nextUnitFloat() * 2 - 1 })
        let y = Tensor(shape: [samples], scalars: (0..<samples).map { _ in Float(g.next() % 3) })
        return (x, y)
    }

    /// A Functional model with two inputs, a shared layer and every merge layer.
    static func functional() throws -> Model {
        let a = Input(shape: [6], name: "left")
        let b = Input(shape: [6], name: "right")
        let shared = Dense(5, activation: .relu, name: "shared")
        let x = try shared(a), y = try shared(b)
        let merged = try Concatenate()([try Add()([x, y]), try Subtract()([x, y]), try Multiply()([x, y]),
                                        try Average()([x, y]), try Maximum()([x, y]), try Minimum()([x, y])])
        let dot = try Dot(axes: 1)([x, y])
        let out = try Dense(3, activation: .softmax)(try Concatenate()([merged, dot]))
        return try Model(inputs: [a, b], outputs: [out], name: "two_towers")
    }

    func testSequentialRoundTripKeepsPredictionsAndContinuedTraining() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(3)
        let model = Self.mlp()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: ["accuracy"])
        let (x, y) = Self.data()
        _ = try model.fit(x, y, batchSize: 8, epochs: 2, verbose: 0)
        let path = dir.file("mlp.keras")
        try model.save(to: path)

        let loaded = try Model.load(from: path)
        XCTAssertTrue(loaded is Sequential)
        XCTAssertEqual(loaded.layers.map(\.name), model.layers.map(\.name))
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
        XCTAssertEqual(loaded.optimizer?.iterations, 10)
        XCTAssertEqual(loaded.compiledMetricNames, [["accuracy"]])
        XCTAssertEqual(try loaded.evaluate(x, y, verbose: 0), try model.evaluate(x, y, verbose: 0))

        // The same seed gives the same shuffles and dropout masks: continued training must match.
        Kestrel.setRandomSeed(99)
        _ = try model.fit(x, y, batchSize: 8, epochs: 1, verbose: 0)
        Kestrel.setRandomSeed(99)
        _ = try loaded.fit(x, y, batchSize: 8, epochs: 1, verbose: 0)
        XCTAssertEqual(try loaded.getWeights(), try model.getWeights())
        XCTAssertEqual(loaded.optimizer?.iterations, 15)
    }

    func testFunctionalRoundTripWithSharedLayerAndMerges() throws {
        let dir = try ScratchDirectory()
        let model = try Self.functional()
        model.compile(optimizer: RMSprop(momentum: 0.5, centered: true), loss: MeanSquaredError())
        var g = RandomGenerator(seed: 5)
        let a = Tensor(shape: [10, 6], scalars: (0..<60).map { _ in g.nextUnitFloat() })
        let b = Tensor(shape: [10, 6], scalars: (0..<60).map { _ in g.nextUnitFloat() })
        let t = Tensor(shape: [10, 3], scalars: (0..<30).map { _ in g.nextUnitFloat() })
        _ = try model.fit([a, b], [t], batchSize: 5, epochs: 1, verbose: 0)
        let path = dir.file("f.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertFalse(loaded is Sequential)
        XCTAssertEqual(loaded.inputNames, ["left", "right"])
        XCTAssertEqual(try loaded.predict([a, b])[0].scalars, try model.predict([a, b])[0].scalars)
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
        Kestrel.setRandomSeed(1)
        _ = try model.fit([a, b], [t], batchSize: 5, epochs: 1, verbose: 0)
        Kestrel.setRandomSeed(1)
        _ = try loaded.fit([a, b], [t], batchSize: 5, epochs: 1, verbose: 0)
        XCTAssertEqual(try loaded.getWeights(), try model.getWeights())
    }

    func testArchiveLayoutFollowsKeras() throws {
        let dir = try ScratchDirectory()
        let model = try Self.functional()
        let path = dir.file("layout.keras")
        try model.save(to: path)
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        XCTAssertEqual(archive.map(\.path), ["metadata.json", "config.json", "model.weights.h5"])
        var configData = Data()
        _ = try archive.extract(archive["config.json"]!) { configData.append($0) }
        let config = try JSONSerialization.jsonObject(with: configData) as! [String: Any]
        XCTAssertEqual(config["class_name"] as? String, "Functional")
        let inner = config["config"] as! [String: Any]
        let layers = inner["layers"] as! [[String: Any]]
        // Keras's own order for this model (printed by Keras 3.15's `model.layers`).
        XCTAssertEqual(layers.map { $0["class_name"] as! String },
                       ["InputLayer", "InputLayer", "Dense", "Add", "Subtract", "Multiply", "Average", "Maximum",
                        "Minimum", "Concatenate", "Dot", "Concatenate", "Dense"])
        let shared = layers[2]
        XCTAssertEqual((shared["inbound_nodes"] as! [Any]).count, 2)
        XCTAssertEqual(inner["input_layers"] as? [[AnyHashable]], [["left", 0, 0], ["right", 0, 0]])
    }

    func testKerasWeightsFileRoundTrip() throws {
        let dir = try ScratchDirectory()
        let model = Self.mlp()
        model.compile(optimizer: SGD(momentum: 0.9), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let (x, y) = Self.data()
        _ = try model.fit(x, y, batchSize: 10, epochs: 1, verbose: 0)
        let path = dir.file("mlp.weights.h5")
        try model.saveKerasWeights(to: path)
        let other = Self.mlp()
        other.compile(optimizer: SGD(momentum: 0.9), loss: SparseCategoricalCrossentropy(fromLogits: true))
        XCTAssertNotEqual(try other.predict(x).scalars, try model.predict(x).scalars)
        try other.loadKerasWeights(from: path)
        XCTAssertEqual(try other.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual(try other.optimizerState(), try model.optimizerState())
        XCTAssertThrowsError(try model.saveKerasWeights(to: dir.file("mlp.h5")))
    }

    func testUncompiledModelRoundTripsWithoutOptimizer() throws {
        let dir = try ScratchDirectory()
        let model = Sequential([InputLayer(shape: [5]), Dense(4), ReLU(maxValue: 0.5, negativeSlope: 0.1, threshold: 0.2),
                                LeakyReLU(negativeSlope: 0.2), Activation(.sigmoid), Reshape([2, 2]), Softmax(axis: 1)])
        let path = dir.file("plain.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertNil(loaded.optimizer)
        let x = Tensor.randomUniform([3, 5], minval: -1, maxval: 1)
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        let relu = try XCTUnwrap(loaded.layers[1] as? ReLU)
        XCTAssertEqual(relu.maxValue, 0.5)
        XCTAssertEqual(relu.threshold, 0.2)
    }

    func testConvolutionalAndReshapingLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        let model = Sequential {
            Input(shape: [5, 4, 2])
            ZeroPadding2D(padding: [[1, 0], [2, 1]])
            Conv2D(4, kernelSize: 3, padding: .same, activation: .relu)
            BatchNormalization()
            UpSampling2D(size: [2, 3])
            UpSampling2D(size: [1, 2], interpolation: .bilinear)
            SpatialDropout2D(0.3)
            Cropping2D(cropping: [[1, 2], [0, 3]])
            AveragePooling2D(poolSize: 2)
            Permute([2, 1, 3])
            Reshape([-1, 4])
            ZeroPadding1D(padding: [1, 2])
            UpSampling1D(size: 2)
            Cropping1D(cropping: [3, 1])
            Conv1DTranspose(3, kernelSize: 3, strides: 2, outputPadding: 1)
            Conv1D(3, kernelSize: 2, padding: .causal)
            MaxPooling1D(poolSize: 2)
            LayerNormalization()
            GlobalMaxPooling1D()
            RepeatVector(2)
            GlobalAveragePooling1D()
            Reshape([1, 1, 3])
            DepthwiseConv2D(kernelSize: 1, depthMultiplier: 2)
            SeparableConv2D(3, kernelSize: 1)
            Conv2DTranspose(2, kernelSize: 2, strides: 2)
            Conv2DTranspose(2, kernelSize: 3, strides: 2, padding: .same, outputPadding: [1, 0])
            Flatten()
            Dense(2)
        }
        model.compile(optimizer: SGD(momentum: 0.5), loss: MeanSquaredError())
        let x = Tensor.randomUniform([4, 5, 4, 2], minval: -1, maxval: 1)
        _ = try model.fit(x, Tensor.randomUniform([4, 2]), batchSize: 2, epochs: 1, verbose: 0)
        let path = dir.file("conv.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertEqual(loaded.layers.map(\.className), model.layers.map(\.className))
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
        XCTAssertEqual(loaded.layers.compactMap { ($0 as? UpSampling2D)?.interpolation }, [.nearest, .bilinear])
        XCTAssertEqual(loaded.layers.compactMap { ($0 as? Conv2DTranspose)?.outputPadding }, [[1, 0]])
    }

    /// The activation, noise and normalization layers keep their arguments (penalties and
    /// seeds included) and weights through an archive.
    func testActivationNoiseAndNormalizationLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        let model = Sequential {
            Input(shape: [3, 4, 4])
            GroupNormalization(groups: 2, epsilon: 0.01, center: false, gammaRegularizer: .l1(0.01), gammaConstraint: .nonNeg)
            PReLU(alphaInitializer: .constant(0.1), alphaRegularizer: .l2(0.02), alphaConstraint: .maxNorm(1), sharedAxes: [1, 2])
            GaussianNoise(0.3, seed: 7)
            UnitNormalization(axes: [2, 3])
            GroupNormalization(groups: -1)
            Flatten()
            GaussianDropout(0.25, seed: 8)
            AlphaDropout(0.15)
            ELU(alpha: 0.3)
            Identity()
            UnitNormalization(axis: -1)
            Dense(2)
        }
        model.compile(optimizer: SGD(momentum: 0.5), loss: MeanSquaredError())
        let x = Tensor.randomUniform([4, 3, 4, 4], minval: -1, maxval: 1)
        _ = try model.fit(x, Tensor.randomUniform([4, 2]), batchSize: 2, epochs: 1, verbose: 0)
        let path = dir.file("normalization.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertEqual(loaded.layers.map(\.className), model.layers.map(\.className))
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        let group = try XCTUnwrap(loaded.layers[0] as? GroupNormalization)
        XCTAssertEqual([group.groups, group.center ? 1 : 0], [2, 0])
        XCTAssertEqual(group.epsilon, 0.01)
        XCTAssertEqual(group.gammaRegularizer, .l1(0.01))
        XCTAssertEqual(group.gammaConstraint, .nonNeg)
        let prelu = try XCTUnwrap(loaded.layers[1] as? PReLU)
        XCTAssertEqual(prelu.sharedAxes, [1, 2])
        XCTAssertEqual(prelu.alphaInitializer, .constant(0.1))
        XCTAssertEqual(prelu.alphaRegularizer, .l2(0.02))
        XCTAssertEqual(prelu.alphaConstraint, .maxNorm(1))
        XCTAssertEqual((loaded.layers[2] as? GaussianNoise).map { [$0.stddev, Float($0.seed ?? 0)] }, [0.3, 7])
        XCTAssertEqual((loaded.layers[3] as? UnitNormalization)?.axis, [2, 3])
        // Instance normalization is written with its resolved group count, as Keras writes it.
        XCTAssertEqual((loaded.layers[4] as? GroupNormalization)?.groups, 4)
        XCTAssertEqual((loaded.layers[6] as? GaussianDropout).map { [$0.rate, Float($0.seed ?? 0)] }, [0.25, 8])
        XCTAssertEqual((loaded.layers[7] as? AlphaDropout)?.rate, 0.15)
        XCTAssertEqual((loaded.layers[8] as? ELU)?.alpha, 0.3)
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
    }

    /// Rescaling and Normalization (adapted, given per position, over everything and inverted)
    /// keep their arguments and statistics through an archive, the random augmentations their
    /// arguments.
    func testPreprocessingLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(33)
        let x = Tensor.randomUniform([8, 2, 3], minval: 0, maxval: 255)
        let perChannel = Normalization()
        try perChannel.adapt(x)
        let model = Sequential {
            Input(shape: [2, 3])
            Rescaling(1 / 255, offset: -0.5)
            perChannel
            Normalization(axis: [1, 2], mean: [0, 1, 2, 3, 4, 5], variance: [1, 2, 3, 4, 5, 6])
            Normalization(axis: [], mean: [0.5], variance: [4], invert: true)
            Flatten()
            Dense(2)
        }
        model.compile(optimizer: Adam(), loss: MeanSquaredError())
        _ = try model.fit(x, Tensor.randomUniform([8, 2]), batchSize: 4, epochs: 1, verbose: 0)
        let path = dir.file("preprocessing.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        let rescaling = try XCTUnwrap(loaded.layers[0] as? Rescaling)
        XCTAssertEqual([rescaling.scale, rescaling.offset], [1 / 255, -0.5])
        let normalizations = loaded.layers.compactMap { $0 as? Normalization }
        XCTAssertEqual(normalizations.map(\.axis), [[-1], [1, 2], []])
        XCTAssertEqual(normalizations.map(\.invert), [false, false, true])
        XCTAssertEqual(normalizations[0].getWeights(), perChannel.getWeights())
        XCTAssertEqual(normalizations[1].mean, [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(normalizations[2].variance, [4])

        // The augmentations: arguments only (they are the identity in inference).
        let augmented = Sequential {
            Input(shape: [6, 5, 2])
            Resizing(8, 6, interpolation: .nearest, cropToAspectRatio: true)
            RandomFlip(mode: .horizontal, seed: 5)
            RandomRotation([0.1, 0.2], fillMode: .constant, interpolation: .nearest, seed: 9, fillValue: 0.5)
            RandomZoom(heightFactor: 0.2)
            RandomTranslation(heightFactor: [-0.1, 0.2], widthFactor: 0.3, fillMode: .wrap)
            RandomContrast(0.3, valueRange: 0...1, seed: 2)
            RandomBrightness([-0.1, 0.2])
            RandomCrop(5, 4, seed: 7)
            CenterCrop(4, 3)
            RandomInvert(factor: 0.4, valueRange: -1...1, seed: 8)
            Conv2D(3, kernelSize: 1)
            RandomGrayscale(factor: 0.2, seed: 9)
            Flatten()
            Dense(2)
        }
        try augmented.build()
        try augmented.save(to: dir.file("augmented.keras"))
        let back = try Model.load(from: dir.file("augmented.keras"))
        let image = Tensor.randomUniform([2, 6, 5, 2])
        XCTAssertEqual(try back.predict(image), try augmented.predict(image))
        let resizing = try XCTUnwrap(back.layers[0] as? Resizing)
        XCTAssertEqual([resizing.height, resizing.width], [8, 6])
        XCTAssertEqual(resizing.interpolation, .nearest)
        XCTAssertTrue(resizing.cropToAspectRatio)
        let center = try XCTUnwrap(back.layers.first { $0 is CenterCrop } as? CenterCrop)
        XCTAssertEqual([center.height, center.width], [4, 3])
        let flip = try XCTUnwrap(back.layers[1] as? RandomFlip)
        XCTAssertEqual(flip.mode, .horizontal)
        XCTAssertEqual(flip.seed, 5)
        let rotation = try XCTUnwrap(back.layers[2] as? RandomRotation)
        XCTAssertEqual(rotation.factor, [0.1, 0.2])
        XCTAssertEqual(rotation.fillMode, .constant)
        XCTAssertEqual(rotation.interpolation, .nearest)
        XCTAssertEqual(rotation.fillValue, 0.5)
        XCTAssertEqual(rotation.seed, 9)
        let invert = try XCTUnwrap(back.layers.first { $0 is RandomInvert } as? RandomInvert)
        XCTAssertEqual(invert.probabilityRange?.lower, 0)
        XCTAssertEqual(invert.probabilityRange?.upper ?? 0, 0.4, accuracy: 1e-7)
        XCTAssertEqual([invert.valueRange.lowerBound, invert.valueRange.upperBound, Float(invert.seed ?? 0)], [-1, 1, 8])
        let grey = try XCTUnwrap(back.layers.first { $0 is RandomGrayscale } as? RandomGrayscale)
        XCTAssertEqual([grey.factor, Float(grey.seed ?? 0)], [0.2, 9])
        let zoom = try XCTUnwrap(back.layers[3] as? RandomZoom)
        XCTAssertEqual(zoom.heightFactor, 0.2)
        XCTAssertNil(zoom.widthFactor)
        XCTAssertEqual(zoom.fillMode, .reflect)
        let translation = try XCTUnwrap(back.layers[4] as? RandomTranslation)
        XCTAssertEqual(translation.heightFactor, [-0.1, 0.2])
        XCTAssertEqual(translation.widthFactor, 0.3)
        XCTAssertEqual(translation.fillMode, .wrap)
        // One contrast number is written as the pair Keras reads the same way (1 − f…1 + f).
        let contrast = try XCTUnwrap(back.layers[5] as? RandomContrast)
        XCTAssertEqual(contrast.factor, [0.3, 0.3])
        XCTAssertEqual(contrast.contrastRange?.lower, RandomContrast(0.3).contrastRange?.lower)
        XCTAssertEqual(contrast.valueRange, 0...1)
        XCTAssertEqual(contrast.seed, 2)
        let brightness = try XCTUnwrap(back.layers[6] as? RandomBrightness)
        XCTAssertEqual(brightness.factor, [-0.1, 0.2])
        XCTAssertEqual(brightness.valueRange, 0...255)
        XCTAssertNil(brightness.seed)
        let crop = try XCTUnwrap(back.layers[7] as? RandomCrop)
        XCTAssertEqual([crop.height, crop.width], [5, 4])
        XCTAssertEqual(crop.seed, 7)
    }

    /// Embedding → LSTM (returning sequences) → LSTM (reading backwards) → Dense, on 5 token
    /// ids from a vocabulary of 10 (the model of Keras's own archive whose layout
    /// `testSequenceAndAttentionLayersRoundTrip` checks).
    static func sequenceModel() -> Sequential {
        Sequential {
            Input(shape: [5])
            // (No L1 on the biases, which start at exactly zero: backends disagree on |w|'s slope there.)
            Embedding(inputDim: 10, outputDim: 4, embeddingsRegularizer: .l2(0.01), embeddingsConstraint: .maxNorm(0.9),
                      name: "tokens")
            LSTM(3, kernelRegularizer: .l2(0.01), recurrentRegularizer: .l1l2(l1: 0.002, l2: 0.01), biasRegularizer: .l2(0.02),
                 recurrentConstraint: .maxNorm(1.2), returnSequences: true, name: "encoder")
            LSTM(2, activation: .relu, recurrentActivation: .hardSigmoid, unitForgetBias: false, goBackwards: true)
            Dense(2)
        }
    }

    /// GRU (with and without reset_after), SimpleRNN and Bidirectional in every shape Keras
    /// saves: a default backward half, merged by sum, and a given one of another kind.
    static func recurrentModel() -> Sequential {
        Sequential {
            Input(shape: [6, 3])
            GRU(4, dropout: 0.25, seed: 11, returnSequences: true, name: "encoder")
            Bidirectional(SimpleRNN(3, activation: .relu, dropout: 0.1, returnSequences: true, name: "simple_rnn"), mergeMode: .sum,
                          name: "summed")
            // (Keras infers a concatenation's size as twice the forward half's: the halves match.)
            Bidirectional(GRU(3, resetAfter: false), backwardLayer: LSTM(3, goBackwards: true, name: "reader"), name: "mixed")
            Dense(2)
        }
    }

    /// Token ids (as floats) for `sequenceModel`.
    static func tokens(samples: Int, seed: UInt64) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return Tensor(shape: [samples, 5], scalars: (0..<(samples * 5)).map { _ in Float(g.next() % 10) })
    }

    /// Causal self-attention with dropout and a residual connection, then cross-attention with
    /// its own key, `valueDim`, output size and no biases, in a Functional model.
    static func attentionModel(valueDim: Int = 4) throws -> Model {
        let query = Input(shape: [4, 6], name: "query"), context = Input(shape: [3, 5], name: "context")
        let attended = try MultiHeadAttention(numHeads: 2, keyDim: 3, dropout: 0.1, seed: 4, name: "self_attention")(
            query: query, value: query, useCausalMask: true)
        let residual = try LayerNormalization()(try Add()([query, attended]))
        let keys = try Dense(2)(context)
        let cross = try MultiHeadAttention(numHeads: 3, keyDim: 2, valueDim: valueDim, useBias: false, outputShape: 5,
                                           kernelRegularizer: .l2(0.01), kernelConstraint: .maxNorm(2),
                                           name: "cross_attention")([residual, context, keys])
        let out = try Dense(2)(try GlobalAveragePooling1D()(cross))
        return try Model(inputs: [query, context], outputs: [out], name: "attention")
    }

    /// Keras's `Attention` (scaled dot scores with a separate key; concat scores with dropout)
    /// and `AdditiveAttention` (a separate key) in a Functional model.
    static func scoreAttentionModel() throws -> Model {
        let query = Input(shape: [4, 6], name: "query"), context = Input(shape: [3, 5], name: "context")
        let keys = try Dense(6)(context)
        let dotted = try Attention(useScale: true, name: "luong")([query, context, keys])
        let concat = try Attention(scoreMode: .concat, dropout: 0.2, seed: 3)([dotted, dotted], useCausalMask: true)
        let additive = try AdditiveAttention(name: "bahdanau")([concat, query, try Dense(5)(query)])
        let out = try Dense(2)(try GlobalAveragePooling1D()(additive))
        return try Model(inputs: [query, context], outputs: [out], name: "score_attention")
    }

    /// TimeDistributed keeps its wrapped layer (arguments, weights, moving statistics) through
    /// an archive, its weights in Keras's `layer` group.
    func testTimeDistributedRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(21)
        let model = KerasInteropTests.videoModel()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Tensor.randomUniform([4, 3, 6, 6, 2], minval: -1, maxval: 1)
        _ = try model.fit(x, Tensor.randomUniform([4, 2]), batchSize: 2, epochs: 1, verbose: 0)
        try model.save(to: dir.file("video.keras"))
        let back = try Model.load(from: dir.file("video.keras"))
        XCTAssertEqual(try back.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual(try back.optimizerState(), try model.optimizerState())
        let wrapped = back.layers.compactMap { ($0 as? TimeDistributed)?.layer.className }
        XCTAssertEqual(wrapped, ["Conv2D", "BatchNormalization", "MaxPooling2D", "Flatten"])
        try model.saveKerasWeights(to: dir.file("video.weights.h5"))
        let paths = try KerasWeightsFile.inventory(of: dir.file("video.weights.h5")).map(\.path)
            .filter { $0.hasPrefix("layers/time_distributed") }
        XCTAssertEqual(paths, ["layers/time_distributed/layer/vars/0", "layers/time_distributed/layer/vars/1",
                               "layers/time_distributed_1/layer/vars/0", "layers/time_distributed_1/layer/vars/1",
                               "layers/time_distributed_1/layer/vars/2", "layers/time_distributed_1/layer/vars/3"])
    }

    /// The categorical layers come back from an archive with their arguments (an adapted
    /// Discretization with its boundaries, Hashing's mask value and salt), predicting the same.
    func testCategoricalLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(29)
        let codes = Input(shape: [1]), amounts = Input(shape: [1]), counts = Input(shape: [1])
        let buckets = try Discretization(numBins: 3, outputMode: .oneHot)
        try buckets.adapt(Tensor((0..<30).map { Float($0 % 11) }))
        let features = try Concatenate()([
            try CategoryEncoding(numTokens: 5, outputMode: .oneHot)(codes),
            try CategoryEncoding(numTokens: 5, outputMode: .count)([codes, counts]),
            try buckets(amounts),
            try Hashing(numBins: 7, maskValue: 3, salt: [11, 12], outputMode: .oneHot)(codes),
            try Hashing(numBins: 4, maskValue: "x", salt: [5], outputMode: .oneHot)(amounts),
            try HashedCrossing(numBins: 6, outputMode: .oneHot)([codes, amounts]),
        ])
        let model = try Model(inputs: [codes, amounts, counts], outputs: [try Dense(2)(features)])
        try model.save(to: dir.file("categorical.keras"))
        let back = try Model.load(from: dir.file("categorical.keras"))
        let x = [Tensor(shape: [6, 1], scalars: [0, 1, 2, 3, 4, 7]), Tensor(shape: [6, 1], scalars: [-3, 0, 2.5, 5, 9, 20]),
                 Tensor(shape: [6, 1], scalars: [0.5, 1, 2, 0.25, 3, 1.5])]
        XCTAssertEqual(try back.predict(x)[0].scalars, try model.predict(x)[0].scalars)
        let hashing = back.layers.compactMap { $0 as? Hashing }
        XCTAssertEqual(hashing.map(\.maskValue), [3, "x"])
        XCTAssertEqual(hashing.map(\.salt), [[11, 12], [5]])
        XCTAssertEqual((back.layers.first { $0 is Discretization } as? Discretization)?.binBoundaries, buckets.binBoundaries)
        XCTAssertEqual((back.layers.first { $0 is HashedCrossing } as? HashedCrossing)?.numBins, 6)
    }

    /// The 3-D layers come back from an archive with their arguments, predicting the same.
    func testVolumeLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(31)
        let model = Sequential {
            Input(shape: [4, 5, 6, 2])
            ZeroPadding3D(padding: [[1, 0], [0, 2], [1, 1]])
            Conv3D(4, kernelSize: [2, 3, 3], strides: [1, 2, 1], padding: .same, dilationRate: 1, groups: 2,
                   activation: .relu, kernelRegularizer: .l2(0.01))
            MaxPooling3D(poolSize: [1, 2, 2], padding: .same)
            SpatialDropout3D(0.2)
            Conv3DTranspose(3, kernelSize: 3, strides: [1, 2, 2], padding: .same, outputPadding: [0, 1, 1])
            AveragePooling3D(poolSize: 2, strides: 1)
            Cropping3D(cropping: [[1, 0], [0, 1], [1, 1]])
            UpSampling3D(size: [1, 2, 2])
            GlobalMaxPooling3D(keepDims: true)
            GlobalAveragePooling3D()
            Dense(2)
        }
        try model.save(to: dir.file("volume.keras"))
        let back = try Model.load(from: dir.file("volume.keras"))
        XCTAssertEqual(back.layers.map(\.className), model.layers.map(\.className))
        let x = Tensor.randomUniform([3, 4, 5, 6, 2], minval: -1, maxval: 1)
        XCTAssertEqual(try back.predict(x).scalars, try model.predict(x).scalars)
        let conv = try XCTUnwrap(back.layers.first { $0 is Conv3D } as? Conv3D)
        XCTAssertEqual([conv.kernelSize, conv.strides, [conv.groups]], [[2, 3, 3], [1, 2, 1], [2]])
        XCTAssertEqual(conv.padding, .same)
        let transpose = try XCTUnwrap(back.layers.first { $0 is Conv3DTranspose } as? Conv3DTranspose)
        XCTAssertEqual(transpose.outputPadding, [0, 1, 1])
        XCTAssertEqual((back.layers.first { $0 is ZeroPadding3D } as? ZeroPadding3D)?.amounts, [[1, 0], [0, 2], [1, 1]])
        XCTAssertEqual((back.layers.first { $0 is UpSampling3D } as? UpSampling3D)?.size, [1, 2, 2])
        XCTAssertEqual((back.layers.first { $0 is SpatialDropout3D } as? SpatialDropout3D)?.rate, 0.2)
    }

    /// Adamax, Nadam, Adadelta, Lion, Lamb and Ftrl, and the base options (weight decay,
    /// moving average, gradient accumulation): arguments and state come back from an archive
    /// (in Keras's variable order, Nadam's trailing momentum product included), and training
    /// continues exactly as it would have.
    func testOtherOptimizersRoundTripWithState() throws {
        let dir = try ScratchDirectory()
        var g = RandomGenerator(seed: 8)
        let x = Tensor(shape: [12, 4], scalars: (0..<48).map { _ in g.nextUnitFloat() })
        let y = Tensor(shape: [12, 2], scalars: (0..<24).map { _ in g.nextUnitFloat() })
        let optimizers: [Optimizer] = [
            Adamax(beta2: 0.99), Nadam(learningRate: 0.01, beta1: 0.8), Adadelta(learningRate: 1, rho: 0.9),
            Lion(learningRate: 0.0005, beta1: 0.8), Lamb(learningRate: 0.01, epsilon: 1e-6),
            Ftrl(learningRate: 0.05, learningRatePower: -0.3, initialAccumulatorValue: 0.2, l1RegularizationStrength: 0.001,
                 l2RegularizationStrength: 0.002, l2ShrinkageRegularizationStrength: 0.003, beta: 0.01),
            // The base options: their arguments go in the compile config, their state (averages,
            // accumulators, the batch count) in the optimizer's variables.
            SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 0.01, useEMA: true, emaMomentum: 0.9, emaOverwriteFrequency: 4),
            Adam(learningRate: 0.01, useEMA: true, gradientAccumulationSteps: 2),
            Nadam(learningRate: 0.01, weightDecay: 0.1, gradientAccumulationSteps: 3),
            AdamW(weightDecay: 0.2, gradientAccumulationSteps: 2),
        ]
        for (k, optimizer) in optimizers.enumerated() {
            Kestrel.setRandomSeed(3)
            let model = Sequential { Input(shape: [4]); Dense(5, activation: .tanh); Dense(2) }
            model.compile(optimizer: optimizer, loss: MeanSquaredError())
            _ = try model.fit(x, y, batchSize: 4, epochs: 2, verbose: 0)
            let path = dir.file("\(optimizer.name)-\(k).keras")
            try model.save(to: path)
            let loaded = try Model.load(from: path)
            let back = try XCTUnwrap(loaded.optimizer)
            XCTAssertEqual(String(describing: type(of: back)), String(describing: type(of: optimizer)))
            XCTAssertEqual(back.weightDecay, optimizer.weightDecay, optimizer.name)
            XCTAssertEqual(back.useEMA, optimizer.useEMA, optimizer.name)
            XCTAssertEqual(back.emaMomentum, optimizer.emaMomentum, optimizer.name)
            XCTAssertEqual(back.emaOverwriteFrequency, optimizer.emaOverwriteFrequency, optimizer.name)
            XCTAssertEqual(back.gradientAccumulationSteps, optimizer.gradientAccumulationSteps, optimizer.name)
            let state = try model.optimizerState()
            XCTAssertEqual(try loaded.optimizerState(), state, optimizer.name)
            XCTAssertEqual(state.iterations, 6, "the batch count, as Keras saves it")
            XCTAssertEqual(back.iterations, 6 / (optimizer.gradientAccumulationSteps ?? 1))
            XCTAssertEqual(state.slotNames.contains("average"), optimizer.useEMA)
            XCTAssertEqual(state.slotNames.contains("gradient_accumulator"), optimizer.gradientAccumulationSteps != nil)
            if let ftrl = optimizer as? Ftrl, let back = loaded.optimizer as? Ftrl {
                XCTAssertEqual([back.learningRatePower, back.initialAccumulatorValue, back.l1RegularizationStrength,
                                back.l2RegularizationStrength, back.l2ShrinkageRegularizationStrength, back.beta],
                               [ftrl.learningRatePower, ftrl.initialAccumulatorValue, ftrl.l1RegularizationStrength,
                                ftrl.l2RegularizationStrength, ftrl.l2ShrinkageRegularizationStrength, ftrl.beta])
            }
            Kestrel.setRandomSeed(1)
            _ = try model.fit(x, y, batchSize: 4, epochs: 1, verbose: 0)
            Kestrel.setRandomSeed(1)
            _ = try loaded.fit(x, y, batchSize: 4, epochs: 1, verbose: 0)
            XCTAssertEqual(try loaded.getWeights(), try model.getWeights(), optimizer.name)
        }
        // μ₁·μ₂ with μₜ = β1·(1 − 0.96ᵗ/2).
        let mu1: Float = 0.8 * (1 - 0.5 * 0.96), mu2: Float = 0.8 * (1 - 0.5 * 0.9216)
        XCTAssertEqual(Nadam(beta1: 0.8).momentumProduct(2), mu1 * mu2, accuracy: 1e-7)
    }

    /// A checkpoint keeps the moving averages and gradient accumulators too.
    func testCheckpointKeepsAveragesAndAccumulators() throws {
        let dir = try ScratchDirectory()
        var g = RandomGenerator(seed: 9)
        let x = Tensor(shape: [12, 4], scalars: (0..<48).map { _ in g.nextUnitFloat() })
        let y = Tensor(shape: [12, 2], scalars: (0..<24).map { _ in g.nextUnitFloat() })
        let model = Sequential { Input(shape: [4]); Dense(2) }
        model.compile(optimizer: Adam(useEMA: true, gradientAccumulationSteps: 2), loss: MeanSquaredError())
        _ = try model.fit(x, y, batchSize: 4, epochs: 1, verbose: 0)
        try model.saveCheckpoint(to: dir.file("ema.safetensors"), epoch: 1)
        let copy = Sequential { Input(shape: [4]); Dense(2) }
        copy.compile(optimizer: Adam(useEMA: true, gradientAccumulationSteps: 2), loss: MeanSquaredError())
        XCTAssertEqual(try copy.loadCheckpoint(from: dir.file("ema.safetensors")), 1)
        XCTAssertEqual(try copy.optimizerState(), try model.optimizerState())
    }

    /// Keras's other losses are saved in the compile config and come back as themselves.
    func testOtherLossesRoundTrip() throws {
        let dir = try ScratchDirectory()
        let losses: [Loss] = [MeanSquaredLogarithmicError(), MeanAbsolutePercentageError(), LogCosh(), CosineSimilarity(),
                              Hinge(), SquaredHinge(), CategoricalHinge(), KLDivergence(), Poisson(),
                              BinaryFocalCrossentropy(applyClassBalancing: true, gamma: 3, fromLogits: true),
                              CategoricalFocalCrossentropy(alpha: 0.5, labelSmoothing: 0.1)]
        for loss in losses {
            let model = Sequential { Input(shape: [3]); Dense(2) }
            model.compile(optimizer: Adam(), loss: loss)
            try model.save(to: dir.file("\(loss.name).keras"))
            let back = try Model.load(from: dir.file("\(loss.name).keras"))
            XCTAssertEqual(back.loss.map { String(describing: type(of: $0)) }, String(describing: type(of: loss)))
            XCTAssertEqual(back.loss?.name, loss.name)
        }
        // The focal losses' arguments come back too.
        let model = Sequential { Input(shape: [3]); Dense(2) }
        model.compile(optimizer: Adam(), loss: BinaryFocalCrossentropy(applyClassBalancing: true, alpha: 0.4, gamma: 3, fromLogits: true,
                                                                       labelSmoothing: 0.1))
        try model.save(to: dir.file("focal.keras"))
        let focal = try XCTUnwrap(try Model.load(from: dir.file("focal.keras")).loss as? BinaryFocalCrossentropy)
        XCTAssertEqual([focal.alpha, focal.gamma, focal.labelSmoothing], [0.4, 3, 0.1])
        XCTAssertTrue(focal.applyClassBalancing && focal.fromLogits)
    }

    /// ConvLSTM layers come back from an archive with their arguments, returned states and
    /// initial-state calls, predicting the same.
    func testConvLSTMLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(37)
        let clip = Input(shape: [4, 6, 6, 2]), signal = Input(shape: [5, 8, 2])
        let frames = try ConvLSTM2D(3, kernelSize: 3, padding: .same, kernelRegularizer: .l2(0.01), dropout: 0.1,
                                    recurrentDropout: 0.2, seed: 5, returnSequences: true)(clip)
        let states: [SymbolicTensor] = try ConvLSTM2D(2, kernelSize: [3, 2], strides: 2, returnState: true, goBackwards: true)(frames)
        let again = try ConvLSTM2D(2, kernelSize: [3, 2], strides: 2, activation: .relu, recurrentActivation: .hardSigmoid)(
            frames, initialState: [states[1], states[2]])
        let steps = try ConvLSTM1D(2, kernelSize: 3, dilationRate: 2, useBias: false, returnSequences: true)(signal)
        let merged = try Concatenate()([Flatten()(states[0]), Flatten()(again[0]), Flatten()(steps)])
        let model = try Model(inputs: [clip, signal], outputs: [try Dense(3)(merged)], name: "conv_lstm")
        try model.save(to: dir.file("conv_lstm.keras"))
        let back = try Model.load(from: dir.file("conv_lstm.keras"))
        XCTAssertEqual(back.layers.map(\.className), model.layers.map(\.className))
        let x = [Tensor.randomUniform([3, 4, 6, 6, 2], minval: -1, maxval: 1), Tensor.randomUniform([3, 5, 8, 2], minval: -1, maxval: 1)]
        XCTAssertEqual(try back.predict(x)[0].scalars, try model.predict(x)[0].scalars)
        let lstms = back.layers.compactMap { $0 as? BaseConvLSTM }
        XCTAssertEqual(lstms.map(\.returnState), [false, true, false, false])
        XCTAssertEqual(lstms.map(\.goBackwards), [false, true, false, false])
        XCTAssertEqual([lstms[0].dropout, lstms[0].recurrentDropout], [0.1, 0.2])
        XCTAssertEqual(lstms[0].seed, 5)
        XCTAssertNotNil(lstms[0].kernelRegularizer)
        XCTAssertEqual([lstms[1].kernelSize, lstms[1].strides, lstms[3].dilationRate], [[3, 2], [2, 2], [2]])
        XCTAssertEqual(lstms[2].activation, .relu)
        XCTAssertEqual(lstms[2].builtInputShapes?.count, 3)
        XCTAssertFalse(lstms[3].useBias)
    }

    /// Masks come back from an archive: Embedding's maskZero, Masking's value and the
    /// recurrent layers' zeroOutputForMask, so the padded predictions are the same.
    func testMaskingLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(23)
        let tokens = Input(shape: [6])
        let embedded = try Embedding(inputDim: 9, outputDim: 4, maskZero: true)(tokens)
        let sequences = try Bidirectional(GRU(3, returnSequences: true))(embedded)
        let pooled = try GlobalAveragePooling1D()(try Dense(3)(sequences))
        let model = try Model(inputs: tokens, outputs: try Dense(2)(try Concatenate()([pooled, try LSTM(2)(sequences)])))
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Tensor(shape: [3, 6], scalars: [1, 2, 3, 0, 0, 0, 0, 0, 4, 5, 6, 7, 8, 1, 0, 2, 3, 4])
        _ = try model.fit(x, Tensor.randomUniform([3, 2]), batchSize: 3, epochs: 2, verbose: 0)
        try model.save(to: dir.file("masked.keras"))
        let back = try Model.load(from: dir.file("masked.keras"))
        XCTAssertEqual(try back.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual((back.layers.first { $0 is Embedding } as? Embedding)?.maskZero, true)
        XCTAssertEqual((back.layers.first { $0 is Bidirectional } as? Bidirectional)?.backwardLayer.zeroOutputForMask, true)

        let masking = Sequential { Input(shape: [4, 2]); Masking(maskValue: -1); LSTM(2, returnSequences: true, zeroOutputForMask: true); SimpleRNN(2) }
        try masking.save(to: dir.file("masking.keras"))
        let loaded = try Model.load(from: dir.file("masking.keras"))
        XCTAssertEqual((loaded.layers[0] as? Masking)?.maskValue, -1)
        XCTAssertEqual((loaded.layers[1] as? LSTM)?.zeroOutputForMask, true)
        let padded = Tensor(shape: [2, 4, 2], scalars: [1, 2, -1, -1, 3, 4, -1, -1, -1, -1, 5, 6, 7, 8, 9, 1])
        XCTAssertEqual(try loaded.predict(padded).scalars, try masking.predict(padded).scalars)
    }

    func testScoreAttentionLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(19)
        let model = try Self.scoreAttentionModel()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let queries = Tensor.randomUniform([6, 4, 6], minval: -1, maxval: 1)
        let contexts = Tensor.randomUniform([6, 3, 5], minval: -1, maxval: 1)
        _ = try model.fit([queries, contexts], [Tensor.randomUniform([6, 2])], batchSize: 3, epochs: 1, verbose: 0)
        try model.save(to: dir.file("score_attention.keras"))
        let back = try Model.load(from: dir.file("score_attention.keras"))
        XCTAssertEqual(try back.predict([queries, contexts])[0].scalars, try model.predict([queries, contexts])[0].scalars)
        XCTAssertEqual(try back.optimizerState(), try model.optimizerState())
        let attentions = back.layers.compactMap { $0 as? Attention }
        XCTAssertEqual(attentions.map(\.name), ["luong", model.layers.first { $0 is Attention && $0.name != "luong" }!.name])
        XCTAssertEqual(attentions.map(\.useScale), [true, false])
        XCTAssertEqual(attentions.map(\.scoreMode), [.dot, .concat])
        XCTAssertEqual(attentions.map(\.dropout), [0, 0.2])
        XCTAssertEqual(attentions.map(\.seed), [nil, 3])
        XCTAssertEqual(attentions.map(\.useCausalMask), [false, true])
        let additive = try XCTUnwrap(back.layers.first { $0 is AdditiveAttention } as? AdditiveAttention)
        XCTAssertEqual(additive.name, "bahdanau")
        XCTAssertTrue(additive.useScale)
        XCTAssertEqual(additive.weightSpecs.map(\.shape), [[5]])
    }

    /// Embedding, LSTM and MultiHeadAttention keep their arguments, predictions and optimizer
    /// state through an archive, with their weights where Keras 3 keeps them: an LSTM's in its
    /// cell, attention's in its four projections (the paths and shapes of Keras 3.15's own
    /// archive of the same sequence model).
    func testRecurrentAndBidirectionalLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(14)
        let model = Self.recurrentModel()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Tensor.randomUniform([8, 6, 3], minval: -1, maxval: 1)
        _ = try model.fit(x, Tensor.randomUniform([8, 2], minval: -1, maxval: 1), batchSize: 4, epochs: 1, verbose: 0)
        try model.save(to: dir.file("recurrent.keras"))
        let loaded = try Model.load(from: dir.file("recurrent.keras"))
        XCTAssertEqual(loaded.layers.map(\.className), ["GRU", "Bidirectional", "Bidirectional", "Dense"])
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
        let summed = try XCTUnwrap(loaded.layers[1] as? Bidirectional)
        XCTAssertEqual(summed.mergeMode, .sum)
        XCTAssertEqual([(loaded.layers[0] as? GRU)?.dropout, summed.forwardLayer.dropout, summed.backwardLayer.dropout], [0.25, 0.1, 0.1])
        XCTAssertEqual((loaded.layers[0] as? GRU)?.seed, 11)
        XCTAssertEqual(summed.forwardLayer.activation, .relu)
        XCTAssertEqual([summed.forwardLayer.name, summed.backwardLayer.name], ["forward_simple_rnn", "backward_simple_rnn"])
        let mixed = try XCTUnwrap(loaded.layers[2] as? Bidirectional)
        XCTAssertEqual((mixed.forwardLayer as? GRU)?.resetAfter, false)
        XCTAssertEqual(mixed.backwardLayer.name, "reader")
        XCTAssertTrue(mixed.backwardLayer is LSTM)
        // Saved again, the forward half keeps its name (no second "forward_").
        try loaded.save(to: dir.file("again.keras"))
        XCTAssertEqual((try Model.load(from: dir.file("again.keras")).layers[1] as? Bidirectional)?.forwardLayer.name,
                       "forward_simple_rnn")

        try model.saveKerasWeights(to: dir.file("recurrent.weights.h5"))
        let layout = try KerasWeightsFile.inventory(of: dir.file("recurrent.weights.h5")).filter { $0.path.hasPrefix("layers/") }
        XCTAssertEqual(layout.map { "\($0.path) \($0.shape)" }, [
            "layers/bidirectional/backward_layer/cell/vars/0 [4, 3]", "layers/bidirectional/backward_layer/cell/vars/1 [3, 3]",
            "layers/bidirectional/backward_layer/cell/vars/2 [3]",
            "layers/bidirectional/forward_layer/cell/vars/0 [4, 3]", "layers/bidirectional/forward_layer/cell/vars/1 [3, 3]",
            "layers/bidirectional/forward_layer/cell/vars/2 [3]",
            "layers/bidirectional_1/backward_layer/cell/vars/0 [3, 12]", "layers/bidirectional_1/backward_layer/cell/vars/1 [3, 12]",
            "layers/bidirectional_1/backward_layer/cell/vars/2 [12]",
            "layers/bidirectional_1/forward_layer/cell/vars/0 [3, 9]", "layers/bidirectional_1/forward_layer/cell/vars/1 [3, 9]",
            "layers/bidirectional_1/forward_layer/cell/vars/2 [9]",
            "layers/dense/vars/0 [6, 2]", "layers/dense/vars/1 [2]",
            "layers/gru/cell/vars/0 [3, 12]", "layers/gru/cell/vars/1 [4, 12]", "layers/gru/cell/vars/2 [2, 12]",
        ])
    }

    /// Keras's seq2seq example: an encoder returning its states, a decoder starting from them.
    static func encoderDecoderModel() throws -> Model {
        let source = Input(shape: [5, 4], name: "source"), target = Input(shape: [3, 2], name: "target")
        let encoder: [SymbolicTensor] = try LSTM(6, returnState: true, name: "encoder")(source)
        let decoder = try LSTM(6, returnSequences: true, returnState: true, name: "decoder")(
            target, initialState: [encoder[1], encoder[2]])
        let refine = try GRU(3, returnState: true, name: "refine")(decoder[0], initialState: [try Dense(3, name: "bridge")(decoder[2])])
        let both = try Bidirectional(GRU(2, returnState: true), name: "both")(
            target, initialState: [try Dense(2, name: "forward_start")(encoder[1]), try Dense(2, name: "backward_start")(encoder[2])])
        let attention = try MultiHeadAttention(numHeads: 2, keyDim: 2, name: "attention")(
            query: decoder[0], value: source, returnAttentionScores: true)
        let joined = try Concatenate(name: "joined")([refine[1], decoder[1], both[2], both[1], try Flatten()(attention[1])])
        return try Model(inputs: [source, target], outputs: [try Dense(2, name: "head")(joined), encoder[2]], name: "seq2seq")
    }

    func testReturnedAndInitialStatesRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(15)
        let model = try Self.encoderDecoderModel()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = [Tensor.randomUniform([8, 5, 4], minval: -1, maxval: 1), Tensor.randomUniform([8, 3, 2], minval: -1, maxval: 1)]
        let y = [Tensor.randomUniform([8, 2], minval: -1, maxval: 1), Tensor.randomUniform([8, 6], minval: -1, maxval: 1)]
        _ = try model.fit(x, y, batchSize: 4, epochs: 1, verbose: 0)
        try model.save(to: dir.file("seq2seq.keras"))
        let loaded = try Model.load(from: dir.file("seq2seq.keras"))
        for (a, b) in zip(try loaded.predict(x), try model.predict(x)) { XCTAssertEqual(a.scalars, b.scalars) }
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
        XCTAssertEqual(loaded.layers.compactMap { ($0 as? RecurrentLayer)?.returnState }, [true, true, true])

        // Keras's record of the calls: states by keyword, returned states as tensors 1 and 2.
        func configText(_ path: String) throws -> String {
            let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
            var data = Data()
            _ = try archive.extract(archive["config.json"]!) { data.append($0) }
            return String(decoding: data, as: UTF8.self)
        }
        let config = try configText(dir.file("seq2seq.keras"))
        XCTAssertTrue(config.contains("\"initial_state\""), config)
        XCTAssertTrue(config.contains("\"return_attention_scores\""), config)
        XCTAssertTrue(config.contains("\"return_state\": true") || config.contains("\"return_state\":true"), config)
        for history in ["[\"encoder\",0,1]", "[\"encoder\",0,2]", "[\"decoder\",0,2]", "[\"refine\",0,1]", "[\"both\",0,2]", "[\"attention\",0,1]"] {
            XCTAssertTrue(config.replacingOccurrences(of: " ", with: "").contains(history), history)
        }
        // Saved again, the same file.
        try loaded.save(to: dir.file("again.keras"))
        XCTAssertEqual(try configText(dir.file("again.keras")), config)
    }

    func testSequenceAndAttentionLayersRoundTrip() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(12)
        let model = Self.sequenceModel()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Self.tokens(samples: 8, seed: 3)
        _ = try model.fit(x, Tensor.randomUniform([8, 2], minval: -1, maxval: 1), batchSize: 4, epochs: 1, verbose: 0)
        let path = dir.file("sequence.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)
        XCTAssertTrue(loaded is Sequential)
        XCTAssertEqual(loaded.layers.map(\.className), ["Embedding", "LSTM", "LSTM", "Dense"])
        XCTAssertEqual(try loaded.predict(x).scalars, try model.predict(x).scalars)
        XCTAssertEqual(try loaded.optimizerState(), try model.optimizerState())
        let embedding = try XCTUnwrap(loaded.layers[0] as? Embedding)
        XCTAssertEqual([embedding.name, "\(embedding.inputDim)", "\(embedding.outputDim)"], ["tokens", "10", "4"])
        XCTAssertEqual(embedding.embeddingsInitializer, .randomUniform)
        XCTAssertEqual(embedding.embeddingsRegularizer, .l2(0.01))
        XCTAssertEqual(embedding.embeddingsConstraint, .maxNorm(0.9))
        let encoder = try XCTUnwrap(loaded.layers[1] as? LSTM)
        XCTAssertEqual([encoder.kernelRegularizer, encoder.recurrentRegularizer, encoder.biasRegularizer],
                       [.l2(0.01), .l1l2(l1: 0.002, l2: 0.01), .l2(0.02)])
        XCTAssertEqual([encoder.kernelConstraint, encoder.recurrentConstraint, encoder.biasConstraint], [nil, .maxNorm(1.2), nil])
        // The penalties are in the reported loss, the same after loading.
        let y = Tensor.randomUniform([8, 2], minval: -1, maxval: 1)
        XCTAssertEqual(try loaded.evaluate(x, y, verbose: 0)["loss"]!, try model.evaluate(x, y, verbose: 0)["loss"]!, accuracy: 1e-6)
        XCTAssertEqual([encoder.units, encoder.returnSequences ? 1 : 0, encoder.goBackwards ? 1 : 0], [3, 1, 0])
        XCTAssertEqual([encoder.activation, encoder.recurrentActivation], [.tanh, .sigmoid])
        XCTAssertEqual(encoder.recurrentInitializer, .orthogonal)
        XCTAssertTrue(encoder.unitForgetBias)
        let backwards = try XCTUnwrap(loaded.layers[2] as? LSTM)
        XCTAssertEqual([backwards.units, backwards.returnSequences ? 1 : 0, backwards.goBackwards ? 1 : 0], [2, 0, 1])
        XCTAssertEqual([backwards.activation, backwards.recurrentActivation], [.relu, .hardSigmoid])
        XCTAssertFalse(backwards.unitForgetBias)

        let weights = dir.file("sequence.weights.h5")
        try model.saveKerasWeights(to: weights)
        let layout = try KerasWeightsFile.inventory(of: weights).filter { $0.path.hasPrefix("layers/") }
        XCTAssertEqual(layout.map(\.path), ["layers/dense/vars/0", "layers/dense/vars/1", "layers/embedding/vars/0",
                                            "layers/lstm/cell/vars/0", "layers/lstm/cell/vars/1", "layers/lstm/cell/vars/2",
                                            "layers/lstm_1/cell/vars/0", "layers/lstm_1/cell/vars/1", "layers/lstm_1/cell/vars/2"])
        XCTAssertEqual(layout.map(\.shape), [[2, 2], [2], [10, 4], [4, 12], [3, 12], [12], [3, 8], [2, 8], [8]])

        Kestrel.setRandomSeed(13)
        let attention = try Self.attentionModel()
        attention.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let queries = Tensor.randomUniform([6, 4, 6], minval: -1, maxval: 1)
        let contexts = Tensor.randomUniform([6, 3, 5], minval: -1, maxval: 1)
        _ = try attention.fit([queries, contexts], [Tensor.randomUniform([6, 2])], batchSize: 3, epochs: 1, verbose: 0)
        try attention.save(to: dir.file("attention.keras"))
        let back = try Model.load(from: dir.file("attention.keras"))
        XCTAssertEqual(try back.predict([queries, contexts])[0].scalars, try attention.predict([queries, contexts])[0].scalars)
        XCTAssertEqual(try back.optimizerState(), try attention.optimizerState())
        let heads = back.layers.compactMap { $0 as? MultiHeadAttention }
        XCTAssertEqual(heads.map(\.name), ["self_attention", "cross_attention"])
        XCTAssertEqual(heads.map(\.numHeads), [2, 3])
        XCTAssertEqual(heads.map(\.keyDim), [3, 2])
        XCTAssertEqual(heads.map(\.valueDim), [3, 4])
        XCTAssertEqual(heads.map(\.useBias), [true, false])
        XCTAssertEqual(heads.map(\.outputShape), [nil, 5])
        XCTAssertEqual(heads.map(\.useCausalMask), [true, false])
        XCTAssertEqual(heads.map(\.dropout), [0.1, 0])
        XCTAssertEqual(heads.map(\.seed), [4, nil])
        XCTAssertEqual(heads.map(\.kernelRegularizer), [nil, .l2(0.01)])
        XCTAssertEqual(heads.map(\.kernelConstraint), [nil, .maxNorm(2)])
        let targets = Tensor.randomUniform([6, 2])
        XCTAssertEqual(try back.evaluate([queries, contexts], [targets], verbose: 0)["loss"]!,
                       try attention.evaluate([queries, contexts], [targets], verbose: 0)["loss"]!, accuracy: 1e-6)

        try attention.saveKerasWeights(to: dir.file("attention.weights.h5"))
        let projections = try KerasWeightsFile.inventory(of: dir.file("attention.weights.h5"))
            .filter { $0.path.hasPrefix("layers/multi_head_attention") }
        XCTAssertEqual(projections.map { "\($0.path) \($0.shape)" }, [
            "layers/multi_head_attention/key_dense/vars/0 [6, 2, 3]", "layers/multi_head_attention/key_dense/vars/1 [2, 3]",
            "layers/multi_head_attention/output_dense/vars/0 [2, 3, 6]", "layers/multi_head_attention/output_dense/vars/1 [6]",
            "layers/multi_head_attention/query_dense/vars/0 [6, 2, 3]", "layers/multi_head_attention/query_dense/vars/1 [2, 3]",
            "layers/multi_head_attention/value_dense/vars/0 [6, 2, 3]", "layers/multi_head_attention/value_dense/vars/1 [2, 3]",
            "layers/multi_head_attention_1/key_dense/vars/0 [2, 3, 2]", "layers/multi_head_attention_1/output_dense/vars/0 [3, 4, 5]",
            "layers/multi_head_attention_1/query_dense/vars/0 [6, 3, 2]", "layers/multi_head_attention_1/value_dense/vars/0 [5, 3, 4]",
        ])
    }

    /// Every weighted convolution and Dense with Keras's per-weight regularizers and constraints,
    /// activity regularizers (on a layer and as a layer), compiled with SGD and MSE and trained
    /// one epoch on `samples` random samples (returned).
    static func trainedRegularized(seed: UInt64, samples: Int, batchSize: Int) throws -> (Sequential, x: Tensor, y: Tensor) {
        Kestrel.setRandomSeed(seed)
        let model = Sequential {
            Input(shape: [6, 6, 2])
            // (L1 with NonNeg on one weight would make exact zeros, where backends disagree on
            // |w|'s slope: 0 for TensorFlow, PyTorch and Kestrel, 1 for JAX, which the interop test runs.)
            // (No L1 activity penalty on relu outputs, exactly zero in places, for the same reason.)
            Conv2D(3, kernelSize: 3, activation: .relu, kernelRegularizer: .l2(0.02), biasRegularizer: .l2(0.01),
                   kernelConstraint: .maxNorm(maxValue: 0.8, axes: [0, 1, 2]), biasConstraint: .nonNeg,
                   activityRegularizer: .l2(0.01))
            DepthwiseConv2D(kernelSize: 2, depthMultiplier: 2, depthwiseRegularizer: .l1l2(l1: 0.01, l2: 0.03),
                            depthwiseConstraint: .unitNorm(axes: [0, 1]))
            SeparableConv2D(4, kernelSize: 2, padding: .same, depthwiseRegularizer: .l2(0.01),
                            pointwiseRegularizer: .l1(0.02), biasRegularizer: .l2(0.05),
                            depthwiseConstraint: .nonNeg, pointwiseConstraint: .maxNorm(1.5), biasConstraint: .nonNeg)
            Conv2DTranspose(2, kernelSize: 2, strides: 2, kernelRegularizer: .l2(0.01),
                            kernelConstraint: .maxNorm(maxValue: 0.5, axes: [0, 1, 3]))
            Flatten()
            ActivityRegularization(l1: 0.01, l2: 0.02)
            Dense(3, kernelRegularizer: .l1l2(l1: 0.001, l2: 0.01), biasRegularizer: .l2(0.1),
                  kernelConstraint: .unitNorm, biasConstraint: .maxNorm(0.2), activityRegularizer: .l1(0.005))
        }
        model.compile(optimizer: SGD(learningRate: 0.05), loss: MeanSquaredError())
        let x = Tensor.randomUniform([samples, 6, 6, 2], minval: -1, maxval: 1)
        let y = Tensor.randomUniform([samples, 3], minval: -1, maxval: 1)
        _ = try model.fit(x, y, batchSize: batchSize, epochs: 1, verbose: 0)
        return (model, x, y)
    }

    /// Regularizers and constraints come back from a `.keras` archive: the same penalties in
    /// the loss, the same projections after each step.
    func testRegularizersAndConstraintsRoundTrip() throws {
        let dir = try ScratchDirectory()
        let (model, x, y) = try Self.trainedRegularized(seed: 5, samples: 6, batchSize: 3)
        let path = dir.file("regularized.keras")
        try model.save(to: path)
        let loaded = try Model.load(from: path)

        let conv = try XCTUnwrap(loaded.layers[0] as? Conv2D)
        XCTAssertEqual(conv.kernelRegularizer, .l2(0.02))
        XCTAssertEqual(conv.biasRegularizer, .l2(0.01))
        XCTAssertEqual(conv.kernelConstraint, .maxNorm(maxValue: 0.8, axes: [0, 1, 2]))
        XCTAssertEqual(conv.biasConstraint, .nonNeg)
        XCTAssertEqual(conv.activityRegularizer, .l2(0.01))
        let depthwise = try XCTUnwrap(loaded.layers[1] as? DepthwiseConv2D)
        XCTAssertEqual(depthwise.depthwiseRegularizer, .l1l2(l1: 0.01, l2: 0.03))
        XCTAssertEqual(depthwise.depthwiseConstraint, .unitNorm(axes: [0, 1]))
        XCTAssertNil(depthwise.biasRegularizer)
        let separable = try XCTUnwrap(loaded.layers[2] as? SeparableConv2D)
        XCTAssertEqual([separable.depthwiseRegularizer, separable.pointwiseRegularizer, separable.biasRegularizer],
                       [.l2(0.01), .l1(0.02), .l2(0.05)])
        XCTAssertEqual([separable.depthwiseConstraint, separable.pointwiseConstraint, separable.biasConstraint],
                       [.nonNeg, .maxNorm(1.5), .nonNeg])
        let transpose = try XCTUnwrap(loaded.layers[3] as? Conv2DTranspose)
        XCTAssertEqual(transpose.kernelRegularizer, .l2(0.01))
        XCTAssertEqual(transpose.kernelConstraint, .maxNorm(maxValue: 0.5, axes: [0, 1, 3]))
        let activity = try XCTUnwrap(loaded.layers[5] as? ActivityRegularization)
        XCTAssertEqual([activity.l1, activity.l2], [0.01, 0.02])
        XCTAssertNil(transpose.activityRegularizer)
        let dense = try XCTUnwrap(loaded.layers[6] as? Dense)
        XCTAssertEqual(dense.activityRegularizer, .l1(0.005))
        XCTAssertEqual(dense.kernelRegularizer, .l1l2(l1: 0.001, l2: 0.01))
        XCTAssertEqual(dense.kernelConstraint, .unitNorm)
        XCTAssertEqual(dense.biasConstraint, .maxNorm(0.2))

        // The reported loss includes the penalties, and training goes on identically.
        XCTAssertEqual(try loaded.evaluate(x, y, verbose: 0)["loss"]!, try model.evaluate(x, y, verbose: 0)["loss"]!, accuracy: 1e-6)
        _ = try model.fit(x, y, batchSize: 3, epochs: 1, verbose: 0, shuffle: false)
        _ = try loaded.fit(x, y, batchSize: 3, epochs: 1, verbose: 0, shuffle: false)
        for (a, b) in zip(try loaded.getWeights(), try model.getWeights()) { XCTAssertLessThanOrEqual(maxAbsDifference(a, b), 1e-6) }
    }

    /// Floats are written as JSON floats (`0.0`, `1.0`) and integers as integers: Keras refuses
    /// `SGD(momentum=0)` and `learning_rate=1` when Python reads them as ints.
    func testConfigWritesFloatsAsFloats() throws {
        let dir = try ScratchDirectory()
        let model = Sequential { Input(shape: [3]); Dropout(0); Dense(2, kernelConstraint: .maxNorm(2)) }
        model.compile(optimizer: SGD(learningRate: 1), loss: MeanSquaredError())
        let path = dir.file("floats.keras")
        try model.save(to: path)
        let archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        var data = Data()
        _ = try archive.extract(archive["config.json"]!) { data.append($0) }
        let text = String(decoding: data, as: UTF8.self)
        for fragment in ["\"momentum\": 0.0", "\"learning_rate\": 1.0", "\"rate\": 0.0", "\"max_value\": 2.0",
                         "\"units\": 2", "\"batch_shape\": [null, 3]", "\"nesterov\": false"] {
            XCTAssertTrue(text.contains(fragment), "config.json lacks \(fragment)")
        }
        XCTAssertFalse(text.contains("\"units\": 2.0"))
        // Foundation reads it back, and so does Kestrel.
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: data))
        XCTAssertEqual((try Model.load(from: path).optimizer as? SGD)?.learningRate, 1)
    }

    func testFailedSaveLeavesPreviousFileIntact() throws {
        let dir = try ScratchDirectory()
        let model = Self.mlp()
        let path = dir.file("keep.keras")
        try model.save(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        // A layer with non-default activation parameters cannot be expressed in a Keras config:
        // the save fails and must leave the old file (and no temporary file) behind.
        let bad = Sequential { Input(shape: [3]); Dense(2, activation: .elu(alpha: 0.5)) }
        XCTAssertThrowsError(try bad.save(to: path))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["keep.keras"])
        XCTAssertThrowsError(try model.save(to: dir.file("no-such-dir/x.keras")))
    }
}
