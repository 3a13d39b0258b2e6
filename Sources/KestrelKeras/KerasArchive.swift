import Foundation
import Kestrel
import ZIPFoundation

/// Limits on what a `.keras` archive may declare, so that a hostile file cannot make the
/// reader allocate without bound.
public enum KerasFormat {
    /// The largest `config.json` or `metadata.json` accepted (bytes).
    public static let maximumJSONSize = 64 << 20
    /// The largest `model.weights.h5` accepted (bytes).
    public static let maximumWeightsSize: Int64 = 16 << 30
    /// The Keras version written into `metadata.json`: the format Kestrel follows.
    public static let kerasVersion = "3.15.1"
}

extension Model {
    /// Saves the model in the Keras 3 `.keras` format (Keras `model.save("x.keras")`): a zip
    /// of `metadata.json`, `config.json` (Keras's class names and config keys, so Python's
    /// `keras.saving.load_model` reads it) and `model.weights.h5` (weights, and the
    /// optimizer's state when compiled, so `fit` resumes where it stopped).
    ///
    /// The archive is written to a temporary file beside `path` and renamed into place, so a
    /// crash mid-save leaves any previous file intact.
    public func save(to path: String) throws {
        guard path.hasSuffix(".keras") else {
            throw KestrelError.invalidArgument("\(name).save: \(path): the file name must end in .keras")
        }
        let config = try KerasModelConfig.config(of: self)
        let configData = try KerasJSON.data(config, context: "\(name).save: config")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        let metadata: [String: Any] = ["keras_version": KerasFormat.kerasVersion, "date_saved": formatter.string(from: Date())]
        let metadataData = try KerasJSON.data(metadata, context: "\(name).save: metadata")

        let scratch = try TemporaryDirectory()
        let weights = scratch.url.appendingPathComponent("model.weights.h5")
        try writeKerasWeights(toFile: weights.path, displayName: path)
        try AtomicFile.write(to: path) { temporary in
            let archive: Archive
            do { archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create) } catch {
                throw KestrelError.fileError("\(path): cannot create the archive: \(error)")
            }
            do {
                for (entry, data) in [("metadata.json", metadataData), ("config.json", configData)] {
                    try archive.addEntry(with: entry, type: .file, uncompressedSize: Int64(data.count),
                                         compressionMethod: .none) { position, size in
                        data.subdata(in: Int(position)..<(Int(position) + size))
                    }
                }
                try archive.addEntry(with: "model.weights.h5", fileURL: weights, compressionMethod: .none)
            } catch {
                throw KestrelError.fileError("\(path): cannot write the archive: \(error)")
            }
        }
    }

    /// Loads a model saved in the Keras 3 `.keras` format, by Kestrel or by Keras itself
    /// (Keras `keras.saving.load_model`). A Sequential config gives a `Sequential`, a
    /// Functional one a `Model(inputs:outputs:)`; when the file holds a compile config with a
    /// supported optimizer and loss, the model comes back compiled with the optimizer's state.
    ///
    /// A truncated, corrupted or hostile file throws `KestrelError.fileError` naming the file
    /// and the problem; nothing is returned half-loaded.
    public static func load(from path: String) throws -> Model {
        let archive = try KerasArchiveReader(path: path)
        let configJSON = try archive.json("config.json")
        let scratch = try TemporaryDirectory()
        let weightsPath = scratch.url.appendingPathComponent("model.weights.h5").path
        let weightsSize = try archive.extract("model.weights.h5", to: weightsPath)
        var budget = KerasModelConfig.Budget(scalars: Int(weightsSize / 4) + 16, file: path)
        let parsed = try KerasModelConfig.model(from: JSONObject(configJSON, context: "\(path): config.json"), budget: &budget)
        let model = parsed.model
        if configJSON["compile_config"] is [String: Any] {
            let compile = try JSONObject(any: configJSON["compile_config"], context: "\(path): config.json.compile_config")
            _ = try KerasTraining.compile(model, from: compile)
        }
        // The weight groups and optimizer slots follow the config's layer order: nested models
        // are inlined, and a call by keyword (`mha(query=q, value=v)`) orders its inputs by
        // name in Keras's graph walk, so the graph Kestrel rebuilds may order layers otherwise.
        try model.readKerasWeights(fromFile: weightsPath, displayName: path, includeOptimizer: true,
                                   entries: parsed.entries)
        return model
    }

    /// Saves the weights in Keras's `.weights.h5` layout (Keras `save_weights("x.weights.h5")`):
    /// `layers/<snake_case_class>[_N]/vars/<i>`, plus the optimizer's state when compiled.
    /// Written to a temporary file and renamed into place.
    public func saveKerasWeights(to path: String) throws {
        guard path.hasSuffix(".weights.h5") else {
            throw KestrelError.invalidArgument("\(name).saveKerasWeights: \(path): the file name must end in .weights.h5")
        }
        try AtomicFile.write(to: path) { temporary in
            try writeKerasWeights(toFile: temporary, displayName: path)
        }
    }

    /// Loads weights from a Keras `.weights.h5` file (Keras `load_weights`) written for a model
    /// of the same architecture, by Kestrel or by Keras. Every array is read and checked
    /// before any weight changes. The optimizer's state is restored too when the model is
    /// compiled with a matching optimizer and the file has it.
    public func loadKerasWeights(from path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw KestrelError.fileError("\(path): no such file")
        }
        try readKerasWeights(fromFile: path, displayName: path, includeOptimizer: true)
    }

    // MARK: Weights file

    func writeKerasWeights(toFile file: String, displayName: String) throws {
        try build()
        let entries = try KerasModelConfig.layerEntries(of: self)
        // Configs are validated first: an unsupported layer fails before anything is written.
        for entry in entries where !(entry.layer is InputLayer) { _ = try KerasLayers.config(of: entry.layer) }
        try withHDF5 {
            let writer = try HDF5Writer(path: file)
            do {
                try writer.group("vars")
                try writer.setAttribute("name", name, onGroup: "vars")
                for entry in entries {
                    let weights = entry.layer.getWeights()
                    for group in KerasModelConfig.kerasVariableGroups(entry.layer) {
                        let vars = entry.groupPath + (group.path.isEmpty ? "" : "/" + group.path) + "/vars"
                        try writer.group(vars)
                        try writer.setAttribute("name", group.name, onGroup: vars)
                        for (i, v) in group.variables.enumerated() {
                            try writer.writeFloats(weights[v].scalars, shape: weights[v].shape, at: "\(vars)/\(i)")
                        }
                    }
                }
                try KerasTraining.writeOptimizer(self, entries: entries, to: writer)
                try writer.close()
            } catch {
                try? writer.close()
                throw error
            }
        }
    }

    /// Reads weights (and optimizer state) into the model; `entries` overrides the weight
    /// groups derived from the model's own graph (for a file whose config nests models).
    func readKerasWeights(fromFile file: String, displayName: String, includeOptimizer: Bool,
                          entries given: [KerasLayerEntry]? = nil) throws {
        try build()
        let entries = try given ?? KerasModelConfig.layerEntries(of: self)
        let attributes = try? FileManager.default.attributesOfItem(atPath: file)
        let fileSize = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        var loaded: [(Layer, [Tensor])] = []
        var optimizerState: OptimizerState?
        try withHDF5 {
            let reader = try HDF5Reader(path: file, displayName: displayName, maxScalars: fileSize / 4 + 16)
            for entry in entries where !entry.layer.weightSpecs.isEmpty {
                let layer = entry.layer
                var tensors = [Tensor?](repeating: nil, count: layer.weightSpecs.count)
                for group in KerasModelConfig.kerasVariableGroups(layer) where !group.variables.isEmpty {
                    let vars = entry.groupPath + (group.path.isEmpty ? "" : "/" + group.path) + "/vars"
                    guard reader.exists(vars) else {
                        throw KestrelError.fileError(
                            "\(displayName): no weights for layer '\(layer.name)' (\(layer.className)): missing group '\(vars)'")
                    }
                    let members = try reader.members(of: vars)
                    guard members.count == group.variables.count else {
                        throw KestrelError.fileError(
                            "\(displayName): '\(vars)' holds \(members.count) arrays, layer '\(layer.name)' (\(layer.className)) has \(group.variables.count)")
                    }
                    for (i, v) in group.variables.enumerated() {
                        let spec = layer.weightSpecs[v]
                        let shape = try reader.shape(of: "\(vars)/\(i)")
                        guard shape == spec.shape else {
                            throw KestrelError.fileError(
                                "\(displayName): '\(vars)/\(i)' (\(layer.name) \(spec.name)) has shape \(shape), expected \(spec.shape)")
                        }
                        let t = try reader.readFloats("\(vars)/\(i)")
                        guard t.scalars.allSatisfy({ $0.isFinite }) else {
                            throw KestrelError.fileError("\(displayName): '\(vars)/\(i)' (\(layer.name) \(spec.name)) holds NaN or infinite values")
                        }
                        tensors[v] = t
                    }
                }
                loaded.append((layer, tensors.map { $0! }))
            }
            if includeOptimizer { optimizerState = try KerasTraining.readOptimizer(self, entries: entries, from: reader) }
        }
        // Everything was read and checked: now set it.
        for (layer, tensors) in loaded { try layer.setWeights(tensors) }
        if let optimizerState { try setOptimizerState(optimizerState) }
    }
}

