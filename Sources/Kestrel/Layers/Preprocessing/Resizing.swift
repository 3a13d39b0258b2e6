/// Resizes `(height, width, channels)` images to `height × width` (Keras `Resizing`), bilinearly
/// by default, as Keras's `image.resize` without antialiasing; `cropToAspectRatio` first
/// crops the largest centred window with the target's aspect ratio, so nothing is stretched.
public final class Resizing: Layer {
    /// The output height.
    public let height: Int
    /// The output width.
    public let width: Int
    /// How pixels are resampled (Keras default "bilinear").
    public let interpolation: Interpolation
    /// Whether to crop to the target aspect ratio before resizing (Keras default false).
    public let cropToAspectRatio: Bool

    private var resizer = ImageResizer()

    /// A layer resizing images to `height × width`.
    public init(_ height: Int, _ width: Int, interpolation: Interpolation = .bilinear, cropToAspectRatio: Bool = false,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.height = height
        self.width = width
        self.interpolation = interpolation
        self.cropToAspectRatio = cropToAspectRatio
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard height > 0, width > 0 else {
            throw KestrelError.invalidArgument("\(name) (Resizing): height and width must be positive, found \(height) and \(width)")
        }
        try checkImageShape(inputShape)
        resizer = ImageResizer(window: cropBox(forInputShape: inputShape), inputShape: inputShape, height: height, width: width,
                               interpolation: interpolation)
        return [height, width, inputShape[2]]
    }

    /// The part of an image of `inputShape` that is resized: all of it, or with
    /// `cropToAspectRatio` Keras's centred crop box (with its integer truncations).
    public func cropBox(forInputShape inputShape: [Int]) -> (top: Int, left: Int, rows: Int, columns: Int) {
        guard cropToAspectRatio else { return (0, 0, inputShape[0], inputShape[1]) }
        return Self.centredCropBox(rows: inputShape[0], columns: inputShape[1], height: height, width: width)
    }

    /// The largest centred window of a `rows × columns` image with the aspect ratio of
    /// `height × width`, with Keras's integer truncations (shared with RandomCrop's inference).
    static func centredCropBox(rows: Int, columns: Int, height: Int, width: Int) -> (top: Int, left: Int, rows: Int, columns: Int) {
        let cropRows = max(min(rows, Int(Double(columns * height) / Double(width))), 1)
        let cropColumns = max(min(columns, Int(Double(rows * width) / Double(height))), 1)
        return (Int(Double(rows - cropRows) / 2), Int(Double(columns - cropColumns) / 2), cropRows, cropColumns)
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] {
        ["name": name, "height": "\(height)", "width": "\(width)", "interpolation": interpolation.rawValue,
         "crop_to_aspect_ratio": "\(cropToAspectRatio)"]
    }

    public override func forward(_ c: LayerContext) { resizer.forward(c) }

    public override func backward(_ c: LayerContext) { resizer.backward(c) }
}
