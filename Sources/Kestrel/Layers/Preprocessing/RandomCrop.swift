/// Crops training images to `height × width` at a random position (Keras `RandomCrop`), one
/// position for the whole batch as Keras draws it. In inference, and in training when the
/// input is smaller than the target along either axis, it resizes instead: the largest centred
/// window with the target's aspect ratio, resized bilinearly (as `Resizing` with
/// `cropToAspectRatio`), so the output is `height × width` either way.
///
/// Keras 3.x (through 3.15 at least) returns inference inputs unchanged, against its
/// documentation and its own output shape (keras-team/keras#21868); Kestrel follows the
/// documentation, as tf.keras did.
public final class RandomCrop: Layer {
    /// The output height.
    public let height: Int
    /// The output width.
    public let width: Int
    /// The seed fixing this layer's draws independently of the global generator, if any.
    public let seed: UInt64?

    private var resizer = ImageResizer()
    private var inputRows = 0, inputColumns = 0

    /// A layer cropping images to `height × width`.
    public init(_ height: Int, _ width: Int, seed: UInt64? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.height = height
        self.width = width
        self.seed = seed
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard height > 0, width > 0 else {
            throw KestrelError.invalidArgument("\(name) (RandomCrop): height and width must be positive, found \(height) and \(width)")
        }
        try checkImageShape(inputShape)
        (inputRows, inputColumns) = (inputShape[0], inputShape[1])
        resizer = ImageResizer(window: resizeBox(forInputShape: inputShape), inputShape: inputShape, height: height, width: width,
                               interpolation: .bilinear)
        return [height, width, inputShape[2]]
    }

    /// The centred window resized in inference (and in training when the input is too small).
    public func resizeBox(forInputShape inputShape: [Int]) -> (top: Int, left: Int, rows: Int, columns: Int) {
        Resizing.centredCropBox(rows: inputShape[0], columns: inputShape[1], height: height, width: width)
    }

    /// Whether training crops at random (the input covers the target along both axes).
    private var cropsInTraining: Bool { inputRows >= height && inputColumns >= width }

    public override var backwardNeedsInput: Bool { false }
    public override var couplesSamplesInTraining: Bool { true }
    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int { training ? 2 : 0 }
    public override var config: [String: String] {
        ["name": name, "height": "\(height)", "width": "\(width)", "seed": seed.map { "\($0)" } ?? "None"]
    }

    /// Calls `body` with each output row's offset in an image and the input row it copies,
    /// for the window at (`top`, `left`).
    @inline(__always)
    private func forEachWindowRow(top: Int, left: Int, channels: Int, _ body: (_ output: Int, _ input: Int) -> Void) {
        let rowLength = width * channels
        for i in 0..<height { body(i * rowLength, ((top + i) * inputColumns + left) * channels) }
    }

    public override func forward(_ c: LayerContext) {
        guard c.training, cropsInTraining else { return resizer.forward(c) }
        // Keras: an offset uniform over 0…(input − target), rows first, shared by the batch.
        let top = min(Int(c.generator.nextUnitFloat() * Float(inputRows - height + 1)), inputRows - height)
        let left = min(Int(c.generator.nextUnitFloat() * Float(inputColumns - width + 1)), inputColumns - width)
        (c.workspace[0], c.workspace[1]) = (Float(top), Float(left))
        let channels = c.inputShapes[0][2], rowLength = width * channels
        for n in 0..<c.batch {
            let x = c.input + n * c.inputSize, y = c.output + n * c.outputSize
            forEachWindowRow(top: top, left: left, channels: channels) { (y + $0).update(from: x + $1, count: rowLength) }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard c.training, cropsInTraining else { return resizer.backward(c) }
        guard let dx = c.inputGradient, let dy = c.outputGradient else { return }
        dx.update(repeating: 0, count: c.batch * c.inputSize)
        let (top, left) = (Int(c.workspace[0]), Int(c.workspace[1]))
        let channels = c.inputShapes[0][2], rowLength = width * channels
        for n in 0..<c.batch {
            let g = dy + n * c.outputSize, d = dx + n * c.inputSize
            forEachWindowRow(top: top, left: left, channels: channels) { (d + $1).update(from: g + $0, count: rowLength) }
        }
    }
}
