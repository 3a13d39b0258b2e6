import Foundation
import Kestrel
import KestrelDatasets
@testable import KestrelTensorBoard
import XCTest

/// The TensorBoard callback on the tutorial's model and data: event files decoded here with the
/// generated protobuf code, and read back by a real `tensorboard` from PyPI.
final class TensorBoardTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Trains the tutorial's model on part of Fashion-MNIST with a TensorBoard callback.
    private func trainTutorial(logDir: String) throws -> History {
        Kestrel.setRandomSeed(42)
        let (train, test) = try FashionMNIST.load(from: try FashionMNIST.locate(path: nil))
        let n = min(2000, train.count), m = min(500, test.count)
        let model = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let callback = try TensorBoard(logDir: logDir, histogramFrequency: 1, updateFrequency: .batches(20))
        return try model.fit(train.images[batch: 0..<n] / 255, train.labels[batch: 0..<n], epochs: 2, verbose: 0,
                             callbacks: [callback],
                             validationData: (test.images[batch: 0..<m] / 255, test.labels[batch: 0..<m]))
    }

    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "kestrel-tensorboard-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Every record of an event file, its framing and checksums verified.
    private func events(in directory: String) throws -> [Tensorboard_Event] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("tfevents") }
        XCTAssertEqual(files.count, 1, "one event file in \(directory)")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + files[0])))
        var events: [Tensorboard_Event] = []
        var offset = 0
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) } }
        while offset < bytes.count {
            let length = (0..<8).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
            XCTAssertEqual(u32(offset + 8), CRC32C.masked(bytes[offset..<(offset + 8)]))
            let payload = bytes[(offset + 12)..<(offset + 12 + length)]
            XCTAssertEqual(u32(offset + 12 + length), CRC32C.masked(payload))
            events.append(try Tensorboard_Event(serializedBytes: Array(payload)))
            offset += 16 + length
        }
        XCTAssertEqual(offset, bytes.count)
        return events
    }

    func testEventFilesHoldTheHistoryAsKerasLaysItOut() throws {
        let logDir = try temporaryDirectory()
        let history = try trainTutorial(logDir: logDir)
        let train = try events(in: logDir + "/train")
        XCTAssertEqual(train.first?.fileVersion, "brain.Event:2")
        var scalars: [String: [Int64: Float]] = [:]
        var histograms: Set<String> = []
        for event in train.dropFirst() {
            for value in event.summary.value {
                if case .histo(let histogram) = value.value {
                    histograms.insert(value.tag)
                    XCTAssertEqual(histogram.bucket.reduce(0, +), histogram.num)
                } else {
                    scalars[value.tag, default: [:]][event.step] = value.simpleValue
                }
            }
        }
        XCTAssertEqual(scalars["epoch_loss"], [0: history["loss"]![0], 1: history["loss"]![1]])
        XCTAssertEqual(scalars["epoch_accuracy"], [0: history["accuracy"]![0], 1: history["accuracy"]![1]])
        XCTAssertEqual(scalars["epoch_learning_rate"]?[1], 0.001)
        XCTAssertEqual(scalars["batch_loss"]?.keys.sorted(), [20, 40, 60, 80, 100, 120])
        // Layer names are automatic (dense, dense_1, … or later numbers in a shared process).
        XCTAssertEqual(histograms.count, 4, "kernel and bias of both Dense layers: \(histograms)")
        XCTAssertEqual(histograms.filter { $0.hasSuffix("/kernel/histogram") }.count, 2)

        let validation = try events(in: logDir + "/validation")
        var validationLoss: [Int64: Float] = [:]
        for event in validation.dropFirst() {
            for value in event.summary.value where value.tag == "epoch_loss" { validationLoss[event.step] = value.simpleValue }
        }
        XCTAssertEqual(validationLoss, [0: history["val_loss"]![0], 1: history["val_loss"]![1]])
    }

    /// A virtual environment with `tensorboard`, kept in the user's cache directory so later runs
    /// reuse it; nil when PyPI cannot be reached (with the reason).
    private func tensorboardPython() throws -> (python: String?, reason: String) {
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"]
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        let venv = (cache as NSString).appendingPathComponent("kestrel/tensorboard-venv")
        let python = venv + "/bin/python"
        if FileManager.default.isExecutableFile(atPath: python),
           try shell(python, ["-c", "import tensorboard.backend.event_processing.event_accumulator"]).status == 0 {
            return (python, "")
        }
        try FileManager.default.createDirectory(atPath: (venv as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        if !FileManager.default.isExecutableFile(atPath: python) {
            let create = try shell("/usr/bin/env", ["python3", "-m", "venv", venv])
            XCTAssertEqual(create.status, 0, "python3 -m venv failed: \(create.output)")
        }
        // The index pip is configured for (a mirror included), not a fixed host.
        let probe = try shell(python, ["-m", "pip", "index", "versions", "tensorboard", "--disable-pip-version-check",
                                       "--timeout", "10", "--retries", "0"])
        if probe.status != 0 {
            return (nil, "the Python package index is not reachable, so tensorboard cannot be installed: \(probe.output.suffix(300))")
        }
        let install = try shell(python, ["-m", "pip", "install", "--quiet", "tensorboard"])
        XCTAssertEqual(install.status, 0, "pip install tensorboard failed although PyPI is reachable: \(install.output)")
        return (install.status == 0 ? python : nil, "pip install failed")
    }

    private func shell(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testRealTensorBoardReadsTheTutorialsLogs() throws {
        let (python, reason) = try tensorboardPython()
        guard let python else {
            print("SKIPPED testRealTensorBoardReadsTheTutorialsLogs: \(reason)")
            throw XCTSkip(reason)
        }
        let logDir = try temporaryDirectory()
        let history = try trainTutorial(logDir: logDir)
        let script = Self.repository.appendingPathComponent("scripts/interop/tensorboard/read_event_files.py").path
        let result = try shell(python, [script, logDir])
        XCTAssertEqual(result.status, 0, result.output)
        guard let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
              let scalars = json["scalars"] as? [String: [String: [[Double]]]],
              let histograms = json["histograms"] as? [String: [String: [Int]]] else {
            return XCTFail("unexpected reader output: \(result.output.prefix(500))")
        }
        func values(_ run: String, _ tag: String) -> [Float] {
            (scalars[run]?[tag] ?? []).sorted { $0[0] < $1[0] }.map { Float($0[1]) }
        }
        func steps(_ run: String, _ tag: String) -> [Int] { (scalars[run]?[tag] ?? []).map { Int($0[0]) }.sorted() }
        XCTAssertEqual(values("train", "epoch_loss"), history["loss"])
        XCTAssertEqual(values("train", "epoch_accuracy"), history["accuracy"])
        XCTAssertEqual(values("validation", "epoch_loss"), history["val_loss"])
        XCTAssertEqual(values("validation", "epoch_accuracy"), history["val_accuracy"])
        XCTAssertEqual(steps("train", "epoch_loss"), [0, 1])
        XCTAssertEqual(values("train", "epoch_learning_rate"), [0.001, 0.001])
        XCTAssertEqual(steps("train", "batch_loss"), [20, 40, 60, 80, 100, 120])
        let kernels = (histograms["train"] ?? [:]).filter { $0.key.hasSuffix("/kernel/histogram") }
        XCTAssertEqual(kernels.count, 2)
        XCTAssertTrue(kernels.values.allSatisfy { $0 == [0, 1] }, "\(kernels)")
        XCTAssertNil(scalars["validation"]?["epoch_learning_rate"])
    }
}
