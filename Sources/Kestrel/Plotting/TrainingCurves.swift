import Foundation

extension History {
    /// Writes an SVG of the training curves: one panel per logged quantity ("loss" first, then
    /// metrics), the training values as a solid line and the validation ones (`val_…`) dashed,
    /// against the epoch (1-based, as Keras prints it). Throws when nothing was recorded or the
    /// file cannot be written.
    public func plot(to path: String, title: String? = nil) throws {
        let canvas = try curvesCanvas(title: title)
        try canvas.write(to: path, what: "History.plot")
    }

    /// The SVG document `plot(to:)` writes.
    public func svg(title: String? = nil) throws -> String { try curvesCanvas(title: title).document }

    private func curvesCanvas(title: String?) throws -> SVGCanvas {
        guard !epoch.isEmpty, !history.isEmpty else {
            throw KestrelError.notReady("History.plot: nothing recorded yet; plot after fit")
        }
        var bases = Set(history.keys.map { $0.hasPrefix("val_") ? String($0.dropFirst(4)) : $0 })
        var ordered: [String] = []
        if bases.remove("loss") != nil { ordered.append("loss") }
        ordered += bases.sorted()

        let panelWidth = 440.0, panelHeight = 320.0, top = title == nil ? 10.0 : 40.0
        let columns = min(ordered.count, 2)
        let rows = (ordered.count + columns - 1) / columns
        var canvas = SVGCanvas(width: panelWidth * Double(columns), height: top + panelHeight * Double(rows))
        if let title {
            canvas.text(title, x: canvas.width / 2, y: 26, size: 18, anchor: "middle", weight: "bold")
        }
        let epochs = epoch.map { Double($0 + 1) }
        for (k, base) in ordered.enumerated() {
            let x0 = Double(k % columns) * panelWidth, y0 = top + Double(k / columns) * panelHeight
            drawPanel(&canvas, x0: x0, y0: y0, width: panelWidth, height: panelHeight, name: base, epochs: epochs,
                      train: history[base], validation: history["val_" + base])
        }
        return canvas
    }

    private func drawPanel(_ c: inout SVGCanvas, x0: Double, y0: Double, width: Double, height: Double, name: String,
                           epochs: [Double], train: [Float]?, validation: [Float]?) {
        let left = x0 + 64, right = x0 + width - 16, top = y0 + 34, bottom = y0 + height - 52
        let values = ((train ?? []) + (validation ?? [])).map(Double.init).filter(\.isFinite)
        let yTicks = niceTicks(values.min() ?? 0, values.max() ?? 1)
        let yLow = yTicks.first!, yHigh = yTicks.last!
        let xLow = epochs.first!, xHigh = max(epochs.last!, xLow + 1)
        func px(_ e: Double) -> Double { left + (e - xLow) / (xHigh - xLow) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - yLow) / (yHigh - yLow) * (bottom - top) }

        c.text(name, x: (left + right) / 2, y: y0 + 22, size: 15, anchor: "middle", weight: "bold")
        for t in yTicks {
            c.line(left, py(t), right, py(t), stroke: "#e4e4e4")
            c.text(tickLabel(t), x: left - 6, y: py(t) + 4, size: 11, anchor: "end", fill: "#555")
        }
        let step = max(1, Int((Double(epochs.count) / 8).rounded(.up)))
        for (i, e) in epochs.enumerated() where i % step == 0 || i == epochs.count - 1 {
            c.line(px(e), bottom, px(e), bottom + 4, stroke: "#555")
            c.text(tickLabel(e), x: px(e), y: bottom + 17, size: 11, anchor: "middle", fill: "#555")
        }
        c.line(left, bottom, right, bottom, stroke: "#555")
        c.line(left, top, left, bottom, stroke: "#555")
        c.text("epoch", x: (left + right) / 2, y: bottom + 34, size: 12, anchor: "middle", fill: "#333")
        c.text(name, x: x0 + 16, y: (top + bottom) / 2, size: 12, anchor: "middle", fill: "#333", rotate: -90)

        var legend: [(String, String, String?)] = []
        for (series, color, dash, label) in [(train, "#1f77b4", nil as String?, "training"),
                                             (validation, "#ff7f0e", "6 4", "validation")] {
            guard let series else { continue }
            let points = zip(epochs, series).filter { $0.1.isFinite }.map { (px($0.0), py(Double($0.1))) }
            if points.count > 1 { c.polyline(points, stroke: color, dash: dash) }
            for p in points { c.circle(p.0, p.1, r: 3, fill: color) }
            legend.append((label, color, dash))
        }
        // The legend goes in the corner the curves end away from: top for falling curves (losses),
        // bottom for rising ones (accuracies).
        let ends = [train?.last, validation?.last].compactMap { $0 }.map { py(Double($0)) }
        let endsHigh = !ends.isEmpty && ends.reduce(0, +) / Double(ends.count) < (top + bottom) / 2
        let legendTop = endsHigh ? bottom - 8 - Double(legend.count) * 18 + 8 : top + 8
        for (i, item) in legend.enumerated() {
            let ly = legendTop + Double(i) * 18
            c.line(right - 118, ly, right - 92, ly, stroke: item.1, width: 2, dash: item.2)
            c.text(item.0, x: right - 86, y: ly + 4, size: 11, fill: "#333")
        }
    }
}
