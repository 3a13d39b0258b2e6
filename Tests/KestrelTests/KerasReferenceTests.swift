@testable import Kestrel
import Foundation
import XCTest

// Numeric comparison against reference outputs of real Keras 3 (JAX backend, float32).
// The JSON fixtures in Fixtures/ are written by make_fixtures.py next to this file; see its
// docstring for how to regenerate them.
//
// Tolerance: 1e-5 relative. Each element is compared relative to the larger of its own
// magnitude and 1% of the largest magnitude in the same tensor, so that an element that is
// (nearly) zero because of cancellation (a Dense output summing terms of order 1, exact GELU
// at -5 where `1 + erf(x/√2)` cancels to 7e-7) is judged against the size of the numbers it
// was computed from rather than against its own tiny value. Everything here passes at 1e-5
// (worst seen: 6e-6, approximate GELU and logits cross-entropy gradients, where expf/tanhf
// differ from XLA's by an ulp or two). Only the optimizer displacement check in
// OptimizerTests uses 1e-4, with the reason given there.

// MARK: - Fixture loading (shared with OptimizerTests)

/// A tensor as stored in the fixtures: shape and row-major values.
struct KerasFixtureTensor: Decodable {
    let shape: [Int]
    let values: [Float]

    var tensor: Tensor { Tensor(shape: shape, scalars: values) }
}

enum KerasFixtures {
    /// Decodes `Fixtures/<name>.json` from the test bundle (snake_case keys become camelCase).
    static func load<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
        guard let url = Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures") else {
            throw KerasFixtureError("fixture \(name).json is missing from the test bundle; run make_fixtures.py")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(T.self, from: Data(contentsOf: url))
    }
}

struct KerasFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Asserts `actual` matches Keras's `expected` element-wise: |a − e| ≤ rtol · max(|e|, 0.01 · max|e|).
/// Reports the worst element and up to four mismatches with both numbers.
func assertMatchesKeras(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, _ label: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    guard actual.count == expected.count else {
        XCTFail("\(label): \(actual.count) values, Keras has \(expected.count)", file: file, line: line)
        return
    }
    let peak = expected.reduce(Float(0)) { max($0, abs($1)) }
    let floor = max(peak * 0.01, Float.leastNormalMagnitude)
    var mismatches: [String] = []
    var worst: Float = 0
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let error = abs(a - e) / max(abs(e), floor)
        if !(error <= rtol) {  // also catches NaN
            mismatches.append("[\(i)] expected \(e) actual \(a) (rel \(error))")
        }
        if error.isNaN || error > worst { worst = error.isNaN ? .infinity : error }
    }
    if !mismatches.isEmpty {
        XCTFail("\(label): \(mismatches.count)/\(expected.count) values differ from Keras beyond \(rtol) "
                + "(worst rel \(worst)): " + mismatches.prefix(4).joined(separator: "; "),
                file: file, line: line)
    }
}

/// Asserts a scalar matches Keras's within `rtol` relative.
func assertMatchesKeras(_ actual: Float, _ expected: Float, rtol: Float = 1e-5, _ label: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    let error = abs(actual - expected) / max(abs(expected), Float.leastNormalMagnitude)
    XCTAssertTrue(error <= rtol, "\(label): expected \(expected) (Keras) actual \(actual) (rel \(error))",
                  file: file, line: line)
}

// MARK: - Fixture formats

struct ActivationFixture: Decodable {
    struct Case: Decodable {
        let name: String
        let function: String
        let output: KerasFixtureTensor
    }
    let kerasVersion: String
    let input: KerasFixtureTensor
    let cases: [Case]
}

struct LayerFixture: Decodable {
    struct Config: Decodable {
        let units: Int?
        let activation: String?
        let useBias: Bool?
        let targetShape: [Int]?
        let maxValue: Float?
        let negativeSlope: Float?
        let threshold: Float?
        let axis: Int?
        let rate: Float?
    }
    struct Case: Decodable {
        let name: String
        let layer: String
        let config: Config
        let input: KerasFixtureTensor
        let output: KerasFixtureTensor
        let weights: [KerasFixtureTensor]?
    }
    let cases: [Case]
}

