import Foundation
import Kestrel

// MARK: Train/test split

/// Splits sample indices into train and test parts as scikit-learn's `ShuffleSplit`
/// (`stratify` nil) or `StratifiedShuffleSplit`: `ceil(testSize·n)` test samples.
func splitIndices(count n: Int, testSize: Double, stratify: [Int]?, generator: inout RandomGenerator,
                  caller: String) throws -> (train: [Int], test: [Int]) {
    guard testSize > 0, testSize < 1 else {
        throw KestrelError.invalidArgument("\(caller): testSize must be in (0, 1), found \(testSize)")
    }
    let nTest = Int((testSize * Double(n)).rounded(.up))
    let nTrain = n - nTest
    guard nTrain > 0, nTest > 0 else {
        throw KestrelError.invalidArgument(
            "\(caller): with \(n) samples and testSize \(testSize) the train set would have \(nTrain) and the test set \(nTest) samples; both need at least 1")
    }
    guard let classesOfSamples = stratify else {
        var order = Array(0..<n)
        order.withUnsafeMutableBufferPointer { generator.shuffle($0) }
        return (Array(order[nTest...]), Array(order[..<nTest]))
    }
    let classCount = (classesOfSamples.max() ?? -1) + 1
    var members = Array(repeating: [Int](), count: classCount)
    for (i, c) in classesOfSamples.enumerated() { members[c].append(i) }
    let counts = members.map(\.count)
    if let least = counts.filter({ $0 > 0 }).min(), least < 2 {
        throw KestrelError.invalidArgument(
            "\(caller): the least populated class has only \(least) member, which is too few to stratify; every class needs at least 2")
    }
    let present = counts.filter { $0 > 0 }.count
    guard nTrain >= present, nTest >= present else {
        throw KestrelError.invalidArgument(
            "\(caller): the train (\(nTrain)) and test (\(nTest)) sizes must each be at least the number of classes (\(present)) to stratify")
    }
    let trainPerClass = approximateMode(counts: counts, draws: nTrain)
    let remaining = zip(counts, trainPerClass).map { $0 - $1 }
    let testPerClass = approximateMode(counts: remaining, draws: nTest)
    var train: [Int] = [], test: [Int] = []
    for c in 0..<classCount {
        var indices = members[c]
        indices.withUnsafeMutableBufferPointer { generator.shuffle($0) }
        train += indices[..<trainPerClass[c]]
        test += indices[trainPerClass[c]..<(trainPerClass[c] + testPerClass[c])]
    }
    train.withUnsafeMutableBufferPointer { generator.shuffle($0) }
    test.withUnsafeMutableBufferPointer { generator.shuffle($0) }
    return (train, test)
}

/// How many of `draws` samples to take from each class so that the classes keep their
/// proportions: the floor of each share, then one more for the largest remainders (ties to the
/// larger class, then the earlier class), like scikit-learn's `_approximate_mode`.
func approximateMode(counts: [Int], draws: Int) -> [Int] {
    let total = counts.reduce(0, +)
    guard total > 0 else { return counts.map { _ in 0 } }
    let exact = counts.map { Double($0) * Double(draws) / Double(total) }
    var result = exact.map { Int($0.rounded(.down)) }
    var left = draws - result.reduce(0, +)
    let byRemainder = counts.indices.sorted {
        let a = exact[$0] - Double(result[$0]), b = exact[$1] - Double(result[$1])
        if abs(a - b) > 1e-12 { return a > b }
        if counts[$0] != counts[$1] { return counts[$0] > counts[$1] }
        return $0 < $1
    }
    for c in byRemainder where left > 0 && result[c] < counts[c] {
        result[c] += 1
        left -= 1
    }
    return result
}

