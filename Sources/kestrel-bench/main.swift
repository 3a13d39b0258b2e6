// Kestrel's benchmark: per workload, the time of a training epoch against the time its matrix
// products alone take in the same run (the sgemm floor), heap allocations per step after
// warm-up, inference throughput and peak memory.
import ArgumentParser
import CBLAS
import Foundation
import Kestrel
import KestrelAllocationCounter
import KestrelDatasets

struct Workload {
    let name: String
    let batchSize: Int
    let inputShape: [Int]
    let classes: Int
    /// Whether the model ends in logits (the MLPs, as Keras's tutorial) rather than a softmax.
    var fromLogits = true
    /// Samples per epoch for a workload too heavy for `--samples` (at most that many).
    var epochSamples: Int? = nil
    /// The batch size of the timed `predict`.
    var inferenceBatchSize = 256
    let makeModel: @Sendable () throws -> Model
}

let workloads: [Workload] = [
    Workload(name: "mlp-tutorial-b32", batchSize: 32, inputShape: [28, 28], classes: 10) {
        Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
    },
    Workload(name: "mlp-tutorial-b256", batchSize: 256, inputShape: [28, 28], classes: 10) {
        Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
    },
    Workload(name: "cnn-mnist-convnet-b128", batchSize: 128, inputShape: [28, 28, 1], classes: 10, fromLogits: false) {
        Sequential {
            Input(shape: [28, 28, 1])
            Conv2D(32, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Conv2D(64, kernelSize: 3, activation: .relu)
            MaxPooling2D(poolSize: 2)
            Flatten()
            Dropout(0.5)
            Dense(10, activation: .softmax)
        }
    },
    Workload(name: "mlp-3x1024-b256", batchSize: 256, inputShape: [784], classes: 10) {
        Sequential {
            Dense(1024, activation: .relu, inputShape: [784])
            Dense(1024, activation: .relu)
            Dense(1024, activation: .relu)
            Dense(10)
        }
    },
    // Fashion-MNIST images read row by row: 28 timesteps of 28 features.
    Workload(name: "lstm-b128", batchSize: 128, inputShape: [28, 28], classes: 10, fromLogits: false) {
        Sequential {
            Input(shape: [28, 28])
            LSTM(128)
            Dense(10, activation: .softmax)
        }
    },
    // The same rows through a GRU, and a bidirectional GRU of half the width each way.
    Workload(name: "gru-b128", batchSize: 128, inputShape: [28, 28], classes: 10, fromLogits: false) {
        Sequential {
            Input(shape: [28, 28])
            GRU(128)
            Dense(10, activation: .softmax)
        }
    },
    Workload(name: "bigru-b128", batchSize: 128, inputShape: [28, 28], classes: 10, fromLogits: false) {
        Sequential {
            Input(shape: [28, 28])
            Bidirectional(GRU(64))
            Dense(10, activation: .softmax)
        }
    },
    // A transformer-style block over the 28 rows: self-attention, residual, layer norm.
    Workload(name: "attention-b128", batchSize: 128, inputShape: [28, 28], classes: 10, fromLogits: false) {
        let input = Input(shape: [28, 28])
        let x = try Dense(64)(input)
        let attended = try MultiHeadAttention(numHeads: 4, keyDim: 16)(query: x, value: x)
        let normalized = try LayerNormalization()(try Add()([x, attended]))
        let pooled = try GlobalAveragePooling1D()(normalized)
        return try Model(inputs: input, outputs: try Dense(10, activation: .softmax)(pooled))
    },
    // Keras's "3D image classification from CT scans" network, its first three blocks, on
    // scans of 48×48×24 voxels (the example's 128×128×64 take minutes per step on two cores),
    // 160 scans an epoch as the example's 140 training scans, two classes.
    Workload(name: "cnn3d-ct-b4", batchSize: 4, inputShape: [48, 48, 24, 1], classes: 2, fromLogits: false,
             epochSamples: 160, inferenceBatchSize: 4) {
        Sequential {
            Input(shape: [48, 48, 24, 1])
            Conv3D(64, kernelSize: 3, activation: .relu)
            MaxPooling3D(poolSize: 2)
            BatchNormalization()
            Conv3D(64, kernelSize: 3, activation: .relu)
            MaxPooling3D(poolSize: 2)
            BatchNormalization()
            Conv3D(128, kernelSize: 3, activation: .relu)
            MaxPooling3D(poolSize: 2)
            BatchNormalization()
            GlobalAveragePooling3D()
            Dense(512, activation: .relu)
            Dropout(0.3)
            Dense(2, activation: .softmax)
        }
    },
    // Clips of 10 frames of 32×32 through two convolutional LSTMs (the layers of Keras's
    // next-frame prediction example, smaller), classified; 320 clips an epoch.
    Workload(name: "convlstm-b8", batchSize: 8, inputShape: [10, 32, 32, 1], classes: 10, fromLogits: false,
             epochSamples: 320, inferenceBatchSize: 8) {
        Sequential {
            Input(shape: [10, 32, 32, 1])
            ConvLSTM2D(16, kernelSize: 3, padding: .same, returnSequences: true)
            BatchNormalization()
            ConvLSTM2D(16, kernelSize: 3, padding: .same)
            GlobalAveragePooling2D()
            Dense(10, activation: .softmax)
        }
    },
]

/// The text benchmark's corpus, which scripts/compare/keras-text-vectorization.py makes
/// identically: IMDB's size (25,000 texts of 200–259 words), words `w<k>` with k skewed
/// towards small numbers (a vocabulary of 20,000 with a long tail), one in eight capitalised,
/// one in ten followed by a comma or full stop, all drawn from a 64-bit LCG.
func syntheticReviews(count: Int) -> [String] {
    var state: UInt64 = 42
    func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / 9007199254740992
    }
    return (0..<count).map { _ in
        let words = 200 + Int(next() * 60)
        return (0..<words).map { _ -> String in
            let u = next()
            var word = (next() < 0.125 ? "W" : "w") + String(Int(20000 * u * u * u))
            let p = next()
            if p < 0.05 { word += "," } else if p < 0.1 { word += "." }
            return word
        }.joined(separator: " ")
    }
}

