import Foundation
import Kestrel

/// An image-classification dataset distributed as the four IDX files MNIST made standard,
/// and where to look for it.
///
/// `FashionMNIST` and `MNIST` are instances of this; others that use the same file names
/// (such as Kuzushiji-MNIST) can be described the same way.
///
/// A directory holds a dataset when it contains all of `fileNames`, each either gzip'd with a
/// `.gz` suffix (as distributed) or plain (as after `gunzip`).
public struct IDXDataset: Sendable {
    /// The name used in messages, e.g. `"Fashion-MNIST"`.
    public let name: String
    /// The human-readable name of each class index.
    public let classNames: [String]
    /// Rows and columns every image must have.
    public let imageShape: [Int]
    /// A variable that, when set and non-empty, names the only directory to use.
    public let environmentVariable: String?
    /// Standard system-wide install locations, searched in order.
    public let systemDirectories: [String]
    /// Locations of a small committed subset, searched last; relative paths are resolved
    /// against the current directory at search time.
    public let subsetDirectories: [String]
    /// Sample counts of the complete training and test splits, used to tell a subset from the
    /// full dataset; `nil` when unknown.
    public let fullCounts: (training: Int, test: Int)?
    /// How to get the complete dataset, as a phrase that completes "To get it: …", e.g. the
    /// package to install.
    public let installHint: String

    /// The base names of the training images, training labels, test images and test labels.
    public static let fileNames = [
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    ]

    /// Describes a dataset and its search path.
    public init(name: String, classNames: [String], imageShape: [Int] = [28, 28],
                environmentVariable: String?, systemDirectories: [String], subsetDirectories: [String] = [],
                fullCounts: (training: Int, test: Int)? = nil, installHint: String) {
        self.name = name
        self.classNames = classNames
        self.imageShape = imageShape
        self.environmentVariable = environmentVariable
        self.systemDirectories = systemDirectories
        self.subsetDirectories = subsetDirectories
        self.fullCounts = fullCounts
        self.installHint = installHint
    }

    // MARK: - Search

    /// Finds the directory to load from, without loading the images.
    ///
    /// The search order is: the `path` argument; the environment variable; the system
    /// directories; the subset directories. The first two are explicit choices, so when they
    /// name a directory without the files the search fails there instead of quietly falling
    /// back to other data. Later places are skipped when incomplete.
    ///
    /// - Parameters:
    ///   - path: A directory holding the four files; overrides every other place.
    ///   - environment: Variables to consult instead of the process environment (for tests
    ///     and for callers that sanitise their environment).
    /// - Throws: `KestrelError.fileError` listing every place looked at and how to get the
    ///   data when nothing is found, or naming the file whose header is unreadable.
    public func locate(path: String? = nil, environment: [String: String]? = nil) throws -> DatasetLocation {
        if let path {
            return try requireDataset(in: path, source: .argument, origin: "the directory passed as `path`")
        }
        var skipped: [String] = []
        if let variable = environmentVariable {
            let value = (environment ?? ProcessInfo.processInfo.environment)[variable]
            if let value, !value.isEmpty {
                return try requireDataset(in: value, source: .environmentVariable(variable),
                                          origin: "the directory in $\(variable)")
            }
            skipped.append("$\(variable): not set")
        }
        let candidates = systemDirectories.map { ($0, DatasetLocation.Source.systemDirectory) }
            + uniqueSubsetDirectories().map { ($0, DatasetLocation.Source.subsetDirectory) }
        for (directory, source) in candidates {
            switch probe(directory) {
            case .found(let files):
                return try makeLocation(directory: directory, source: source, files: files, skipped: skipped)
            case .missing(let reason):
                skipped.append("\(directory): \(reason)")
            }
        }
        throw KestrelError.fileError(
            "\(name) not found. Looked for \(Self.expectedFilesText) in:\n"
            + skipped.map { "  - \($0)" }.joined(separator: "\n") + "\n"
            + fixHint())
    }

