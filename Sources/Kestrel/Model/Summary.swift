import Foundation

extension Model {
    /// Whether the summary lists input layers and a "Connected to" column (Keras does so for
    /// Functional models, not for Sequential ones).
    var isFunctional: Bool { !(self is Sequential) }

    /// For each node, the Keras-style names of the tensors it reads (`dense[0][0]`): the layer
    /// name, the index of that layer's call, and the output index (`lstm[0][1]` for a state).
    func inboundNames() -> [[String]] {
        guard let g = graph else { return [] }
        var callIndex: [Int] = []
        var calls: [ObjectIdentifier: Int] = [:]
        for node in g.nodes {
            let id = ObjectIdentifier(node.layer)
            callIndex.append(calls[id, default: 0])
            if !(node.layer is OutputSelector) { calls[id, default: 0] += 1 }
        }
        func tensorName(_ p: Int) -> String {
            guard let (call, k) = g.selectedOutput(p) else { return "\(g.nodes[p].layer.name)[\(callIndex[p])][0]" }
            return "\(g.nodes[call].layer.name)[\(callIndex[call])][\(k)]"
        }
        return g.nodes.map { node in node.inputs.map(tensorName) }
    }

    /// The Keras-style summary table: layer (type), output shape, parameter counts (and for
    /// Functional models the inputs of each call), then totals.
    public func summaryText() throws -> String {
        try build()
        let g = graph!
        let functional = isFunctional
        let widths = functional ? [31, 20, 11, 26] : [33, 26, 15]
        let headers = functional ? ["Layer (type)", "Output Shape", "Param #", "Connected to"]
                                 : ["Layer (type)", "Output Shape", "Param #"]
        func cell(_ s: String, _ w: Int, right: Bool = false) -> String {
            let text = s.count > w - 2 ? String(s.prefix(w - 3)) + "…" : s
            let pad = String(repeating: " ", count: max(0, w - 2 - text.count))
            return " " + (right ? pad + text : text + pad) + " "
        }
        func rule(_ l: String, _ m: String, _ r: String, _ f: String) -> String {
            l + widths.map { String(repeating: f, count: $0) }.joined(separator: m) + r
        }
        func row(_ columns: [[String]], left: String = "│") -> [String] {
            let height = columns.map(\.count).max() ?? 1
            return (0..<height).map { line in
                left + columns.enumerated().map { k, lines in
                    cell(line < lines.count ? lines[line] : "", widths[k], right: k == 2)
                }.joined(separator: left) + left
            }
        }
        var lines = ["Model: \"\(name)\""]
        lines.append(rule("┏", "┳", "┓", "━"))
        lines += row(headers.map { [$0] }, left: "┃")
        lines.append(rule("┡", "╇", "┩", "━"))
        var rows: [String] = []
        var seen = Set<ObjectIdentifier>()
        let inbound = functional ? inboundNames() : []
        func shapeText(_ s: [Int]) -> String { "(None, " + s.map(String.init).joined(separator: ", ") + ")" }
        for (i, node) in g.nodes.enumerated() where (functional || !(node.layer is InputLayer)) && !(node.layer is OutputSelector) {
            let layer = node.layer
            let first = seen.insert(ObjectIdentifier(layer)).inserted
            // A call returning several tensors shows their list, as Keras does.
            let extra = layer.additionalOutputShapes(forInputs: node.inputs.map { shapes[$0] })
            let shape = extra.isEmpty ? shapeText(shapes[i]) : "[" + ([shapes[i]] + extra).map(shapeText).joined(separator: ", ") + "]"
            var columns = [["\(layer.name) (\(layer.className))"], [shape], [Model.grouped(first ? layer.parameterCount : 0)]]
            if functional { columns.append(inbound[i].isEmpty ? ["-"] : inbound[i]) }
            rows.append(row(columns).joined(separator: "\n"))
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
