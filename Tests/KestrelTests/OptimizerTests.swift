@testable import Kestrel
import Foundation
import XCTest

// Optimizers against Keras 3 (fixtures from make_fixtures.py, see KerasReferenceTests.swift
// for loading and the tolerance rule), plus hand-computed steps written out from Keras's
// update rules, independent of the fixtures.

struct OptimizerFixture: Decodable {
    struct Config: Decodable {
        let learningRate: Float?
        let momentum: Float?
        let nesterov: Bool?
        let amsgrad: Bool?
        let weightDecay: Float?
        let rho: Float?
        let centered: Bool?
        let clipnorm: Float?
        let clipvalue: Float?
        let globalClipnorm: Float?
        let beta1: Float?
        let excludeFromWeightDecay: [String]?
        let useEma: Bool?
        let emaMomentum: Float?
        let emaOverwriteFrequency: Int?
        let gradientAccumulationSteps: Int?
        let learningRatePower: Float?
        let initialAccumulatorValue: Float?
        let l1RegularizationStrength: Float?
        let l2RegularizationStrength: Float?
        let l2ShrinkageRegularizationStrength: Float?
        let beta: Float?
    }
    struct Case: Decodable {
        let name: String
        let optimizer: String
        let config: Config
        /// The variables after each step, one tensor per variable.
        let steps: [[KerasFixtureTensor]]
        /// Whether the case also ran `moreGradients`.
        let long: Bool?
        /// With `use_ema`, the moving averages after each step.
        let averages: [[KerasFixtureTensor]]?
    }
    /// The starting variables.
    let variables: [KerasFixtureTensor]
    /// One gradient per variable for each step.
    let gradients: [[KerasFixtureTensor]]
    /// Three more steps, for the "long" cases.
    let moreGradients: [[KerasFixtureTensor]]
    let cases: [Case]
}

final class OptimizerTests: XCTestCase {
    /// Runs `optimizer` over one flat parameter buffer holding `variables` back to back,
    /// returning the buffer after each step. Each step gets a fresh copy of its gradients
    /// (apply clips them in place).
    func run(_ optimizer: Optimizer, variables: [[Float]], gradients: [[[Float]]],
             names: [String] = []) -> (ranges: [Range<Int>], steps: [[Float]], averages: [[Float]]) {
        var ranges: [Range<Int>] = []
        var offset = 0
        for v in variables {
            ranges.append(offset..<(offset + v.count))
            offset += v.count
        }
        var parameters = variables.flatMap { $0 }
        optimizer.build(parameterCount: parameters.count)
        var steps: [[Float]] = [], averages: [[Float]] = []
        let accumulation = optimizer.gradientAccumulationSteps ?? 1
        for (s, perVariable) in gradients.enumerated() {
            var g = perVariable.flatMap { $0 }
            precondition(g.count == parameters.count)
            parameters.withUnsafeMutableBufferPointer { p in
                g.withUnsafeMutableBufferPointer { gp in
                    optimizer.apply(parameters: p.baseAddress!, gradients: gp.baseAddress!, variables: ranges, names: names)
                }
            }
            XCTAssertEqual(optimizer.appliedBatches, s + 1, "\(optimizer.name): batches")
            XCTAssertEqual(optimizer.iterations, (s + 1) / accumulation, "\(optimizer.name): iterations")
            steps.append(parameters)
            if let average = optimizer.slot(named: "average") {
                averages.append(Array(UnsafeBufferPointer(start: average, count: parameters.count)))
            }
        }
        return (ranges, steps, averages)
    }

    // MARK: Against Keras

