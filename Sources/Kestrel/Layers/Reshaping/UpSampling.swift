/// Enlarges `(height, width, channels)` samples `size[0]` times in height and `size[1]`
/// times in width, repeating pixels or interpolating between them (Keras `UpSampling2D`).
public final class UpSampling2D: Layer {
    /// The factors for rows and columns.
    public let size: [Int]
    /// How new pixels are computed (Keras default "nearest").
    public let interpolation: Interpolation

    /// The bilinear resampling, fixed once the input shape is known.
    private var resizer = ImageResizer()

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
            resizer = ImageResizer(rows: ResizeAxis(input: inputShape[0], output: inputShape[0] * size[0], interpolation: .bilinear),
                                   columns: ResizeAxis(input: inputShape[1], output: inputShape[1] * size[1], interpolation: .bilinear),
                                   inputWidth: inputShape[1], channels: inputShape[2])
        }
        return [inputShape[0] * size[0], inputShape[1] * size[1], inputShape[2]]
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
        for n in 0..<c.batch { resizer.forward(c.input + n * c.inputSize, c.output + n * c.outputSize) }
    }

    private func bilinearBackward(_ c: LayerContext, _ dx: UnsafeMutablePointer<Float>) {
        dx.update(repeating: 0, count: c.batch * c.inputSize)
        for n in 0..<c.batch { resizer.backward(c.outputGradient! + n * c.outputSize, dx + n * c.inputSize) }
    }
}

/// Repeats each step of `(steps, channels)` sequences `size` times (Keras `UpSampling1D`).
public final class UpSampling1D: Layer {
    /// The repeat factor.
    public let size: Int

    /// Upsampling by `size` (Keras default 2).
    public init(size: Int = 2, inputShape: [Int]? = nil, name: String? = nil) {
        self.size = size
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard size > 0 else { throw KestrelError.invalidArgument("\(name) (UpSampling1D): size must be positive, found \(size)") }
        guard inputShape.count == 2 else {
            throw KestrelError.shapeMismatch("\(name) (UpSampling1D): expected samples of rank 2 (steps, channels), found shape \(inputShape)")
        }
        return [inputShape[0] * size, inputShape[1]]
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "size": "\(size)"] }

    public override func forward(_ c: LayerContext) {
        let ch = c.inputShapes[0][1], steps = c.batch * c.inputShapes[0][0]
        for s in 0..<steps {
            for r in 0..<size { (c.output + (s * size + r) * ch).update(from: c.input + s * ch, count: ch) }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        let ch = c.inputShapes[0][1], steps = c.batch * c.inputShapes[0][0]
        for s in 0..<steps {
            let g = dx + s * ch
            g.update(from: dy + s * size * ch, count: ch)
            for r in 1..<max(size, 1) {
                let d = dy + (s * size + r) * ch
                for k in 0..<ch { g[k] += d[k] }
            }
        }
    }
}

/// Enlarges `(depth, height, width, channels)` samples `size[0]`, `size[1]` and `size[2]`
/// times along depth, height and width by repeating voxels (Keras `UpSampling3D`).
public final class UpSampling3D: Layer {
    /// The factors for slices, rows and columns.
    public let size: [Int]

    /// Upsampling by `size` (`2` or `[1, 2, 2]`; Keras default 2×2×2).
    public init(size: SpatialSize = 2, inputShape: [Int]? = nil, name: String? = nil) {
        self.size = size.resolved(rank: 3) ?? size.values
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard size.count == 3, size.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.invalidArgument("\(name) (UpSampling3D): size must be one or three positive integers, found \(size)")
        }
        guard inputShape.count == 4 else {
            throw KestrelError.shapeMismatch(
                "\(name) (UpSampling3D): expected samples of rank 4 \(sampleLayout(rank: 3)), found shape \(inputShape)")
        }
        return [inputShape[0] * size[0], inputShape[1] * size[1], inputShape[2] * size[2], inputShape[3]]
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "size": "\(size)"] }

    public override func forward(_ c: LayerContext) {
        let (d, h, w, ch) = (c.inputShapes[0][0], c.inputShapes[0][1], c.inputShapes[0][2], c.inputShapes[0][3])
        let oh = h * size[1], ow = w * size[2]
        for n in 0..<c.batch {
            let x = c.input + n * c.inputSize, y = c.output + n * c.outputSize
            for s in 0..<d {
                // The first output slice of input slice s, row by row; then its copies.
                let slice = y + s * size[0] * oh * ow * ch
                for i in 0..<h {
                    let row = slice + i * size[1] * ow * ch
                    for j in 0..<w {
                        let voxel = x + ((s * h + i) * w + j) * ch
                        for r in 0..<size[2] { (row + (j * size[2] + r) * ch).update(from: voxel, count: ch) }
                    }
                    for r in 1..<max(size[1], 1) { (row + r * ow * ch).update(from: row, count: ow * ch) }
                }
                for r in 1..<max(size[0], 1) { (slice + r * oh * ow * ch).update(from: slice, count: oh * ow * ch) }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let (h, w, ch) = (c.inputShapes[0][1], c.inputShapes[0][2], c.inputShapes[0][3])
        let od = c.outputShape[0], oh = h * size[1], ow = w * size[2]
        dx.update(repeating: 0, count: c.batch * c.inputSize)
        for n in 0..<c.batch {
            let g = dx + n * c.inputSize, dy = c.outputGradient! + n * c.outputSize
            for os in 0..<od {
                for oi in 0..<oh {
                    let inputRow = g + ((os / size[0]) * h + oi / size[1]) * w * ch
                    let outputRow = dy + (os * oh + oi) * ow * ch
                    for oj in 0..<ow {
                        let src = outputRow + oj * ch, dst = inputRow + (oj / size[2]) * ch
                        for k in 0..<ch { dst[k] += src[k] }
                    }
                }
            }
        }
    }
}