/// Splits samples and targets into random train and test subsets (scikit-learn
/// `train_test_split`): `ceil(testSize·n)` test samples; `stratify` keeps each class's share
/// in both parts; `shuffle` false takes the last samples as the test set; `randomState` seeds
/// the shuffle.
public func trainTestSplit<Target: Hashable>(
    _ x: Tensor, _ y: [Target], testSize: Double = 0.25, shuffle: Bool = true, stratify: Bool = false,
    randomState: UInt64? = nil
) throws -> (xTrain: Tensor, xTest: Tensor, yTrain: [Target], yTest: [Target]) {
    let caller = "trainTestSplit"
    guard x.rank >= 1 else { throw KestrelError.shapeMismatch("\(caller): x must have a sample axis, found shape \(x.shape)") }
    try checkSameLength(x.shape[0], y.count, caller)
    let n = y.count
    let train: [Int], test: [Int]
    if shuffle {
        var generator = RandomGenerator(seed: randomState ?? freshSeed())
        var codes: [Int]?
        if stratify {
            let classes = distinctLabels(y)
            let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
            codes = y.map { index[$0]! }
        }
        (train, test) = try splitIndices(count: n, testSize: testSize, stratify: codes, generator: &generator,
                                         caller: caller)
    } else {
        guard !stratify else {
            throw KestrelError.invalidArgument("\(caller): stratify requires shuffle = true")
        }
        guard testSize > 0, testSize < 1 else {
            throw KestrelError.invalidArgument("\(caller): testSize must be in (0, 1), found \(testSize)")
        }
        let nTest = Int((testSize * Double(n)).rounded(.up))
        guard nTest < n else {
            throw KestrelError.invalidArgument("\(caller): with \(n) samples and testSize \(testSize) the train set would be empty")
        }
        train = Array(0..<(n - nTest))
        test = Array((n - nTest)..<n)
    }
    return (x.gathering(train), x.gathering(test), train.map { y[$0] }, test.map { y[$0] })
}

/// `trainTestSplit` for rows of plain arrays.
public func trainTestSplit<Target: Hashable>(
    _ x: [[Float]], _ y: [Target], testSize: Double = 0.25, shuffle: Bool = true, stratify: Bool = false,
    randomState: UInt64? = nil
) throws -> (xTrain: [[Float]], xTest: [[Float]], yTrain: [Target], yTest: [Target]) {
    let s = try trainTestSplit(featureTensor(x, "trainTestSplit"), y, testSize: testSize, shuffle: shuffle,
                               stratify: stratify, randomState: randomState)
    return (rows(of: s.xTrain), rows(of: s.xTest), s.yTrain, s.yTest)
}

// MARK: Cross-validation

/// One cross-validation split: sample indices to train on and to test on.
public struct Fold: Sendable, Equatable {
    /// Indices of the training samples, ascending.
    public var train: [Int]
    /// Indices of the test samples.
    public var test: [Int]
}

/// A way to cut samples into cross-validation folds (scikit-learn's CV splitters).
public protocol CrossValidator {
    /// The folds for the targets `y` (one per sample).
    func split<Target: Hashable>(_ y: [Target]) throws -> [Fold]
}

/// Consecutive folds, optionally after a seeded shuffle (scikit-learn `KFold`): the first
/// `n % nSplits` folds hold one sample more than the others.
public struct KFold: CrossValidator, Sendable {
    /// The number of folds (at least 2).
    public var nSplits: Int
    /// Whether to shuffle the samples before cutting them into folds.
    public var shuffle: Bool
    /// Seeds the shuffle.
    public var randomState: UInt64?

    /// A k-fold splitter (scikit-learn defaults: 5 folds, no shuffle).
    public init(nSplits: Int = 5, shuffle: Bool = false, randomState: UInt64? = nil) {
        self.nSplits = nSplits
        self.shuffle = shuffle
        self.randomState = randomState
    }

    /// The folds of `count` samples.
    public func split(count n: Int) throws -> [Fold] {
        guard nSplits >= 2 else { throw KestrelError.invalidArgument("KFold: nSplits must be >= 2, found \(nSplits)") }
        guard nSplits <= n else {
            throw KestrelError.invalidArgument("KFold: nSplits = \(nSplits) is greater than the number of samples, \(n)")
        }
        var order = Array(0..<n)
        if shuffle {
            var generator = RandomGenerator(seed: randomState ?? freshSeed())
            order.withUnsafeMutableBufferPointer { generator.shuffle($0) }
        }
        var folds: [Fold] = []
        var start = 0
        for k in 0..<nSplits {
            let size = n / nSplits + (k < n % nSplits ? 1 : 0)
            let test = Array(order[start..<(start + size)])
            let inTest = Set(test)
            folds.append(Fold(train: (0..<n).filter { !inTest.contains($0) }, test: test))
            start += size
        }
        return folds
    }

    /// The folds for `y`'s samples (the values are not used).
    public func split<Target: Hashable>(_ y: [Target]) throws -> [Fold] { try split(count: y.count) }
}

/// Folds that keep each class's share of samples (scikit-learn `StratifiedKFold`): the
/// samples of each class are dealt to the folds as scikit-learn deals them, so fold sizes
/// and class counts per fold match scikit-learn's.
public struct StratifiedKFold: CrossValidator, Sendable {
    /// The number of folds (at least 2).
    public var nSplits: Int
    /// Whether to shuffle each class's samples before dealing them to folds.
    public var shuffle: Bool
    /// Seeds the shuffle.
    public var randomState: UInt64?

