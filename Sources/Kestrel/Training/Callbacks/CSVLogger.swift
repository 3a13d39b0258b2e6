import Foundation

/// Streams each epoch's results to a CSV file (Keras `CSVLogger`): a header `epoch,<names…>`
/// (names sorted, as Keras), then one row per epoch. With `append`, rows go after an existing
/// file's and no second header is written.
///
/// The file grows row by row and is flushed after each, so a crash keeps every finished epoch;
/// it is a log, not a snapshot, which is why it is not written through a temporary file.
public final class CSVLogger: Callback {
    /// The file written.
    public let filename: String
    /// The column separator.
    public let separator: String
    /// Whether to add to an existing file instead of replacing it.
    public let append: Bool
    private var file: UnsafeMutablePointer<FILE>?
    private var keys: [String]?
    private var needsHeader = true
    private weak var model: Model?

    /// A CSV logger writing to `filename`.
    public init(filename: String, separator: String = ",", append: Bool = false) {
        self.filename = filename
        self.separator = separator
        self.append = append
    }

    deinit { if let file { fclose(file) } }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) throws {
        if let file { fclose(file) }
        keys = nil
        var hasRows = false
        if append, let size = (try? FileManager.default.attributesOfItem(atPath: filename))?[.size] as? Int {
            hasRows = size > 0
        }
        guard let handle = fopen(filename, append ? "a" : "w") else {
            throw KestrelError.fileError("CSVLogger: cannot open \(filename) for writing: \(String(cString: strerror(errno)))")
        }
        file = handle
        // An appended log keeps the header it already has (as Keras, columns are this run's).
        needsHeader = !hasRows
    }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        guard let file else { throw KestrelError.notReady("CSVLogger: onEpochEnd before onTrainBegin") }
        if keys == nil {
            keys = logs.keys.sorted()
            if needsHeader { try write((["epoch"] + keys!).joined(separator: separator) + "\n", to: file) }
        }
        let stopped = model?.stopTraining ?? false
        // Keras fills "NA" for names missing from the last epoch of a stopped run.
        let values = keys!.map { key -> String in
            if let v = logs[key] { return "\(v)" }
            return stopped ? "NA" : ""
        }
        try write(([String(epoch)] + values).joined(separator: separator) + "\n", to: file)
    }

    public func onTrainEnd(logs: [String: Float]) {
        if let file { fclose(file) }
        file = nil
    }

    private func write(_ text: String, to file: UnsafeMutablePointer<FILE>) throws {
        guard fputs(text, file) >= 0, fflush(file) == 0 else {
            throw KestrelError.fileError("CSVLogger: cannot write to \(filename): \(String(cString: strerror(errno)))")
        }
    }
}
