import Foundation
import Kestrel

/// A table of numbers with named columns, read from CSV text with a header line
/// (scikit-learn users' `pandas.read_csv` for numeric data).
///
/// Errors name the line (1-based, the header is line 1) and the column, so a bad cell in a
/// large file can be found at once.
public struct NumericTable: Sendable, Equatable {
    /// The column names from the header.
    public let columns: [String]
    /// The values, `[rows, columns]`.
    public let values: Tensor

    /// A table from names and values.
    public init(columns: [String], values: Tensor) throws {
        guard values.rank == 2, values.shape[1] == columns.count else {
            throw KestrelError.shapeMismatch(
                "NumericTable: \(columns.count) column names for values of shape \(values.shape)")
        }
        self.columns = columns
        self.values = values
    }

    /// Parses CSV text: a header line of names, then one line of numbers per row. Blank lines
    /// are skipped; cells may be quoted (RFC 4180) and padded with spaces.
    public init(csv text: String, delimiter: Character = ",") throws {
        let records = try CSV.records(in: text, delimiter: delimiter, owner: "NumericTable")
        guard let header = records.first else { throw KestrelError.fileError("NumericTable: the CSV text is empty; expected a header line") }
        let names = header.fields
        var scalars: [Float] = []
        scalars.reserveCapacity((records.count - 1) * names.count)
        for record in records.dropFirst() {
            let row = record.fields
            guard row.count == names.count else {
                throw KestrelError.fileError(
                    "NumericTable: line \(record.line) has \(row.count) cells, expected \(names.count) like the header")
            }
            for (j, cell) in row.enumerated() {
                guard let v = Float(cell) else {
                    throw KestrelError.fileError(
                        "NumericTable: line \(record.line), column \(j + 1) ('\(names[j])'): '\(cell)' is not a number")
                }
                scalars.append(v)
            }
        }
        try self.init(columns: names, values: Tensor(shape: [records.count - 1, names.count], scalars: scalars))
    }

    /// Reads a CSV file (see `init(csv:delimiter:)`).
    public init(contentsOf url: URL, delimiter: Character = ",") throws {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw KestrelError.fileError("NumericTable: cannot read \(url.path): \(error.localizedDescription)")
        }
        try self.init(csv: text, delimiter: delimiter)
    }

    /// The number of rows.
    public var rowCount: Int { values.shape[0] }

    /// The values of one column.
    public func column(_ name: String) throws -> [Float] {
        let j = try index(of: name)
        let width = columns.count
        return (0..<rowCount).map { values.scalars[$0 * width + j] }
    }

    /// The table without the named columns, as a feature matrix `[rows, features]`.
    public func features(excluding names: [String]) throws -> Tensor {
        let drop = Set(try names.map { try index(of: $0) })
        let keep = columns.indices.filter { !drop.contains($0) }
        let width = columns.count
        var out: [Float] = []
        out.reserveCapacity(rowCount * keep.count)
        for r in 0..<rowCount { for j in keep { out.append(values.scalars[r * width + j]) } }
        return Tensor(shape: [rowCount, keep.count], scalars: out)
    }

    private func index(of name: String) throws -> Int {
        guard let j = columns.firstIndex(of: name) else {
            throw KestrelError.invalidArgument(
                "NumericTable: no column named '\(name)'; columns are \(columns.joined(separator: ", "))")
        }
        return j
    }
}
