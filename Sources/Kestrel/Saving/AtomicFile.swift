import Foundation

/// Writing through a temporary file in the destination's directory, renamed over the
/// destination only once complete, so readers never see a partial file.
package enum AtomicFile {
    /// Runs `body` with the temporary path to write, then renames it over `path`; on failure
    /// the temporary file is removed and `path` is untouched.
    package static func write(to path: String, _ body: (String) throws -> Void) throws {
        let destination = URL(fileURLWithPath: path)
        let directory = destination.deletingLastPathComponent()
        guard FileManager.default.fileExists(atPath: directory.path) else {
            throw KestrelError.fileError("\(path): the directory \(directory.path) does not exist")
        }
        let temporary = directory.appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).tmp").path
        do {
            try body(temporary)
            guard rename(temporary, path) == 0 else {
                throw KestrelError.fileError("\(path): cannot move the finished file into place (errno \(errno))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }
}

/// Writes `data` to `path` through a temporary file renamed into place, so a failure never
/// leaves a half-written file.
package func writeAtomically(_ data: Data, to path: String) throws {
    try AtomicFile.write(to: path) { temporary in
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw KestrelError.fileError("\(path): cannot write the temporary file \(temporary)")
        }
    }
}
