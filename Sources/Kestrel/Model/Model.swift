import Foundation

/// A trainable graph of layers with Keras's training API (Keras `keras.Model`):
/// `compile`, `fit`, `evaluate`, `predict`, the `…OnBatch` calls, `summary`, and weights.
///
/// Build one with `Sequential`, or with the Functional API:
/// `Model(inputs: [x], outputs: [y])` over symbolic tensors from `Input(shape:)`.
/// Both compile into the same `ExecutionPlan` per batch size: one flat parameter buffer, one
/// flat gradient buffer and every activation buffer are allocated once, so a training step
/// runs without heap allocation.
open class Model {
    /// The model's name (Keras style: `sequential`, `functional`, …).
    public var name: String
    /// Set to true from a callback to end `fit` after the current epoch.
    public var stopTraining = false
    /// The optimizer given to `compile`.
    public internal(set) var optimizer: Optimizer?
    /// The loss of each output (in `outputNames` order), as given to `compile`.
    public var losses: [Loss] {
        switch pendingLosses {
        case .shared(let l)?: return outputNames.isEmpty ? [l] : outputNames.map { _ in l }
        case .list(let list)?: return list
        case .named(let dict)?: return outputNames.compactMap { dict[$0] }
        case nil: return []
        }
    }
    /// The loss of the first output.
    public var loss: Loss? { losses.first }

    /// The graph given by the Functional API (Sequential derives its own).
    var definedGraph: ModelGraph?
    /// Input and output names given as dictionary keys to the Functional initialiser.
    var customInputNames: [String]?
    var customOutputNames: [String]?
    /// The graph built by `build()`, with `shapes` per node.
    var graph: ModelGraph?
    var shapes: [[Int]] = []
    var store: ParameterStore?
    var trainableVariables: [Range<Int>] = []
    /// The weight names ("kernel", "bias", …) of `trainableVariables`, for the optimizer's
    /// `excludeFromWeightDecay`.
    var trainableWeightNames: [String] = []
    /// Layers with weight regularizers or constraints, called around each optimizer step.
    var penaltyLayers: [Layer] = []
    var trainingPlans: [Int: ExecutionPlan] = [:]
    var inferencePlans: [Int: ExecutionPlan] = [:]

    /// Compile-time requests, resolved against output names and shapes when data arrives.
    var pendingLosses: CompileRequest<Loss>?
    var pendingLossWeights: CompileRequest<Float>?
    var pendingMetrics: CompileRequest<[MetricSpec]>?
    /// Everything that depends on the label shapes (resolved metrics, label buffers).
    var targets: TargetState?
    /// Outputs whose loss is computed from the output layer's logits, with that loss.
    var logitsLosses: [Int: Loss] = [:]

    /// A model with a name; its graph comes from a subclass or the Functional initialiser.
    init(name: String) {
        self.name = name
    }

    // MARK: Graph and build

    /// The graph this model runs; subclasses produce it from their layers.
    func makeGraph() throws -> ModelGraph {
        guard let definedGraph else { throw KestrelError.notReady("\(name): the model has no layers") }
        return definedGraph
    }

    /// Forgets the built plans and flat buffers (after layers were added or removed).
    func invalidate() {
        graph = nil
        store = nil
        trainingPlans = [:]
        inferencePlans = [:]
        targets = nil
    }

    /// Whether the model's layers and flat parameter buffer exist.
    public var isBuilt: Bool { store != nil }

    /// Builds every layer (inferring shapes) and gathers their weights into one flat buffer.
    ///
    /// Layers shared with another model (a nested model, a layer called in two models) hold
    /// their weights in whichever model's buffer gathered them last; using this model again
    /// gathers them back (copying the current values), so both always see the same weights.
    public func build() throws {
        if let store, let graph, graph.uniqueLayers.allSatisfy({ $0.store === store }) { return }
        let g: ModelGraph
        if let graph, store != nil {
            g = graph
        } else {
            g = try makeGraph()
            shapes = try g.inferShapes()
            try g.checkUniqueNames(model: name)
            _ = try g.maskSources(training: false)
        }
        let layers = g.uniqueLayers
        let total = layers.reduce(0) { $0 + $1.parameterCount }
        let newStore = ParameterStore(count: total)
        var offset = 0
        for layer in layers {
            layer.rebind(to: newStore, offset: offset)
            offset += layer.parameterCount
        }
        graph = g
        store = newStore
        trainingPlans = [:]
        inferencePlans = [:]
        penaltyLayers = layers.filter(\.hasWeightPenaltiesOrConstraints)
        updateTrainableVariables()
        optimizer?.build(parameterCount: total)
    }