    /// Loads both splits from the first place the search finds.
    ///
    /// - Throws: `KestrelError.fileError` when the data is missing or any file is malformed.
    public func load(path: String? = nil) throws -> (train: LabeledImages, test: LabeledImages) {
        try load(from: locate(path: path))
    }

    /// Loads both splits from a location found earlier, so a caller can report where the data
    /// comes from without searching twice.
    ///
    /// - Throws: `KestrelError.fileError` naming the file for malformed data: bad IDX headers,
    ///   images of the wrong size, a label count that differs from the image count, or a label
    ///   outside the class range.
    public func load(from location: DatasetLocation) throws -> (train: LabeledImages, test: LabeledImages) {
        let train = try loadSplit(images: location.files.trainImages, labels: location.files.trainLabels)
        let test = try loadSplit(images: location.files.testImages, labels: location.files.testLabels)
        return (train, test)
    }

    // MARK: - Implementation

    private enum Probe {
        case found(DatasetFiles)
        case missing(String)
    }

    private static var expectedFilesText: String {
        let names = fileNames
        return names.dropLast().joined(separator: ", ") + " and \(names.last!) (each gzip'd with .gz, or plain)"
    }

    private func fixHint() -> String {
        let elsewhere = environmentVariable.map { "set \($0), or pass `path:`," } ?? "pass `path:`"
        return "To get it: \(installHint).\nIf the files are elsewhere, \(elsewhere) naming the directory that holds them."
    }

    private func requireDataset(in directory: String, source: DatasetLocation.Source, origin: String) throws
        -> DatasetLocation
    {
        switch probe(directory) {
        case .found(let files):
            return try makeLocation(directory: directory, source: source, files: files, skipped: [])
        case .missing(let reason):
            throw KestrelError.fileError(
                "\(name): \(origin), \(directory), cannot be used: \(reason). "
                + "Expected \(Self.expectedFilesText) there.\n" + fixHint())
        }
    }

    private func probe(_ directory: String) -> Probe {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            return .missing("no such directory")
        }
        guard isDirectory.boolValue else { return .missing("not a directory") }
        var found: [String] = []
        var missing: [String] = []
        for base in Self.fileNames {
            // The gzip'd name comes first because that is how the files are distributed.
            let path = [base + ".gz", base].map { Self.join(directory, $0) }.first { isRegularFile($0) }
            if let path { found.append(path) } else { missing.append(base + "(.gz)") }
        }
        guard missing.isEmpty else {
            return .missing("missing " + missing.joined(separator: ", "))
        }
        return .found(DatasetFiles(trainImages: found[0], trainLabels: found[1],
                                   testImages: found[2], testLabels: found[3]))
    }

    private func isRegularFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    private func makeLocation(directory: String, source: DatasetLocation.Source, files: DatasetFiles,
                              skipped: [String]) throws -> DatasetLocation {
        // Only the label headers are read: enough to tell a subset from the full dataset.
        let trainingCount = try IDXFile.dimensions(ofFileAt: files.trainLabels, expectedRank: 1)[0]
        let testCount = try IDXFile.dimensions(ofFileAt: files.testLabels, expectedRank: 1)[0]
        let isSubset: Bool
        if let fullCounts {
            isSubset = trainingCount < fullCounts.training || testCount < fullCounts.test
        } else {
            isSubset = source == .subsetDirectory
        }
        return DatasetLocation(datasetName: name, directory: directory, source: source, files: files,
                               trainingCount: trainingCount, testCount: testCount, isSubset: isSubset,
                               skipped: skipped, fullDatasetHint: isSubset ? installHint : nil)
    }

    /// The subset directories made absolute, without duplicates: run from the package root,
    /// the source-relative and the working-directory-relative candidates are the same place.
    private func uniqueSubsetDirectories() -> [String] {
        var seen = Set<String>()
        var result: [String] = []
        for directory in subsetDirectories {
            let url = directory.hasPrefix("/")
                ? URL(fileURLWithPath: directory)
                : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(directory)
            let absolute = url.standardizedFileURL.path
            if seen.insert(url.standardizedFileURL.resolvingSymlinksInPath().path).inserted {
                result.append(absolute)
            }
        }
        return result
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    private func loadSplit(images imagesPath: String, labels labelsPath: String) throws -> LabeledImages {
        let images = try IDXFile(contentsOf: imagesPath, expectedRank: 1 + imageShape.count)
        guard Array(images.dimensions.dropFirst()) == imageShape else {
            throw KestrelError.fileError(
                "\(imagesPath): expected \(name) images of \(IDXFile.format(imageShape)) pixels, "
                + "found \(IDXFile.format(Array(images.dimensions.dropFirst())))")
        }
        let labels = try IDXFile(contentsOf: labelsPath, expectedRank: 1)
        guard labels.dimensions[0] == images.dimensions[0] else {
            throw KestrelError.fileError(
                "\(labelsPath): expected one label per image of \(imagesPath) (\(images.dimensions[0])), "
                + "found \(labels.dimensions[0]) labels")
        }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= classNames.count }) {
            throw KestrelError.fileError(
                "\(labelsPath): expected class indices 0...\(classNames.count - 1), "
                + "found \(labels.bytes[bad]) at index \(bad)")
        }
        return LabeledImages(
            checkedImages: Tensor(shape: images.dimensions, scalars: images.bytes.map(Float.init)),
            labels: Tensor(shape: labels.dimensions, scalars: labels.bytes.map(Float.init)))
    }
}

