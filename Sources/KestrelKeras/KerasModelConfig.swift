import Foundation
import Kestrel

/// A layer of a model as Keras lists it, with the HDF5 group that holds its variables.
struct KerasLayerEntry {
    let layer: Layer
    /// `layers/<snake_case(ClassName)>[_N]`, named by class and position as Keras does.
    let groupPath: String
}

/// Builds and reads the `config.json` of a `.keras` archive.
enum KerasModelConfig {
    // MARK: Layer order and weight paths

    /// The model's layers in Keras's `model.layers` order with their weight groups.
    ///
    /// Keras names the groups from each layer's class and its position in that list (not from
    /// the layer's name), so the order must be exactly Keras's: a Sequential lists its layers
    /// without the input; a Functional model lists every layer, inputs included, by decreasing
    /// depth (longest path to an output), ties broken by first visit in a depth-first walk
    /// from the outputs (Keras's `map_graph`).
    static func layerEntries(of model: Model) throws -> [KerasLayerEntry] {
        let layers: [Layer]
        if model is Sequential {
            layers = model.layers
        } else {
            layers = try functionalOrder(model)
        }
        var used: [String: Int] = [:]
        return layers.map { layer in
            var base = KerasLayers.snakeCase(try! kerasClassName(layer))
            if let n = used[base] {
                used[base] = n + 1
                base += "_\(n + 1)"
            } else {
                used[base] = 0
            }
            return KerasLayerEntry(layer: layer, groupPath: "layers/\(base)")
        }
    }

    /// The Keras class name of a layer (Kestrel's class names are Keras's).
    static func kerasClassName(_ layer: Layer) throws -> String {
        layer is InputLayer ? "InputLayer" : layer.className
    }

    /// Keras's `map_graph` operation order for a Functional model.
    static func functionalOrder(_ model: Model) throws -> [Layer] {
        let (nodes, inputs, rawOutputs) = try model.graphNodes()
        // A state a call returned is that call's output to Keras (its node's tensor `k`).
        func call(_ n: Int) -> Int { nodes[n].selectedOutput == nil ? n : nodes[n].inputs[0] }
        let outputs = rawOutputs.map(call)
        var finished = Set<Int>()
        var inDecreasingDepth: [Int] = []
        var layerIndex: [ObjectIdentifier: Int] = [:]
        func visit(_ n: Int) {
            if finished.contains(n) { return }
            let id = ObjectIdentifier(nodes[n].layer)
            if layerIndex[id] == nil { layerIndex[id] = layerIndex.count }
            for p in nodes[n].inputs.map(call) { visit(p) }
            finished.insert(n)
            inDecreasingDepth.append(n)
        }
        for o in outputs { visit(o) }
        var nodeDepth: [Int: Int] = [:]
        var layerDepth: [ObjectIdentifier: Int] = [:]
        for n in inDecreasingDepth.reversed() {
            let id = ObjectIdentifier(nodes[n].layer)
            let depth = max(nodeDepth[n] ?? 0, layerDepth[id] ?? 0)
            layerDepth[id] = depth
            nodeDepth[n] = depth
            for p in nodes[n].inputs.map(call) { nodeDepth[p] = max(depth + 1, nodeDepth[p] ?? 0) }
        }
        for i in inputs where layerDepth[ObjectIdentifier(nodes[i].layer)] == nil {
            layerDepth[ObjectIdentifier(nodes[i].layer)] = 0
            layerIndex[ObjectIdentifier(nodes[i].layer)] = -1
        }
        var unique: [Layer] = []
        var seen = Set<ObjectIdentifier>()
        for node in nodes where node.selectedOutput == nil && seen.insert(ObjectIdentifier(node.layer)).inserted {
            unique.append(node.layer)
        }
        return unique.sorted { a, b in
            let (ia, ib) = (ObjectIdentifier(a), ObjectIdentifier(b))
            if layerDepth[ia]! != layerDepth[ib]! { return layerDepth[ia]! > layerDepth[ib]! }
            return layerIndex[ia]! < layerIndex[ib]!
        }
    }

