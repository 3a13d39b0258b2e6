// `kestrel`: inspect, evaluate, run and convert models saved on disk.
import ArgumentParser
import Foundation
import Kestrel
import KestrelDatasets
import KestrelKeras
import KestrelONNX

@main
struct KestrelTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kestrel",
        abstract: "Inspect, evaluate, run and convert Kestrel and Keras models on disk.",
        discussion: """
            Models come from Keras 3 `.keras` archives (written by Kestrel or by Keras). Weight-only \
            files (`.weights.h5`, `.safetensors`) need the architecture: pass it with --architecture.
            """,
        subcommands: [Summary.self, Evaluate.self, Predict.self, Convert.self])
}

/// Options naming a model file (and, for weight-only files, its architecture).
struct ModelOptions: ParsableArguments {
    @Argument(help: "A .keras archive, or a .weights.h5/.safetensors file (with --architecture).")
    var file: String

    @Option(help: "A .keras file whose architecture receives the weights of a .weights.h5 or .safetensors file.")
    var architecture: String?

    /// The model the options describe, with its weights loaded.
    func load() throws -> Model {
        if file.hasSuffix(".keras") { return try Model.load(from: file) }
        guard file.hasSuffix(".weights.h5") || file.hasSuffix(".safetensors") else {
            throw ValidationError("\(file): unknown format; expected .keras, .weights.h5 or .safetensors")
        }
        guard let architecture else {
            throw ValidationError("\(file) holds weights only: pass the model's architecture with --architecture MODEL.keras")
        }
        let model = try Model.load(from: architecture)
        if file.hasSuffix(".safetensors") { try model.loadWeights(from: file) } else { try model.loadKerasWeights(from: file) }
        return model
    }
}

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the Keras-style summary table of a model, or the arrays of a weights file.")

    @OptionGroup var model: ModelOptions

    func run() throws {
        if model.architecture != nil || model.file.hasSuffix(".keras") {
            print(try model.load().summaryText())
        } else if model.file.hasSuffix(".safetensors") {
            let (tensors, metadata) = try Safetensors.read(from: model.file)
            print("\(model.file): safetensors, \(tensors.count) tensors, metadata \(metadata)")
            for (name, t) in tensors { print("  \(name)  \(t.shape)") }
            print("Total params: \(tensors.reduce(0) { $0 + $1.tensor.count })")
        } else if model.file.hasSuffix(".weights.h5") {
            let arrays = try KerasWeightsFile.inventory(of: model.file)
            print("\(model.file): Keras weights, \(arrays.count) arrays")
            for (path, shape) in arrays { print("  \(path)  \(shape)") }
        } else {
            throw ValidationError("\(model.file): unknown format; expected .keras, .weights.h5 or .safetensors")
        }
    }
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Loss and metrics on a dataset's test set, scaled as the tutorial scales (pixels / 255).")

    @OptionGroup var model: ModelOptions

    @Option(help: "The dataset: fashion-mnist or mnist.")
    var dataset = "fashion-mnist"

    @Option(help: "Directory with the dataset's IDX files (default: the usual locations).")
    var data: String?

    @Option(help: "Evaluate only the first N test samples.")
    var limit: Int?

    @Option(help: "Samples per batch.")
    var batchSize = 32

    func run() throws {
        let m = try model.load()
        var test: LabeledImages
        switch dataset {
        case "fashion-mnist": test = try FashionMNIST.load(path: data).test
        case "mnist": test = try MNIST.load(path: data).test
        default: throw ValidationError("unknown dataset '\(dataset)'; expected fashion-mnist or mnist")
        }
        var images = test.images, labels = test.labels
        if let limit {
            guard limit > 0 else { throw ValidationError("--limit must be positive") }
            images = images[batch: 0..<min(limit, images.shape[0])]
            labels = labels[batch: 0..<min(limit, labels.shape[0])]
        }
        images /= 255
        guard let inputShape = m.inputShape else { throw ValidationError("\(model.file): the model has no single input") }
        // Shape the images to the model's input: (28, 28), (784) or (28, 28, 1).
        images = try images.reshaped([images.shape[0]] + inputShape)
        if m.optimizer == nil {
            // A model saved without its training configuration: Keras's usual one for these
            // datasets, with logits unless the model ends in a softmax.
            let logits = !(m.layers.last is Softmax) && !((m.layers.last as? Dense)?.activation == .softmax)
            m.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: logits), metrics: ["accuracy"])
        } else if m.compiledMetricNames.allSatisfy(\.isEmpty), let losses = m.compiledLosses, losses.count == 1 {
            m.compile(optimizer: m.optimizer!, loss: losses[0], metrics: ["accuracy"])
        }
        let result = try m.evaluate(images, labels, batchSize: batchSize, verbose: 0)
        print("\(model.file) on the \(dataset) test set (\(images.shape[0]) samples):")
        for key in result.keys.sorted() { print(String(format: "  %@: %.4f", key, result[key]!)) }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on inputs from a file and print (or write) its outputs.",
        discussion: """
            Inputs: a JSON file {"shape": [n, ...], "data": [...]} or a CSV file with one sample \
            per row (reshaped to the model's input shape). Outputs are written in the same JSON form.
            """)

    @OptionGroup var model: ModelOptions

    @Option(help: "The input file (.json or .csv).")
    var input: String

    @Option(help: "Write the outputs here (JSON) instead of printing them.")
    var output: String?

    func run() throws {
        let m = try model.load()
        guard let inputShape = m.inputShape else { throw ValidationError("\(model.file): the model has no single input") }
        let x = try TensorFile.read(input, sampleShape: inputShape)
        let y = try m.predict(x)
        let json = try TensorFile.json(y)
        if let output {
            try json.write(to: URL(fileURLWithPath: output))
        } else {
            print(String(decoding: json, as: UTF8.self))
        }
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a model to another format: keras (.keras), onnx (.onnx), safetensors, or h5 (.weights.h5).")

    @OptionGroup var model: ModelOptions

    @Option(help: "The target format: keras, onnx, safetensors or h5.")
    var to: String

    @Option(name: .shortAndLong, help: "The output file (default: the input's name with the new extension).")
    var output: String?

    @Flag(help: "With --to safetensors: PyTorch state_dict names and layouts instead of Keras's.")
    var pytorch = false

    func run() throws {
        let m = try model.load()
        let stem = model.file.replacingOccurrences(of: ".weights.h5", with: "")
            .replacingOccurrences(of: ".safetensors", with: "").replacingOccurrences(of: ".keras", with: "")
        let path: String
        switch to {
        case "keras":
            path = output ?? stem + ".keras"
            try m.save(to: path)
        case "onnx":
            path = output ?? stem + ".onnx"
            try m.exportONNX(to: path)
        case "safetensors":
            path = output ?? stem + ".safetensors"
            try m.saveWeights(to: path, naming: pytorch ? .pytorch() : .keras)
        case "h5":
            path = output ?? stem + ".weights.h5"
            try m.saveKerasWeights(to: path)
        default:
            throw ValidationError("unknown format '\(to)'; expected keras, onnx, safetensors or h5")
        }
        print("wrote \(path)")
    }
}

