import CKestrelImage
import Foundation
import Kestrel

/// The channels images are read with (Keras `color_mode`).
public enum ColorMode: String, Sendable, CaseIterable {
    /// One channel (colour files converted with TensorFlow's weights).
    case grayscale
    /// Red, green, blue (gray files repeated, alpha dropped).
    case rgb
    /// Red, green, blue, alpha (255 where the file has none).
    case rgba

    var channels: Int {
        switch self {
        case .grayscale: return 1
        case .rgb: return 3
        case .rgba: return 4
        }
    }
}

extension LabeledImages {
    /// The extensions Keras indexes (`ALLOWLIST_FORMATS`); Kestrel decodes the PNG and JPEG ones
    /// and names any other file it meets.
    static let imageExtensions = [".bmp", ".gif", ".jpeg", ".jpg", ".png"]

    /// Reads the images under each class subdirectory of `directory` (Keras
    /// `image_dataset_from_directory`, with its defaults and checks), e.g. a `flower_photos`
    /// folder of `daisy/`, `roses/`, … `images` are `[count, height, width, channels]`, values
    /// `0...255` as Keras gives them (a `Rescaling(1/255)` layer or `/ 255` scales them).
    ///
    /// Classes and files are found as by `LabeledTexts.fromDirectory` (extensions `.png`,
    /// `.jpg`, `.jpeg`, and `.bmp`/`.gif`, which Kestrel reports as unsupported). Each image is
    /// decoded as TensorFlow decodes it and resized to `imageSize` with `interpolation`
    /// (`tf.image.resize`, no antialiasing), after cropping Keras's centred window of the
    /// target's aspect ratio with `cropToAspectRatio`. Files are read on Kestrel's threads;
    /// the whole dataset is held in memory (4 bytes per value).
    public static func fromDirectory(
        _ directory: String, classNames: [String]? = nil, labelMode: LabelMode = .int, colorMode: ColorMode = .rgb,
        imageSize: (height: Int, width: Int) = (256, 256), shuffle: Bool = true, seed: UInt64? = nil,
        validationSplit: Double? = nil, subset: DatasetSubset? = nil, interpolation: Interpolation = .bilinear,
        followLinks: Bool = false, cropToAspectRatio: Bool = false, verbose: Bool = true
    ) throws -> LabeledImages {
        try ClassFolders.checkSplit(validationSplit, subset: subset, both: false, shuffle: shuffle, seed: seed,
                                    what: "image dataset")
        let folders = try index(directory, classNames: classNames, labelMode: labelMode, shuffle: shuffle, seed: seed,
                                followLinks: followLinks, verbose: verbose)
        return try read(directory, folders, folders.subsetRange(validationSplit, subset, verbose: verbose), labelMode: labelMode, colorMode: colorMode, imageSize: imageSize,
                        interpolation: interpolation, cropToAspectRatio: cropToAspectRatio)
    }

    /// Reads a directory as `fromDirectory` does and returns both parts of the split (Keras
    /// `subset="both"`).
    public static func trainingAndValidationFromDirectory(
        _ directory: String, validationSplit: Double, classNames: [String]? = nil, labelMode: LabelMode = .int,
        colorMode: ColorMode = .rgb, imageSize: (height: Int, width: Int) = (256, 256), shuffle: Bool = true,
        seed: UInt64? = nil, interpolation: Interpolation = .bilinear, followLinks: Bool = false,
        cropToAspectRatio: Bool = false, verbose: Bool = true
    ) throws -> (training: LabeledImages, validation: LabeledImages) {
        try ClassFolders.checkSplit(validationSplit, subset: nil, both: true, shuffle: shuffle, seed: seed,
                                    what: "image dataset")
        let folders = try index(directory, classNames: classNames, labelMode: labelMode, shuffle: shuffle, seed: seed,
                                followLinks: followLinks, verbose: verbose)
        let parts = folders.bothRanges(validationSplit, verbose: verbose)
        func part(_ range: Range<Int>) throws -> LabeledImages {
            try read(directory, folders, range, labelMode: labelMode, colorMode: colorMode, imageSize: imageSize,
                     interpolation: interpolation, cropToAspectRatio: cropToAspectRatio)
        }
        return (try part(parts.training), try part(parts.validation))
    }

    /// Indexes an image folder, saying what was found as Keras does.
    static func index(_ directory: String, classNames: [String]?, labelMode: LabelMode, shuffle: Bool,
                              seed: UInt64?, followLinks: Bool, verbose: Bool) throws -> ClassFolders {
        let folders = try ClassFolders(directory: directory, classNames: classNames, extensions: imageExtensions,
                                       labelMode: labelMode, shuffle: shuffle, seed: seed, followLinks: followLinks,
                                       what: "image dataset")
        if verbose { print("Found \(folders.paths.count) files belonging to \(folders.classNames.count) classes.") }
        return folders
    }

