import Foundation
import Kestrel

/// A table of named columns read from CSV text with a header line, for data that mixes
/// numbers and strings (the Keras user's `pandas.read_csv`).
///
/// Cells are kept as read and typed when a column is asked for, because a column such as
/// `thal` (`fixed`, `normal`, `reversible`) goes to a `StringLookup` while `age` goes to a
/// `Normalization`, and only the caller knows which is which.
///
/// ```swift
/// let table = try CSVTable(contentsOf: heartURL)
/// let (train, validation) = try table.split(validationFraction: 0.2, seed: 1337)
/// let age = try train.column("age")        // [rows, 1]
/// let thal = try train.strings("thal")
/// ```
///
/// Errors name the column and the 1-based line of the file (the header is line 1), so a bad
/// cell in a large file can be found at once; rows keep their file lines through `rows(_:)`
/// and `split(validationFraction:seed:)`.
public struct CSVTable: Sendable, Equatable {
    /// The column names, in header order.
    public let columnNames: [String]
    /// Column-major, so that reading a column (the usual access) copies nothing.
    private var cells: [[String]]
    /// The file line of each row, for error messages.
    private var lines: [Int]

    /// The number of rows, not counting the header.
    public var rowCount: Int { lines.count }

    private init(uncheckedColumns names: [String], cells: [[String]], lines: [Int]) {
        columnNames = names
        self.cells = cells
        self.lines = lines
    }

    /// Parses CSV text (RFC 4180): a header line of unique column names, then one line per row.
    ///
    /// Blank lines are skipped, a UTF-8 byte order mark is ignored, and unquoted cells are
    /// trimmed of spaces; quoted cells are kept exactly and may hold the delimiter, newlines
    /// and doubled quotes.
    public init(csv text: String, delimiter: Character = ",") throws {
        let records = try CSV.records(in: text, delimiter: delimiter, owner: "CSVTable")
        guard let header = records.first else {
            throw KestrelError.fileError("CSVTable: the CSV text is empty; expected a header line of column names")
        }
        try Self.checkUnique(header.fields) {
            KestrelError.fileError("CSVTable: line \(header.line): \($0)")
        }
        let width = header.fields.count
        var cells = [[String]](repeating: [], count: width)
        for j in 0..<width { cells[j].reserveCapacity(records.count - 1) }
        var lines: [Int] = []
        lines.reserveCapacity(records.count - 1)
        for record in records.dropFirst() {
            guard record.fields.count == width else {
                throw KestrelError.fileError(
                    "CSVTable: line \(record.line) has \(record.fields.count) cells, expected \(width) like the header")
            }
            for (j, cell) in record.fields.enumerated() { cells[j].append(cell) }
            lines.append(record.line)
        }
        self.init(uncheckedColumns: header.fields, cells: cells, lines: lines)
    }