    /// The weight variables of a layer in Keras's order (its `weights`, which the optimizer's
    /// slots follow): its variable groups in turn.
    static func kerasVariableOrder(_ layer: Layer) -> [Int] {
        kerasVariableGroups(layer).flatMap(\.variables)
    }

    /// One `vars` group of a layer's weights in a Keras weights file.
    struct VariableGroup {
        /// The group's path below the layer's own (`cell`, `query_dense`), or "" for the layer's.
        let path: String
        /// The `name` attribute Keras gives the group: the name of the (sub)layer owning it.
        let name: String
        /// Indices of the layer's weights stored as `vars/0`, `vars/1`, … in that order.
        let variables: [Int]
    }

    /// Where Keras keeps a layer's variables. Most layers own theirs: trainable ones first, then
    /// the non-trainable ones (BatchNormalization's moving statistics), each in creation order.
    /// Keras's LSTM and ConvLSTM keep them in their cell, and MultiHeadAttention in its four `EinsumDense`
    /// projections, beside variable-less groups for the layer itself and its softmax and
    /// dropout sublayers (written as Keras writes them, not required when reading).
    static func kerasVariableGroups(_ layer: Layer) -> [VariableGroup] {
        let specs = layer.weightSpecs
        switch layer {
        case let l as RecurrentLayer:
            return [VariableGroup(path: "", name: layer.name, variables: []),
                    VariableGroup(path: "cell", name: cellName(l), variables: Array(specs.indices))]
        case is BaseConvLSTM:
            return [VariableGroup(path: "", name: layer.name, variables: []),
                    VariableGroup(path: "cell", name: "conv_lstm_cell", variables: Array(specs.indices))]
        case let l as Bidirectional:
            // Each half as Keras keeps it (its cell inside its own group), forward first.
            let n = l.forwardWeightCount
            return [VariableGroup(path: "", name: layer.name, variables: []),
                    VariableGroup(path: "forward_layer", name: KerasLayers.bidirectionalForwardName(l), variables: []),
                    VariableGroup(path: "forward_layer/cell", name: cellName(l.forwardLayer), variables: Array(0..<n)),
                    VariableGroup(path: "backward_layer", name: l.backwardLayer.name, variables: []),
                    VariableGroup(path: "backward_layer/cell", name: cellName(l.backwardLayer), variables: Array(n..<specs.count))]
        case let l as TimeDistributed:
            // The wrapped layer's groups, inside the wrapper's `layer` group.
            return [VariableGroup(path: "", name: layer.name, variables: [])]
                + kerasVariableGroups(l.layer).map {
                    VariableGroup(path: $0.path.isEmpty ? "layer" : "layer/" + $0.path, name: $0.name, variables: $0.variables)
                }
        case is MultiHeadAttention:
            // Kestrel names the weights `query/kernel`, …, `attention_output/bias`, as Keras's sublayers.
            let projections = [("query_dense", "query"), ("key_dense", "key"), ("value_dense", "value"),
                               ("output_dense", "attention_output")]
            return [VariableGroup(path: "", name: layer.name, variables: []),
                    VariableGroup(path: "_dropout_layer", name: "dropout", variables: []),
                    VariableGroup(path: "_softmax", name: "softmax", variables: [])]
                + projections.map { path, sublayer in
                    VariableGroup(path: path, name: sublayer,
                                  variables: specs.indices.filter { specs[$0].name.hasPrefix(sublayer + "/") })
                }
        default:
            return [VariableGroup(path: "", name: layer.name,
                                  variables: specs.indices.filter { specs[$0].trainable } + specs.indices.filter { !specs[$0].trainable })]
        }
    }

    /// The name of the cell Keras keeps a recurrent layer's variables in.
    private static func cellName(_ l: RecurrentLayer) -> String {
        switch l {
        case is LSTM: "lstm_cell"
        case is GRU: "gru_cell"
        default: "simple_rnn_cell"
        }
    }

    // MARK: Writing

