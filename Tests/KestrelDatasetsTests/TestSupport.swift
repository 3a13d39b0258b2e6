import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// Paths in the checkout, found from this file's location so tests work from any directory.
enum Repository {
    /// This file is `Tests/KestrelDatasetsTests/TestSupport.swift`.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let subsetDirectory = root + "/Datasets/fashion-mnist-subset"
}

/// A scratch directory removed at the end of each test, so failures leave nothing behind.
class TemporaryDirectoryTestCase: XCTestCase {
    var temporaryDirectory: String!

    override func setUpWithError() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("kestrel-datasets-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        temporaryDirectory = url.path
    }

    override func tearDownWithError() throws {
        if let temporaryDirectory {
            try? FileManager.default.removeItem(atPath: temporaryDirectory)
        }
    }

    /// Creates (or reuses) a subdirectory of the scratch directory.
    func makeDirectory(_ name: String) throws -> String {
        let path = temporaryDirectory + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @discardableResult
    func write(_ bytes: [UInt8], to path: String) throws -> String {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The committed subset decoded once per process; every fixture is derived from it.
    static let subsetFiles: [IDXFile] = {
        IDXDataset.fileNames.map { name in
            try! IDXFile(contentsOf: Repository.subsetDirectory + "/" + name + ".gz")
        }
    }()

    /// Writes the subset as plain IDX files, optionally replacing some files' content.
    func writePlainSubset(in directory: String, replacing replacements: [String: [UInt8]] = [:]) throws {
        for (name, file) in zip(IDXDataset.fileNames, Self.subsetFiles) {
            try write(replacements[name] ?? file.encoded(), to: directory + "/" + name)
        }
    }
}

/// Asserts that `body` throws `KestrelError.fileError` whose message contains every fragment.
func assertFileError<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected KestrelError.fileError, but the call succeeded", file: file, line: line)
    } catch let error as KestrelError {
        guard case .fileError(let message) = error else {
            XCTFail("expected KestrelError.fileError, found \(error)", file: file, line: line)
            return
        }
        for fragment in fragments where !message.contains(fragment) {
            XCTFail("message does not contain \"\(fragment)\":\n\(message)", file: file, line: line)
        }
    } catch {
        XCTFail("expected KestrelError.fileError, found \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// The message of a `KestrelError.fileError`, or `nil` for success or any other error.
func fileErrorMessage<T>(_ body: () throws -> T) -> String? {
    do {
        _ = try body()
        return nil
    } catch KestrelError.fileError(let message) {
        return message
    } catch {
        return nil
    }
}

// MARK: - Checksums and gzip, written here to keep the test target free of dependencies

/// SHA-256 (FIPS 180-4), to verify the committed subset against its SHA256SUMS.
func sha256Hex(_ message: [UInt8]) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var data = message
    data.append(0x80)
    while data.count % 64 != 56 { data.append(0) }
    withUnsafeBytes(of: (UInt64(message.count) * 8).bigEndian) { data.append(contentsOf: $0) }

    func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    for chunk in stride(from: 0, to: data.count, by: 64) {
        for i in 0..<16 {
            w[i] = (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(data[chunk + 4 * i + $1]) }
        }
        for i in 16..<64 {
            let s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for i in 0..<64 {
            let t1 = hh &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[i] &+ w[i]
            let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        for (i, v) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ v }
    }
    return h.map { word in
        let hex = String(word, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }.joined()
}

/// CRC-32 as gzip uses it, so tests can build valid (and deliberately invalid) gzip files.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
    }
    return ~crc
}

/// A gzip member holding `bytes` in uncompressed ("stored") deflate blocks.
///
/// Stored blocks need no compressor, yet they are real gzip that zlib must parse and
/// CRC-check; `crc` lets a test plant a wrong checksum.
func gzipStored(_ bytes: [UInt8], crc: UInt32? = nil) -> [UInt8] {
    var out: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]
    var offset = 0
    repeat {
        let n = min(65_535, bytes.count - offset)
        let final: UInt8 = offset + n == bytes.count ? 1 : 0
        out.append(final)
        withUnsafeBytes(of: UInt16(n).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: (~UInt16(n)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: bytes[offset..<(offset + n)])
        offset += n
    } while offset < bytes.count
    withUnsafeBytes(of: (crc ?? crc32(bytes)).littleEndian) { out.append(contentsOf: $0) }
    withUnsafeBytes(of: UInt32(truncatingIfNeeded: bytes.count).littleEndian) { out.append(contentsOf: $0) }
    return out
}

/// A plain IDX header of unsigned bytes with the given dimensions (no data).
func idxHeader(_ dimensions: [UInt32], type: UInt8 = 0x08) -> [UInt8] {
    var out: [UInt8] = [0, 0, type, UInt8(dimensions.count)]
    for d in dimensions { withUnsafeBytes(of: d.bigEndian) { out.append(contentsOf: $0) } }
    return out
}

/// The path of `name` in this target's Fixtures resources.
func fixturePath(_ name: String) -> String {
    Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(name).path
}

/// Fails unless `body` throws an error whose description contains every fragment.
func assertThrows<T>(_ body: @autoclosure () throws -> T, _ fragments: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch {
        for f in fragments { XCTAssertTrue("\(error)".contains(f), "\(error) does not contain \(f)", file: file, line: line) }
    }
}
