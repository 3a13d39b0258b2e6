import Foundation

/// Saves the model during training (Keras `ModelCheckpoint`).
///
/// `filepath` may hold placeholders filled from the epoch (1-based, as Keras) and the logs, in
/// Python's format syntax: `"ckpt/epoch{epoch:02d}-{val_loss:.2f}.safetensors"`. Without a
/// `save` closure the core library writes safetensors: weights only (`saveWeightsOnly`) or a
/// full checkpoint with the optimizer state (`Model.saveCheckpoint`, loadable with
/// `loadCheckpoint`). For Keras's `.keras`/`.weights.h5`, pass a saver from KestrelKeras as
/// `save`. Files are written to a temporary name and renamed into place.
public final class ModelCheckpoint: Callback {
    /// When checkpoints are taken.
    public enum SaveFrequency: Equatable, Sendable {
        /// At the end of every epoch.
        case epoch
        /// After every `n` training batches (counted across epochs).
        case batches(Int)
    }

    /// The path template.
    public let filepath: String
    /// The logged quantity that decides what is best.
    public let monitor: String
    /// Whether to save only when `monitor` improves on the best so far.
    public let saveBestOnly: Bool
    /// Whether to save the weights alone rather than a checkpoint with the optimizer state.
    public let saveWeightsOnly: Bool
    /// Whether the quantity should fall or rise.
    public let mode: MonitorMode
    /// When to save.
    public let saveFrequency: SaveFrequency
    /// 1 prints a line for each save (and each non-improvement with `saveBestOnly`).
    public let verbose: Int
    /// The best monitored value so far (starts at `initialValueThreshold` when given).
    public private(set) var best: Float
    /// The paths written, in order.
    public private(set) var savedPaths: [String] = []

    private let template: PathTemplate
    private let increases: Bool
    private let save: ((Model, String) throws -> Void)?
    private var batchesSinceSave = 0
    private var currentEpoch = 0
    private weak var model: Model?

    /// A checkpoint callback with Keras's defaults. Throws for a malformed `filepath` template,
    /// a `.keras`/`.h5` path without a `save` closure, another extension when saving
    /// safetensors, a non-positive batch frequency or an undecidable `monitor`.
    ///
    /// - Parameter save: writes the model to the formatted path (e.g. KestrelKeras's
    ///   `{ model, path in try model.save(to: path) }`); it should write atomically itself.
    public init(filepath: String, monitor: String = "val_loss", verbose: Int = 0, saveBestOnly: Bool = false,
                saveWeightsOnly: Bool = false, mode: MonitorMode = .auto, saveFrequency: SaveFrequency = .epoch,
                initialValueThreshold: Float? = nil, save: ((Model, String) throws -> Void)? = nil) throws {
        template = try PathTemplate(filepath, callback: "ModelCheckpoint")
        if save == nil {
            if filepath.hasSuffix(".keras") || filepath.hasSuffix(".h5") {
                throw KestrelError.invalidArgument(
                    "ModelCheckpoint: '\(filepath)' asks for Keras's format, which module KestrelKeras writes; pass save: { model, path in try model.save(to: path) } (or saveKerasWeights) from KestrelKeras, or use a .safetensors path")
            }
            guard filepath.hasSuffix(".safetensors") else {
                throw KestrelError.invalidArgument(
                    "ModelCheckpoint: filepath must end in .safetensors (found '\(filepath)'), or pass a save closure for other formats")
            }
        }
        if case .batches(let n) = saveFrequency, n <= 0 {
            throw KestrelError.invalidArgument("ModelCheckpoint: saveFrequency .batches(n) needs n > 0, found \(n)")
        }
        self.filepath = filepath
        self.monitor = monitor
        self.verbose = verbose
        self.saveBestOnly = saveBestOnly
        self.saveWeightsOnly = saveWeightsOnly
        self.mode = mode
        self.saveFrequency = saveFrequency
        self.save = save
        // Only a best-only checkpoint needs a direction; don't reject an odd monitor otherwise.
        increases = saveBestOnly ? try monitorIncreases(monitor, mode: mode, callback: "ModelCheckpoint") : false
        best = initialValueThreshold ?? (increases ? -.infinity : .infinity)
    }

    public func setModel(_ model: Model) { self.model = model }

    public func onEpochBegin(_ epoch: Int, logs: [String: Float]) { currentEpoch = epoch }

