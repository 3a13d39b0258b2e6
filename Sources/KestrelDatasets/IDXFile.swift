import Foundation
import Kestrel

/// An array of unsigned bytes stored in the IDX format that MNIST-style datasets ship in.
///
/// An IDX file is a 4-byte magic number (two zero bytes, an element type, the rank), one
/// big-endian 32-bit size per dimension, then the elements in row-major order. Files may be
/// gzip-compressed, as the datasets are usually distributed; compression is detected from the
/// content, not the file name.
///
/// Only unsigned-byte elements (type `0x08`) are supported because every MNIST-style dataset
/// uses them; other element types are reported as errors instead of being misread.
public struct IDXFile: Sendable, Equatable {
    /// The file the array was read from, kept so later errors can name it.
    public let path: String
    /// The size of each dimension, outermost first (for images: count, rows, columns).
    public let dimensions: [Int]
    /// The elements in row-major order; exactly the product of `dimensions` of them.
    public let bytes: [UInt8]

    /// The IDX element-type code for unsigned bytes, the only type this reader accepts.
    public static let unsignedByteType: UInt8 = 0x08

    /// An array built in memory, for writing subsets or test fixtures with `encoded()`.
    ///
    /// - Throws: `KestrelError.invalidArgument` when the byte count does not match the
    ///   dimensions, or a dimension does not fit the format's 32-bit sizes.
    public init(dimensions: [Int], bytes: [UInt8], path: String = "<memory>") throws {
        guard (1...255).contains(dimensions.count),
              dimensions.allSatisfy({ (0...Int(UInt32.max)).contains($0) }) else {
            throw KestrelError.invalidArgument(
                "IDXFile: dimensions must be 1 to 255 sizes in 0...\(UInt32.max), found \(dimensions)")
        }
        let expected = dimensions.reduce(1, *)
        guard expected == bytes.count else {
            throw KestrelError.invalidArgument(
                "IDXFile: dimensions \(Self.format(dimensions)) need \(expected) bytes, found \(bytes.count)")
        }
        self.path = path
        self.dimensions = dimensions
        self.bytes = bytes
    }

    /// Reads and validates a gzip'd or plain IDX file of unsigned bytes.
    ///
    /// The header is checked against the data before the data is allocated, so a corrupt or
    /// hostile header cannot trigger a huge allocation.
    ///
    /// - Parameters:
    ///   - path: The file to read.
    ///   - expectedRank: The number of dimensions the caller needs (3 for images, 1 for
    ///     labels), or `nil` to accept any.
    /// - Throws: `KestrelError.fileError` naming the file, what was expected and what was found,
    ///   for a missing or unreadable file, bad gzip data, a wrong magic number, an unexpected
    ///   rank, or data shorter or longer than the header declares.
    public init(contentsOf path: String, expectedRank: Int? = nil) throws {
        let file = try FileContents(path: path)
        let source = try makeByteSource(for: file)
        let dimensions = try Self.readHeader(from: source, path: path, expectedRank: expectedRank)
        let declared = try Self.declaredCount(dimensions, path: path)
        try Self.checkPlausible(declared, dimensions: dimensions, source: source, file: file)

        var got = 0
        let bytes = try [UInt8](unsafeUninitializedCapacity: declared) { buffer, initialized in
            got = try source.read(into: UnsafeMutableRawBufferPointer(buffer))
            // Zero the unread tail so the array is fully initialised even when we then throw.
            if got < declared { buffer.baseAddress!.advanced(by: got).initialize(repeating: 0, count: declared - got) }
            initialized = declared
        }
        guard got == declared else {
            let note = source.endNote.map { " (\($0))" } ?? ""
            throw KestrelError.fileError(
                "\(path): truncated: header declares \(Self.format(dimensions)) = \(declared) bytes of data, "
                + "found \(got)\(note)")
        }
        // Reading one more byte also drives zlib to the end of the stream, which is where
        // it verifies the gzip CRC; extra data means the header and the content disagree.
        var probe: UInt8 = 0
        let extra = try withUnsafeMutableBytes(of: &probe) { try source.read(into: $0) }
        if extra > 0 {
            let more = source.isExact ? "\(source.maximumRemaining + extra) more bytes" : "more data"
            throw KestrelError.fileError(
                "\(path): header declares \(Self.format(dimensions)) = \(declared) bytes of data, "
                + "found \(more) after them")
        }
        if let note = source.endNote {
            throw KestrelError.fileError("\(path): the data is complete but \(note)")
        }
        self.path = path
        self.dimensions = dimensions
        self.bytes = bytes
    }