    /// Recomputes which parameter ranges the optimizer updates (after `trainable` changes;
    /// Keras also takes them at `compile`).
    func updateTrainableVariables() {
        guard let graph else { return }
        trainableVariables = []
        trainableWeightNames = []
        var offset = 0
        for layer in graph.uniqueLayers {
            for spec in layer.weightSpecs {
                if layer.trainable && spec.trainable {
                    trainableVariables.append(offset..<(offset + spec.count))
                    trainableWeightNames.append(spec.name)
                }
                offset += spec.count
            }
        }
    }

    /// The model's layers in call order, without the input layers (Keras `model.layers`).
    public var layers: [Layer] {
        ((try? makeGraph())?.uniqueLayers ?? []).filter { !($0 is InputLayer) }
    }

    /// The layer with the given name (Keras `get_layer`).
    public func getLayer(name: String) throws -> Layer {
        guard let layer = layers.first(where: { $0.name == name }) else {
            throw KestrelError.invalidArgument(
                "\(self.name).getLayer: no layer named '\(name)'; layers are \(layers.map(\.name).joined(separator: ", "))")
        }
        return layer
    }

    /// The names of the model's inputs (their input layers' names), in order.
    public var inputNames: [String] {
        if let customInputNames { return customInputNames }
        guard let g = try? makeGraph() else { return [] }
        return g.inputNodes.map { g.nodes[$0].layer.name }
    }

    /// The names of the model's outputs (the layers producing them), in order.
    public var outputNames: [String] {
        if let customOutputNames { return customOutputNames }
        guard let g = try? makeGraph() else { return [] }
        return g.outputNodes.map { g.nodes[$0].layer.name }
    }

    /// The per-sample shape of each input.
    public var inputShapes: [[Int]] {
        guard let g = try? makeGraph() else { return [] }
        return g.inputNodes.compactMap { (g.nodes[$0].layer as? InputLayer)?.shape }
    }

    /// The per-sample shape of each output, once built.
    public var outputShapes: [[Int]] {
        guard isBuilt, let g = graph else { return [] }
        return g.outputNodes.map { shapes[$0] }
    }

    /// The per-sample input shape of a single-input model.
    public var inputShape: [Int]? { inputShapes.first }

    /// The per-sample output shape of a single-output model, once built.
    public var outputShape: [Int]? { outputShapes.first }

    /// The floating-point operations of one training step (forward, weight and needed input
    /// gradients) or, with `training: false`, one inference pass over `batchSize` samples, as
    /// the execution plan counts them from `Layer.flops` (a multiply-add counts as two).
    public func flops(batchSize: Int, training: Bool = true) throws -> Int {
        try build()
        guard batchSize > 0 else {
            throw KestrelError.invalidArgument("\(name).flops: batchSize must be positive, found \(batchSize)")
        }
        return try plan(capacity: batchSize, training: training).flops(batch: batchSize)
    }

    // MARK: Weights

    /// The number of scalars in all weights (Keras `count_params`).
    public func countParams() throws -> Int {
        try build()
        return store!.count
    }

    /// All weights as tensors, layer by layer (Keras `get_weights`).
    public func getWeights() throws -> [Tensor] {
        try build()
        return layers.flatMap { $0.getWeights() }
    }

    /// Replaces all weights; the list must match `getWeights()` in count and shapes.
    public func setWeights(_ weights: [Tensor]) throws {
        try build()
        let expected = layers.reduce(0) { $0 + $1.weightSpecs.count }
        guard weights.count == expected else {
            throw KestrelError.shapeMismatch("\(name).setWeights: expected \(expected) arrays, found \(weights.count)")
        }
        var index = 0
        for layer in layers {
            let n = layer.weightSpecs.count
            try layer.setWeights(Array(weights[index..<(index + n)]))
            index += n
        }
    }