    /// The full `config.json` object for a model (with `compile_config` when compiled).
    static func config(of model: Model) throws -> [String: Any] {
        let (nodes, inputs, outputs) = try model.graphNodes()
        var top: [String: Any]
        if model is Sequential {
            let inputShape = nodes[inputs[0]].outputShape
            var layers: [[String: Any]] = [try layerEntry(nodes[inputs[0]].layer, buildShapes: nil)]
            for n in nodes.indices where !inputs.contains(n) {
                layers.append(try layerEntry(nodes[n].layer, buildShapes: nodes[n].inputs.map { nodes[$0].outputShape }))
            }
            let batchShape: [Any] = [NSNull()] + inputShape
            top = ["module": "keras", "class_name": "Sequential", "registered_name": NSNull(),
                   "config": ["name": model.name, "trainable": true, "dtype": KerasLayers.float32Policy,
                              "layers": layers, "build_input_shape": batchShape] as [String: Any],
                   "build_config": ["input_shape": batchShape]]
        } else {
            // Each layer once, in Keras's order, with every call of it as an inbound node; a
            // call's node index is its position among the calls of that layer.
            var callIndex: [Int: Int] = [:]
            var callsOfLayer: [ObjectIdentifier: [Int]] = [:]
            for (n, node) in nodes.enumerated() where node.selectedOutput == nil {
                let id = ObjectIdentifier(node.layer)
                callIndex[n] = callsOfLayer[id, default: []].count
                callsOfLayer[id, default: []].append(n)
            }
            // `[layer, call, tensor]`: a returned state is tensor `k` of its call.
            func triple(_ n: Int) -> [Any] {
                guard let k = nodes[n].selectedOutput else { return [nodes[n].layer.name, callIndex[n]!, 0] }
                return [nodes[n].layer.name, callIndex[nodes[n].inputs[0]]!, k]
            }
            // Keras's HashedCrossing takes only integer (or string) tensors: an input read by one,
            // and otherwise only by layers that take categories, is written as int64.
            var readers: [Int: [(layer: Layer, position: Int)]] = [:]
            for node in nodes where node.selectedOutput == nil {
                for (position, input) in node.inputs.enumerated() { readers[input, default: []].append((node.layer, position)) }
            }
            let integerInputs = Set(inputs.filter { n in
                let r = readers[n] ?? []
                return r.contains { $0.layer is HashedCrossing } && r.allSatisfy {
                    $0.layer is HashedCrossing || $0.layer is Hashing || $0.layer is Discretization
                        || ($0.layer is CategoryEncoding && $0.position == 0)
                }
            })
            func tensorRecord(_ n: Int) -> [String: Any] {
                ["class_name": "__keras_tensor__",
                 "config": ["shape": [NSNull()] + nodes[n].outputShape, "dtype": integerInputs.contains(n) ? "int64" : "float32",
                            "keras_history": triple(n)] as [String: Any]]
            }
            var layers: [[String: Any]] = []
            for layer in try functionalOrder(model) {
                let calls = callsOfLayer[ObjectIdentifier(layer)]!
                let first = nodes[calls[0]]
                var entry = try layerEntry(layer, buildShapes: layer is InputLayer ? nil : first.inputs.map { nodes[$0].outputShape })
                if integerInputs.contains(calls[0]), var config = entry["config"] as? [String: Any] {
                    config["dtype"] = "int64"
                    entry["config"] = config
                }
                entry["name"] = layer.name
                entry["inbound_nodes"] = layer is InputLayer ? [] : calls.map { n -> [String: Any] in
                    let args = nodes[n].inputs.map(tensorRecord)
                    // Layers whose call takes its tensors as one list.
                    let isMerge = layer is ElementwiseMerge || layer is Concatenate || layer is Dot || layer is ScoreAttention
                        || layer is HashedCrossing
                    if layer is CategoryEncoding && args.count == 2 {
                        return ["args": [args[0]], "kwargs": ["count_weights": args[1]] as [String: Any]]
                    }
                    // Keras's attention layers take the causal mask as a call argument.
                    let causal = (layer as? MultiHeadAttention)?.useCausalMask ?? (layer as? ScoreAttention)?.useCausalMask ?? false
                    if layer.takesInitialState && args.count > 1 {
                        // Keras's recurrent layers take their starting states by keyword.
                        return ["args": [args[0]], "kwargs": ["initial_state": Array(args.dropFirst())] as [String: Any]]
                    }
                    var kwargs: [String: Any] = causal ? ["use_causal_mask": true] : [:]
                    if (layer as? MultiHeadAttention)?.returnAttentionScores == true { kwargs["return_attention_scores"] = true }
                    return ["args": isMerge ? [args] : args, "kwargs": kwargs]
                }
                layers.append(entry)
            }
            top = ["module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
                   "config": ["name": model.name, "trainable": true, "layers": layers,
                              "input_layers": inputs.map(triple),
                              "output_layers": outputs.count == 1 ? triple(outputs[0]) : outputs.map(triple)] as [String: Any],
                   "build_config": ["input_shape": NSNull()]]
        }
        if let compile = try KerasTraining.compileConfig(of: model) { top["compile_config"] = compile }
        return top
    }

