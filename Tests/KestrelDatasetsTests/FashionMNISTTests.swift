import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// Finding and loading whole datasets: the committed subset, the search order, and damaged
/// or incomplete directories.
final class FashionMNISTTests: TemporaryDirectoryTestCase {
    /// A dataset whose search touches only the given places, so tests do not depend on what
    /// this machine has installed or on the caller's environment.
    func isolatedDataset(system: [String], subset: [String]) -> IDXDataset {
        IDXDataset(name: "Fashion-MNIST", classNames: FashionMNIST.classNames,
                   environmentVariable: "KESTREL_TEST_DATA", systemDirectories: system,
                   subsetDirectories: subset, fullCounts: (training: 60_000, test: 10_000),
                   installHint: "sudo apt-get install dataset-fashion-mnist")
    }

    func testClassNames() {
        XCTAssertEqual(FashionMNIST.classNames.count, 10)
        XCTAssertEqual(FashionMNIST.classNames.first, "T-shirt/top")
        XCTAssertEqual(FashionMNIST.classNames.last, "Ankle boot")
        XCTAssertEqual(MNIST.classNames, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
    }

    func testCommittedSubsetLoadsWithExpectedShapesAndLabels() throws {
        let location = try FashionMNIST.locate(path: Repository.subsetDirectory)
        XCTAssertEqual(location.source, .argument)
        XCTAssertTrue(location.isSubset)
        XCTAssertEqual(location.trainingCount, 2000)
        XCTAssertEqual(location.testCount, 1000)
        XCTAssertTrue(location.description.contains("Fashion-MNIST subset: 2000 training and 1000 test images"))
        XCTAssertTrue(location.description.contains("apt-get install dataset-fashion-mnist"))

        let (train, test) = try FashionMNIST.load(from: location)
        XCTAssertEqual(train.images.shape, [2000, 28, 28])
        XCTAssertEqual(train.labels.shape, [2000])
        XCTAssertEqual(test.images.shape, [1000, 28, 28])
        XCTAssertEqual(test.labels.shape, [1000])
        for split in [train, test] {
            XCTAssertTrue(split.labels.scalars.allSatisfy { (0...9).contains($0) && $0 == $0.rounded() })
            XCTAssertEqual(split.images.scalars.min(), 0)
            XCTAssertEqual(split.images.scalars.max(), 255)
            // Every class is present in reasonable numbers (see Datasets/README.md).
            XCTAssertTrue(split.classCounts(classCount: 10).allSatisfy { $0 >= split.count / 20 },
                          "\(split.classCounts(classCount: 10))")
        }
        // The subset is the first samples of Fashion-MNIST, whose first training label is 9
        // (Ankle boot) and first test label is 9 as well.
        XCTAssertEqual(train.labels.scalars.first, 9)
        XCTAssertEqual(test.labels.scalars.first, 9)

        let (again, _) = try FashionMNIST.load(path: Repository.subsetDirectory)
        XCTAssertEqual(again, train)
    }

    func testCommittedSubsetMatchesItsSHA256SUMS() throws {
        let sums = try String(contentsOfFile: Repository.subsetDirectory + "/SHA256SUMS", encoding: .utf8)
        var listed: [String: String] = [:]
        for line in sums.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            XCTAssertEqual(fields.count, 2, "malformed SHA256SUMS line: \(line)")
            if fields.count == 2 { listed[String(fields[1])] = String(fields[0]) }
        }
        XCTAssertEqual(Set(listed.keys), Set(IDXDataset.fileNames.map { $0 + ".gz" }))
        for (name, expected) in listed {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Repository.subsetDirectory + "/" + name)))
            XCTAssertEqual(sha256Hex(bytes), expected, name)
        }
    }

    func testPlainFilesLoadIdenticallyToGzip() throws {
        let directory = try makeDirectory("plain")
        try writePlainSubset(in: directory)
        let location = try FashionMNIST.locate(path: directory)
        XCTAssertEqual(location.files.trainImages, directory + "/train-images-idx3-ubyte")
        let plain = try FashionMNIST.load(from: location)
        let gzipped = try FashionMNIST.load(path: Repository.subsetDirectory)
        XCTAssertEqual(plain.train, gzipped.train)
        XCTAssertEqual(plain.test, gzipped.test)
    }

    func testExplicitMissingDirectoryFailsListingTheExpectedFiles() {
        let missing = temporaryDirectory + "/no-such-dir"
        assertFileError(try FashionMNIST.load(path: missing), contains: [
            missing, "no such directory", "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "sudo apt-get install dataset-fashion-mnist",
            "scripts/setup.sh",
        ])
        assertFileError(try MNIST.locate(path: missing), contains: ["MNIST", missing, "yann.lecun.com"])
    }

    func testExplicitIncompleteDirectoryFailsInsteadOfFallingBack() throws {
        let directory = try makeDirectory("incomplete")
        try writePlainSubset(in: directory)
        try FileManager.default.removeItem(atPath: directory + "/t10k-labels-idx1-ubyte")
        assertFileError(try FashionMNIST.locate(path: directory),
                        contains: [directory, "missing t10k-labels-idx1-ubyte(.gz)"])
    }

    func testSearchFailureListsEveryPlaceLookedAt() throws {
        let system = temporaryDirectory + "/system"
        let subset = try makeDirectory("subset-without-files")
        let dataset = isolatedDataset(system: [system], subset: [subset])
        assertFileError(try dataset.locate(environment: [:]), contains: [
            "Fashion-MNIST not found",
            "$KESTREL_TEST_DATA: not set",
            "\(system): no such directory",
            "\(subset): missing train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), "
                + "t10k-images-idx3-ubyte(.gz), t10k-labels-idx1-ubyte(.gz)",
            "sudo apt-get install dataset-fashion-mnist",
            "set KESTREL_TEST_DATA",
        ])
    }

    func testSearchOrder() throws {
        let plain = try makeDirectory("plain")
        try writePlainSubset(in: plain)
        let absent = temporaryDirectory + "/absent"
        // The system directory beats the subset…
        let both = try isolatedDataset(system: [plain], subset: [Repository.subsetDirectory]).locate(environment: [:])
        XCTAssertEqual(both.source, .systemDirectory)
        XCTAssertEqual(both.directory, plain)
        // …the environment variable beats both, and an unusable one is an error, not a fallback…
        let viaEnvironment = try isolatedDataset(system: [plain], subset: [])
            .locate(environment: ["KESTREL_TEST_DATA": Repository.subsetDirectory])
        XCTAssertEqual(viaEnvironment.source, .environmentVariable("KESTREL_TEST_DATA"))
        assertFileError(try isolatedDataset(system: [plain], subset: [])
                            .locate(environment: ["KESTREL_TEST_DATA": absent]),
                        contains: ["$KESTREL_TEST_DATA", absent, "no such directory"])
        // …and the subset is the last resort, with the skipped places recorded.
        let fallback = try isolatedDataset(system: [absent], subset: [Repository.subsetDirectory])
            .locate(environment: [:])
        XCTAssertEqual(fallback.source, .subsetDirectory)
        XCTAssertTrue(fallback.isSubset)
        XCTAssertEqual(fallback.skipped, ["$KESTREL_TEST_DATA: not set", "\(absent): no such directory"])
    }

    func testBuiltInSearchFindsTheCommittedSubsetFromTheSourceTree() throws {
        // Uses FashionMNIST's own subset candidates (derived from #filePath in the library).
        let dataset = FashionMNIST.dataset
        let subsetOnly = IDXDataset(name: dataset.name, classNames: dataset.classNames,
                                    environmentVariable: nil, systemDirectories: [],
                                    subsetDirectories: dataset.subsetDirectories,
                                    fullCounts: dataset.fullCounts, installHint: dataset.installHint)
        let location = try subsetOnly.locate()
        XCTAssertEqual(location.source, .subsetDirectory)
        XCTAssertTrue(FileManager.default.contentsEqual(atPath: location.files.trainLabels,
                                                        andPath: Repository.subsetDirectory + "/train-labels-idx1-ubyte.gz"))
        // The default search always succeeds in a checkout, whatever else is installed.
        XCTAssertNoThrow(try FashionMNIST.locate())
    }

    func testTruncatedFileInADatasetNamesTheFile() throws {
        let directory = try makeDirectory("truncated")
        let images = Self.subsetFiles[0].encoded()
        try writePlainSubset(in: directory, replacing: ["train-images-idx3-ubyte": Array(images[..<5000])])
        assertFileError(try FashionMNIST.load(path: directory), contains: [
            directory + "/train-images-idx3-ubyte",
            "truncated: header declares 2000×28×28 = 1568000 bytes of data, found 4984",
        ])
    }

    func testSwappedFilesAreReportedAsWrongMagic() throws {
        let directory = try makeDirectory("swapped")
        try writePlainSubset(in: directory, replacing: ["t10k-images-idx3-ubyte": Self.subsetFiles[3].encoded()])
        assertFileError(try FashionMNIST.load(path: directory), contains: [
            directory + "/t10k-images-idx3-ubyte", "expected magic 0x00000803", "found 0x00000801",
        ])
    }

    func testLabelCountDifferentFromImageCountIsReported() throws {
        let directory = try makeDirectory("mismatch")
        let labels = try IDXFile(dimensions: [1999], bytes: Array(Self.subsetFiles[1].bytes.dropLast()))
        try writePlainSubset(in: directory, replacing: ["train-labels-idx1-ubyte": labels.encoded()])
        assertFileError(try FashionMNIST.load(path: directory), contains: [
            directory + "/train-labels-idx1-ubyte", "expected one label per image", "(2000)", "found 1999 labels",
        ])
    }

    func testGarbageGzipInADatasetNamesTheFile() throws {
        let directory = try makeDirectory("garbage")
        try writePlainSubset(in: directory)
        try FileManager.default.removeItem(atPath: directory + "/train-labels-idx1-ubyte")
        let path = try write([0x1f, 0x8b, 8, 0] + [UInt8](repeating: 0xFF, count: 64),
                             to: directory + "/train-labels-idx1-ubyte.gz")
        // The label header is read while locating, so the damage is reported that early.
        assertFileError(try FashionMNIST.locate(path: directory), contains: [path, "gzip"])
    }

    func testLabelsOutsideTheClassRangeAndWrongImageSizesAreReported() throws {
        let directory = try makeDirectory("bad-values")
        var labelBytes = Self.subsetFiles[3].bytes
        labelBytes[17] = 10
        try writePlainSubset(in: directory, replacing: [
            "t10k-labels-idx1-ubyte": try IDXFile(dimensions: [1000], bytes: labelBytes).encoded(),
        ])
        assertFileError(try FashionMNIST.load(path: directory), contains: [
            directory + "/t10k-labels-idx1-ubyte", "expected class indices 0...9", "found 10 at index 17",
        ])

        let reshaped = try IDXFile(dimensions: [2000, 14, 56], bytes: Self.subsetFiles[0].bytes)
        try writePlainSubset(in: directory, replacing: ["train-images-idx3-ubyte": reshaped.encoded()])
        assertFileError(try FashionMNIST.load(path: directory), contains: [
            directory + "/train-images-idx3-ubyte", "expected Fashion-MNIST images of 28×28 pixels, found 14×56",
        ])
    }

    func testLabeledImagesChecksPairingAndSlices() throws {
        XCTAssertThrowsError(try LabeledImages(images: .zeros([3, 2, 2]), labels: .zeros([2])))
        let split = try LabeledImages(images: Tensor(shape: [3, 1, 1], scalars: [0, 1, 2]),
                                      labels: Tensor(labels: [2, 0, 2]))
        XCTAssertEqual(split.count, 3)
        XCTAssertEqual(split.classCounts(classCount: 3), [1, 0, 2])
        XCTAssertEqual(split[1..<3].images.scalars, [1, 2])
        XCTAssertEqual(split[1..<3].labels.scalars, [0, 2])
    }

    func testFullDebianDatasetLoadsWhenInstalled() throws {
        let directory = FashionMNIST.systemDirectory
        guard FileManager.default.fileExists(atPath: directory) else {
            throw XCTSkip("\(directory) is absent; install it with `sudo apt-get install dataset-fashion-mnist` "
                          + "to test loading the full 60000/10000-sample dataset")
        }
        let location = try FashionMNIST.locate(path: directory)
        XCTAssertFalse(location.isSubset)
        XCTAssertEqual(location.trainingCount, 60_000)
        XCTAssertEqual(location.testCount, 10_000)
        XCTAssertEqual(location.description,
                       "Fashion-MNIST: 60000 training and 10000 test images from \(directory) (the `path` argument)")
        let (train, test) = try FashionMNIST.load(from: location)
        XCTAssertEqual(train.images.shape, [60_000, 28, 28])
        XCTAssertEqual(test.images.shape, [10_000, 28, 28])
        // Fashion-MNIST is exactly balanced: 6000 training and 1000 test images per class.
        XCTAssertEqual(train.classCounts(classCount: 10), [Int](repeating: 6000, count: 10))
        XCTAssertEqual(test.classCounts(classCount: 10), [Int](repeating: 1000, count: 10))
        // The committed subset is the prefix of the full dataset.
        let subset = try FashionMNIST.load(path: Repository.subsetDirectory)
        XCTAssertEqual(train[0..<2000], subset.train)
        XCTAssertEqual(test[0..<1000], subset.test)

        if ProcessInfo.processInfo.environment[FashionMNIST.environmentVariable] == nil {
            XCTAssertEqual(try FashionMNIST.locate().source, .systemDirectory)
        }
    }
}
