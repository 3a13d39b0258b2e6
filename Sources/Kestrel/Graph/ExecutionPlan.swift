/// A graph compiled for one batch capacity: every buffer a forward (and, for training, a
/// backward) pass needs is allocated here, once. Running a step only calls the layers'
/// kernels over these buffers, so it allocates nothing.
///
/// Layers that merely reinterpret their input (`isIdentity`) share its buffer and are skipped.
/// A pooling layer that alone reads a convolution's output runs inside that convolution.
/// A training plan keeps every activation for backward; an inference plan hands a buffer to a
/// later node as soon as its last reader has run.
final class ExecutionPlan {
    let graph: ModelGraph
    let capacity: Int
    let training: Bool
    let shapes: [[Int]]

    /// Each node's output buffer (capacity × sample size).
    private(set) var outputs: [UnsafeMutablePointer<Float>] = []
    /// Each node's output-gradient buffer (training plans; nil where no gradient flows).
    private(set) var gradients: [UnsafeMutablePointer<Float>?] = []
    /// One context per executed node (nil for identity nodes and inputs).
    private var contexts: [LayerContext?] = []
    /// Gradient buffers of edges that share a producer, summed into the producer's gradient.
    private var fanInSums: [(target: UnsafeMutablePointer<Float>, parts: [UnsafeMutablePointer<Float>], count: Int)?] = []
    private var needsGradient: [Bool] = []
    /// For a pooling node run inside the convolution that produces its input, that
    /// convolution's node (`LayerContext.fusedPooling`); such a node's own passes are skipped.
    private var fusedProducer: [Int?] = []
    /// Where the loss writes the gradient of each model output (nil when none is needed).
    private var lossGradients: [UnsafeMutablePointer<Float>?] = []
    private var allocations: [UnsafeMutablePointer<Float>] = []

    /// Each node's output mask `(capacity, positions)`, shared along the nodes it passes
    /// through (`ModelGraph.maskSources`); nil where the output has none.
    private(set) var masks: [UnsafeMutablePointer<Float>?] = []

    /// Logits buffers of outputs whose loss is computed from logits (`Layer.logitsActivation`).
    private var logitsBuffers: [Int: UnsafeMutablePointer<Float>] = [:]

    /// A plan for batches of up to `capacity` samples; `logitsOutputs` lists the outputs whose
    /// loss reads the output layer's logits; `maskSources` says where each node's mask comes
    /// from (none by default).
    init(graph: ModelGraph, shapes: [[Int]], capacity: Int, training: Bool, logitsOutputs: Set<Int> = [],
         maskSources: [Int?]? = nil) {
        self.graph = graph
        self.capacity = capacity
        self.training = training
        self.shapes = shapes
        let n = graph.nodes.count
        let sizes = shapes.map { $0.reduce(1, *) }
        self.sizes = sizes
        activityNodes = graph.nodes.indices.filter { graph.nodes[$0].layer.activityRegularizer != nil }

        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            allocations.append(p)
            return p
        }

        // Which node outputs is the identity of which earlier buffer.
        var root = Array(0..<n)
        for (i, node) in graph.nodes.enumerated() where !(node.layer is InputLayer) {
            if node.layer.isIdentity(training: training), node.inputs.count == 1 { root[i] = root[node.inputs[0]] }
        }

        // A pooling layer that is the only reader of a convolution's output runs inside that
        // convolution, on each tile while it is in cache.
        // (A model output counts as a reader: the loss reads it.)
        // (An output selector shares a buffer its source's call writes: it is no reader.)
        let selected = graph.nodes.indices.map { graph.selectedOutput($0) }
        var consumers = Array(repeating: 0, count: n)
        for (i, node) in graph.nodes.enumerated() where selected[i] == nil { for p in node.inputs { consumers[p] += 1 } }
        for o in graph.outputNodes { consumers[o] += 1 }
        fusedProducer = Array(repeating: nil, count: n)
        for (j, node) in graph.nodes.enumerated() where node.layer is BasePooling && node.inputs.count == 1 {
            let i = node.inputs[0]
            // (A convolution whose output is penalised must write it whole.)
            if root[i] == i, consumers[i] == 1, let conv = graph.nodes[i].layer as? BaseConv, conv.acceptsPoolingFusion,
               conv.activityRegularizer == nil {
                fusedProducer[j] = i
            }
        }