struct LossFixture: Decodable {
    struct Config: Decodable {
        let fromLogits: Bool?
        let labelSmoothing: Float?
        let delta: Float?
        let alpha: Float?
        let gamma: Float?
        let applyClassBalancing: Bool?
    }
    struct Case: Decodable {
        let name: String
        let loss: String
        let config: Config
        let yTrue: KerasFixtureTensor
        let yPred: KerasFixtureTensor
        let value: Float
        let gradient: KerasFixtureTensor
    }
    let cases: [Case]
}

struct MetricFixture: Decodable {
    struct Config: Decodable {
        let threshold: Float?
        let k: Int?
    }
    struct Batch: Decodable {
        let yTrue: KerasFixtureTensor
        let yPred: KerasFixtureTensor
        let result: Float
    }
    struct Case: Decodable {
        let name: String
        let metric: String
        let config: Config
        let batches: [Batch]
    }
    let cases: [Case]
}

// MARK: - Tests

final class KerasReferenceTests: XCTestCase {
    // MARK: Activations

    /// Every activation Kestrel offers, by fixture case name (Keras call in make_fixtures.py).
    static let activationsByCase: [String: ActivationFunction] = [
        "linear": .linear,
        "relu": .relu,
        "sigmoid": .sigmoid,
        "tanh": .tanh,
        "softmax": .softmax,
        "elu": .elu,
        "elu_alpha_0.5": .elu(alpha: 0.5),
        "selu": .selu,
        "gelu": .gelu,
        "gelu_exact": .gelu(approximate: false),
        "gelu_approximate": .gelu(approximate: true),
        "softplus": .softplus,
        "softsign": .softsign,
        "silu": .silu,
        "swish": .swish,
        "leaky_relu": .leakyRelu,
        "leaky_relu_0.1": .leakyRelu(negativeSlope: 0.1),
        "hard_sigmoid": .hardSigmoid,
        "exponential": .exponential,
    ]

    func testActivationsMatchKeras() throws {
        let fixture = try KerasFixtures.load("activations", as: ActivationFixture.self)
        XCTAssertEqual(fixture.input.shape, [3, 7])
        XCTAssertEqual(Set(fixture.cases.map(\.name)), Set(Self.activationsByCase.keys),
                       "fixture and test disagree on which activations are covered")
        let x = fixture.input.tensor
        for c in fixture.cases {
            guard let f = Self.activationsByCase[c.name] else { continue }
            let y = f(x)
            XCTAssertEqual(y.shape, c.output.shape, c.name)
            assertMatchesKeras(y.scalars, c.output.values, "activation \(c.name)")
            // The Keras name resolves to the Keras default of the same function.
            if c.name == c.function {
                XCTAssertEqual(try ActivationFunction(named: c.function), f, "ActivationFunction(named: \(c.function))")
            }
        }
    }

    // MARK: Layers

    func makeLayer(_ c: LayerFixture.Case) throws -> Layer {
        let k = c.config
        switch c.layer {
        case "Dense":
            let units = try XCTUnwrap(k.units)
            let activation = try k.activation.map(ActivationFunction.init(named:))
            switch (activation, k.useBias) {
            case let (a?, b?): return Dense(units, activation: a, useBias: b)
            case let (a?, nil): return Dense(units, activation: a)
            case let (nil, b?): return Dense(units, useBias: b)
            case (nil, nil): return Dense(units)
            }
        case "Flatten": return Flatten()
        case "Reshape": return Reshape(try XCTUnwrap(k.targetShape))
        case "Activation": return Activation(try ActivationFunction(named: try XCTUnwrap(k.activation)))
        case "ReLU":
            if k.maxValue == nil && k.negativeSlope == nil && k.threshold == nil { return ReLU() }
            // Keras's defaults for the arguments a case leaves out: no cap, slope 0, threshold 0.
            return ReLU(maxValue: k.maxValue, negativeSlope: k.negativeSlope ?? 0, threshold: k.threshold ?? 0)
        case "LeakyReLU":
            return k.negativeSlope.map { LeakyReLU(negativeSlope: $0) } ?? LeakyReLU()
        case "Softmax":
            return k.axis.map { Softmax(axis: $0) } ?? Softmax()
        case "Dropout":
            return Dropout(try XCTUnwrap(k.rate))
        default:
            throw KerasFixtureError("no Kestrel layer for Keras \(c.layer) (case \(c.name))")
        }
    }