    private static func layerEntry(_ layer: Layer, buildShapes: [[Int]]?) throws -> [String: Any] {
        let (className, config) = try KerasLayers.config(of: layer)
        var entry: [String: Any] = ["module": "keras.layers", "class_name": className, "config": config,
                                    "registered_name": NSNull()]
        if let shapes = buildShapes {
            let batched = shapes.map { [NSNull()] + $0 as [Any] }
            if layer.takesInitialState && shapes.count > 1 {
                // Keras builds a recurrent layer called with initial states from named shapes.
                entry["build_config"] = ["shapes_dict": ["sequences_shape": batched[0],
                                                         "initial_state_shape": Array(batched.dropFirst())] as [String: Any]]
            } else if layer is MultiHeadAttention {
                // Keras builds it from named shapes (`build(query_shape, value_shape, key_shape)`).
                var named: [String: Any] = [:]
                for (key, shape) in zip(["query_shape", "value_shape", "key_shape"], batched) { named[key] = shape }
                entry["build_config"] = ["shapes_dict": named]
            } else {
                entry["build_config"] = ["input_shape": batched.count == 1 ? batched[0] : batched]
            }
        }
        return entry
    }

    // MARK: Reading

    /// Limits that keep a hostile config from allocating more than its archive can hold.
    struct Budget {
        /// Scalars the weights file can hold; a model needing more cannot be valid.
        var scalars: Int
        let file: String

        /// Builds `layer` for `shapes` after checking that its weights fit the budget.
        mutating func build(_ layer: Layer, inputShapes shapes: [[Int]]) throws -> [Int] {
            if layer.isBuilt {
                // Built already (a shared layer, or one of a nested model): it must fit again.
                do { return try layer.build(inputShapes: shapes) } catch let error as KestrelError {
                    throw KestrelError.fileError("\(file): layer '\(layer.name)' does not fit its inputs: \(error.message)")
                }
            }
            let out: [Int]
            let specs: [WeightSpec]
            do {
                out = try layer.outputShape(forInputs: shapes)
                specs = try layer.weightSpecs(forInputs: shapes)
            } catch let error as KestrelError {
                throw KestrelError.fileError("\(file): layer '\(layer.name)' does not fit its inputs: \(error.message)")
            }
            guard out.count <= 9, checkedCount(out) != nil else {
                throw KestrelError.fileError("\(file): layer '\(layer.name)' has an invalid output shape \(out)")
            }
            for spec in specs {
                guard let n = checkedCount(spec.shape), n <= scalars else {
                    throw KestrelError.fileError(
                        "\(file): layer '\(layer.name)' declares a weight '\(spec.name)' of shape \(spec.shape), more than the weights file holds")
                }
                scalars -= n
            }
            return try layer.build(inputShapes: shapes)
        }
    }

