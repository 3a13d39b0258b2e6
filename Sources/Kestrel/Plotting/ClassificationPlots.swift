import Foundation

/// Counts of (true class, predicted class) pairs, and its picture (the confusion matrix of
/// scikit-learn / `tf.math.confusion_matrix`).
public struct ConfusionMatrix: Sendable {
    /// `counts[t][p]`: samples of true class `t` predicted as `p`.
    public let counts: [[Int]]
    /// The class names, in class-index order.
    public let classNames: [String]

    /// Counts predictions against true labels; labels are class indices. Throws when the
    /// lengths differ or a label is outside `0..<classNames.count`.
    public init(trueLabels: [Int], predictedLabels: [Int], classNames: [String]) throws {
        guard trueLabels.count == predictedLabels.count else {
            throw KestrelError.shapeMismatch(
                "ConfusionMatrix: \(trueLabels.count) true labels but \(predictedLabels.count) predictions")
        }
        guard !classNames.isEmpty else { throw KestrelError.invalidArgument("ConfusionMatrix: classNames is empty") }
        var counts = Array(repeating: Array(repeating: 0, count: classNames.count), count: classNames.count)
        for (t, p) in zip(trueLabels, predictedLabels) {
            guard classNames.indices.contains(t), classNames.indices.contains(p) else {
                throw KestrelError.invalidArgument(
                    "ConfusionMatrix: label pair (true \(t), predicted \(p)) outside 0..<\(classNames.count) classes")
            }
            counts[t][p] += 1
        }
        self.counts = counts
        self.classNames = classNames
    }

    /// Counts from a tensor of true labels (class indices as floats) and predicted indices.
    public init(trueLabels: Tensor, predictedLabels: [Int], classNames: [String]) throws {
        let labels = trueLabels.scalars.map { Int($0) }
        try self.init(trueLabels: labels, predictedLabels: predictedLabels, classNames: classNames)
    }

    /// The fraction of samples on the diagonal.
    public var accuracy: Float {
        let total = counts.joined().reduce(0, +)
        return total == 0 ? 0 : Float(counts.indices.map { counts[$0][$0] }.reduce(0, +)) / Float(total)
    }

    /// The SVG picture: rows are true classes, columns predicted ones, cells shaded by the
    /// fraction of the row's samples and labelled with the count.
    public func svg(title: String? = "Confusion matrix") -> String {
        let n = classNames.count
        let cell = 44.0, left = 150.0, top = title == nil ? 30.0 : 60.0
        var c = SVGCanvas(width: left + cell * Double(n) + 30, height: top + cell * Double(n) + 130)
        if let title { c.text(title, x: c.width / 2, y: 28, size: 18, anchor: "middle", weight: "bold") }
        for t in 0..<n {
            let rowTotal = max(counts[t].reduce(0, +), 1)
            for p in 0..<n {
                let fraction = Double(counts[t][p]) / Double(rowTotal)
                let x = left + Double(p) * cell, y = top + Double(t) * cell
                // White to dark blue: interpolate towards (8, 48, 107).
                let r = Int(255 - fraction * 247), g = Int(255 - fraction * 207), b = Int(255 - fraction * 148)
                c.rect(x: x, y: y, width: cell, height: cell, fill: String(format: "#%02x%02x%02x", r, g, b),
                       stroke: "#ffffff")
                c.text(String(counts[t][p]), x: x + cell / 2, y: y + cell / 2 + 4, size: 11, anchor: "middle",
                       fill: fraction > 0.5 ? "#ffffff" : "#222", weight: t == p ? "bold" : nil)
            }
            c.text(classNames[t], x: left - 8, y: top + (Double(t) + 0.5) * cell + 4, size: 12, anchor: "end")
        }
        for p in 0..<n {
            let x = left + (Double(p) + 0.5) * cell, y = top + Double(n) * cell + 10
            c.text(classNames[p], x: x, y: y, size: 12, anchor: "end", rotate: -45)
        }
        c.text("Predicted label", x: left + cell * Double(n) / 2, y: c.height - 12, size: 13, anchor: "middle",
               weight: "bold")
        c.text("True label", x: 18, y: top + cell * Double(n) / 2, size: 13, anchor: "middle", weight: "bold",
               rotate: -90)
        return c.document
    }

    /// Writes `svg(title:)` to `path`, through a temporary file.
    public func plot(to path: String, title: String? = "Confusion matrix") throws {
        try writeSVG(svg(title: title), to: path, what: "ConfusionMatrix.plot")
    }
}

/// A grid of images with their predicted and true class, wrong predictions in red and framed
/// (the TensorFlow classification tutorial's figure).
public struct ImageGrid {
    /// Images `[N, height, width]` or `[N, height, width, 1]`, values in 0…1 or 0…255.
    public let images: Tensor
    /// True class of each image.
    public let trueLabels: [Int]
    /// Predicted class of each image (nil: show true labels only).
    public let predictedLabels: [Int]?
    /// Confidence of each prediction in 0…1, shown as a percentage.
    public let confidences: [Float]?
    /// Class names by index.
    public let classNames: [String]
    /// Images per row.
    public let columns: Int

