// The two classic convolutional networks on Fashion-MNIST (or MNIST digits):
//
//   --model pytorch   PyTorch's introductory MNIST network (pytorch/examples, mnist), ported
//                     layer by layer: Conv2D(10, 5) → MaxPool → ReLU → Conv2D(20, 5) →
//                     SpatialDropout2D → MaxPool → ReLU → Flatten → Dense(50, relu) → Dropout →
//                     Dense(10), cross-entropy from logits (log-softmax + NLL in one), SGD with
//                     momentum 0.5 at lr 0.01, batches of 64, inputs normalised by mean and std.
//   --model convnet   Keras's "Simple MNIST convnet" example: Conv2D(32, 3, relu) → MaxPooling2D →
//                     Conv2D(64, 3, relu) → MaxPooling2D → Flatten → Dropout(0.5) →
//                     Dense(10, softmax), Adam, batches of 128, 10% held out for validation.
//   --augment         Either network behind Keras's tutorial augmentation (random flips,
//                     rotations and zooms of the training images).
//
// Docs/MigratingFromPyTorch.md walks through the PyTorch original beside this port.
import ArgumentParser
import Foundation
import Kestrel
import KestrelDatasets

/// Records the wall time and the process's CPU time of every epoch. On a machine shared
/// with other work the wall time includes waiting for a core; the CPU time does not.
final class EpochTimer: Callback {
    var started = 0.0, startedCPU = 0.0
    var seconds: [Double] = []
    var cpuSeconds: [Double] = []

    static func processCPUTime() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    func onEpochBegin(_ epoch: Int, logs: [String: Float]) {
        started = Date().timeIntervalSince1970
        startedCPU = EpochTimer.processCPUTime()
    }

    func onEpochEnd(_ epoch: Int, logs: [String: Float]) {
        seconds.append(Date().timeIntervalSince1970 - started)
        cpuSeconds.append(EpochTimer.processCPUTime() - startedCPU)
    }
}