/// Reads members of a `.keras` zip archive with size limits and CRC checks.
struct KerasArchiveReader {
    let path: String
    let archive: Archive

    init(path: String) throws {
        self.path = path
        guard FileManager.default.fileExists(atPath: path) else { throw KestrelError.fileError("\(path): no such file") }
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw KestrelError.fileError("\(path): not a valid .keras archive (zip): \(error)")
        }
    }

    private func entry(_ name: String) throws -> Entry {
        guard let e = archive[name] else { throw KestrelError.fileError("\(path): the archive has no '\(name)'") }
        guard e.type == .file else { throw KestrelError.fileError("\(path): '\(name)' is not a file") }
        return e
    }

    /// Streams an entry to `consume`, stopping with an error past `limit` bytes or when the
    /// data does not match its checksum.
    private func read(_ name: String, limit: Int64, _ consume: (Data) throws -> Void) throws -> Int64 {
        let e = try entry(name)
        guard e.uncompressedSize >= 0, e.uncompressedSize <= limit else {
            throw KestrelError.fileError("\(path): '\(name)' declares \(e.uncompressedSize) bytes, more than the \(limit) allowed")
        }
        var total: Int64 = 0
        var checksum: CRC32 = 0
        do {
            // This form of `extract` computes the CRC-32 but leaves comparing it to the caller.
            checksum = try archive.extract(e, skipCRC32: false) { chunk in
                total += Int64(chunk.count)
                guard total <= e.uncompressedSize else { throw KestrelError.fileError("\(path): '\(name)' is longer than it declares") }
                try consume(chunk)
            }
        } catch let error as KestrelError {
            throw error
        } catch {
            throw KestrelError.fileError("\(path): cannot read '\(name)' (corrupted or truncated archive): \(error)")
        }
        guard total == e.uncompressedSize else {
            throw KestrelError.fileError("\(path): '\(name)' holds \(total) bytes, it declares \(e.uncompressedSize)")
        }
        guard checksum == e.checksum else {
            throw KestrelError.fileError("\(path): '\(name)' is corrupted (CRC-32 mismatch)")
        }
        return total
    }

    /// An entry parsed as a JSON object.
    func json(_ name: String) throws -> [String: Any] {
        var data = Data()
        _ = try read(name, limit: Int64(KerasFormat.maximumJSONSize)) { data.append($0) }
        let value: Any
        do { value = try JSONSerialization.jsonObject(with: data) } catch {
            throw KestrelError.fileError("\(path): '\(name)' is not valid JSON")
        }
        guard let object = value as? [String: Any] else {
            throw KestrelError.fileError("\(path): '\(name)' should hold a JSON object")
        }
        return object
    }

    /// Extracts an entry to a file; returns its size.
    func extract(_ name: String, to file: String) throws -> Int64 {
        guard FileManager.default.createFile(atPath: file, contents: nil), let handle = FileHandle(forWritingAtPath: file) else {
            throw KestrelError.fileError("\(file): cannot create a temporary file")
        }
        defer { try? handle.close() }
        return try read(name, limit: KerasFormat.maximumWeightsSize) { try handle.write(contentsOf: $0) }
    }
}

