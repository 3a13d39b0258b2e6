import CKestrelZlib
import Foundation
import Kestrel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The whole raw content of a file in memory we own.
///
/// The memory is allocated by hand rather than held in an `Array` or `Data` because zlib keeps
/// pointers into its input between calls, which must stay valid for the life of the stream.
final class FileContents {
    let path: String
    let bytes: UnsafeMutableRawBufferPointer

    /// Reads the whole file; every failure names the path and the reason the system gave.
    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw KestrelError.fileError("\(path): cannot open: \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw KestrelError.fileError("\(path): cannot read its size: \(String(cString: strerror(errno)))")
        }
        // Reading a directory or a pipe would either fail obscurely or never end.
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw KestrelError.fileError("\(path): expected a regular file, found a directory or special file")
        }
        let size = Int(info.st_size)
        bytes = .allocate(byteCount: max(size, 1), alignment: 16)
        var filled = 0
        while filled < size {
            let n = read(fd, bytes.baseAddress! + filled, size - filled)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let reason = n < 0 ? String(cString: strerror(errno)) : "the file shrank while being read"
                bytes.deallocate()
                throw KestrelError.fileError("\(path): read failed after \(filled) of \(size) bytes: \(reason)")
            }
            filled += n
        }
        count = size
    }

    /// The file's size in bytes (the allocation may be one byte larger for empty files).
    let count: Int

    deinit { bytes.deallocate() }

    /// Whether the file starts with the gzip magic number 1f 8b.
    var isGzip: Bool { count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }
}

/// A forward-only reader over a file's content, decompressing on the fly when it is gzip'd.
///
/// Streaming lets the IDX parser look at the header before it allocates room for the data,
/// so a corrupt header cannot make us allocate gigabytes.
protocol ByteSource: AnyObject {
    /// Fills `buffer` completely, or less only at the end of the data; returns the byte count.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// The most bytes the rest of the data can possibly hold, known before reading it.
    var maximumRemaining: Int { get }
    /// Whether `maximumRemaining` is exact (plain files) or only an upper bound (gzip).
    var isExact: Bool { get }
    /// A short note for error messages about why the data ended, if it ended abnormally.
    var endNote: String? { get }
}

/// Makes the right reader for a file: inflating when it carries the gzip magic, plain otherwise.
func makeByteSource(for file: FileContents) throws -> ByteSource {
    file.isGzip ? try GzipSource(file: file) : PlainSource(file: file)
}

/// Uncompressed file content read in order.
final class PlainSource: ByteSource {
    private let file: FileContents
    private var offset = 0

    init(file: FileContents) { self.file = file }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, file.count - offset)
        if n > 0 {
            buffer.baseAddress!.copyMemory(from: file.bytes.baseAddress! + offset, byteCount: n)
            offset += n
        }
        return n
    }

    var maximumRemaining: Int { file.count - offset }
    var isExact: Bool { true }
    var endNote: String? { nil }
}

/// Gzip'd file content inflated through zlib, one caller-sized piece at a time.
final class GzipSource: ByteSource {
    /// Deflate cannot expand data by more than about 1032:1, so a header that declares more
    /// than this many times the compressed size is corrupt however the rest of the file looks.
    static let maximumExpansion = 1032

    private let file: FileContents
    // zlib checks that the stream it is given is the one it initialised (by address), so the
    // z_stream has to live at a fixed heap address rather than in a Swift stored property.
    private let stream: UnsafeMutablePointer<z_stream>
    /// How many input bytes have been handed to zlib so far.
    private var fed = 0
    private var produced = 0
    private var finished = false
    private(set) var endNote: String?

    init(file: FileContents) throws {
        self.file = file
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        // 16 + MAX_WBITS asks zlib to expect (and verify) the gzip wrapper, including its CRC.
        // inflateInit2 is a C macro, so its underlying function is called directly.
        let status = inflateInit2_(stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw KestrelError.fileError("\(file.path): cannot start gzip decompression (zlib status \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    var maximumRemaining: Int {
        let (bound, overflow) = file.count.multipliedReportingOverflow(by: Self.maximumExpansion)
        return overflow ? Int.max : max(0, bound - produced)
    }

    var isExact: Bool { false }

    /// zlib's `avail_in` is 32-bit, so the input is handed over in pieces below that limit.
    private func feedIfNeeded() {
        guard stream.pointee.avail_in == 0, fed < file.count else { return }
        let n = min(file.count - fed, 1 << 30)
        stream.pointee.next_in = (file.bytes.baseAddress! + fed).assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = uInt(n)
        fed += n
    }

    private var unreadInput: Int { Int(stream.pointee.avail_in) + (file.count - fed) }

    private func zlibMessage() -> String {
        stream.pointee.msg.map { String(cString: $0) } ?? "unknown zlib error"
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < buffer.count && !finished {
            feedIfNeeded()
            let room = min(buffer.count - filled, 1 << 30)
            stream.pointee.next_out = (buffer.baseAddress! + filled).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(room)
            let status = inflate(stream, Z_NO_FLUSH)
            let got = room - Int(stream.pointee.avail_out)
            filled += got
            produced += got
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                try endOfMember()
            case Z_BUF_ERROR where unreadInput == 0:
                // No progress and no input left: the compressed data stops mid-stream.
                finished = true
                endNote = "the gzip data ends abruptly after \(file.count) compressed bytes"
            case Z_DATA_ERROR, Z_NEED_DICT, Z_BUF_ERROR:
                throw KestrelError.fileError(
                    "\(file.path): corrupt gzip data after \(produced) decompressed bytes: \(zlibMessage())")
            case Z_MEM_ERROR:
                throw KestrelError.fileError("\(file.path): out of memory while decompressing")
            default:
                throw KestrelError.fileError(
                    "\(file.path): gzip decompression failed (zlib status \(status)): \(zlibMessage())")
            }
        }
        return filled
    }

    /// `gzip` concatenates members when files are appended, so another member may follow;
    /// anything else after the first member is an error rather than silently ignored data.
    private func endOfMember() throws {
        let rest = unreadInput
        guard rest > 0 else {
            finished = true
            return
        }
        feedIfNeeded()
        let next = stream.pointee.next_in!
        if rest >= 2 && next[0] == 0x1f && next[1] == 0x8b {
            inflateReset(stream)
        } else {
            throw KestrelError.fileError(
                "\(file.path): expected the end of the file after the gzip data, found \(rest) more bytes")
        }
    }
}
