import Kestrel
import XCTest

// Deliberately without `@testable`: these check that code outside the module (a user's own
// optimizer, an estimator library) can do what they need through the public API alone.

/// Heavy-ball momentum written outside the module, keeping its velocity in the base class's
/// slot as the built-in SGD does: `v = momentum·v - lr·g; w += v`.
private final class OutsideMomentum: Optimizer {
    let momentum: Float

    init(learningRate: Float, momentum: Float) {
        self.momentum = momentum
        super.init(name: "outside_momentum", learningRate: learningRate)
    }

    override var slotsPerParameter: Int { 1 }
    override var slotNames: [String] { ["momentum"] }

    override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                         range: Range<Int>) {
        let v = slot(0)
        for i in range {
            v[i] = momentum * v[i] - learningRate * g[i]
            w[i] += v[i]
        }
    }
}

final class PublicTrainingAPITests: XCTestCase {
    /// A small network whose weights come from `seed` (built now, before any other draw).
    private func model(seed: UInt64) throws -> Sequential {
        Kestrel.setRandomSeed(seed)
        let m = Sequential {
            Dense(6, activation: .tanh, inputShape: [3])
            Dense(2)
        }
        try m.build()
        return m
    }

    private let x = Tensor(shape: [8, 3], scalars: (0..<24).map { Float($0 % 7) / 7 - 0.4 })
    private let y = Tensor(shape: [8, 2], scalars: (0..<16).map { Float($0 % 5) / 5 })

    func testOptimizerSubclassOutsideTheModuleUsesSlots() throws {
        let outside = try model(seed: 3), builtIn = try model(seed: 3)
        let custom = OutsideMomentum(learningRate: 0.05, momentum: 0.9)
        XCTAssertEqual(custom.slotLength, 0, "not built before compile")
        XCTAssertNil(custom.slot(named: "momentum"))
        outside.compile(optimizer: custom, loss: MeanSquaredError())
        builtIn.compile(optimizer: SGD(learningRate: 0.05, momentum: 0.9), loss: MeanSquaredError())
        try outside.fit(x, y, batchSize: 4, epochs: 3, verbose: 0, shuffle: false)
        try builtIn.fit(x, y, batchSize: 4, epochs: 3, verbose: 0, shuffle: false)
        // Same rule, same slot layout: the same weights and the same saved state.
        for (a, b) in zip(try outside.getWeights(), try builtIn.getWeights()) {
            for (u, v) in zip(a.scalars, b.scalars) { XCTAssertEqual(u, v, accuracy: 1e-6) }
        }
        let parameters = try outside.countParams()
        XCTAssertEqual(custom.slotLength, parameters)
        let velocity = try XCTUnwrap(custom.slot(named: "momentum"))
        XCTAssertEqual(velocity, custom.slot(0))
        XCTAssertNil(custom.slot(named: "velocity"))
        let saved = try outside.optimizerState().slots[0].flatMap(\.scalars)
        XCTAssertEqual(saved, Array(UnsafeBufferPointer(start: velocity, count: parameters)))
        XCTAssertTrue(saved.contains { $0 != 0 }, "the velocity was written through slot(0)")
    }

    func testBuiltInOptimizerSlotsReadableByName() throws {
        let m = try model(seed: 4)
        let adam = Adam(learningRate: 0.01)
        m.compile(optimizer: adam, loss: MeanSquaredError())
        try m.fit(x, y, batchSize: 8, epochs: 2, verbose: 0)
        let state = try m.optimizerState()
        for (k, name) in ["momentum", "velocity"].enumerated() {
            let slot = try XCTUnwrap(adam.slot(named: name))
            XCTAssertEqual(Array(UnsafeBufferPointer(start: slot, count: adam.slotLength)),
                           state.slots[k].flatMap(\.scalars))
        }
    }

