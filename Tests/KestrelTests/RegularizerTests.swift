@testable import Kestrel
import XCTest

/// Regularizers (penalty and gradient, in the loss a model reports and trains on) and
/// constraints (Keras's formulas, applied after each step).
final class RegularizerTests: XCTestCase {
    func testPenaltiesAndGradientsFollowKerasFormulas() {
        let w: [Float] = [0.5, -2, 0, 1.5]
        var gradient: [Float] = [1, 1, 1, 1]
        let r = Regularizer.l1l2(l1: 0.1, l2: 0.01)
        let value = w.withUnsafeBufferPointer { p in
            gradient.withUnsafeMutableBufferPointer { r.penalty(p.baseAddress!, count: 4, gradient: $0.baseAddress!) }
        }
        // 0.1·(0.5+2+0+1.5) + 0.01·(0.25+4+0+2.25)
        XCTAssertEqual(value, 0.4 + 0.065, accuracy: 1e-6)
        // Added to what was there: 1 + 0.1·sign(w) + 2·0.01·w.
        assertClose(gradient, [1 + 0.1 + 0.01, 1 - 0.1 - 0.04, 1, 1 + 0.1 + 0.03], tolerance: 1e-6)
        XCTAssertEqual(Regularizer.l2()(Tensor(w)), 0.01 * 6.5, accuracy: 1e-6)
        XCTAssertEqual(Regularizer.l1()(Tensor(w)), 0.01 * 4, accuracy: 1e-6)
        XCTAssertEqual(Regularizer.l2().kerasName, "L2")
    }

    func testConstraintsFollowKerasFormulas() throws {
        // A (2, 2) kernel; axis 0 normalises each column (one output unit).
        let w = Tensor(shape: [2, 2], scalars: [3, 0.6, 4, 0.8])   // column norms 5 and 1
        let maxNorm = Constraint.maxNorm(2)(w)
        assertClose(maxNorm.scalars, [3 * 2 / (5 + 1e-7), 0.6 / (1 + 1e-7), 4 * 2 / (5 + 1e-7), 0.8 / (1 + 1e-7)],
                    tolerance: 1e-6)
        let unit = Constraint.unitNorm(w)
        assertClose(unit.scalars, [0.6, 0.6, 0.8, 0.8], tolerance: 1e-6)
        XCTAssertEqual(Constraint.nonNeg(Tensor([-1, 2, -0.5, 0])).scalars, [0, 2, 0, 0])
        // A conv kernel normalised over its window and input channels (axes 0, 1, 2).
        let k = Tensor(shape: [1, 1, 2, 2], scalars: [3, 1, 4, 0])
        let normalised = Constraint.unitNorm(axes: [0, 1, 2])(k)
        assertClose(normalised.scalars, [0.6, 1, 0.8, 0], tolerance: 1e-6)
    }

    /// MaxNorm and UnitNorm over any set of axes (adjacent or not, negative, all, none) agree
    /// with norms computed from each element's multi-index.
    func testNormConstraintsOverAnyAxesMatchIndexArithmetic() {
        let shape = [3, 2, 4, 5]
        var rng = RandomGenerator(seed: 11)
        let w = Tensor.randomUniform(shape, minval: -2, maxval: 2, generator: &rng)
        for axes in [[0], [3], [-1], [1, 3], [0, 2], [0, 1, 2], [0, 1, 2, 3], [Int]()] {
            let reduced = Set(axes.map { $0 < 0 ? $0 + shape.count : $0 })
            // The slice of element i: its multi-index with the reduced axes set to zero.
            func slice(_ i: Int) -> [Int] {
                var rest = i, index = [Int](repeating: 0, count: shape.count)
                for a in stride(from: shape.count - 1, through: 0, by: -1) {
                    index[a] = reduced.contains(a) ? 0 : rest % shape[a]
                    rest /= shape[a]
                }
                return index
            }
            var squares: [[Int]: Double] = [:]
            for (i, v) in w.scalars.enumerated() { squares[slice(i), default: 0] += Double(v) * Double(v) }
            for constraint in [Constraint.maxNorm(maxValue: 1.5, axes: axes), .unitNorm(axes: axes)] {
                let expected = w.scalars.enumerated().map { i, v -> Float in
                    let norm = Float(squares[slice(i)]!.squareRoot())
                    if case .maxNorm = constraint { return v * min(norm, 1.5) / (1e-7 + norm) }
                    return v / (1e-7 + norm)
                }
                assertClose(constraint(w).scalars, expected, tolerance: 1e-6, "\(constraint) over axes \(axes)")
            }
        }
    }

