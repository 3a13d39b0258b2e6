/// How `UpSampling2D` fills the pixels between the input's (Keras `interpolation`).
public enum Interpolation: String, Sendable, Equatable, CaseIterable {
    /// Each input pixel repeated over its `size[0] × size[1]` block.
    case nearest
    /// Linear in each axis between the two nearest input pixels, with half-pixel centres
    /// (as `tf.image.resize`, `jax.image.resize` and PyTorch's `align_corners=False`); pixels
    /// past the outermost centres copy the border.
    case bilinear
}

/// Enlarges `(height, width, channels)` samples `size[0]` times in height and `size[1]`
/// times in width, repeating pixels or interpolating between them (Keras `UpSampling2D`).
public final class UpSampling2D: Layer {
    /// The factors for rows and columns.
    public let size: [Int]
    /// How new pixels are computed (Keras default "nearest").
    public let interpolation: Interpolation

    /// For one axis and bilinear interpolation: each output index's two input indices and the
    /// weight of the second, fixed once the input shape is known.
    private struct AxisBlend { var first: [Int], second: [Int], weight: [Float] }
    private var rows = AxisBlend(first: [], second: [], weight: [])
    private var columns = AxisBlend(first: [], second: [], weight: [])

    /// Upsampling by `size` (`2` or `[2, 3]`; Keras default 2×2) with `interpolation`.
    public init(size: SpatialSize = 2, interpolation: Interpolation = .nearest, inputShape: [Int]? = nil,
                name: String? = nil) {
        self.size = size.resolved(rank: 2) ?? size.values
        self.interpolation = interpolation
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard size.count == 2, size.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.invalidArgument("\(name) (UpSampling2D): size must be one or two positive integers, found \(size)")
        }
        guard inputShape.count == 3 else {
            throw KestrelError.shapeMismatch("\(name) (UpSampling2D): expected samples of rank 3 (height, width, channels), found shape \(inputShape)")
        }
        if interpolation == .bilinear {
            rows = Self.blend(length: inputShape[0], factor: size[0])
            columns = Self.blend(length: inputShape[1], factor: size[1])
        }
        return [inputShape[0] * size[0], inputShape[1] * size[1], inputShape[2]]
    }

    /// Output index `o` sits at input coordinate `(o + 0.5) / factor − 0.5`; it blends the two
    /// pixels around it, and outside the first and last centres the border pixel alone (the
    /// weight jax renormalises to, and the index tf and PyTorch clamp to).
    private static func blend(length: Int, factor: Int) -> AxisBlend {
        var result = AxisBlend(first: [], second: [], weight: [])
        for o in 0..<(length * factor) {
            let coordinate = max((Double(o) + 0.5) / Double(factor) - 0.5, 0)
            let first = min(Int(coordinate), length - 1)
            result.first.append(first)
            result.second.append(min(first + 1, length - 1))
            result.weight.append(Float(coordinate - Double(first)))
        }
        return result
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] {
        ["name": name, "size": "\(size)", "interpolation": interpolation.rawValue]
    }

    public override func forward(_ c: LayerContext) {
        if interpolation == .bilinear { return bilinearForward(c) }
        let (h, w, ch) = (c.inputShapes[0][0], c.inputShapes[0][1], c.inputShapes[0][2])
        let ow = w * size[1]
        for n in 0..<c.batch {
            let x = c.input + n * c.inputSize, y = c.output + n * c.outputSize
            for i in 0..<h {
                let row = y + i * size[0] * ow * ch
                for j in 0..<w {
                    for r in 0..<size[1] { (row + (j * size[1] + r) * ch).update(from: x + (i * w + j) * ch, count: ch) }
                }
                for r in 1..<max(size[0], 1) { (row + r * ow * ch).update(from: row, count: ow * ch) }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        if interpolation == .bilinear { return bilinearBackward(c, dx) }
        let (h, w, ch) = (c.inputShapes[0][0], c.inputShapes[0][1], c.inputShapes[0][2])
        let ow = w * size[1]
        dx.update(repeating: 0, count: c.batch * c.inputSize)
        for n in 0..<c.batch {
            let g = dx + n * c.inputSize, dy = c.outputGradient! + n * c.outputSize
            for oi in 0..<(h * size[0]) {
                let i = oi / size[0]
                for oj in 0..<ow {
                    let src = dy + (oi * ow + oj) * ch, dst = g + (i * w + oj / size[1]) * ch
                    for k in 0..<ch { dst[k] += src[k] }
                }
            }
        }
    }

    private func bilinearForward(_ c: LayerContext) {
        let (w, ch) = (c.inputShapes[0][1], c.inputShapes[0][2])
        let (oh, ow) = (rows.first.count, columns.first.count)
        for n in 0..<c.batch {
            let x = c.input + n * c.inputSize, y = c.output + n * c.outputSize
            for oi in 0..<oh {
                let top = x + rows.first[oi] * w * ch, bottom = x + rows.second[oi] * w * ch
                let a = rows.weight[oi]
                for oj in 0..<ow {
                    let left = columns.first[oj] * ch, right = columns.second[oj] * ch, b = columns.weight[oj]
                    let out = y + (oi * ow + oj) * ch
                    for k in 0..<ch {
                        let upper = top[left + k] + b * (top[right + k] - top[left + k])
                        let lower = bottom[left + k] + b * (bottom[right + k] - bottom[left + k])
                        out[k] = upper + a * (lower - upper)
                    }
                }
            }
        }
    }

    private func bilinearBackward(_ c: LayerContext, _ dx: UnsafeMutablePointer<Float>) {
        let (w, ch) = (c.inputShapes[0][1], c.inputShapes[0][2])
        let (oh, ow) = (rows.first.count, columns.first.count)
        dx.update(repeating: 0, count: c.batch * c.inputSize)
        for n in 0..<c.batch {
            let g = dx + n * c.inputSize, dy = c.outputGradient! + n * c.outputSize
            for oi in 0..<oh {
                let top = g + rows.first[oi] * w * ch, bottom = g + rows.second[oi] * w * ch
                let a = rows.weight[oi]
                for oj in 0..<ow {
                    let left = columns.first[oj] * ch, right = columns.second[oj] * ch, b = columns.weight[oj]
                    let src = dy + (oi * ow + oj) * ch
                    // Top and bottom (or left and right) may be the same pixel at a border:
                    // the updates must add, one after the other.
                    for k in 0..<ch {
                        let upper = src[k] * (1 - a), lower = src[k] * a
                        top[left + k] += upper * (1 - b)
                        top[right + k] += upper * b
                        bottom[left + k] += lower * (1 - b)
                        bottom[right + k] += lower * b
                    }
                }
            }
        }
    }
}
