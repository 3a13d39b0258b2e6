// Trains the Functional API examples of Docs/FunctionalAPI.md on Fashion-MNIST and, with
// --plots, draws them and the tutorial model with plotModel.
import ArgumentParser
import Foundation
import Kestrel
import KestrelDatasets

@main
struct FunctionalExamples: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "functional-examples",
        abstract: "Train the residual and the two-input/two-output models on Fashion-MNIST.")

    @Option(help: "Training epochs for each model.")
    var epochs = 3

    @Option(help: "Directory with the Fashion-MNIST IDX files (default: as FashionMNIST.locate()).")
    var data: String?

    @Option(help: "Write SVG pictures of the models into this directory.")
    var plots: String?

    @Option(help: "Random seed.")
    var seed: UInt64 = 42

    mutating func run() throws {
        Kestrel.setRandomSeed(seed)
        let location = try FashionMNIST.locate(path: data)
        print(location)
        let (train, test) = try FashionMNIST.load(from: location)
        let trainImages = train.images / 255, testImages = test.images / 255

        let residual = try residualModel()
        try residual.summary()
        residual.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        try residual.fit(trainImages, train.labels, epochs: epochs, verbose: 2)
        let r = try residual.evaluate(testImages, test.labels, verbose: 0)
        print(String(format: "residual_mlp: test accuracy %.4f\n", r["accuracy"]!))

        let twoHeaded = try twoHeadedModel()
        try twoHeaded.summary()
        twoHeaded.compile(
            optimizer: Adam(),
            losses: ["class_out": SparseCategoricalCrossentropy(fromLogits: true), "coverage_out": MeanSquaredError()],
            lossWeights: ["class_out": 1, "coverage_out": 10],
            metrics: ["class_out": [.accuracy], "coverage_out": ["mae"]])
        let (trainProfiles, trainCoverage) = try rowProfilesAndCoverage(trainImages)
        let (testProfiles, testCoverage) = try rowProfilesAndCoverage(testImages)
        try twoHeaded.fit(["image": trainImages, "row_profile": trainProfiles],
                          ["class_out": train.labels, "coverage_out": trainCoverage], epochs: epochs, verbose: 2)
        let t = try twoHeaded.evaluate(["image": testImages, "row_profile": testProfiles],
                                       ["class_out": test.labels, "coverage_out": testCoverage], verbose: 0)
        print(String(format: "two_headed: test class accuracy %.4f, coverage mean absolute error %.4f",
                     t["class_out_accuracy"]!, t["coverage_out_mean_absolute_error"]!))

        if let plots {
            try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
            let tutorial = Sequential(name: "tutorial") {
                Flatten(inputShape: [28, 28])
                Dense(128, activation: .relu)
                Dense(10)
            }
            try plotModel(tutorial, to: "\(plots)/tutorial-model.svg")
            try plotModel(residual, to: "\(plots)/residual-model.svg")
            try plotModel(twoHeaded, to: "\(plots)/two-headed-model.svg")
            print("pictures written to \(plots)")
        }
    }
}