/// Tensors in the CLI's file formats.
enum TensorFile {
    static func read(_ path: String, sampleShape: [Int]) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KestrelError.fileError("\(path): cannot read the file")
        }
        let sample = sampleShape.reduce(1, *)
        if path.hasSuffix(".json") {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let shape = (object["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let values = (object["data"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.floatValue }) else {
                throw KestrelError.fileError("\(path): expected a JSON object {\"shape\": [...], \"data\": [...]}")
            }
            let t = try Tensor(validating: values, shape: shape)
            guard t.count % sample == 0 else {
                throw KestrelError.shapeMismatch("\(path): \(t.count) values do not form samples of shape \(sampleShape)")
            }
            return try t.reshaped([t.count / sample] + sampleShape)
        }
        var values: [Float] = []
        for (row, line) in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let numbers = fields.compactMap(Float.init)
            guard numbers.count == fields.count, numbers.count == sample else {
                throw KestrelError.fileError("\(path): row \(row + 1) should hold \(sample) numbers (a sample of shape \(sampleShape))")
            }
            values += numbers
        }
        return Tensor(shape: [values.count / max(sample, 1)] + sampleShape, scalars: values)
    }

    static func json(_ t: Tensor) throws -> Data {
        try JSONSerialization.data(withJSONObject: ["shape": t.shape, "data": t.scalars.map(Double.init)] as [String: Any])
    }
}
