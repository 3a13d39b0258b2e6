@testable import Kestrel
import XCTest

/// A pooling layer that alone reads a convolution's output runs inside the convolution, tile
/// by tile (`LayerContext.fusedPooling`). Training and predicting must give what the same
/// model gives with the two layers run apart (an `Activation` layer between them prevents the
/// fusion), on several threads and through inference plans that reuse buffers.
final class PoolingFusionTests: XCTestCase {
    override func tearDown() {
        Kestrel.setBLASThreads(Kestrel.backend.threads)
    }

    private func compare(input: [Int], conv: @escaping (ActivationFunction) -> Layer, activation: ActivationFunction,
                         pool: @escaping () -> Layer, tail: @escaping () -> [Layer], label: String,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        Kestrel.setBLASThreads(2)
        let fused = Sequential([InputLayer(shape: input), conv(activation), pool()] + tail())
        let apart = Sequential([InputLayer(shape: input), conv(.linear), Activation(activation), pool()] + tail())
        try apart.setWeights(fused.getWeights())
        for model in [fused, apart] {
            model.compile(optimizer: SGD(learningRate: 0.05, momentum: 0.9), loss: SparseCategoricalCrossentropy(fromLogits: true))
        }
        let batch = 7
        var generator = RandomGenerator(seed: 11)
        let x = Tensor.randomNormal([batch * 3] + input, generator: &generator)
        let y = Tensor(labels: (0..<(batch * 3)).map { $0 % 3 })
        for _ in 0..<3 {
            let a = try fused.fit(x, y, batchSize: batch, epochs: 1, verbose: 0, shuffle: false)
            let b = try apart.fit(x, y, batchSize: batch, epochs: 1, verbose: 0, shuffle: false)
            XCTAssertEqual(a.history["loss"]![0], b.history["loss"]![0], accuracy: 1e-5, label, file: file, line: line)
        }
        XCTAssertEqual(try fused.plan(capacity: batch, training: true).fusedPoolingCount, 1, "\(label): fused", file: file, line: line)
        XCTAssertEqual(try apart.plan(capacity: batch, training: true).fusedPoolingCount, 0, "\(label): apart", file: file, line: line)
        for (a, b) in try zip(fused.getWeights(), apart.getWeights()) {
            assertClose(a.scalars, b.scalars, tolerance: 1e-5, "\(label): weights after training", file: file, line: line)
        }
        // Batch 5 against a plan of capacity 5: the inference plan hands freed buffers on.
        let p = try fused.predict(x, batchSize: 5)
        let q = try apart.predict(x, batchSize: 5)
        XCTAssertEqual(try fused.plan(capacity: 5, training: false).fusedPoolingCount, 1, "\(label): inference fused", file: file, line: line)
        assertClose(p.scalars, q.scalars, tolerance: 1e-5, "\(label): predictions", file: file, line: line)
    }

    private func dense() -> [Layer] { [Flatten(), Dense(3)] }

    func testDirectConvolutionWithReLUAndMaxPooling() throws {
        try compare(input: [9, 9, 1], conv: { Conv2D(4, kernelSize: 3, activation: $0) }, activation: .relu,
                    pool: { MaxPooling2D() }, tail: dense, label: "direct relu max")
    }

    func testLoweredConvolutionWithReLUAndMaxPoolingSameOddWindows() throws {
        try compare(input: [8, 7, 6], conv: { Conv2D(5, kernelSize: 3, padding: .same, activation: $0) }, activation: .relu,
                    pool: { MaxPooling2D(poolSize: 3, strides: 2, padding: .same) }, tail: dense, label: "im2col relu max same")
    }

    func testLinearConvolutionWithMaxPooling() throws {
        try compare(input: [10, 10, 2], conv: { Conv2D(3, kernelSize: 5, activation: $0) }, activation: .linear,
                    pool: { MaxPooling2D() }, tail: { [Activation(.relu), Flatten(), Dense(3)] }, label: "linear max")
    }

    func testReLUConvolutionWithAveragePooling() throws {
        try compare(input: [9, 8, 3], conv: { Conv2D(4, kernelSize: 3, strides: 1, activation: $0) }, activation: .relu,
                    pool: { AveragePooling2D(poolSize: 2) }, tail: dense, label: "relu average")
    }

    func testConv1DWithMaxPooling1D() throws {
        try compare(input: [17, 4], conv: { Conv1D(6, kernelSize: 3, padding: .causal, activation: $0) }, activation: .relu,
                    pool: { MaxPooling1D(poolSize: 3) }, tail: dense, label: "1-D relu max")
    }

    /// Only the pooling layer may read the convolution's output; other activations keep
    /// their own passes.
    func testFusionNeedsASoleReaderAndAnEngineActivation() throws {
        let input = Input(shape: [8, 8, 1])
        let conv = try Conv2D(2, kernelSize: 3, activation: .relu)(input)
        let pooled = try MaxPooling2D()(conv)
        let twoReaders = try Model(inputs: [input], outputs: [try Flatten()(pooled), try Flatten()(conv)])
        twoReaders.compile(optimizer: SGD(), loss: MeanSquaredError())
        try twoReaders.build()
        XCTAssertEqual(try twoReaders.plan(capacity: 4, training: true).fusedPoolingCount, 0)
        let tanh = Sequential { Input(shape: [8, 8, 1]); Conv2D(2, kernelSize: 3, activation: .tanh); MaxPooling2D() }
        tanh.compile(optimizer: SGD(), loss: MeanSquaredError())
        try tanh.build()
        XCTAssertEqual(try tanh.plan(capacity: 4, training: true).fusedPoolingCount, 0)
        let relu = Sequential { Input(shape: [8, 8, 1]); Conv2D(2, kernelSize: 3, activation: .relu); MaxPooling2D() }
        relu.compile(optimizer: SGD(), loss: MeanSquaredError())
        try relu.build()
        XCTAssertEqual(try relu.plan(capacity: 4, training: false).fusedPoolingCount, 1)
    }

    func testFusedTrainingStepAllocatesNothing() throws {
        let model = Sequential {
            Input(shape: [12, 12, 1])
            Conv2D(4, kernelSize: 3, activation: .relu)
            MaxPooling2D()
            Conv2D(8, kernelSize: 3, activation: .relu)
            AveragePooling2D(poolSize: 2)
            Flatten()
            Dense(3)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try assertTrainingStepsAllocateNothing(model, x: Tensor.randomUniform([16, 12, 12, 1]),
                                               y: Tensor(labels: (0..<16).map { $0 % 3 }), batchSize: 8)
        XCTAssertEqual(try model.plan(capacity: 8, training: true).fusedPoolingCount, 2)
    }
}