    func testSumOfSquaresAndFusedL2AdamMatchPlainLoops() {
        let n = 37   // two 16-lane blocks and a tail
        let w0 = (0..<n).map { Float($0 % 9) / 4 - 1 }, g = (0..<n).map { Float(($0 * 5) % 7) / 3 - 1 }
        w0.withUnsafeBufferPointer { p in
            XCTAssertEqual(Kernels.sumOfSquares(p.baseAddress!, count: n), w0.reduce(0) { $0 + $1 * $1 }, accuracy: 1e-4)
        }
        let range = 3..<n, decay: Float = 0.05
        var wFused = w0, mFused = [Float](repeating: 0.1, count: n), vFused = [Float](repeating: 0.2, count: n)
        var wPlain = w0, mPlain = mFused, vPlain = vFused
        var gPlain = g
        for i in range { gPlain[i] += decay * wPlain[i] }
        Kernels.adamStep(weights: &wPlain, gradients: gPlain, firstMoments: &mPlain, secondMoments: &vPlain,
                         range: range, rate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8)
        let squares = Kernels.adamStep(weights: &wFused, gradients: g, firstMoments: &mFused, secondMoments: &vFused,
                                       range: range, rate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, l2: decay)
        for i in 0..<n {
            XCTAssertEqual(wFused[i], wPlain[i], accuracy: 1e-6)
            XCTAssertEqual(mFused[i], mPlain[i], accuracy: 1e-6)
            XCTAssertEqual(vFused[i], vPlain[i], accuracy: 1e-6)
        }
        XCTAssertEqual(Array(wFused[0..<3]), Array(w0[0..<3]), "outside the range nothing moves")
        XCTAssertEqual(squares, wPlain[range].reduce(0) { $0 + $1 * $1 }, accuracy: 1e-4)
    }

    func testFitSeedFixesShufflesWithoutTheGlobalGenerator() throws {
        func train(seed: UInt64?, globalSeed: UInt64) throws -> (weights: [Float], nextGlobal: [Float]) {
            let m = try model(seed: 7)
            m.compile(optimizer: SGD(learningRate: 0.1), loss: MeanSquaredError())
            Kestrel.setRandomSeed(globalSeed)
            try m.fit(x, y, batchSize: 2, epochs: 2, verbose: 0, seed: seed)
            return (try m.getWeights().flatMap(\.scalars), Tensor.randomUniform([4]).scalars)
        }
        let a = try train(seed: 11, globalSeed: 1), b = try train(seed: 11, globalSeed: 2)
        XCTAssertEqual(a.weights, b.weights, "the fit's seed alone decides its shuffles")
        let c = try train(seed: 12, globalSeed: 1)
        XCTAssertNotEqual(a.weights, c.weights, "another seed shuffles differently")
        // A seeded fit leaves the global generator where it was.
        Kestrel.setRandomSeed(1)
        XCTAssertEqual(a.nextGlobal, Tensor.randomUniform([4]).scalars)
        let unseeded = try train(seed: nil, globalSeed: 1)
        XCTAssertNotEqual(unseeded.nextGlobal, a.nextGlobal, "an unseeded fit draws its seed from the global generator")
    }

    /// Every epoch draws a new order, seeded or not. (Seeded by `keras.utils.set_random_seed`,
    /// Keras's fit on TensorFlow repeats its first epoch's order instead; see
    /// `scripts/compare/keras-epoch-order.py`.)
    func testEveryEpochFeedsSamplesInANewOrder() throws {
        let samples = 20
        let m = Sequential { Dense(1, useBias: false, inputShape: [1]) }
        m.compile(optimizer: SGD(learningRate: 0), loss: MeanSquaredError())
        try m.build()
        try m.setWeights([Tensor(shape: [1, 1], scalars: [1])])
        // With one sample per batch and fixed weights, a batch's loss is its sample's index
        // squared; the logged loss is the epoch's running mean, from which each batch's follows.
        var orders: [[Int]] = [], current: [Int] = [], previousMean: Float = 0
        let recorder = LambdaCallback(
            onEpochBegin: { _, _ in current = []; previousMean = 0 },
            onEpochEnd: { _, _ in orders.append(current) },
            onTrainBatchEnd: { batch, logs in
                let mean = logs["loss"]!, value = mean * Float(batch + 1) - previousMean * Float(batch)
                previousMean = mean
                current.append(Int(value.squareRoot().rounded()))
            })
        let x = Tensor(shape: [samples, 1], scalars: (0..<samples).map(Float.init))
        try m.fit(x, Tensor.zeros([samples, 1]), batchSize: 1, epochs: 3, verbose: 0, callbacks: [recorder], seed: 1)
        XCTAssertEqual(orders.count, 3)
        for order in orders { XCTAssertEqual(order.sorted(), Array(0..<samples), "each epoch sees every sample once") }
        XCTAssertEqual(Set(orders).count, 3, "three epochs, three orders: \(orders)")
        XCTAssertNotEqual(orders[0], Array(0..<samples), "shuffled")
    }
}
