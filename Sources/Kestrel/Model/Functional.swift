/// A tensor in a model being defined: the output of `Input(shape:)` or of a layer called on
/// symbolic tensors (Keras `KerasTensor`). It records which layer made it from which inputs,
/// so that `Model(inputs:outputs:)` can recover the graph.
public final class SymbolicTensor {
    /// The per-sample shape (no batch axis).
    public let shape: [Int]
    /// The layer that produced this tensor.
    public let layer: Layer
    /// The tensors the layer was called on (none for an input).
    public let inputs: [SymbolicTensor]

    init(shape: [Int], layer: Layer, inputs: [SymbolicTensor]) {
        self.shape = shape
        self.layer = layer
        self.inputs = inputs
    }

    /// The producing layer's name.
    public var name: String { layer.name }
}

/// A symbolic input of a model, for samples of `shape` (Keras `keras.Input`).
public func Input(shape: [Int], name: String? = nil) -> SymbolicTensor {
    SymbolicTensor(shape: shape, layer: InputLayer(shape: shape, name: name), inputs: [])
}

extension Layer {
    /// Calls the layer on a symbolic tensor, building it for that shape (Keras's functional
    /// call). Incompatible shapes throw here, when the model is defined.
    public func callAsFunction(_ input: SymbolicTensor) throws -> SymbolicTensor {
        try callAsFunction([input])
    }

    /// Calls a layer on several symbolic tensors (merge layers).
    public func callAsFunction(_ inputs: [SymbolicTensor]) throws -> SymbolicTensor {
        guard !(self is InputLayer) else {
            throw KestrelError.invalidArgument("\(name) (InputLayer): an input layer cannot be called; use Input(shape:)")
        }
        let out = try build(inputShapes: inputs.map(\.shape))
        return SymbolicTensor(shape: out, layer: self, inputs: inputs)
    }
}

extension Model {
    /// A model from symbolic inputs to symbolic outputs (Keras `Model(inputs, outputs)`).
    /// Every output must be computed from the given inputs only, and every input must be used;
    /// otherwise this throws, naming the layers involved.
    public convenience init(inputs: [SymbolicTensor], outputs: [SymbolicTensor], name: String? = nil) throws {
        self.init(name: name ?? LayerNames.unique(for: "functional"))
        definedGraph = try ModelGraph.fromSymbolic(inputs: inputs, outputs: outputs, model: self.name)
    }

    /// A single-input, single-output model.
    public convenience init(inputs: SymbolicTensor, outputs: SymbolicTensor, name: String? = nil) throws {
        try self.init(inputs: [inputs], outputs: [outputs], name: name)
    }

    /// A model whose inputs and outputs are keyed by name: `fit`, `evaluate`, `predict` and
    /// `compile` dictionaries then use these keys (in sorted order for the array forms).
    public convenience init(inputs: [String: SymbolicTensor], outputs: [String: SymbolicTensor],
                            name: String? = nil) throws {
        let inputKeys = inputs.keys.sorted(), outputKeys = outputs.keys.sorted()
        try self.init(inputs: inputKeys.map { inputs[$0]! }, outputs: outputKeys.map { outputs[$0]! }, name: name)
        customInputNames = inputKeys
        customOutputNames = outputKeys
    }

    /// Calls the whole model on symbolic tensors, as a layer of a bigger model: its layers
    /// (and so its weights) are shared with the bigger model.
    public func callAsFunction(_ inputs: [SymbolicTensor]) throws -> [SymbolicTensor] {
        let g = try makeGraph()
        guard inputs.count == g.inputNodes.count else {
            throw KestrelError.shapeMismatch("\(name): called on \(inputs.count) tensors, but it has \(g.inputNodes.count) inputs")
        }
        var mapped: [SymbolicTensor?] = Array(repeating: nil, count: g.nodes.count)
        for (k, node) in g.inputNodes.enumerated() {
            let expected = (g.nodes[node].layer as! InputLayer).shape
            guard inputs[k].shape == expected else {
                throw KestrelError.shapeMismatch(
                    "\(name): input '\(g.nodes[node].layer.name)' expects samples of shape \(expected), found \(inputs[k].shape)")
            }
            mapped[node] = inputs[k]
        }
        for (i, node) in g.nodes.enumerated() where mapped[i] == nil {
            mapped[i] = try node.layer(node.inputs.map { mapped[$0]! })
        }
        return g.outputNodes.map { mapped[$0]! }
    }

    /// Calls a single-input, single-output model on a symbolic tensor.
    public func callAsFunction(_ input: SymbolicTensor) throws -> SymbolicTensor {
        let outputs = try callAsFunction([input])
        guard outputs.count == 1 else {
            throw KestrelError.invalidArgument("\(name): has \(outputs.count) outputs; call it with an array to get them all")
        }
        return outputs[0]
    }
}

extension ModelGraph {
    /// The graph between symbolic inputs and outputs, in topological order.
    static func fromSymbolic(inputs: [SymbolicTensor], outputs: [SymbolicTensor], model: String) throws -> ModelGraph {
        guard !inputs.isEmpty, !outputs.isEmpty else {
            throw KestrelError.invalidArgument("\(model): a model needs at least one input and one output")
        }
        for t in inputs where !(t.layer is InputLayer) || !t.inputs.isEmpty {
            throw KestrelError.invalidArgument(
                "\(model): inputs must come from Input(shape:); '\(t.name)' is the output of a \(t.layer.className) layer")
        }
        var index: [ObjectIdentifier: Int] = [:]
        var nodes: [Node] = []
        var visiting = Set<ObjectIdentifier>()
        let inputIDs = inputs.map { ObjectIdentifier($0) }

        func visit(_ t: SymbolicTensor, from consumer: String) throws -> Int {
            let id = ObjectIdentifier(t)
            if let i = index[id] { return i }
            guard visiting.insert(id).inserted else {
                throw KestrelError.invalidArgument("\(model): the graph has a cycle through layer '\(t.name)'")
            }
            defer { visiting.remove(id) }
            if t.layer is InputLayer {
                guard inputIDs.contains(id) else {
                    throw KestrelError.invalidArgument(
                        "\(model): layer '\(consumer)' depends on input '\(t.name)', which is not among the model's inputs (\(inputs.map(\.name).joined(separator: ", ")))")
                }
            }
            let parents = try t.inputs.map { try visit($0, from: t.name) }
            nodes.append(Node(layer: t.layer, inputs: parents))
            index[id] = nodes.count - 1
            return nodes.count - 1
        }
        let outputNodes = try outputs.map { try visit($0, from: $0.name) }
        var inputNodes: [Int] = []
        for t in inputs {
            guard let i = index[ObjectIdentifier(t)] else {
                throw KestrelError.invalidArgument(
                    "\(model): input '\(t.name)' is not used by any output (\(outputs.map(\.name).joined(separator: ", ")))")
            }
            inputNodes.append(i)
        }
        guard Set(inputNodes).count == inputNodes.count else {
            throw KestrelError.invalidArgument("\(model): the same input is listed twice")
        }
        return ModelGraph(nodes: nodes, inputNodes: inputNodes, outputNodes: outputNodes)
    }
}
