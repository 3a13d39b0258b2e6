import CKestrelKernels
@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// Kestrel's thread pool, the products it splits and the convolutions it shares out: the same
/// results as on one thread, every part run once, and no allocation per training step.
final class ParallelTests: XCTestCase {
    override func tearDown() {
        Kestrel.setBLASThreads(Kestrel.backend.threads)
    }

    /// Counts, per part, how often it ran and on which thread (one slot per part: no races).
    private struct Tally {
        var runs: UnsafeMutablePointer<Int>
        var threads: UnsafeMutablePointer<Int>
        var spin: Int
    }

    func testEveryPartRunsOnceAndTheWorkersTakePart() throws {
        Kestrel.setBLASThreads(2)
        let parts = 64
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: parts)
        let threads = UnsafeMutablePointer<Int>.allocate(capacity: parts)
        defer { runs.deallocate(); threads.deallocate() }
        var workerTookPart = false
        for _ in 0..<50 where !workerTookPart {
            runs.initialize(repeating: 0, count: parts)
            threads.initialize(repeating: -1, count: parts)
            var tally = Tally(runs: runs, threads: threads, spin: 20_000)
            withUnsafeMutablePointer(to: &tally) {
                kestrel_parallel_run({ context, part, thread in
                    let tally = context!.assumingMemoryBound(to: Tally.self).pointee
                    // Enough work per part that a second thread has time to join.
                    var x = 0.0
                    for i in 0..<tally.spin { x += Double(i & 7) }
                    tally.runs[part] += x > 0 ? 1 : 0
                    tally.threads[part] = thread
                }, $0, parts)
            }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: runs, count: parts)), Array(repeating: 1, count: parts))
            workerTookPart = (0..<parts).contains { threads[$0] == 1 }
        }
        if Kestrel.backend.threads > 1 && kestrel_parallel_cores() > 1 {
            XCTAssertTrue(workerTookPart, "the worker thread never ran a part")
        }
    }

    func testNestedLoopsRunInline() {
        Kestrel.setBLASThreads(2)
        var inner = [Int](repeating: 0, count: 8)
        inner.withUnsafeMutableBufferPointer { buffer in
            var base = buffer.baseAddress!
            withUnsafeMutablePointer(to: &base) {
                kestrel_parallel_run({ context, outer, _ in
                    // Each outer part runs an inner loop over its own four slots.
                    var slots = context!.assumingMemoryBound(to: UnsafeMutablePointer<Int>.self).pointee + outer * 4
                    XCTAssertEqual(kestrel_parallel_inside(), 1)
                    withUnsafeMutablePointer(to: &slots) {
                        kestrel_parallel_run({ context, part, thread in
                            context!.assumingMemoryBound(to: UnsafeMutablePointer<Int>.self).pointee[part] += 1
                            XCTAssertEqual(thread, 0, "a nested loop must not wait on the busy workers")
                        }, $0, 4)
                    }
                }, $0, 2)
            }
        }
        XCTAssertEqual(inner, Array(repeating: 1, count: 8))
        XCTAssertEqual(kestrel_parallel_inside(), 0)
    }

    /// Products large enough to be split, in every transpose combination and both split
    /// directions, against the same product on one thread.
    func testSplitProductsMatchOneThread() {
        let shapes: [(m: Int, n: Int, k: Int)] = [(784, 128, 32), (32, 128, 784), (300, 300, 300), (17, 999, 64)]
        for (m, n, k) in shapes {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = Tensor.randomUniform([m * k]).scalars, b = Tensor.randomUniform([k * n]).scalars
                func product(threads: Int) -> [Float] {
                    Kestrel.setBLASThreads(threads)
                    var c = [Float](repeating: 1, count: m * n)
                    c.withUnsafeMutableBufferPointer { c in
                        Kernels.gemm(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: 1, a: a, lda: ta ? m : k,
                                     b: b, ldb: tb ? k : n, beta: 0.5, c: c.baseAddress!, ldc: n)
                    }
                    return c
                }
                XCTAssertGreaterThanOrEqual(m * n * k, Kernels.splitThreshold)
                let one = product(threads: 1), two = product(threads: 2)
                let worst = zip(one, two).map { abs($0 - $1) / max(1, abs($0)) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-5, "\(m)x\(n)x\(k) transposes \(ta) \(tb)")
            }
        }
    }

    private func convnet() -> Sequential {
        Sequential {
            Input(shape: [28, 28, 1])
            Conv2D(32, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Conv2D(64, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Flatten()
            Dense(10, activation: .softmax)
        }
    }

    /// The mnist_convnet's loss and gradients for a batch of 32 (many tiles, a direct first
    /// convolution split by images) on two threads and on one.
    func testConvolutionGradientsMatchOneThread() throws {
        Kestrel.setRandomSeed(7)
        let model = convnet()
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [])
        let x = Tensor.randomUniform([32, 28, 28, 1])
        let y = Tensor(labels: (0..<32).map { $0 % 10 })
        Kestrel.setBLASThreads(2)
        let (lossTwo, gradientsTwo) = try model.lossAndGradients(x, y)
        let two = gradientsTwo.tensors.map(\.scalars)
        Kestrel.setBLASThreads(1)
        let (lossOne, gradientsOne) = try model.lossAndGradients(x, y)
        let one = gradientsOne.tensors.map(\.scalars)
        XCTAssertEqual(lossOne, lossTwo, accuracy: 1e-6)
        XCTAssertEqual(one.count, two.count)
        for (g1, g2) in zip(one, two) {
            let scale = g1.map(abs).max()! + 1e-12
            let worst = zip(g1, g2).map { abs($0 - $1) }.max()! / scale
            XCTAssertLessThanOrEqual(worst, 1e-5)
        }
    }

    /// Dropout's mask comes from streams fixed per chunk, so the same seed gives the same mask on
    /// one thread and on two; a fraction `rate` is dropped and the rest scaled by 1/(1-rate).
    func testDropoutMaskIsTheSameOnAnyNumberOfThreads() throws {
        let x = Tensor.ones([128, 1600])
        Kestrel.setBLASThreads(2)
        let two = try Dropout(0.3, seed: 11)(x, training: true).scalars
        Kestrel.setBLASThreads(1)
        let one = try Dropout(0.3, seed: 11)(x, training: true).scalars
        XCTAssertEqual(one, two)
        let dropped = Double(one.filter { $0 == 0 }.count) / Double(one.count)
        XCTAssertEqual(dropped, 0.3, accuracy: 0.01)
        XCTAssertTrue(one.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        // Another call draws another mask.
        let layer = Dropout(0.3, seed: 11)
        XCTAssertNotEqual(try layer(x, training: true).scalars, try layer(x, training: true).scalars)
    }

    /// Dropout's masks behave as independent draws: no correlation between neighbouring
    /// elements (within a lane group, across lanes, rows and the 8192-element chunks whose
    /// streams are seeded apart) or between the masks of consecutive calls, and each row keeps
    /// a binomial number of elements. Bounds are five standard errors of 20 masks.
    func testDropoutMasksAreUncorrelated() throws {
        let rows = 128, columns = 1600, calls = 20
        let x = Tensor.ones([rows, columns])
        let layer = Dropout(0.5, seed: 3)
        let masks = try (0..<calls).map { _ in try layer(x, training: true).scalars.map { $0 > 0 ? 1.0 : -1.0 } }
        let n = Double(rows * columns)
        let bound = 5 / (n * Double(calls)).squareRoot()
        for lag in [1, 7, 8, 9, 1024, columns, 8192] {
            var c = 0.0
            for m in masks { for i in 0..<(m.count - lag) { c += m[i] * m[i + lag] } }
            XCTAssertLessThan(abs(c / (Double(masks[0].count - lag) * Double(calls))), bound, "lag \(lag)")
        }
        var consecutive = 0.0
        for k in 1..<calls { for i in 0..<masks[k].count { consecutive += masks[k][i] * masks[k - 1][i] } }
        XCTAssertLessThan(abs(consecutive / (n * Double(calls - 1))), bound, "consecutive calls")
        // Kept count per row: variance p(1-p)·columns for independent draws.
        var variance = 0.0
        for m in masks {
            for r in 0..<rows {
                let kept = m[(r * columns)..<((r + 1) * columns)].reduce(0) { $0 + ($1 > 0 ? 1.0 : 0) }
                variance += (kept - 0.5 * Double(columns)) * (kept - 0.5 * Double(columns))
            }
        }
        let ratio = variance / Double(rows * calls) / (0.25 * Double(columns))
        XCTAssertEqual(ratio, 1, accuracy: 0.2, "row keep-count variance against binomial")
    }

    /// The benchmark's large workloads: products split over threads and convolution tiles
    /// shared out, and still nothing allocated per step.
    func testThreadedTrainingStepsAllocateNothing() throws {
        Kestrel.setBLASThreads(2)
        let cnn = convnet()
        cnn.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(), metrics: [.accuracy])
        let mlp = Sequential {
            Dense(1024, activation: .relu, inputShape: [784])
            Dense(1024, activation: .relu)
            Dense(10)
        }
        mlp.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        for (model, shape) in [(cnn as Model, [28, 28, 1]), (mlp, [784])] {
            let x = Tensor.randomUniform([256] + shape)
            let y = Tensor(labels: (0..<256).map { $0 % 10 })
            try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 128, steps: 12)
        }
    }
}
