import Foundation
import Kestrel
import KestrelLearn
import XCTest

/// Two Gaussian-free, linearly separable clouds: class 0 around (-2, -2), class 1 around (2, 2).
func separableBlobs(perClass: Int, seed: UInt64) -> ([[Float]], [Int]) {
    var generator = RandomGenerator(seed: seed)
    var x: [[Float]] = [], y: [Int] = []
    for c in 0..<2 {
        let center: Float = c == 0 ? -2 : 2
        for _ in 0..<perClass {
            x.append([center + generator.nextUnitFloat() - 0.5, center + generator.nextUnitFloat() - 0.5])
            y.append(c)
        }
    }
    return (x, y)
}

/// Asserts that `body` throws `KestrelError.invalidArgument` whose message contains every fragment.
func assertInvalidArgument(_ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
                           _ body: () throws -> Void) {
    do {
        try body()
        XCTFail("expected an invalidArgument error", file: file, line: line)
    } catch let KestrelError.invalidArgument(message) {
        for f in fragments where !message.contains(f) {
            XCTFail("message '\(message)' lacks '\(f)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected invalidArgument, got \(error)", file: file, line: line)
    }
}

final class MLPTests: XCTestCase {
    let xor: [[Float]] = [[0, 0], [0, 1], [1, 0], [1, 1]]

    func testLearnsXORWithStringLabels() throws {
        let labels = ["off", "on", "on", "off"]
        let clf = MLPClassifier<String>(hiddenLayerSizes: [16], activation: .tanh, alpha: 0, batchSize: 4,
                                        learningRateInit: 0.05, maxIter: 500, randomState: 3)
        try clf.fit(xor, labels)
        XCTAssertEqual(clf.classes, ["off", "on"])
        XCTAssertEqual(try clf.predict(xor), labels)
        XCTAssertEqual(try clf.score(xor, labels), 1)
        let p = try clf.predictProba(try Tensor(xor))
        XCTAssertEqual(p.shape, [4, 2])
        for r in 0..<4 {
            XCTAssertEqual(p[r, 0] + p[r, 1], 1, accuracy: 1e-6)
            XCTAssertGreaterThan(p[r, labels[r] == "on" ? 1 : 0], 0.8)
        }
        XCTAssertEqual(clf.outActivation, "logistic")
        XCTAssertEqual(clf.nOutputs, 1)
        XCTAssertEqual(clf.coefs.map(\.shape), [[2, 16], [16, 1]])
        XCTAssertEqual(clf.intercepts.map(\.shape), [[16], [1]])
        XCTAssertEqual(clf.nFeaturesIn, 2)
        XCTAssertEqual(clf.lossCurve.count, clf.nIter)
        XCTAssertLessThan(clf.lossCurve.last!, 0.1)
        XCTAssertEqual(clf.bestLoss, clf.lossCurve.min())
        let logP = try clf.predictLogProba(try Tensor(xor))
        XCTAssertEqual(logP[0, 0], log(p[0, 0]), accuracy: 1e-5)
    }

    func testSeparableBlobsMulticlassSoftmax() throws {
        var (x, y) = separableBlobs(perClass: 30, seed: 1)
        // A third class up the y axis makes the problem multiclass.
        for i in 0..<30 { x.append([Float(i % 5) * 0.1, 5 + Float(i % 3) * 0.1]); y.append(7) }
        let clf = MLPClassifier(hiddenLayerSizes: [8], maxIter: 300, randomState: 0)
        try clf.fit(x, y)
        XCTAssertEqual(clf.classes, [0, 1, 7])
        XCTAssertEqual(clf.outActivation, "softmax")
        XCTAssertEqual(try clf.score(x, y), 1)
        let p = try clf.predictProba(try Tensor(x))
        XCTAssertEqual(p.shape, [90, 3])
        for r in 0..<90 { XCTAssertEqual(p[r, 0] + p[r, 1] + p[r, 2], 1, accuracy: 1e-5) }
        // Loss decreases from the first to the last epoch.
        XCTAssertLessThan(clf.lossCurve.last!, clf.lossCurve.first! / 2)
    }

    func testSameRandomStateSameModel() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 2)
        let a = try MLPClassifier(hiddenLayerSizes: [5], maxIter: 5, randomState: 11).fit(x, y)
        let b = try MLPClassifier(hiddenLayerSizes: [5], maxIter: 5, randomState: 11).fit(x, y)
        let c = try MLPClassifier(hiddenLayerSizes: [5], maxIter: 5, randomState: 12).fit(x, y)
        XCTAssertEqual(a.coefs, b.coefs)
        XCTAssertEqual(a.lossCurve, b.lossCurve)
        XCTAssertNotEqual(a.coefs, c.coefs)
    }

    func testInitialWeightsFollowScikitLearnBounds() throws {
        let (x, y) = separableBlobs(perClass: 10, seed: 2)
        // One SGD step with lr tiny leaves the weights at their initial values (to ~1e-9).
        for (activation, factor) in [(MLPActivation.relu, Float(6)), (.logistic, 2)] {
            let clf = MLPClassifier(hiddenLayerSizes: [50], activation: activation, solver: .sgd,
                                    learningRateInit: 1e-9, maxIter: 1, randomState: 5)
            try clf.fit(x, y)
            let bound0 = (factor / Float(2 + 50)).squareRoot(), bound1 = (factor / Float(50 + 1)).squareRoot()
            let w0 = clf.coefs[0].scalars + clf.intercepts[0].scalars
            let w1 = clf.coefs[1].scalars + clf.intercepts[1].scalars
            XCTAssertLessThanOrEqual(w0.map(abs).max()!, bound0 + 1e-6)
            XCTAssertGreaterThan(w0.map(abs).max()!, bound0 * 0.8)
            XCTAssertLessThanOrEqual(w1.map(abs).max()!, bound1 + 1e-6)
        }
    }

    func testRegressionLine() throws {
        let x: [[Float]] = (0..<50).map { [Float($0) / 25 - 1] }
        let y: [Float] = x.map { 3 * $0[0] + 0.5 }
        let reg = MLPRegressor(hiddenLayerSizes: [], alpha: 0, batchSize: 10, learningRateInit: 0.01,
                               maxIter: 2000, randomState: 0, tol: 0, nIterNoChange: 2000)
        try reg.fit(x, y)
        // With no hidden layer the network is linear: the line's slope and intercept.
        XCTAssertEqual(reg.coefs[0].scalars[0], 3, accuracy: 0.01)
        XCTAssertEqual(reg.intercepts[0].scalars[0], 0.5, accuracy: 0.01)
        XCTAssertGreaterThan(try reg.score(x, y), 0.9999)
        XCTAssertEqual(reg.outActivation, "identity")
        // The loss is half the mean squared error.
        let predictions = try reg.predict(x)
        XCTAssertEqual(Double(reg.loss!), try meanSquaredError(y, predictions) / 2, accuracy: 1e-5)
        XCTAssertNotNil(reg.convergenceWarning)
    }

    func testRegressionLossCurveIncludesL2Penalty() throws {
        // One full-batch SGD epoch with lr ~0: the reported loss is 0.5·MSE + alpha/(2n)·Σ‖W‖²
        // of the initial weights.
        let x: [[Float]] = [[1, 2], [3, 4], [5, 6], [7, 8]]
        let y: [Float] = [1, 2, 3, 4]
        let reg = MLPRegressor(hiddenLayerSizes: [3], alpha: 0.5, batchSize: 4, learningRateInit: 1e-12,
                               maxIter: 1, shuffle: false, randomState: 9)
        let sgd = MLPRegressor(hiddenLayerSizes: [3], solver: .sgd, alpha: 0.5, batchSize: 4,
                               learningRateInit: 1e-12, maxIter: 1, shuffle: false, randomState: 9)
        for model in [reg, sgd] {
            try model.fit(x, y)
            let squares = model.coefs.reduce(0.0) { $0 + $1.scalars.reduce(0.0) { $0 + Double($1 * $1) } }
            let mse = try meanSquaredError(y, model.predict(x))
            XCTAssertEqual(Double(model.lossCurve[0]), mse / 2 + 0.5 * 0.5 * squares / 4, accuracy: 1e-4)
        }
    }

    func testAlphaShrinksWeights() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 4)
        let weak = try MLPClassifier(hiddenLayerSizes: [10], alpha: 0, batchSize: 10, learningRateInit: 0.01,
                                     maxIter: 200, randomState: 1).fit(x, y)
        let strong = try MLPClassifier(hiddenLayerSizes: [10], alpha: 10, batchSize: 10, learningRateInit: 0.01,
                                       maxIter: 200, randomState: 1).fit(x, y)
        func norm(_ c: MLPClassifier<Int>) -> Float { c.coefs.reduce(0) { $0 + $1.scalars.reduce(0) { $0 + $1 * $1 } } }
        XCTAssertLessThan(norm(strong), norm(weak) / 2)
    }

    func testStopsWhenLossStopsImproving() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 5)
        let clf = MLPClassifier(hiddenLayerSizes: [10], maxIter: 100, randomState: 1, tol: 10, nIterNoChange: 3)
        try clf.fit(x, y)
        // With tol 10 only the first epoch improves (on an infinite best loss); the next
        // nIterNoChange + 1 epochs do not, and then training stops.
        XCTAssertEqual(clf.nIter, 5)
        XCTAssertNil(clf.convergenceWarning)
    }

    func testEarlyStoppingKeepsBestValidationScore() throws {
        let (x, y) = separableBlobs(perClass: 50, seed: 6)
        let clf = MLPClassifier(hiddenLayerSizes: [10], batchSize: 10, learningRateInit: 0.01, maxIter: 60,
                                randomState: 1, earlyStopping: true, validationFraction: 0.2, nIterNoChange: 5)
        try clf.fit(x, y)
        XCTAssertNil(clf.bestLoss)
        XCTAssertEqual(clf.validationScores?.count, clf.nIter)
        XCTAssertEqual(clf.bestValidationScore, clf.validationScores?.max())
        XCTAssertEqual(clf.bestValidationScore, 1)
        XCTAssertLessThan(clf.nIter, 60)
        // The held-out share is ceil(0.2 · 100) = 20 samples, stratified: 10 per class.
        XCTAssertEqual(clf.validationScores!.allSatisfy { ($0 * 20).rounded() == $0 * 20 }, true)
    }

    func testPartialFitRunsOneEpochAndNeedsClasses() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 7)
        let clf = MLPClassifier(hiddenLayerSizes: [10], batchSize: 8, randomState: 1)
        assertInvalidArgument(["classes must be given"]) { try clf.partialFit(x, y) }
        try clf.partialFit(x, y, classes: [0, 1])
        XCTAssertEqual(clf.nIter, 1)
        XCTAssertEqual(clf.lossCurve.count, 1)
        for _ in 0..<30 { try clf.partialFit(x, y) }
        XCTAssertEqual(clf.lossCurve.count, 31)
        XCTAssertEqual(clf.samplesSeen, 31 * 40)
        XCTAssertEqual(try clf.score(x, y), 1)
        assertInvalidArgument(["label 5"]) { try clf.partialFit(x, [5] + y.dropFirst()) }
    }

    func testWarmStartContinuesLossCurve() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 8)
        let clf = MLPClassifier(hiddenLayerSizes: [10], maxIter: 3, randomState: 1, warmStart: true)
        try clf.fit(x, y)
        let before = clf.coefs
        try clf.fit(x, y)
        XCTAssertEqual(clf.lossCurve.count, 6)
        XCTAssertEqual(clf.nIter, 3)
        XCTAssertNotEqual(clf.coefs, before)
        clf.warmStart = false
        try clf.fit(x, y)
        XCTAssertEqual(clf.lossCurve.count, 3)
    }

    func testSGDSchedules() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 9)
        for schedule in LearningRateSchedule.allCases {
            for nesterov in [true, false] {
                let clf = MLPClassifier(hiddenLayerSizes: [10], solver: .sgd, learningRate: schedule,
                                        learningRateInit: 0.1, maxIter: 100, randomState: 2,
                                        nesterovsMomentum: nesterov)
                try clf.fit(x, y)
                XCTAssertEqual(try clf.score(x, y), 1, "\(schedule) nesterov \(nesterov)")
            }
        }
    }

    func testParameterValidation() throws {
        let (x, y) = separableBlobs(perClass: 5, seed: 10)
        assertInvalidArgument(["MLPClassifier", "alpha", ">= 0", "-1"]) {
            try MLPClassifier(alpha: -1).fit(x, y)
        }
        assertInvalidArgument(["hiddenLayerSizes", "0"]) { try MLPClassifier(hiddenLayerSizes: [10, 0]).fit(x, y) }
        assertInvalidArgument(["learningRateInit", "> 0"]) { try MLPClassifier(learningRateInit: 0).fit(x, y) }
        assertInvalidArgument(["maxIter", ">= 1", "0"]) { try MLPRegressor(maxIter: 0).fit(x, y.map(Float.init)) }
        assertInvalidArgument(["batchSize"]) { try MLPClassifier(batchSize: 0).fit(x, y) }
        assertInvalidArgument(["momentum", "[0, 1]"]) { try MLPClassifier(momentum: 1.5).fit(x, y) }
        assertInvalidArgument(["validationFraction"]) { try MLPClassifier(validationFraction: 1).fit(x, y) }
        assertInvalidArgument(["beta1"]) { try MLPClassifier(beta1: 1).fit(x, y) }
        assertInvalidArgument(["nIterNoChange"]) { try MLPClassifier(nIterNoChange: 0).fit(x, y) }
        assertInvalidArgument(["at least 2 classes"]) { try MLPClassifier().fit(x, y.map { _ in 1 }) }
        assertInvalidArgument(["earlyStopping"]) {
            try MLPClassifier(earlyStopping: true).partialFit(x, y, classes: [0, 1])
        }
        assertInvalidArgument(["nan", "sample 1", "feature 0"]) {
            try MLPClassifier().fit([[0, 0], [.nan, 1]], [0, 1])
        }
        XCTAssertThrowsError(try MLPClassifier().fit(x, Array(y.dropLast()))) { error in
            XCTAssertEqual(error as? KestrelError,
                           .shapeMismatch("MLPClassifier.fit: x has 10 samples but y has 9"))
        }
        XCTAssertThrowsError(try MLPClassifier().predict(x)) { XCTAssertTrue("\($0)".contains("not fitted")) }
        let fitted = try MLPClassifier(maxIter: 2).fit(x, y)
        XCTAssertThrowsError(try fitted.predict([[1, 2, 3]])) {
            XCTAssertTrue("\($0)".contains("x has 3 features, but the estimator was fitted with 2 features"))
        }
    }

    func testMultiOutputRegression() throws {
        let x: [[Float]] = (0..<40).map { [Float($0) / 20 - 1] }
        let targets = Tensor(shape: [40, 2], scalars: x.flatMap { [2 * $0[0], -$0[0] + 1] })
        let reg = MLPRegressor(hiddenLayerSizes: [], alpha: 0, batchSize: 8, learningRateInit: 0.02,
                               maxIter: 1000, randomState: 0)
        try reg.fit(try Tensor(x), targets: targets)
        XCTAssertEqual(reg.nOutputs, 2)
        XCTAssertGreaterThan(try reg.score(try Tensor(x), targets: targets), 0.999)
        XCTAssertThrowsError(try reg.predict(x))
    }
}