/// A fresh directory under the system's temporary directory, removed when released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("kestrel-\(UUID().uuidString)")
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw KestrelError.fileError("\(url.path): cannot create a temporary directory: \(error)")
        }
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}


/// Listing the arrays of a Keras `.weights.h5` file without a model.
public enum KerasWeightsFile {
    /// Every dataset in the file as `(path, shape)`, in HDF5's name order (e.g.
    /// `layers/dense/vars/0`, `[784, 128]`). Throws a file error for a file HDF5 cannot read.
    public static func inventory(of path: String) throws -> [(path: String, shape: [Int])] {
        guard FileManager.default.fileExists(atPath: path) else { throw KestrelError.fileError("\(path): no such file") }
        return try withHDF5 {
            let reader = try HDF5Reader(path: path, displayName: path, maxScalars: Int.max)
            var found: [(String, [Int])] = []
            func walk(_ group: String, depth: Int) throws {
                guard depth < 16, found.count < 100_000 else { return }
                for member in try reader.members(of: group) {
                    let child = group.isEmpty ? member : "\(group)/\(member)"
                    if let shape = try? reader.shape(of: child) {
                        found.append((child, shape))
                    } else {
                        try walk(child, depth: depth + 1)
                    }
                }
            }
            try walk("", depth: 0)
            return found
        }
    }
}
