import Foundation
import Kestrel
import XCTest

/// Runs the Python side of the interop tests (`scripts/interop/kestrel_interop.py`) in a
/// virtual environment that `scripts/interop/ensure-venv.sh` creates on first use.
enum Python {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let script = repository.appendingPathComponent("scripts/interop/kestrel_interop.py").path

    /// The venv's python, or a skip when PyPI cannot be reached (printed, never silent).
    static func interpreter() throws -> String {
        if let cached = cache.withLock({ $0 }) { return cached }
        let (status, output) = run("/bin/bash", [repository.appendingPathComponent("scripts/interop/ensure-venv.sh").path])
        if status == 3 {
            print("SKIPPED interop test: PyPI cannot be reached, so Keras/onnxruntime cannot be installed")
            throw XCTSkip("PyPI cannot be reached")
        }
        guard status == 0, let python = output.split(separator: "\n").last.map(String.init) else {
            XCTFail("creating the interop venv failed (status \(status)):\n\(output)")
            throw KestrelError.notReady("no interop venv")
        }
        cache.withLock { $0 = python }
        return python
    }

    private static let cache = NSLockedValue<String?>(nil)

    /// Runs a command of the helper script; fails the test with its output when it fails.
    @discardableResult
    static func helper(_ arguments: [String]) throws -> String {
        let python = try interpreter()
        let (status, output) = run(python, [script] + arguments)
        guard status == 0 else {
            XCTFail("kestrel_interop.py \(arguments.first ?? "") failed (status \(status)):\n\(output)")
            throw KestrelError.invalidArgument("python helper failed")
        }
        return output
    }

    static func run(_ executable: String, _ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A value behind a lock (test helpers run on XCTest's thread, but Swift 6 wants proof).
final class NSLockedValue<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Tensors as the JSON files the Python helper reads and writes.
enum TensorJSON {
    static func write(_ t: Tensor, to path: String) throws {
        let object: [String: Any] = ["shape": t.shape, "data": t.scalars.map(Double.init)]
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    static func read(_ path: String) throws -> Tensor {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let shape = (object["shape"] as! [Any]).map { ($0 as! NSNumber).intValue }
        let data = (object["data"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
        return Tensor(shape: shape, scalars: data)
    }
}

/// The largest absolute difference between two tensors of the same shape.
func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
    XCTAssertEqual(a.shape, b.shape)
    return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// A scratch directory for one test, removed afterwards.
final class ScratchDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("kestrel-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
