import Foundation
import Kestrel

/// Sound clips and their labels, read from a directory with one subdirectory of `.wav` files
/// per class (Keras `audio_dataset_from_directory`), e.g. the speech-commands folders of
/// Keras's audio tutorials. `audio` is `[count, length, channels]`, samples in [-1, 1).
public struct LabeledAudio: Sendable, Equatable {
    /// The clips, zero-padded or truncated to one length.
    public var audio: Tensor
    /// The labels, encoded as `labelMode` says.
    public var labels: Tensor
    /// The class of each label index: the subdirectories' names.
    public var classNames: [String]
    /// Each clip's file, relative to the directory read.
    public var filePaths: [String]
    /// Each clip's sampling rate in samples per second, as its file states.
    public var sampleRates: [Int]

    /// The number of clips.
    public var count: Int { audio.shape.first ?? 0 }

    /// Reads the `.wav` files under each class subdirectory of `directory` (Keras
    /// `audio_dataset_from_directory`, with its defaults and checks).
    ///
    /// Classes and files are found as by `LabeledTexts.fromDirectory`. Files are decoded as
    /// TensorFlow's `decode_wav` decodes them: 16-bit PCM, each sample over 32768. With
    /// `outputSequenceLength` every clip is zero-padded or truncated to that many samples;
    /// without it, to the longest clip (Keras pads each batch to its longest). All clips must
    /// have the same number of channels. Kestrel does not resample (Keras's `sampling_rate`
    /// needs tensorflow-io); `sampleRates` tells what each file holds.
    public static func fromDirectory(
        _ directory: String, classNames: [String]? = nil, labelMode: LabelMode = .int,
        outputSequenceLength: Int? = nil, shuffle: Bool = true, seed: UInt64? = nil, validationSplit: Double? = nil,
        subset: DatasetSubset? = nil, followLinks: Bool = false, verbose: Bool = true
    ) throws -> LabeledAudio {
        try ClassFolders.checkSplit(validationSplit, subset: subset, both: false, shuffle: shuffle, seed: seed,
                                    what: "audio dataset")
        let all = try read(directory, classNames: classNames, labelMode: labelMode, shuffle: shuffle, seed: seed,
                           followLinks: followLinks, verbose: verbose)
        return try assemble(all, all.folders.subsetRange(validationSplit, subset, verbose: verbose), labelMode: labelMode,
                            outputSequenceLength: outputSequenceLength)
    }

    /// Reads a directory as `fromDirectory` does and returns both parts of the split (Keras
    /// `subset="both"`).
    public static func trainingAndValidationFromDirectory(
        _ directory: String, validationSplit: Double, classNames: [String]? = nil, labelMode: LabelMode = .int,
        outputSequenceLength: Int? = nil, shuffle: Bool = true, seed: UInt64? = nil, followLinks: Bool = false,
        verbose: Bool = true
    ) throws -> (training: LabeledAudio, validation: LabeledAudio) {
        try ClassFolders.checkSplit(validationSplit, subset: nil, both: true, shuffle: shuffle, seed: seed,
                                    what: "audio dataset")
        let all = try read(directory, classNames: classNames, labelMode: labelMode, shuffle: shuffle, seed: seed,
                           followLinks: followLinks, verbose: verbose)
        let parts = all.folders.bothRanges(validationSplit, verbose: verbose)
        return (try assemble(all, parts.training, labelMode: labelMode, outputSequenceLength: outputSequenceLength),
                try assemble(all, parts.validation, labelMode: labelMode, outputSequenceLength: outputSequenceLength))
    }

    /// The indexed folders with every clip decoded.
    private struct Decoded {
        var folders: ClassFolders
        var clips: [WAV]
    }

