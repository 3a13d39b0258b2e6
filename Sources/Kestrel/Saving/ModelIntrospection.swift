/// One call of a layer in a model's graph, as seen from outside the core (for saving and
/// export formats that need the graph's structure: `.keras` configs, ONNX).
public struct ModelNode {
    /// The layer called (an `InputLayer` for a model input).
    public let layer: Layer
    /// Indices (into `Model.graphNodes()`) of the nodes whose outputs this call consumes, in
    /// argument order; empty for an input.
    public let inputs: [Int]
    /// The per-sample output shape of this call (no batch axis).
    public let outputShape: [Int]
    /// For a node that is not a call but the `k`-th output after the first of the call in
    /// `inputs[0]` (a recurrent layer's state with `returnState`; Keras's tensor index `k`), `k`;
    /// `layer` is then that call's layer. Nil for a call.
    public let selectedOutput: Int?
}

extension Model {
    /// The model's graph in topological order, with per-node output shapes, plus which nodes
    /// are the model's inputs and outputs. Builds the model first (shapes need it).
    ///
    /// Read-only: the returned values describe the graph but cannot change it.
    public func graphNodes() throws -> (nodes: [ModelNode], inputs: [Int], outputs: [Int]) {
        try build()
        guard let graph else { throw KestrelError.notReady("\(name): the model has no graph") }
        let nodes = graph.nodes.enumerated().map { i, node in
            let pick = graph.selectedOutput(i)
            return ModelNode(layer: pick.map { graph.nodes[$0.node].layer } ?? node.layer, inputs: node.inputs,
                             outputShape: shapes[i], selectedOutput: pick?.index)
        }
        return (nodes, graph.inputNodes, graph.outputNodes)
    }
}

extension Model {
    /// The losses given to `compile`, one per output in `outputNames` order; nil before
    /// `compile` (or when a dictionary of losses does not cover every output). Read by savers
    /// that record the training configuration (`.keras`'s `compile_config`).
    public var compiledLosses: [Loss]? {
        try? pendingLosses?.resolve(outputs: outputNames, default: nil, what: "losses", model: name)
    }

    /// The loss weights given to `compile`, one per output; nil when none were given.
    public var compiledLossWeights: [Float]? {
        try? pendingLossWeights?.resolve(outputs: outputNames, default: 1, what: "lossWeights", model: name)
    }

    /// The names of the metrics given to `compile` (as written there, e.g. "accuracy"), one
    /// list per output; empty before `compile`.
    public var compiledMetricNames: [[String]] {
        let specs = (try? pendingMetrics?.resolve(outputs: outputNames, default: [], what: "metrics", model: name)) ?? nil
        return specs?.map { $0.map(\.key) } ?? []
    }
}
