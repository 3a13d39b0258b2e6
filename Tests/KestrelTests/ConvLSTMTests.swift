@testable import Kestrel
import XCTest

/// ConvLSTM1D/2D/3D: shapes, weights and errors; finite-difference gradients in every
/// configuration (dropout, initial states and returned states included); a 1×1 ConvLSTM against
/// LSTM run on every pixel; a network that learns which way a dot moves, training without
/// allocating. Their outputs and gradients against Keras are in ConvReferenceTests (fixtures
/// conv_layers.json).
final class ConvLSTMTests: XCTestCase {
    func testShapesWeightsAndErrors() throws {
        XCTAssertEqual(try ConvLSTM2D(4, kernelSize: 3).build(inputShape: [5, 10, 9, 2]), [8, 7, 4])
        XCTAssertEqual(try ConvLSTM2D(4, kernelSize: 3, returnSequences: true).build(inputShape: [5, 10, 9, 2]), [5, 8, 7, 4])
        XCTAssertEqual(try ConvLSTM2D(4, kernelSize: [3, 2], strides: 2, padding: .same).build(inputShape: [5, 10, 9, 2]),
                       [5, 5, 4])
        XCTAssertEqual(try ConvLSTM1D(3, kernelSize: 3, dilationRate: 2).build(inputShape: [4, 12, 2]), [8, 3])
        XCTAssertEqual(try ConvLSTM3D(2, kernelSize: 2, returnSequences: true).build(inputShape: [3, 4, 5, 6, 1]),
                       [3, 3, 4, 5, 2])
        let layer = ConvLSTM2D(4, kernelSize: [3, 2])
        try layer.build(inputShape: [5, 6, 6, 3])
        XCTAssertEqual(layer.weightSpecs.map(\.name), ["kernel", "recurrent_kernel", "bias"])
        XCTAssertEqual(layer.weightSpecs.map(\.shape), [[3, 2, 3, 16], [3, 2, 4, 16], [16]])
        // Keras's unit forget bias: ones for the forget gate only.
        XCTAssertEqual(layer.getWeights()[2].scalars, [0, 0, 0, 0, 1, 1, 1, 1] + [Float](repeating: 0, count: 8))
        XCTAssertEqual(ConvLSTM2D(2, kernelSize: 3, useBias: false).weightSpecs(forInputsOrEmpty: [[3, 5, 5, 1]]).count, 2)
        XCTAssertEqual(layer.parameterCount, 3 * 2 * 3 * 16 + 3 * 2 * 4 * 16 + 16)

        assertThrowsMessage(try ConvLSTM2D(4, kernelSize: 3).build(inputShape: [6, 6, 3]),
                            contains: ["ConvLSTM2D", "(timesteps, height, width, channels)", "[6, 6, 3]"])
        assertThrowsMessage(try ConvLSTM1D(4, kernelSize: 3).build(inputShape: [6, 6, 3, 1]),
                            contains: ["ConvLSTM1D", "(timesteps, steps, channels)"])
        assertThrowsMessage(try ConvLSTM2D(0, kernelSize: 3).build(inputShape: [3, 6, 6, 1]), contains: ["ConvLSTM2D", "filters", "0"])
        assertThrowsMessage(try ConvLSTM2D(2, kernelSize: 3, dropout: 1).build(inputShape: [3, 6, 6, 1]),
                            contains: ["ConvLSTM2D", "dropout", "1.0"])
        assertThrowsMessage(try ConvLSTM1D(2, kernelSize: 3, padding: .causal).build(inputShape: [3, 6, 1]),
                            contains: ["ConvLSTM1D", "causal"])
        assertThrowsMessage(try ConvLSTM2D(2, kernelSize: 3, activation: .softmax).build(inputShape: [3, 6, 6, 1]),
                            contains: ["ConvLSTM2D", "activation", "softmax"])
        assertThrowsMessage(try ConvLSTM2D(2, kernelSize: [3, 3, 3]).build(inputShape: [3, 6, 6, 1]),
                            contains: ["ConvLSTM2D", "kernelSize"])
        assertThrowsMessage(try ConvLSTM2D(2, kernelSize: 5).build(inputShape: [3, 4, 4, 1]),
                            contains: ["ConvLSTM2D", "does not fit"])
        assertThrowsMessage(try ConvLSTM2D(2, kernelSize: 3).build(inputShapes: [[3, 6, 6, 1], [4, 4, 2], [5, 4, 2]]),
                            contains: ["ConvLSTM2D", "initial state 1", "[4, 4, 2]", "[5, 4, 2]"])
    }

