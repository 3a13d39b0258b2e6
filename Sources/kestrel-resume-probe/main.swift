// A child process for BackupAndRestore's kill-and-resume test: trains a small classifier on
// synthetic data with BackupAndRestore, printing a line per epoch start and per batch, then
// writes the final weights.
//
//   kestrel-resume-probe --backup DIR --out FINAL.safetensors [--epochs N] [--delay-ms MS]
//
// Killed at any point and started again with the same arguments, it must end with the same
// weights as a run that was never interrupted.
import Foundation
import Kestrel

func argument(_ name: String) -> String? {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}

guard let backup = argument("--backup"), let out = argument("--out") else {
    FileHandle.standardError.write(Data("usage: kestrel-resume-probe --backup DIR --out FINAL.safetensors [--epochs N] [--delay-ms MS]\n".utf8))
    exit(2)
}
let epochs = Int(argument("--epochs") ?? "4") ?? 4
let delay = UInt32(argument("--delay-ms") ?? "0") ?? 0

do {
    Kestrel.setRandomSeed(7)
    // Data from its own generator: three classes around different centres.
    var generator = RandomGenerator(seed: 1234)
    let samples = 384, features = 12
    var xs = [Float](repeating: 0, count: samples * features)
    var ys = [Float](repeating: 0, count: samples)
    for i in 0..<samples {
        let label = i % 3
        ys[i] = Float(label)
        for j in 0..<features {
            xs[i * features + j] = generator.nextUnitFloat() * 2 - 1 + (j % 3 == label ? 1.5 : 0)
        }
    }
    let model = Sequential {
        Dense(24, activation: .relu, inputShape: [features])
        Dropout(0.2)
        Dense(3)
    }
    model.compile(optimizer: Adam(learningRate: try ExponentialDecay(initialLearningRate: 0.01, decaySteps: 20, decayRate: 0.9)),
                  loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
    var currentEpoch = 0
    let log = LambdaCallback(
        onEpochBegin: { epoch, _ in
            currentEpoch = epoch
            print("epoch \(epoch) begin")
            fflush(nil)
        },
        onTrainBatchEnd: { batch, _ in
            print("epoch \(currentEpoch) batch \(batch)")
            fflush(nil)
            if delay > 0 { usleep(delay * 1000) }
        })
    try model.fit(Tensor(shape: [samples, features], scalars: xs), Tensor(shape: [samples], scalars: ys),
                  batchSize: 16, epochs: epochs, verbose: 0,
                  callbacks: [try BackupAndRestore(backupDir: backup), log])
    try model.saveWeights(to: out)
    print("done")
} catch {
    FileHandle.standardError.write(Data("kestrel-resume-probe: \(error)\n".utf8))
    exit(1)
}