    /// A stratified k-fold splitter (scikit-learn defaults: 5 folds, no shuffle).
    public init(nSplits: Int = 5, shuffle: Bool = false, randomState: UInt64? = nil) {
        self.nSplits = nSplits
        self.shuffle = shuffle
        self.randomState = randomState
    }

    /// The folds for the class labels `y`.
    public func split<Target: Hashable>(_ y: [Target]) throws -> [Fold] {
        guard nSplits >= 2 else {
            throw KestrelError.invalidArgument("StratifiedKFold: nSplits must be >= 2, found \(nSplits)")
        }
        // Classes numbered in order of first appearance, as scikit-learn encodes them.
        var code: [Target: Int] = [:]
        let encoded = y.map { label -> Int in
            if let c = code[label] { return c }
            code[label] = code.count
            return code.count - 1
        }
        let classCount = code.count
        var counts = Array(repeating: 0, count: classCount)
        for c in encoded { counts[c] += 1 }
        guard counts.contains(where: { $0 >= nSplits }) else {
            throw KestrelError.invalidArgument(
                "StratifiedKFold: nSplits = \(nSplits) cannot be greater than the number of members in each class (largest class: \(counts.max() ?? 0))")
        }
        // Deal the class-sorted samples round-robin to the folds, counting per class.
        let sortedCodes = encoded.sorted()
        var allocation = Array(repeating: Array(repeating: 0, count: classCount), count: nSplits)
        for (i, c) in sortedCodes.enumerated() { allocation[i % nSplits][c] += 1 }
        var generator = RandomGenerator(seed: randomState ?? freshSeed())
        var testFold = Array(repeating: 0, count: y.count)
        for c in 0..<classCount {
            var folds = (0..<nSplits).flatMap { k in Array(repeating: k, count: allocation[k][c]) }
            if shuffle { folds.shuffle(using: &generator) }
            var next = 0
            for (i, e) in encoded.enumerated() where e == c {
                testFold[i] = folds[next]
                next += 1
            }
        }
        return (0..<nSplits).map { k in
            Fold(train: y.indices.filter { testFold[$0] != k }, test: y.indices.filter { testFold[$0] == k })
        }
    }
}

/// The score of an estimator on each cross-validation fold (scikit-learn `cross_val_score`):
/// a fresh clone is fitted on each fold's training samples and scored on its test samples.
/// By default classifiers use `StratifiedKFold(5)` and other estimators `KFold(5)`; `scoring`
/// replaces the estimator's own `score`.
public func crossValScore<E: Estimator>(
    _ estimator: E, _ x: Tensor, _ y: [E.Target], cv: CrossValidator? = nil,
    scoring: ((E, Tensor, [E.Target]) throws -> Double)? = nil
) throws -> [Double] where E.Target: Hashable {
    let caller = "crossValScore"
    let features = try featureMatrix(x, caller)
    try checkSameLength(features.shape[0], y.count, caller)
    let splitter = cv ?? (estimator is any Classifier ? StratifiedKFold() as CrossValidator : KFold())
    return try splitter.split(y).map { fold in
        let model = try estimator.clone()
        try model.fit(features.gathering(fold.train), fold.train.map { y[$0] })
        let testX = features.gathering(fold.test), testY = fold.test.map { y[$0] }
        return try scoring?(model, testX, testY) ?? model.score(testX, testY)
    }
}

/// `crossValScore` for rows of plain arrays.
public func crossValScore<E: Estimator>(
    _ estimator: E, _ x: [[Float]], _ y: [E.Target], cv: CrossValidator? = nil,
    scoring: ((E, Tensor, [E.Target]) throws -> Double)? = nil
) throws -> [Double] where E.Target: Hashable {
    try crossValScore(estimator, featureTensor(x, "crossValScore"), y, cv: cv, scoring: scoring)
}

// MARK: Grid search

/// One parameter of a grid search: a writable property of the estimator and the values to
/// try (scikit-learn's `param_grid` entry).
public struct ParameterAxis<E: AnyObject> {
    /// The parameter's name, as shown in results.
    public let name: String
    /// Each value, described for results.
    public let valueDescriptions: [String]
    private let setter: (E, Int) -> Void

    /// Tries each of `values` for the property at `keyPath`, reported under `name` (key paths
    /// do not carry their names in optimised builds).
    public static func values<V>(_ name: String, _ keyPath: ReferenceWritableKeyPath<E, V>,
                                 _ values: [V]) -> ParameterAxis<E> {
        ParameterAxis(name: name, valueDescriptions: values.map { String(describing: $0) }) { e, i in
            e[keyPath: keyPath] = values[i]
        }
    }