    func testGradientsAcrossConfigurations() throws {
        Kestrel.setRandomSeed(8)
        let cases: [(String, () -> Layer, [[Int]], Bool)] = [
            ("2d 3 valid", { ConvLSTM2D(2, kernelSize: 3) }, [[3, 4, 4, 2]], false),
            ("2d same sequences", { ConvLSTM2D(2, kernelSize: 3, padding: .same, returnSequences: true) }, [[3, 3, 3, 2]], false),
            ("2d [3,2] strides 2 backwards", { ConvLSTM2D(2, kernelSize: [3, 2], strides: 2, padding: .same, goBackwards: true) },
             [[3, 5, 4, 1]], false),
            ("2d dilation relu/hard sigmoid no bias",
             { ConvLSTM2D(2, kernelSize: 2, dilationRate: 2, activation: .relu, recurrentActivation: .hardSigmoid,
                          useBias: false, returnSequences: true) }, [[3, 4, 4, 1]], false),
            ("1d same sequences", { ConvLSTM1D(3, kernelSize: 3, padding: .same, returnSequences: true) }, [[4, 5, 2]], false),
            ("3d 2", { ConvLSTM3D(2, kernelSize: 2) }, [[2, 3, 3, 3, 1]], false),
            ("2d dropout", { ConvLSTM2D(2, kernelSize: 3, padding: .same, dropout: 0.3, returnSequences: true) },
             [[3, 3, 3, 2]], true),
            ("2d recurrent dropout", { ConvLSTM2D(2, kernelSize: 3, padding: .same, recurrentDropout: 0.4) }, [[3, 3, 3, 2]], true),
            ("1d both dropouts backwards",
             { ConvLSTM1D(2, kernelSize: 2, dropout: 0.2, recurrentDropout: 0.3, returnSequences: true, goBackwards: true) },
             [[3, 5, 2]], true),
            ("2d initial states", { ConvLSTM2D(2, kernelSize: 3, returnSequences: true) },
             [[3, 4, 4, 1], [2, 2, 2], [2, 2, 2]], false),
            ("1d initial states recurrent dropout", { ConvLSTM1D(2, kernelSize: 3, padding: .same, recurrentDropout: 0.3) },
             [[3, 4, 2], [4, 2], [4, 2]], true),
        ]
        for (label, make, shapes, training) in cases {
            let epsilon: Float = label.contains("relu") ? 2e-3 : 1e-2
            try LayerHarness(make(), inputShapes: shapes, batch: 2, training: training).check(epsilon: epsilon, label: " " + label)
        }
    }