    /// Reads a CSV file in UTF-8 (see `init(csv:delimiter:)`).
    public init(contentsOf url: URL, delimiter: Character = ",") throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw KestrelError.fileError("CSVTable: cannot read \(url.path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw KestrelError.fileError("CSVTable: \(url.path) is not UTF-8 text; expected a UTF-8 CSV file")
        }
        try self.init(csv: text, delimiter: delimiter)
    }

    /// A table from column names and rows of cells.
    ///
    /// Rows are numbered in error messages as the lines they would occupy in a CSV file with
    /// a header, so `rows[0]` is line 2.
    public init(columns: [String], rows: [[String]]) throws {
        try Self.checkUnique(columns) { KestrelError.invalidArgument("CSVTable: \($0)") }
        var cells = [[String]](repeating: [], count: columns.count)
        for j in columns.indices { cells[j].reserveCapacity(rows.count) }
        for (r, row) in rows.enumerated() {
            guard row.count == columns.count else {
                throw KestrelError.invalidArgument(
                    "CSVTable: row \(r) (line \(r + 2)) has \(row.count) cells, expected \(columns.count) like the columns")
            }
            for (j, cell) in row.enumerated() { cells[j].append(cell) }
        }
        self.init(uncheckedColumns: columns, cells: cells, lines: rows.indices.map { $0 + 2 })
    }

    /// Tables are equal when their column names and cells are; the file lines the rows came
    /// from only serve error messages.
    public static func == (lhs: CSVTable, rhs: CSVTable) -> Bool {
        lhs.columnNames == rhs.columnNames && lhs.cells == rhs.cells
    }

    // MARK: - Typed access

    /// The cells of a column, as read.
    public func strings(_ column: String) throws -> [String] {
        cells[try index(of: column)]
    }

    /// The cells of a column as numbers.
    ///
    /// - Throws: `KestrelError.fileError` naming the column, the line and the cell when a
    ///   cell (including an empty one) is not a number.
    public func numbers(_ column: String) throws -> [Float] {
        let j = try index(of: column)
        var out: [Float] = []
        out.reserveCapacity(rowCount)
        for (r, cell) in cells[j].enumerated() {
            guard let value = Self.number(cell) else {
                let found = cell.isEmpty ? "an empty cell" : "'\(cell)'"
                throw KestrelError.fileError(
                    "CSVTable: column '\(column)', line \(lines[r]): expected a number, found \(found)")
            }
            out.append(value)
        }
        return out
    }

    /// A numeric column as a `[rows, 1]` tensor, the shape a Keras `Input(shape: [1])` takes.
    public func column(_ column: String) throws -> Tensor {
        Tensor(shape: [rowCount, 1], scalars: try numbers(column))
    }

    /// Numeric columns side by side, `[rows, columns.count]`, in the order given.
    public func features(_ columns: [String]) throws -> Tensor {
        guard !columns.isEmpty else {
            throw KestrelError.invalidArgument("CSVTable: features needs at least one column name; found none")
        }
        let values = try columns.map { try numbers($0) }
        var scalars = [Float](repeating: 0, count: rowCount * columns.count)
        for (j, column) in values.enumerated() {
            for r in 0..<rowCount { scalars[r * columns.count + j] = column[r] }
        }
        return Tensor(shape: [rowCount, columns.count], scalars: scalars)
    }

    /// Whether every cell of the column is a number (true for a table without rows; false
    /// for a column that does not exist).
    public func isNumeric(_ column: String) -> Bool {
        guard let j = columnNames.firstIndex(of: column) else { return false }
        return cells[j].allSatisfy { Self.number($0) != nil }
    }

    // MARK: - Selecting rows and columns

    /// The rows at `indices` (0-based), in that order; repeats are allowed.
    public func rows(_ indices: some Sequence<Int>) throws -> CSVTable {
        let selected = Array(indices)
        for r in selected where !(0..<rowCount).contains(r) {
            throw KestrelError.invalidArgument(
                "CSVTable: row index \(r) is out of range; expected 0..<\(rowCount) for a table of \(rowCount) rows")
        }
        return gathering(selected)
    }

    /// A seeded random split into training and validation rows (pandas'
    /// `dataframe.sample(frac: validationFraction, random_state: seed)` and the rest).
    ///
    /// Validation gets `validationFraction × rowCount` rows, rounded half to even as Python's
    /// `round` does; both parts keep the file's row order.
    public func split(validationFraction: Double, seed: UInt64) throws -> (training: CSVTable, validation: CSVTable) {
        guard validationFraction >= 0, validationFraction <= 1 else {
            throw KestrelError.invalidArgument(
                "CSVTable: validationFraction must be in 0...1; found \(validationFraction)")
        }
        let validationCount = Int((validationFraction * Double(rowCount)).rounded(.toNearestOrEven))
        var order = Array(0..<rowCount)
        var generator = RandomGenerator(seed: seed)
        order.withUnsafeMutableBufferPointer { generator.shuffle($0) }
        var isValidation = [Bool](repeating: false, count: rowCount)
        for r in order.prefix(validationCount) { isValidation[r] = true }
        let indices = Array(0..<rowCount)
        return (gathering(indices.filter { !isValidation[$0] }), gathering(indices.filter { isValidation[$0] }))
    }

    /// The table without `column`, as `dataframe.pop` leaves it but without mutating.
    public func dropping(_ column: String) throws -> CSVTable {
        let j = try index(of: column)
        var names = columnNames
        names.remove(at: j)
        var kept = cells
        kept.remove(at: j)
        return CSVTable(uncheckedColumns: names, cells: kept, lines: lines)
    }

    // MARK: - Helpers

    private func gathering(_ rows: [Int]) -> CSVTable {
        CSVTable(uncheckedColumns: columnNames,
                 cells: cells.map { column in rows.map { column[$0] } },
                 lines: rows.map { lines[$0] })
    }

    private func index(of column: String) throws -> Int {
        guard let j = columnNames.firstIndex(of: column) else {
            throw KestrelError.invalidArgument(
                "CSVTable: no column named '\(column)'; columns are \(columnNames.joined(separator: ", "))")
        }
        return j
    }

    /// Quoted cells are kept exactly, so a quoted `" 7"` still carries its spaces; they do not
    /// make it any less a number.
    private static func number(_ cell: String) -> Float? {
        if let value = Float(cell) { return value }
        let trimmed = cell.trimmingCharacters(in: .whitespaces)
        return trimmed.isEmpty ? nil : Float(trimmed)
    }

    private static func checkUnique(_ names: [String], error: (String) -> KestrelError) throws {
        var seen: [String: Int] = [:]
        for (j, name) in names.enumerated() {
            if let first = seen[name] {
                throw error("column name '\(name)' appears twice (columns \(first + 1) and \(j + 1)); names must be unique")
            }
            seen[name] = j
        }
    }
}
