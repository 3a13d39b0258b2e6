/// Maps integer indices to learned dense vectors (Keras `Embedding`): each input value `i`
/// becomes row `i` of the `(inputDim, outputDim)` embedding matrix.
///
/// Indices arrive as the float values of the input tensor and are truncated to integers, as
/// Keras's cast does. An index outside `0..<inputDim` gives a row of zeros and no gradient
/// (the forward pass cannot throw; check the data before training). Masking (`maskZero`) is
/// not supported.
public final class Embedding: Layer {
    /// The number of distinct indices (the vocabulary size).
    public let inputDim: Int
    /// The length of each embedding vector.
    public let outputDim: Int
    /// How the embeddings start (Keras default uniform in ±0.05).
    public let embeddingsInitializer: Initializer

    /// An embedding of `inputDim` indices into vectors of `outputDim`.
    public init(inputDim: Int, outputDim: Int, embeddingsInitializer: Initializer = .randomUniform,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.embeddingsInitializer = embeddingsInitializer
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard inputDim > 0, outputDim > 0 else {
            throw KestrelError.invalidArgument(
                "\(name) (Embedding): inputDim and outputDim must be positive, found \(inputDim) and \(outputDim)")
        }
        return inputShape + [outputDim]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        [WeightSpec(name: "embeddings", shape: [inputDim, outputDim], initializer: embeddingsInitializer)]
    }

    public override var config: [String: String] {
        ["name": name, "input_dim": "\(inputDim)", "output_dim": "\(outputDim)"]
    }

    @inline(__always)
    private func row(_ value: Float) -> Int? {
        guard value >= 0, value < Float(inputDim) else { return nil }
        return Int(value)
    }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.inputSize, d = outputDim, table = c.weights[0]
        for i in 0..<n {
            let y = c.output + i * d
            if let r = row(c.input[i]) {
                y.update(from: table + r * d, count: d)
            } else {
                y.update(repeating: 0, count: d)
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.inputSize, d = outputDim, dTable = c.weightGradients[0]
        if !c.accumulateWeightGradients { dTable.update(repeating: 0, count: inputDim * d) }
        for i in 0..<n {
            guard let r = row(c.input[i]) else { continue }
            let g = dTable + r * d, dy = c.outputGradient! + i * d
            for j in 0..<d { g[j] += dy[j] }
        }
        // Indices are not differentiable: whoever asks gets zeros.
        c.inputGradient?.update(repeating: 0, count: n)
    }
}