    /// The dimensions a file's header declares, read without loading its data.
    ///
    /// Cheap even for gzip'd files, because only the first few bytes are decompressed; the
    /// dataset search uses it to report sample counts before committing to a full load.
    ///
    /// - Throws: `KestrelError.fileError` as `init(contentsOf:expectedRank:)` does for header
    ///   problems, and when the declared size is more than the file can hold.
    public static func dimensions(ofFileAt path: String, expectedRank: Int? = nil) throws -> [Int] {
        let file = try FileContents(path: path)
        let source = try makeByteSource(for: file)
        let dimensions = try readHeader(from: source, path: path, expectedRank: expectedRank)
        let declared = try declaredCount(dimensions, path: path)
        try checkPlausible(declared, dimensions: dimensions, source: source, file: file)
        return dimensions
    }

    /// The array as a plain (uncompressed) IDX file, ready to write to disk.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = [0, 0, Self.unsignedByteType, UInt8(dimensions.count)]
        out.reserveCapacity(4 + 4 * dimensions.count + bytes.count)
        for d in dimensions {
            withUnsafeBytes(of: UInt32(d).bigEndian) { out.append(contentsOf: $0) }
        }
        out.append(contentsOf: bytes)
        return out
    }

    // MARK: - Validation

    private static func readHeader(from source: ByteSource, path: String, expectedRank: Int?) throws -> [Int] {
        var magicBytes = [UInt8](repeating: 0, count: 4)
        let got = try magicBytes.withUnsafeMutableBytes { try source.read(into: $0) }
        let wanted = expectedRank.map { "magic " + describe(magic: UInt32(unsignedByteType) << 8 | UInt32($0)) }
            ?? "an IDX magic number 0x000008RR (unsigned bytes, any rank RR)"
        guard got == 4 else {
            throw KestrelError.fileError(
                "\(path): too short for an IDX file: expected \(wanted) in the first 4 bytes, found only \(got) bytes")
        }
        let magic = magicBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let type = magicBytes[2], rank = Int(magicBytes[3])
        guard magicBytes[0] == 0, magicBytes[1] == 0, rank >= 1 else {
            throw KestrelError.fileError("\(path): not an IDX file: expected \(wanted), found \(describe(magic: magic))")
        }
        guard type == unsignedByteType else {
            throw KestrelError.fileError(
                "\(path): unsupported IDX element type: expected \(wanted), found \(describe(magic: magic))")
        }
        if let expectedRank, rank != expectedRank {
            throw KestrelError.fileError("\(path): wrong IDX rank: expected \(wanted), found \(describe(magic: magic))")
        }

        var sizeBytes = [UInt8](repeating: 0, count: 4 * rank)
        let sizeCount = try sizeBytes.withUnsafeMutableBytes { try source.read(into: $0) }
        guard sizeCount == sizeBytes.count else {
            throw KestrelError.fileError(
                "\(path): truncated header: rank \(rank) needs \(sizeBytes.count) bytes of dimension sizes, "
                + "found \(sizeCount)")
        }
        return (0..<rank).map { i in
            sizeBytes[(4 * i)..<(4 * i + 4)].reduce(0) { $0 << 8 | Int($1) }
        }
    }

    private static func declaredCount(_ dimensions: [Int], path: String) throws -> Int {
        var total = 1
        for d in dimensions {
            let (product, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw KestrelError.fileError(
                    "\(path): corrupt header: dimensions \(format(dimensions)) describe more bytes than can exist")
            }
            total = product
        }
        return total
    }

    /// Refuses a declared size the file cannot possibly hold, before anything is allocated.
    private static func checkPlausible(_ declared: Int, dimensions: [Int], source: ByteSource, file: FileContents) throws {
        let available = source.maximumRemaining
        guard declared > available else { return }
        if source.isExact {
            throw KestrelError.fileError(
                "\(file.path): truncated: header declares \(format(dimensions)) = \(declared) bytes of data, "
                + "found \(available)")
        }
        throw KestrelError.fileError(
            "\(file.path): corrupt or truncated: header declares \(format(dimensions)) = \(declared) bytes of data, "
            + "but \(file.count) bytes of gzip data can hold at most \(available)")
    }

    /// Dimensions written the way people write image sizes, e.g. `60000×28×28`.
    static func format(_ dimensions: [Int]) -> String {
        dimensions.map(String.init).joined(separator: "×")
    }

    /// A magic number with its meaning, so a message shows at a glance what kind of file it was.
    static func describe(magic: UInt32) -> String {
        let hex = "0x" + String(repeating: "0", count: 8 - String(magic, radix: 16).count) + String(magic, radix: 16)
        guard magic >> 16 == 0, magic & 0xFF >= 1 else {
            return "\(hex) (not an IDX header)"
        }
        let types: [UInt32: String] = [
            0x08: "unsigned bytes", 0x09: "signed bytes", 0x0B: "16-bit integers",
            0x0C: "32-bit integers", 0x0D: "32-bit floats", 0x0E: "64-bit floats",
        ]
        let type = types[(magic >> 8) & 0xFF] ?? "unknown element type"
        return "\(hex) (\(type), rank \(magic & 0xFF))"
    }
}