/// Seconds to adapt a `TextVectorization` (10,000 tokens) to the corpus and to vectorize it
/// (250 indices per text), the best of `rounds`.
/// Also a summary of the result to hold against the script's: the vocabulary's head, the sum
/// of all indices and the first row's first eight.
func timeTextVectorization(rounds: Int) throws -> (texts: Int, adapt: Double, vectorize: Double, check: String) {
    let texts = syntheticReviews(count: 25_000)
    var adapt = Double.infinity, vectorize = Double.infinity, check = ""
    for _ in 0..<max(1, rounds) {
        let layer = try TextVectorization(maxTokens: 10_000, outputSequenceLength: 250)
        var start = now()
        try layer.adapt(texts)
        adapt = min(adapt, now() - start)
        start = now()
        let out = try layer(texts)
        vectorize = min(vectorize, now() - start)
        check = "vocabulary head \(layer.vocabulary().prefix(6)), output sum \(out.scalars.reduce(0) { $0 + Int($1) }), "
            + "first row \(out.scalars.prefix(8).map { Int($0) })"
    }
    return (texts.count, adapt, vectorize, check)
}

struct Result: Codable {
    var workload: String
    var samples: Int
    var epochSeconds: Double
    var gemmFloorSeconds: Double
    var ratio: Double
    var gflopsPerStep: Double
    var achievedGflops: Double
    var allocationsPerStep: Double
    var inferenceSamplesPerSecond: Double
    var peakResidentMegabytes: Double
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// The time the recorded products take when run alone, `steps` times, as the engine ran them
/// (split over the threads, or, for a convolution's tiles, shared out; `Kernels.runGEMMs`).
func gemmFloor(_ shapes: [Kernels.GEMMShape], steps: Int) -> Double {
    let size = shapes.map { max($0.m * $0.k, $0.k * $0.n, $0.m * $0.n) }.max() ?? 1
    let threads = Kestrel.blasThreads
    let a = UnsafeMutablePointer<Float>.allocate(capacity: size), b = UnsafeMutablePointer<Float>.allocate(capacity: size)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: size * threads)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    a.initialize(repeating: 0.01, count: size); b.initialize(repeating: 0.02, count: size)
    c.initialize(repeating: 0, count: size * threads)
    for _ in 0..<20 { Kernels.runGEMMs(shapes, a: a, b: b, c: c, cStride: size) }
    let start = now()
    for _ in 0..<steps { Kernels.runGEMMs(shapes, a: a, b: b, c: c, cStride: size) }
    return now() - start
}

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kestrel-bench",
        abstract: "Times training epochs against the sgemm floor of the same run.")

    @Option(help: "Only workloads whose name contains this text.")
    var filter: String?

    @Option(help: "Samples per epoch (Fashion-MNIST's training set has 60000).")
    var samples = 60000

    @Option(help: "Rounds of (epoch, sgemm floor) per workload; the fastest of each is reported, so that a passing slowdown of the machine does not skew the ratio.")
    var rounds = 3

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Also time LabeledImages.fromDirectory on this folder (180x180 RGB, unshuffled; scripts/compare/keras-image-folder.py makes one and times Keras on it).")
    var imageFolder: String?

    @Option(help: "Instead of the workloads, train the image-folder convnet for --epochs on --image-folder: 'streamed' (ImageFolderBatches, a batch decoded per step) or 'in-memory' (LabeledImages.fromDirectory, then fit on the arrays). One run per process, so the peak memory is that mode's; scripts/compare/keras-image-folder-fit.py trains the same model in Keras.")
    var imageTraining: String?

    @Option(help: "Epochs for --image-training and --structured-data.")
    var epochs = 2

    @Option(help: "Instead of the workloads, train the structured-data tutorial's model (Docs/StructuredData.md) on this CSV file for --epochs; scripts/compare/keras-structured-data.py writes the file and trains the same model in Keras.")
    var structuredData: String?

    mutating func run() throws {
        if !json { print("backend: \(Kestrel.backendDescription)") }
        if let structuredData {
            try trainOnStructuredData(structuredData, epochs: epochs)
            return
        }
        if let imageTraining {
            guard let imageFolder else { throw ValidationError("--image-training needs --image-folder") }
            try trainOnImageFolder(imageFolder, mode: imageTraining, epochs: epochs)
            return
        }
        var results: [Result] = []
        for w in workloads where filter.map({ w.name.contains($0) }) ?? true {
            Kestrel.setRandomSeed(1)
            let samples = w.epochSamples.map { min($0, self.samples) } ?? self.samples
            let x = Tensor.randomUniform([samples] + w.inputShape)
            let y = Tensor(labels: (0..<samples).map { $0 % w.classes })
            let model = try w.makeModel()
            model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: w.fromLogits), metrics: [.accuracy])
            let steps = (samples + w.batchSize - 1) / w.batchSize

            // Shapes of one training step's products, then their time alone.
            try model.runTrainingSteps(x, y, batchSize: w.batchSize, count: 3)
            let shapes = try Kernels.traceGEMMs { try model.runTrainingSteps(x, y, batchSize: w.batchSize, count: 1) }

            // Allocations per step after warm-up.
            let a0 = kestrel_allocation_count()
            try model.runTrainingSteps(x, y, batchSize: w.batchSize, count: 1)
            let a1 = kestrel_allocation_count()
            try model.runTrainingSteps(x, y, batchSize: w.batchSize, count: 101)
            let a2 = kestrel_allocation_count()
            let perStep = Double(Int(a2 - a1) - Int(a1 - a0)) / 100

            // Real epochs through fit, alternating with the floor's products alone (an epoch first:
            // on the development machine the tutorial MLP's epoch ran ~50% slower right after
            // the floor's seconds of two-core products than after the allocation steps).
            var floor = Double.infinity, epoch = Double.infinity
            for _ in 0..<max(1, rounds) {
                let start = now()
                try model.fit(x, y, batchSize: w.batchSize, epochs: 1, verbose: 0)
                epoch = min(epoch, now() - start)
                floor = min(floor, gemmFloor(shapes, steps: steps))
            }

            let inferStart = now()
            _ = try model.predict(x, batchSize: w.inferenceBatchSize)
            let inference = Double(samples) / (now() - inferStart)

            // Counted by the plan (every product and convolution, direct ones included).
            let flops = Double(try model.flops(batchSize: w.batchSize))
            results.append(Result(
                workload: w.name, samples: samples, epochSeconds: epoch, gemmFloorSeconds: floor,
                ratio: epoch / floor, gflopsPerStep: flops / 1e9,
                achievedGflops: flops * Double(steps) / epoch / 1e9,
                allocationsPerStep: perStep, inferenceSamplesPerSecond: inference,
                peakResidentMegabytes: peakResidentMegabytes()))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            // Foundation on Linux ignores a width given to %@, so names are padded here.
            func column(_ name: String) -> NSString { name.padding(toLength: 24, withPad: " ", startingAt: 0) as NSString }
            print(String(format: "%@ %9@ %9@ %6@ %11@ %8@ %12@ %10@", column("workload"), "epoch s" as NSString,
                         "sgemm s" as NSString, "ratio" as NSString, "GFLOP/step" as NSString, "GFLOP/s" as NSString,
                         "allocs/step" as NSString, "infer/s" as NSString))
            for r in results {
                print(String(format: "%@ %9.3f %9.3f %6.2f %11.3f %8.1f %12.1f %10.0f", column(r.workload),
                             r.epochSeconds, r.gemmFloorSeconds, r.ratio, r.gflopsPerStep, r.achievedGflops,
                             r.allocationsPerStep, r.inferenceSamplesPerSecond))
            }
            if filter.map({ "text-vectorization".contains($0) }) ?? true {
                let t = try timeTextVectorization(rounds: rounds)
                print(String(format: "text-vectorization: %d texts, adapt %.2f s, vectorize %.2f s (%.0f texts/s)",
                             t.texts, t.adapt, t.vectorize, Double(t.texts) / t.vectorize))
                print("  " + t.check)
            }
            if let imageFolder {
                var best = Double.infinity, images = LabeledImages?.none
                for _ in 0..<max(1, rounds) {
                    let start = now()
                    images = try LabeledImages.fromDirectory(imageFolder, imageSize: (180, 180), shuffle: false, verbose: false)
                    best = min(best, now() - start)
                }
                let sum = images!.images.scalars.reduce(0.0) { $0 + Double($1) }
                print(String(format: "image folder: %d images, %.2f s (%.0f images/s), pixel sum %.6e",
                             images!.count, best, Double(images!.count) / best, sum))
            }
            print(String(format: "peak resident memory: %.0f MB", peakResidentMegabytes()))
        }
    }
}