@main
struct MNISTCNN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist-cnn",
        abstract: "Train PyTorch's introductory MNIST CNN or Keras's mnist_convnet on Fashion-MNIST or MNIST.")

    enum Architecture: String, ExpressibleByArgument, CaseIterable {
        case pytorch, convnet
    }

    @Option(help: "Which network: pytorch (the PyTorch example's Net) or convnet (Keras's mnist_convnet).")
    var model: Architecture = .pytorch

    @Option(help: "Dataset: fashion (Fashion-MNIST) or digits (MNIST).")
    var dataset = "fashion"

    @Option(help: "Directory with the four IDX files (default: the dataset's environment variable, then the Debian package, then the repository's subset for Fashion-MNIST).")
    var data: String?

    @Option(help: "Training epochs (default: 10 for pytorch, 15 for convnet, as the originals).")
    var epochs: Int?

    @Option(help: "Samples per gradient step (default: 64 for pytorch, 128 for convnet).")
    var batchSize: Int?

    @Option(help: "Fraction of the training set held out for validation (default: 0 for pytorch, 0.1 for convnet).")
    var validationSplit: Float?

    @Option(help: "Random seed for weights, shuffling and dropout.")
    var seed: UInt64 = 1

    @Option(help: "Train on only the first N training samples (quick experiments).")
    var trainSamples: Int?

    @Option(help: "Most threads Kestrel uses for large products and convolution tiles (default: all cores).")
    var threads: Int?

    @Option(help: "Progress output: 0 silent, 1 progress bar, 2 one line per epoch.")
    var verbose = 2

    @Option(help: "Rate of the network's dropout layers.")
    var dropout: Float = 0.5

    @Flag(help: "Augment the training images first, as Keras's image-classification tutorial does: RandomFlip(horizontal), RandomRotation(0.1), RandomZoom(0.1) (training only; evaluation sees the images as they are).")
    var augment = false

    @Flag(help: "Keep the training samples in file order (no shuffling between epochs).")
    var noShuffle = false

    @Option(help: "Start from these weights instead of fresh ones: a safetensors file with Keras's weight paths (layers/conv2d/vars/0, …), as keras-convnet-accuracy.py --save-initial-weights writes them. With --dropout 0 --no-shuffle, training then follows Keras's own step by step.")
    var initialWeights: String?

    @Option(help: "With --model pytorch: a directory to write the trained weights to as a PyTorch state_dict (net.safetensors), with 64 test images (inputs.json) and their logits (logits.json), for scripts/interop/torch_state_dict_check.py.")
    var exportPytorch: String?

    mutating func run() throws {
        print("Kestrel backend: \(Kestrel.backendDescription)")
        Kestrel.setRandomSeed(seed)
        if let threads { Kestrel.setBLASThreads(threads) }

        // Data: [N, 28, 28] pixels 0…255 become [N, 28, 28, 1] channels-last images.
        let digits = dataset == "digits"
        guard digits || dataset == "fashion" else {
            throw ValidationError("--dataset must be fashion or digits, found \(dataset)")
        }
        guard exportPytorch == nil || model == .pytorch else {
            throw ValidationError("--export-pytorch needs --model pytorch (the network PyTorch's Net defines)")
        }
        let (train, test) = digits ? try MNIST.load(path: data) : try FashionMNIST.load(path: data)
        let used = min(trainSamples ?? train.count, train.count)
        var trainImages = try train.images[batch: 0..<used].reshaped([-1, 28, 28, 1])
        let trainLabels = train.labels[batch: 0..<used]
        var testImages = try test.images.reshaped([-1, 28, 28, 1])

        // Keras's tutorial augmentation, as one block (a Sequential used as a layer).
        let augmentation = Sequential(name: "augmentation") {
            Input(shape: [28, 28, 1])
            RandomFlip(mode: .horizontal)
            RandomRotation(0.1)
            RandomZoom(heightFactor: 0.1)
        }
        let network: Sequential
        let optimizer: Optimizer
        let loss: Loss
        switch model {
        case .pytorch:
            // transforms.ToTensor() then Normalize(mean, std): the training set's statistics
            // (PyTorch's example hard-codes MNIST's 0.1307 and 0.3081).
            let (mean, std): (Float, Float) = digits ? (0.1307, 0.3081) : (0.2860, 0.3530)
            trainImages = (trainImages / 255 - mean) / std
            testImages = (testImages / 255 - mean) / std
            // Weighted layers carry the PyTorch module names, so the state_dict export
            // (`naming: .pytorch()`) is named conv1.weight, …, fc2.bias as in `Net`.
            network = Sequential {
                Input(shape: [28, 28, 1])
                if augment { augmentation }
                Conv2D(10, kernelSize: 5, name: "conv1")
                MaxPooling2D(poolSize: 2)
                ReLU()
                Conv2D(20, kernelSize: 5, name: "conv2")
                SpatialDropout2D(dropout, name: "conv2_drop")
                MaxPooling2D(poolSize: 2)
                ReLU()
                Flatten()
                Dense(50, activation: .relu, name: "fc1")
                Dropout(dropout)
                Dense(10, name: "fc2")
            }
            optimizer = SGD(learningRate: 0.01, momentum: 0.5)
            loss = SparseCategoricalCrossentropy(fromLogits: true)
        case .convnet:
            trainImages = trainImages / 255
            testImages = testImages / 255
            network = Sequential {
                Input(shape: [28, 28, 1])
                if augment { augmentation }
                Conv2D(32, kernelSize: 3, activation: .relu)
                MaxPooling2D(poolSize: 2)
                Conv2D(64, kernelSize: 3, activation: .relu)
                MaxPooling2D(poolSize: 2)
                Flatten()
                Dropout(dropout)
                Dense(10, activation: .softmax)
            }
            optimizer = Adam()
            loss = SparseCategoricalCrossentropy()
        }
        network.compile(optimizer: optimizer, loss: loss, metrics: [.accuracy])
        if let initialWeights { try network.loadWeights(from: initialWeights, naming: .keras) }
        try network.summary()

        let epochs = epochs ?? (model == .pytorch ? 10 : 15)
        let batchSize = batchSize ?? (model == .pytorch ? 64 : 128)
        let validationSplit = validationSplit ?? (model == .pytorch ? 0 : 0.1)
        let timer = EpochTimer()
        try network.fit(trainImages, trainLabels, batchSize: batchSize, epochs: epochs, verbose: verbose,
                        callbacks: [timer], validationSplit: validationSplit, shuffle: !noShuffle)
        let result = try network.evaluate(testImages, test.labels, batchSize: 1000, verbose: 0)
        print(String(format: "Test accuracy: %.4f  (test loss %.4f)", result["accuracy"] ?? .nan, result["loss"] ?? .nan))
        let times = timer.seconds.map { String(format: "%.2f", $0) }.joined(separator: ", ")
        let mean = timer.seconds.reduce(0, +) / Double(max(timer.seconds.count, 1))
        print(String(format: "Epoch times (s): %@; mean %.2f s per epoch (training %d samples, batch %d)",
                     times, mean, Int(Float(used) * (1 - validationSplit)), batchSize))
        let cpu = timer.cpuSeconds.map { String(format: "%.2f", $0) }.joined(separator: ", ")
        print("Epoch CPU times, all threads (s): \(cpu)")

        if let directory = exportPytorch {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let weights = (directory as NSString).appendingPathComponent("net.safetensors")
            try network.saveWeights(to: weights, naming: .pytorch())
            let images = testImages[batch: 0..<min(64, testImages.shape[0])]
            for (name, tensor) in [("inputs.json", images), ("logits.json", try network.predict(images))] {
                let object: [String: Any] = ["shape": tensor.shape, "data": tensor.scalars.map(Double.init)]
                try JSONSerialization.data(withJSONObject: object)
                    .write(to: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
            }
            print("PyTorch state_dict: \(weights); check it with scripts/interop/torch_state_dict_check.py \(directory)")
        }
    }
}