    /// Embedding and the recurrent layers take Keras's per-weight regularizers and constraints
    /// (kernel, recurrent kernel, bias), Bidirectional applies both halves': the reported loss
    /// carries every penalty, the gradients theirs, and each step the projections.
    func testEmbeddingAndRecurrentPenalties() throws {
        func model(_ penalised: Bool) -> Sequential {
            Kestrel.setRandomSeed(17)
            let r: (Regularizer) -> Regularizer? = { penalised ? $0 : nil }
            return Sequential {
                Input(shape: [4])
                Embedding(inputDim: 6, outputDim: 3, embeddingsRegularizer: r(.l2(0.05)))
                GRU(3, kernelRegularizer: r(.l2(0.1)), recurrentRegularizer: r(.l2(0.2)), biasRegularizer: r(.l2(0.3)),
                    returnSequences: true)
                Bidirectional(SimpleRNN(2, useBias: false, kernelRegularizer: r(.l2(0.4)), recurrentRegularizer: r(.l2(0.5))))
                Dense(2)
            }
        }
        let plain = model(false), penalised = model(true)
        for m in [plain, penalised] { m.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError()) }
        try plain.build()
        try penalised.build()
        try penalised.setWeights(try plain.getWeights())
        let w = try plain.getWeights()
        func squares(_ t: Tensor) -> Float { t.scalars.reduce(0) { $0 + $1 * $1 } }
        // Embedding; GRU kernel, recurrent kernel, bias; both halves' kernel and recurrent kernel.
        let expected = 0.05 * squares(w[0]) + 0.1 * squares(w[1]) + 0.2 * squares(w[2]) + 0.3 * squares(w[3])
            + 0.4 * (squares(w[4]) + squares(w[6])) + 0.5 * (squares(w[5]) + squares(w[7]))
        let x = Tensor(shape: [5, 4], scalars: (0..<20).map { Float($0 % 6) }), y = Tensor.randomUniform([5, 2])
        let base = try plain.evaluate(x, y, verbose: 0)["loss"]!
        XCTAssertEqual(try penalised.evaluate(x, y, verbose: 0)["loss"]! - base, expected, accuracy: 1e-4)
        // Each weight's gradient gains 2·l2·w.
        let (_, g0) = try plain.lossAndGradients(x, y), (_, g1) = try penalised.lossAndGradients(x, y)
        for (k, factor) in [(0, Float(0.05)), (1, 0.1), (3, 0.3), (6, 0.4), (7, 0.5)] {
            let added = zip(g1.tensors[k].scalars, g0.tensors[k].scalars).map { $0 - $1 }
            assertClose(added, w[k].scalars.map { 2 * factor * $0 }, tolerance: 1e-5, "weight \(k)")
        }
        // Constraints project after every step, the Bidirectional halves' included.
        let constrained = Sequential {
            Input(shape: [4])
            Embedding(inputDim: 6, outputDim: 3, embeddingsConstraint: .nonNeg)
            Bidirectional(LSTM(2, recurrentConstraint: .maxNorm(0.3)))
        }
        constrained.compile(optimizer: SGD(learningRate: 0.5), loss: MeanSquaredError())
        _ = try constrained.fit(x, Tensor.randomUniform([5, 4]), batchSize: 5, epochs: 2, verbose: 0)
        let after = try constrained.getWeights()
        XCTAssertTrue(after[0].scalars.allSatisfy { $0 >= 0 })
        for k in [2, 5] {   // each half's recurrent kernel (units, 4·units): columns' norms at most 0.3
            let t = after[k], (rows, columns) = (t.shape[0], t.shape[1])
            for j in 0..<columns {
                let norm = (0..<rows).map { t.scalars[$0 * columns + j] * t.scalars[$0 * columns + j] }.reduce(0, +).squareRoot()
                XCTAssertLessThanOrEqual(norm, 0.3 + 1e-5, "weight \(k) column \(j)")
            }
        }
    }

    /// MultiHeadAttention's kernel and bias penalties apply to all four projections (Keras's
    /// `kernel_regularizer` and `bias_regularizer` reach every EinsumDense sublayer).
    func testMultiHeadAttentionPenalties() throws {
        func model(_ penalised: Bool) throws -> Model {
            Kestrel.setRandomSeed(19)
            let x = Input(shape: [3, 4])
            let mha = MultiHeadAttention(numHeads: 2, keyDim: 2, biasInitializer: .constant(0.1),
                                         kernelRegularizer: penalised ? .l2(0.1) : nil, biasRegularizer: penalised ? .l1(0.2) : nil)
            let m = try Model(inputs: x, outputs: try Flatten()(try mha(query: x, value: x)))
            m.compile(optimizer: SGD(), loss: MeanSquaredError())
            return m
        }
        let plain = try model(false), penalised = try model(true)
        try plain.build()
        try penalised.build()
        try penalised.setWeights(try plain.getWeights())
        let w = try plain.getWeights()   // kernel, bias for query, key, value, output
        var expected: Float = 0
        for k in stride(from: 0, to: 8, by: 2) {
            expected += 0.1 * w[k].scalars.reduce(0) { $0 + $1 * $1 } + 0.2 * w[k + 1].scalars.reduce(0) { $0 + abs($1) }
        }
        let x = Tensor.randomUniform([4, 3, 4]), y = Tensor.randomUniform([4, 12])
        let difference = try penalised.evaluate(x, y, verbose: 0)["loss"]! - (try plain.evaluate(x, y, verbose: 0)["loss"]!)
        XCTAssertEqual(difference, expected, accuracy: 1e-4)
        XCTAssertGreaterThan(expected, 0.1)
    }

    func testRegularizedModelReportsAndTrainsOnThePenalty() throws {
        func model(_ regularizer: Regularizer?) -> Sequential {
            Kestrel.setRandomSeed(7)
            let m = Sequential {
                Input(shape: [4, 4, 1])
                Conv2D(2, kernelSize: 3, kernelRegularizer: regularizer)
                Flatten()
                Dense(3, kernelRegularizer: regularizer.map { _ in Regularizer.l1(0.05) })
            }
            m.compile(optimizer: SGD(), loss: SparseCategoricalCrossentropy(fromLogits: true))
            return m
        }
        let plain = model(nil), regularized = model(.l2(0.1))
        try regularized.setWeights(try plain.getWeights())
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.randomUniform([5, 4, 4, 1], generator: &rng)
        let y = Tensor(labels: [0, 1, 2, 1, 0])
        let weights = try plain.getWeights()
        let expectedPenalty = 0.1 * weights[0].scalars.reduce(0) { $0 + $1 * $1 }
            + 0.05 * weights[2].scalars.reduce(0) { $0 + abs($1) }
        let base = try plain.evaluate(x, y, verbose: 0)["loss"]!
        let penalised = try regularized.evaluate(x, y, verbose: 0)["loss"]!
        XCTAssertEqual(penalised - base, expectedPenalty, accuracy: 1e-4)

        let (l0, g0) = try plain.lossAndGradients(x, y)
        let plainKernelGradient = g0.tensors[0]
        let (l1, g1) = try regularized.lossAndGradients(x, y)
        XCTAssertEqual(l1 - l0, expectedPenalty, accuracy: 1e-4)
        let expected = zip(plainKernelGradient.scalars, weights[0].scalars).map { $0 + 0.2 * $1 }
        assertClose(g1.tensors[0].scalars, expected, tolerance: 1e-5)
    }

    func testConstraintHoldsAfterEveryStep() throws {
        let model = Sequential {
            Input(shape: [6, 6, 1])
            Conv2D(3, kernelSize: 3, activation: .relu, kernelConstraint: .nonNeg)
            Flatten()
            Dense(2, kernelConstraint: .maxNorm(0.5))
        }
        model.compile(optimizer: Adam(learningRate: 0.05), loss: SparseCategoricalCrossentropy(fromLogits: true))
        let x = Tensor.randomNormal([16, 6, 6, 1])
        let y = Tensor(labels: (0..<16).map { $0 % 2 })
        try model.fit(x, y, batchSize: 4, epochs: 2, verbose: 0)
        let weights = try model.getWeights()
        XCTAssertTrue(weights[0].scalars.allSatisfy { $0 >= 0 })
        let dense = weights[2]
        for unit in 0..<2 {
            let norm = (0..<dense.shape[0]).reduce(Float(0)) { $0 + dense[$1, unit] * dense[$1, unit] }.squareRoot()
            XCTAssertLessThanOrEqual(norm, 0.5 + 1e-5)
        }
    }

    /// Conv2DTranspose, DepthwiseConv2D and SeparableConv2D take Keras's per-weight
    /// regularizers and constraints: each penalty is in the reported loss and its gradient in
    /// the weight's gradient, and each constraint holds after training.
    func testEveryConvolutionVariantTakesRegularizersAndConstraints() throws {
        // One layer per variant, with an L2 factor per weight in Keras's weight order.
        let variants: [(name: String, factors: [Float], make: (Bool) -> Layer)] = [
            ("Conv2DTranspose", [0.1, 0.2], { on in
                Conv2DTranspose(2, kernelSize: 2, strides: 2, biasInitializer: .constant(0.5),
                                kernelRegularizer: on ? .l2(0.1) : nil, biasRegularizer: on ? .l2(0.2) : nil) }),
            ("DepthwiseConv2D", [0.3, 0.2], { on in
                DepthwiseConv2D(kernelSize: 3, depthMultiplier: 2, biasInitializer: .constant(0.5),
                                depthwiseRegularizer: on ? .l2(0.3) : nil, biasRegularizer: on ? .l2(0.2) : nil) }),
            ("SeparableConv2D", [0.3, 0.1, 0.2], { on in
                SeparableConv2D(3, kernelSize: 3, depthMultiplier: 2, biasInitializer: .constant(0.5),
                                depthwiseRegularizer: on ? .l2(0.3) : nil, pointwiseRegularizer: on ? .l2(0.1) : nil,
                                biasRegularizer: on ? .l2(0.2) : nil) }),
        ]
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.randomUniform([5, 5, 5, 2], generator: &rng)
        let y = Tensor(labels: [0, 1, 2, 1, 0])
        for variant in variants {
            func model(_ on: Bool) -> Sequential {
                let m = Sequential {
                    Input(shape: [5, 5, 2])
                    variant.make(on)
                    Flatten()
                    Dense(3)
                }
                m.compile(optimizer: SGD(), loss: SparseCategoricalCrossentropy(fromLogits: true))
                return m
            }
            let plain = model(false), regularized = model(true)
            try regularized.setWeights(try plain.getWeights())
            XCTAssertEqual(regularized.layers.filter(\.hasWeightPenaltiesOrConstraints).count, 1, variant.name)
            let weights = try plain.getWeights()
            var penalty: Float = 0
            for (w, f) in zip(weights, variant.factors) { penalty += f * w.scalars.reduce(0) { $0 + $1 * $1 } }
            let base = try plain.evaluate(x, y, verbose: 0)["loss"]!
            XCTAssertEqual(try regularized.evaluate(x, y, verbose: 0)["loss"]! - base, penalty, accuracy: 1e-4, variant.name)
            let (_, g0) = try plain.lossAndGradients(x, y)
            let (_, g1) = try regularized.lossAndGradients(x, y)
            for (i, f) in variant.factors.enumerated() {
                let expected = zip(g0.tensors[i].scalars, weights[i].scalars).map { $0 + 2 * f * $1 }
                assertClose(g1.tensors[i].scalars, expected, tolerance: 1e-5, "\(variant.name) weight \(i)")
            }
        }

        // Constraints: NonNeg on every weight, and MaxNorm(0.3) per output channel of a kernel.
        let constrained = Sequential {
            Input(shape: [5, 5, 2])
            Conv2DTranspose(2, kernelSize: 2, strides: 2, kernelConstraint: .maxNorm(maxValue: 0.3, axes: [0, 1, 3]),
                            biasConstraint: .nonNeg)
            DepthwiseConv2D(kernelSize: 3, depthwiseConstraint: .nonNeg, biasConstraint: .nonNeg)
            SeparableConv2D(3, kernelSize: 3, depthwiseConstraint: .nonNeg, pointwiseConstraint: .nonNeg,
                            biasConstraint: .nonNeg)
            Flatten()
            Dense(3)
        }
        constrained.compile(optimizer: Adam(learningRate: 0.05), loss: SparseCategoricalCrossentropy(fromLogits: true))
        try constrained.fit(x, y, batchSize: 2, epochs: 3, verbose: 0)
        let w = try constrained.getWeights()
        let kernel = w[0]   // (2, 2, filters 2, channels 2): norms over all but the filters axis
        for f in 0..<2 {
            var sum: Float = 0
            for i in 0..<2 { for j in 0..<2 { for c in 0..<2 { let v = kernel[i, j, f, c]; sum += v * v } } }
            XCTAssertLessThanOrEqual(sum.squareRoot(), 0.3 + 1e-5)
        }
        for i in 1..<7 { XCTAssertTrue(w[i].scalars.allSatisfy { $0 >= 0 }, "weight \(i) of the constrained model") }
        XCTAssertTrue(w[7].scalars.contains { $0 < 0 }, "the unconstrained Dense kernel keeps negative weights")
    }
}