    private static func read(_ directory: String, classNames: [String]?, labelMode: LabelMode, shuffle: Bool,
                             seed: UInt64?, followLinks: Bool, verbose: Bool) throws -> Decoded {
        let folders = try ClassFolders(directory: directory, classNames: classNames, extensions: [".wav"],
                                       labelMode: labelMode, shuffle: shuffle, seed: seed, followLinks: followLinks,
                                       what: "audio dataset")
        if verbose { print("Found \(folders.paths.count) files belonging to \(folders.classNames.count) classes.") }
        guard !folders.paths.isEmpty else {
            throw KestrelError.fileError("audio dataset: no .wav files found in \(directory)")
        }
        let root = URL(fileURLWithPath: directory)
        let clips = try folders.paths.map { relative -> WAV in
            let path = root.appendingPathComponent(relative).path
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KestrelError.fileError("audio dataset: cannot read \(path)")
            }
            return try WAV(data, name: path)
        }
        if let other = clips.firstIndex(where: { $0.channels != clips[0].channels }) {
            throw KestrelError.shapeMismatch(
                "audio dataset: \(folders.paths[other]) has \(clips[other].channels) channels, \(folders.paths[0]) has \(clips[0].channels); all clips must have the same")
        }
        return Decoded(folders: folders, clips: clips)
    }

    private static func assemble(_ all: Decoded, _ range: Range<Int>, labelMode: LabelMode,
                                 outputSequenceLength: Int?) throws -> LabeledAudio {
        if let outputSequenceLength, outputSequenceLength <= 0 {
            throw KestrelError.invalidArgument("audio dataset: outputSequenceLength must be positive, found \(outputSequenceLength)")
        }
        let clips = Array(all.clips[range]), channels = all.clips[0].channels
        let length = outputSequenceLength ?? clips.map(\.frames).max() ?? 0
        var samples = [Float](repeating: 0, count: clips.count * length * channels)
        for (i, clip) in clips.enumerated() {
            let kept = min(clip.frames, length) * channels
            for j in 0..<kept { samples[i * length * channels + j] = clip.samples[j] }
        }
        return LabeledAudio(audio: Tensor(shape: [clips.count, length, channels], scalars: samples),
                            labels: all.folders.encodedLabels(labelMode, range), classNames: all.folders.classNames,
                            filePaths: Array(all.folders.paths[range]), sampleRates: clips.map(\.sampleRate))
    }
}

/// A 16-bit PCM WAV file, decoded as TensorFlow's `decode_wav` decodes it.
struct WAV {
    var channels: Int, sampleRate: Int
    /// Interleaved samples, each over 32768.
    var samples: [Float]
    var frames: Int { channels > 0 ? samples.count / channels : 0 }

    init(_ data: Data, name: String) throws {
        let bytes = [UInt8](data)
        func fail(_ message: String) -> KestrelError { KestrelError.fileError("wav: \(name): \(message)") }
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        guard bytes.count >= 12, Array(bytes[0..<4]) == Array("RIFF".utf8), Array(bytes[8..<12]) == Array("WAVE".utf8) else {
            throw fail("not a WAV file (no RIFF/WAVE header)")
        }
        var at = 12, format: (channels: Int, rate: Int, bits: Int)?, samples: [Float]?
        while at + 8 <= bytes.count {
            let id = String(decoding: bytes[at..<(at + 4)], as: UTF8.self), size = u32(at + 4)
            let body = at + 8
            guard body + size <= bytes.count else { throw fail("chunk '\(id)' runs past the end of the file") }
            if id == "fmt " {
                guard size >= 16 else { throw fail("the fmt chunk is too short") }
                let tag = u16(body)
                guard tag == 1 || tag == 0xFFFE else { throw fail("format \(tag) is not PCM (Kestrel reads 16-bit PCM, as TensorFlow does)") }
                format = (u16(body + 2), u32(body + 4), u16(body + 14))
            } else if id == "data" {
                guard let format else { throw fail("the data chunk comes before the fmt chunk") }
                guard format.bits == 16 else { throw fail("\(format.bits)-bit samples (Kestrel reads 16-bit PCM, as TensorFlow does)") }
                guard format.channels > 0 else { throw fail("no channels") }
                let count = size / 2 / format.channels * format.channels
                samples = (0..<count).map { Float(Int16(bitPattern: UInt16(u16(body + 2 * $0)))) / 32768 }
            }
            at = body + size + (size & 1)
        }
        guard let format, let samples else { throw fail("no fmt or data chunk") }
        channels = format.channels
        sampleRate = format.rate
        self.samples = samples
    }
}
