/// Crops the centre of `(height, width, channels)` images to `height × width` (Keras
/// `CenterCrop`), in training and inference alike. An image smaller than the target along
/// either axis is instead resized: the largest centred window with the target's aspect ratio,
/// resized bilinearly (Keras's `smart_resize`, as `Resizing` with `cropToAspectRatio`).
public final class CenterCrop: Layer {
    /// The output height.
    public let height: Int
    /// The output width.
    public let width: Int

    private var resizer = ImageResizer()

    /// A layer cropping the centre of images to `height × width`.
    public init(_ height: Int, _ width: Int, inputShape: [Int]? = nil, name: String? = nil) {
        self.height = height
        self.width = width
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard height > 0, width > 0 else {
            throw KestrelError.invalidArgument("\(name) (CenterCrop): height and width must be positive, found \(height) and \(width)")
        }
        try checkImageShape(inputShape)
        // A window of the target's own size is resampled at scale 1: an exact copy.
        resizer = ImageResizer(window: window(forInputShape: inputShape), inputShape: inputShape, height: height, width: width,
                               interpolation: .bilinear)
        return [height, width, inputShape[2]]
    }

    /// The part of an image of `inputShape` that becomes the output: the centred
    /// `height × width` window (its start rounded down, as Keras's `(input − target) // 2`), or,
    /// when the image is smaller along an axis, the centred window resized.
    public func window(forInputShape inputShape: [Int]) -> (top: Int, left: Int, rows: Int, columns: Int) {
        let (rows, columns) = (inputShape[0], inputShape[1])
        guard rows >= height, columns >= width else {
            return Resizing.centredCropBox(rows: rows, columns: columns, height: height, width: width)
        }
        return ((rows - height) / 2, (columns - width) / 2, height, width)
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "height": "\(height)", "width": "\(width)"] }

    public override func forward(_ c: LayerContext) { resizer.forward(c) }

    public override func backward(_ c: LayerContext) { resizer.backward(c) }
}
