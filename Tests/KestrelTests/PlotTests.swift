import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Kestrel
import XCTest

/// Parses a document as XML and collects element names and text, so a test fails on anything
/// a browser would refuse.
private final class SVGCollector: NSObject, XMLParserDelegate {
    var elements: [String: Int] = [:]
    var texts: [String] = []
    var root: String?
    private var current = ""

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        if root == nil { root = name }
        elements[name, default: 0] += 1
        current = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" { texts.append(current) }
        current = ""
    }
}

private func parseSVG(_ document: String, file: StaticString = #filePath, line: UInt = #line) -> SVGCollector {
    let parser = XMLParser(data: Data(document.utf8))
    let collector = SVGCollector()
    parser.delegate = collector
    XCTAssertTrue(parser.parse(), "not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?")", file: file, line: line)
    XCTAssertEqual(collector.root, "svg", file: file, line: line)
    return collector
}

final class PlotTests: XCTestCase {
    private func history() throws -> History {
        let history = History()
        for (epoch, (loss, accuracy)) in zip([0.9, 0.6, 0.5] as [Float], [0.6, 0.75, 0.8] as [Float]).enumerated() {
            history.onEpochEnd(epoch, logs: ["loss": loss, "accuracy": accuracy, "val_loss": loss + 0.1,
                                                 "val_accuracy": accuracy - 0.05])
        }
        return history
    }

    func testHistoryPlotIsWellFormedWithOnePanelPerQuantity() throws {
        let svg = try history().svg(title: "Loss & <accuracy>")
        let parsed = parseSVG(svg)
        XCTAssertTrue(parsed.texts.contains("Loss & <accuracy>"), "title escaped and readable")
        XCTAssertTrue(parsed.texts.contains("loss") && parsed.texts.contains("accuracy"))
        XCTAssertTrue(parsed.texts.contains("training") && parsed.texts.contains("validation"))
        XCTAssertEqual(parsed.elements["polyline"], 4, "train and validation lines in two panels")
        XCTAssertEqual(parsed.elements["circle"], 12)
        XCTAssertThrowsError(try History().svg())

        let path = NSTemporaryDirectory() + "kestrel-plot-\(UUID().uuidString).svg"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try history().plot(to: path)
        _ = parseSVG(try String(contentsOfFile: path, encoding: .utf8))
        XCTAssertThrowsError(try history().plot(to: "/nonexistent-dir/x.svg")) { XCTAssertTrue("\($0)".contains("History.plot")) }
    }

    func testConfusionMatrixCountsAndPicture() throws {
        let m = try ConfusionMatrix(trueLabels: [0, 0, 1, 2, 2, 2], predictedLabels: [0, 1, 1, 2, 2, 0],
                                    classNames: ["T-shirt/top", "Trouser", "A&B"])
        XCTAssertEqual(m.counts, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
        XCTAssertEqual(m.accuracy, 4.0 / 6, accuracy: 1e-6)
        let parsed = parseSVG(m.svg())
        XCTAssertEqual(parsed.elements["rect"], 1 + 9)
        XCTAssertTrue(parsed.texts.contains("A&B"))
        XCTAssertTrue(parsed.texts.contains("Predicted label") && parsed.texts.contains("True label"))
        XCTAssertThrowsError(try ConfusionMatrix(trueLabels: [0, 3], predictedLabels: [0, 0], classNames: ["a", "b"]))
        XCTAssertThrowsError(try ConfusionMatrix(trueLabels: [0], predictedLabels: [0, 0], classNames: ["a"]))
    }

    func testImageGridMarksWrongPredictionsAndEmbedsValidPNGs() throws {
        var pixels = [Float](repeating: 0, count: 3 * 4 * 5)
        for i in pixels.indices { pixels[i] = Float(i % 7) * 40 }
        let grid = try ImageGrid(images: Tensor(shape: [3, 4, 5], scalars: pixels), trueLabels: [0, 1, 1],
                                 predictedLabels: [0, 0, 1], confidences: [0.9, 0.55, 0.7], classNames: ["Coat", "Bag"])
        let svg = grid.svg(title: "grid")
        let parsed = parseSVG(svg)
        XCTAssertEqual(parsed.elements["image"], 3)
        XCTAssertTrue(parsed.texts.contains("Coat 90%"))
        XCTAssertTrue(parsed.texts.contains("✗ Coat 55%"), "the wrong prediction is marked: \(parsed.texts)")
        XCTAssertTrue(parsed.texts.contains("(Bag)"))
        XCTAssertEqual(svg.components(separatedBy: "#d62728").count - 1, 3, "red frame and both captions of the one wrong image")

        // The embedded PNG: signature, IHDR of 5×4 grayscale, chunk CRCs, and pixel bytes.
        let start = svg.range(of: "base64,")!.upperBound
        let end = svg[start...].firstIndex(of: "\"")!
        let png = [UInt8](Data(base64Encoded: String(svg[start..<end]))!)
        XCTAssertEqual(Array(png[0..<8]), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var offset = 8
        var types: [String] = []
        while offset < png.count {
            let length = png[offset..<(offset + 4)].reduce(0) { $0 << 8 | Int($1) }
            let typed = Array(png[(offset + 4)..<(offset + 8 + length)])
            let stored = png[(offset + 8 + length)..<(offset + 12 + length)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            XCTAssertEqual(GrayscalePNG.crc32(typed), stored)
            types.append(String(decoding: typed[0..<4], as: UTF8.self))
            if types.last == "IHDR" { XCTAssertEqual(Array(typed[4..<17]), [0, 0, 0, 5, 0, 0, 0, 4, 8, 0, 0, 0, 0]) }
            offset += 12 + length
        }
        XCTAssertEqual(types, ["IHDR", "IDAT", "IEND"])
        XCTAssertEqual(GrayscalePNG.crc32(Array("123456789".utf8)), 0xCBF4_3926)

        XCTAssertThrowsError(try ImageGrid(images: Tensor(shape: [2, 4], scalars: Array(repeating: 0, count: 8)),
                                           trueLabels: [0, 0], classNames: ["a"]))
        XCTAssertThrowsError(try ImageGrid(images: Tensor(shape: [1, 2, 2], scalars: [0, 0, 0, 0]), trueLabels: [3],
                                           classNames: ["a"]))
    }
}