        // Output buffers.
        outputs = Array(repeating: UnsafeMutablePointer<Float>(bitPattern: 1)!, count: n)
        if training {
            for i in 0..<n where root[i] == i { outputs[i] = allocate(capacity * sizes[i]) }
        } else {
            // Last reader of each root buffer; outputs of the model live to the end.
            var lastUse = Array(0..<n)
            for (i, node) in graph.nodes.enumerated() { for p in node.inputs { lastUse[root[p]] = max(lastUse[root[p]], i) } }
            // A fused pooling writes its output while the convolution still reads its input.
            for (j, producer) in fusedProducer.enumerated() {
                guard let i = producer else { continue }
                for p in graph.nodes[i].inputs { lastUse[root[p]] = max(lastUse[root[p]], j) }
            }
            for o in graph.outputNodes { lastUse[root[o]] = Int.max }
            // Activity penalties read their outputs after the pass.
            for i in activityNodes { lastUse[root[i]] = Int.max }
            // Logits that are an output layer's input must survive until the loss reads them.
            for k in logitsOutputs where graph.nodes[graph.outputNodes[k]].layer.logitsAreInput {
                lastUse[root[graph.nodes[graph.outputNodes[k]].inputs[0]]] = Int.max
            }
            var free: [(UnsafeMutablePointer<Float>, Int)] = []
            // Every input is filled before the pass starts, so an input never takes a buffer
            // that an earlier node frees during the pass.
            let inputNodes = Set(graph.inputNodes)
            for i in 0..<n {
                if root[i] == i {
                    let need = capacity * sizes[i]
                    // (A selected output is written when its source runs, before node i.)
                    if !inputNodes.contains(i), selected[i] == nil,
                       let k = free.indices.filter({ free[$0].1 >= need }).min(by: { free[$0].1 < free[$1].1 }) {
                        outputs[i] = free.remove(at: k).0
                    } else {
                        outputs[i] = allocate(need)
                        allocationSizes[outputs[i]] = need
                    }
                }
                // Buffers whose last reader is node i become free after it runs.
                for p in Set(graph.nodes[i].inputs.map { root[$0] }) where lastUse[p] == i && p != root[i] {
                    free.append((outputs[p], allocationSizes[outputs[p]] ?? capacity * sizes[p]))
                }
            }
        }
        for i in 0..<n where root[i] != i { outputs[i] = outputs[root[i]] }

        // Masks: a buffer for each node that computes one, shared by the nodes it reaches.
        let sources = maskSources ?? Array(repeating: nil, count: n)
        masks = Array(repeating: nil, count: n)
        for i in 0..<n where sources[i] == i { masks[i] = allocate(capacity * shapes[i].dropLast().reduce(1, *)) }
        for i in 0..<n { if let s = sources[i] { masks[i] = masks[s] } }

        // Which nodes need a gradient: those with trainable weights or downstream of one.
        needsGradient = Array(repeating: false, count: n)
        if training {
            for (i, node) in graph.nodes.enumerated() where !(node.layer is InputLayer) {
                let own = node.layer.trainable && node.layer.weightSpecs.contains { $0.trainable }
                needsGradient[i] = own || node.inputs.contains { needsGradient[$0] }
            }
        }

        // Gradient buffers: a node's output gradient; an edge from a producer read by several
        // consumers gets its own buffer, summed into the producer's before its backward.
        gradients = Array(repeating: nil, count: n)
        fanInSums = Array(repeating: nil, count: n)
        var edgeGradient: [Int: [UnsafeMutablePointer<Float>]] = [:]
        func gradientForEdge(from producer: Int) -> UnsafeMutablePointer<Float>? {
            guard needsGradient[producer], let target = gradients[producer] else { return nil }
            if consumers[producer] == 1 { return target }
            let part = allocate(capacity * sizes[producer])
            edgeGradient[producer, default: []].append(part)
            return part
        }
        if training {
            for (i, node) in graph.nodes.enumerated() where needsGradient[i] {
                if root[i] != i {
                    gradients[i] = gradientForEdge(from: node.inputs[0])
                        ?? allocate(capacity * sizes[i])
                } else {
                    gradients[i] = allocate(capacity * sizes[i])
                }
            }
        }

