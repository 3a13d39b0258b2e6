import Foundation
import Kestrel
import KestrelDatasets
import XCTest

/// Fails unless `body` throws `KestrelError.invalidArgument` whose message contains every fragment.
private func assertCSVInvalidArgument<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                                         file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected KestrelError.invalidArgument, but the call succeeded", file: file, line: line)
    } catch KestrelError.invalidArgument(let message) {
        for fragment in fragments where !message.contains(fragment) {
            XCTFail("message does not contain \"\(fragment)\":\n\(message)", file: file, line: line)
        }
    } catch {
        XCTFail("expected KestrelError.invalidArgument, found \(error)", file: file, line: line)
    }
}

final class CSVTableTests: TemporaryDirectoryTestCase {
    /// The shape of the Keras heart-disease CSV: numbers and one string column.
    let heart = """
        age,sex,cp,thal,target
        63,1,1,fixed,0
        67,1,4,normal,1
        67,1,4,reversible,0
        37,1,3,normal,0

        """

    // MARK: - The record parser

    func testParserHandlesQuotedDelimitersNewlinesAndDoubledQuotes() throws {
        let text = "a,b,c\n\"x,y\",\"he said \"\"hi\"\"\",\"two\nlines\"\n\"\",plain,\"\"\"\"\n"
        let records = try CSV.records(in: text)
        XCTAssertEqual(records.map(\.fields), [
            ["a", "b", "c"],
            ["x,y", "he said \"hi\"", "two\nlines"],
            ["", "plain", "\""],
        ])
        // The record after a quoted newline starts one line further down.
        XCTAssertEqual(records.map(\.line), [1, 2, 4])
    }

    func testParserHandlesLineEndsBOMBlankLinesAndAMissingFinalNewline() throws {
        let text = "\u{FEFF}a,b\r\n1,2\r\n\r\n   \n3,\"4\r\n5\"\r\n\n6,7"
        let records = try CSV.records(in: text)
        XCTAssertEqual(records.map(\.fields), [["a", "b"], ["1", "2"], ["3", "4\r\n5"], ["6", "7"]])
        XCTAssertEqual(records.map(\.line), [1, 2, 5, 8])
        XCTAssertEqual(try CSV.records(in: "").count, 0)
        XCTAssertEqual(try CSV.records(in: "\n\n  \r\n").count, 0)
        // A trailing delimiter is an empty last field, and `""` alone is a value, not a blank line.
        XCTAssertEqual(try CSV.records(in: "a,\n\"\"").map(\.fields), [["a", ""], [""]])
    }

    func testParserTrimsUnquotedFieldsAndKeepsQuotedOnes() throws {
        let records = try CSV.records(in: "  a , b\t,\" c \" ,  \"d\"\n")
        XCTAssertEqual(records.map(\.fields), [["a", "b", " c ", "d"]])
        // Like Python's csv: quotes inside an unquoted field are characters, text after a
        // closing quote joins the field.
        XCTAssertEqual(try CSV.records(in: "ab\"c,\"q\"r s \n").map(\.fields), [["ab\"c", "qr s"]])
        XCTAssertEqual(try CSV.records(in: "é,\"ü,ß\"\n").map(\.fields), [["é", "ü,ß"]])
    }

    func testParserTakesOtherDelimiters() throws {
        XCTAssertEqual(try CSV.records(in: "a;b\n\"1;2\";3\n", delimiter: ";").map(\.fields), [["a", "b"], ["1;2", "3"]])
        XCTAssertEqual(try CSV.records(in: "a\tb\n \t2\n", delimiter: "\t").map(\.fields), [["a", "b"], ["", "2"]])
        XCTAssertEqual(try CSV.records(in: "a→b→\"c→\"\n", delimiter: "→").map(\.fields), [["a", "b", "c→"]])
        assertCSVInvalidArgument(try CSV.records(in: "a", delimiter: "\""), contains: ["delimiter"])
        assertCSVInvalidArgument(try CSV.records(in: "a", delimiter: "\n"), contains: ["delimiter"])
    }

    func testParserNamesTheLineOfAnUnterminatedQuote() {
        assertFileError(try CSV.records(in: "a,b\n1,2\n3,\"open\n\n4,5\n", owner: "Probe"),
                        contains: ["Probe", "line 3", "never closed", "expected a closing '\"'"])
        assertFileError(try CSVTable(csv: "a\n\"x\"\"\n"), contains: ["CSVTable", "line 2"])
    }

    /// Many rows of quoted cells come through whole (the reading speed is measured by
    /// `kestrel-bench --structured-data`, not here).
    func testParsesALargeFile() throws {
        var text = "id,name,value\n"
        for i in 0..<100_000 { text += "\(i),\"name, \(i)\",\(Float(i) / 4)\n" }
        let table = try CSVTable(csv: text)
        XCTAssertEqual(table.rowCount, 100_000)
        XCTAssertEqual(try table.strings("name").last, "name, 99999")
        XCTAssertEqual(try table.numbers("value").last, 99_999 / 4)
        XCTAssertEqual(try table.numbers("id")[54_321], 54_321)
    }

