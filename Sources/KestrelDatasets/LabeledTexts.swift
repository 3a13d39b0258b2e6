import Foundation
import Kestrel

/// Texts and their labels, read from a directory with one subdirectory of `.txt` files per
/// class (Keras `text_dataset_from_directory`), e.g. the IMDB reviews' `train/neg` and
/// `train/pos`. Where Keras returns a dataset of batches, this holds every text, ready for
/// `TextVectorization` and `fit`'s `batchSize`.
public struct LabeledTexts: Sendable, Equatable {
    /// The texts, one per file.
    public var texts: [String]
    /// The labels, encoded as `labelMode` says.
    public var labels: Tensor
    /// The class of each label index: the subdirectories' names.
    public var classNames: [String]
    /// Each text's file, relative to the directory read.
    public var filePaths: [String]

    /// The number of texts.
    public var count: Int { texts.count }

    /// Reads the `.txt` files under each class subdirectory of `directory` (Keras
    /// `text_dataset_from_directory`, with its defaults and checks).
    ///
    /// Classes are the subdirectories not starting with "." in alphanumerical order, or
    /// `classNames` (a subset, in the order given). Files are found recursively (through
    /// linked subdirectories only with `followLinks`), in path order, then shuffled unless
    /// `shuffle` is false. `maxLength` truncates each text to that many bytes. With
    /// `validationSplit`, `subset` chooses the training part (the first files) or the
    /// validation part (the last `Int(validationSplit × count)`), and a `seed` is needed when
    /// shuffling so that both calls shuffle alike. The shuffle is Kestrel's, not NumPy's, so
    /// the order differs from Keras's for the same seed.
    public static func fromDirectory(
        _ directory: String, classNames: [String]? = nil, labelMode: LabelMode = .int, maxLength: Int? = nil,
        shuffle: Bool = true, seed: UInt64? = nil, validationSplit: Double? = nil, subset: DatasetSubset? = nil,
        followLinks: Bool = false, verbose: Bool = true
    ) throws -> LabeledTexts {
        try ClassFolders.checkSplit(validationSplit, subset: subset, both: false, shuffle: shuffle, seed: seed,
                                    what: "text dataset")
        let folders = try index(directory, classNames: classNames, labelMode: labelMode, maxLength: maxLength,
                                shuffle: shuffle, seed: seed, followLinks: followLinks, verbose: verbose)
        return try read(directory, folders, folders.subsetRange(validationSplit, subset, verbose: verbose),
                        labelMode: labelMode, maxLength: maxLength)
    }

    /// Reads a directory as `fromDirectory` does and returns both parts of the split (Keras
    /// `subset="both"`).
    public static func trainingAndValidationFromDirectory(
        _ directory: String, validationSplit: Double, classNames: [String]? = nil, labelMode: LabelMode = .int,
        maxLength: Int? = nil, shuffle: Bool = true, seed: UInt64? = nil, followLinks: Bool = false, verbose: Bool = true
    ) throws -> (training: LabeledTexts, validation: LabeledTexts) {
        try ClassFolders.checkSplit(validationSplit, subset: nil, both: true, shuffle: shuffle, seed: seed,
                                    what: "text dataset")
        let folders = try index(directory, classNames: classNames, labelMode: labelMode, maxLength: maxLength,
                                shuffle: shuffle, seed: seed, followLinks: followLinks, verbose: verbose)
        let parts = folders.bothRanges(validationSplit, verbose: verbose)
        return (try read(directory, folders, parts.training, labelMode: labelMode, maxLength: maxLength),
                try read(directory, folders, parts.validation, labelMode: labelMode, maxLength: maxLength))
    }

    /// The texts `range` (and their labels and paths).
    public subscript(range: Range<Int>) -> LabeledTexts {
        LabeledTexts(texts: Array(texts[range]), labels: labels[batch: range], classNames: classNames,
                     filePaths: Array(filePaths[range]))
    }

    private static func index(_ directory: String, classNames: [String]?, labelMode: LabelMode, maxLength: Int?,
                              shuffle: Bool, seed: UInt64?, followLinks: Bool, verbose: Bool) throws -> ClassFolders {
        if let maxLength, maxLength < 0 {
            throw KestrelError.invalidArgument("text dataset: maxLength must be 0 or more, found \(maxLength)")
        }
        let folders = try ClassFolders(directory: directory, classNames: classNames, extensions: [".txt"],
                                       labelMode: labelMode, shuffle: shuffle, seed: seed, followLinks: followLinks,
                                       what: "text dataset")
        if verbose { print("Found \(folders.paths.count) files belonging to \(folders.classNames.count) classes.") }
        return folders
    }

    /// Reads the files `range` of `folders` (only those).
    private static func read(_ directory: String, _ folders: ClassFolders, _ range: Range<Int>, labelMode: LabelMode,
                             maxLength: Int?) throws -> LabeledTexts {
        let root = URL(fileURLWithPath: directory)
        let paths = Array(folders.paths[range])
        let texts = try paths.map { relative -> String in
            let path = root.appendingPathComponent(relative).path
            guard var data = FileManager.default.contents(atPath: path) else {
                throw KestrelError.fileError("text dataset: cannot read \(path)")
            }
            if let maxLength, data.count > maxLength { data = data.prefix(maxLength) }
            return String(decoding: data, as: UTF8.self)
        }
        return LabeledTexts(texts: texts, labels: folders.encodedLabels(labelMode, range), classNames: folders.classNames,
                            filePaths: paths)
    }
}
