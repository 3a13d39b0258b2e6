import Foundation
import XCTest

/// Docs/Layers.md is generated from the layer sources (class, Keras name from its doc comment,
/// initialisers with their defaults), so it cannot drift from the code: this test fails when
/// the file differs from what the sources say. Regenerate it with
/// `KESTREL_UPDATE_DOCS=1 swift test --filter LayerCatalogTests`.
final class LayerCatalogTests: XCTestCase {
    struct Declaration {
        var name: String, superclass: String, isFinal: Bool, family: String
        var doc: [String], initializers: [String]
        var kerasName: String? {
            let text = doc.joined(separator: " ")
            guard let r = text.range(of: #"Keras `[A-Za-z0-9_.]+`"#, options: .regularExpression) else { return nil }
            return String(text[r].dropFirst(7).dropLast())
        }
        var summary: String {
            // The first sentence of the doc comment.
            let text = doc.joined(separator: " ")
            if let end = text.range(of: ". ") { return String(text[..<end.lowerBound]) + "." }
            return text
        }
    }

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Every class declared under Sources/Kestrel/Layers, with its initialisers.
    static func declarations() throws -> [Declaration] {
        let layers = root.appendingPathComponent("Sources/Kestrel/Layers")
        let files = FileManager.default.enumerator(at: layers, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }.sorted { $0.path < $1.path }
        let classPattern = try NSRegularExpression(pattern: #"^(public|open) (final )?class (\w+)(?:: (\w+))?"#)
        var result: [Declaration] = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let lines = text.components(separatedBy: "\n")
            let family = file.deletingLastPathComponent().lastPathComponent
            for (i, line) in lines.enumerated() {
                let range = NSRange(line.startIndex..., in: line)
                guard let m = classPattern.firstMatch(in: line, range: range) else { continue }
                func group(_ k: Int) -> String { Range(m.range(at: k), in: line).map { String(line[$0]) } ?? "" }
                var doc: [String] = []
                var j = i - 1
                while j >= 0, lines[j].hasPrefix("///") {
                    doc.insert(lines[j].dropFirst(3).trimmingCharacters(in: .whitespaces), at: 0)
                    j -= 1
                }
                // Initialisers at member level until the next top-level declaration.
                var initializers: [String] = []
                var k = i + 1
                while k < lines.count, !lines[k].hasPrefix("}") {
                    if lines[k].hasPrefix("    public init(") {
                        var signature = "", depth = 0, done = false
                        var row = k
                        while !done, row < lines.count {
                            for ch in lines[row].trimmingCharacters(in: .whitespaces) {
                                if ch == "(" { depth += 1 }
                                if ch == ")" { depth -= 1; if depth == 0 { signature.append(ch); done = true; break } }
                                signature.append(ch)
                            }
                            if !done { signature.append(" ") }
                            row += 1
                        }
                        initializers.append(signature.replacingOccurrences(of: "public init", with: group(3))
                            .replacingOccurrences(of: "( ", with: "("))
                    }
                    k += 1
                }
                result.append(Declaration(name: group(3), superclass: group(4), isFinal: m.range(at: 2).length != 0,
                                          family: family, doc: doc, initializers: initializers))
            }
        }
        return result
    }

    /// Whether `name` descends from Layer among `all`.
    static func isLayer(_ name: String, _ all: [Declaration]) -> Bool {
        let bySuper = Dictionary(all.map { ($0.name, $0.superclass) }, uniquingKeysWith: { a, _ in a })
        var current = name
        while let s = bySuper[current] { if s == "Layer" { return true }; current = s }
        return false
    }

    /// Final classes that descend from Layer: the layers a user can create.
    static func layers() throws -> [Declaration] {
        let all = try declarations()
        return all.filter { $0.isFinal && isLayer($0.name, all) }
    }

    /// Final classes of the preprocessing family that are not layers: the text and lookup
    /// preprocessors, which take strings (or integers) outside the model.
    static func preprocessors() throws -> [Declaration] {
        let all = try declarations()
        return all.filter { $0.isFinal && $0.family == "Preprocessing" && !isLayer($0.name, all) }
    }