/// The convnet of `scripts/compare/keras-image-folder-fit.py` (a small "image classification
/// from scratch" model for 180×180 photos), trained on a folder either streamed batch by batch
/// or read whole first; prints each epoch's time and the peak memory.
/// Prints each epoch's time, loss and one metric, the lines the comparison scripts print.
final class EpochTimer: Callback {
    let label: String, metric: String
    var start = 0.0

    init(label: String = "", metric: String) {
        self.label = label
        self.metric = metric
    }

    func onEpochBegin(_ epoch: Int, logs: [String: Float]) { start = now() }
    func onEpochEnd(_ epoch: Int, logs: [String: Float]) {
        print(String(format: "%@epoch %d: %.2f s, loss %.4f, %@ %.4f", label as NSString, epoch + 1, now() - start,
                     logs["loss"] ?? .nan, metric as NSString, logs[metric] ?? .nan))
    }
}

func trainOnImageFolder(_ folder: String, mode: String, epochs: Int) throws {
    Kestrel.setRandomSeed(1)
    let model = Sequential {
        Input(shape: [180, 180, 3])
        Rescaling(1.0 / 255)
        Conv2D(16, kernelSize: 3, strides: 2, activation: .relu)
        MaxPooling2D()
        Conv2D(32, kernelSize: 3, activation: .relu)
        MaxPooling2D()
        Conv2D(64, kernelSize: 3, activation: .relu)
        GlobalAveragePooling2D()
        Dense(5)
    }
    model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
    let start = now()
    switch mode {
    case "streamed":
        let batches = try ImageFolderBatches(folder, batchSize: 32, imageSize: (180, 180), seed: 1, verbose: false)
        try model.fit(batches, epochs: epochs, verbose: 0, callbacks: [EpochTimer(metric: "accuracy")], seed: 1)
    case "in-memory":
        let loadStart = now()
        let data = try LabeledImages.fromDirectory(folder, imageSize: (180, 180), seed: 1, verbose: false)
        print(String(format: "read %d images: %.2f s", data.count, now() - loadStart))
        try model.fit(data.images, data.labels, batchSize: 32, epochs: epochs, verbose: 0,
                      callbacks: [EpochTimer(metric: "accuracy")], seed: 1)
    default:
        throw ValidationError("--image-training: expected streamed or in-memory, found \(mode)")
    }
    print(String(format: "%@: %d epochs in %.2f s; peak resident memory %.0f MB", mode as NSString, epochs, now() - start,
                 peakResidentMegabytes()))
}