    /// Decodes and resizes the files `range` of `folders` into one tensor.
    private static func read(_ directory: String, _ folders: ClassFolders, _ range: Range<Int>, labelMode: LabelMode,
                             colorMode: ColorMode, imageSize: (height: Int, width: Int), interpolation: Interpolation,
                             cropToAspectRatio: Bool) throws -> LabeledImages {
        let decoder = try ImageDecoder(directory: directory, colorMode: colorMode, imageSize: imageSize,
                                       interpolation: interpolation, cropToAspectRatio: cropToAspectRatio)
        let paths = Array(folders.paths[range])
        // Every value is written by a decode, so the buffer starts uninitialised.
        var pixels = [Float](unsafeUninitializedCapacity: paths.count * decoder.imageCount) { _, count in
            count = paths.count * decoder.imageCount
        }
        try pixels.withUnsafeMutableBufferPointer { try decoder.decode(paths, into: $0.baseAddress!) }
        return LabeledImages(checkedImages: Tensor(shape: [paths.count] + decoder.imageShape, scalars: pixels),
                             labels: folders.encodedLabels(labelMode, range), classNames: folders.classNames)
    }
}

/// Decodes image files as TensorFlow does and resizes them into a float buffer, a share of the
/// files per Kestrel thread, each thread reusing its buffers from file to file and call to call.
final class ImageDecoder {
    let root: URL
    let colorMode: ColorMode
    let imageSize: (height: Int, width: Int)
    let interpolation: Interpolation
    let cropToAspectRatio: Bool
    private let parts = Parallel.scratchSlots
    /// Per thread: the decoded image's bytes, and as floats.
    private let images: UnsafeMutablePointer<kestrel_image>
    private let scratch: UnsafeMutablePointer<[Float]>

    init(directory: String, colorMode: ColorMode, imageSize: (height: Int, width: Int), interpolation: Interpolation,
         cropToAspectRatio: Bool) throws {
        guard imageSize.height > 0, imageSize.width > 0 else {
            throw KestrelError.invalidArgument("image dataset: imageSize must be positive, found \(imageSize)")
        }
        root = URL(fileURLWithPath: directory)
        self.colorMode = colorMode
        self.imageSize = imageSize
        self.interpolation = interpolation
        self.cropToAspectRatio = cropToAspectRatio
        images = .allocate(capacity: parts)
        images.initialize(repeating: kestrel_image(), count: parts)
        scratch = .allocate(capacity: parts)
        scratch.initialize(repeating: [], count: parts)
    }

    deinit {
        for p in 0..<parts { kestrel_image_free(images + p) }
        images.deallocate()
        scratch.deinitialize(count: parts)
        scratch.deallocate()
    }

    /// One image's shape, `[height, width, channels]`.
    var imageShape: [Int] { [imageSize.height, imageSize.width, colorMode.channels] }
    /// Values per image.
    var imageCount: Int { imageSize.height * imageSize.width * colorMode.channels }

    /// Decodes `paths` (relative to the directory) into `out`, one image after another; on
    /// Kestrel's threads when `parallel`, else on the caller's alone.
    func decode(_ paths: [String], into out: UnsafeMutablePointer<Float>, parallel: Bool = true) throws {
        let used = parallel && paths.count >= 8 ? parts : 1, size = imageCount
        var errors = [Error?](repeating: nil, count: used)
        errors.withUnsafeMutableBufferPointer { errors in
            Parallel.forEach(parts: used) { part in
                do {
                    for i in (part * paths.count / used)..<((part + 1) * paths.count / used) {
                        try decodeFile(root.appendingPathComponent(paths[i]).path, into: out + i * size,
                                       image: &images[part], scratch: &scratch[part])
                    }
                } catch { errors[part] = error }
            }
        }
        if let error = errors.lazy.compactMap({ $0 }).first { throw error }
    }

    /// Decodes one file and writes it, resized, at `y`; `image` and `scratch` hold the decoded
    /// image's bytes and floats.
    private func decodeFile(_ path: String, into y: UnsafeMutablePointer<Float>, image: inout kestrel_image,
                            scratch: inout [Float]) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KestrelError.fileError("image dataset: cannot read \(path)")
        }
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBytes { bytes in
            kestrel_image_decode(bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count,
                                 colorMode == .grayscale ? 1 : 0, &image, &message, message.count)
        }
        guard status == 0 else {
            let text = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KestrelError.fileError("image dataset: \(path): \(text)")
        }
        // The decoder gives 1 (gray), 3 (JPEG) or 4 (PNG) channels; keep or fill to the mode's.
        let rows = Int(image.height), columns = Int(image.width), have = Int(image.channels), want = colorMode.channels
        let count = rows * columns * want
        if scratch.count < count { scratch = [Float](repeating: 0, count: count) }
        let source = image.pixels!
        scratch.withUnsafeMutableBufferPointer { buffer in
            let pixels = buffer.baseAddress!
            if have == want {
                for i in 0..<count { pixels[i] = Float(source[i]) }
            } else {
                let kept = min(have, want)
                for p in 0..<(rows * columns) {
                    for k in 0..<kept { pixels[p * want + k] = Float(source[p * have + k]) }
                    for k in kept..<want { pixels[p * want + k] = 255 }
                }
            }
            resizeImage(pixels, rows: rows, columns: columns, channels: want, into: y,
                        height: imageSize.height, width: imageSize.width, interpolation: interpolation,
                        cropToAspectRatio: cropToAspectRatio)
        }
    }
}
