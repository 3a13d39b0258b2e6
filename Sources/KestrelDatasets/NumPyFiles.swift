import Foundation
import Kestrel
import ZIPFoundation

/// NumPy's `.npy` files (`np.save`, `np.load`): one array, read into a `Tensor` and written
/// from one, so that data moves between Kestrel and Python tools without conversion scripts.
///
/// Reading takes every numeric dtype NumPy writes (float 16/32/64, signed and unsigned
/// integers of 1–8 bytes, bool; either byte order; C or Fortran order) and converts the values
/// to `Float`. Writing gives exactly what `np.save` writes for a float32 array (format 1.0,
/// the same header), so NumPy reads it back as `float32` of the tensor's shape.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// The array in the `.npy` file at `path`.
    public static func load(_ path: String) throws -> Tensor {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KestrelError.fileError("npy: cannot read \(path)")
        }
        return try decode(data, name: path)
    }

    /// Writes `tensor` to `path` as `np.save` writes a float32 array.
    public static func save(_ tensor: Tensor, to path: String) throws {
        try writeAtomically(encode(tensor), to: path)
    }

    /// The bytes `np.save` writes for `tensor` as float32: the magic string, version 1.0, a
    /// header padded (with NumPy's spare room for growing the first axis) to 64 bytes, the data.
    public static func encode(_ tensor: Tensor) -> Data {
        let shape = tensor.shape
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        if let first = shape.first { header += String(repeating: " ", count: max(0, 21 - String(first).count)) }
        let padding = 64 - (magic.count + 2 + 2 + header.utf8.count + 1) % 64
        header += String(repeating: " ", count: padding % 64) + "\n"
        var data = Data(magic + [1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xff), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        tensor.scalars.withUnsafeBufferPointer { values in
            for v in values {
                let bits = v.bitPattern.littleEndian
                withUnsafeBytes(of: bits) { data.append(contentsOf: $0) }
            }
        }
        return data
    }

    /// The array in `.npy` bytes; `name` identifies them in errors.
    public static func decode(_ data: Data, name: String) throws -> Tensor {
        let bytes = [UInt8](data)
        func fail(_ message: String) -> KestrelError { KestrelError.fileError("npy: \(name): \(message)") }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (no \\x93NUMPY magic)") }
        let major = bytes[6]
        let (lengthBytes, start): (Int, Int) = major == 1 ? (2, 8) : (4, 8)
        guard major >= 1, major <= 3, bytes.count >= start + lengthBytes else { throw fail("unsupported format version \(major)") }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(bytes[start + i]) << (8 * i) }
        let dataStart = start + lengthBytes + headerLength
        guard bytes.count >= dataStart else { throw fail("the header runs past the end of the file") }
        let header = String(decoding: bytes[(start + lengthBytes)..<dataStart], as: UTF8.self)
        guard let descr = field(header, "descr").flatMap(quoted),
              let order = field(header, "fortran_order"), let shapeText = field(header, "shape") else {
            throw fail("the header lacks descr, fortran_order or shape: \(header.prefix(120))")
        }
        let shape = try shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { text -> Int in
                guard let n = Int(text), n >= 0 else { throw fail("bad shape \(shapeText)") }
                return n
            }
        let count = shape.reduce(1, *)
        guard let element = ElementType(descr) else {
            throw fail("dtype '\(descr)' is not numeric (Kestrel reads float, int, uint and bool arrays)")
        }
        guard bytes.count >= dataStart + count * element.size else {
            throw fail("expected \(count) values of \(element.size) bytes after the header, found \(bytes.count - dataStart) bytes")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBufferPointer { raw in
            for i in 0..<count { values[i] = element.value(raw.baseAddress! + dataStart + i * element.size) }
        }
        if order.hasPrefix("True") && shape.count > 1 { values = fromFortranOrder(values, shape) }
        return Tensor(shape: shape, scalars: values)
    }

    /// The text of `key`'s value in a header dictionary (up to the next top-level comma).
    private static func field(_ header: String, _ key: String) -> String? {
        guard let range = header.range(of: "'\(key)':") else { return nil }
        var depth = 0, text = ""
        for ch in header[range.upperBound...] {
            if ch == "(" { depth += 1 }
            if ch == ")" { depth -= 1 }
            if (ch == "," && depth == 0) || ch == "}" { break }
            text.append(ch)
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    private static func quoted(_ text: String) -> String? {
        guard text.count >= 2, let q = text.first, q == "'" || q == "\"", text.last == q else { return nil }
        return String(text.dropFirst().dropLast())
    }

    /// Column-major values of `shape` in row-major order.
    private static func fromFortranOrder(_ values: [Float], _ shape: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        var index = [Int](repeating: 0, count: shape.count)
        for r in 0..<values.count {
            var f = 0, stride = 1
            for axis in 0..<shape.count { f += index[axis] * stride; stride *= shape[axis] }
            out[r] = values[f]
            var axis = shape.count - 1
            while axis >= 0 { index[axis] += 1; if index[axis] < shape[axis] { break }; index[axis] = 0; axis -= 1 }
        }
        return out
    }

    /// A NumPy dtype string such as `<f4`, `>i8`, `|u1` or `|b1`.
    private struct ElementType {
        enum Kind { case float, signed, unsigned, bool }
        let kind: Kind, size: Int, bigEndian: Bool

        init?(_ descr: String) {
            guard descr.count >= 3, let size = Int(descr.dropFirst(2)) else { return nil }
            bigEndian = descr.first == ">"
            self.size = size
            switch (Array(descr)[1], size) {
            case ("f", 2), ("f", 4), ("f", 8): kind = .float
            case ("i", 1), ("i", 2), ("i", 4), ("i", 8): kind = .signed
            case ("u", 1), ("u", 2), ("u", 4), ("u", 8): kind = .unsigned
            case ("b", 1): kind = .bool
            default: return nil
            }
        }

        func value(_ p: UnsafePointer<UInt8>) -> Float {
            var bits: UInt64 = 0
            for i in 0..<size { bits |= UInt64(p[bigEndian ? size - 1 - i : i]) << (8 * UInt64(i)) }
            switch kind {
            case .bool, .unsigned: return Float(bits)
            case .signed:
                let shift = UInt64(64 - 8 * size)
                return Float(Int64(bitPattern: bits << shift) >> Int64(shift))
            case .float:
                switch size {
                case 2: return Float(Float16(bitPattern: UInt16(bits)))
                case 4: return Float(bitPattern: UInt32(bits))
                default: return Float(Double(bitPattern: bits))
                }
            }
        }
    }
}

/// NumPy's `.npz` archives (`np.savez`, `np.savez_compressed`, `np.load`): several named
/// arrays in one zip file, as `[name: Tensor]`.
public enum NPZ {
    /// The arrays in the `.npz` file at `path`, by name (the entry names without `.npy`).
    public static func load(_ path: String) throws -> [String: Tensor] {
        let archive: Archive
        do {
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw KestrelError.fileError("npz: \(path) is not a zip archive: \(error.localizedDescription)")
        }
        var arrays: [String: Tensor] = [:]
        for entry in archive where entry.type == .file && entry.path.hasSuffix(".npy") {
            var data = Data()
            do {
                _ = try archive.extract(entry, skipCRC32: false) { data.append($0) }
            } catch {
                throw KestrelError.fileError("npz: \(path): cannot read \(entry.path): \(error.localizedDescription)")
            }
            arrays[String(entry.path.dropLast(4))] = try NPY.decode(data, name: "\(path)/\(entry.path)")
        }
        return arrays
    }

    /// Writes `arrays` to `path` as `np.savez` (stored) or, with `compressed`,
    /// `np.savez_compressed` (deflated) writes them; each becomes `name.npy` in float32.
    public static func save(_ arrays: [String: Tensor], to path: String, compressed: Bool = false) throws {
        do {
            try AtomicFile.write(to: path) { temporary in
                let archive = try Archive(url: URL(fileURLWithPath: temporary), accessMode: .create)
                for name in arrays.keys.sorted() {
                    let data = NPY.encode(arrays[name]!)
                    try archive.addEntry(with: name + ".npy", type: .file, uncompressedSize: Int64(data.count),
                                         compressionMethod: compressed ? .deflate : .none) { position, size in
                        data.subdata(in: Int(position)..<(Int(position) + size))
                    }
                }
            }
        } catch let error as KestrelError {
            throw error
        } catch {
            throw KestrelError.fileError("npz: cannot write \(path): \(error.localizedDescription)")
        }
    }
}
