import Foundation
@testable import Kestrel
import XCTest

/// BackupAndRestore across a real crash: a child process training with it is killed with
/// SIGKILL in the middle of an epoch, started again, and must end with the weights of a run
/// that was never interrupted.
final class CallbackBackupAndRestoreTests: XCTestCase {
    /// The probe executable, built beside the test bundle (the test target depends on it).
    private func probe() throws -> URL {
        var candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
        for bundle in Bundle.allBundles where bundle.bundleURL.pathExtension == "xctest" {
            candidates.append(bundle.bundleURL.deletingLastPathComponent())
        }
        for directory in candidates {
            let url = directory.appendingPathComponent("kestrel-resume-probe")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        XCTFail("kestrel-resume-probe not found in \(candidates.map(\.path)); build it with `swift build --product kestrel-resume-probe`")
        throw KestrelError.fileError("kestrel-resume-probe missing")
    }

    /// Runs the probe; `killAfter` sends SIGKILL once that line has been printed. Returns the
    /// lines read and the termination status and reason.
    private func run(_ probe: URL, backup: String, out: String, killAfter: String? = nil)
        throws -> (lines: [String], status: Int32, killed: Bool) {
        let process = Process()
        process.executableURL = probe
        process.arguments = ["--backup", backup, "--out", out, "--epochs", "4"] + (killAfter != nil ? ["--delay-ms", "2"] : [])
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var lines: [String] = []
        var pending = Data()
        let handle = pipe.fileHandleForReading
        reading: while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                lines.append(line)
                if line == killAfter {
                    kill(process.processIdentifier, SIGKILL)
                    break reading
                }
            }
        }
        process.waitUntilExit()
        return (lines, process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }

    func testKilledFitResumesToTheSameWeights() throws {
        let probe = try probe()
        let dir = NSTemporaryDirectory() + "kestrel-resume-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let reference = try run(probe, backup: dir + "/backup-reference", out: dir + "/reference.safetensors")
        XCTAssertEqual(reference.status, 0)
        XCTAssertEqual(reference.lines.filter { $0.hasSuffix("begin") }, (0..<4).map { "epoch \($0) begin" })

        // 24 batches an epoch: kill in the middle of epoch 2 (the third).
        let first = try run(probe, backup: dir + "/backup", out: dir + "/resumed.safetensors", killAfter: "epoch 2 batch 11")
        XCTAssertTrue(first.killed, "the probe should have been killed, it exited with \(first.status)")
        XCTAssertEqual(first.lines.filter { $0.hasSuffix("begin") }.last, "epoch 2 begin",
                       "killed in epoch 2 after its 12th batch: \(first.lines.suffix(3))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/resumed.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/backup/checkpoint.safetensors"))

        let second = try run(probe, backup: dir + "/backup", out: dir + "/resumed.safetensors")
        XCTAssertEqual(second.status, 0)
        XCTAssertEqual(second.lines.first, "epoch 2 begin", "the second run resumes at the interrupted epoch")
        XCTAssertEqual(second.lines.last, "done")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/backup/checkpoint.safetensors"))

        let expected = try Safetensors.read(from: dir + "/reference.safetensors").tensors
        let resumed = try Safetensors.read(from: dir + "/resumed.safetensors").tensors
        XCTAssertEqual(expected.map(\.name), resumed.map(\.name))
        XCTAssertFalse(expected.isEmpty)
        for (a, b) in zip(expected, resumed) {
            XCTAssertEqual(a.tensor, b.tensor, "\(a.name) differs after resuming")
        }
    }
}
