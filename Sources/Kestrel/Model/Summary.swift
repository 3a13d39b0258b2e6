import Foundation

extension Model {
    /// The Keras-style summary table: layer (type), output shape, parameter counts, totals.
    public func summaryText() throws -> String {
        try build()
        let g = graph!
        let widths = [33, 26, 15]
        func cell(_ s: String, _ w: Int, right: Bool = false) -> String {
            let text = s.count > w - 2 ? String(s.prefix(w - 3)) + "…" : s
            let pad = String(repeating: " ", count: max(0, w - 2 - text.count))
            return " " + (right ? pad + text : text + pad) + " "
        }
        func rule(_ l: String, _ m: String, _ r: String, _ f: String) -> String {
            l + widths.map { String(repeating: f, count: $0) }.joined(separator: m) + r
        }
        var lines = ["Model: \"\(name)\""]
        lines.append(rule("┏", "┳", "┓", "━"))
        lines.append("┃" + cell("Layer (type)", widths[0]) + "┃" + cell("Output Shape", widths[1]) + "┃"
                     + cell("Param #", widths[2], right: true) + "┃")
        lines.append(rule("┡", "╇", "┩", "━"))
        var rows: [String] = []
        var seen = Set<ObjectIdentifier>()
        for (i, node) in g.nodes.enumerated() where !(node.layer is InputLayer) {
            let layer = node.layer
            let first = seen.insert(ObjectIdentifier(layer)).inserted
            let shape = "(None, " + shapes[i].map(String.init).joined(separator: ", ") + ")"
            let params = first ? layer.parameterCount : 0
            rows.append("│" + cell("\(layer.name) (\(layer.className))", widths[0]) + "│" + cell(shape, widths[1]) + "│"
                        + cell(Model.grouped(params), widths[2], right: true) + "│")
        }
        lines.append(rows.joined(separator: "\n" + rule("├", "┼", "┤", "─") + "\n"))
        lines.append(rule("└", "┴", "┘", "─"))
        let total = store!.count
        let trainable = g.uniqueLayers.reduce(0) { $0 + $1.trainableParameterCount }
        lines.append(" Total params: \(Model.grouped(total)) (\(Model.bytes(total * 4)))")
        lines.append(" Trainable params: \(Model.grouped(trainable)) (\(Model.bytes(trainable * 4)))")
        lines.append(" Non-trainable params: \(Model.grouped(total - trainable)) (\(Model.bytes((total - trainable) * 4)))")
        return lines.joined(separator: "\n")
    }

    /// Prints the summary table (Keras `summary()`).
    public func summary() throws {
        print(try summaryText())
    }

    static func grouped(_ n: Int) -> String {
        let digits = Array(String(n))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(d)
        }
        return out
    }

    static func bytes(_ n: Int) -> String {
        let units = ["B", "KB", "MB", "GB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.2f %@", value, units[unit])
    }
}
