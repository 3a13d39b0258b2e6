import CHDF5
import Foundation
import Kestrel

/// The HDF5 library here is the serial (not thread-safe) build: every use goes through this lock.
let hdf5Lock = NSLock()

/// Runs `body` holding the HDF5 lock, with HDF5's own error printing switched off (Kestrel
/// reports failures as thrown errors naming the file instead).
func withHDF5<T>(_ body: () throws -> T) rethrows -> T {
    hdf5Lock.lock()
    defer { hdf5Lock.unlock() }
    kestrel_h5_silence_errors()
    return try body()
}

/// Writes the subset of HDF5 that Keras's weights files use: nested groups, contiguous
/// little-endian float32 datasets, 64-bit integer scalars and string attributes.
/// Callers must hold the HDF5 lock (`withHDF5`).
final class HDF5Writer {
    private let file: hid_t
    private let path: String
    private var groups: [String: hid_t] = [:]

    /// Creates (truncating) the file at `path`.
    init(path: String) throws {
        self.path = path
        file = H5Fcreate(path, UInt32(kestrel_h5f_acc_trunc()), kestrel_h5p_default(), kestrel_h5p_default())
        guard file >= 0 else { throw KestrelError.fileError("\(path): cannot create the HDF5 file") }
    }

    /// Creates the group at `groupPath` ("a/b/c") and its missing parents; returns its id.
    @discardableResult
    func group(_ groupPath: String) throws -> hid_t {
        if groupPath.isEmpty { return file }
        if let g = groups[groupPath] { return g }
        let parts = groupPath.split(separator: "/")
        let parent = try group(parts.dropLast().joined(separator: "/"))
        let g = H5Gcreate2(parent, String(parts.last!), kestrel_h5p_default(), kestrel_h5p_default(), kestrel_h5p_default())
        guard g >= 0 else { throw KestrelError.fileError("\(path): cannot create HDF5 group '\(groupPath)'") }
        groups[groupPath] = g
        return g
    }

    /// Sets a string attribute on a group (Keras stores each `vars` group's owner name).
    func setAttribute(_ name: String, _ value: String, onGroup groupPath: String) throws {
        let g = try group(groupPath)
        guard kestrel_h5_write_string_attribute(g, name, value) >= 0 else {
            throw KestrelError.fileError("\(path): cannot write attribute '\(name)' of '\(groupPath)'")
        }
    }

    /// Writes a float32 dataset of `shape` (a scalar when `shape` is empty).
    func writeFloats(_ scalars: [Float], shape: [Int], at datasetPath: String) throws {
        precondition(scalars.count == shape.reduce(1, *), "HDF5Writer: scalar count does not match the shape")
        try write(at: datasetPath, shape: shape, fileType: kestrel_h5t_ieee_f32le(),
                  memoryType: kestrel_h5t_native_float(), bytes: scalars.withUnsafeBytes { Data($0) })
    }

    /// Writes a 64-bit integer scalar dataset (an optimizer's iteration count).
    func writeInt64Scalar(_ value: Int64, at datasetPath: String) throws {
        try write(at: datasetPath, shape: [], fileType: kestrel_h5t_std_i64le(),
                  memoryType: kestrel_h5t_native_int64(), bytes: withUnsafeBytes(of: value) { Data($0) })
    }

    private func write(at datasetPath: String, shape: [Int], fileType: hid_t, memoryType: hid_t, bytes: Data) throws {
        let parts = datasetPath.split(separator: "/")
        let parent = try group(parts.dropLast().joined(separator: "/"))
        let dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), dims, nil)
        guard space >= 0 else { throw KestrelError.fileError("\(path): cannot describe dataset '\(datasetPath)'") }
        defer { H5Sclose(space) }
        let dataset = H5Dcreate2(parent, String(parts.last!), fileType, space,
                                 kestrel_h5p_default(), kestrel_h5p_default(), kestrel_h5p_default())
        guard dataset >= 0 else { throw KestrelError.fileError("\(path): cannot create dataset '\(datasetPath)'") }
        defer { H5Dclose(dataset) }
        let status = bytes.withUnsafeBytes {
            H5Dwrite(dataset, memoryType, kestrel_h5s_all(), kestrel_h5s_all(), kestrel_h5p_default(), $0.baseAddress)
        }
        guard status >= 0 else { throw KestrelError.fileError("\(path): cannot write dataset '\(datasetPath)'") }
    }

    /// Closes every group and the file, flushing it to disk.
    func close() throws {
        for g in groups.values { H5Gclose(g) }
        groups = [:]
        guard H5Fclose(file) >= 0 else { throw KestrelError.fileError("\(path): cannot finish writing the HDF5 file") }
    }
}

/// Reads groups and numeric datasets from an HDF5 file that may be truncated, corrupted or
/// hostile: every shape is checked against a limit before anything is allocated, and every
/// failure becomes a `KestrelError.fileError` naming `displayName`.
/// Callers must hold the HDF5 lock (`withHDF5`).
final class HDF5Reader {
    private let file: hid_t
    /// The file name used in error messages (the `.keras` archive for an embedded file).
    let displayName: String
    /// The largest number of scalars one dataset may declare (guards allocations).
    let maxScalars: Int