    public func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) throws {
        guard case .batches(let n) = saveFrequency else { return }
        batchesSinceSave += 1
        if batchesSinceSave >= n {
            batchesSinceSave = 0
            try saveModel(epoch: currentEpoch, batch: batch, logs: logs)
        }
    }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        if saveFrequency == .epoch { try saveModel(epoch: epoch, batch: nil, logs: logs) }
    }

    private func saveModel(epoch: Int, batch: Int?, logs: [String: Float]) throws {
        let model = try attachedModel(model, "ModelCheckpoint")
        var values: [String: PathTemplate.Value] = [:]
        for (k, v) in logs { values[k] = .float(v) }
        values["epoch"] = .integer(epoch + 1)
        if let batch { values["batch"] = .integer(batch + 1) }
        let path = try template.format(values)
        if saveBestOnly {
            guard let current = logs[monitor] else {
                if verbose > 0 { printCallbackMessage("ModelCheckpoint: can save best model only with \(monitor) available, skipping.") }
                return
            }
            guard increases ? current > best : current < best else {
                if verbose > 0 {
                    printCallbackMessage(String(format: "\nEpoch %d: %@ did not improve from %.5f", epoch + 1, monitor, best))
                }
                return
            }
            if verbose > 0 {
                printCallbackMessage(String(format: "\nEpoch %d: %@ improved from %.5f to %.5f, saving model to %@",
                                            epoch + 1, monitor, best, current, path))
            }
            best = current
        } else if verbose > 0 {
            printCallbackMessage("\nEpoch \(epoch + 1): saving model to \(path)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw KestrelError.fileError("ModelCheckpoint: cannot create directory \(directory): \(error.localizedDescription)")
            }
        }
        if let save {
            try save(model, path)
        } else if saveWeightsOnly {
            try model.saveWeights(to: path)
        } else {
            // Epochs finished so far, so `loadCheckpoint` can be passed to fit as initialEpoch.
            try model.saveCheckpoint(to: path, epoch: epoch + 1)
        }
        savedPaths.append(path)
    }
}

/// A file path with Python-format placeholders: `{name}` or `{name:spec}` where spec is
/// `[0][width][.precision](d|f|e|g)`; `{{` and `}}` stand for braces.
struct PathTemplate {
    enum Value { case integer(Int), float(Float) }
    private enum Part { case text(String), field(name: String, spec: String) }
    private let parts: [Part]
    private let source: String
    private let callback: String

    init(_ template: String, callback: String) throws {
        source = template
        self.callback = callback
        var parts: [Part] = []
        var text = ""
        var i = template.startIndex
        func fail(_ why: String) -> KestrelError {
            KestrelError.invalidArgument("\(callback): filepath '\(template)' \(why)")
        }
        while i < template.endIndex {
            let c = template[i]
            let next = template.index(after: i)
            if c == "{" && next < template.endIndex && template[next] == "{" {
                text.append("{"); i = template.index(after: next); continue
            }
            if c == "}" && next < template.endIndex && template[next] == "}" {
                text.append("}"); i = template.index(after: next); continue
            }
            if c == "}" { throw fail("has an unmatched '}'") }
            if c == "{" {
                guard let close = template[next...].firstIndex(of: "}") else { throw fail("has an unclosed '{'") }
                let field = String(template[next..<close])
                let pieces = field.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(pieces[0])
                let spec = pieces.count > 1 ? String(pieces[1]) : ""
                guard !name.isEmpty else { throw fail("has an empty placeholder '{}'; name a value, e.g. {epoch}") }
                guard spec.isEmpty || PathTemplate.isValidSpec(spec) else {
                    throw fail("has format '\(spec)' for '\(name)'; expected e.g. 02d, .4f, .3e")
                }
                if !text.isEmpty { parts.append(.text(text)); text = "" }
                parts.append(.field(name: name, spec: spec))
                i = template.index(after: close)
                continue
            }
            text.append(c)
            i = next
        }
        if !text.isEmpty { parts.append(.text(text)) }
        self.parts = parts
    }

    private static func isValidSpec(_ spec: String) -> Bool {
        guard let kind = spec.last, "dfeg".contains(kind) else { return false }
        let body = spec.dropLast()
        let pieces = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard pieces.allSatisfy({ $0.allSatisfy(\.isNumber) }) else { return false }
        return !(kind == "d" && pieces.count > 1)
    }

    /// The path for these values; throws when a placeholder has no value (as Keras's KeyError)
    /// or an integer format is given a fractional value.
    func format(_ values: [String: Value]) throws -> String {
        var out = ""
        for part in parts {
            switch part {
            case .text(let t): out += t
            case .field(let name, let spec):
                guard let value = values[name] else {
                    throw KestrelError.invalidArgument(
                        "\(callback): filepath '\(source)' needs '\(name)', which the logs do not have (available: epoch, \(values.keys.filter { $0 != "epoch" }.sorted().joined(separator: ", ")))")
                }
                out += try PathTemplate.render(value, spec: spec, name: name, callback: callback)
            }
        }
        return out
    }

    private static func render(_ value: Value, spec: String, name: String, callback: String) throws -> String {
        if spec.isEmpty {
            switch value {
            case .integer(let n): return String(n)
            case .float(let x): return "\(x)"
            }
        }
        let kind = spec.last!
        if kind == "d" {
            guard case .integer(let n) = value else {
                throw KestrelError.invalidArgument("\(callback): '\(name)' is not an integer; format it with f, e or g, not '\(spec)'")
            }
            return String(format: "%" + spec.dropLast() + "ld", n)
        }
        let x: Double
        switch value {
        case .integer(let n): x = Double(n)
        case .float(let f): x = Double(f)
        }
        return String(format: "%" + spec, x)
    }
}
