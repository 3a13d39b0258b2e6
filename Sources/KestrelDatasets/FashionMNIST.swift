import Foundation
import Kestrel

/// Fashion-MNIST (Zalando Research, MIT licence): 70,000 grayscale 28×28 images of clothing in
/// 10 classes, split 60,000 for training and 10,000 for testing.
///
/// It is a drop-in replacement for MNIST that is harder to score well on, which makes
/// differences between models visible.
///
/// Search order (see `IDXDataset.locate(path:environment:)`):
/// 1. the `path` argument;
/// 2. the `KESTREL_FASHION_MNIST` environment variable;
/// 3. `/usr/share/datasets/fashion-mnist`, where Debian's `dataset-fashion-mnist` installs it;
/// 4. the 2,000 + 1,000 sample subset committed in the repository's
///    `Datasets/fashion-mnist-subset`, so examples and tests run without the download.
///
/// ```swift
/// let location = try FashionMNIST.locate()
/// print(location)                       // says whether this is the subset
/// let (train, test) = try FashionMNIST.load(from: location)
/// let x = train.images / 255
/// ```
public enum FashionMNIST {
    /// The name of each class index, in the dataset's order.
    public static let classNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// The environment variable that overrides the search with a directory of its own.
    public static let environmentVariable = "KESTREL_FASHION_MNIST"

    /// Where Debian's `dataset-fashion-mnist` package installs the files.
    public static let systemDirectory = "/usr/share/datasets/fashion-mnist"

    /// The dataset description behind this namespace, for callers that need its details.
    public static let dataset = IDXDataset(
        name: "Fashion-MNIST",
        classNames: classNames,
        environmentVariable: environmentVariable,
        systemDirectories: [systemDirectory],
        // The source-relative path finds the subset when running from a checkout anywhere;
        // the relative one covers binaries built elsewhere but run from the package root.
        subsetDirectories: [
            RepositoryPaths.packageRoot + "/Datasets/fashion-mnist-subset",
            "Datasets/fashion-mnist-subset",
        ],
        fullCounts: (training: 60_000, test: 10_000),
        installHint: "sudo apt-get install dataset-fashion-mnist (or run the project's scripts/setup.sh)")

    /// Finds the data without loading it; print the result to tell users what they train on.
    ///
    /// - Parameter path: A directory holding the four IDX files (gzip'd or plain); when given,
    ///   nothing else is searched.
    /// - Throws: `KestrelError.fileError` listing every place looked at, and how to install
    ///   the data, when none holds it.
    public static func locate(path: String? = nil) throws -> DatasetLocation {
        try dataset.locate(path: path)
    }

    /// Loads the training and test splits from the first place the search finds.
    ///
    /// - Parameter path: A directory holding the four IDX files; when given, nothing else is
    ///   searched.
    /// - Returns: Images `[count, 28, 28]` with values `0...255`, and labels `[count]` holding
    ///   class indices `0...9`.
    /// - Throws: `KestrelError.fileError` when the data is missing or a file is malformed.
    public static func load(path: String? = nil) throws -> (train: LabeledImages, test: LabeledImages) {
        try dataset.load(path: path)
    }

    /// Loads the splits from a location returned by `locate(path:)`.
    ///
    /// - Throws: `KestrelError.fileError` when a file is malformed.
    public static func load(from location: DatasetLocation) throws -> (train: LabeledImages, test: LabeledImages) {
        try dataset.load(from: location)
    }
}

/// MNIST (LeCun, Cortes and Burges): 70,000 grayscale 28×28 images of handwritten digits,
/// split 60,000 for training and 10,000 for testing.
///
/// Search order: the `path` argument; the `KESTREL_MNIST` environment variable;
/// `/usr/share/datasets/mnist`. No subset is committed, so there is no fallback beyond that.
public enum MNIST {
    /// The name of each class index: the digit it shows.
    public static let classNames = (0...9).map(String.init)

    /// The environment variable that overrides the search with a directory of its own.
    public static let environmentVariable = "KESTREL_MNIST"

    /// The directory a system-wide installation would use, by analogy with Debian's
    /// Fashion-MNIST package (Debian itself does not package MNIST).
    public static let systemDirectory = "/usr/share/datasets/mnist"

    /// The dataset description behind this namespace, for callers that need its details.
    public static let dataset = IDXDataset(
        name: "MNIST",
        classNames: classNames,
        environmentVariable: environmentVariable,
        systemDirectories: [systemDirectory],
        fullCounts: (training: 60_000, test: 10_000),
        installHint: "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
            + "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from the MNIST database "
            + "(https://yann.lecun.com/exdb/mnist/ or a mirror) into \(systemDirectory) or another directory")

    /// Finds the data without loading it.
    ///
    /// - Parameter path: A directory holding the four IDX files (gzip'd or plain); when given,
    ///   nothing else is searched.
    /// - Throws: `KestrelError.fileError` listing every place looked at when none holds the data.
    public static func locate(path: String? = nil) throws -> DatasetLocation {
        try dataset.locate(path: path)
    }

    /// Loads the training and test splits from the first place the search finds.
    ///
    /// - Parameter path: A directory holding the four IDX files; when given, nothing else is
    ///   searched.
    /// - Returns: Images `[count, 28, 28]` with values `0...255`, and labels `[count]` holding
    ///   digits `0...9`.
    /// - Throws: `KestrelError.fileError` when the data is missing or a file is malformed.
    public static func load(path: String? = nil) throws -> (train: LabeledImages, test: LabeledImages) {
        try dataset.load(path: path)
    }

    /// Loads the splits from a location returned by `locate(path:)`.
    ///
    /// - Throws: `KestrelError.fileError` when a file is malformed.
    public static func load(from location: DatasetLocation) throws -> (train: LabeledImages, test: LabeledImages) {
        try dataset.load(from: location)
    }
}

/// Paths inside the source checkout, found from this file's compile-time location.
enum RepositoryPaths {
    /// The package root: this file is `Sources/KestrelDatasets/FashionMNIST.swift`.
    static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // KestrelDatasets
        .deletingLastPathComponent()  // Sources
        .deletingLastPathComponent()  // package root
        .path
}
