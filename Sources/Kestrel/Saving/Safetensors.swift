import Foundation

/// Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON
/// header (`{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {…}}`), then the
/// tensors' bytes.
///
/// The reader refuses everything the reference implementation refuses — short files, headers
/// over 100 MB or past the end, invalid UTF-8 or JSON, offsets that overlap, leave gaps or run
/// past the data, sizes that don't match dtype × shape (overflow checked), trailing bytes — and
/// never allocates more than the file holds.
public enum Safetensors {
    /// The largest header the reader accepts (as the reference implementation).
    public static let maximumHeaderSize = 100_000_000

    /// Element types the reader converts to Float32 (the writer writes F32).
    static let dtypeSizes: [String: Int] = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2]

    /// Writes named tensors (in the given order) as F32, with optional string metadata, to a
    /// temporary file renamed into place.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]? = nil,
                             to path: String) throws {
        var names = Set<String>()
        for (name, _) in tensors where !names.insert(name).inserted || name == "__metadata__" {
            throw KestrelError.invalidArgument("safetensors: tensor name '\(name)' is repeated or reserved (writing \(path))")
        }
        var header: [String: Any] = [:]
        var offset = 0
        for (name, tensor) in tensors {
            let size = tensor.count * 4
            header[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + size]] as [String: Any]
            offset += size
        }
        if let metadata { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces to a multiple of 8 bytes so the data is aligned.
        while (json.count % 8) != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, tensor) in tensors {
            tensor.scalars.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: UInt32.self) { words in
                    for w in words { withUnsafeBytes(of: w.littleEndian) { data.append(contentsOf: $0) } }
                }
            }
        }
        try writeAtomically(data, to: path)
    }

    /// The tensors and metadata of a safetensors file; tensors in file order.
    public static func read(from path: String) throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KestrelError.fileError("\(path): cannot read the file (missing or unreadable)")
        }
        return try parse(data, path: path)
    }

    /// Parses safetensors bytes; `path` names the source in error messages.
    public static func parse(_ data: Data, path: String = "<memory>") throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
        func fail(_ message: String) -> KestrelError { .fileError("\(path): not a valid safetensors file: \(message)") }
        guard data.count >= 8 else { throw fail("\(data.count) bytes, shorter than the 8-byte header length") }
        let bytes = [UInt8](data)
        var n: UInt64 = 0
        for i in (0..<8).reversed() { n = n << 8 | UInt64(bytes[i]) }
        guard n <= UInt64(maximumHeaderSize) else {
            throw fail("header length \(n) exceeds the limit of \(maximumHeaderSize) bytes")
        }
        let headerSize = Int(n)
        guard 8 + headerSize <= bytes.count else {
            throw fail("header of \(headerSize) bytes runs past the end of the \(bytes.count)-byte file")
        }
        let headerBytes = bytes[8..<(8 + headerSize)]
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("the header does not start with '{'") }
        guard let text = String(bytes: headerBytes, encoding: .utf8) else { throw fail("the header is not valid UTF-8") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let header = object as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        if let m = header["__metadata__"] {
            guard let dict = m as? [String: Any], let strings = dict as? [String: String] else {
                throw fail("__metadata__ must map strings to strings")
            }
            metadata = strings
        }
        struct Entry { let name: String; let dtype: String; let shape: [Int]; let begin: Int; let end: Int }
        var entries: [Entry] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shapeValues = info["shape"] as? [Any], let offsets = info["data_offsets"] as? [Any], offsets.count == 2 else {
                throw fail("entry '\(name)' needs dtype, shape and two data_offsets")
            }
            func integer(_ v: Any) -> Int? {
                guard let number = v as? NSNumber else { return nil }
                let d = number.doubleValue
                guard d >= 0, d < 9.0e15, d == d.rounded() else { return nil }
                return Int(d)
            }
            let shape = shapeValues.compactMap(integer)
            guard shape.count == shapeValues.count else { throw fail("entry '\(name)' has a shape that is not a list of non-negative integers") }
            guard let begin = integer(offsets[0]), let end = integer(offsets[1]), begin <= end else {
                throw fail("entry '\(name)' has invalid data_offsets")
            }
            guard let elementSize = dtypeSizes[dtype] else {
                throw fail("entry '\(name)' has dtype \(dtype); supported: \(dtypeSizes.keys.sorted().joined(separator: ", "))")
            }
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("entry '\(name)': shape \(shape) overflows") }
                count = product
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: elementSize)
            guard !overflow, byteCount == end - begin else {
                throw fail("entry '\(name)': shape \(shape) of \(dtype) needs \(overflow ? "too many" : String(byteCount)) bytes, data_offsets give \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        let dataStart = 8 + headerSize
        let dataLength = bytes.count - dataStart
        var expected = 0
        for e in entries {
            guard e.begin == expected else {
                throw fail(e.begin < expected ? "tensor '\(e.name)' overlaps the previous one" : "a gap before tensor '\(e.name)' (offset \(e.begin), expected \(expected))")
            }
            expected = e.end
        }
        guard expected == dataLength else {
            throw fail(expected > dataLength ? "tensors end at byte \(expected) of a \(dataLength)-byte data section"
                                             : "\(dataLength - expected) trailing bytes after the last tensor")
        }
        let tensors: [(name: String, tensor: Tensor)] = entries.map { e in
            let count = e.shape.reduce(1, *)
            var scalars = [Float](repeating: 0, count: count)
            let base = dataStart + e.begin
            func word(_ i: Int, _ size: Int) -> UInt64 {
                var v: UInt64 = 0
                for b in (0..<size).reversed() { v = v << 8 | UInt64(bytes[base + i * size + b]) }
                return v
            }
            switch e.dtype {
            case "F32": for i in 0..<count { scalars[i] = Float(bitPattern: UInt32(word(i, 4))) }
            case "F64": for i in 0..<count { scalars[i] = Float(Double(bitPattern: word(i, 8))) }
            case "F16": for i in 0..<count { scalars[i] = Float(Float16(bitPattern: UInt16(word(i, 2)))) }
            default: for i in 0..<count { scalars[i] = Float(bitPattern: UInt32(word(i, 2)) << 16) }   // BF16
            }
            return (e.name, Tensor(shape: e.shape, scalars: scalars))
        }
        return (tensors, metadata)
    }
}