    /// Kestrel's optimizer with Kestrel's defaults, then the arguments the Keras case passed.
    func makeOptimizer(_ c: OptimizerFixture.Case) throws -> Optimizer {
        let k = c.config
        let optimizer: Optimizer
        switch c.optimizer {
        case "SGD":
            let o = SGD()
            if let m = k.momentum { o.momentum = m }
            if let n = k.nesterov { o.nesterov = n }
            optimizer = o
        case "Adam", "AdamW":
            let o: Adam
            if c.optimizer == "AdamW" {
                let w = AdamW()
                if let d = k.weightDecay { w.weightDecay = d }
                o = w
            } else {
                o = Adam()
            }
            if let a = k.amsgrad { o.amsgrad = a }
            optimizer = o
        case "RMSprop":
            let o = RMSprop()
            if let r = k.rho { o.rho = r }
            if let m = k.momentum { o.momentum = m }
            if let cen = k.centered { o.centered = cen }
            optimizer = o
        case "Adagrad":
            optimizer = Adagrad()
        case "Adamax":
            optimizer = Adamax()
        case "Nadam":
            let o = Nadam()
            if let b = k.beta1 { o.beta1 = b }
            optimizer = o
        case "Adadelta":
            optimizer = Adadelta()
        case "Lion":
            optimizer = Lion()
        case "Lamb":
            let o = Lamb()
            if let b = k.beta1 { o.beta1 = b }
            optimizer = o
        case "Ftrl":
            let o = Ftrl()
            if let p = k.learningRatePower { o.learningRatePower = p }
            if let a = k.initialAccumulatorValue { o.initialAccumulatorValue = a }
            if let l1 = k.l1RegularizationStrength { o.l1RegularizationStrength = l1 }
            if let l2 = k.l2RegularizationStrength { o.l2RegularizationStrength = l2 }
            if let s = k.l2ShrinkageRegularizationStrength { o.l2ShrinkageRegularizationStrength = s }
            if let b = k.beta { o.beta = b }
            optimizer = o
        default:
            throw KerasFixtureError("no Kestrel optimizer for Keras \(c.optimizer) (case \(c.name))")
        }
        if let lr = k.learningRate { optimizer.learningRate = lr }
        optimizer.clipnorm = k.clipnorm
        optimizer.clipvalue = k.clipvalue
        optimizer.globalClipnorm = k.globalClipnorm
        if c.optimizer != "AdamW" { optimizer.weightDecay = k.weightDecay }
        if let names = k.excludeFromWeightDecay { optimizer.excludeFromWeightDecay(names: names) }
        if let e = k.useEma { optimizer.useEMA = e }
        if let m = k.emaMomentum { optimizer.emaMomentum = m }
        optimizer.emaOverwriteFrequency = k.emaOverwriteFrequency
        optimizer.gradientAccumulationSteps = k.gradientAccumulationSteps
        try optimizer.validateArguments()
        return optimizer
    }

    static let expectedCases: Set<String> = [
        "sgd_default", "sgd_momentum_0.9", "sgd_nesterov_0.9", "adam_default", "adam_amsgrad",
        "adamw_default", "adamw_decay_0.5_lr_0.01", "rmsprop_default", "rmsprop_momentum_0.5",
        "rmsprop_centered", "adagrad_default", "adam_clipnorm_0.1", "adam_clipvalue_0.05",
        "adam_global_clipnorm_0.1", "sgd_clipnorm_0.1", "sgd_clipvalue_0.05", "sgd_global_clipnorm_0.1",
        "adamax_default", "nadam_default", "nadam_lr_0.01_beta1_0.8", "adadelta_lr_1", "lion_default", "lion_clipvalue_0.05",
        "sgd_weight_decay_0.1_lr_0.1", "adam_weight_decay_0.5_excluding_bias", "rmsprop_weight_decay_0.2_lr_0.01",
        "sgd_momentum_ema_0.9", "adam_ema_0.5_overwrite_2", "adam_accumulate_2",
        "sgd_momentum_accumulate_3_global_clipnorm_0.1", "nadam_accumulate_2_ema_weight_decay",
        "lamb_default", "lamb_lr_0.01_beta1_0.8", "ftrl_default", "ftrl_lr_0.05_power_-0.25", "ftrl_l1_l2_shrinkage_beta",
    ]

