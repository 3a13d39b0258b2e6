import Foundation
import Kestrel

/// How the labels of a directory dataset are encoded (Keras `label_mode`).
public enum LabelMode: String, Sendable, CaseIterable {
    /// Class indices, shape `(n)` (for sparse categorical cross-entropy).
    case int
    /// One-hot rows, shape `(n, classes)` (for categorical cross-entropy).
    case categorical
    /// 0 or 1, shape `(n, 1)`; exactly two classes (for binary cross-entropy).
    case binary
}

/// Which part of a directory dataset to return when a fraction is held out (Keras `subset`).
public enum DatasetSubset: String, Sendable, CaseIterable {
    /// All but the last `validationSplit` of the shuffled files.
    case training
    /// The last `validationSplit` of the shuffled files.
    case validation
}

/// The files of a dataset kept as one subdirectory per class, found as Keras's
/// `index_directory` finds them, and the rules its `*_dataset_from_directory` functions share.
struct ClassFolders {
    /// The classes, in label order.
    var classNames: [String]
    /// Each file's path relative to the directory, and its class index, in Keras's order
    /// (class by class; within a class by folder path, then name), shuffled when asked.
    var paths: [String], labels: [Int]

    /// Indexes `directory`: classes are its subdirectories not starting with "." in
    /// alphanumerical order, or `classNames` (a subset, in the order given); files are those
    /// whose lowercased name ends with one of `extensions`, found recursively (through linked
    /// subdirectories only with `followLinks`). `what` names the dataset in messages.
    init(directory: String, classNames requested: [String]?, extensions: [String], labelMode: LabelMode,
         shuffle: Bool, seed: UInt64?, followLinks: Bool, what: String) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw KestrelError.fileError("\(what): \(directory) is not a directory")
        }
        let root = URL(fileURLWithPath: directory)
        let subdirectories = try fm.contentsOfDirectory(atPath: directory).filter { name in
            var isDir: ObjCBool = false
            return !name.hasPrefix(".") && fm.fileExists(atPath: root.appendingPathComponent(name).path, isDirectory: &isDir)
                && isDir.boolValue
        }.sorted(by: Self.bytewise)
        var classes = subdirectories
        if let requested {
            guard Set(requested).isSubset(of: subdirectories) else {
                throw KestrelError.invalidArgument(
                    "\(what): classNames must name subdirectories of \(directory) (\(subdirectories)), found \(requested)")
            }
            classes = requested
        }
        if labelMode == .binary && classes.count != 2 {
            throw KestrelError.invalidArgument(
                "\(what): labelMode .binary needs exactly 2 classes, found \(classes.count): \(classes)")
        }
        var paths: [String] = [], labels: [Int] = []
        for (index, name) in classes.enumerated() {
            let files = try Self.files(in: root.appendingPathComponent(name), extensions: extensions, followLinks: followLinks)
            paths += files.map { name + "/" + $0 }
            labels += Array(repeating: index, count: files.count)
        }
        if shuffle {
            var order = Array(paths.indices)
            var generator = RandomGenerator(seed: seed ?? UInt64.random(in: 0..<1_000_000))
            order.shuffle(using: &generator)
            paths = order.map { paths[$0] }
            labels = order.map { labels[$0] }
        }
        classNames = classes
        self.paths = paths
        self.labels = labels
    }

    /// Keras's checks of `validationSplit`, `subset` (nil with `both`, which returns the two
    /// parts), `shuffle` and `seed`.
    static func checkSplit(_ validationSplit: Double?, subset: DatasetSubset?, both: Bool, shuffle: Bool,
                           seed: UInt64?, what: String) throws {
        if !both && validationSplit != nil && subset == nil {
            throw KestrelError.invalidArgument(
                "\(what): validationSplit needs subset (.training or .validation; trainingAndValidationFromDirectory returns both)")
        }
        if subset != nil && validationSplit == nil {
            throw KestrelError.invalidArgument("\(what): subset needs validationSplit, found nil")
        }
        if let validationSplit, !(validationSplit > 0 && validationSplit < 1) {
            throw KestrelError.invalidArgument("\(what): validationSplit must be between 0 and 1, found \(validationSplit)")
        }
        if validationSplit != nil && shuffle && seed == nil {
            throw KestrelError.invalidArgument(
                "\(what): a validationSplit of shuffled files needs a seed, so that the training and validation parts do not overlap")
        }
    }

    /// The files `subset` takes of a `validationSplit` (all of them without one), announced as
    /// Keras announces them when `verbose`.
    func subsetRange(_ validationSplit: Double?, _ subset: DatasetSubset?, verbose: Bool) -> Range<Int> {
        guard let validationSplit, let subset else { return 0..<paths.count }
        let parts = Self.splitRanges(count: paths.count, fraction: validationSplit)
        let range = subset == .training ? parts.training : parts.validation
        if verbose { print("Using \(range.count) files for \(subset == .training ? "training" : "validation").") }
        return range
    }

    /// Both parts of a split of the files (Keras `subset="both"`), announced when `verbose`.
    func bothRanges(_ validationSplit: Double, verbose: Bool) -> (training: Range<Int>, validation: Range<Int>) {
        let parts = Self.splitRanges(count: paths.count, fraction: validationSplit)
        if verbose {
            print("Using \(parts.training.count) files for training.")
            print("Using \(parts.validation.count) files for validation.")
        }
        return parts
    }

    /// Keras's split of `count` samples: the last `Int(fraction × count)` are the validation part.
    static func splitRanges(count: Int, fraction: Double) -> (training: Range<Int>, validation: Range<Int>) {
        let validation = Int(fraction * Double(count))
        return (0..<(count - validation), (count - validation)..<count)
    }

    /// The labels of the files at `indices` (a range, or a batch's picks), encoded as `mode` says.
    func encodedLabels(_ mode: LabelMode, _ indices: some Collection<Int>) -> Tensor {
        let labels = indices.map { self.labels[$0] }
        switch mode {
        case .int: return Tensor(labels: labels)
        case .binary: return Tensor(shape: [labels.count, 1], scalars: labels.map(Float.init))
        case .categorical:
            var rows = [Float](repeating: 0, count: labels.count * classNames.count)
            for (i, label) in labels.enumerated() { rows[i * classNames.count + label] = 1 }
            return Tensor(shape: [labels.count, classNames.count], scalars: rows)
        }
    }

    /// The files under `directory` with one of `extensions`, relative to it, ordered as Keras's
    /// walk orders them: by the path of their folder, then by name.
    private static func files(in directory: URL, extensions: [String], followLinks: Bool) throws -> [String] {
        let fm = FileManager.default
        var found: [(folder: String, name: String)] = []
        func walk(_ relative: String) throws {
            let url = relative.isEmpty ? directory : directory.appendingPathComponent(relative)
            for name in try fm.contentsOfDirectory(atPath: url.path) {
                let child = url.appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: child.path, isDirectory: &isDirectory) else { continue }
                if isDirectory.boolValue {
                    let isLink = (try? fm.destinationOfSymbolicLink(atPath: child.path)) != nil
                    if !isLink || followLinks { try walk(relative.isEmpty ? name : relative + "/" + name) }
                } else if extensions.contains(where: name.lowercased().hasSuffix) {
                    found.append((relative, name))
                }
            }
        }
        try walk("")
        return found.sorted { a, b in
            a.folder != b.folder ? bytewise(a.folder, b.folder) : bytewise(a.name, b.name)
        }.map { $0.folder.isEmpty ? $0.name : $0.folder + "/" + $0.name }
    }

    /// Python's string order (code points, the same as UTF-8 bytes).
    static func bytewise(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }
}