    /// With `returnState`, the final hidden state is the output and the cell state's gradient
    /// reaches every weight and the input (central differences of Σ out·P + Σ h·Q + Σ c·R).
    func testReturnedStatesAndTheirGradients() throws {
        Kestrel.setRandomSeed(4)
        let layer = ConvLSTM2D(2, kernelSize: 3, padding: .same, returnState: true)
        var rng = RandomGenerator(seed: 6)
        func random(_ count: Int) -> [Float] {
            var v = [Float](repeating: 0, count: count)
            v.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
            return v
        }
        let x = Tensor(shape: [2, 3, 3, 4, 1], scalars: random(72))
        let p = random(48), q = random(48), r = random(48)
        try layer.build(inputShape: [3, 3, 4, 1])
        XCTAssertEqual(layer.additionalOutputShapes(forInputs: [[3, 3, 4, 1]]), [[3, 4, 2], [3, 4, 2]])
        let run = try MultiInputLayerRun(layer, inputs: [x], projection: p, additionalProjections: [q, r])
        XCTAssertEqual(run.additionalOutputs.count, 2)
        XCTAssertEqual(run.additionalOutputs[0], run.output, "the final hidden state is the output")
        func objective() throws -> Double {
            let y = try MultiInputLayerRun(layer, inputs: [x], projection: p, additionalProjections: [q, r])
            return zip(y.output, p).reduce(0.0) { $0 + Double($1.0 * $1.1) }
                + zip(y.additionalOutputs[0], q).reduce(0.0) { $0 + Double($1.0 * $1.1) }
                + zip(y.additionalOutputs[1], r).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        for (w, pointer) in layer.weightPointers().enumerated() {
            for i in stride(from: 0, to: layer.weightSpecs[w].count, by: 7) {
                let saved = pointer[i], h: Float = 1e-2
                pointer[i] = saved + h
                let plus = try objective()
                pointer[i] = saved - h
                let minus = try objective()
                pointer[i] = saved
                XCTAssertEqual(Double(run.weightGradients[w][i]), (plus - minus) / Double(2 * h), accuracy: 2e-2,
                               "\(layer.weightSpecs[w].name)[\(i)]")
            }
        }
    }

    /// A 1×1 ConvLSTM is an LSTM run on every pixel's sequence with the same weights.
    func testPointwiseConvLSTMIsAnLSTMOnEveryPixel() throws {
        Kestrel.setRandomSeed(10)
        let conv = ConvLSTM2D(3, kernelSize: 1, returnSequences: true)
        try conv.build(inputShape: [4, 2, 3, 2])
        let lstm = LSTM(3, returnSequences: true)
        try lstm.build(inputShape: [4, 2])
        let weights = conv.getWeights()
        try lstm.setWeights([try weights[0].reshaped([2, 12]), try weights[1].reshaped([3, 12]), weights[2]])
        let x = Tensor.randomUniform([2, 4, 2, 3, 2], minval: -1, maxval: 1)
        let y = try conv(x)
        // Pixel (i, j) of sample n as a sequence (4, 2).
        for n in 0..<2 {
            for pixel in 0..<6 {
                var sequence = [Float]()
                for s in 0..<4 {
                    let first: Int = ((n * 4 + s) * 6 + pixel) * 2
                    sequence += x.scalars[first..<(first + 2)]
                }
                let expected = try lstm(Tensor(shape: [1, 4, 2], scalars: sequence)).scalars
                for s in 0..<4 {
                    for f in 0..<3 {
                        let at: Int = ((n * 4 + s) * 6 + pixel) * 3 + f
                        XCTAssertEqual(y.scalars[at], expected[s * 3 + f], accuracy: 1e-5)
                    }
                }
            }
        }
    }

    /// Dropout in training only, one mask per sequence: in inference the layer is deterministic.
    func testDropoutOnlyInTraining() throws {
        let layer = ConvLSTM2D(2, kernelSize: 3, padding: .same, dropout: 0.5, recurrentDropout: 0.5, seed: 3)
        try layer.build(inputShape: [3, 4, 4, 1])
        let x = Tensor.randomUniform([2, 3, 4, 4, 1], minval: 0.5, maxval: 1)
        XCTAssertEqual(try layer(x).scalars, try layer(x).scalars)
        XCTAssertNotEqual(try layer(x, training: true).scalars, try layer(x).scalars)
    }

    /// Frames of a dot moving left or right: the direction is only in how frames follow each
    /// other, which a ConvLSTM learns; training steps allocate nothing, dropout included.
    func testLearnsWhichWayADotMovesAndTrainsWithoutAllocating() throws {
        Kestrel.setRandomSeed(2)
        let samples = 160, frames = 4, side = 6
        var scalars = [Float](repeating: 0, count: samples * frames * side * side), labels = [Int]()
        var rng = RandomGenerator(seed: 9)
        for n in 0..<samples {
            let right = n % 2 == 0, row = Int(rng.nextUnitFloat() * Float(side)) % side
            let start = right ? Int(rng.nextUnitFloat() * 3) % 3 : 3 + Int(rng.nextUnitFloat() * 3) % 3
            for f in 0..<frames {
                let column = right ? start + f : start - f
                guard (0..<side).contains(column) else { continue }
                scalars[((n * frames + f) * side + row) * side + column] = 1
            }
            labels.append(right ? 1 : 0)
        }
        let x = Tensor(shape: [samples, frames, side, side, 1], scalars: scalars), y = Tensor(labels: labels)
        let model = Sequential {
            Input(shape: [frames, side, side, 1])
            ConvLSTM2D(6, kernelSize: 3, padding: .same)
            GlobalMaxPooling2D()
            Dense(2)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: ["accuracy"])
        let history = try model.fit(x, y, batchSize: 16, epochs: 25, verbose: 0)
        XCTAssertGreaterThan(history.history["accuracy"]!.last!, 0.9)
        let dropped = Sequential {
            Input(shape: [frames, side, side, 1])
            ConvLSTM2D(4, kernelSize: 3, padding: .same, dropout: 0.2, recurrentDropout: 0.2, returnSequences: true)
            ConvLSTM2D(2, kernelSize: 3, strides: 2)
            Flatten()
            Dense(2)
        }
        dropped.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try assertTrainingStepsAllocateNothing(dropped, x: x, y: y, batchSize: 16)
    }
}