    private init(name: String, valueDescriptions: [String], setter: @escaping (E, Int) -> Void) {
        self.name = name
        self.valueDescriptions = valueDescriptions
        self.setter = setter
    }

    func apply(_ index: Int, to estimator: E) { setter(estimator, index) }
}

/// The cross-validated result of one parameter combination.
public struct GridSearchResult: Sendable {
    /// Parameter name → value description.
    public let parameters: [String: String]
    /// The score on each fold.
    public let scores: [Double]
    /// The mean of `scores`.
    public var meanScore: Double { scores.reduce(0, +) / Double(max(scores.count, 1)) }
    /// The population standard deviation of `scores` (as scikit-learn's `std_test_score`).
    public var stdScore: Double {
        let m = meanScore
        return (scores.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(scores.count, 1))).squareRoot()
    }
}

/// An exhaustive search over parameter values, scored by cross-validation, then refitted
/// with the best values on all the data (scikit-learn `GridSearchCV`).
public final class GridSearch<E: Estimator>: Estimator where E.Target: Hashable {
    /// The estimator whose clones are tried.
    public var estimator: E
    /// The parameters and their values; every combination is tried.
    public var grid: [ParameterAxis<E>]
    /// The folds (nil: `StratifiedKFold(5)` for classifiers, `KFold(5)` otherwise).
    public var cv: CrossValidator?
    /// Whether to fit the best combination on all the data afterwards.
    public var refit: Bool

    /// Each combination's result, in the order tried (scikit-learn `cv_results_`).
    public private(set) var results: [GridSearchResult] = []
    /// The index of the best result (highest mean score; the first on ties).
    public private(set) var bestIndex: Int?
    /// The best combination's estimator, fitted on all the data when `refit` is true.
    public private(set) var bestEstimator: E?

    /// A grid search over `grid` for `estimator`.
    public init(_ estimator: E, grid: [ParameterAxis<E>], cv: CrossValidator? = nil, refit: Bool = true) {
        self.estimator = estimator
        self.grid = grid
        self.cv = cv
        self.refit = refit
    }

    /// The best combination's mean cross-validated score.
    public var bestScore: Double? { bestIndex.map { results[$0].meanScore } }
    /// The best combination's parameters.
    public var bestParameters: [String: String]? { bestIndex.map { results[$0].parameters } }

    /// Tries every combination with cross-validation, then refits the best.
    @discardableResult
    public func fit(_ x: Tensor, _ y: [E.Target]) throws -> Self {
        guard !grid.isEmpty, grid.allSatisfy({ !$0.valueDescriptions.isEmpty }) else {
            throw KestrelError.invalidArgument("GridSearch: every parameter needs at least one value; found an empty grid")
        }
        results = []
        var combination = Array(repeating: 0, count: grid.count)
        var candidates: [[Int]] = []
        while true {
            candidates.append(combination)
            var axis = grid.count - 1
            while axis >= 0 {
                combination[axis] += 1
                if combination[axis] < grid[axis].valueDescriptions.count { break }
                combination[axis] = 0
                axis -= 1
            }
            if axis < 0 { break }
        }
        func configured(_ combination: [Int]) throws -> E {
            let candidate = try estimator.clone()
            for (axis, index) in zip(grid, combination) { axis.apply(index, to: candidate) }
            return candidate
        }
        for c in candidates {
            let scores = try crossValScore(configured(c), x, y, cv: cv)
            var parameters: [String: String] = [:]
            for (axis, index) in zip(grid, c) { parameters[axis.name] = axis.valueDescriptions[index] }
            results.append(GridSearchResult(parameters: parameters, scores: scores))
        }
        // `max(by:)` keeps the first of equal elements, so ties go to the earlier combination.
        let best = results.indices.max { results[$0].meanScore < results[$1].meanScore }!
        bestIndex = best
        bestEstimator = try configured(candidates[best])
        if refit { try bestEstimator!.fit(x, y) }
        return self
    }

    private func fitted(_ caller: String) throws -> E {
        guard refit, let bestEstimator, bestIndex != nil else {
            throw KestrelError.notReady("GridSearch.\(caller): call fit with refit = true first")
        }
        return bestEstimator
    }

    /// Predicts with the refitted best estimator.
    public func predict(_ x: Tensor) throws -> [E.Target] { try fitted("predict").predict(x) }

    /// Scores the refitted best estimator.
    public func score(_ x: Tensor, _ y: [E.Target]) throws -> Double { try fitted("score").score(x, y) }

    /// An unfitted search with the same estimator, grid and folds.
    public func clone() throws -> GridSearch<E> {
        GridSearch(try estimator.clone(), grid: grid, cv: cv, refit: refit)
    }
}
