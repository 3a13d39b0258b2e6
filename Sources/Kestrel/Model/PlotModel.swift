import Foundation

/// Writes a picture of a model's graph, like `keras.utils.plot_model(show_shapes=True)`:
/// one box per layer call with its name and type (and input/output shapes), arrows along the
/// data flow.
///
/// The format follows the file extension: `.dot` writes Graphviz source; `.svg`, `.png` and
/// `.pdf` run Graphviz's `dot` program (Debian's `graphviz`, installed by `scripts/setup.sh`)
/// and throw a message saying how to install it when it is missing.
public func plotModel(_ model: Model, to path: String, showShapes: Bool = true, showLayerNames: Bool = true,
                      rankdir: String = "TB") throws {
    let dot = try model.graphvizSource(showShapes: showShapes, showLayerNames: showLayerNames, rankdir: rankdir)
    let ext = (path as NSString).pathExtension.lowercased()
    switch ext {
    case "dot", "gv":
        try writeAtomically(Data(dot.utf8), to: path)
    case "svg", "png", "pdf":
        guard let program = findExecutable("dot") else {
            throw KestrelError.fileError(
                "plotModel: writing \(path) needs Graphviz's 'dot' program, which is not installed (apt-get install graphviz, or run scripts/setup.sh); use a .dot path to write the source only")
        }
        try AtomicFile.write(to: path) { temporary in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = ["-T\(ext)", "-o", temporary]
            let input = Pipe(), errors = Pipe()
            process.standardInput = input
            process.standardError = errors
            try process.run()
            input.fileHandleForWriting.write(Data(dot.utf8))
            try input.fileHandleForWriting.close()
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw KestrelError.fileError("plotModel: dot failed writing \(path): \(message)")
            }
        }
    default:
        throw KestrelError.invalidArgument("plotModel: unknown format '.\(ext)' in \(path); expected .dot, .svg, .png or .pdf")
    }
}

func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

extension Model {
    /// Graphviz source for the model's graph (see `plotModel`).
    public func graphvizSource(showShapes: Bool = true, showLayerNames: Bool = true, rankdir: String = "TB") throws -> String {
        try build()
        let g = graph!
        func shape(_ s: [Int]) -> String { "(None, " + s.map(String.init).joined(separator: ", ") + ")" }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var lines = [
            "digraph \"\(escape(name))\" {",
            "  graph [rankdir=\(rankdir), fontname=\"Helvetica\", nodesep=0.4, ranksep=0.45];",
            "  node [shape=plain, fontname=\"Helvetica\", fontsize=11];",
            "  edge [color=\"#555555\", arrowsize=0.7];",
        ]
        // A selected output (a recurrent layer's state) is drawn as an edge from its call.
        func call(_ p: Int) -> Int { g.selectedOutput(p)?.node ?? p }
        for (i, node) in g.nodes.enumerated() where !(node.layer is OutputSelector) {
            let layer = node.layer
            let title = showLayerNames ? "<b>\(escape(layer.name))</b> (\(escape(layer.className)))" : escape(layer.className)
            var rows = ["<tr><td colspan=\"2\" bgcolor=\"#dbe7f5\">\(title)</td></tr>"]
            if showShapes {
                let inputs = node.inputs.isEmpty ? shape(shapes[i]) : node.inputs.map { shape(shapes[$0]) }.joined(separator: ", ")
                rows.append("<tr><td align=\"left\">Input shape</td><td align=\"left\">\(escape(inputs))</td></tr>")
                let all = [shapes[i]] + layer.additionalOutputShapes(forInputs: node.inputs.map { shapes[$0] })
                rows.append("<tr><td align=\"left\">Output shape</td><td align=\"left\">\(escape(all.map(shape).joined(separator: ", ")))</td></tr>")
            }
            lines.append("  n\(i) [label=<<table border=\"1\" cellborder=\"0\" cellspacing=\"0\" cellpadding=\"4\">\(rows.joined())</table>>];")
        }
        for (i, node) in g.nodes.enumerated() where !(node.layer is OutputSelector) {
            for p in node.inputs { lines.append("  n\(call(p)) -> n\(i);") }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