/// The four files of a dataset directory, after choosing between gzip'd and plain names.
public struct DatasetFiles: Sendable, Equatable {
    /// Training images (`train-images-idx3-ubyte[.gz]`).
    public let trainImages: String
    /// Training labels (`train-labels-idx1-ubyte[.gz]`).
    public let trainLabels: String
    /// Test images (`t10k-images-idx3-ubyte[.gz]`).
    public let testImages: String
    /// Test labels (`t10k-labels-idx1-ubyte[.gz]`).
    public let testLabels: String
}

/// Where a dataset was found and why that place was chosen, so programs can tell their users
/// what they are training on.
public struct DatasetLocation: Sendable, Equatable, CustomStringConvertible {
    /// Which step of the search chose the directory.
    public enum Source: Sendable, Equatable {
        /// The caller's `path` argument.
        case argument
        /// The named environment variable.
        case environmentVariable(String)
        /// A standard system-wide install location, such as Debian's.
        case systemDirectory
        /// The small subset committed to the repository.
        case subsetDirectory
    }

    /// The dataset's name, e.g. `"Fashion-MNIST"`.
    public let datasetName: String
    /// The chosen directory.
    public let directory: String
    /// Why this directory was chosen.
    public let source: Source
    /// The four files in it.
    public let files: DatasetFiles
    /// Training samples, as declared by the training labels' header.
    public let trainingCount: Int
    /// Test samples, as declared by the test labels' header.
    public let testCount: Int
    /// Whether this is less than the complete dataset, so accuracy is not comparable with
    /// published results.
    public let isSubset: Bool
    /// Places searched before this one and why each was passed over.
    public let skipped: [String]
    /// How to get the full dataset, kept only when `isSubset` so `description` can say it.
    let fullDatasetHint: String?

    /// One line naming the data, its size and where it came from; two when it is a subset.
    public var description: String {
        let why: String
        switch source {
        case .argument: why = "the `path` argument"
        case .environmentVariable(let variable): why = "$\(variable)"
        case .systemDirectory: why = "the system-wide installation"
        case .subsetDirectory: why = "the subset committed to the repository"
        }
        var text = "\(datasetName)\(isSubset ? " subset" : ""): \(trainingCount) training and \(testCount) test images "
            + "from \(directory) (\(why))"
        if let fullDatasetHint {
            text += "\nFor the full dataset: " + fullDatasetHint
        }
        return text
    }
}