    /// The element count of a shape, or nil when it overflows or exceeds 2^40.
    static func checkedCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o, p <= 1 << 40 else { return nil }
            n = p
        }
        return n
    }

    /// A model read from a `config.json`, with the HDF5 groups of its layers' weights.
    struct ParsedModel {
        let model: Model
        /// Every layer (nested models' layers included, in place) with its weight group, in
        /// Keras's saving order: the config's `layers` order at every level.
        let entries: [KerasLayerEntry]
    }

    /// Nested models deeper than this are refused (a hostile config could recurse without end).
    static let maximumNesting = 32

    /// Class names of the model configs that may appear as layers of another model.
    static let modelClassNames: Set<String> = ["Sequential", "Functional", "Model"]

    /// The operations a Keras 3 functional model records when it computes a mask (Embedding's
    /// `mask_zero` test, Masking's test of every feature, the merges' or, Concatenate's
    /// broadcast and joined masks, attention's copy of the query's): Kestrel computes the same
    /// masks itself, so these entries are skipped, and a layer's `mask` keyword may refer to them.
    static let maskOperationClassNames: Set<String> = ["NotEqual", "Any", "LogicalOr", "LogicalAnd", "ConvertToTensor",
                                                       "ExpandDims", "ZerosLike", "OnesLike", "Concatenate"]

    /// A model from a parsed `config.json`: a `Sequential` for a Sequential config, a
    /// Functional `Model(inputs:outputs:)` otherwise. Layers are built as they are created,
    /// within `budget`. Nested models (a Sequential or Functional model used as a layer) are
    /// inlined: their layers become layers of the returned model, shared as Kestrel's own
    /// nested models are.
    static func model(from json: JSONObject, budget: inout Budget) throws -> ParsedModel {
        try model(from: json, budget: &budget, prefix: "", depth: 0)
    }

    private static func model(from json: JSONObject, budget: inout Budget, prefix: String, depth: Int) throws -> ParsedModel {
        guard depth <= maximumNesting else {
            throw KestrelError.fileError("\(json.context): models nested more than \(maximumNesting) levels deep")
        }
        let className = try json.string("class_name")
        let c = try json.object("config")
        switch className {
        case "Sequential": return try sequential(c, topLevel: json, budget: &budget, prefix: prefix, depth: depth)
        case "Functional", "Model": return try functional(c, budget: &budget, prefix: prefix, depth: depth)
        default:
            throw KestrelError.fileError("\(json.context): unsupported model class '\(className.prefix(80))'; Kestrel reads Sequential and Functional models")
        }
    }

    /// Names weight groups as Keras does within one model: `snake_case(class)`, then `_1`, `_2`, ….
    private struct GroupNamer {
        var used: [String: Int] = [:]
        mutating func next(_ className: String) -> String {
            var base = KerasLayers.snakeCase(className)
            if let n = used[base] {
                used[base] = n + 1
                base += "_\(n + 1)"
            } else {
                used[base] = 0
            }
            return base
        }
    }

    private static func sequential(_ c: JSONObject, topLevel: JSONObject, budget: inout Budget, prefix: String,
                                   depth: Int) throws -> ParsedModel {
        let entries = try c.array("layers")
        guard entries.count <= 100_000 else { throw KestrelError.fileError("\(c.context): too many layers (\(entries.count))") }
        var inputShape: [Int]?
        /// A layer, or a nested model read from its own config.
        enum Item { case layer(Layer), model(ParsedModel) }
        var items: [Item] = []
        var weightEntries: [KerasLayerEntry] = []
        var namer = GroupNamer()
        for (i, e) in entries.enumerated() {
            let entry = try JSONObject(any: e, context: "\(c.context).layers[\(i)]")
            let cls = try entry.string("class_name")
            let lc = try entry.object("config")
            if cls == "InputLayer" {
                guard i == 0 else { throw KestrelError.fileError("\(entry.context): an InputLayer can only come first") }
                inputShape = try lc.has("batch_shape") ? lc.batchShape("batch_shape") : lc.batchShape("batch_input_shape")
                continue
            }
            // Keras's Sequential lists its layers without the input for saving.
            let group = prefix + "layers/" + namer.next(cls)
            if modelClassNames.contains(cls) {
                let inner = try model(from: entry, budget: &budget, prefix: group + "/", depth: depth + 1)
                items.append(.model(inner))
                weightEntries += inner.entries
            } else {
                let layer = try KerasLayers.layer(className: cls, config: lc)
                if layer.returnsState {
                    throw KestrelError.fileError(
                        "\(entry.context): layer '\(layer.name.prefix(80))' (\(cls)) has returnState, so it returns several tensors; a Sequential model passes one from layer to layer")
                }
                items.append(.layer(layer))
                weightEntries.append(KerasLayerEntry(layer: layer, groupPath: group))
            }
        }
        if inputShape == nil {
            if c.has("build_input_shape") {
                inputShape = try c.batchShape("build_input_shape")
            } else if let build = try? topLevel.object("build_config"), build.has("input_shape") {
                inputShape = try build.batchShape("input_shape")
            } else if case .model(let first)? = items.first, let shape = first.model.inputShape {
                inputShape = shape
            }
        }
        guard let shape = inputShape else {
            throw KestrelError.fileError("\(c.context): the Sequential model has no input shape (no InputLayer or build_input_shape)")
        }
        guard !items.isEmpty else { throw KestrelError.fileError("\(c.context): the Sequential model has no layers") }
        let name = try modelName(c)
        // A chain of layers (nested Sequentials are chains too) stays a Sequential; a nested
        // Functional model makes it a Functional model calling each item in turn.
        var chain: [Layer]? = []
        for item in items {
            switch item {
            case .layer(let l): chain?.append(l)
            case .model(let m): if m.model is Sequential { chain?.append(contentsOf: m.model.layers) } else { chain = nil }
            }
        }
        let model: Model
        if let chain {
            var current = shape
            for item in items {
                switch item {
                case .layer(let l):
                    current = try budget.build(l, inputShapes: [current])
                case .model(let m):
                    guard m.model.inputShape == current else {
                        throw KestrelError.fileError(
                            "\(c.context): the nested model '\(m.model.name.prefix(80))' does not fit its inputs: it expects samples of shape \(m.model.inputShape ?? []), found \(current)")
                    }
                    for l in m.model.layers { current = try budget.build(l, inputShapes: [current]) }
                }
            }
            model = Sequential([InputLayer(shape: shape)] + chain, name: name)
        } else {
            let input = Input(shape: shape)
            var x = input
            for item in items {
                switch item {
                case .layer(let l):
                    _ = try budget.build(l, inputShapes: [x.shape])
                    x = try l(x)
                case .model(let m):
                    x = try callNested(m.model, on: [x], context: c.context)[0]
                }
            }
            model = try Model(inputs: input, outputs: x, name: name)
        }
        try model.build()
        return ParsedModel(model: model, entries: weightEntries)
    }

    /// Calls a nested model on symbolic tensors, turning a mismatch into a file error.
    private static func callNested(_ model: Model, on inputs: [SymbolicTensor], context: String) throws -> [SymbolicTensor] {
        do {
            return try model(inputs)
        } catch let error as KestrelError {
            throw KestrelError.fileError("\(context): the nested model '\(model.name.prefix(80))' does not fit its inputs: \(error.message)")
        }
    }

    private static func modelName(_ c: JSONObject) throws -> String {
        let name = try c.optionalString("name") ?? "model"
        return String(name.prefix(256))
    }

    private struct PendingLayer {
        /// The layer called, or nil for a nested model.
        let layer: Layer?
        let nested: Model?
        let name: String
        let nodes: [Any]
        var next = 0
        let context: String
    }

    private static func functional(_ c: JSONObject, budget: inout Budget, prefix: String, depth: Int) throws -> ParsedModel {
        let entries = try c.array("layers")
        guard entries.count <= 100_000 else { throw KestrelError.fileError("\(c.context): too many layers (\(entries.count))") }
        var pending: [PendingLayer] = []
        var byName: [String: Int] = [:]
        var weightEntries: [KerasLayerEntry] = []
        var namer = GroupNamer()
        // Outputs of processed calls: "layer#node#tensor" -> tensor.
        var tensors: [String: SymbolicTensor] = [:]
        // Mask operations skipped, and the layers called with one of their masks.
        var maskOperations: Set<String> = []
        var maskedCalls: [(layer: Layer, context: String)] = []
        for (i, e) in entries.enumerated() {
            let entry = try JSONObject(any: e, context: "\(c.context).layers[\(i)]")
            let cls = try entry.string("class_name")
            let lc = try entry.object("config")
            let name = try entry.optionalString("name") ?? lc.string("name")
            guard byName[name] == nil else { throw KestrelError.fileError("\(entry.context): duplicate layer name '\(name.prefix(80))'") }
            if maskOperationClassNames.contains(cls), try entry.optionalString("module")?.hasPrefix("keras.src.ops") == true {
                maskOperations.insert(name)
                continue
            }
            // A Functional model lists (and saves) its input layers too.
            let group = prefix + "layers/" + namer.next(cls)
            if cls == "InputLayer" {
                let shape = try lc.has("batch_shape") ? lc.batchShape("batch_shape") : lc.batchShape("batch_input_shape")
                let input = Input(shape: shape, name: name)
                tensors["\(name)#0#0"] = input
                pending.append(PendingLayer(layer: input.layer, nested: nil, name: name, nodes: [], context: entry.context))
                weightEntries.append(KerasLayerEntry(layer: input.layer, groupPath: group))
            } else {
                let nodes = try entry.array("inbound_nodes")
                guard nodes.count <= 10_000 else { throw KestrelError.fileError("\(entry.context): too many inbound nodes") }
                if modelClassNames.contains(cls) {
                    let inner = try model(from: entry, budget: &budget, prefix: group + "/", depth: depth + 1)
                    pending.append(PendingLayer(layer: nil, nested: inner.model, name: name, nodes: nodes, context: entry.context))
                    weightEntries += inner.entries
                } else {
                    let layer = try KerasLayers.layer(className: cls, config: lc)
                    pending.append(PendingLayer(layer: layer, nested: nil, name: name, nodes: nodes, context: entry.context))
                    weightEntries.append(KerasLayerEntry(layer: layer, groupPath: group))
                }
            }
            byName[name] = pending.count - 1
        }
        // Process calls whose inputs exist, until nothing changes (Keras defers the same way).
        var progress = true
        while progress {
            progress = false
            for i in pending.indices where pending[i].next < pending[i].nodes.count {
                let p = pending[i]
                let context = "\(p.context).inbound_nodes[\(p.next)]"
                let refs = try tensorReferences(p.nodes[p.next], keywords: p.layer.map(KerasLayers.tensorKeywords) ?? [],
                                                context: context)
                let inputs = refs.map { tensors["\($0.layer)#\($0.node)#\($0.tensor)"] }
                guard inputs.allSatisfy({ $0 != nil }) else { continue }
                for r in refs where byName[r.layer] == nil {
                    throw KestrelError.fileError("\(context): refers to an unknown layer '\(r.layer.prefix(80))'")
                }
                let outputs: [SymbolicTensor]
                if let layer = p.layer {
                    if let kwargs = (p.nodes[p.next] as? [String: Any])?["kwargs"] as? [String: Any] {
                        if try KerasLayers.checkCallKeywords(kwargs, of: layer, context: context, maskOperations: maskOperations) {
                            maskedCalls.append((layer, context))
                        }
                    }
                    _ = try budget.build(layer, inputShapes: inputs.map { $0!.shape })
                    if let rnn = layer as? RecurrentLayer {
                        // The sequence, then any initial states; the states after the output with return_state.
                        outputs = try rnn(inputs[0]!, initialState: inputs.dropFirst().map { $0! })
                    } else if let bidirectional = layer as? Bidirectional {
                        outputs = try bidirectional(inputs[0]!, initialState: inputs.dropFirst().map { $0! })
                    } else if let convLSTM = layer as? BaseConvLSTM {
                        outputs = try convLSTM(inputs[0]!, initialState: inputs.dropFirst().map { $0! })
                    } else if let attention = layer as? MultiHeadAttention, attention.returnAttentionScores, inputs.count >= 2 {
                        // return_attention_scores: the output, then the scores (tensor 1).
                        outputs = try attention(query: inputs[0]!, value: inputs[1]!, key: inputs.count > 2 ? inputs[2]! : nil,
                                                returnAttentionScores: true)
                    } else {
                        outputs = [try layer(inputs.map { $0! })]
                    }
                } else {
                    outputs = try callNested(p.nested!, on: inputs.map { $0! }, context: context)
                }
                for (k, out) in outputs.enumerated() { tensors["\(p.name)#\(p.next)#\(k)"] = out }
                pending[i].next += 1
                progress = true
            }
        }
        if let stuck = pending.first(where: { $0.next < $0.nodes.count }) {
            throw KestrelError.fileError(
                "\(stuck.context): the layer's inputs can never be computed (unknown layer, missing node or a cycle)")
        }
        func endpoints(_ key: String) throws -> [SymbolicTensor] {
            let raw = try c.array(key)
            let triples: [Any] = raw.first is String ? [raw] : raw
            guard !triples.isEmpty else { throw KestrelError.fileError("\(c.context): '\(key)' is empty") }
            return try triples.enumerated().map { k, t in
                guard let a = t as? [Any], a.count >= 2, let layer = a[0] as? String, let node = jsonInt(a[1]),
                      let tensor = tensors["\(layer)#\(node)#\(a.count > 2 ? jsonInt(a[2]) ?? -1 : 0)"] else {
                    throw KestrelError.fileError("\(c.context).\(key)[\(k)]: not a [layer, node, tensor] reference to a computed tensor")
                }
                return tensor
            }
        }
        let model = try Model(inputs: endpoints("input_layers"), outputs: endpoints("output_layers"), name: try modelName(c))
        try model.build()
        // Every call Keras gave a mask must find one where Kestrel's own masks reach.
        for call in maskedCalls where !model.receivesMask(call.layer) {
            throw KestrelError.fileError(
                "\(call.context): Keras passes '\(call.layer.name.prefix(80))' a mask that Kestrel's mask propagation does not produce there")
        }
        return ParsedModel(model: model, entries: weightEntries)
    }

    /// The `[layer, node, tensor]` references among a call's arguments (one tensor or a list
    /// of them), then those of the tensor arguments in `keywords` passed by keyword; the tensor
    /// index picks one output of a nested model with several.
    private static func tensorReferences(_ node: Any, keywords: [String] = [],
                                         context: String) throws -> [(layer: String, node: Int, tensor: Int)] {
        let n = try JSONObject(any: node, context: context)
        let args = try n.array("args")
        var found: [(String, Int, Int)] = []
        func collect(_ v: Any, depth: Int) throws {
            guard depth < 4 else { return }
            if let list = v as? [Any] {
                for x in list { try collect(x, depth: depth + 1) }
            } else if let o = v as? [String: Any], o["class_name"] as? String == "__keras_tensor__" {
                guard let cfg = o["config"] as? [String: Any], let h = cfg["keras_history"] as? [Any], h.count == 3,
                      let layer = h[0] as? String, let index = jsonInt(h[1]), let t = jsonInt(h[2]), t >= 0 else {
                    throw KestrelError.fileError("\(context): malformed keras_history")
                }
                found.append((layer, index, t))
            }
        }
        for a in args { try collect(a, depth: 0) }
        // `mha(query=q, value=v)`: keyword tensors continue the positional ones, in the call's order.
        if let kwargs = n.values["kwargs"] as? [String: Any] {
            for key in keywords.dropFirst(found.count) {
                guard let value = kwargs[key], !(value is NSNull) else { break }
                try collect(value, depth: 0)
            }
        }
        guard !found.isEmpty, found.count <= 1000 else {
            throw KestrelError.fileError("\(context): a layer call must take 1 to 1000 tensors, found \(found.count)")
        }
        return found
    }
}