/// The structured-data tutorial's model of Docs/StructuredData.md on a CSV file that
/// `scripts/compare/keras-structured-data.py --write-csv FILE` makes; the same script trains
/// the same model in Keras. Prints the read-and-adapt time, each epoch's time and validation
/// accuracy, and the peak memory.
func trainOnStructuredData(_ path: String, epochs: Int) throws {
    Kestrel.setRandomSeed(1)
    let start = now()
    let table = try CSVTable(contentsOf: URL(fileURLWithPath: path))
    let (train, validation) = try table.split(validationFraction: 0.2, seed: 1337)
    let numeric = ["trestbps", "chol", "thalach", "oldpeak", "slope"]
    let normalizer = Normalization()
    try normalizer.adapt(try train.features(numeric))
    let ageBuckets = try Discretization(numBins: 4, outputMode: .oneHot)
    try ageBuckets.adapt(try train.column("age"))
    let thal = try StringLookup(outputMode: .oneHot)
    try thal.adapt(try train.strings("thal"))
    func columns(_ t: CSVTable) throws -> [String: Tensor] {
        ["age": try t.column("age"), "sex": try t.column("sex"), "cp": try t.column("cp"), "ca": try t.column("ca"),
         "numbers": try t.features(numeric), "thal": try thal(try t.strings("thal").map { [$0] })]
    }
    let (xTrain, xValidation) = (try columns(train), try columns(validation))
    let (yTrain, yValidation) = (try train.column("target"), try validation.column("target"))
    print(String(format: "kestrel: read and adapted %d rows in %.2f s", table.rowCount, now() - start))

    let age = Input(shape: [1], name: "age"), sex = Input(shape: [1], name: "sex")
    let cp = Input(shape: [1], name: "cp"), ca = Input(shape: [1], name: "ca")
    let numbers = Input(shape: [numeric.count], name: "numbers")
    let thalOneHot = Input(shape: [thal.vocabularySize], name: "thal")
    let features = try Concatenate()([
        try normalizer(numbers), try ageBuckets(age),
        try CategoryEncoding(numTokens: 2, outputMode: .oneHot)(sex),
        try CategoryEncoding(numTokens: 5, outputMode: .oneHot)(cp),
        try Hashing(numBins: 8, outputMode: .oneHot)(ca),
        try HashedCrossing(numBins: 16, outputMode: .oneHot)([sex, cp]), thalOneHot,
    ])
    var x = try Dense(32, activation: .relu)(features)
    x = try Dropout(0.5)(x)
    let model = try Model(inputs: ["age": age, "sex": sex, "cp": cp, "ca": ca, "numbers": numbers, "thal": thalOneHot],
                          outputs: ["target": try Dense(1, activation: .sigmoid)(x)])
    model.compile(optimizer: Adam(), loss: BinaryCrossentropy(), metrics: [.binaryAccuracy()])
    try model.fit(xTrain, ["target": yTrain], batchSize: 32, epochs: epochs, verbose: 0,
                  callbacks: [EpochTimer(label: "kestrel: ", metric: "val_binary_accuracy")],
                  validationData: (xValidation, ["target": yValidation]), seed: 1)
    print(String(format: "kestrel: peak resident memory %.0f MB", peakResidentMegabytes()))
}