    // MARK: - Typed access

    func testReadsMixedColumnsAndTypesThemOnAccess() throws {
        let table = try CSVTable(csv: heart)
        XCTAssertEqual(table.columnNames, ["age", "sex", "cp", "thal", "target"])
        XCTAssertEqual(table.rowCount, 4)
        XCTAssertEqual(try table.strings("thal"), ["fixed", "normal", "reversible", "normal"])
        XCTAssertEqual(try table.strings("age"), ["63", "67", "67", "37"])
        XCTAssertEqual(try table.numbers("age"), [63, 67, 67, 37])
        let target = try table.column("target")
        XCTAssertEqual(target.shape, [4, 1])
        XCTAssertEqual(target.scalars, [0, 1, 0, 0])
        let features = try table.features(["cp", "age"])
        XCTAssertEqual(features.shape, [4, 2])
        XCTAssertEqual(features.scalars, [1, 63, 4, 67, 4, 67, 3, 37])
        XCTAssertTrue(table.isNumeric("age"))
        XCTAssertFalse(table.isNumeric("thal"))
        XCTAssertFalse(table.isNumeric("missing"))
        // Quoted numbers, padded or not, are numbers; so are exponents and signs.
        let quoted = try CSVTable(csv: "x\n\"1.5\"\n\" 2 \"\n-3e2\n")
        XCTAssertEqual(try quoted.numbers("x"), [1.5, 2, -300])
        XCTAssertEqual(try quoted.strings("x"), ["1.5", " 2 ", "-3e2"])
    }

    func testHeaderOnlyTableHasNoRows() throws {
        let table = try CSVTable(csv: "a,b\n")
        XCTAssertEqual(table.rowCount, 0)
        XCTAssertEqual(try table.column("a").shape, [0, 1])
        XCTAssertTrue(table.isNumeric("a"))
    }

