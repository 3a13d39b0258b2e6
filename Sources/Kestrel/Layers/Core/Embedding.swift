/// Maps integer indices to learned dense vectors (Keras `Embedding`): each input value `i`
/// becomes row `i` of the `(inputDim, outputDim)` embedding matrix.
///
/// Indices arrive as the float values of the input tensor and are truncated to integers, as
/// Keras's cast does. An index outside `0..<inputDim` gives a row of zeros and no gradient
/// (the forward pass cannot throw; check the data before training). With `maskZero`, index 0
/// is padding: the output carries a mask that is 0 where the index is 0, which recurrent
/// layers and `GlobalAveragePooling1D` skip, as in Keras (index 0 still has its row, so
/// `inputDim` counts it).
public final class Embedding: Layer {
    /// The table does not depend on the sequence length: sequences of other lengths may share it.
    public override var acceptsOtherShapesWithSameWeights: Bool { true }

    /// The number of distinct indices (the vocabulary size).
    public let inputDim: Int
    /// The length of each embedding vector.
    public let outputDim: Int
    /// How the embeddings start (Keras default uniform in ±0.05).
    public let embeddingsInitializer: Initializer
    /// Whether index 0 marks padding, masked in the layers downstream (Keras `mask_zero`).
    public let maskZero: Bool
    /// The penalty on the whole embedding matrix added to the loss (Keras `embeddings_regularizer`).
    public let embeddingsRegularizer: Regularizer?
    /// The projection of the embedding matrix after each step (Keras `embeddings_constraint`).
    public let embeddingsConstraint: Constraint?

    /// An embedding of `inputDim` indices into vectors of `outputDim`.
    public init(inputDim: Int, outputDim: Int, embeddingsInitializer: Initializer = .randomUniform,
                embeddingsRegularizer: Regularizer? = nil, embeddingsConstraint: Constraint? = nil,
                maskZero: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        self.inputDim = inputDim
        self.outputDim = outputDim
        self.embeddingsInitializer = embeddingsInitializer
        self.embeddingsRegularizer = embeddingsRegularizer
        self.embeddingsConstraint = embeddingsConstraint
        self.maskZero = maskZero
        super.init(name: name, inputShape: inputShape)
        weightRegularizers = [embeddingsRegularizer]
        weightConstraints = [embeddingsConstraint]
    }

    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        maskZero ? .compute : .none
    }

    public override func forwardMask(_ c: LayerContext) {
        for i in 0..<(c.batch * c.inputSize) { c.outputMask![i] = c.input[i] == 0 ? 0 : 1 }
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
        ["name": name, "input_dim": "\(inputDim)", "output_dim": "\(outputDim)", "mask_zero": "\(maskZero)"]
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