    static let expectedLayerCases: Set<String> = [
        "dense_linear", "dense_relu", "dense_tanh", "dense_sigmoid", "dense_softmax", "dense_gelu",
        "dense_relu_no_bias", "dense_default_activation", "dense_rank3_relu", "dense_rank3_softmax",
        "flatten", "reshape_-1_2", "activation_tanh", "activation_softmax", "activation_gelu", "activation_sigmoid",
        "relu_default", "relu_max_value_0.8", "relu_negative_slope_0.1", "relu_threshold_0.2", "relu_all_three",
        "relu_threshold_boundary", "relu_all_three_boundary",
        "leaky_relu_layer_default", "leaky_relu_layer_0.05",
        "softmax_axis_-1", "softmax_axis_1", "softmax_default", "dropout_inference",
    ]

    func checkLayerCase(_ c: LayerFixture.Case, file: StaticString = #filePath, line: UInt = #line) throws {
        let layer = try makeLayer(c)
        let sample = Array(c.input.shape.dropFirst())
        let outShape = try layer.build(inputShape: sample)
        XCTAssertEqual(outShape, Array(c.output.shape.dropFirst()), "\(c.name): output shape", file: file, line: line)
        if let weights = c.weights {
            XCTAssertEqual(layer.weightSpecs.map(\.shape), weights.map(\.shape), "\(c.name): weight shapes",
                           file: file, line: line)
            try layer.setWeights(weights.map(\.tensor))
        } else {
            XCTAssertEqual(layer.parameterCount, 0, "\(c.name): Keras layer has no weights", file: file, line: line)
        }
        let y = try layer(c.input.tensor, training: false)
        XCTAssertEqual(y.shape, c.output.shape, "\(c.name): shape", file: file, line: line)
        assertMatchesKeras(y.scalars, c.output.values, "layer \(c.name)", file: file, line: line)
    }

