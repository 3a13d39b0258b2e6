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
        let dir = try ScratchDirectory()
        let path = dir.file("\(name).onnx")
        try model.exportONNX(to: path)
        try TensorJSON.write(x, to: dir.file("x.json"))
        try Python.helper(["onnx-run", path, dir.file("x.json"), dir.file("y.json")])
        let runtime = try TensorJSON.read(dir.file("y.json"))
        let difference = maxAbsDifference(try model.predict(x), runtime)
        print("interop: onnxruntime ran Kestrel's \(name) export; max |Kestrel − onnxruntime| = \(difference)")
        XCTAssertLessThanOrEqual(difference, 1e-5, name)
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

    func testOnnxRuntimeRunsReshapingLayers() throws {
        Kestrel.setRandomSeed(15)
        let model = Sequential {
            Input(shape: [5, 4, 2])
            ZeroPadding2D(padding: [[1, 0], [2, 1]])
            UpSampling2D(size: [2, 3])
            SpatialDropout2D(0.3)
            Cropping2D(cropping: [[1, 2], [0, 3]])
            Conv2D(3, kernelSize: 2, strides: 2)
            Permute([2, 1, 3])
            Reshape([-1, 3])
            GlobalAveragePooling1D()
            RepeatVector(2)
            Flatten()
            Dense(4)
        }
        try compareWithOnnxRuntime(model, Tensor.randomUniform([3, 5, 4, 2], minval: -1, maxval: 1), name: "reshaping")
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
    }

    func testUnsupportedLayerThrowsAndWritesNothing() throws {
        let dir = try ScratchDirectory()
        let model = Sequential { Input(shape: [4, 4, 2]); Conv2DTranspose(2, kernelSize: 2) }
        XCTAssertThrowsError(try model.exportONNX(to: dir.file("p.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("Conv2DTranspose"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
