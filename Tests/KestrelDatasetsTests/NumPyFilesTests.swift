import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// `NPY` and `NPZ` against files NumPy wrote (Fixtures/numpy, from make_numpy_fixtures.py):
/// every numeric dtype in both byte orders, Fortran order, scalars, empty arrays, archives
/// stored and compressed; and Kestrel's writer must give the same bytes as `np.save`.
final class NumPyFilesTests: TemporaryDirectoryTestCase {
    static func file(_ name: String) -> String { fixturePath("numpy/" + name) }

    func testReadsEveryDtypeAndOrder() throws {
        let signed = (0..<12).map { Float($0 - 5) }, unsigned = (0..<12).map(Float.init)
        for name in ["le_f2", "le_f4", "le_f8", "be_f4", "be_f8", "le_i1", "le_i2", "le_i4", "le_i8", "be_i4"] {
            XCTAssertEqual(try NPY.load(Self.file(name + ".npy")), Tensor(shape: [3, 4], scalars: signed), name)
        }
        for name in ["le_u1", "le_u2", "le_u4", "le_u8"] {
            XCTAssertEqual(try NPY.load(Self.file(name + ".npy")), Tensor(shape: [3, 4], scalars: unsigned), name)
        }
        XCTAssertEqual(try NPY.load(Self.file("bool.npy")),
                       Tensor(shape: [3, 4], scalars: (0..<12).map { $0 % 3 == 0 ? 1 : 0 }))
        XCTAssertEqual(try NPY.load(Self.file("fortran.npy")), Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init)))
        XCTAssertEqual(try NPY.load(Self.file("scalar.npy")), Tensor(shape: [], scalars: [2.5]))
        XCTAssertEqual(try NPY.load(Self.file("empty.npy")).shape, [0, 3])
    }

    func testWritesWhatNumPyWrites() throws {
        for name in ["write_vector", "write_matrix", "write_cube", "write_scalar", "write_long_axis"] {
            let expected = try Data(contentsOf: URL(fileURLWithPath: Self.file(name + ".npy")))
            let tensor = try NPY.load(Self.file(name + ".npy"))
            XCTAssertEqual(NPY.encode(tensor), expected, name)
            let path = temporaryDirectory + "/\(name).npy"
            try NPY.save(tensor, to: path)
            XCTAssertEqual(try NPY.load(path), tensor, name)
        }
    }

    func testArchives() throws {
        let stored = try NPZ.load(Self.file("stored.npz"))
        XCTAssertEqual(stored["x"], Tensor(shape: [3, 4], scalars: (0..<12).map(Float.init)))
        XCTAssertEqual(stored["y"], Tensor(shape: [3], scalars: [1, 0, 1]))
        let compressed = try NPZ.load(Self.file("compressed.npz"))
        XCTAssertEqual(compressed["images"], Tensor(shape: [2, 2, 2], scalars: Array(repeating: 7, count: 8)))
        XCTAssertEqual(compressed["labels"], Tensor(shape: [2], scalars: [0, 1]))
        for deflate in [false, true] {
            let path = temporaryDirectory + "/round\(deflate).npz"
            try NPZ.save(["x": stored["x"]!, "labels": compressed["labels"]!], to: path, compressed: deflate)
            let back = try NPZ.load(path)
            XCTAssertEqual(back, ["x": stored["x"]!, "labels": compressed["labels"]!])
        }
    }

    func testErrorsNameTheFile() throws {
        let text = try write(Array("hello".utf8), to: temporaryDirectory + "/text.npy")
        XCTAssertThrowsError(try NPY.load(text)) { XCTAssertTrue("\($0)".contains("text.npy: not a .npy file")) }
        var header = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.file("le_f4.npy"))))
        // The same file with the dtype changed to complex64 (same length, so the header still fits).
        var complexBytes = header
        let at = (0..<(header.count - 3)).first { Array(header[$0..<($0 + 3)]) == Array("<f4".utf8) }!
        complexBytes.replaceSubrange(at..<(at + 3), with: Array("<c8".utf8))
        let complex = try write(complexBytes, to: temporaryDirectory + "/complex.npy")
        XCTAssertThrowsError(try NPY.load(complex)) { XCTAssertTrue("\($0)".contains("dtype '<c8' is not numeric"), "\($0)") }
        header.removeLast(8)
        let short = try write(header, to: temporaryDirectory + "/short.npy")
        XCTAssertThrowsError(try NPY.load(short)) { XCTAssertTrue("\($0)".contains("expected 12 values of 4 bytes"), "\($0)") }
        XCTAssertThrowsError(try NPZ.load(text)) { XCTAssertTrue("\($0)".contains("is not a zip archive"), "\($0)") }
    }
}
