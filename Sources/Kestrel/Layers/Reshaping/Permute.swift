/// Reorders the axes of each sample (Keras `Permute`); `dims` are 1-based, the batch axis
/// stays first: `Permute([2, 1])` swaps the two axes of `(steps, features)` samples.
public final class Permute: Layer {
    /// The new order of the sample axes, 1-based.
    public let dims: [Int]
    /// For each output element (row-major), the offset of its source element in the sample.
    private var source: [Int] = []

    /// A permutation of the sample axes (1-based, as in Keras).
    public init(_ dims: [Int], inputShape: [Int]? = nil, name: String? = nil) {
        self.dims = dims
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard dims.count == inputShape.count, Set(dims) == Set(1...max(inputShape.count, 1)) else {
            throw KestrelError.invalidArgument(
                "\(name) (Permute): dims must be a permutation of 1...\(inputShape.count) for input shape \(inputShape), found \(dims)")
        }
        let out = dims.map { inputShape[$0 - 1] }
        // Source offsets, computed once here so that forward and backward are one gather/scatter.
        var strides = [Int](repeating: 1, count: inputShape.count)
        for a in stride(from: inputShape.count - 2, through: 0, by: -1) { strides[a] = strides[a + 1] * inputShape[a + 1] }
        let count = inputShape.reduce(1, *)
        source = [Int](repeating: 0, count: count)
        for i in 0..<count {
            var rest = i, offset = 0
            for a in stride(from: out.count - 1, through: 0, by: -1) {
                offset += (rest % out[a]) * strides[dims[a] - 1]
                rest /= out[a]
            }
            source[i] = offset
        }
        return out
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "dims": "\(dims)"] }

    public override func forward(_ c: LayerContext) {
        let size = c.inputSize
        source.withUnsafeBufferPointer { s in
            for n in 0..<c.batch {
                let x = c.input + n * size, y = c.output + n * size
                for i in 0..<size { y[i] = x[s[i]] }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let size = c.inputSize
        source.withUnsafeBufferPointer { s in
            for n in 0..<c.batch {
                let g = dx + n * size, dy = c.outputGradient! + n * size
                for i in 0..<size { g[s[i]] = dy[i] }
            }
        }
    }
}