    /// Opens `path` read-only.
    init(path: String, displayName: String, maxScalars: Int) throws {
        self.displayName = displayName
        self.maxScalars = maxScalars
        guard H5Fis_hdf5(path) > 0 else {
            throw KestrelError.fileError("\(displayName): not an HDF5 file (no HDF5 signature found)")
        }
        file = H5Fopen(path, UInt32(kestrel_h5f_acc_rdonly()), kestrel_h5p_default())
        guard file >= 0 else { throw KestrelError.fileError("\(displayName): cannot open the HDF5 file (corrupted or truncated)") }
    }

    deinit { H5Fclose(file) }

    /// Whether a link (group or dataset) exists at `objectPath`, checking each level.
    func exists(_ objectPath: String) -> Bool {
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            guard H5Lexists(file, prefix, kestrel_h5p_default()) > 0 else { return false }
        }
        return true
    }

    /// The names of the members of the group at `groupPath`.
    func members(of groupPath: String) throws -> [String] {
        let g = H5Gopen2(file, groupPath.isEmpty ? "/" : groupPath, kestrel_h5p_default())
        guard g >= 0 else { throw KestrelError.fileError("\(displayName): cannot open HDF5 group '\(groupPath)'") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else {
            throw KestrelError.fileError("\(displayName): cannot read HDF5 group '\(groupPath)'")
        }
        guard info.nlinks <= 100_000 else {
            throw KestrelError.fileError("\(displayName): HDF5 group '\(groupPath)' declares \(info.nlinks) members")
        }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let size = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, kestrel_h5p_default())
            guard size >= 0, size < 4096 else {
                throw KestrelError.fileError("\(displayName): cannot read member \(i) of HDF5 group '\(groupPath)'")
            }
            var buffer = [CChar](repeating: 0, count: Int(size) + 1)
            guard H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, Int(size) + 1, kestrel_h5p_default()) >= 0 else {
                throw KestrelError.fileError("\(displayName): cannot read member \(i) of HDF5 group '\(groupPath)'")
            }
            names.append(String(decoding: buffer.prefix(Int(size)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// The shape of the dataset at `datasetPath` (empty for a scalar).
    func shape(of datasetPath: String) throws -> [Int] {
        try withDataset(datasetPath) { _, shape in shape }
    }

    /// Reads the numeric dataset at `datasetPath` as float32, converting from its stored type.
    func readFloats(_ datasetPath: String) throws -> Tensor {
        try withDataset(datasetPath) { dataset, shape in
            let count = shape.reduce(1, *)
            var scalars = [Float](repeating: 0, count: count)
            let status = scalars.withUnsafeMutableBytes {
                H5Dread(dataset, kestrel_h5t_native_float(), kestrel_h5s_all(), kestrel_h5s_all(), kestrel_h5p_default(), $0.baseAddress)
            }
            guard status >= 0 else {
                throw KestrelError.fileError("\(displayName): cannot read dataset '\(datasetPath)' (corrupted or truncated data)")
            }
            return Tensor(shape: shape, scalars: scalars)
        }
    }

    /// Reads a numeric scalar dataset as a 64-bit integer (an optimizer's iteration count).
    func readInt64Scalar(_ datasetPath: String) throws -> Int64 {
        try withDataset(datasetPath) { dataset, shape in
            guard shape.reduce(1, *) == 1 else {
                throw KestrelError.fileError("\(displayName): dataset '\(datasetPath)' should be a scalar, found shape \(shape)")
            }
            var value: Int64 = 0
            let status = H5Dread(dataset, kestrel_h5t_native_int64(), kestrel_h5s_all(), kestrel_h5s_all(), kestrel_h5p_default(), &value)
            guard status >= 0 else { throw KestrelError.fileError("\(displayName): cannot read dataset '\(datasetPath)'") }
            return value
        }
    }

    /// Opens a dataset, checks that it is numeric with a sane shape, and hands both to `body`.
    private func withDataset<T>(_ datasetPath: String, _ body: (hid_t, [Int]) throws -> T) throws -> T {
        guard exists(datasetPath) else { throw KestrelError.fileError("\(displayName): missing HDF5 dataset '\(datasetPath)'") }
        let dataset = H5Dopen2(file, datasetPath, kestrel_h5p_default())
        guard dataset >= 0 else { throw KestrelError.fileError("\(displayName): '\(datasetPath)' is not a readable dataset") }
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        guard type >= 0 else { throw KestrelError.fileError("\(displayName): cannot read the type of '\(datasetPath)'") }
        let typeClass = H5Tget_class(type)
        H5Tclose(type)
        guard typeClass == H5T_FLOAT || typeClass == H5T_INTEGER else {
            throw KestrelError.fileError("\(displayName): dataset '\(datasetPath)' is not numeric")
        }
        let space = H5Dget_space(dataset)
        guard space >= 0 else { throw KestrelError.fileError("\(displayName): cannot read the shape of '\(datasetPath)'") }
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0, rank <= 8 else {
            throw KestrelError.fileError("\(displayName): dataset '\(datasetPath)' has an invalid rank (\(rank))")
        }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 {
            guard H5Sget_simple_extent_dims(space, &dims, nil) == rank else {
                throw KestrelError.fileError("\(displayName): cannot read the shape of '\(datasetPath)'")
            }
        }
        var count = 1
        for d in dims {
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: d))
            guard !overflow, d <= UInt64(Int.max), product <= maxScalars else {
                throw KestrelError.fileError(
                    "\(displayName): dataset '\(datasetPath)' declares shape \(dims), more than the \(maxScalars) scalars the file can hold")
            }
            count = product
        }
        return try body(dataset, dims.map { Int($0) })
    }
}