    func testOptimizersMatchKeras() throws {
        let fixture = try KerasFixtures.load("optimizers", as: OptimizerFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.name)), Self.expectedCases)
        XCTAssertEqual(fixture.variables.count, 2, "two variables, so global and per-variable clipping differ")
        XCTAssertEqual(fixture.gradients.count, 3)
        let initial = fixture.variables.map(\.values)
        let gradients = fixture.gradients.map { $0.map(\.values) }
        let more = fixture.moreGradients.map { $0.map(\.values) }
        for c in fixture.cases {
            let optimizer = try makeOptimizer(c)
            let (ranges, steps, averages) = run(optimizer, variables: initial,
                                                gradients: gradients + (c.long == true ? more : []),
                                                names: ["kernel", "bias"])
            XCTAssertEqual(c.steps.count, steps.count, c.name)
            XCTAssertEqual(c.averages?.count ?? 0, averages.count, "\(c.name): averages")
            for (s, (expected, actual)) in zip(c.steps, steps).enumerated() {
                for (v, range) in ranges.enumerated() {
                    let label = "\(c.name) step \(s + 1) variable \(v)"
                    XCTAssertEqual(expected[v].values.count, range.count, label)
                    let got = Array(actual[range])
                    assertMatchesKeras(got, expected[v].values, label)
                    assertDisplacementMatchesKeras(got, expected[v].values, from: initial[v], "\(label) displacement")
                }
            }
            for (s, (expected, actual)) in zip(c.averages ?? [], averages).enumerated() {
                for (v, range) in ranges.enumerated() {
                    let label = "\(c.name) step \(s + 1) average \(v)"
                    assertDisplacementMatchesKeras(Array(actual[range]), expected[v].values, from: initial[v], label)
                }
            }
        }
    }

    /// Compares the move from the start, `w − w0`, so that an error in the update is not hidden
    /// inside the variable's magnitude (a default Adam step is 1e-3 on weights of order 0.1;
    /// AdamW's default decay changes it by w·0.004, about 5e-4 of the move here).
    ///
    /// Tolerance 1e-4 relative (against the larger of the element's move and 1% of the largest
    /// move) plus 2 ulps of the weight: Keras's float32 update under XLA on CPU is itself off
    /// the exactly rounded one by up to ~7e-6 of the step (1–2 ulps of w, up to 14 ulps for
    /// w ≈ 0.006; checked in float64 against Keras's formula), and a move is the difference of
    /// two float32 weights, so one rounding of w is a whole ulp of it.
    func assertDisplacementMatchesKeras(_ actual: [Float], _ expected: [Float], from start: [Float], _ label: String,
                                        file: StaticString = #filePath, line: UInt = #line) {
        let expectedMove = zip(expected, start).map { Double($0) - Double($1) }
        let actualMove = zip(actual, start).map { Double($0) - Double($1) }
        let peak = expectedMove.reduce(0) { max($0, abs($1)) }
        var mismatches: [String] = []
        for i in expectedMove.indices {
            let allowed = 1e-4 * max(abs(expectedMove[i]), 0.01 * peak) + 2 * Double(expected[i].ulp)
            if !(abs(actualMove[i] - expectedMove[i]) <= allowed) {
                mismatches.append("[\(i)] Keras moved \(expectedMove[i]), Kestrel \(actualMove[i])")
            }
        }
        if !mismatches.isEmpty {
            XCTFail("\(label): " + mismatches.prefix(4).joined(separator: "; "), file: file, line: line)
        }
    }

    // MARK: Weight decay, moving average and gradient accumulation inside fit

    /// Two batches of 8 accumulated give the step one batch of 16 gives (plain SGD: the mean
    /// of two batch means is the mean over both), and the step count is the updates'.
    func testGradientAccumulationEqualsTheLargerBatch() throws {
        var g = RandomGenerator(seed: 21)
        let x = Tensor(shape: [32, 4], scalars: (0..<128).map { _ in g.nextUnitFloat() })
        let y = Tensor(shape: [32, 2], scalars: (0..<64).map { _ in g.nextUnitFloat() })
        func trained(batchSize: Int, accumulation: Int?) throws -> (Model, Optimizer) {
            Kestrel.setRandomSeed(4)
            let model = Sequential { Input(shape: [4]); Dense(6, activation: .tanh); Dense(2) }
            let optimizer = SGD(learningRate: 0.2, gradientAccumulationSteps: accumulation)
            model.compile(optimizer: optimizer, loss: MeanSquaredError())
            try model.fit(x, y, batchSize: batchSize, epochs: 3, verbose: 0, shuffle: false)
            return (model, optimizer)
        }
        let (accumulated, o1) = try trained(batchSize: 8, accumulation: 2)
        let (large, o2) = try trained(batchSize: 16, accumulation: nil)
        XCTAssertEqual(o1.appliedBatches, 12)
        XCTAssertEqual(o1.iterations, 6)
        XCTAssertEqual(o2.iterations, 6)
        let largeWeights = try large.getWeights().flatMap(\.scalars)
        assertClose(try accumulated.getWeights().flatMap(\.scalars), largeWeights, tolerance: 1e-6, "accumulated")
        let (single, _) = try trained(batchSize: 8, accumulation: nil)
        let difference = zip(try single.getWeights().flatMap(\.scalars), largeWeights).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(difference, 1e-3, "the comparison can tell batch 8 from batch 16")
    }

    /// `weightDecay` shrinks the kernels by `w·decay·lr` on top of the plain step, and leaves
    /// the variables named in `excludeFromWeightDecay` alone.
    func testWeightDecaySkipsExcludedVariables() throws {
        var g = RandomGenerator(seed: 22)
        let x = Tensor(shape: [8, 3], scalars: (0..<24).map { _ in g.nextUnitFloat() })
        let y = Tensor(shape: [8, 2], scalars: (0..<16).map { _ in g.nextUnitFloat() })
        func step(_ optimizer: SGD) throws -> (before: [Tensor], after: [Tensor]) {
            Kestrel.setRandomSeed(5)
            // A non-zero bias, so that decaying it would show.
            let model = Sequential { Input(shape: [3]); Dense(2, biasInitializer: .constant(0.3)) }
            model.compile(optimizer: optimizer, loss: MeanSquaredError())
            try model.build()
            let before = try model.getWeights()
            try model.fit(x, y, batchSize: 8, epochs: 1, verbose: 0)
            return (before, try model.getWeights())
        }
        let decayed = SGD(learningRate: 0.1, weightDecay: 0.5)
        decayed.excludeFromWeightDecay(names: ["bias"])
        let (w0, withDecay) = try step(decayed)
        let (_, plain) = try step(SGD(learningRate: 0.1))
        let expectedKernel = zip(plain[0].scalars, w0[0].scalars).map { $0 - $1 * 0.05 }
        assertClose(withDecay[0].scalars, expectedKernel, tolerance: 1e-6, "kernel")
        XCTAssertEqual(withDecay[1], plain[1], "the bias is excluded")
        let everything = SGD(learningRate: 0.1, weightDecay: 0.5)
        XCTAssertNotEqual(try step(everything).after[1], plain[1], "without the exclusion the bias decays too")
    }

    /// With `useEMA`, `fit` ends by putting the moving average into the weights (Keras's
    /// `finalize_variable_values`); the manual loop does it on request.
    func testFitEndsWithTheMovingAverage() throws {
        var g = RandomGenerator(seed: 23)
        let x = Tensor(shape: [16, 3], scalars: (0..<48).map { _ in g.nextUnitFloat() })
        let y = Tensor(shape: [16, 1], scalars: (0..<16).map { _ in g.nextUnitFloat() })
        Kestrel.setRandomSeed(6)
        let model = Sequential { Input(shape: [3]); Dense(1) }
        let optimizer = SGD(learningRate: 0.1, useEMA: true, emaMomentum: 0.5)
        model.compile(optimizer: optimizer, loss: MeanSquaredError())
        try model.build()
        // The average by hand: after step 1 it is w₁, then a = ½a + ½wₜ.
        var average: [Float] = []
        var lastWeights: [Float] = []
        for s in 0..<4 {
            let batch = Tensor(shape: [4, 3], scalars: Array(x.scalars[(s * 12)..<(s * 12 + 12)]))
            let target = Tensor(shape: [4, 1], scalars: Array(y.scalars[(s * 4)..<(s * 4 + 4)]))
            let (_, gradients) = try model.lossAndGradients(batch, target)
            try optimizer.apply(gradients, to: model)
            lastWeights = try model.getWeights().flatMap(\.scalars)
            average = s == 0 ? lastWeights : zip(average, lastWeights).map { 0.5 * $0 + 0.5 * $1 }
        }
        XCTAssertNotEqual(average, lastWeights)
        try optimizer.finalizeVariableValues(model)
        assertClose(try model.getWeights().flatMap(\.scalars), average, tolerance: 1e-6, "finalized")

        // fit: the weights it leaves are the optimizer's average.
        try model.fit(x, y, batchSize: 4, epochs: 2, verbose: 0)
        let slot = try XCTUnwrap(optimizer.slot(named: "average"))
        XCTAssertEqual(try model.getWeights().flatMap(\.scalars), Array(UnsafeBufferPointer(start: slot, count: 4)))
        XCTAssertEqual(optimizer.stateSlotNames, ["average"])
    }

    /// `SwapEMAWeights` validates with the moving average and trains on from the weights; with
    /// `swapOnEpoch` the callbacks after it see the average between epochs. Both end with the
    /// average in the model.
    func testSwapEMAWeightsValidatesWithTheAverage() throws {
        var g = RandomGenerator(seed: 24)
        let x = Tensor(shape: [24, 3], scalars: (0..<72).map { _ in g.nextUnitFloat() })
        let y = Tensor(shape: [24, 1], scalars: (0..<24).map { _ in g.nextUnitFloat() })
        let vx = Tensor(shape: [8, 3], scalars: (0..<24).map { _ in g.nextUnitFloat() })
        let vy = Tensor(shape: [8, 1], scalars: (0..<8).map { _ in g.nextUnitFloat() })
        func train(_ callbacks: [Callback], epochs: Int = 2) throws -> (Model, History) {
            Kestrel.setRandomSeed(7)
            let model = Sequential { Input(shape: [3]); Dense(4, activation: .tanh); Dense(1) }
            model.compile(optimizer: SGD(learningRate: 0.3, useEMA: true, emaMomentum: 0.6), loss: MeanSquaredError())
            let history = try model.fit(x, y, batchSize: 4, epochs: epochs, verbose: 0, callbacks: callbacks,
                                        validationData: (vx, vy), shuffle: false)
            return (model, history)
        }
        let (plain, plainHistory) = try train([])
        let (swapped, swappedHistory) = try train([SwapEMAWeights()])
        // Training is untouched by the swaps: both end with the same average in the model.
        XCTAssertEqual(try swapped.getWeights(), try plain.getWeights())
        // The last validation ran on the average, which is what the model holds now.
        let averaged = try swapped.evaluate(vx, vy, verbose: 0)["loss"]!
        XCTAssertEqual(swappedHistory["val_loss"]!.last!, averaged, accuracy: 1e-6)
        XCTAssertNotEqual(plainHistory["val_loss"]!.last!, averaged, "without the callback validation sees the weights")

        // swapOnEpoch: a callback after it sees at each epoch's end the average the plain run
        // keeps in its optimizer then.
        let plainRecorder = AverageRecorder(), swapRecorder = AverageRecorder()
        _ = try train([plainRecorder])
        let (onEpoch, _) = try train([SwapEMAWeights(swapOnEpoch: true), swapRecorder])
        XCTAssertEqual(swapRecorder.weights.count, 2)
        XCTAssertEqual(swapRecorder.weights, plainRecorder.averages)
        XCTAssertNotEqual(plainRecorder.weights[0], plainRecorder.averages[0])
        XCTAssertEqual(try onEpoch.getWeights(), try plain.getWeights(), "the swaps leave training as it was")
    }

    /// Records the model's trainable weights and the optimizer's average at each epoch's end.
    final class AverageRecorder: Callback {
        weak var model: Model?
        var weights: [[Float]] = [], averages: [[Float]] = []
        func setModel(_ model: Model) { self.model = model }
        func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
            let model = try XCTUnwrap(model), count = model.store!.count
            weights.append(Array(UnsafeBufferPointer(start: model.store!.values, count: count)))
            averages.append(Array(UnsafeBufferPointer(start: try XCTUnwrap(model.optimizer?.slot(named: "average")), count: count)))
        }
    }

    /// Keras's checks of the base arguments, as errors naming the argument.
    func testBaseArgumentsAreChecked() throws {
        let model = Sequential { Input(shape: [2]); Dense(1) }
        for (optimizer, argument) in [(Adam(gradientAccumulationSteps: 1), "gradientAccumulationSteps"),
                                      (SGD(useEMA: true, emaMomentum: 1.5), "emaMomentum"),
                                      (RMSprop(useEMA: true, emaOverwriteFrequency: 0), "emaOverwriteFrequency"),
                                      (Ftrl(learningRatePower: 0.5), "learningRatePower"),
                                      (Ftrl(l1RegularizationStrength: -1), "l1RegularizationStrength")] as [(Optimizer, String)] {
            model.compile(optimizer: optimizer, loss: MeanSquaredError())
            XCTAssertThrowsError(try model.fit(Tensor.zeros([4, 2]), Tensor.zeros([4, 1]), verbose: 0)) { error in
                XCTAssertTrue("\(error)".contains(argument), "\(error)")
            }
        }
    }

    // MARK: Hand-computed steps (Keras's rules written out, no fixtures)

    let w0: [Float] = [0.5, -0.3, 0.1, 0.02]
    let g1: [Float] = [0.2, -0.4, 0.05, -0.001]
    let g2: [Float] = [0.1, 0.3, 0.05, 0.002]

    /// Keras Adam: alpha = lr·sqrt(1−β2^t)/(1−β1^t); m += (g−m)(1−β1); v += (g²−v)(1−β2);
    /// w −= alpha·m/(sqrt(v)+ε).
    func testAdamStepsByHand() {
        let lr = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-7
        var w = w0.map(Double.init), m = [Double](repeating: 0, count: 4), v = m
        var expected: [[Double]] = []
        for (t, g) in [g1, g2].enumerated() {
            let step = Double(t + 1)
            let alpha = lr * (1 - pow(b2, step)).squareRoot() / (1 - pow(b1, step))
            for i in w.indices {
                let gi = Double(g[i])
                m[i] += (gi - m[i]) * (1 - b1)
                v[i] += (gi * gi - v[i]) * (1 - b2)
                w[i] -= alpha * m[i] / (v[i].squareRoot() + eps)
            }
            expected.append(w)
        }
        // Step 1 moves every weight by about lr against its gradient's sign (m/sqrt(v) = ±1
        // after bias correction); ε shrinks that by under 1% of the step for these gradients
        // (0.3% for the smallest, |g| = 0.001, where sqrt(v) = 3.2e-5).
        for i in w0.indices {
            XCTAssertEqual(expected[0][i], Double(w0[i]) - 0.01 * (g1[i] > 0 ? 1 : -1), accuracy: 1e-4)
        }
        let (_, steps, _) = run(Adam(learningRate: 0.01), variables: [w0], gradients: [[g1], [g2]])
        for (s, e) in expected.enumerated() {
            assertMatchesKeras(steps[s], e.map(Float.init), "Adam by hand, step \(s + 1)")
        }
    }

    /// Keras SGD with momentum: v = momentum·v − lr·g; w += v.
    func testSGDMomentumStepsByHand() {
        let lr = 0.1, mom = 0.9
        var w = w0.map(Double.init), vel = [Double](repeating: 0, count: 4)
        var expected: [[Double]] = []
        for g in [g1, g2] {
            for i in w.indices {
                vel[i] = mom * vel[i] - lr * Double(g[i])
                w[i] += vel[i]
            }
            expected.append(w)
        }
        // Written out for the first weight: v1 = −0.02, w1 = 0.48; v2 = −0.018 − 0.01, w2 = 0.452.
        XCTAssertEqual(expected[0][0], 0.48, accuracy: 1e-7)
        XCTAssertEqual(expected[1][0], 0.452, accuracy: 1e-7)
        let (_, steps, _) = run(SGD(learningRate: 0.1, momentum: 0.9), variables: [w0], gradients: [[g1], [g2]])
        for (s, e) in expected.enumerated() {
            assertMatchesKeras(steps[s], e.map(Float.init), "SGD momentum by hand, step \(s + 1)")
        }
    }

    /// Keras RMSprop: v = ρ·v + (1−ρ)·g²; w −= lr·g/sqrt(v + ε).
    func testRMSpropStepsByHand() {
        let lr = 0.01, rho = 0.9, eps = 1e-7
        var w = w0.map(Double.init), v = [Double](repeating: 0, count: 4)
        var expected: [[Double]] = []
        for g in [g1, g2] {
            for i in w.indices {
                let gi = Double(g[i])
                v[i] = rho * v[i] + (1 - rho) * gi * gi
                w[i] -= lr * gi / (v[i] + eps).squareRoot()
            }
            expected.append(w)
        }
        // Written out for the first weight: v1 = 0.1·0.04 = 0.004, w1 = 0.5 − 0.002/sqrt(0.0040001).
        XCTAssertEqual(expected[0][0], 0.5 - 0.002 / 0.0040001.squareRoot(), accuracy: 1e-12)
        let (_, steps, _) = run(RMSprop(learningRate: 0.01), variables: [w0], gradients: [[g1], [g2]])
        for (s, e) in expected.enumerated() {
            assertMatchesKeras(steps[s], e.map(Float.init), "RMSprop by hand, step \(s + 1)")
        }
    }
}
