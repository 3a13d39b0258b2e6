import Foundation
import Kestrel
import SwiftProtobuf

/// Writes a TensorBoard event file for one run (TensorFlow's `tf.summary.create_file_writer`):
/// scalars and histograms, each an `Event` protobuf in TFRecord framing.
///
/// The file is `<logDir>/events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2`, named as
/// TensorFlow names it, and starts with the `brain.Event:2` version record. TensorBoard reads
/// event files while they grow, so records are appended (and flushed by `flush()`), not written
/// through a temporary file.
public final class SummaryWriter {
    /// The run directory.
    public let logDir: String
    /// The event file being written.
    public let path: String
    private var file: UnsafeMutablePointer<FILE>?
    private nonisolated(unsafe) static var counter = 0
    private static let counterLock = NSLock()

    /// Creates `logDir` if needed and opens a new event file in it.
    public init(logDir: String) throws {
        self.logDir = logDir
        do {
            try FileManager.default.createDirectory(atPath: logDir, withIntermediateDirectories: true)
        } catch {
            throw KestrelError.fileError("TensorBoard: cannot create log directory \(logDir): \(error.localizedDescription)")
        }
        let n = SummaryWriter.counterLock.withLock {
            SummaryWriter.counter += 1
            return SummaryWriter.counter
        }
        let seconds = Int(Date().timeIntervalSince1970)
        let host = ProcessInfo.processInfo.hostName
        path = (logDir as NSString).appendingPathComponent(
            "events.out.tfevents.\(seconds).\(host).\(getpid()).\(n).v2")
        guard let handle = fopen(path, "wb") else {
            throw KestrelError.fileError("TensorBoard: cannot create \(path): \(String(cString: strerror(errno)))")
        }
        file = handle
        var event = Tensorboard_Event()
        event.wallTime = Date().timeIntervalSince1970
        event.fileVersion = "brain.Event:2"
        try write(event)
        try flush()
    }

    deinit { if let file { fclose(file) } }

    /// Appends a scalar (`Summary.Value.simple_value`, which every TensorBoard reader accepts).
    public func scalar(_ tag: String, _ value: Float, step: Int, wallTime: Double? = nil) throws {
        var summaryValue = Tensorboard_Summary.Value()
        summaryValue.tag = tag
        summaryValue.simpleValue = value
        try write(summary: [summaryValue], step: step, wallTime: wallTime)
    }

    /// Appends several scalars at one step as a single event.
    public func scalars(_ values: [(tag: String, value: Float)], step: Int, wallTime: Double? = nil) throws {
        guard !values.isEmpty else { return }
        try write(summary: values.map { item in
            var v = Tensorboard_Summary.Value()
            v.tag = item.tag
            v.simpleValue = item.value
            return v
        }, step: step, wallTime: wallTime)
    }

    /// Appends a histogram of `values` with `bucketCount` equal-width buckets between their
    /// minimum and maximum (non-finite values are left out of the buckets).
    public func histogram(_ tag: String, _ values: UnsafeBufferPointer<Float>, step: Int, bucketCount: Int = 30,
                          wallTime: Double? = nil) throws {
        var histogram = Tensorboard_HistogramProto()
        var low = Double.infinity, high = -Double.infinity, sum = 0.0, squares = 0.0, count = 0
        for v in values where v.isFinite {
            let x = Double(v)
            low = min(low, x); high = max(high, x); sum += x; squares += x * x; count += 1
        }
        if count == 0 { low = 0; high = 0 }
        let buckets = max(bucketCount, 1)
        // A constant tensor gets one bucket of width 1 around its value, as TensorFlow does.
        let width = high > low ? (high - low) / Double(buckets) : 1
        var counts = [Double](repeating: 0, count: high > low ? buckets : 1)
        for v in values where v.isFinite {
            let k = high > low ? min(Int((Double(v) - low) / width), buckets - 1) : 0
            counts[k] += 1
        }
        histogram.min = high > low ? low : low - 0.5
        histogram.max = high > low ? high : high + 0.5
        histogram.num = Double(count)
        histogram.sum = sum
        histogram.sumSquares = squares
        histogram.bucketLimit = counts.indices.map { histogram.min + Double($0 + 1) * width }
        histogram.bucket = counts
        var summaryValue = Tensorboard_Summary.Value()
        summaryValue.tag = tag
        summaryValue.histo = histogram
        try write(summary: [summaryValue], step: step, wallTime: wallTime)
    }

    /// Writes buffered records to the file.
    public func flush() throws {
        guard let file else { return }
        guard fflush(file) == 0 else {
            throw KestrelError.fileError("TensorBoard: cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Flushes and closes the file; later writes throw.
    public func close() throws {
        guard let file else { return }
        self.file = nil
        guard fclose(file) == 0 else {
            throw KestrelError.fileError("TensorBoard: cannot close \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func write(summary values: [Tensorboard_Summary.Value], step: Int, wallTime: Double?) throws {
        var event = Tensorboard_Event()
        event.wallTime = wallTime ?? Date().timeIntervalSince1970
        event.step = Int64(step)
        var summary = Tensorboard_Summary()
        summary.value = values
        event.summary = summary
        try write(event)
    }

    private func write(_ event: Tensorboard_Event) throws {
        guard let file else { throw KestrelError.notReady("TensorBoard: \(path) is closed") }
        let payload: [UInt8] = try event.serializedBytes()
        let record = tfRecord(payload)
        let written = record.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, file) }
        guard written == record.count else {
            throw KestrelError.fileError("TensorBoard: cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
