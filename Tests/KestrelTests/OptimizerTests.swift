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
    }
    struct Case: Decodable {
        let name: String
        let optimizer: String
        let config: Config
        /// The variables after each step, one tensor per variable.
        let steps: [[KerasFixtureTensor]]
    }
    /// The starting variables.
    let variables: [KerasFixtureTensor]
    /// One gradient per variable for each step.
    let gradients: [[KerasFixtureTensor]]
    let cases: [Case]
}

final class OptimizerTests: XCTestCase {
    /// Runs `optimizer` over one flat parameter buffer holding `variables` back to back,
    /// returning the buffer after each step. Each step gets a fresh copy of its gradients
    /// (apply clips them in place).
    func run(_ optimizer: Optimizer, variables: [[Float]], gradients: [[[Float]]]) -> (ranges: [Range<Int>], steps: [[Float]]) {
        var ranges: [Range<Int>] = []
        var offset = 0
        for v in variables {
            ranges.append(offset..<(offset + v.count))
            offset += v.count
        }
        var parameters = variables.flatMap { $0 }
        optimizer.build(parameterCount: parameters.count)
        var steps: [[Float]] = []
        for (s, perVariable) in gradients.enumerated() {
            var g = perVariable.flatMap { $0 }
            precondition(g.count == parameters.count)
            parameters.withUnsafeMutableBufferPointer { p in
                g.withUnsafeMutableBufferPointer { gp in
                    optimizer.apply(parameters: p.baseAddress!, gradients: gp.baseAddress!, variables: ranges)
                }
            }
            XCTAssertEqual(optimizer.iterations, s + 1, "\(optimizer.name): iterations")
            steps.append(parameters)
        }
        return (ranges, steps)
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
        default:
            throw KerasFixtureError("no Kestrel optimizer for Keras \(c.optimizer) (case \(c.name))")
        }
        if let lr = k.learningRate { optimizer.learningRate = lr }
        optimizer.clipnorm = k.clipnorm
        optimizer.clipvalue = k.clipvalue
        optimizer.globalClipnorm = k.globalClipnorm
        return optimizer
    }

    static let expectedCases: Set<String> = [
        "sgd_default", "sgd_momentum_0.9", "sgd_nesterov_0.9", "adam_default", "adam_amsgrad",
        "adamw_default", "adamw_decay_0.5_lr_0.01", "rmsprop_default", "rmsprop_momentum_0.5",
        "rmsprop_centered", "adagrad_default", "adam_clipnorm_0.1", "adam_clipvalue_0.05",
        "adam_global_clipnorm_0.1", "sgd_clipnorm_0.1", "sgd_clipvalue_0.05", "sgd_global_clipnorm_0.1",
        "adamax_default", "nadam_default", "nadam_lr_0.01_beta1_0.8", "adadelta_lr_1", "lion_default", "lion_clipvalue_0.05",
    ]

    func testOptimizersMatchKeras() throws {
        let fixture = try KerasFixtures.load("optimizers", as: OptimizerFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.name)), Self.expectedCases)
        XCTAssertEqual(fixture.variables.count, 2, "two variables, so global and per-variable clipping differ")
        XCTAssertEqual(fixture.gradients.count, 3)
        let initial = fixture.variables.map(\.values)
        for c in fixture.cases {
            let optimizer = try makeOptimizer(c)
            let (ranges, steps) = run(optimizer, variables: initial,
                                      gradients: fixture.gradients.map { $0.map(\.values) })
            XCTAssertEqual(c.steps.count, steps.count, c.name)
            for (s, (expected, actual)) in zip(c.steps, steps).enumerated() {
                for (v, range) in ranges.enumerated() {
                    let label = "\(c.name) step \(s + 1) variable \(v)"
                    XCTAssertEqual(expected[v].values.count, range.count, label)
                    let got = Array(actual[range])
                    assertMatchesKeras(got, expected[v].values, label)
                    assertDisplacementMatchesKeras(got, expected[v].values, from: initial[v], "\(label) displacement")
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
        let (_, steps) = run(Adam(learningRate: 0.01), variables: [w0], gradients: [[g1], [g2]])
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
        let (_, steps) = run(SGD(learningRate: 0.1, momentum: 0.9), variables: [w0], gradients: [[g1], [g2]])
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
        let (_, steps) = run(RMSprop(learningRate: 0.01), variables: [w0], gradients: [[g1], [g2]])
        for (s, e) in expected.enumerated() {
            assertMatchesKeras(steps[s], e.map(Float.init), "RMSprop by hand, step \(s + 1)")
        }
    }
}
