/// One record of CSV text: its fields and the line it starts on.
package struct CSVRecord: Sendable, Equatable {
    /// The 1-based line of the text where the record starts; a record whose quoted fields
    /// hold newlines spans several lines, and errors should point at its first.
    package var line: Int
    /// The fields, unquoted.
    package var fields: [String]

    package init(line: Int, fields: [String]) {
        self.line = line
        self.fields = fields
    }
}

/// An RFC 4180 record parser, shared by the CSV readers so that they agree on quoting.
///
/// Beyond the RFC, it accepts what hand-written and spreadsheet-exported files contain:
/// `\n` as well as `\r\n` line ends, a last line without a line end, blank lines (skipped),
/// a UTF-8 byte order mark, and spaces around fields. Unquoted fields are trimmed of spaces
/// and tabs; quoted fields are kept exactly, since quoting is how a writer asks for that.
/// Like Python's `csv` module and pandas, a quote inside an unquoted field is an ordinary
/// character, and text after a closing quote is appended to the field.
package enum CSV {
    /// The records of `text`.
    ///
    /// - Parameters:
    ///   - delimiter: The field separator; any character but a quote or a line end.
    ///   - owner: The type named at the start of error messages, so that users see the API
    ///     they called rather than this parser.
    /// - Throws: `KestrelError.fileError` for a quoted field that is never closed, naming the
    ///   line where it opens; `KestrelError.invalidArgument` for an unusable delimiter.
    package static func records(in text: String, delimiter: Character = ",", owner: String = "CSV") throws -> [CSVRecord] {
        let separator = Array(String(delimiter).utf8)
        guard delimiter != "\"", delimiter != "\n", delimiter != "\r", delimiter != "\r\n" else {
            throw KestrelError.invalidArgument(
                "\(owner): the delimiter cannot be a quote or a line end; found \(String(reflecting: String(delimiter)))")
        }
        var text = text
        return try text.withUTF8 { bytes in
            var parser = Parser(bytes: bytes, separator: separator, owner: owner)
            return try parser.parse()
        }
    }

    private static let quote = UInt8(ascii: "\"")
    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let separator: [UInt8]
        let owner: String
        var position = 0
        var line = 1
        /// Quoted fields with doubled quotes or text after the closing quote are assembled here,
        /// reused so that the common case allocates nothing beyond the field's string.
        var scratch: [UInt8] = []

        init(bytes: UnsafeBufferPointer<UInt8>, separator: [UInt8], owner: String) {
            self.bytes = bytes
            self.separator = separator
            self.owner = owner
        }

        enum End { case delimiter, lineEnd, textEnd }

        /// A tab delimiter must not be eaten as padding, nor a space one.
        @inline(__always)
        func isPadding(_ byte: UInt8) -> Bool {
            (byte == 0x20 || byte == 0x09) && !(separator.count == 1 && separator[0] == byte)
        }

        @inline(__always)
        func isSeparator(at index: Int) -> Bool {
            guard bytes[index] == separator[0] else { return false }
            if separator.count == 1 { return true }
            guard index + separator.count <= bytes.count else { return false }
            for k in 1..<separator.count where bytes[index + k] != separator[k] { return false }
            return true
        }

        func string(_ start: Int, _ end: Int) -> String {
            String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }

        mutating func parse() throws -> [CSVRecord] {
            if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { position = 3 }
            var records: [CSVRecord] = []
            var width = 0
            while position < bytes.count {
                let recordLine = line
                var fields: [String] = []
                fields.reserveCapacity(width)
                var hasQuotedField = false
                while true {
                    let (field, quoted, end) = try nextField()
                    fields.append(field)
                    hasQuotedField = hasQuotedField || quoted
                    if end != .delimiter { break }
                }
                // A line of nothing but spaces is blank, whereas `""` is a record holding one
                // empty value (a single-column file may need it).
                if fields.count == 1, !hasQuotedField, fields[0].isEmpty { continue }
                width = fields.count
                records.append(CSVRecord(line: recordLine, fields: fields))
            }
            return records
        }

        /// Reads one field from `position` and steps past the delimiter or line end after it.
        mutating func nextField() throws -> (String, quoted: Bool, End) {
            let count = bytes.count
            var i = position
            while i < count, isPadding(bytes[i]) { i += 1 }
            guard i < count, bytes[i] == CSV.quote else { return unquotedField(from: i) }

            let openingLine = line
            i += 1
            var segmentStart = i
            scratch.removeAll(keepingCapacity: true)
            var assembled = false
            while true {
                guard i < count else {
                    throw KestrelError.fileError(
                        "\(owner): line \(openingLine): a quoted field starts on this line but is never closed; "
                            + "expected a closing '\"' before the end of the text")
                }
                let byte = bytes[i]
                if byte == CSV.newline {
                    line += 1
                } else if byte == CSV.quote {
                    if i + 1 < count, bytes[i + 1] == CSV.quote {
                        // A doubled quote stands for one: keep the first, skip the second.
                        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart...i]))
                        assembled = true
                        i += 2
                        segmentStart = i
                        continue
                    }
                    break
                }
                i += 1
            }
            let closing = i
            i += 1
            // Text between the closing quote and the delimiter is malformed, but readers
            // (Python's csv, pandas) keep it rather than fail, and so does this one.
            let (fieldEnd, end, next) = scanToFieldEnd(from: i)
            position = next
            var tailEnd = fieldEnd
            while tailEnd > i, isPadding(bytes[tailEnd - 1]) { tailEnd -= 1 }
            if !assembled, tailEnd == i { return (string(segmentStart, closing), true, end) }
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[segmentStart..<closing]))
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<tailEnd]))
            return (String(decoding: scratch, as: UTF8.self), true, end)
        }

        mutating func unquotedField(from start: Int) -> (String, quoted: Bool, End) {
            let (scanEnd, end, next) = scanToFieldEnd(from: start)
            var fieldEnd = scanEnd
            while fieldEnd > start, isPadding(bytes[fieldEnd - 1]) { fieldEnd -= 1 }
            position = next
            return (string(start, fieldEnd), false, end)
        }

        /// Where the field starting at `start` ends (excluding a `\r` of a `\r\n`), how, and
        /// where the next field starts; counts the line end it steps over.
        mutating func scanToFieldEnd(from start: Int) -> (Int, End, Int) {
            let count = bytes.count
            var i = start
            while i < count {
                let byte = bytes[i]
                if byte == CSV.newline {
                    line += 1
                    let fieldEnd = i > start && bytes[i - 1] == CSV.carriageReturn ? i - 1 : i
                    return (fieldEnd, .lineEnd, i + 1)
                }
                if isSeparator(at: i) { return (i, .delimiter, i + separator.count) }
                i += 1
            }
            return (count, .textEnd, count)
        }
    }
}
