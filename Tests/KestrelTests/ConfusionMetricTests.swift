@testable import Kestrel
import XCTest

// Fixture: Fixtures/confusion_metrics.json, written by make_metric_fixtures.py next to this
// file (Keras 3.15 on TensorFlow 2.21).

/// The confusion-matrix metrics against Keras (counts, Precision, Recall, AUC in every curve
/// and summation), by name in `compile`, and in `fit` and `evaluate`.
final class ConfusionMetricTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            struct Arguments: Decodable {
                let threshold: Float?
                let classId: Int?
                let curve: String?
                let summationMethod: String?
                let numThresholds: Int?
                let fromLogits: Bool?
            }
            let kind: String
            let arguments: Arguments
            let labels, predictions: [KerasFixtureTensor]
            let result: Float
        }
        let cases: [Case]
    }

    func metric(_ c: Fixture.Case) throws -> Metric {
        let a = c.arguments
        switch c.kind {
        case "precision": return Precision(threshold: a.threshold ?? 0.5, classId: a.classId)
        case "recall": return Recall(threshold: a.threshold ?? 0.5, classId: a.classId)
        case "auc":
            return try AUC(numThresholds: a.numThresholds ?? 200, curve: try XCTUnwrap(AUC.Curve(rawValue: a.curve ?? "ROC")),
                           summationMethod: try XCTUnwrap(AUC.SummationMethod(rawValue: a.summationMethod ?? "interpolation")),
                           fromLogits: a.fromLogits ?? false)
        default:
            return ConfusionCountMetric(try XCTUnwrap(ConfusionCount(rawValue: c.kind), c.kind), threshold: a.threshold ?? 0.5)
        }
    }

    func testMetricsMatchKeras() throws {
        let fixture = try KerasFixtures.load("confusion_metrics", as: Fixture.self)
        XCTAssertEqual(fixture.cases.count, 24)
        for c in fixture.cases {
            let m = try metric(c)
            for (labels, predictions) in zip(c.labels, c.predictions) { m.update(labels.tensor, predictions.tensor) }
            assertMatchesKeras([m.result()], [c.result], rtol: 1e-5, "\(c.kind) \(c.arguments)")
            // A reset starts over: the second pass gives the same.
            m.reset()
            for (labels, predictions) in zip(c.labels, c.predictions) { m.update(labels.tensor, predictions.tensor) }
            assertMatchesKeras([m.result()], [c.result], rtol: 1e-5, "\(c.kind) \(c.arguments) after reset")
        }
    }

    func testEdgeCasesAndNames() throws {
        // No positive predictions or labels: 0, as Keras's divide_no_nan gives.
        let none = Precision(), missed = Recall()
        none.update(Tensor(shape: [2, 1], scalars: [1, 0]), Tensor(shape: [2, 1], scalars: [0.1, 0.2]))
        missed.update(Tensor(shape: [2, 1], scalars: [0, 0]), Tensor(shape: [2, 1], scalars: [0.9, 0.2]))
        XCTAssertEqual(none.result(), 0)
        XCTAssertEqual(missed.result(), 0)
        // Perfectly separated scores: AUC 1 (ROC and PR); reversed: 0 for ROC.
        let labels = Tensor(shape: [4, 1], scalars: [0, 0, 1, 1])
        for curve in AUC.Curve.allCases {
            let auc = try AUC(curve: curve)
            auc.update(labels, Tensor(shape: [4, 1], scalars: [0.1, 0.2, 0.8, 0.9]))
            XCTAssertEqual(auc.result(), 1, accuracy: 1e-6, "\(curve)")
        }
        let reversed = try AUC()
        reversed.update(labels, Tensor(shape: [4, 1], scalars: [0.9, 0.8, 0.2, 0.1]))
        XCTAssertEqual(reversed.result(), 0, accuracy: 1e-6)
        assertThrowsMessage(try AUC(numThresholds: 1), contains: ["AUC", "numThresholds", "greater than 1", "found 1"])
        for name in ["precision", "recall", "auc", "true_positives", "false_positives", "true_negatives", "false_negatives"] {
            XCTAssertEqual(try MetricSpec(named: name).make([1], [1]).name, name)
        }
        assertThrowsMessage(try MetricSpec(named: "f1"), contains: ["unknown metric 'f1'", "precision", "auc"])
        let model = Sequential { Input(shape: [2]); Dense(1, activation: .sigmoid) }
        model.compile(optimizer: Adam(), loss: BinaryCrossentropy(), metrics: [.auc(numThresholds: 0)])
        assertThrowsMessage(try model.evaluate(Tensor(shape: [1, 2], scalars: [1, 2]), Tensor(shape: [1, 1], scalars: [1]), verbose: 0),
                            contains: ["compile", "auc (AUC): numThresholds must be greater than 1, found 0"])
    }

    /// Keras's imbalanced-data tutorial compiles with these metrics: `fit` logs them for
    /// training and validation, and `evaluate` gives what the metrics give on `predict`'s output.
    func testFitAndEvaluateReportThem() throws {
        Kestrel.setRandomSeed(6)
        var rng = RandomGenerator(seed: 8)
        let n = 400
        var x = [Float](), y = [Float]()
        for _ in 0..<n {
            let a = rng.nextUnitFloat() * 2 - 1, b = rng.nextUnitFloat() * 2 - 1
            x += [a, b]
            y.append(a + 0.5 * b > 0.6 ? 1 : 0)   // about one sample in five positive
        }
        let features = Tensor(shape: [n, 2], scalars: x), labels = Tensor(shape: [n, 1], scalars: y)
        let model = Sequential { Input(shape: [2]); Dense(8, activation: .relu); Dense(1, activation: .sigmoid) }
        model.compile(optimizer: Adam(learningRate: 0.02), loss: BinaryCrossentropy(),
                      metrics: [.confusionCount(.truePositives), .confusionCount(.falseNegatives), "precision", "recall",
                                .auc(), .auc(curve: .pr, name: "prc")])
        let history = try model.fit(features, labels, batchSize: 32, epochs: 30, verbose: 0, validationSplit: 0.25)
        for key in ["true_positives", "false_negatives", "precision", "recall", "auc", "prc"] {
            XCTAssertEqual(history.history[key]?.count, 30, key)
            XCTAssertEqual(history.history["val_" + key]?.count, 30, key)
        }
        let results = try model.evaluate(features, labels, batchSize: 64, verbose: 0)
        let predictions = try model.predict(features)
        let expected: [(String, Metric)] = [("precision", Precision()), ("recall", Recall()), ("auc", try AUC()),
                                            ("prc", try AUC(curve: .pr)),
                                            ("true_positives", ConfusionCountMetric(.truePositives)),
                                            ("false_negatives", ConfusionCountMetric(.falseNegatives))]
        for (key, metric) in expected {
            metric.update(labels, predictions)
            XCTAssertEqual(try XCTUnwrap(results[key], key), metric.result(), accuracy: 1e-5, key)
        }
        XCTAssertGreaterThan(try XCTUnwrap(results["auc"]), 0.95)
        XCTAssertEqual(try XCTUnwrap(results["true_positives"]) + (results["false_negatives"] ?? 0), Float(y.filter { $0 == 1 }.count))
    }
}
