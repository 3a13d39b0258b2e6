import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// `LabeledTexts.fromDirectory` against Keras's `text_dataset_from_directory` rules: which
/// folders are classes, which files count and in what order, the label encodings, the split
/// and the argument checks.
final class LabeledTextsTests: TemporaryDirectoryTestCase {
    /// neg/ and pos/ with reviews, a nested folder, files that do not count, a hidden folder,
    /// a loose file and a folder linked into pos/.
    private func makeReviews() throws -> String {
        let root = try makeDirectory("reviews")
        func put(_ text: String, _ path: String) throws {
            let url = URL(fileURLWithPath: root + "/" + path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try put("Dull and slow.", "neg/b.txt")
        try put("Awful acting.", "neg/a.txt")
        try put("Boring. Boring!", "neg/deeper/c.TXT")
        try put("not a review", "neg/notes.md")
        try put("Great film, loved it.", "pos/2.txt")
        try put("Brilliant — and moving.", "pos/10.txt")
        try put("hidden", ".cache/x.txt")
        try put("loose", "readme.txt")
        try put("Superb!", "extra/s.txt")
        try FileManager.default.createSymbolicLink(atPath: root + "/pos/linked", withDestinationPath: root + "/extra")
        return root
    }

    func testClassesFilesOrderAndLabelsFollowKeras() throws {
        let root = try makeReviews()
        let all = try LabeledTexts.fromDirectory(root, shuffle: false, verbose: false)
        XCTAssertEqual(all.classNames, ["extra", "neg", "pos"])
        // Files by folder path, then name (Python's string order: "10" before "2"); the
        // linked folder is not followed; .md files and hidden folders are ignored.
        XCTAssertEqual(all.filePaths, ["extra/s.txt", "neg/a.txt", "neg/b.txt", "neg/deeper/c.TXT", "pos/10.txt", "pos/2.txt"])
        XCTAssertEqual(all.texts, ["Superb!", "Awful acting.", "Dull and slow.", "Boring. Boring!", "Brilliant — and moving.",
                                   "Great film, loved it."])
        XCTAssertEqual(all.labels, Tensor(labels: [0, 1, 1, 1, 2, 2]))

        let linked = try LabeledTexts.fromDirectory(root, classNames: ["pos", "neg"], labelMode: .binary, maxLength: 5,
                                                    shuffle: false, followLinks: true, verbose: false)
        XCTAssertEqual(linked.filePaths, ["pos/10.txt", "pos/2.txt", "pos/linked/s.txt", "neg/a.txt", "neg/b.txt", "neg/deeper/c.TXT"])
        XCTAssertEqual(linked.labels, Tensor(shape: [6, 1], scalars: [0, 0, 0, 1, 1, 1]))
        // maxLength counts bytes, as TensorFlow's substr does.
        XCTAssertEqual(linked.texts.map { $0.utf8.count }, [5, 5, 5, 5, 5, 5])
        XCTAssertEqual(linked.texts[3], "Awful")

        let categorical = try LabeledTexts.fromDirectory(root, labelMode: .categorical, shuffle: false, verbose: false)
        XCTAssertEqual(categorical.labels.shape, [6, 3])
        XCTAssertEqual(Array(categorical.labels.scalars[0..<6]), [1, 0, 0, 0, 1, 0])
    }

    func testShuffleAndSplitAreRepeatableAndDisjoint() throws {
        let root = try makeDirectory("many")
        for c in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: root + "/" + c, withIntermediateDirectories: true)
            for i in 0..<25 { try Data("\(c) \(i)".utf8).write(to: URL(fileURLWithPath: "\(root)/\(c)/\(i).txt")) }
        }
        let training = try LabeledTexts.fromDirectory(root, seed: 9, validationSplit: 0.2, subset: .training, verbose: false)
        let validation = try LabeledTexts.fromDirectory(root, seed: 9, validationSplit: 0.2, subset: .validation, verbose: false)
        XCTAssertEqual(training.count, 40)
        XCTAssertEqual(validation.count, 10)
        XCTAssertEqual(Set(training.texts).union(validation.texts).count, 50)
        let both = try LabeledTexts.trainingAndValidationFromDirectory(root, validationSplit: 0.2, seed: 9, verbose: false)
        XCTAssertEqual(both.training, training)
        XCTAssertEqual(both.validation, validation)
        // Shuffled, with each label still beside its text.
        XCTAssertNotEqual(training.texts, training.texts.sorted())
        for (text, label) in zip(training.texts, training.labels.scalars) { XCTAssertEqual(text.hasPrefix("a") ? 0 : 1, label) }
        let other = try LabeledTexts.fromDirectory(root, seed: 10, verbose: false)
        XCTAssertNotEqual(other.texts, try LabeledTexts.fromDirectory(root, seed: 9, verbose: false).texts)
    }

