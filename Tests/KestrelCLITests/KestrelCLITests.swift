import Foundation
import Kestrel
import KestrelKeras
import XCTest

/// The `kestrel` executable on files made here: summary, predict, convert and their errors.
final class KestrelCLITests: XCTestCase {
    /// The built `kestrel` binary, beside the test bundle.
    var executable: URL {
        let products = Bundle.allBundles.first { $0.bundlePath.hasSuffix(".xctest") }?.bundleURL.deletingLastPathComponent()
            ?? Bundle.main.bundleURL
        return products.appendingPathComponent("kestrel")
    }

    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testSummaryPredictAndConvert() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kestrel-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Sequential { Input(shape: [2, 2]); Flatten(); Dense(3, activation: .relu); Dense(2) }
        let keras = dir.appendingPathComponent("m.keras").path
        try model.save(to: keras)

        let summary = try run(["summary", keras])
        XCTAssertEqual(summary.status, 0, summary.output)
        XCTAssertTrue(summary.output.contains("dense_"), summary.output)
        XCTAssertTrue(summary.output.contains("Total params: 23"), summary.output)

        let input = dir.appendingPathComponent("x.csv").path
        try "1,2,3,4\n0.5,0,-1,2\n".write(toFile: input, atomically: true, encoding: .utf8)
        let predicted = try run(["predict", keras, "--input", input])
        XCTAssertEqual(predicted.status, 0, predicted.output)
        let json = try JSONSerialization.jsonObject(with: Data(predicted.output.utf8)) as! [String: Any]
        let values = (json["data"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
        let expected = try model.predict(Tensor(shape: [2, 2, 2], scalars: [1, 2, 3, 4, 0.5, 0, -1, 2]))
        XCTAssertEqual(values.count, 4)
        for (a, b) in zip(values, expected.scalars) { XCTAssertEqual(a, b, accuracy: 1e-6) }

        for (format, file) in [("onnx", "m.onnx"), ("safetensors", "m.safetensors"), ("h5", "m.weights.h5")] {
            let converted = try run(["convert", keras, "--to", format])
            XCTAssertEqual(converted.status, 0, converted.output)
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path), format)
        }
        let h5 = try run(["summary", dir.appendingPathComponent("m.weights.h5").path])
        XCTAssertTrue(h5.output.contains("layers/dense_1/vars/0  [3, 2]"), h5.output)

        let weightsOnly = try run(["predict", dir.appendingPathComponent("m.safetensors").path, "--input", input])
        XCTAssertNotEqual(weightsOnly.status, 0)
        XCTAssertTrue(weightsOnly.output.contains("--architecture"), weightsOnly.output)
        let missing = try run(["summary", dir.appendingPathComponent("nothing.keras").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.output.contains("nothing.keras: no such file"), missing.output)
    }
}