    func testReadsAFile() throws {
        let path = temporaryDirectory + "/heart.csv"
        try write([0xEF, 0xBB, 0xBF] + Array(heart.replacingOccurrences(of: "\n", with: "\r\n").utf8), to: path)
        let table = try CSVTable(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(table, try CSVTable(csv: heart))
        XCTAssertEqual(table.columnNames.first, "age")
        XCTAssertEqual(try table.strings("target"), ["0", "1", "0", "0"])
        assertFileError(try CSVTable(contentsOf: URL(fileURLWithPath: temporaryDirectory + "/missing.csv")),
                        contains: ["CSVTable", "cannot read", "missing.csv"])
        try write([0x61, 0x0A, 0xFF, 0xFE, 0x0A], to: path)
        assertFileError(try CSVTable(contentsOf: URL(fileURLWithPath: path)), contains: ["CSVTable", "UTF-8"])
    }

    // MARK: - Error messages

    func testNumberErrorsNameColumnLineAndCell() throws {
        let table = try CSVTable(csv: "a,b\n1,2\n\n3,x7\n4,\n")
        assertFileError(try table.numbers("b"), contains: ["CSVTable", "column 'b'", "line 4", "expected a number", "'x7'"])
        assertFileError(try table.column("b"), contains: ["column 'b'", "line 4", "'x7'"])
        assertFileError(try table.features(["a", "b"]), contains: ["column 'b'", "line 4", "'x7'"])
        let empty = try table.rows([0, 2])
        assertFileError(try empty.numbers("b"), contains: ["column 'b'", "line 5", "empty cell"])
        XCTAssertFalse(table.isNumeric("b"))
    }

    func testStructuralErrors() throws {
        assertFileError(try CSVTable(csv: "a,b\n1,2\n3\n"),
                        contains: ["CSVTable", "line 3", "has 1 cells", "expected 2 like the header"])
        assertFileError(try CSVTable(csv: "a,b\n1,2\n\n\"multi\nline\",2,3\n"),
                        contains: ["line 4", "has 3 cells", "expected 2"])
        assertFileError(try CSVTable(csv: "\n\nage,sex,age\n1,2,3\n"),
                        contains: ["CSVTable", "line 3", "'age'", "twice", "columns 1 and 3"])
        assertFileError(try CSVTable(csv: " \n\r\n"), contains: ["CSVTable", "empty", "header"])
        let table = try CSVTable(csv: heart)
        for call in [{ _ = try table.strings("thall") }, { _ = try table.numbers("thall") },
                     { _ = try table.column("thall") }, { _ = try table.features(["age", "thall"]) },
                     { _ = try table.dropping("thall") }] as [() throws -> Void] {
            assertCSVInvalidArgument(try call(), contains: ["CSVTable", "no column named 'thall'",
                                                            "columns are age, sex, cp, thal, target"])
        }
        assertCSVInvalidArgument(try table.features([]), contains: ["CSVTable", "at least one column"])
        assertCSVInvalidArgument(try table.rows([0, 4]), contains: ["CSVTable", "row index 4", "0..<4"])
        assertCSVInvalidArgument(try table.rows([-1]), contains: ["row index -1"])
        assertCSVInvalidArgument(try table.split(validationFraction: 1.5, seed: 1), contains: ["validationFraction", "1.5"])
        assertCSVInvalidArgument(try table.split(validationFraction: -0.1, seed: 1), contains: ["validationFraction"])
        assertCSVInvalidArgument(try table.split(validationFraction: .nan, seed: 1), contains: ["validationFraction"])
        assertCSVInvalidArgument(try CSVTable(columns: ["a", "b"], rows: [["1", "2"], ["3"]]),
                                 contains: ["CSVTable", "row 1", "line 3", "has 1 cells", "expected 2"])
        assertCSVInvalidArgument(try CSVTable(columns: ["a", "a"], rows: []),
                                 contains: ["CSVTable", "'a'", "twice", "columns 1 and 2"])
    }

    // MARK: - Rows, splits and columns

    func testRowsSelectsInOrderAndKeepsFileLines() throws {
        let table = try CSVTable(csv: "id,v\n0,a\n\n1,b\n2,c\n")
        let picked = try table.rows([2, 0, 2])
        XCTAssertEqual(try picked.strings("id"), ["2", "0", "2"])
        XCTAssertEqual(try picked.strings("v"), ["c", "a", "c"])
        XCTAssertEqual(try table.rows(1..<3), try CSVTable(columns: ["id", "v"], rows: [["1", "b"], ["2", "c"]]))
        XCTAssertEqual(try table.rows([]).rowCount, 0)
        // Errors in a selection still point at the line of the original file.
        assertFileError(try picked.numbers("v"), contains: ["line 5", "'c'"])
    }

    func testSplitIsSeededDisjointAndKeepsOrder() throws {
        let ids = (0..<50).map(String.init)
        let table = try CSVTable(columns: ["id", "label"], rows: ids.map { [$0, "x"] })
        let (training, validation) = try table.split(validationFraction: 0.2, seed: 1337)
        XCTAssertEqual(validation.rowCount, 10)
        XCTAssertEqual(training.rowCount, 40)
        let trainingIDs = try training.numbers("id").map(Int.init)
        let validationIDs = try validation.numbers("id").map(Int.init)
        XCTAssertEqual(trainingIDs, trainingIDs.sorted())
        XCTAssertEqual(validationIDs, validationIDs.sorted())
        XCTAssertTrue(Set(trainingIDs).isDisjoint(with: validationIDs))
        XCTAssertEqual(Set(trainingIDs).union(validationIDs), Set(0..<50))
        // Not just the first or last rows.
        XCTAssertNotEqual(validationIDs, Array(0..<10))
        XCTAssertNotEqual(validationIDs, Array(40..<50))

        let again = try table.split(validationFraction: 0.2, seed: 1337)
        XCTAssertEqual(again.training, training)
        XCTAssertEqual(again.validation, validation)
        let other = try table.split(validationFraction: 0.2, seed: 7)
        XCTAssertNotEqual(other.validation, validation)
        XCTAssertEqual(other.validation.rowCount, 10)

        // round(0.2 × 303) = 61, as in the Keras heart tutorial; halves round to even as in Python.
        let heartSized = try CSVTable(columns: ["id"], rows: (0..<303).map { [String($0)] })
        XCTAssertEqual(try heartSized.split(validationFraction: 0.2, seed: 1337).validation.rowCount, 61)
        XCTAssertEqual(try table.rows(0..<5).split(validationFraction: 0.5, seed: 1).validation.rowCount, 2)
        XCTAssertEqual(try table.split(validationFraction: 0, seed: 1).training, table)
        XCTAssertEqual(try table.split(validationFraction: 1, seed: 1).validation, table)
    }

    func testStringColumnRoundTripAndDropping() throws {
        let rows = [["fixed", "1"], ["normal, mostly", "0"], ["\"reversible\"", "1"], ["", "0"]]
        let table = try CSVTable(columns: ["thal", "target"], rows: rows)
        XCTAssertEqual(try table.strings("thal"), rows.map { $0[0] })
        XCTAssertEqual(try table.column("target").scalars, [1, 0, 1, 0])
        assertFileError(try table.column("thal"), contains: ["column 'thal'", "line 2", "'fixed'"])

        // Written as CSV with quoting and read back, the table is the same.
        func quoted(_ cell: String) -> String { "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        let text = (["thal,target"] + rows.map { $0.map(quoted).joined(separator: ",") }).joined(separator: "\r\n")
        let read = try CSVTable(csv: text)
        XCTAssertEqual(read, table)
        XCTAssertEqual(try read.strings("thal"), ["fixed", "normal, mostly", "\"reversible\"", ""])

        let dropped = try table.dropping("target")
        XCTAssertEqual(dropped.columnNames, ["thal"])
        XCTAssertEqual(dropped.rowCount, 4)
        XCTAssertEqual(try dropped.strings("thal"), rows.map { $0[0] })
        XCTAssertNotEqual(dropped, table)
    }
}