    func testArgumentErrors() throws {
        let root = try makeReviews()
        assertThrows(try LabeledTexts.fromDirectory(root, labelMode: .binary, verbose: false), ["labelMode .binary needs exactly 2 classes, found 3"])
        assertThrows(try LabeledTexts.fromDirectory(root, seed: 1, validationSplit: 0.2, verbose: false), ["validationSplit needs subset"])
        assertThrows(try LabeledTexts.fromDirectory(root, subset: .training, verbose: false), ["subset needs validationSplit"])
        assertThrows(try LabeledTexts.fromDirectory(root, validationSplit: 0.2, subset: .training, verbose: false), ["needs a seed"])
        assertThrows(try LabeledTexts.fromDirectory(root, seed: 1, validationSplit: 1.5, subset: .training, verbose: false),
                     ["validationSplit must be between 0 and 1, found 1.5"])
        assertThrows(try LabeledTexts.fromDirectory(root, classNames: ["pos", "cats"], verbose: false), ["classNames must name subdirectories"])
        assertThrows(try LabeledTexts.fromDirectory(root + "/missing", verbose: false), ["is not a directory"])
    }


    /// Keras's text-classification tutorial in Swift: a directory of reviews → texts →
    /// TextVectorization → Embedding → pooling → Dense, trained on one split, judged on the other.
    func testTutorialPipelineLearnsFromAReviewDirectory() throws {
        let root = try makeDirectory("imdb-like")
        let words = ["neg": ["awful", "boring", "dull", "weak"], "pos": ["great", "superb", "moving", "loved"]]
        let filler = ["the", "film", "was", "and", "story", "a", "with", "plot"]
        var generator = RandomGenerator(seed: 4)
        for label in ["neg", "pos"] {
            let cues = words[label]!
            try FileManager.default.createDirectory(atPath: root + "/" + label, withIntermediateDirectories: true)
            for i in 0..<150 {
                let text = (0..<10).map { j in j % 3 == 0 ? cues.randomElement(using: &generator)! : filler.randomElement(using: &generator)! }
                try Data((text.joined(separator: " ").capitalized + ".<br />").utf8).write(to: URL(fileURLWithPath: "\(root)/\(label)/\(i)_7.txt"))
            }
        }
        let (training, validation) = try LabeledTexts.trainingAndValidationFromDirectory(
            root, validationSplit: 0.2, labelMode: .binary, seed: 42, verbose: false)
        let vectorize = try TextVectorization(maxTokens: 100, outputSequenceLength: 12)
        try vectorize.adapt(training.texts)
        Kestrel.setRandomSeed(1)   // initial weights independent of the tests run before
        let model = Sequential {
            Embedding(inputDim: 100, outputDim: 8)
            GlobalAveragePooling1D()
            Dense(1, activation: .sigmoid)
        }
        model.compile(optimizer: Adam(learningRate: 0.01), loss: BinaryCrossentropy(), metrics: [.accuracy])
        try model.fit(try vectorize(training.texts), training.labels, epochs: 12, verbose: 0, seed: 1)
        let scores = try model.evaluate(try vectorize(validation.texts), validation.labels, verbose: 0)
        XCTAssertGreaterThan(scores["accuracy"]!, 0.95)
    }
}
