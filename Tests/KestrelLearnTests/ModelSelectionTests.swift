import Foundation
import Kestrel
import KestrelLearn
import XCTest

final class ModelSelectionTests: XCTestCase {
    func testTrainTestSplitSizesDisjointAndSeeded() throws {
        let x: [[Float]] = (0..<10).map { [Float($0), Float($0 * 10)] }
        let y = (0..<10).map { $0 }
        let a = try trainTestSplit(x, y, testSize: 0.25, randomState: 42)
        // ceil(0.25 · 10) = 3 test samples, 7 train, as scikit-learn.
        XCTAssertEqual(a.yTest.count, 3)
        XCTAssertEqual(a.yTrain.count, 7)
        XCTAssertEqual(Set(a.yTrain + a.yTest), Set(y))
        // Rows stay with their targets.
        for (row, target) in zip(a.xTrain + a.xTest, a.yTrain + a.yTest) { XCTAssertEqual(row, [Float(target), Float(target * 10)]) }
        let b = try trainTestSplit(x, y, testSize: 0.25, randomState: 42)
        XCTAssertEqual(a.yTest, b.yTest)
        let c = try trainTestSplit(x, y, testSize: 0.25, shuffle: false)
        XCTAssertEqual(c.yTest, [7, 8, 9])
        assertInvalidArgument(["testSize"]) { _ = try trainTestSplit(x, y, testSize: 1.5) }
        assertInvalidArgument(["stratify requires shuffle"]) { _ = try trainTestSplit(x, y, shuffle: false, stratify: true) }
    }

    func testStratifiedSplitKeepsProportions() throws {
        let y = Array(repeating: "a", count: 60) + Array(repeating: "b", count: 30) + Array(repeating: "c", count: 10)
        let x = Tensor(shape: [100, 1], scalars: (0..<100).map { Float($0) })
        let s = try trainTestSplit(x, y, testSize: 0.2, stratify: true, randomState: 7)
        XCTAssertEqual(s.yTest.filter { $0 == "a" }.count, 12)
        XCTAssertEqual(s.yTest.filter { $0 == "b" }.count, 6)
        XCTAssertEqual(s.yTest.filter { $0 == "c" }.count, 2)
        XCTAssertEqual(Set(s.xTrain.scalars).intersection(s.xTest.scalars).count, 0)
        assertInvalidArgument(["least populated class"]) {
            _ = try trainTestSplit(Tensor(shape: [5, 1], scalars: [1, 2, 3, 4, 5]), [0, 0, 1, 1, 2], stratify: true)
        }
    }

