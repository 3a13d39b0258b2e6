// Kestrel's side of the scikit-learn comparison (Docs/Performance.md): MLPClassifier on
// Fashion-MNIST with hidden (128,), batch 32, 5 iterations, adam, pixels scaled by /255, and
// for reference the same network trained by a plain Sequential + fit. scripts/compare-sklearn.py
// runs this after scikit-learn's side, so one command prints both.
import ArgumentParser
import Foundation
import Kestrel
import KestrelDatasets
import KestrelLearn

/// Seconds on `clock`: CLOCK_MONOTONIC for wall time, CLOCK_PROCESS_CPUTIME_ID for the CPU
/// time of all the process's threads (less sensitive to other load on a shared machine).
func seconds(_ clock: clockid_t = CLOCK_MONOTONIC) -> Double {
    var t = timespec()
    clock_gettime(clock, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

@main
struct LearnCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learn-compare",
        abstract: "Times KestrelLearn's MLPClassifier on Fashion-MNIST against a plain Sequential fit.")

    @Option(help: "Directory of the four Fashion-MNIST IDX files (default: the usual search).")
    var data: String?

    @Option(help: "The estimator's randomState.")
    var seed: UInt64 = 0

    @Option(help: "Iterations (epochs).")
    var iterations = 5

    @Flag(help: "Skip the plain Sequential + fit reference run.")
    var estimatorOnly = false

    mutating func run() throws {
        let (train, test) = try FashionMNIST.load(path: data)
        let x = train.images / 255, xTest = test.images / 255
        print("Kestrel backend: \(Kestrel.backendDescription)")
        print("train \(train.images.shape) test \(test.images.shape)")

        let clf = MLPClassifier<Int>(hiddenLayerSizes: [128], batchSize: 32, maxIter: iterations, randomState: seed)
        let start = seconds(), cpuStart = seconds(CLOCK_PROCESS_CPUTIME_ID)
        try clf.fit(x, labels: train.labels)
        let wall = seconds() - start, cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpuStart
        let accuracy = try clf.score(xTest, labels: test.labels)
        print(String(format: "KestrelLearn MLPClassifier fit: %.2f s (CPU %.2f s) for %d iterations, loss curve %@",
                     wall, cpu, clf.nIter, clf.lossCurve.map { String(format: "%.4f", $0) }.joined(separator: ", ")))
        print(String(format: "KestrelLearn test accuracy: %.4f", accuracy))

        guard !estimatorOnly else { return }
        // The tutorial's network and optimizer (Keras's Adam defaults, no L2 penalty).
        Kestrel.setRandomSeed(seed)
        let model = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let fitStart = seconds(), fitCPUStart = seconds(CLOCK_PROCESS_CPUTIME_ID)
        try model.fit(x, train.labels, batchSize: 32, epochs: iterations, verbose: 0)
        let fitWall = seconds() - fitStart, fitCPU = seconds(CLOCK_PROCESS_CPUTIME_ID) - fitCPUStart
        let result = try model.evaluate(xTest, test.labels, verbose: 0)
        print(String(format: "Kestrel Sequential fit (same network, Keras Adam): %.2f s (CPU %.2f s) for %d epochs, test accuracy %.4f",
                     fitWall, fitCPU, iterations, result["accuracy"] ?? .nan))
    }
}
