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
        let all = try read(directory, classNames: classNames, labelMode: labelMode, maxLength: maxLength, shuffle: shuffle,
                           seed: seed, followLinks: followLinks, verbose: verbose)
        guard let validationSplit, let subset else { return all }
        let parts = all.split(validationSplit)
        if verbose {
            print(subset == .training ? "Using \(parts.training.count) files for training."
                                      : "Using \(parts.validation.count) files for validation.")
        }
        return subset == .training ? parts.training : parts.validation
    }

    /// Reads a directory as `fromDirectory` does and returns both parts of the split (Keras
    /// `subset="both"`).
    public static func trainingAndValidationFromDirectory(
        _ directory: String, validationSplit: Double, classNames: [String]? = nil, labelMode: LabelMode = .int,
        maxLength: Int? = nil, shuffle: Bool = true, seed: UInt64? = nil, followLinks: Bool = false, verbose: Bool = true
    ) throws -> (training: LabeledTexts, validation: LabeledTexts) {
        try ClassFolders.checkSplit(validationSplit, subset: nil, both: true, shuffle: shuffle, seed: seed,
                                    what: "text dataset")
        let all = try read(directory, classNames: classNames, labelMode: labelMode, maxLength: maxLength, shuffle: shuffle,
                           seed: seed, followLinks: followLinks, verbose: verbose)
        let parts = all.split(validationSplit)
        if verbose {
            print("Using \(parts.training.count) files for training.")
            print("Using \(parts.validation.count) files for validation.")
        }
        return parts
    }

    /// The texts `range` (and their labels and paths).
    public subscript(range: Range<Int>) -> LabeledTexts {
        LabeledTexts(texts: Array(texts[range]), labels: labels[batch: range], classNames: classNames,
                     filePaths: Array(filePaths[range]))
    }

    /// Keras's split: the last `Int(fraction × count)` texts are the validation part.
    private func split(_ fraction: Double) -> (training: LabeledTexts, validation: LabeledTexts) {
        let parts = ClassFolders.splitRanges(count: count, fraction: fraction)
        return (self[parts.training], self[parts.validation])
    }

    private static func read(_ directory: String, classNames: [String]?, labelMode: LabelMode, maxLength: Int?,
                             shuffle: Bool, seed: UInt64?, followLinks: Bool, verbose: Bool) throws -> LabeledTexts {
        if let maxLength, maxLength < 0 {
            throw KestrelError.invalidArgument("text dataset: maxLength must be 0 or more, found \(maxLength)")
        }
        let folders = try ClassFolders(directory: directory, classNames: classNames, extensions: [".txt"],
                                       labelMode: labelMode, shuffle: shuffle, seed: seed, followLinks: followLinks,
                                       what: "text dataset")
        if verbose { print("Found \(folders.paths.count) files belonging to \(folders.classNames.count) classes.") }
        let root = URL(fileURLWithPath: directory)
        let texts = try folders.paths.map { relative -> String in
            let path = root.appendingPathComponent(relative).path
            guard var data = FileManager.default.contents(atPath: path) else {
                throw KestrelError.fileError("text dataset: cannot read \(path)")
            }
            if let maxLength, data.count > maxLength { data = data.prefix(maxLength) }
            return String(decoding: data, as: UTF8.self)
        }
        return LabeledTexts(texts: texts, labels: folders.encodedLabels(labelMode), classNames: folders.classNames,
                            filePaths: folders.paths)
    }
}