    static func render(_ layers: [Declaration], preprocessors: [Declaration]) -> String {
        var out = """
            # Layer catalog

            Every layer Kestrel offers, by family: its Keras name, what it does, and its initialisers
            with their defaults (Keras's defaults; Swift spelling). Shapes are per sample, channels
            last. This page is generated from the sources by `LayerCatalogTests`, which fails when
            it is out of date; regenerate it with
            `KESTREL_UPDATE_DOCS=1 swift test --filter LayerCatalogTests`.

            Sizes typed `SpatialSize` take one integer for every axis (`3`) or one per axis (`[3, 5]`).
            Weight regularizers are `Regularizer.l1(_:)`, `.l2(_:)`, `.l1l2(l1:l2:)` (Keras `L1`, `L2`,
            `L1L2`); any layer also takes one as its `activityRegularizer` property (Keras's
            `activity_regularizer`: the penalty of each batch's output over the batch size joins the
            loss), which `Dense`, `Conv1D` and `Conv2D` take as an argument too; constraints are `Constraint.maxNorm(_:axis:)`, `.nonNeg`, `.unitNorm` (Keras
            `MaxNorm`, `NonNeg`, `UnitNorm`). Augmentation ranges typed `AugmentationRange` take one
            number (`0.2`: −0.2…0.2) or two ends (`[-0.1, 0.3]`), as Keras's `factor` arguments
            (RandomContrast's are relative to 1: `0.2` is 0.8…1.2); the random augmentations act in
            training only and pass images through in inference, except RandomCrop, which then
            resizes the centred window of the target's aspect ratio.

            """
        let families = Dictionary(grouping: layers, by: \.family)
        for family in families.keys.sorted() {
            out += "\n## \(family)\n\n| Kestrel | Keras | What it does |\n|---|---|---|\n"
            let members = families[family]!.sorted { $0.name < $1.name }
            for layer in members {
                out += "| [`\(layer.name)`](#\(layer.name.lowercased())) | `\(layer.kerasName ?? "—")` | \(layer.summary.replacingOccurrences(of: "|", with: "\\|")) |\n"
            }
            for layer in members {
                out += "\n### \(layer.name)\n\n```swift\n" + layer.initializers.joined(separator: "\n") + "\n```\n"
            }
        }
        out += """

            ## Text and lookup preprocessing

            These take strings (or integers) and give tensors, so they run before the model, as
            in Keras's data pipelines; `adapt(_:)` learns a vocabulary, `vocabulary()` and
            `setVocabulary(_:)` read and replace it. Their initialisers throw on invalid arguments.

            | Kestrel | Keras | What it does |
            |---|---|---|

            """
        let sorted = preprocessors.sorted { $0.name < $1.name }
        for p in sorted {
            out += "| [`\(p.name)`](#\(p.name.lowercased())) | `\(p.kerasName ?? "—")` | \(p.summary.replacingOccurrences(of: "|", with: "\\|")) |\n"
        }
        for p in sorted {
            out += "\n### \(p.name)\n\n```swift\n" + p.initializers.joined(separator: "\n") + "\n```\n"
        }
        return out
    }

    func testEveryLayerHasAKerasNameAndTheCatalogIsCurrent() throws {
        let layers = try Self.layers()
        let names = Set(layers.map(\.name))
        // The parser must see the layers we know exist, so an empty or partial scan fails.
        for expected in ["Dense", "Conv2D", "Conv1D", "MaxPooling2D", "BatchNormalization", "Dropout", "Flatten",
                         "SeparableConv2D", "Permute", "InputLayer"] {
            XCTAssertTrue(names.contains(expected), "catalog scan misses \(expected)")
        }
        let preprocessors = try Self.preprocessors()
        XCTAssertEqual(Set(preprocessors.map(\.name)), ["TextVectorization", "StringLookup", "IntegerLookup"])
        for layer in layers + preprocessors {
            XCTAssertNotNil(layer.kerasName, "\(layer.name): its doc comment must name its Keras class (Keras `Name`)")
            XCTAssertFalse(layer.initializers.isEmpty, "\(layer.name): no public initialiser found")
        }
        let text = Self.render(layers, preprocessors: preprocessors)
        let url = Self.root.appendingPathComponent("Docs/Layers.md")
        if ProcessInfo.processInfo.environment["KESTREL_UPDATE_DOCS"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let current = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        XCTAssertEqual(current, text, "Docs/Layers.md is out of date; run KESTREL_UPDATE_DOCS=1 swift test --filter LayerCatalogTests")
    }
}
