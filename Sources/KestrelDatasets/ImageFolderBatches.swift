import Kestrel

/// The images of a folder per class, read from disk a batch at a time (what Keras's
/// `image_dataset_from_directory` gives `fit`): for datasets too large to hold in memory, such
/// as Keras's cats-vs-dogs tutorial (23,000 photos, 9 GB as 180×180 floats). Pass it to
/// `fit`, `evaluate` or `predict`; only the batch being trained on is in memory.
///
/// Files, classes, labels and pixels are exactly those of `LabeledImages.fromDirectory` with
/// the same arguments; each batch's images are decoded on Kestrel's threads. With `shuffle`
/// the files are shuffled once (by `seed`), and again after every epoch, so batches mix
/// differently each epoch (Keras reshuffles through a buffer of `8 × batchSize` files).
public final class ImageFolderBatches: BatchDataset {
    /// The classes, in label order (the subdirectories, or the `classNames` asked for).
    public let classNames: [String]
    /// Images per batch (the last batch may hold fewer).
    public let batchSize: Int
    /// How labels are encoded.
    public let labelMode: LabelMode
    /// Batches decoded ahead on a background thread (on it alone) while the model trains
    /// (tf.data's `prefetch`); 0, the default, decodes each batch on Kestrel's threads when it
    /// is asked for. On two cores both take the same time (decoding then competes with
    /// training); with more cores, or slow storage, reading ahead can pay.
    public var prefetch = 0
    private let folders: ClassFolders
    /// The files of this part, as indices into `folders`, in this epoch's order.
    private var files: [Int]
    private let shuffle: Bool
    private var random: RandomGenerator
    private let decoder: ImageDecoder
    /// A batch tensor per batch size, decoded into in place once the caller has let go of it.
    private var buffers: [Int: Tensor] = [:]

    /// Indexes `directory` as `LabeledImages.fromDirectory` does (same arguments and defaults,
    /// and `batchSize`, 32 as in Keras); nothing is decoded until a batch is asked for.
    public convenience init(
        _ directory: String, batchSize: Int = 32, classNames: [String]? = nil, labelMode: LabelMode = .int,
        colorMode: ColorMode = .rgb, imageSize: (height: Int, width: Int) = (256, 256), shuffle: Bool = true,
        seed: UInt64? = nil, validationSplit: Double? = nil, subset: DatasetSubset? = nil,
        interpolation: Interpolation = .bilinear, followLinks: Bool = false, cropToAspectRatio: Bool = false,
        verbose: Bool = true
    ) throws {
        try ClassFolders.checkSplit(validationSplit, subset: subset, both: false, shuffle: shuffle, seed: seed,
                                    what: "image dataset")
        let folders = try LabeledImages.index(directory, classNames: classNames, labelMode: labelMode, shuffle: shuffle,
                                     seed: seed, followLinks: followLinks, verbose: verbose)
        let decoder = try ImageDecoder(directory: directory, colorMode: colorMode, imageSize: imageSize,
                                       interpolation: interpolation, cropToAspectRatio: cropToAspectRatio)
        try self.init(folders, folders.subsetRange(validationSplit, subset, verbose: verbose), batchSize: batchSize,
                      labelMode: labelMode, shuffle: shuffle, seed: seed, decoder: decoder, part: 0)
    }

    /// Both parts of a split directory, as `LabeledImages.trainingAndValidationFromDirectory`
    /// splits it (Keras `subset="both"`).
    public static func trainingAndValidation(
        _ directory: String, validationSplit: Double, batchSize: Int = 32, classNames: [String]? = nil,
        labelMode: LabelMode = .int, colorMode: ColorMode = .rgb, imageSize: (height: Int, width: Int) = (256, 256),
        shuffle: Bool = true, seed: UInt64? = nil, interpolation: Interpolation = .bilinear,
        followLinks: Bool = false, cropToAspectRatio: Bool = false, verbose: Bool = true
    ) throws -> (training: ImageFolderBatches, validation: ImageFolderBatches) {
        try ClassFolders.checkSplit(validationSplit, subset: nil, both: true, shuffle: shuffle, seed: seed,
                                    what: "image dataset")
        let folders = try LabeledImages.index(directory, classNames: classNames, labelMode: labelMode, shuffle: shuffle, seed: seed,
                                followLinks: followLinks, verbose: verbose)
        let parts = folders.bothRanges(validationSplit, verbose: verbose)
        func part(_ range: Range<Int>, _ k: UInt64) throws -> ImageFolderBatches {
            try ImageFolderBatches(folders, range, batchSize: batchSize, labelMode: labelMode, shuffle: shuffle, seed: seed,
                                   decoder: try ImageDecoder(directory: directory, colorMode: colorMode, imageSize: imageSize,
                                                             interpolation: interpolation,
                                                             cropToAspectRatio: cropToAspectRatio),
                                   part: k)
        }
        return (try part(parts.training, 0), try part(parts.validation, 1))
    }

    private init(_ folders: ClassFolders, _ range: Range<Int>, batchSize: Int, labelMode: LabelMode, shuffle: Bool,
                 seed: UInt64?, decoder: ImageDecoder, part: UInt64) throws {
        guard batchSize > 0 else {
            throw KestrelError.invalidArgument("image dataset: batchSize must be positive, found \(batchSize)")
        }
        self.folders = folders
        files = Array(range)
        classNames = folders.classNames
        self.batchSize = batchSize
        self.labelMode = labelMode
        self.shuffle = shuffle
        self.decoder = decoder
        random = RandomGenerator(seed: (seed ?? UInt64.random(in: 0..<1_000_000)) &+ 0x9E37_79B9_7F4A_7C15 &* (part + 1))
    }

    /// Images in this part.
    public var count: Int { files.count }

    /// The shape of one batch of `batchSize` images, `[batchSize, height, width, channels]`.
    public var batchShape: [Int] { [batchSize] + decoder.imageShape }

    public var batchCount: Int? { (files.count + batchSize - 1) / batchSize }

    /// The images (`[n, height, width, channels]`, values `0...255`) and labels of batch `index`.
    public func batch(_ index: Int) throws -> Batch {
        let picked = files[try batchRange(index, batchSize: batchSize, count: files.count, "image dataset")]
        let paths = picked.map { folders.paths[$0] }
        var images = buffers.removeValue(forKey: paths.count)
            ?? Tensor(shape: [paths.count] + decoder.imageShape,
                      scalars: [Float](repeating: 0, count: paths.count * decoder.imageCount))
        try images.scalars.withUnsafeMutableBufferPointer { 
            // A prefetching batch is decoded on fit's reading thread alone: borrowing Kestrel's
            // threads from there would make training's loops run serially meanwhile (and sum in
            // another order).
            try decoder.decode(paths, into: $0.baseAddress!, parallel: prefetch == 0)
        }
        buffers[paths.count] = images
        return Batch(images, folders.encodedLabels(labelMode, picked))
    }

    /// Reshuffles the files when `shuffle`, so the next epoch's batches hold other images.
    public func onEpochEnd() {
        guard shuffle else { return }
        files.withUnsafeMutableBufferPointer { random.shuffle($0) }
    }
}
