// The TensorFlow/Keras "basic classification" tutorial, step by step, in Swift:
// load Fashion-MNIST, scale to [0, 1], build Flatten → Dense(128, relu) → Dense(10),
// compile with Adam and sparse cross-entropy from logits, fit, evaluate, predict.
import ArgumentParser
import Foundation
import Kestrel
import KestrelDatasets
import KestrelKeras
import KestrelONNX
import KestrelTensorBoard

@main
struct FashionMNISTTutorial: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fashion-mnist",
        abstract: "Train the Keras basic-classification model on Fashion-MNIST.")

    @Option(help: "Training epochs.")
    var epochs = 5

    @Option(help: "Samples per gradient step.")
    var batchSize = 32

    @Option(help: "Random seed for weights, shuffling and dropout.")
    var seed: UInt64 = 42

    @Option(help: "Directory with the four Fashion-MNIST IDX files (default: $KESTREL_FASHION_MNIST, Debian's dataset-fashion-mnist, then the repository's subset).")
    var data: String?

    @Option(help: "Progress output: 0 silent, 1 progress bar, 2 one line per epoch.")
    var verbose = 1

    @Option(help: "Write TensorBoard logs (train/ and validation/ runs) to this directory.")
    var tensorboard: String?

    @Option(help: "Write the figures (training curves, test-image grid, confusion matrix) as SVG to this directory.")
    var plots: String?

    @Option(help: "Save the trained model (with its optimizer state) as a Keras 3 .keras archive.")
    var save: String?

    @Option(help: "Export the trained model to this ONNX file (for onnxruntime).")
    var exportOnnx: String?

    mutating func run() throws {
        print("Kestrel backend: \(Kestrel.backendDescription)")
        Kestrel.setRandomSeed(seed)

        // 1. Load the data and scale pixels to [0, 1].
        let location = try FashionMNIST.locate(path: data)
        print(location)
        var (train, test) = try FashionMNIST.load(from: location)
        // In place (Keras: `train_images / 255.0`): the scaled copy replaces the original, so
        // the run holds one copy of the images.
        train.images /= 255
        test.images /= 255
        let trainImages = train.images, testImages = test.images

        // 2. Build the model.
        let model = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }

        // 3. Compile it.
        model.compile(optimizer: Adam(),
                      loss: SparseCategoricalCrossentropy(fromLogits: true),
                      metrics: [.accuracy])
        try model.summary()

        // 4. Train.
        let start = Date()
        var callbacks: [Callback] = []
        if let tensorboard { callbacks.append(try TensorBoard(logDir: tensorboard, histogramFrequency: 1)) }
        // With figures or TensorBoard, hold out the test set as validation data so the curves
        // show both; the Keras tutorial's plain `fit` trains without it.
        let validation = tensorboard != nil || plots != nil ? (testImages, test.labels) : nil
        let history = try model.fit(trainImages, train.labels, batchSize: batchSize, epochs: epochs, verbose: verbose,
                                    callbacks: callbacks, validationData: validation)
        let trainingTime = Date().timeIntervalSince(start)

        // 5. Evaluate accuracy on the test set.
        let result = try model.evaluate(testImages, test.labels, verbose: verbose)
        print(String(format: "\nTest accuracy: %.4f  (test loss %.4f)", result["accuracy"] ?? .nan, result["loss"] ?? .nan))
        print(String(format: "fit: %d epochs in %.2f s (%.2f s per epoch)", epochs, trainingTime,
                     trainingTime / Double(max(epochs, 1))))
        if let accuracy = history["accuracy"]?.last {
            print(String(format: "final training accuracy: %.4f", accuracy))
        }

        // Keras: `model.save("model.keras")`; and an ONNX file for serving without Kestrel.
        if let save {
            try model.save(to: save)
            print("saved \(save)")
        }
        if let exportOnnx {
            try model.exportONNX(to: exportOnnx)
            print("exported \(exportOnnx)")
        }

        // 6. Predict: attach a softmax to turn logits into probabilities.
        let probabilityModel = Sequential {
            model
            Softmax()
        }
        let predictions = try probabilityModel.predict(testImages)
        let predicted = predictions.argmax()
        print("\nFirst predictions on the test set:")
        for i in 0..<min(8, test.count) {
            let truth = Int(test.labels.scalars[i])
            let p = predicted[i]
            let confidence = predictions.scalars[i * 10 + p] * 100
            print(String(format: "  image %d: predicted %@ (%.0f%%), true %@%@", i,
                         FashionMNIST.classNames[p], confidence, FashionMNIST.classNames[truth],
                         p == truth ? "" : "  ✗"))
        }

        // 7. Figures: training curves, a grid of test images with predicted and true class
        //    (wrong ones in red), and the confusion matrix.
        if let plots {
            try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
            let curves = (plots as NSString).appendingPathComponent("fashion-mnist-training-curves.svg")
            try history.plot(to: curves, title: "Fashion-MNIST: Flatten → Dense(128, relu) → Dense(10)")
            let shown = min(25, test.count)
            let labels = (0..<shown).map { Int(test.labels.scalars[$0]) }
            let grid = try ImageGrid(images: test.images[batch: 0..<shown], trueLabels: labels,
                                     predictedLabels: Array(predicted[0..<shown]),
                                     confidences: (0..<shown).map { predictions.scalars[$0 * 10 + predicted[$0]] },
                                     classNames: FashionMNIST.classNames)
            let gridPath = (plots as NSString).appendingPathComponent("fashion-mnist-predictions.svg")
            try grid.plot(to: gridPath, title: "Test images: predicted (true)")
            let matrix = try ConfusionMatrix(trueLabels: test.labels, predictedLabels: predicted,
                                             classNames: FashionMNIST.classNames)
            let matrixPath = (plots as NSString).appendingPathComponent("fashion-mnist-confusion-matrix.svg")
            try matrix.plot(to: matrixPath, title: String(format: "Confusion matrix (test accuracy %.4f)", matrix.accuracy))
            print("\nFigures: \(curves), \(gridPath), \(matrixPath)")
        }
        if let tensorboard { print("TensorBoard logs: \(tensorboard) (view with: tensorboard --logdir \(tensorboard))") }
    }
}