    // MARK: Compile

    /// Configures training (Keras `compile`): optimizer (default RMSprop, as Keras), one loss
    /// for every output, and metrics for every output.
    public func compile(optimizer: Optimizer = RMSprop(), loss: Loss, metrics: [MetricSpec] = []) {
        compile(optimizer: optimizer, losses: .shared(loss), lossWeights: nil, metrics: .shared(metrics))
    }

    /// Configures a multi-output model: a loss per output (in `outputNames` order), optional
    /// loss weights, and metrics per output.
    public func compile(optimizer: Optimizer = RMSprop(), losses: [Loss], lossWeights: [Float]? = nil,
                        metrics: [[MetricSpec]] = []) {
        compile(optimizer: optimizer, losses: .list(losses), lossWeights: lossWeights.map { .list($0) },
                metrics: metrics.isEmpty ? .shared([]) : .list(metrics))
    }

    /// Configures a multi-output model by output name (Keras's dictionaries).
    public func compile(optimizer: Optimizer = RMSprop(), losses: [String: Loss], lossWeights: [String: Float]? = nil,
                        metrics: [String: [MetricSpec]] = [:]) {
        compile(optimizer: optimizer, losses: .named(losses), lossWeights: lossWeights.map { .named($0) },
                metrics: .named(metrics))
    }

    private func compile(optimizer: Optimizer, losses: CompileRequest<Loss>, lossWeights: CompileRequest<Float>?,
                         metrics: CompileRequest<[MetricSpec]>) {
        self.optimizer = optimizer
        pendingLosses = losses
        pendingLossWeights = lossWeights
        pendingMetrics = metrics
        targets = nil
        updateTrainableVariables()
        if let store { optimizer.build(parameterCount: store.count) }
    }

    /// Whether some call of `layer` in this (built) model receives a mask on its first input,
    /// for readers of formats that record masks (a Keras functional model's `mask` keywords).
    package func receivesMask(_ layer: Layer) -> Bool {
        guard let graph, let sources = try? graph.maskSources(training: false) else { return false }
        return graph.nodes.contains { $0.layer === layer && $0.inputs.first.map { sources[$0] != nil } == true }
    }

    // MARK: Plans

    func plan(capacity: Int, training: Bool) throws -> ExecutionPlan {
        if training, let p = trainingPlans[capacity] { return p }
        if !training, let p = inferencePlans[capacity] { return p }
        let p = ExecutionPlan(graph: graph!, shapes: shapes, capacity: capacity, training: training,
                              logitsOutputs: Set(logitsLosses.keys),
                              maskSources: try graph!.maskSources(training: training))
        if training { trainingPlans[capacity] = p } else { inferencePlans[capacity] = p }
        return p
    }
}

/// A per-output setting from `compile`: one for all outputs, a list in output order, or a
/// dictionary by output name.
enum CompileRequest<Value> {
    case shared(Value)
    case list([Value])
    case named([String: Value])

    /// The value for each output; throws when a list has the wrong length or a name is unknown.
    func resolve(outputs: [String], default defaultValue: Value?, what: String, model: String) throws -> [Value] {
        switch self {
        case .shared(let v):
            return outputs.map { _ in v }
        case .list(let values):
            guard values.count == outputs.count else {
                throw KestrelError.invalidArgument(
                    "\(model).compile: \(what) has \(values.count) entries but the model has \(outputs.count) outputs (\(outputs.joined(separator: ", ")))")
            }
            return values
        case .named(let dict):
            for key in dict.keys where !outputs.contains(key) {
                throw KestrelError.invalidArgument(
                    "\(model).compile: \(what) names an output '\(key)'; the outputs are \(outputs.joined(separator: ", "))")
            }
            return try outputs.map { name in
                if let v = dict[name] { return v }
                if let d = defaultValue { return d }
                throw KestrelError.invalidArgument("\(model).compile: \(what) has no entry for output '\(name)'")
            }
        }
    }
}
