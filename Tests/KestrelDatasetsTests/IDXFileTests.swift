import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// The IDX reader on its own: valid files in both encodings, and every kind of damage.
final class IDXFileTests: TemporaryDirectoryTestCase {
    func testSHA256AndCRC32HelpersMatchKnownVectors() {
        // The checksum test is only as good as this hand-written hash.
        XCTAssertEqual(sha256Hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha256Hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            sha256Hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(crc32(Array("123456789".utf8)), 0xCBF4_3926)
    }

    func testGzipAndPlainEncodingsReadIdentically() throws {
        let original = try IDXFile(dimensions: [3, 2, 2], bytes: Array(0..<12))
        let plain = try write(original.encoded(), to: temporaryDirectory + "/plain")
        let gzipped = try write(gzipStored(original.encoded()), to: temporaryDirectory + "/gzipped")
        // Compression is detected from content, so a gzip'd file without `.gz` still works.
        for path in [plain, gzipped] {
            let file = try IDXFile(contentsOf: path, expectedRank: 3)
            XCTAssertEqual(file.dimensions, [3, 2, 2])
            XCTAssertEqual(file.bytes, original.bytes)
            XCTAssertEqual(file.path, path)
            XCTAssertEqual(try IDXFile.dimensions(ofFileAt: path), [3, 2, 2])
        }
    }

    func testConcatenatedGzipMembersAreOneStream() throws {
        // `cat a.gz b.gz` is valid gzip and must decompress to the concatenation.
        let content = idxHeader([6]) + [0, 1, 2, 3, 4, 5]
        let path = try write(gzipStored(Array(content[..<7])) + gzipStored(Array(content[7...])),
                             to: temporaryDirectory + "/members.gz")
        XCTAssertEqual(try IDXFile(contentsOf: path).bytes, [0, 1, 2, 3, 4, 5])
    }

    func testMissingFileAndDirectoryAreReported() throws {
        let missing = temporaryDirectory + "/nothing-here.gz"
        assertFileError(try IDXFile(contentsOf: missing), contains: [missing, "cannot open", "No such file"])
        assertFileError(try IDXFile(contentsOf: temporaryDirectory), contains: [temporaryDirectory, "regular file"])
    }

    func testWrongMagicIsReportedWithBothValues() throws {
        let labels = try write(idxHeader([2]) + [1, 2], to: temporaryDirectory + "/labels")
        assertFileError(try IDXFile(contentsOf: labels, expectedRank: 3), contains: [
            labels, "expected magic 0x00000803 (unsigned bytes, rank 3)", "found 0x00000801 (unsigned bytes, rank 1)",
        ])
        let floats = try write(idxHeader([1], type: 0x0D) + [0, 0, 0, 0], to: temporaryDirectory + "/floats")
        assertFileError(try IDXFile(contentsOf: floats), contains: [floats, "unsupported", "32-bit floats"])
        let png = try write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], to: temporaryDirectory + "/image.png")
        assertFileError(try IDXFile(contentsOf: png, expectedRank: 1), contains: [
            png, "not an IDX file", "expected magic 0x00000801", "found 0x89504e47 (not an IDX header)",
        ])
        let empty = try write([], to: temporaryDirectory + "/empty")
        assertFileError(try IDXFile(contentsOf: empty), contains: [empty, "too short", "found only 0 bytes"])
    }

    func testTruncatedPlainFileNamesDeclaredAndFoundSizes() throws {
        let path = try write(idxHeader([60_000, 28, 28]) + [UInt8](repeating: 7, count: 1234),
                             to: temporaryDirectory + "/train-images-idx3-ubyte")
        assertFileError(try IDXFile(contentsOf: path, expectedRank: 3), contains: [
            path, "truncated: header declares 60000×28×28 = 47040000 bytes of data, found 1234",
        ])
        let header = try write(Array(idxHeader([60_000, 28, 28])[..<10]), to: temporaryDirectory + "/short-header")
        assertFileError(try IDXFile(contentsOf: header), contains: [header, "truncated header", "needs 12 bytes", "found 6"])
    }

    func testTruncatedGzipIsReported() throws {
        let source = Repository.subsetDirectory + "/t10k-images-idx3-ubyte.gz"
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
        let path = try write(Array(whole[..<(whole.count / 2)]), to: temporaryDirectory + "/t10k-images-idx3-ubyte.gz")
        assertFileError(try IDXFile(contentsOf: path, expectedRank: 3), contains: [
            path, "truncated: header declares 1000×28×28 = 784000 bytes of data", "gzip data ends abruptly",
        ])
        // Only the 8-byte trailer (CRC and size) missing: the data is complete but unverified.
        let noTrailer = try write(Array(whole.dropLast(8)), to: temporaryDirectory + "/no-trailer.gz")
        assertFileError(try IDXFile(contentsOf: noTrailer), contains: [noTrailer, "gzip data ends abruptly"])
    }

    func testGarbageAndCorruptGzipAreReported() throws {
        var generator = SystemRandomNumberGenerator()
        let garbage = try write([0x1f, 0x8b] + (0..<500).map { _ in UInt8.random(in: 0...255, using: &generator) },
                                to: temporaryDirectory + "/garbage.gz")
        assertFileError(try IDXFile(contentsOf: garbage), contains: [garbage])

        let header = try write([0x1f, 0x8b, 99, 0], to: temporaryDirectory + "/bad-method.gz")
        assertFileError(try IDXFile(contentsOf: header), contains: [header, "corrupt gzip data", "unknown compression method"])

        let content = idxHeader([4]) + [1, 2, 3, 4]
        let badCRC = try write(gzipStored(content, crc: 0xDEAD_BEEF), to: temporaryDirectory + "/bad-crc.gz")
        assertFileError(try IDXFile(contentsOf: badCRC), contains: [badCRC, "incorrect data check"])

        let trailing = try write(gzipStored(content) + Array("junk".utf8), to: temporaryDirectory + "/trailing.gz")
        assertFileError(try IDXFile(contentsOf: trailing), contains: [trailing, "found 4 more bytes"])
    }

    func testDataBeyondTheDeclaredSizeIsReported() throws {
        let plain = try write(idxHeader([4]) + [1, 2, 3, 4, 5, 6], to: temporaryDirectory + "/long")
        assertFileError(try IDXFile(contentsOf: plain), contains: [plain, "declares 4 = 4 bytes", "found 2 more bytes"])
        let gzipped = try write(gzipStored(idxHeader([4]) + [1, 2, 3, 4, 5, 6]), to: temporaryDirectory + "/long.gz")
        assertFileError(try IDXFile(contentsOf: gzipped), contains: [gzipped, "found more data"])
    }

    func testAbsurdDeclaredSizesAreRefusedBeforeAllocating() throws {
        // Each of these would need terabytes (or overflow) if the header were trusted.
        let overflow = try write(idxHeader([UInt32.max, UInt32.max, UInt32.max]), to: temporaryDirectory + "/overflow")
        assertFileError(try IDXFile(contentsOf: overflow), contains: [overflow, "corrupt header", "4294967295×4294967295×4294967295"])
        let huge = idxHeader([UInt32.max, 65_535]) + [1, 2, 3]
        let hugePlain = try write(huge, to: temporaryDirectory + "/huge")
        assertFileError(try IDXFile(contentsOf: hugePlain), contains: [hugePlain, "truncated", "found 3"])
        let hugeGzip = try write(gzipStored(huge), to: temporaryDirectory + "/huge.gz")
        assertFileError(try IDXFile(contentsOf: hugeGzip), contains: [hugeGzip, "can hold at most"])
        assertFileError(try IDXFile.dimensions(ofFileAt: hugeGzip), contains: [hugeGzip, "can hold at most"])
    }

    func testEveryPrefixAndRandomCorruptionThrowsInsteadOfCrashing() throws {
        // A cheap fuzz pass over a real gzip'd file: each variant must load or throw fileError.
        let source = Repository.subsetDirectory + "/t10k-labels-idx1-ubyte.gz"
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: source)))
        let path = temporaryDirectory + "/fuzz.gz"
        for length in 0..<whole.count {
            try write(Array(whole[..<length]), to: path)
            XCTAssertNotNil(fileErrorMessage { try IDXFile(contentsOf: path, expectedRank: 1) }, "prefix \(length)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var damaged = whole
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                damaged[Int.random(in: 0..<damaged.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            try write(damaged, to: path)
            do {
                _ = try IDXFile(contentsOf: path, expectedRank: 1)
            } catch KestrelError.fileError(let message) {
                XCTAssertTrue(message.contains(path), message)
            }
        }
    }

    func testInMemoryFilesValidateAndRoundTrip() throws {
        XCTAssertThrowsError(try IDXFile(dimensions: [2, 2], bytes: [1, 2, 3]))
        XCTAssertThrowsError(try IDXFile(dimensions: [], bytes: []))
        let file = try IDXFile(dimensions: [2, 3], bytes: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(file.encoded(), [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
    }
}
