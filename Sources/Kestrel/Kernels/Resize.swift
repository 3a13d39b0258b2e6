/// How images are resampled between pixels (Keras `interpolation`).
public enum Interpolation: String, Sendable, Equatable, CaseIterable {
    /// The nearest input pixel (for `UpSampling2D`, each pixel repeated over its block).
    case nearest
    /// Linear in each axis between the two nearest input pixels, with half-pixel centres
    /// (as `tf.image.resize`, `jax.image.resize` and PyTorch's `align_corners=False`); pixels
    /// past the outermost centres copy the border.
    case bilinear
}

/// One axis of an image resize as Keras's `ops.image.resize` computes it on its JAX backend
/// (`jax.image.resize` without antialiasing): for each output index, the two input indices it
/// reads and the weight of the second.
///
/// Bilinear: output index o sits at input coordinate (o + 0.5) · in/out − 0.5 and blends the
/// two pixels around it; past the outermost centres it reads the border pixel alone (the
/// weight jax renormalises to). Nearest: input index floor((o + 0.5) · in / out). Both in
/// float32, in jax's order of operations.
struct ResizeAxis {
    var first: [Int] = [], second: [Int] = [], weight: [Float] = []

    init() {}

    /// `input` pixels starting at `offset` (a crop) resized to `output`.
    init(input: Int, output: Int, interpolation: Interpolation, offset: Int = 0) {
        let inverseScale = 1 / (Float(output) / Float(input))
        for o in 0..<output {
            if interpolation == .nearest {
                let index = min(Int(((Float(o) + 0.5) * Float(input) / Float(output)).rounded(.down)), input - 1)
                first.append(offset + index)
                second.append(offset + index)
                weight.append(0)
                continue
            }
            let coordinate = max((Float(o) + 0.5) * inverseScale - 0.5, 0)
            let lower = min(Int(coordinate.rounded(.down)), input - 1)
            first.append(offset + lower)
            second.append(offset + min(lower + 1, input - 1))
            weight.append(lower + 1 < input ? coordinate - Float(lower) : 0)
        }
    }

    var count: Int { first.count }
}

/// Resizes one channels-last image along both axes; `backward` is its adjoint.
struct ImageResizer {
    var rows = ResizeAxis(), columns = ResizeAxis()
    /// The input image's width and channels (its row stride is width · channels).
    var inputWidth = 0, channels = 0

    func forward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        let (ch, rowLength) = (channels, inputWidth * channels)
        for oi in 0..<rows.count {
            let top = x + rows.first[oi] * rowLength, bottom = x + rows.second[oi] * rowLength
            let a = rows.weight[oi]
            for oj in 0..<columns.count {
                let left = columns.first[oj] * ch, right = columns.second[oj] * ch, b = columns.weight[oj]
                let out = y + (oi * columns.count + oj) * ch
                for k in 0..<ch {
                    let upper = top[left + k] + b * (top[right + k] - top[left + k])
                    let lower = bottom[left + k] + b * (bottom[right + k] - bottom[left + k])
                    out[k] = upper + a * (lower - upper)
                }
            }
        }
    }

    /// Adds the gradient `dy` of one resized image to `dx` (zeroed by the caller).
    func backward(_ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>) {
        let (ch, rowLength) = (channels, inputWidth * channels)
        for oi in 0..<rows.count {
            let top = dx + rows.first[oi] * rowLength, bottom = dx + rows.second[oi] * rowLength
            let a = rows.weight[oi]
            for oj in 0..<columns.count {
                let left = columns.first[oj] * ch, right = columns.second[oj] * ch, b = columns.weight[oj]
                let g = dy + (oi * columns.count + oj) * ch
                // The two taps may be one pixel (a border, or nearest): the updates must add.
                for k in 0..<ch {
                    let upper = g[k] * (1 - a), lower = g[k] * a
                    top[left + k] += upper * (1 - b)
                    top[right + k] += upper * b
                    bottom[left + k] += lower * (1 - b)
                    bottom[right + k] += lower * b
                }
            }
        }
    }
}

extension ImageResizer {
    /// A resizer of the `window` of channels-last images of `inputShape` to `height × width`
    /// (the window all of the image, or a crop of it).
    init(window: (top: Int, left: Int, rows: Int, columns: Int), inputShape: [Int], height: Int, width: Int,
         interpolation: Interpolation) {
        self.init(rows: ResizeAxis(input: window.rows, output: height, interpolation: interpolation, offset: window.top),
                  columns: ResizeAxis(input: window.columns, output: width, interpolation: interpolation, offset: window.left),
                  inputWidth: inputShape[1], channels: inputShape[2])
    }

    /// Resizes every image of a layer's batch.
    func forward(_ c: LayerContext) {
        for n in 0..<c.batch { forward(c.input + n * c.inputSize, c.output + n * c.outputSize) }
    }

    /// Writes a layer's input gradient from its output gradient (nothing when either is absent).
    func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        dx.update(repeating: 0, count: c.batch * c.inputSize)
        for n in 0..<c.batch { backward(dy + n * c.outputSize, dx + n * c.inputSize) }
    }
}

/// Resizes one channels-last image of `rows × columns × channels` values at `x` into
/// `height × width × channels` values at `y`, as the `Resizing` layer does (for image files
/// read by KestrelDatasets); `cropToAspectRatio` first crops Keras's centred window of the
/// target's aspect ratio (`smart_resize`).
package func resizeImage(_ x: UnsafePointer<Float>, rows: Int, columns: Int, channels: Int,
                         into y: UnsafeMutablePointer<Float>, height: Int, width: Int,
                         interpolation: Interpolation, cropToAspectRatio: Bool) {
    let window = cropToAspectRatio
        ? Resizing.centredCropBox(rows: rows, columns: columns, height: height, width: width)
        : (top: 0, left: 0, rows: rows, columns: columns)
    ImageResizer(window: window, inputShape: [rows, columns, channels], height: height, width: width,
                 interpolation: interpolation).forward(x, y)
}
