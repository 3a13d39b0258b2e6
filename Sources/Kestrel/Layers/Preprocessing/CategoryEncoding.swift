/// How the categorical layers (`CategoryEncoding`, `Discretization`, `Hashing`,
/// `HashedCrossing`) turn the category index of each input value into outputs, with Keras's
/// shape rules (its `encode_categorical_inputs`): `.int` gives the indices; `.oneHot` one
/// vector per value, replacing a last axis of 1; `.multiHot` and `.count` one vector per
/// sample, reducing the last axis (a sample of one value is its own vector).
struct CategoricalEncoding: Sendable, Equatable {
    let mode: LookupOutputMode
    /// The number of categories: the length of each encoded vector.
    let depth: Int

    /// The modes `allowed` by a layer; `describe` names it in the error.
    init(mode: LookupOutputMode, depth: Int, allowed: [LookupOutputMode], describe: String) throws {
        guard allowed.contains(mode) else {
            throw KestrelError.invalidArgument(
                "\(describe): outputMode must be one of \(allowed.map { ".\($0)" }.joined(separator: ", ")), found .\(mode)")
        }
        self.mode = mode
        self.depth = depth
    }

    /// An encoding whose mode the layer has already checked.
    init(checkedMode mode: LookupOutputMode, depth: Int) {
        self.mode = mode
        self.depth = depth
    }

    /// The per-sample output shape for a per-sample input shape.
    func outputShape(for input: [Int]) -> [Int] {
        switch mode {
        case .int: return input
        case .oneHot: return (input.last == 1 ? Array(input.dropLast()) : input) + [depth]
        case .multiHot, .count, .tfIdf: return Array(input.dropLast()) + [depth]
        }
    }

    /// Writes the encoding of `values` scalars (`batch × inputSize` of them, samples of
    /// `inputShape`) to `output`; `category(i)` is the index of value `i`, nil when it falls
    /// in no category (it then counts nowhere, as TensorFlow's `one_hot` and `bincount` drop
    /// such values). `countWeights`, in `.count` mode, weighs each value's count.
    func encode(batch: Int, inputShape: [Int], into output: UnsafeMutablePointer<Float>,
                countWeights: UnsafePointer<Float>? = nil, category: (Int) -> Int?) {
        let total = batch * inputShape.reduce(1, *)
        switch mode {
        case .int:
            for i in 0..<total { output[i] = Float(category(i) ?? -1) }
        case .oneHot:
            output.update(repeating: 0, count: total * depth)
            for i in 0..<total { if let k = category(i) { output[i * depth + k] = 1 } }
        case .multiHot, .count, .tfIdf:
            let group = inputShape.last ?? 1
            output.update(repeating: 0, count: (group > 0 ? total / group : 0) * depth)
            for i in 0..<total {
                guard let k = category(i) else { continue }
                let slot = output + (i / group) * depth + k
                if mode == .multiHot { slot.pointee = 1 } else { slot.pointee += countWeights?[i] ?? 1 }
            }
        }
    }
}

/// Encodes integer features as one-hot, multi-hot or count vectors when the number of
/// categories is known (Keras `CategoryEncoding`): values `0..<numTokens`, such as small
/// integer codes in the data or the indices a lookup gives.
///
/// `.oneHot` turns each value into a vector (a last axis of 1 is replaced); `.multiHot`
/// (the default) and `.count` turn each sample's values (its last axis) into one vector.
/// Values are cast to integers toward zero; values outside `0..<numTokens` count nowhere.
/// Called on two inputs in `.count` mode, the second (of the first's shape) weighs each
/// value's count (Keras's `count_weights`).
public final class CategoryEncoding: Layer {
    /// The number of categories, the length of each output vector.
    public let numTokens: Int
    /// How the values are encoded.
    public let outputMode: LookupOutputMode
    private let encoding: CategoricalEncoding

    /// A category encoder with Keras's arguments and defaults.
    public init(numTokens: Int, outputMode: LookupOutputMode = .multiHot, inputShape: [Int]? = nil,
                name: String? = nil) throws {
        self.numTokens = numTokens
        self.outputMode = outputMode
        let describe = "\(name ?? "category_encoding") (CategoryEncoding)"
        guard numTokens >= 1 else {
            throw KestrelError.invalidArgument("\(describe): numTokens must be at least 1, found \(numTokens)")
        }
        encoding = try CategoricalEncoding(mode: outputMode, depth: numTokens, allowed: [.oneHot, .multiHot, .count],
                                           describe: describe)
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        guard shapes.count == 1 || shapes.count == 2 else {
            throw KestrelError.shapeMismatch(
                "\(name) (CategoryEncoding): expected 1 input (values) or 2 (values, count weights), found \(shapes.count)")
        }
        if shapes.count == 2 {
            guard outputMode == .count else {
                throw KestrelError.invalidArgument(
                    "\(name) (CategoryEncoding): count weights (a second input) need outputMode .count, found .\(outputMode)")
            }
            guard shapes[1] == shapes[0] else {
                throw KestrelError.shapeMismatch(
                    "\(name) (CategoryEncoding): count weights must have the values' shape \(shapes[0]), found \(shapes[1])")
            }
        }
        return encoding.outputShape(for: shapes[0])
    }

    public override var config: [String: String] {
        ["name": name, "num_tokens": "\(numTokens)", "output_mode": outputMode.rawValue]
    }

    /// The category of a value: the integer it casts to, if it is one of the categories.
    private func category(_ value: Float) -> Int? {
        guard value > -1, value < Float(numTokens) else { return nil }
        return Int(value)
    }

    public override func forward(_ c: LayerContext) {
        let x = c.input
        encoding.encode(batch: c.batch, inputShape: c.inputShapes[0], into: c.output,
                        countWeights: c.inputs.count > 1 ? UnsafePointer(c.inputs[1]) : nil) { category(x[$0]) }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.inputSize
        // The values are categories, not differentiable: whoever asks gets zeros.
        c.inputGradient?.update(repeating: 0, count: n)
        // Each count weight adds itself to its value's slot of the output.
        guard c.inputs.count > 1, let dw = c.inputGradients[1], let dy = c.outputGradient else { return }
        let x = c.input, group = c.inputShapes[0].last ?? 1
        for i in 0..<n {
            guard let k = category(x[i]) else { dw[i] = 0; continue }
            dw[i] = dy[(i / group) * numTokens + k]
        }
    }
}
