import Foundation
import Kestrel
import KestrelDatasets
import KestrelKeras
import XCTest

/// Kestrel's `.keras` files against Keras 3 itself (JAX backend, CPU), in a virtual
/// environment the tests create (see `scripts/interop/`).
final class KerasInteropTests: XCTestCase {
    func testKerasLoadsKestrelArchivesWithMatchingPredictions() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(8)
        // The tutorial's model, trained a little so the weights are not the initial ones.
        let mlp = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(32, activation: .relu)
            Dropout(0.2)
            Dense(10)
        }
        mlp.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: ["accuracy"])
        let x = Tensor.randomUniform([16, 28, 28])
        let labels = Tensor(shape: [16], scalars: (0..<16).map { Float($0 % 10) })
        _ = try mlp.fit(x, labels, batchSize: 8, epochs: 1, verbose: 0)
        var cases: [(model: Model, inputs: [Tensor], name: String)] = [(mlp, [x], "mlp")]

        let functional = try KerasArchiveTests.functional()
        let a = Tensor.randomUniform([5, 6], minval: -1, maxval: 1)
        let b = Tensor.randomUniform([5, 6], minval: -1, maxval: 1)
        cases.append((functional, [a, b], "functional"))

        let activations = Sequential([InputLayer(shape: [7]), Dense(6, activation: .gelu), Dense(6, activation: .selu),
                                      Dense(6, activation: .swish), ReLU(maxValue: 0.7, negativeSlope: 0.1, threshold: 0.05),
                                      LeakyReLU(negativeSlope: 0.3), Dense(4, activation: .softsign), Reshape([2, 2]),
                                      Softmax(axis: 1)])
        cases.append((activations, [Tensor.randomUniform([4, 7], minval: -2, maxval: 2)], "activations"))
        try compareWithKeras(cases, dir: dir)
    }

    /// ELU, PReLU, the noise layers, Identity, GroupNormalization (instance normalization
    /// included) and UnitNormalization, trained a little, load in Keras and predict the same.
    func testKerasLoadsKestrelActivationNoiseAndNormalizationLayers() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(41)
        let model = Sequential {
            Input(shape: [4, 5, 6])
            GroupNormalization(groups: 2, epsilon: 0.01)
            PReLU(alphaInitializer: .constant(0.2), sharedAxes: [1])
            GaussianNoise(0.2, seed: 5)
            Conv2D(4, kernelSize: 3, padding: .same)
            GroupNormalization(groups: -1, center: false)
            UnitNormalization(axes: [1, 2])
            ELU(alpha: 0.6)
            Flatten()
            Dense(8, activation: .selu)
            AlphaDropout(0.1)
            GaussianDropout(0.3)
            PReLU()
            Identity()
            UnitNormalization()
            Dense(3)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Tensor.randomUniform([6, 4, 5, 6], minval: -1, maxval: 1)
        _ = try model.fit(x, Tensor.randomUniform([6, 3]), batchSize: 3, epochs: 2, verbose: 0)
        try compareWithKeras(model, inputs: [x], dir: dir, name: "normalization")
    }

    /// A video classifier: a convolution, batch normalization, pooling and flattening on each
    /// frame through TimeDistributed, then a GRU over the frames.
    static func videoModel() -> Sequential {
        Sequential {
            Input(shape: [3, 6, 6, 2])
            TimeDistributed(Conv2D(4, kernelSize: 3, activation: .relu))
            TimeDistributed(BatchNormalization())
            TimeDistributed(MaxPooling2D(poolSize: 2))
            TimeDistributed(Flatten())
            GRU(3)
            Dense(2)
        }
    }

    func testKerasLoadsKestrelTimeDistributedModel() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(43)
        let model = Self.videoModel()
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Tensor.randomUniform([6, 3, 6, 6, 2], minval: -1, maxval: 1)
        _ = try model.fit(x, Tensor.randomUniform([6, 2]), batchSize: 3, epochs: 2, verbose: 0)
        try compareWithKeras(model, inputs: [x], dir: dir, name: "video")
    }

    func testKerasLoadsKestrelCNN() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(31)
        let cnn = Sequential {
            Input(shape: [12, 12, 2])
            Conv2D(6, kernelSize: 3, padding: .same, activation: .relu)
            BatchNormalization()
            MaxPooling2D(poolSize: 2)
            Conv2D(8, kernelSize: [3, 2], strides: [2, 1], activation: .tanh)
            AveragePooling2D(poolSize: 2, strides: 1, padding: .same)
            GlobalMaxPooling2D()
            LayerNormalization()
            Dense(5, activation: .softmax)
        }
        cnn.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy())
        let x = Tensor.randomUniform([6, 12, 12, 2], minval: -1, maxval: 1)
        _ = try cnn.fit(x, Tensor(shape: [6], scalars: (0..<6).map { Float($0 % 5) }), batchSize: 3, epochs: 2, verbose: 0)
        var cases: [(model: Model, inputs: [Tensor], name: String)] = [(cnn, [x], "cnn")]

        let reshaping = Sequential {
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
            Conv1DTranspose(3, kernelSize: 4, strides: 2, padding: .same, outputPadding: 1)
            Conv1D(4, kernelSize: 3, padding: .causal)
            MaxPooling1D(poolSize: 2)
            GlobalAveragePooling1D()
            RepeatVector(2)
            Flatten()
            Dense(4)
        }
        let convolutions = Sequential {
            Input(shape: [6, 6, 3])
            DepthwiseConv2D(kernelSize: 3, padding: .same, depthMultiplier: 2, activation: .relu)
            SeparableConv2D(4, kernelSize: 2, strides: 2)
            Conv2DTranspose(3, kernelSize: 3, strides: 2, padding: .same)
            Conv2DTranspose(2, kernelSize: 4, strides: 2, padding: .same, activation: .relu)
            Conv2DTranspose(2, kernelSize: [2, 1], strides: [3, 2])
            Conv2DTranspose(2, kernelSize: 3, strides: 2, padding: .same, outputPadding: [1, 0])
            Conv2DTranspose(2, kernelSize: 2, strides: [2, 3], outputPadding: [1, 2])
            Flatten()
            Dense(2)
        }
        cases.append((convolutions, [Tensor.randomUniform([2, 6, 6, 3], minval: -1, maxval: 1)], "convolutions"))
        cases.append((reshaping, [Tensor.randomUniform([3, 5, 4, 2], minval: -1, maxval: 1)], "reshaping"))
        try compareWithKeras(cases, dir: dir)
    }

    /// Keras 3 loads Kestrel's Embedding → LSTM → LSTM (backwards) → Dense and its attention
    /// model (self- and cross-attention) and predicts the same; it resumes the sequence
    /// model's training from Kestrel's optimizer state (the LSTMs' slots are in Keras's order)
    /// to the weights Kestrel reaches.
    func testKerasLoadsKestrelSequenceAndAttentionModels() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(17)
        let sequence = KerasArchiveTests.sequenceModel()
        sequence.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let tokens = KerasArchiveTests.tokens(samples: 16, seed: 5)
        let targets = Tensor.randomUniform([16, 2], minval: -1, maxval: 1)
        _ = try sequence.fit(tokens, targets, batchSize: 8, epochs: 1, verbose: 0)
        let recurrent = KerasArchiveTests.recurrentModel()
        recurrent.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let series = Tensor.randomUniform([8, 6, 3], minval: -1, maxval: 1)
        _ = try recurrent.fit(series, Tensor.randomUniform([8, 2], minval: -1, maxval: 1), batchSize: 4, epochs: 1, verbose: 0)
        // (Before the resumed training below moves the sequence model on.)
        try compareWithKeras([(sequence, [tokens], "sequence"), (recurrent, [series], "recurrent")], dir: dir)
        try TensorJSON.write(tokens, to: dir.file("tokens.json"))
        try TensorJSON.write(targets, to: dir.file("targets.json"))
        try Python.helper(["keras-resume", dir.file("sequence.keras"), dir.file("tokens.json"), dir.file("targets.json"),
                           dir.file("resumed.json")])
        _ = try sequence.fit(tokens, targets, batchSize: 8, epochs: 1, verbose: 0, shuffle: false)
        let resumed = maxAbsDifference(Tensor(try sequence.getWeights().flatMap(\.scalars)), try TensorJSON.read(dir.file("resumed.json")))
        print("interop: Keras resumed Adam training of Kestrel's Embedding/LSTM model; max weight difference after one more epoch = \(resumed)")
        XCTAssertLessThanOrEqual(resumed, 1e-5)

        // Head sizes equal: Keras 3.15 on JAX fails attention whose value_dim differs from key_dim.
        let attention = try KerasArchiveTests.attentionModel(valueDim: 2)
        attention.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let queries = Tensor.randomUniform([6, 4, 6], minval: -1, maxval: 1)
        let contexts = Tensor.randomUniform([6, 3, 5], minval: -1, maxval: 1)
        _ = try attention.fit([queries, contexts], [Tensor.randomUniform([6, 2])], batchSize: 3, epochs: 1, verbose: 0)

        let scoreAttention = try KerasArchiveTests.scoreAttentionModel()
        scoreAttention.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        _ = try scoreAttention.fit([queries, contexts], [Tensor.randomUniform([6, 2])], batchSize: 3, epochs: 1, verbose: 0)
        try compareWithKeras([(attention, [queries, contexts], "attention"), (scoreAttention, [queries, contexts], "score-attention")],
                             dir: dir)
    }

    /// Keras 3 resumes training from Kestrel's Nadam, Adadelta, Lion, Lamb and Ftrl states
    /// (Nadam's momentum product included) under Kestrel's LogCosh and focal losses, and from
    /// states with weight decay, moving averages and gradient accumulation, and reaches the
    /// weights Kestrel reaches: every slot sits where Keras expects it.
    func testKerasResumesTheOtherOptimizersAndLosses() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(19)
        let x = Tensor.randomUniform([16, 4], minval: -1, maxval: 1)
        let onehot = Tensor(shape: [16, 3], scalars: (0..<48).map { $0 % 3 == ($0 / 3) % 3 ? 1 : 0 })
        let setups: [(String, Optimizer, Loss)] = [
            ("nadam", Nadam(learningRate: 0.01), LogCosh()),
            ("adadelta", Adadelta(learningRate: 1), CategoricalFocalCrossentropy(fromLogits: true)),
            ("lion", Lion(learningRate: 0.003), BinaryFocalCrossentropy(applyClassBalancing: true, fromLogits: true)),
            ("lamb", Lamb(learningRate: 0.01), CategoricalCrossentropy(fromLogits: true)),
            ("ftrl", Ftrl(learningRate: 0.1, l1RegularizationStrength: 0.001, l2ShrinkageRegularizationStrength: 0.01),
             CategoricalCrossentropy(fromLogits: true)),
            // The base options: a moving average (put into the weights at the end of each fit,
            // by both), gradient accumulation and weight decay.
            ("sgd-decay-ema", SGD(learningRate: 0.05, momentum: 0.9, weightDecay: 0.05, useEMA: true, emaMomentum: 0.8),
             CategoricalCrossentropy(fromLogits: true)),
            ("adam-accumulate-ema", Adam(learningRate: 0.01, useEMA: true, emaOverwriteFrequency: 3, gradientAccumulationSteps: 2),
             CategoricalCrossentropy(fromLogits: true)),
            ("nadam-accumulate-decay", Nadam(learningRate: 0.01, weightDecay: 0.1, gradientAccumulationSteps: 2), LogCosh()),
        ]
        try TensorJSON.write(x, to: dir.file("x.json"))
        try TensorJSON.write(onehot, to: dir.file("y.json"))
        for (name, optimizer, loss) in setups {
            let model = Sequential { Input(shape: [4]); Dense(5, activation: .tanh); Dense(3) }
            model.compile(optimizer: optimizer, loss: loss)
            _ = try model.fit(x, onehot, batchSize: 8, epochs: 2, verbose: 0)
            try model.save(to: dir.file("\(name).keras"))
            try Python.helper(["keras-resume", dir.file("\(name).keras"), dir.file("x.json"), dir.file("y.json"),
                               dir.file("\(name).json")])
            _ = try model.fit(x, onehot, batchSize: 8, epochs: 1, verbose: 0, shuffle: false)
            let difference = maxAbsDifference(Tensor(try model.getWeights().flatMap(\.scalars)), try TensorJSON.read(dir.file("\(name).json")))
            print("interop: Keras resumed \(name) training (loss \(loss.name)) of a Kestrel model; max weight difference after one more epoch = \(difference)")
            XCTAssertLessThanOrEqual(difference, 1e-5, name)
        }
    }

    /// Python's `safetensors` reads the weights Kestrel exports, under Keras's names and under
    /// PyTorch's (kernels transposed to `(out, in)`).
    func testPythonSafetensorsReadsKestrelWeights() throws {
        let dir = try ScratchDirectory()
        let model = Sequential { Input(shape: [5]); Dense(4, activation: .relu, name: "fc1"); Dense(2, name: "fc2") }
        try model.build()
        for (naming, file, expected) in [
            (WeightNaming.keras, "keras.safetensors",
             ["layers/dense/vars/0": [5, 4], "layers/dense/vars/1": [4], "layers/dense_1/vars/0": [4, 2], "layers/dense_1/vars/1": [2]]),
            (WeightNaming.pytorch(), "torch.safetensors",
             ["fc1.weight": [4, 5], "fc1.bias": [4], "fc2.weight": [2, 4], "fc2.bias": [2]]),
        ] {
            try model.saveWeights(to: dir.file(file), naming: naming)
            try Python.helper(["safetensors-read", dir.file(file), dir.file(file + ".json")])
            let shapes = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file(file + ".json")))) as! [String: [Int]]
            XCTAssertEqual(shapes, expected, file)
        }
    }

    /// NumPy reads the `.npy` and `.npz` files Kestrel writes (stored and deflated archives)
    /// as float32 arrays of the tensors' shapes and values.
    func testNumPyReadsKestrelArrays() throws {
        let dir = try ScratchDirectory()
        let matrix = Tensor(shape: [2, 3], scalars: [1.5, -2, 0, 3.25, 1e-7, -1e6])
        let scalar = Tensor(shape: [], scalars: [7])
        let empty = Tensor(shape: [4, 0], scalars: [])
        try NPY.save(matrix, to: dir.file("m.npy"))
        try NPY.save(scalar, to: dir.file("s.npy"))
        try NPZ.save(["matrix": matrix, "empty": empty], to: dir.file("stored.npz"))
        try NPZ.save(["matrix": matrix, "scalar": scalar], to: dir.file("deflated.npz"), compressed: true)
        let output = try Python.helper(["numpy-read"] + ["m.npy", "s.npy", "stored.npz", "deflated.npz"].map(dir.file))
        let read = try JSONSerialization.jsonObject(with: Data(output.split(separator: "\n").last!.utf8)) as! [String: [String: [String: Any]]]
        func check(_ file: String, _ name: String, _ tensor: Tensor) {
            guard let array = read[dir.file(file)]?[name] else { return XCTFail("\(file) \(name) missing: \(read)") }
            XCTAssertEqual(array["dtype"] as? String, "float32", "\(file) \(name)")
            XCTAssertEqual(array["shape"] as? [Int], tensor.shape, "\(file) \(name)")
            XCTAssertEqual((array["values"] as? [NSNumber])?.map(\.floatValue), tensor.scalars, "\(file) \(name)")
        }
        check("m.npy", "", matrix)
        check("s.npy", "", scalar)
        check("stored.npz", "matrix", matrix)
        check("stored.npz", "empty", empty)
        check("deflated.npz", "matrix", matrix)
        check("deflated.npz", "scalar", scalar)
    }

    /// The PyTorch-layout export of the `mnist-cnn` example's port of PyTorch's MNIST `Net`,
    /// read by a numpy re-implementation of that module's forward (NCHW convolutions, `view`
    /// flattening channels first, Linear as `x @ W.T + b`), gives Kestrel's logits. Torch itself
    /// is too heavy for CI; `scripts/interop/torch_state_dict_check.py` does the same with it.
    func testPyTorchLayoutExportReproducesTheModuleInNumpy() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(22)
        let net = Sequential {
            Input(shape: [28, 28, 1])
            Conv2D(10, kernelSize: 5, name: "conv1")
            MaxPooling2D(poolSize: 2)
            ReLU()
            Conv2D(20, kernelSize: 5, name: "conv2")
            SpatialDropout2D(0.5, name: "conv2_drop")
            MaxPooling2D(poolSize: 2)
            ReLU()
            Flatten()
            Dense(50, activation: .relu, name: "fc1")
            Dropout(0.5)
            Dense(10, name: "fc2")
        }
        net.compile(optimizer: SGD(learningRate: 0.01, momentum: 0.5), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = Tensor.randomUniform([16, 28, 28, 1], minval: -0.8, maxval: 2.8)
        // A few steps, so that biases are not zero and the kernels not their initial values.
        _ = try net.fit(x, Tensor(shape: [16], scalars: (0..<16).map { Float($0 % 10) }), batchSize: 8, epochs: 2, verbose: 0)
        let file = dir.file("net.safetensors")
        try net.saveWeights(to: file, naming: .pytorch())
        try TensorJSON.write(x, to: dir.file("x.json"))
        try Python.helper(["torch-net-numpy", file, dir.file("x.json"), dir.file("y.json")])
        let logits = try net.predict(x)
        let difference = maxAbsDifference(logits, try TensorJSON.read(dir.file("y.json")))
        print("interop: numpy's PyTorch Net forward on Kestrel's state_dict export; max |Kestrel − numpy| = \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5)

        // And back: a fresh model loading the state_dict predicts the same.
        let copy = Sequential {
            Input(shape: [28, 28, 1]); Conv2D(10, kernelSize: 5, name: "conv1"); MaxPooling2D(poolSize: 2); ReLU()
            Conv2D(20, kernelSize: 5, name: "conv2"); MaxPooling2D(poolSize: 2); ReLU(); Flatten()
            Dense(50, activation: .relu, name: "fc1"); Dense(10, name: "fc2")
        }
        try copy.loadWeights(from: file, naming: .pytorch())
        XCTAssertLessThanOrEqual(maxAbsDifference(try copy.predict(x), logits), 1e-6)
    }

    private func compareWithKeras(_ model: Model, inputs: [Tensor], dir: ScratchDirectory, name: String) throws {
        try compareWithKeras([(model, inputs, name)], dir: dir)
    }

    /// Saves each model, has Keras 3 load and run them all in one Python process (importing
    /// Keras and JAX once instead of once per model), and compares its predictions with Kestrel's.
    private func compareWithKeras(_ cases: [(model: Model, inputs: [Tensor], name: String)], dir: ScratchDirectory) throws {
        var jobs: [[String: Any]] = []
        for (model, inputs, name) in cases {
            let path = dir.file("\(name).keras")
            try model.save(to: path)
            var files: [String] = []
            for (k, x) in inputs.enumerated() {
                let file = dir.file("\(name).input\(k).json")
                try TensorJSON.write(x, to: file)
                files.append(file)
            }
            jobs.append(["model": path, "inputs": files, "output": dir.file("\(name).keras-output.json")])
        }
        let jobsFile = dir.file("jobs-\(cases[0].name).json")
        try JSONSerialization.data(withJSONObject: jobs).write(to: URL(fileURLWithPath: jobsFile))
        try Python.helper(["keras-predict-many", jobsFile])
        for (model, inputs, name) in cases {
            let keras = try TensorJSON.read(dir.file("\(name).keras-output.json"))
            let ours = inputs.count == 1 ? try model.predict(inputs[0]) : try model.predict(inputs)[0]
            let difference = maxAbsDifference(ours, keras)
            print("interop: Keras 3 loaded Kestrel's \(name).keras; max |Kestrel − Keras| = \(difference)")
            XCTAssertLessThanOrEqual(difference, 1e-5, name)
        }
    }

    func testKestrelLoadsArchivesWrittenByKeras() throws {
        let dir = try ScratchDirectory()
        let names = try Python.helper(["keras-make", dir.path]).split(separator: "\n").last!.split(separator: " ").map(String.init)
        XCTAssertEqual(names, ["mlp", "activations", "cnn", "functional", "nested_sequential", "nested_functional",
                               "sequential_of_functional", "preprocessing", "augmentation", "sequence", "attention", "recurrent", "normalization",
                               "masked", "masked_concat", "masking", "seq2seq", "categorical", "volume", "separable_1d",
                               "conv_lstm"])
        var resaved: [(model: Model, inputs: [Tensor], name: String)] = []
        for name in names {
            let model = try Model.load(from: dir.file("\(name).keras"))
            var inputs: [Tensor] = []
            while FileManager.default.fileExists(atPath: dir.file("\(name).input\(inputs.count).json")) {
                inputs.append(try TensorJSON.read(dir.file("\(name).input\(inputs.count).json")))
            }
            let expected = try TensorJSON.read(dir.file("\(name).expected.json"))
            let ours = inputs.count == 1 ? try model.predict(inputs[0]) : try model.predict(inputs)[0]
            let difference = maxAbsDifference(ours, expected)
            print("interop: Kestrel loaded Keras 3's \(name).keras (\(model is Sequential ? "Sequential" : "Functional"), \(model.layers.count) layers); max |Kestrel − Keras| = \(difference)")
            XCTAssertLessThanOrEqual(difference, 1e-5, name)
            // Keras compiled these with Adam and trained one epoch: the state comes along.
            XCTAssertEqual(model.optimizer?.name, "adam", name)
            XCTAssertEqual(model.optimizer?.iterations, 1, name)
            if name == "augmentation" {
                // Keras's arguments as Keras wrote them (rotation's factor as its two ends).
                XCTAssertEqual((model.layers[0] as? Resizing)?.cropToAspectRatio, true)
                let flip = try XCTUnwrap(model.layers[1] as? RandomFlip)
                XCTAssertEqual([flip.mode.rawValue, "\(flip.seed.map(String.init) ?? "nil")"], ["horizontal", "3"])
                XCTAssertEqual((model.layers[2] as? RandomRotation)?.factor.bounds?.lower ?? 0, -0.1, accuracy: 1e-7)
                let zoom = try XCTUnwrap(model.layers[3] as? RandomZoom)
                XCTAssertEqual([zoom.fillMode.rawValue, "\(zoom.fillValue)", "\(zoom.heightFactor)"], ["constant", "0.5", "0.2"])
                let translation = try XCTUnwrap(model.layers[4] as? RandomTranslation)
                XCTAssertEqual([translation.interpolation.rawValue, translation.fillMode.rawValue, "\(translation.heightFactor)"],
                               ["nearest", "wrap", "[-0.1, 0.2]"])
                // Keras wrote RandomContrast(0.2) as the pair [0, 0.2] it draws from (1…1.2).
                let contrast = try XCTUnwrap(model.layers[5] as? RandomContrast)
                XCTAssertEqual(contrast.contrastRange?.lower, 1)
                XCTAssertEqual(contrast.contrastRange?.upper ?? 0, 1.2, accuracy: 1e-6)
                XCTAssertEqual(contrast.seed, 4)
                let brightness = try XCTUnwrap(model.layers[6] as? RandomBrightness)
                XCTAssertEqual(brightness.factor.bounds?.lower ?? 0, -0.2, accuracy: 1e-7)
                XCTAssertEqual(brightness.valueRange, 0...1)
                let invert = try XCTUnwrap(model.layers[7] as? RandomInvert)
                XCTAssertEqual(invert.probabilityRange?.lower ?? 0, 0.2, accuracy: 1e-7)
                XCTAssertEqual(invert.probabilityRange?.upper ?? 0, 0.6, accuracy: 1e-7)
                XCTAssertEqual(invert.seed, 5)
                XCTAssertEqual((model.layers[9] as? RandomGrayscale)?.factor ?? 0, 0.3, accuracy: 1e-7)
            }
            if name == "sequence" {
                XCTAssertEqual(model.layers.map(\.className), ["Embedding", "LSTM", "LSTM", "SimpleRNN", "Flatten", "Dense"])
                XCTAssertEqual((model.layers[2] as? LSTM)?.goBackwards, true)
                XCTAssertEqual((model.layers[1] as? LSTM)?.recurrentDropout, 0.25)
                XCTAssertEqual((model.layers[3] as? SimpleRNN)?.recurrentDropout, 0.2)
            }
            if name == "recurrent" {
                XCTAssertEqual(model.layers.map(\.className), ["GRU", "TimeDistributed", "Bidirectional", "Bidirectional", "Dense"])
                XCTAssertEqual(((model.layers[1] as? TimeDistributed)?.layer as? Dense)?.units, 4)
                XCTAssertEqual((model.layers[0] as? GRU)?.dropout, 0.2)
                XCTAssertEqual((model.layers[0] as? GRU)?.recurrentDropout, 0.1)
                let summed = try XCTUnwrap(model.layers[2] as? Bidirectional)
                XCTAssertEqual(summed.mergeMode, .sum)
                XCTAssertTrue(summed.forwardLayer is SimpleRNN && summed.backwardLayer.goBackwards)
                let mixed = try XCTUnwrap(model.layers[3] as? Bidirectional)
                XCTAssertEqual((mixed.forwardLayer as? GRU)?.resetAfter, false)
                XCTAssertTrue(mixed.backwardLayer is LSTM)
            }
            if name == "attention" {
                // The second attention was called by keyword (query=, value=, key=).
                let cross = try XCTUnwrap(model.layers.last { $0 is MultiHeadAttention } as? MultiHeadAttention)
                XCTAssertEqual([cross.numHeads, cross.keyDim, cross.valueDim, cross.outputShape ?? 0], [3, 2, 2, 5])
                XCTAssertFalse(cross.useBias)
                let scored = model.layers.compactMap { $0 as? ScoreAttention }
                XCTAssertEqual(scored.map(\.className), ["Attention", "AdditiveAttention"])
                XCTAssertEqual((scored[0] as? Attention)?.scoreMode, .concat)
                XCTAssertEqual(scored.map(\.useCausalMask), [true, false], "use_causal_mask, a call argument")
                XCTAssertEqual(model.layers.compactMap { ($0 as? MultiHeadAttention)?.useCausalMask }, [true, false])
            }
            if name == "normalization" {
                XCTAssertEqual((model.layers[1] as? GroupNormalization)?.groups, 3)
                XCTAssertEqual((model.layers[2] as? PReLU)?.sharedAxes, [1, 2])
                XCTAssertEqual((model.layers[4] as? UnitNormalization)?.axis, [1, 2])
                XCTAssertEqual((model.layers[9] as? ELU)?.alpha, 0.7)
                XCTAssertNotEqual(model.layers[2].getWeights()[0].scalars, [0, 0, 0, 0, 0, 0], "PReLU's trained slopes")
            }
            if name == "masked" {
                XCTAssertEqual((model.layers.first { $0 is Embedding } as? Embedding)?.maskZero, true)
                let bidirectional = try XCTUnwrap(model.layers.first { $0 is Bidirectional } as? Bidirectional)
                XCTAssertTrue(bidirectional.forwardLayer.zeroOutputForMask, "Keras sets it for returned sequences")
                let heads = try XCTUnwrap(model.layers.first { $0 is MultiHeadAttention } as? MultiHeadAttention)
                XCTAssertEqual(heads.dropout, 0.1)
                XCTAssertTrue(heads.useCausalMask)
            }
            if name == "masked_concat" {
                XCTAssertEqual(model.layers.compactMap { ($0 as? Concatenate)?.axis }.sorted(), [-1, -1, 1])
                // (Not resaved for Keras: Keras's graph counts the operations that join the
                // masks, which puts the Dense layers in another order than Kestrel writes them.)
            }
            if name == "masking" {
                XCTAssertEqual(model.layers.map(\.className), ["Masking", "LSTM", "GRU", "Dense"])
                XCTAssertEqual((model.layers[1] as? LSTM)?.zeroOutputForMask, true)
                // Without the masks the padded samples would differ.
                let padded = inputs[0], unmasked = Sequential([InputLayer(shape: [6, 3])] + Array(model.layers.dropFirst()))
                XCTAssertGreaterThan(maxAbsDifference(try unmasked.predict(padded), expected), 1e-3)
            }
            if name == "categorical" {
                // Keras's adapted boundaries come along (its num_bins 4: three boundaries).
                let buckets = try XCTUnwrap(model.layers.first { $0 is Discretization } as? Discretization)
                XCTAssertEqual(buckets.binBoundaries?.count, 3)
                XCTAssertEqual(buckets.outputMode, .oneHot)
                // The last one weighs its counts by a third input (Keras's count_weights keyword).
                XCTAssertEqual(model.layers.compactMap { ($0 as? CategoryEncoding)?.outputMode }, [.multiHot, .count, .count])
            }
            if name == "volume" {
                XCTAssertEqual(model.layers.map(\.className), [
                    "ZeroPadding3D", "Conv3D", "Conv3D", "MaxPooling3D", "SpatialDropout3D", "Conv3DTranspose",
                    "AveragePooling3D", "Cropping3D", "UpSampling3D", "GlobalAveragePooling3D", "GlobalMaxPooling3D", "Dense",
                ])
                XCTAssertEqual((model.layers[2] as? Conv3D)?.groups, 2)
                XCTAssertEqual((model.layers[5] as? Conv3DTranspose)?.outputPadding, [1, 1, 1])
            }
            if name == "conv_lstm" {
                XCTAssertEqual(model.layers.compactMap { $0 as? BaseConvLSTM }.map(\.className),
                               ["ConvLSTM2D", "ConvLSTM2D", "ConvLSTM2D", "ConvLSTM1D", "ConvLSTM3D"])
                let lstms = model.layers.compactMap { $0 as? BaseConvLSTM }
                XCTAssertEqual(lstms.map(\.returnState), [false, true, false, false, false])
                XCTAssertEqual(lstms[0].recurrentDropout, 0.1)
                XCTAssertEqual(lstms[2].recurrentActivation, .hardSigmoid)
                XCTAssertEqual(lstms[2].builtInputShapes?.count, 3, "called with initial states")
            }
            if name == "seq2seq" {
                XCTAssertEqual(model.layers.compactMap { ($0 as? RecurrentLayer)?.returnState }, [true, true, true, false])
                XCTAssertEqual((model.layers.first { $0 is Bidirectional } as? Bidirectional)?.backwardLayer.returnState, true)
                XCTAssertEqual((model.layers.first { $0 is MultiHeadAttention } as? MultiHeadAttention)?.returnAttentionScores, true)
                // Without the states passed on, the decoder computes something else.
                let encoder = try XCTUnwrap(model.layers.first { $0 is LSTM })
                let weights = try encoder.getWeights()
                try encoder.setWeights(weights.map { Tensor(filling: 0, shape: $0.shape) })
                XCTAssertGreaterThan(maxAbsDifference(try model.predict(inputs)[0], expected), 1e-3)
                try encoder.setWeights(weights)
            }
            if name.contains("nested") || name.contains("_of_")
                || ["preprocessing", "augmentation", "sequence", "attention", "recurrent", "normalization", "masked",
                    "masking", "seq2seq", "categorical", "volume", "separable_1d", "conv_lstm"].contains(name) {
                // Kestrel inlines nested models; what it saves from them Keras loads again.
                // (Preprocessing: Keras's statistics and augmentation arguments, as Kestrel
                // writes them back; sequences and attention: their weights, nested in Keras's
                // sublayer groups.)
                resaved.append((model, inputs, "\(name)-resaved"))
            }
        }
        try compareWithKeras(resaved, dir: dir)
    }

    /// Kestrel models that use other models as layers (a Sequential in a Sequential, a
    /// Sequential and a Functional model, one called twice, in a Functional model) save to
    /// `.keras` files that Keras 3 loads and predicts the same with.
    func testKerasLoadsKestrelModelsWithNestedModels() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(21)
        let block = Sequential { Input(shape: [6]); Dense(5, activation: .relu); BatchNormalization(); Dense(4) }
        let stack = Sequential { Input(shape: [8]); Dense(6, activation: .tanh); block; Dense(3) }
        stack.compile(optimizer: Adam(), loss: MeanSquaredError())
        let x = Tensor.randomUniform([10, 8], minval: -1, maxval: 1)
        _ = try stack.fit(x, Tensor.randomUniform([10, 3]), batchSize: 5, epochs: 1, verbose: 0)
        try compareWithKeras(stack, inputs: [x], dir: dir, name: "nested-sequential")

        let t = Input(shape: [4])
        let pair = try Model(inputs: t, outputs: try Dense(3, activation: .sigmoid)(try Dense(4, activation: .relu)(t)), name: "pair")
        let head = Sequential { Input(shape: [3]); Dense(3, activation: .elu); Dense(2) }
        let u = Input(shape: [5]), v = Input(shape: [5])
        let pu = try pair(try Dense(4)(u)), pv = try pair(try Dense(4)(v))
        let out = try Dense(2)(try Concatenate()([try head(try Add()([pu, pv])), pu]))
        let functional = try Model(inputs: [u, v], outputs: [out], name: "outer")
        try compareWithKeras(functional, inputs: [Tensor.randomUniform([6, 5], minval: -1, maxval: 1),
                                                  Tensor.randomUniform([6, 5], minval: -1, maxval: 1)],
                             dir: dir, name: "nested-functional")
    }

    /// Keras continues training from Kestrel's saved optimizer state exactly as Kestrel does.
    func testKerasResumesTrainingFromKestrelOptimizerState() throws {
        let dir = try ScratchDirectory()
        Kestrel.setRandomSeed(4)
        let model = Sequential { Input(shape: [6]); Dense(8, activation: .tanh); Dense(3) }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: MeanSquaredError())
        let x = Tensor.randomUniform([16, 6], minval: -1, maxval: 1)
        let y = Tensor.randomUniform([16, 3], minval: -1, maxval: 1)
        _ = try model.fit(x, y, batchSize: 8, epochs: 2, verbose: 0)
        let path = dir.file("resume.keras")
        try model.save(to: path)
        try TensorJSON.write(x, to: dir.file("x.json"))
        try TensorJSON.write(y, to: dir.file("y.json"))
        try Python.helper(["keras-resume", path, dir.file("x.json"), dir.file("y.json"), dir.file("after.json")])
        _ = try model.fit(x, y, batchSize: 8, epochs: 1, verbose: 0, shuffle: false)
        let ours = Tensor(try model.getWeights().flatMap(\.scalars))
        let keras = try TensorJSON.read(dir.file("after.json"))
        let iterations = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("after.json.iterations")))) as! [String: Int]
        XCTAssertEqual(iterations["before"], 4)
        XCTAssertEqual(iterations["after"], model.optimizer?.iterations)
        let difference = maxAbsDifference(ours, keras)
        print("interop: Keras resumed Adam training from Kestrel's state; max weight difference after one more epoch = \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5)
    }

    /// Keras reads Kestrel's regularizers and constraints and trains with them as Kestrel
    /// does: one more epoch from the same archive gives the same weights.
    func testKerasTrainsKestrelRegularizedModelsTheSame() throws {
        let dir = try ScratchDirectory()
        let (model, x, y) = try KerasArchiveTests.trainedRegularized(seed: 6, samples: 16, batchSize: 8)
        let path = dir.file("regularized.keras")
        try model.save(to: path)
        try TensorJSON.write(x, to: dir.file("x.json"))
        try TensorJSON.write(y, to: dir.file("y.json"))
        try Python.helper(["keras-resume", path, dir.file("x.json"), dir.file("y.json"), dir.file("after.json")])
        let before = Tensor(try model.getWeights().flatMap(\.scalars))
        _ = try model.fit(x, y, batchSize: 8, epochs: 1, verbose: 0, shuffle: false)
        let ours = Tensor(try model.getWeights().flatMap(\.scalars))
        let keras = try TensorJSON.read(dir.file("after.json"))
        let moved = maxAbsDifference(ours, before), difference = maxAbsDifference(ours, keras)
        print("interop: Keras trained Kestrel's regularized, constrained model one epoch; weights moved by up to \(moved), max |Kestrel − Keras| = \(difference)")
        XCTAssertGreaterThan(moved, 1e-3)
        XCTAssertLessThanOrEqual(difference, 1e-6)
    }
}