        // Contexts, with the accumulate flag for layers called more than once.
        contexts = Array(repeating: nil, count: n)
        var edgeTargets: [Int: [UnsafeMutablePointer<Float>?]] = [:]
        for (i, node) in graph.nodes.enumerated() where root[i] == i && !(node.layer is InputLayer) && selected[i] == nil {
            let layer = node.layer
            let inputShapes = node.inputs.map { shapes[$0] }
            let workspace = allocate(layer.workspaceSize(batch: capacity, inputShapes: inputShapes, training: training))
            let context = LayerContext(
                inputShapes: inputShapes, outputShape: shapes[i], inputs: node.inputs.map { outputs[$0] },
                output: outputs[i], workspace: workspace, weights: layer.weightPointers(),
                weightGradients: layer.gradientPointers(), generator: layer.generator.split())
            context.training = training
            context.outputGradient = gradients[i]
            context.inputMasks = node.inputs.map { masks[$0] }
            if sources[i] == i { context.outputMask = masks[i] }
            let extra = layer.additionalOutputShapes(forInputs: inputShapes).count
            context.additionalOutputs = Array(repeating: nil, count: extra)
            context.additionalOutputGradients = Array(repeating: nil, count: extra)
            if training && needsGradient[i] {
                edgeTargets[i] = node.inputs.map { gradientForEdge(from: $0) }
                context.inputGradients = edgeTargets[i]!
            }
            contexts[i] = context
        }
        if training {
            lossGradients = graph.outputNodes.map { gradientForEdge(from: $0) }
        }
        // A selected output's buffers are its source call's additional output and gradient.
        for (j, pick) in selected.enumerated() {
            guard let (i, k) = pick, let c = contexts[root[i]] else { continue }
            precondition(root[i] == i, "a layer with several outputs is never an identity")
            c.additionalOutputs[k - 1] = outputs[j]
            c.additionalOutputGradients[k - 1] = gradients[j]
        }
        // Identity nodes' edges were created above; account every edge part for summation.
        for (producer, parts) in edgeGradient where consumers[producer] > 1 {
            fanInSums[producer] = (gradients[producer]!, parts, capacity * sizes[producer])
        }
        for k in logitsOutputs {
            let node = graph.outputNodes[k]
            guard let c = contexts[node] else { continue }
            c.logits = graph.nodes[node].layer.logitsAreInput ? c.inputs[0] : allocate(capacity * sizes[node])
            logitsBuffers[k] = c.logits
        }
        for (j, producer) in fusedProducer.enumerated() {
            guard let i = producer, let pooling = contexts[j], let conv = contexts[i] else { continue }
            precondition(pooling.inputGradient == conv.outputGradient, "a fused pooling writes its producer's gradient")
            conv.fusedPooling = (graph.nodes[j].layer as! BasePooling).pass(pooling)
        }
        var seen = Set<ObjectIdentifier>()
        for i in stride(from: n - 1, through: 0, by: -1) {
            guard let c = contexts[i] else { continue }
            c.accumulateWeightGradients = !seen.insert(ObjectIdentifier(graph.nodes[i].layer)).inserted
        }
    }

    private var allocationSizes: [UnsafeMutablePointer<Float>: Int] = [:]

    /// How many pooling layers run inside their convolution.
    var fusedPoolingCount: Int { fusedProducer.lazy.filter { $0 != nil }.count }

    deinit { for p in allocations { p.deallocate() } }

    /// The buffer of the model's `k`-th input.
    func inputBuffer(_ k: Int = 0) -> UnsafeMutablePointer<Float> { outputs[graph.inputNodes[k]] }
    /// The buffer of the model's `k`-th output.
    func outputBuffer(_ k: Int = 0) -> UnsafeMutablePointer<Float> { outputs[graph.outputNodes[k]] }
    /// The mask of the model's `k`-th output, if it carries one.
    func outputMask(_ k: Int) -> UnsafeMutablePointer<Float>? { masks[graph.outputNodes[k]] }
    /// The logits of the model's `k`-th output, when its loss reads them.
    func logitsBuffer(_ k: Int) -> UnsafeMutablePointer<Float>? { logitsBuffers[k] }

    /// Where the loss writes the gradient of the model's `k`-th output.
    func outputGradientBuffer(_ k: Int = 0) -> UnsafeMutablePointer<Float>? { lossGradients[k] }

    /// Gives every layer call a fresh generator derived from `seed`, so that randomness inside
    /// an epoch (dropout masks) depends only on the seed, not on what ran before: a resumed
    /// `fit` repeats an uninterrupted one.
    func reseed(_ seed: UInt64) {
        for (i, c) in contexts.enumerated() {
            c?.generator = RandomGenerator(seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
        }
    }

    /// Runs every layer forward for `batch` rows (at most `capacity`) already in the input buffers.
    func forward(batch: Int) {
        for c in contexts {
            guard let c else { continue }
            c.batch = batch
        }
        for (i, c) in contexts.enumerated() {
            guard let c, fusedProducer[i] == nil else { continue }
            graph.nodes[i].layer.forward(c)
            if c.outputMask != nil { graph.nodes[i].layer.forwardMask(c) }
        }
    }

    /// The floating-point operations of one step over `batch` samples: every layer's forward
    /// pass and, in a training plan, the weight gradients of layers with weights and the input
    /// gradients that an earlier layer needs (`Layer.flops`).
    func flops(batch: Int) -> Int {
        var total = 0
        for (i, context) in contexts.enumerated() {
            guard let c = context else { continue }
            let layer = graph.nodes[i].layer
            let f = layer.flops(batch: batch, inputShapes: c.inputShapes)
            total += f.forward
            guard training, needsGradient[i] else { continue }
            if !c.weights.isEmpty { total += f.weightGradients }
            if c.inputGradients.contains(where: { $0 != nil }) { total += f.inputGradients }
        }
        return total
    }

    /// The nodes whose layers have an activity regularizer when the plan is made (identity
    /// nodes included: their output and gradient are their producer's), and every node's
    /// output size per sample.
    private let activityNodes: [Int]
    private let sizes: [Int]

    /// The activity regularizers' penalty on the outputs of the last forward pass over `batch`
    /// rows: each regularizer of its layer's output, divided by the batch size (Keras 3).
    func activityPenalty(batch: Int) -> Float {
        var total: Float = 0
        for i in activityNodes {
            guard let r = graph.nodes[i].layer.activityRegularizer else { continue }
            total += r.penalty(outputs[i], count: batch * sizes[i], gradient: nil) / Float(batch)
        }
        return total
    }

    /// Runs backward in reverse order after the loss wrote the output gradients; an activity
    /// regularizer's gradient joins its node's output gradient before the node's backward.
    func backward(batch: Int) {
        for i in stride(from: contexts.count - 1, through: 0, by: -1) {
            if let sum = fanInSums[i] {
                let count = batch * (sum.count / capacity)
                sum.target.update(from: sum.parts[0], count: count)
                for part in sum.parts.dropFirst() { for j in 0..<count { sum.target[j] += part[j] } }
            }
            if needsGradient[i], activityNodes.contains(i), let r = graph.nodes[i].layer.activityRegularizer,
               let gradient = gradients[i] {
                _ = r.penalty(outputs[i], count: batch * sizes[i], gradient: gradient, gradientScale: 1 / Float(batch))
            }
            guard needsGradient[i], fusedProducer[i] == nil, let c = contexts[i] else { continue }
            graph.nodes[i].layer.backward(c)
        }
    }
}
