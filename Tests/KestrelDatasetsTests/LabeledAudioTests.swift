import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// `LabeledAudio.fromDirectory` against Keras 3's `audio_dataset_from_directory` on WAV files
/// TensorFlow wrote (Fixtures/audio, Fixtures/audio_stereo; Fixtures/audio_dataset.json from
/// make_audio_fixtures.py): padding to the longest clip or to a length, truncation, label
/// modes, two channels.
final class LabeledAudioTests: TemporaryDirectoryTestCase {
    func testMatchesKeras() throws {
        let url = URL(fileURLWithPath: fixturePath("audio_dataset.json"))
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [[String: Any]]
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let config = c["config"] as! [String: Any]
            let clips = try LabeledAudio.fromDirectory(
                fixturePath(c["folder"] as! String), labelMode: LabelMode(rawValue: config["label_mode"] as? String ?? "int")!,
                outputSequenceLength: config["output_sequence_length"] as? Int, shuffle: false, verbose: false)
            XCTAssertEqual(clips.classNames, c["class_names"] as! [String])
            for (key, got) in [("audio", clips.audio), ("labels", clips.labels)] {
                let expected = c[key] as! [String: Any]
                XCTAssertEqual(got.shape, expected["shape"] as! [Int], "\(config) \(key)")
                XCTAssertEqual(got.scalars, (expected["values"] as! [NSNumber]).map(\.floatValue), "\(config) \(key)")
            }
            XCTAssertEqual(Set(clips.sampleRates), [16000])
        }
    }

    func testSplitAndErrors() throws {
        let (training, validation) = try LabeledAudio.trainingAndValidationFromDirectory(
            fixturePath("audio"), validationSplit: 0.4, seed: 5, verbose: false)
        XCTAssertEqual(training.count, 3)
        XCTAssertEqual(validation.count, 2)
        XCTAssertEqual(Set(training.filePaths + validation.filePaths).count, 5)

        let root = try makeDirectory("mixed")
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        for (name, file) in [("mono.wav", "audio/down/0.wav"), ("stereo.wav", "audio_stereo/left/0.wav")] {
            try FileManager.default.copyItem(atPath: fixturePath(file), toPath: root + "/a/" + name)
        }
        assertThrows(try LabeledAudio.fromDirectory(root, shuffle: false, verbose: false),
                     ["a/stereo.wav has 2 channels, a/mono.wav has 1; all clips must have the same"])
        try FileManager.default.removeItem(atPath: root + "/a/stereo.wav")
        try Data("RIFF....WAVEjunk".utf8).write(to: URL(fileURLWithPath: root + "/a/bad.wav"))
        assertThrows(try LabeledAudio.fromDirectory(root, verbose: false), ["a/bad.wav", "no fmt or data chunk"])
        // 8-bit PCM: the fmt chunk of the mono file with 8 bits per sample.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixturePath("audio/down/0.wav"))))
        bytes[34] = 8
        try Data(bytes).write(to: URL(fileURLWithPath: root + "/a/bad.wav"))
        assertThrows(try LabeledAudio.fromDirectory(root, verbose: false), ["8-bit samples"])
        let empty = try makeDirectory("empty/a")
        assertThrows(try LabeledAudio.fromDirectory(empty + "/..", verbose: false), ["no .wav files found"])
        assertThrows(try LabeledAudio.fromDirectory(fixturePath("audio"), outputSequenceLength: 0, verbose: false),
                     ["outputSequenceLength must be positive"])
    }
}
