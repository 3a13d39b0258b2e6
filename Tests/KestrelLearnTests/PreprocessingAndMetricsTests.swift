import Foundation
import Kestrel
import KestrelLearn
import XCTest

final class PreprocessingTests: XCTestCase {
    func testStandardScaler() throws {
        let x: [[Float]] = [[1, 10, 5], [2, 20, 5], [3, 30, 5], [6, 40, 5]]
        let scaler = StandardScaler()
        let z = try scaler.fitTransform(x)
        XCTAssertEqual(scaler.mean!, [3, 25, 5])
        XCTAssertEqual(scaler.variance![0], 3.5, accuracy: 1e-12)  // population variance
        XCTAssertEqual(scaler.variance![1], 125, accuracy: 1e-9)
        XCTAssertEqual(scaler.scale![2], 1)  // constant column keeps scale 1
        XCTAssertEqual(z[0][0], Float(-2 / 3.5.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(z[3][1], Float(15 / 125.0.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(z.map { $0[2] }, [0, 0, 0, 0])
        for j in 0..<2 {
            let column = z.map { Double($0[j]) }
            XCTAssertEqual(column.reduce(0, +) / 4, 0, accuracy: 1e-6)
            XCTAssertEqual(column.map { $0 * $0 }.reduce(0, +) / 4, 1, accuracy: 1e-5)
        }
        let back = try scaler.inverseTransform(try Tensor(z))
        for (a, b) in zip(back.scalars, x.flatMap { $0 }) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertThrowsError(try scaler.transform([[1, 2]])) {
            XCTAssertTrue("\($0)".contains("x has 2 features, but the estimator was fitted with 3 features"))
        }
        XCTAssertThrowsError(try StandardScaler().transform(x)) { XCTAssertTrue("\($0)".contains("call fit first")) }
    }

    func testMinMaxScaler() throws {
        let x: [[Float]] = [[-1, 2], [-0.5, 6], [0, 10], [1, 18]]
        let scaler = MinMaxScaler()
        let z = try scaler.fitTransform(x)
        XCTAssertEqual(z, [[0, 0], [0.25, 0.25], [0.5, 0.5], [1, 1]])
        XCTAssertEqual(scaler.dataMin!, [-1, 2])
        XCTAssertEqual(scaler.dataMax!, [1, 18])
        let wide = try MinMaxScaler(featureRange: -1...1).fitTransform(x)
        XCTAssertEqual(wide[0], [-1, -1])
        XCTAssertEqual(wide[2], [0, 0])
        assertInvalidArgument(["featureRange"]) { try MinMaxScaler(featureRange: 1...1).fit(x) }
    }

    func testLabelAndOneHotEncoders() throws {
        let encoder = LabelEncoder<String>()
        XCTAssertEqual(try encoder.fitTransform(["paris", "tokyo", "paris", "amsterdam"]), [1, 2, 1, 0])
        XCTAssertEqual(encoder.classes, ["amsterdam", "paris", "tokyo"])
        XCTAssertEqual(try encoder.inverseTransform([2, 0]), ["tokyo", "amsterdam"])
        assertInvalidArgument(["unseen label rome", "position 1"]) { _ = try encoder.transform(["paris", "rome"]) }

        let oneHot = OneHotEncoder<String>()
        let rows = [["red", "S"], ["green", "M"], ["red", "L"]]
        let t = try oneHot.fitTransform(rows)
        XCTAssertEqual(oneHot.categories, [["green", "red"], ["L", "M", "S"]])
        XCTAssertEqual(t.shape, [3, 5])
        XCTAssertEqual(t.scalars, [0, 1, 0, 0, 1,
                                   1, 0, 0, 1, 0,
                                   0, 1, 1, 0, 0])
        assertInvalidArgument(["unknown category blue", "row 0", "column 0"]) { _ = try oneHot.transform([["blue", "S"]]) }
        oneHot.handleUnknown = .ignore
        XCTAssertEqual(try oneHot.transform([["blue", "S"]]).scalars, [0, 0, 0, 0, 1])
    }

    func testNumericTableReadsAndReportsLineAndColumn() throws {
        let table = try NumericTable(csv: "a,b,label\n1,2,0\n\n3.5, 4 ,1\n")
        XCTAssertEqual(table.columns, ["a", "b", "label"])
        XCTAssertEqual(table.rowCount, 2)
        XCTAssertEqual(try table.column("label"), [0, 1])
        XCTAssertEqual(try table.features(excluding: ["label"]).scalars, [1, 2, 3.5, 4])
        XCTAssertThrowsError(try NumericTable(csv: "a,b\n1,2\n3\n")) {
            XCTAssertEqual($0 as? KestrelError, .fileError("NumericTable: line 3 has 1 cells, expected 2 like the header"))
        }
        XCTAssertThrowsError(try NumericTable(csv: "a,b\n1,2\n3,x7\n")) {
            XCTAssertEqual($0 as? KestrelError,
                           .fileError("NumericTable: line 3, column 2 ('b'): 'x7' is not a number"))
        }
        XCTAssertThrowsError(try table.column("nope")) { XCTAssertTrue("\($0)".contains("no column named 'nope'")) }
    }
}

final class MetricsTests: XCTestCase {
    // Hand-computed: true 0,0,0,1,1,2 vs predicted 0,1,0,1,2,2.
    // Confusion matrix rows = truth: [[2,1,0],[0,1,1],[0,0,1]].
    let yTrue = [0, 0, 0, 1, 1, 2]
    let yPred = [0, 1, 0, 1, 2, 2]

    func testConfusionMatrixAndAccuracy() throws {
        XCTAssertEqual(try confusionMatrix(yTrue, yPred), [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
        XCTAssertEqual(try confusionMatrix(yTrue, yPred, labels: [2, 0]), [[1, 0], [0, 2]])
        XCTAssertEqual(try accuracyScore(yTrue, yPred), 4.0 / 6, accuracy: 1e-12)
        XCTAssertThrowsError(try accuracyScore([1], [1, 2]))
    }

    func testPrecisionRecallF1Averages() throws {
        // Per class: precision 2/2, 1/2, 1/2; recall 2/3, 1/2, 1/1; support 3, 2, 1.
        let stats = try precisionRecallFScoreSupport(yTrue, yPred)
        XCTAssertEqual(stats.precision, [1, 0.5, 0.5])
        XCTAssertEqual(stats.recall[0], 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(stats.support, [3, 2, 1])
        XCTAssertEqual(stats.f1[0], 0.8, accuracy: 1e-12)
        XCTAssertEqual(stats.f1[2], 2.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(try precisionScore(yTrue, yPred, average: .macro), 2.0 / 3, accuracy: 1e-12)
        let macroRecall: Double = (2.0 / 3 + 0.5 + 1) / 3
        XCTAssertEqual(try recallScore(yTrue, yPred, average: .macro), macroRecall, accuracy: 1e-12)
        let weightedPrecision: Double = (3 * 1 + 2 * 0.5 + 0.5) / 6
        let weightedF1: Double = (3 * 0.8 + 2 * 0.5 + 2.0 / 3) / 6
        XCTAssertEqual(try precisionScore(yTrue, yPred, average: .weighted), weightedPrecision, accuracy: 1e-12)
        XCTAssertEqual(try f1Score(yTrue, yPred, average: .weighted), weightedF1, accuracy: 1e-12)
        XCTAssertEqual(try f1Score(yTrue, yPred, average: .micro), 4.0 / 6, accuracy: 1e-12)
        // Binary: class 1 of [1,1,0,0] vs [1,0,1,0]: precision 1/2, recall 1/2.
        XCTAssertEqual(try precisionScore([1, 1, 0, 0], [1, 0, 1, 0], average: .binary(positive: 1)), 0.5)
        XCTAssertEqual(try recallScore(["a", "b", "b"], ["b", "b", "b"], average: .binary(positive: "b")), 1)
        XCTAssertEqual(try precisionScore(["a", "b", "b"], ["b", "b", "b"], average: .binary(positive: "a")), 0)
        assertInvalidArgument(["at most 2 labels"]) { _ = try f1Score(yTrue, yPred, average: .binary(positive: 1)) }
    }

    func testClassificationReportLayout() throws {
        let report = try classificationReport(yTrue, yPred)
        // scikit-learn 1.9 prints exactly this for the same labels.
        let expected = """
                      precision    recall  f1-score   support

                   0       1.00      0.67      0.80         3
                   1       0.50      0.50      0.50         2
                   2       0.50      1.00      0.67         1

            accuracy                           0.67         6
           macro avg       0.67      0.72      0.66         6
        weighted avg       0.75      0.67      0.68         6

        """
        XCTAssertEqual(report, expected)
    }

    func testRegressionMetrics() throws {
        let t: [Float] = [3, -0.5, 2, 7], p: [Float] = [2.5, 0, 2, 8]
        // scikit-learn's documented example: r2 0.9486081370449679, mse 0.375, mae 0.5.
        XCTAssertEqual(try r2Score(t, p), 0.9486081370449679, accuracy: 1e-9)
        XCTAssertEqual(try meanSquaredError(t, p), 0.375, accuracy: 1e-12)
        XCTAssertEqual(try meanAbsoluteError(t, p), 0.5, accuracy: 1e-12)
        XCTAssertEqual(try r2Score([1, 1], [1, 1]), 1)
        XCTAssertEqual(try r2Score([1, 1], [1, 2]), 0)
    }
}