    func testKFoldMatchesScikitLearn() throws {
        // scikit-learn: KFold(3).split(range(10)) tests [0..3], [4..6], [7..9].
        let folds = try KFold(nSplits: 3).split(count: 10)
        XCTAssertEqual(folds.map(\.test), [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]])
        XCTAssertEqual(folds[1].train, [0, 1, 2, 3, 7, 8, 9])
        let shuffled = try KFold(nSplits: 4, shuffle: true, randomState: 3).split(count: 22)
        XCTAssertEqual(shuffled.flatMap(\.test).sorted(), Array(0..<22))  // disjoint and covering
        for f in shuffled { XCTAssertEqual(Set(f.train).intersection(f.test).count, 0) }
        assertInvalidArgument(["nSplits = 11", "10"]) { _ = try KFold(nSplits: 11).split(count: 10) }
    }

    func testStratifiedKFoldMatchesScikitLearn() throws {
        let y = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 1, 0]
        // scikit-learn 1.9: StratifiedKFold(3).split(X, y) test folds.
        let folds = try StratifiedKFold(nSplits: 3).split(y)
        XCTAssertEqual(folds.map(\.test), [[0, 1, 4, 7, 8], [2, 3, 5, 9, 10], [6, 11, 12, 13]])
        let labels = (0..<90).map { $0 % 3 == 0 ? "x" : "y" }
        let shuffled = try StratifiedKFold(nSplits: 5, shuffle: true, randomState: 1).split(labels)
        XCTAssertEqual(shuffled.flatMap(\.test).sorted(), Array(0..<90))
        for f in shuffled {
            XCTAssertEqual(f.test.filter { labels[$0] == "x" }.count, 6)
            XCTAssertEqual(f.test.filter { labels[$0] == "y" }.count, 12)
            XCTAssertEqual(Set(f.train).intersection(f.test).count, 0)
        }
        assertInvalidArgument(["cannot be greater than the number of members"]) {
            _ = try StratifiedKFold(nSplits: 4).split([0, 0, 1, 1, 1])
        }
    }

    func testCrossValScoreAndGridSearch() throws {
        let (x, y) = separableBlobs(perClass: 20, seed: 12)
        let clf = MLPClassifier(hiddenLayerSizes: [4], batchSize: 8, learningRateInit: 0.01, maxIter: 50, randomState: 0)
        let scores = try crossValScore(clf, x, y)
        XCTAssertEqual(scores.count, 5)
        XCTAssertEqual(scores, [1, 1, 1, 1, 1])
        XCTAssertFalse(clf.isFitted)  // clones are fitted, not the estimator

        // A learning rate of ~0 cannot move the weights away from chance; 0.01 can.
        let search = GridSearch(clf, grid: [
            .values("learningRateInit", \.learningRateInit, [1e-9, 0.01]),
            .values("hiddenLayerSizes", \.hiddenLayerSizes, [[4], [8]]),
        ], cv: KFold(nSplits: 3, shuffle: true, randomState: 0))
        try search.fit(x, y)
        XCTAssertEqual(search.results.count, 4)
        XCTAssertEqual(search.results[0].parameters, ["learningRateInit": "1e-09", "hiddenLayerSizes": "[4]"])
        XCTAssertEqual(search.bestParameters?["learningRateInit"], "0.01")
        XCTAssertEqual(search.bestScore, 1)
        XCTAssertEqual(try search.score(x, y), 1)
    }

    func testPipelineScalesThenClassifies() throws {
        // Features on very different scales: the second column is noise × 1000.
        var generator = RandomGenerator(seed: 3)
        var x: [[Float]] = [], y: [Int] = []
        for i in 0..<80 {
            let c = i % 2
            x.append([Float(c) * 2 - 1 + 0.3 * generator.nextUnitFloat(), 1000 * generator.nextUnitFloat()])
            y.append(c)
        }
        let pipeline = Pipeline(StandardScaler(), MLPClassifier(hiddenLayerSizes: [8], batchSize: 16,
                                                                learningRateInit: 0.01, maxIter: 100, randomState: 0))
        try pipeline.fit(x, y)
        XCTAssertEqual(try pipeline.score(x, y), 1)
        XCTAssertEqual(pipeline.classes, [0, 1])
        let p = try pipeline.predictProba(try Tensor(x))
        XCTAssertEqual(p.shape, [80, 2])
        let scaler = pipeline.transformers[0] as! StandardScaler
        XCTAssertEqual(scaler.mean![1], x.map { Double($0[1]) }.reduce(0, +) / 80, accuracy: 1e-3)
        let scores = try crossValScore(pipeline, x, y, cv: StratifiedKFold(nSplits: 4))
        XCTAssertEqual(scores.reduce(0, +) / 4, 1)
    }

    func testKerasWrappers() throws {
        let (x, y) = separableBlobs(perClass: 30, seed: 13)
        let names = y.map { $0 == 0 ? "cat" : "dog" }
        let clf = KerasClassifier<String>(training: KerasTraining(epochs: 30, batchSize: 8, randomState: 1)) {
            Sequential {
                Dense(8, activation: .relu)
                Dense(2)
            }
        }
        try clf.fit(x, names)
        XCTAssertEqual(clf.classes, ["cat", "dog"])
        XCTAssertEqual(try clf.score(x, names), 1)
        XCTAssertEqual(clf.history?["loss"]?.count, 30)
        let p = try clf.predictProba(try Tensor(x))
        for r in 0..<60 { XCTAssertEqual(p[r, 0] + p[r, 1], 1, accuracy: 1e-5) }
        XCTAssertEqual(try crossValScore(clf, x, names, cv: StratifiedKFold(nSplits: 3)), [1, 1, 1])

        // A model with one logit output, compiled by the user (its own optimizer is kept).
        let binary = KerasClassifier<Int>(training: KerasTraining(epochs: 40, batchSize: 8, randomState: 2)) {
            let m = Sequential { Dense(1) }
            m.compile(optimizer: Adam(learningRate: 0.05), loss: BinaryCrossentropy(fromLogits: true))
            return m
        }
        try binary.fit(x, y)
        XCTAssertEqual(try binary.score(x, y), 1)

        XCTAssertThrowsError(try KerasClassifier<Int> { Sequential { Dense(3) } }.fit(x, y)) {
            XCTAssertTrue("\($0)".contains("3 outputs for 2 classes"))
        }

        let lineX: [[Float]] = (0..<40).map { [Float($0) / 20 - 1] }
        let reg = KerasRegressor(training: KerasTraining(optimizer: { Adam(learningRate: 0.05) }, epochs: 100,
                                                         batchSize: 8, randomState: 3)) {
            Sequential { Dense(1) }
        }
        try reg.fit(lineX, lineX.map { 2 * $0[0] - 1 })
        XCTAssertGreaterThan(try reg.score(lineX, lineX.map { 2 * $0[0] - 1 }), 0.999)
    }
}