    /// A grid of the first images; throws for a shape that is not a batch of grayscale images
    /// or label counts that do not match.
    public init(images: Tensor, trueLabels: [Int], predictedLabels: [Int]? = nil, confidences: [Float]? = nil,
                classNames: [String], columns: Int = 5) throws {
        let shape = images.shape
        guard shape.count == 3 || (shape.count == 4 && shape[3] == 1) else {
            throw KestrelError.shapeMismatch("ImageGrid: expected images [N, height, width] or [N, height, width, 1], found \(shape)")
        }
        let n = shape[0]
        guard trueLabels.count == n, predictedLabels.map({ $0.count == n }) ?? true,
              confidences.map({ $0.count == n }) ?? true else {
            throw KestrelError.shapeMismatch(
                "ImageGrid: \(n) images but \(trueLabels.count) true labels, \(predictedLabels?.count ?? n) predictions, \(confidences?.count ?? n) confidences")
        }
        guard columns > 0 else { throw KestrelError.invalidArgument("ImageGrid: columns must be positive, found \(columns)") }
        for label in trueLabels + (predictedLabels ?? []) where !classNames.indices.contains(label) {
            throw KestrelError.invalidArgument("ImageGrid: class \(label) outside 0..<\(classNames.count) class names")
        }
        self.images = images
        self.trueLabels = trueLabels
        self.predictedLabels = predictedLabels
        self.confidences = confidences
        self.classNames = classNames
        self.columns = columns
    }

    /// The SVG document, with each image embedded as a PNG.
    public func svg(title: String? = nil) -> String {
        let n = images.shape[0], h = images.shape[1], w = images.shape[2]
        let cellWidth = 150.0, imageSize = 112.0, cellHeight = imageSize + 48
        let rows = (n + columns - 1) / columns, top = title == nil ? 8.0 : 40.0
        var c = SVGCanvas(width: cellWidth * Double(min(columns, max(n, 1))), height: top + cellHeight * Double(rows))
        if let title { c.text(title, x: c.width / 2, y: 26, size: 17, anchor: "middle", weight: "bold") }
        let scalars = images.scalars
        let scale: Float = (scalars.max() ?? 0) > 1.5 ? 1 : 255
        for i in 0..<n {
            let x = Double(i % columns) * cellWidth + (cellWidth - imageSize) / 2
            let y = top + Double(i / columns) * cellHeight + 6
            // Dark on light, as matplotlib's `cmap=plt.cm.binary` in the tutorial.
            let pixels = scalars[(i * h * w)..<((i + 1) * h * w)].map { UInt8(255 - min(max($0 * scale, 0), 255).rounded()) }
            let png = GrayscalePNG.encode(pixels: pixels, width: w, height: h).base64EncodedString()
            c.image(pngBase64: png, x: x, y: y, width: imageSize, height: imageSize)
            let truth = classNames[trueLabels[i]]
            if let predictedLabels {
                let p = predictedLabels[i], wrong = p != trueLabels[i]
                let color = wrong ? "#d62728" : "#1f4eb4"
                c.rect(x: x - 2, y: y - 2, width: imageSize + 4, height: imageSize + 4, fill: "none",
                       stroke: wrong ? color : "#cccccc", strokeWidth: wrong ? 3 : 1)
                let confidence = confidences.map { String(format: " %.0f%%", $0[i] * 100) } ?? ""
                c.text((wrong ? "✗ " : "") + classNames[p] + confidence, x: x + imageSize / 2, y: y + imageSize + 18,
                       size: 12, anchor: "middle", fill: color, weight: "bold")
                c.text("(\(truth))", x: x + imageSize / 2, y: y + imageSize + 34, size: 11, anchor: "middle", fill: color)
            } else {
                c.rect(x: x - 1, y: y - 1, width: imageSize + 2, height: imageSize + 2, fill: "none", stroke: "#cccccc")
                c.text(truth, x: x + imageSize / 2, y: y + imageSize + 18, size: 12, anchor: "middle")
            }
        }
        return c.document
    }

    /// Writes `svg(title:)` to `path`, through a temporary file.
    public func plot(to path: String, title: String? = nil) throws {
        try writeSVG(svg(title: title), to: path, what: "ImageGrid.plot")
    }
}

/// Writes an SVG document atomically, naming the caller in errors.
func writeSVG(_ document: String, to path: String, what: String) throws {
    do {
        try writeAtomically(Data(document.utf8), to: path)
    } catch let error as KestrelError {
        throw KestrelError.fileError("\(what): \(error.message)")
    }
}
