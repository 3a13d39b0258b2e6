/// The machinery shared by the global pooling layers (Keras `BaseGlobalPooling`): each channel
/// is reduced over every spatial position of a channels-last sample.
public class BaseGlobalPooling: Layer {
    let isMax: Bool
    /// The number of spatial axes (1, 2 or 3).
    public let rank: Int
    /// Whether the spatial axes are kept with size 1 (Keras `keepdims`, default false).
    public let keepDims: Bool

    init(max isMax: Bool, rank: Int, keepDims: Bool, inputShape: [Int]?, name: String?) {
        self.isMax = isMax
        self.rank = rank
        self.keepDims = keepDims
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputShape.count == rank + 1, inputShape.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.shapeMismatch(
                "\(name) (\(className)): expected samples of rank \(rank + 1) \(sampleLayout(rank: rank)), found shape \(inputShape)")
        }
        return keepDims ? Array(repeating: 1, count: rank) + [inputShape[rank]] : [inputShape[rank]]
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        isMax ? batch * (inputShapes[0].last ?? 0) : 0   // the winning position of each output (Int32)
    }

    public override var backwardNeedsInput: Bool { false }

    /// Only GlobalAveragePooling1D uses a mask (Keras averages over unmasked steps); no mask
    /// leaves a global pooling.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling { .none }

    /// The steps' mask, read by GlobalAveragePooling1D only, as in Keras.
    private func stepMask(_ c: LayerContext) -> UnsafeMutablePointer<Float>? { rank == 1 && !isMax ? c.inputMask : nil }

    /// One over the number of kept steps of a sample's mask (0 when none is kept).
    private func maskedScale(_ mask: UnsafePointer<Float>, _ positions: Int) -> Float {
        var kept: Float = 0
        for p in 0..<positions where mask[p] != 0 { kept += 1 }
        return kept > 0 ? 1 / kept : 0
    }
    public override var config: [String: String] { ["name": name, "keepdims": "\(keepDims)"] }

    public override func forward(_ c: LayerContext) {
        let channels = c.outputSize, positions = c.inputSize / channels
        for n in 0..<c.batch {
            let x = c.input + n * c.inputSize, y = c.output + n * channels
            if isMax {
                c.workspace.withMemoryRebound(to: Int32.self, capacity: c.batch * channels) { argmax in
                    let best = argmax + n * channels
                    y.update(from: x, count: channels)
                    best.update(repeating: 0, count: channels)
                    for p in 1..<max(positions, 1) {
                        let row = x + p * channels
                        for j in 0..<channels where row[j] > y[j] {
                            y[j] = row[j]
                            best[j] = Int32(p)
                        }
                    }
                }
            } else if let mask = stepMask(c) {
                // Keras: the mean over unmasked steps only (here 0 for a sequence masked
                // throughout, where Keras divides 0 by 0).
                let m = mask + n * positions
                y.update(repeating: 0, count: channels)
                for p in 0..<positions where m[p] != 0 {
                    let row = x + p * channels
                    for j in 0..<channels { y[j] += row[j] }
                }
                let scale = maskedScale(m, positions)
                for j in 0..<channels { y[j] *= scale }
            } else {
                y.update(from: x, count: channels)
                for p in 1..<max(positions, 1) {
                    let row = x + p * channels
                    for j in 0..<channels { y[j] += row[j] }
                }
                let scale = 1 / Float(positions)
                for j in 0..<channels { y[j] *= scale }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let dy = c.outputGradient!
        let channels = c.outputSize, positions = c.inputSize / channels
        for n in 0..<c.batch {
            let g = dx + n * c.inputSize, d = dy + n * channels
            if isMax {
                g.update(repeating: 0, count: c.inputSize)
                c.workspace.withMemoryRebound(to: Int32.self, capacity: c.batch * channels) { argmax in
                    let best = argmax + n * channels
                    for j in 0..<channels { g[Int(best[j]) * channels + j] = d[j] }
                }
            } else {
                let m = stepMask(c).map { $0 + n * positions }
                let scale = m.map { maskedScale($0, positions) } ?? 1 / Float(positions)
                for p in 0..<positions {
                    let row = g + p * channels, kept: Float = m.map { $0[p] != 0 ? 1 : 0 } ?? 1
                    for j in 0..<channels { row[j] = d[j] * scale * kept }
                }
            }
        }
    }
}

/// The maximum of each channel over all positions of `(height, width, channels)` samples
/// (Keras `GlobalMaxPooling2D`).
public final class GlobalMaxPooling2D: BaseGlobalPooling {
    /// Global max pooling; `keepDims` keeps the spatial axes with size 1.
    public init(keepDims: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: true, rank: 2, keepDims: keepDims, inputShape: inputShape, name: name)
    }
}

/// The mean of each channel over all positions of `(height, width, channels)` samples
/// (Keras `GlobalAveragePooling2D`).
public final class GlobalAveragePooling2D: BaseGlobalPooling {
    /// Global average pooling; `keepDims` keeps the spatial axes with size 1.
    public init(keepDims: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: false, rank: 2, keepDims: keepDims, inputShape: inputShape, name: name)
    }
}

/// The maximum of each channel over all steps of `(steps, channels)` samples
/// (Keras `GlobalMaxPooling1D`).
public final class GlobalMaxPooling1D: BaseGlobalPooling {
    /// Global max pooling; `keepDims` keeps the steps axis with size 1.
    public init(keepDims: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: true, rank: 1, keepDims: keepDims, inputShape: inputShape, name: name)
    }
}

/// The mean of each channel over all steps of `(steps, channels)` samples
/// (Keras `GlobalAveragePooling1D`).
public final class GlobalAveragePooling1D: BaseGlobalPooling {
    /// Global average pooling; `keepDims` keeps the steps axis with size 1.
    public init(keepDims: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: false, rank: 1, keepDims: keepDims, inputShape: inputShape, name: name)
    }
}

/// The maximum of each channel over all positions of `(depth, height, width, channels)`
/// samples (Keras `GlobalMaxPooling3D`).
public final class GlobalMaxPooling3D: BaseGlobalPooling {
    /// Global max pooling; `keepDims` keeps the spatial axes with size 1.
    public init(keepDims: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: true, rank: 3, keepDims: keepDims, inputShape: inputShape, name: name)
    }
}

/// The mean of each channel over all positions of `(depth, height, width, channels)` samples
/// (Keras `GlobalAveragePooling3D`).
public final class GlobalAveragePooling3D: BaseGlobalPooling {
    /// Global average pooling; `keepDims` keeps the spatial axes with size 1.
    public init(keepDims: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: false, rank: 3, keepDims: keepDims, inputShape: inputShape, name: name)
    }
}
