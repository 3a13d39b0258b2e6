/// Repeats each row `size[0]` times and each column `size[1]` times (nearest-neighbour
/// upsampling of `(height, width, channels)` samples, Keras `UpSampling2D` with its default
/// interpolation "nearest").
public final class UpSampling2D: Layer {
    /// The repeat factors for rows and columns.
    public let size: [Int]

    /// Upsampling by `size` (`2` or `[2, 3]`; Keras default 2×2).
    public init(size: SpatialSize = 2, inputShape: [Int]? = nil, name: String? = nil) {
        self.size = size.resolved(rank: 2) ?? size.values
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard size.count == 2, size.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.invalidArgument("\(name) (UpSampling2D): size must be one or two positive integers, found \(size)")
        }
        guard inputShape.count == 3 else {
            throw KestrelError.shapeMismatch("\(name) (UpSampling2D): expected samples of rank 3 (height, width, channels), found shape \(inputShape)")
        }
        return [inputShape[0] * size[0], inputShape[1] * size[1], inputShape[2]]
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "size": "\(size)", "interpolation": "nearest"] }

    public override func forward(_ c: LayerContext) {
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
}