    func testLayersMatchKeras() throws {
        let fixture = try KerasFixtures.load("layers", as: LayerFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.name)), Self.expectedLayerCases)
        for c in fixture.cases where !c.name.hasSuffix("_boundary") {
            try checkLayerCase(c)
        }
    }

    /// ReLU with inputs exactly at `threshold` (0.2) and at `maxValue` (0.8). Keras 3's
    /// `ReLU.static_call` keeps x only where `x > threshold` (strictly), so an input equal to
    /// the threshold gives 0 (and 0 with a negative slope too: slope·relu(threshold − x) = 0),
    /// although Keras's docstring writes `x if threshold <= x < max_value`. Kept apart from
    /// `testLayersMatchKeras` so that the general cases report on their own.
    func testReLUAtThresholdMatchesKeras() throws {
        let fixture = try KerasFixtures.load("layers", as: LayerFixture.self)
        let cases = fixture.cases.filter { $0.name.hasSuffix("_boundary") }
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            XCTAssertTrue(c.input.values.contains(0.2), "\(c.name): an input sits exactly at the threshold")
            try checkLayerCase(c)
        }
    }

    // MARK: Losses

    func makeLoss(_ c: LossFixture.Case) throws -> Loss {
        let k = c.config
        switch c.loss {
        case "SparseCategoricalCrossentropy":
            return k.fromLogits.map { SparseCategoricalCrossentropy(fromLogits: $0) } ?? SparseCategoricalCrossentropy()
        case "CategoricalCrossentropy":
            switch (k.fromLogits, k.labelSmoothing) {
            case let (f?, s?): return CategoricalCrossentropy(fromLogits: f, labelSmoothing: s)
            case let (f?, nil): return CategoricalCrossentropy(fromLogits: f)
            case let (nil, s?): return CategoricalCrossentropy(labelSmoothing: s)
            case (nil, nil): return CategoricalCrossentropy()
            }
        case "BinaryCrossentropy":
            switch (k.fromLogits, k.labelSmoothing) {
            case let (f?, s?): return BinaryCrossentropy(fromLogits: f, labelSmoothing: s)
            case let (f?, nil): return BinaryCrossentropy(fromLogits: f)
            case let (nil, s?): return BinaryCrossentropy(labelSmoothing: s)
            case (nil, nil): return BinaryCrossentropy()
            }
        case "MeanSquaredError": return MeanSquaredError()
        case "MeanAbsoluteError": return MeanAbsoluteError()
        case "Huber": return k.delta.map { Huber(delta: $0) } ?? Huber()
        case "MeanSquaredLogarithmicError": return MeanSquaredLogarithmicError()
        case "MeanAbsolutePercentageError": return MeanAbsolutePercentageError()
        case "LogCosh": return LogCosh()
        case "CosineSimilarity": return CosineSimilarity()
        case "Hinge": return Hinge()
        case "SquaredHinge": return SquaredHinge()
        case "CategoricalHinge": return CategoricalHinge()
        case "KLDivergence": return KLDivergence()
        case "Poisson": return Poisson()
        case "BinaryFocalCrossentropy":
            return BinaryFocalCrossentropy(applyClassBalancing: k.applyClassBalancing ?? false, alpha: k.alpha ?? 0.25,
                                           gamma: k.gamma ?? 2, fromLogits: k.fromLogits ?? false,
                                           labelSmoothing: k.labelSmoothing ?? 0)
        case "CategoricalFocalCrossentropy":
            return CategoricalFocalCrossentropy(alpha: k.alpha ?? 0.25, gamma: k.gamma ?? 2, fromLogits: k.fromLogits ?? false,
                                                labelSmoothing: k.labelSmoothing ?? 0)
        default:
            throw KerasFixtureError("no Kestrel loss for Keras \(c.loss) (case \(c.name))")
        }
    }

    static let expectedLossCases: Set<String> = [
        "sparse_cce_logits", "sparse_cce_probs", "sparse_cce_default", "sparse_cce_unnormalised",
        "cce_logits", "cce_probs", "cce_logits_smooth_0.1", "cce_probs_smooth_0.1", "cce_default_unnormalised",
        "bce_logits", "bce_probs", "bce_logits_smooth_0.1", "bce_probs_smooth_0.1", "bce_default",
        "mse", "mae", "huber_default", "huber_delta_1", "huber_delta_0.5",
        "msle", "mape", "log_cosh", "cosine_similarity", "cosine_similarity_sequence", "hinge_binary", "hinge_signed",
        "squared_hinge_binary", "squared_hinge_signed", "categorical_hinge", "kl_divergence", "poisson",
        "bfce_default", "bfce_logits_balanced_gamma3", "bfce_smooth_0.1_gamma_0.5", "cfce_default",
        "cfce_logits_alpha_0.5_gamma_1", "cfce_unnormalised_smooth_0.1",
    ]

    func testLossValuesAndGradientsMatchKeras() throws {
        let fixture = try KerasFixtures.load("losses", as: LossFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.name)), Self.expectedLossCases)
        for c in fixture.cases {
            let loss = try makeLoss(c)
            let yTrue = c.yTrue.tensor, yPred = c.yPred.tensor
            let value = try loss(yTrue, yPred)
            assertMatchesKeras(value, c.value, "loss \(c.name) value")
            let (value2, gradient) = try loss.valueAndGradient(yTrue, yPred)
            XCTAssertEqual(value2, value, "\(c.name): valueAndGradient's value differs from callAsFunction's")
            XCTAssertEqual(gradient.shape, c.gradient.shape, "\(c.name): gradient shape")
            // Keras's gradient is jax.grad of the reduced loss with respect to y_pred.
            assertMatchesKeras(gradient.scalars, c.gradient.values, "loss \(c.name) d/dy_pred")
        }
    }

    // MARK: Metrics

    func makeMetric(_ c: MetricFixture.Case) throws -> Metric {
        let k = c.config
        switch c.metric {
        case "SparseCategoricalAccuracy": return SparseCategoricalAccuracy()
        case "CategoricalAccuracy": return CategoricalAccuracy()
        case "BinaryAccuracy": return k.threshold.map { BinaryAccuracy(threshold: $0) } ?? BinaryAccuracy()
        case "TopKCategoricalAccuracy": return k.k.map { TopKCategoricalAccuracy(k: $0) } ?? TopKCategoricalAccuracy()
        case "SparseTopKCategoricalAccuracy":
            return k.k.map { TopKCategoricalAccuracy(k: $0, sparse: true) } ?? TopKCategoricalAccuracy(sparse: true)
        case "MeanSquaredError": return MeanSquaredErrorMetric()
        case "MeanAbsoluteError": return MeanAbsoluteErrorMetric()
        case "RootMeanSquaredError": return RootMeanSquaredError()
        case "MeanAbsolutePercentageError", "LogCoshError", "CosineSimilarity", "MeanSquaredLogarithmicError", "Poisson", "Hinge",
             "SquaredHinge", "CategoricalHinge", "KLDivergence":
            // By the string names compile takes, which must give the same metric and log name.
            let names = ["MeanAbsolutePercentageError": "mape", "LogCoshError": "logcosh", "CosineSimilarity": "cosine_similarity",
                         "MeanSquaredLogarithmicError": "msle", "Poisson": "poisson", "Hinge": "hinge", "SquaredHinge": "squared_hinge",
                         "CategoricalHinge": "categorical_hinge", "KLDivergence": "kld"]
            let metric = try MetricSpec(named: names[c.metric]!).make([], [])
            XCTAssertEqual(metric.name, c.name, "log name")
            return metric
        default:
            throw KerasFixtureError("no Kestrel metric for Keras \(c.metric) (case \(c.name))")
        }
    }

    static let expectedMetricCases: Set<String> = [
        "sparse_categorical_accuracy", "categorical_accuracy", "top_k_categorical_accuracy_k2",
        "sparse_top_k_categorical_accuracy_k2", "top_k_categorical_accuracy_default",
        "binary_accuracy_default", "binary_accuracy_0.5", "binary_accuracy_0.7",
        "mean_squared_error", "mean_absolute_error", "root_mean_squared_error", "mean_absolute_percentage_error", "logcosh",
        "cosine_similarity", "mean_squared_logarithmic_error", "poisson", "hinge", "squared_hinge", "categorical_hinge",
        "kl_divergence",
    ]

    func testMetricsMatchKerasAcrossBatches() throws {
        let fixture = try KerasFixtures.load("metrics", as: MetricFixture.self)
        XCTAssertEqual(Set(fixture.cases.map(\.name)), Self.expectedMetricCases)
        var accumulated = 0
        for c in fixture.cases {
            let metric = try makeMetric(c)
            metric.reset()
            for (i, b) in c.batches.enumerated() {
                metric.update(b.yTrue.tensor, b.yPred.tensor)
                // After batch i the result covers batches 0...i, as Keras's update_state accumulates.
                assertMatchesKeras(metric.result(), b.result, "metric \(c.name) after batch \(i + 1)")
            }
            if c.batches.count > 1 {
                accumulated += 1
                // reset() forgets the accumulated state: batch 1 alone gives Keras's first result again.
                let first = try XCTUnwrap(c.batches.first)
                metric.reset()
                metric.update(first.yTrue.tensor, first.yPred.tensor)
                assertMatchesKeras(metric.result(), first.result, "metric \(c.name) after reset and batch 1")
            }
        }
        XCTAssertGreaterThanOrEqual(accumulated, 5, "cases that accumulate over two batches")
    }
}
