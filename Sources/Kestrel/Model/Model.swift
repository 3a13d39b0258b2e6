import Foundation

/// A trainable graph of layers with Keras's training API (Keras `keras.Model`):
/// `compile`, `fit`, `evaluate`, `predict`, the `…OnBatch` calls, `summary`, and weights.
///
/// The graph is compiled into an `ExecutionPlan` per batch size: one flat parameter buffer,
/// one flat gradient buffer and every activation buffer are allocated once, so a training
/// step runs without heap allocation.
open class Model {
    /// The model's name (Keras style: `sequential`, `sequential_1`, …).
    public var name: String
    /// Set to true from a callback to end `fit` after the current epoch.
    public var stopTraining = false
    /// The optimizer given to `compile`.
    public private(set) var optimizer: Optimizer?
    /// The loss given to `compile`.
    public private(set) var loss: Loss?
    /// The metrics requested in `compile` (resolved to instances when training starts).
    public private(set) var metricSpecs: [MetricSpec] = []

    var graph: ModelGraph?
    var shapes: [[Int]] = []
    var store: ParameterStore?
    var trainableVariables: [Range<Int>] = []
    private var trainingPlans: [Int: ExecutionPlan] = [:]
    private var inferencePlans: [Int: ExecutionPlan] = [:]
    private var labelBuffers: [Int: UnsafeMutablePointer<Float>] = [:]
    private var labelSize = 0
    private var labelShape: [Int]?
    private var metrics: [Metric] = []
    private let lossTracker = Mean(name: "loss")

    /// A model over a prepared graph (used by `Sequential` and the Functional API).
    init(name: String) {
        self.name = name
    }

    deinit { for (_, p) in labelBuffers { p.deallocate() } }

    // MARK: Graph and build

    /// The graph this model runs; subclasses produce it from their layers.
    func makeGraph() throws -> ModelGraph {
        guard let graph else { throw KestrelError.notReady("\(name): the model has no layers") }
        return graph
    }

    /// Forgets the built plans and flat buffers (after layers were added or removed).
    func invalidate() {
        graph = nil
        store = nil
        trainingPlans = [:]
        inferencePlans = [:]
        for (_, p) in labelBuffers { p.deallocate() }
        labelBuffers = [:]
        labelShape = nil
    }

    /// Whether the model's layers and flat parameter buffer exist.
    public var isBuilt: Bool { store != nil }

    /// Builds every layer (inferring shapes) and gathers their weights into one flat buffer.
    public func build() throws {
        if store != nil { return }
        let g = try makeGraph()
        shapes = try g.inferShapes()
        let layers = g.uniqueLayers
        let total = layers.reduce(0) { $0 + $1.parameterCount }
        let newStore = ParameterStore(count: total)
        var offset = 0
        trainableVariables = []
        for layer in layers {
            layer.rebind(to: newStore, offset: offset)
            for spec in layer.weightSpecs {
                if layer.trainable && spec.trainable { trainableVariables.append(offset..<(offset + spec.count)) }
                offset += spec.count
            }
        }
        graph = g
        store = newStore
        optimizer?.build(parameterCount: total)
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

    /// The per-sample input shape.
    public var inputShape: [Int]? {
        guard let g = try? makeGraph(), let input = g.nodes[g.inputNodes[0]].layer as? InputLayer else { return nil }
        return input.shape
    }

    /// The per-sample output shape, once built.
    public var outputShape: [Int]? {
        guard isBuilt, let g = graph else { return nil }
        return shapes[g.outputNodes[0]]
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

    /// Configures training (Keras `compile`): optimizer (default RMSprop, as Keras), loss and metrics.
    public func compile(optimizer: Optimizer = RMSprop(), loss: Loss, metrics: [MetricSpec] = []) {
        self.optimizer = optimizer
        self.loss = loss
        self.metricSpecs = metrics
        self.metrics = []
        labelShape = nil
        if let store { optimizer.build(parameterCount: store.count) }
    }

    // MARK: Plans

    private func plan(capacity: Int, training: Bool) -> ExecutionPlan {
        if training, let p = trainingPlans[capacity] { return p }
        if !training, let p = inferencePlans[capacity] { return p }
        let p = ExecutionPlan(graph: graph!, shapes: shapes, capacity: capacity, training: training)
        if training { trainingPlans[capacity] = p } else { inferencePlans[capacity] = p }
        return p
    }

    private func labelBuffer(capacity: Int) -> UnsafeMutablePointer<Float> {
        if let b = labelBuffers[capacity] { return b }
        let b = UnsafeMutablePointer<Float>.allocate(capacity: max(capacity * labelSize, 1))
        b.initialize(repeating: 0, count: max(capacity * labelSize, 1))
        labelBuffers[capacity] = b
        return b
    }

    /// Checks `x` against the input shape (building the model from it if needed).
    private func prepareInput(_ x: Tensor, _ what: String) throws {
        guard x.rank >= 1 else {
            throw KestrelError.shapeMismatch("\(name).\(what): expected a batch of samples, found a scalar tensor")
        }
        let sample = Array(x.shape.dropFirst())
        if let sequential = self as? Sequential, sequential.inputShape == nil {
            try sequential.build(inputShape: sample)
        }
        try build()
        let expected = inputShape!
        guard sample == expected else {
            throw KestrelError.shapeMismatch(
                "\(name).\(what): the model expects samples of shape \(expected) (input \(x.shape) should be [batch] + \(expected)), found samples of shape \(sample)")
        }
    }

    /// Checks labels against the loss and output shape; resolves metrics.
    private func prepareLabels(_ y: Tensor, samples: Int, _ what: String) throws {
        guard let loss else {
            throw KestrelError.notReady("\(name).\(what): call compile(optimizer:loss:metrics:) first")
        }
        guard y.rank >= 1, y.shape[0] == samples else {
            throw KestrelError.shapeMismatch(
                "\(name).\(what): x has \(samples) samples but y has \(y.rank >= 1 ? y.shape[0] : 0) (shape \(y.shape))")
        }
        let out = outputShape!
        let yShape = Array(y.shape.dropFirst())
        let size = try loss.labelSize(outputShape: out, labelShape: yShape)
        try y.scalars.withUnsafeBufferPointer { try loss.validate(labels: $0, outputShape: out) }
        if labelShape != yShape {
            if labelSize != size {
                for (_, p) in labelBuffers { p.deallocate() }
                labelBuffers = [:]
            }
            labelSize = size
            labelShape = yShape
            metrics = try metricSpecs.map { spec in
                let m = spec.make(out, yShape)
                if m is UnknownMetric {
                    throw KestrelError.invalidArgument(
                        "\(name).compile: unknown metric '\(spec.key)'; expected accuracy, sparse_categorical_accuracy, categorical_accuracy, binary_accuracy, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, mse or mae")
                }
                return m
            }
        }
    }

    // MARK: Steps

    /// One training step on rows already gathered into the plan's buffers; returns the loss.
    private func trainStep(_ plan: ExecutionPlan, labels: UnsafeMutablePointer<Float>, batch: Int) -> Float {
        let store = store!, loss = loss!, out = outputShape!
        plan.forward(batch: batch)
        let value = loss.compute(predictions: plan.outputBuffer(), labels: labels, batch: batch,
                                 outputShape: out, gradient: plan.outputGradientBuffer())
        plan.backward(batch: batch)
        optimizer!.apply(parameters: store.values, gradients: store.gradients, variables: trainableVariables)
        lossTracker.update(value: value, weight: Float(batch))
        for m in metrics { m.update(predictions: plan.outputBuffer(), labels: labels, batch: batch, outputShape: out) }
        return value
    }

    /// One evaluation step: forward in inference mode, then loss and metrics.
    private func testStep(_ plan: ExecutionPlan, labels: UnsafeMutablePointer<Float>, batch: Int) {
        let out = outputShape!
        plan.forward(batch: batch)
        let value = loss!.compute(predictions: plan.outputBuffer(), labels: labels, batch: batch,
                                  outputShape: out, gradient: nil)
        lossTracker.update(value: value, weight: Float(batch))
        for m in metrics { m.update(predictions: plan.outputBuffer(), labels: labels, batch: batch, outputShape: out) }
    }

    private func resetMetrics() {
        lossTracker.reset()
        for m in metrics { m.reset() }
    }

    private func writeResults(into logs: inout [String: Float], prefix: String = "") {
        logs[prefix + "loss"] = lossTracker.result()
        for m in metrics { logs[prefix + m.name] = m.result() }
    }

    /// Copies the rows `indices` of x and y into the plan's input and label buffers.
    private func gather(_ x: UnsafeBufferPointer<Float>, _ y: UnsafeBufferPointer<Float>?,
                        indices: UnsafeBufferPointer<Int>, plan: ExecutionPlan, labels: UnsafeMutablePointer<Float>?) {
        let inSize = inputShape!.reduce(1, *)
        Kernels.gatherRows(x.baseAddress!, rowLength: inSize, indices: indices, into: plan.inputBuffer())
        if let y, let labels {
            Kernels.gatherRows(y.baseAddress!, rowLength: labelSize, indices: indices, into: labels)
        }
    }

    // MARK: fit / evaluate / predict

    /// Trains the model (Keras `fit`). `validationSplit` holds out the last fraction of the
    /// samples before shuffling; `validationData` overrides it. Returns the History.
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, epochs: Int = 1, verbose: Int = 1,
                    callbacks: [Callback] = [], validationSplit: Float = 0,
                    validationData: (Tensor, Tensor)? = nil, shuffle: Bool = true,
                    initialEpoch: Int = 0) throws -> History {
        guard batchSize > 0 else { throw KestrelError.invalidArgument("\(name).fit: batchSize must be positive, found \(batchSize)") }
        guard epochs >= 0, initialEpoch >= 0 else {
            throw KestrelError.invalidArgument("\(name).fit: epochs (\(epochs)) and initialEpoch (\(initialEpoch)) must not be negative")
        }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw KestrelError.invalidArgument("\(name).fit: validationSplit must be in [0, 1), found \(validationSplit)")
        }
        try prepareInput(x, "fit")
        guard optimizer != nil else { throw KestrelError.notReady("\(name).fit: call compile(optimizer:loss:metrics:) first") }
        try prepareLabels(y, samples: x.shape[0], "fit")

        var trainX = x, trainY = y
        var validation = validationData
        if validation == nil && validationSplit > 0 {
            let splitAt = Int(Float(x.shape[0]) * (1 - validationSplit))
            guard splitAt > 0 && splitAt < x.shape[0] else {
                throw KestrelError.invalidArgument(
                    "\(name).fit: validationSplit \(validationSplit) of \(x.shape[0]) samples leaves no training or no validation samples")
            }
            validation = (x[batch: splitAt..<x.shape[0]], y[batch: splitAt..<y.shape[0]])
            trainX = x[batch: 0..<splitAt]
            trainY = y[batch: 0..<splitAt]
        }
        if let (vx, vy) = validation {
            try prepareInput(vx, "fit(validationData:)")
            try prepareLabels(vy, samples: vx.shape[0], "fit(validationData:)")
        }

        let samples = trainX.shape[0]
        guard samples > 0 else { throw KestrelError.invalidArgument("\(name).fit: no training samples") }
        let capacity = min(batchSize, samples)
        let steps = (samples + batchSize - 1) / batchSize
        let plan = plan(capacity: capacity, training: true)
        let labels = labelBuffer(capacity: capacity)

        let history = History()
        var allCallbacks: [Callback] = [history]
        if verbose > 0 { allCallbacks.append(ProgbarLogger(verbose: verbose, epochs: epochs, steps: steps)) }
        allCallbacks += callbacks
        for c in allCallbacks { c.setModel(self) }
        stopTraining = false

        var shuffler = GlobalRandom.split()
        var order = Array(0..<samples)
        var logs: [String: Float] = ["loss": 0]
        for m in metrics { logs[m.name] = 0 }
        for c in allCallbacks { c.onTrainBegin(logs: [:]) }
        var epochLogs: [String: Float] = [:]
        try trainX.scalars.withUnsafeBufferPointer { xs in
            try trainY.scalars.withUnsafeBufferPointer { ys in
                try order.withUnsafeMutableBufferPointer { order in
                    for epoch in initialEpoch..<max(epochs, initialEpoch) {
                        for c in allCallbacks { c.onEpochBegin(epoch, logs: [:]) }
                        if shuffle { shuffler.shuffle(order) }
                        resetMetrics()
                        for step in 0..<steps {
                            for c in callbacks { c.onTrainBatchBegin(step, logs: [:]) }
                            let start = step * batchSize, n = min(batchSize, samples - start)
                            let batch = UnsafeBufferPointer(rebasing: order[start..<(start + n)])
                            gather(xs, ys, indices: batch, plan: plan, labels: labels)
                            _ = trainStep(plan, labels: labels, batch: n)
                            writeResults(into: &logs)
                            for c in allCallbacks { c.onTrainBatchEnd(step, logs: logs) }
                        }
                        epochLogs = logs
                        if let (vx, vy) = validation {
                            let results = try evaluateLoop(vx, vy, batchSize: batchSize, callbacks: callbacks)
                            for (k, v) in results { epochLogs["val_" + k] = v }
                        }
                        for c in allCallbacks { c.onEpochEnd(epoch, logs: epochLogs) }
                        if stopTraining { break }
                    }
                }
            }
        }
        for c in allCallbacks { c.onTrainEnd(logs: epochLogs) }
        return history
    }

    private func evaluateLoop(_ x: Tensor, _ y: Tensor, batchSize: Int, callbacks: [Callback],
                              progress: ProgbarLogger? = nil) throws -> [String: Float] {
        let samples = x.shape[0]
        guard samples > 0 else { throw KestrelError.invalidArgument("\(name).evaluate: no samples") }
        let capacity = min(batchSize, samples)
        let plan = plan(capacity: capacity, training: false)
        let labels = labelBuffer(capacity: capacity)
        let steps = (samples + batchSize - 1) / batchSize
        var indices = Array(0..<capacity)
        resetMetrics()
        var logs: [String: Float] = [:]
        for c in callbacks { c.onTestBegin(logs: [:]) }
        progress?.onEpochBegin(0, logs: [:])
        x.scalars.withUnsafeBufferPointer { xs in
            y.scalars.withUnsafeBufferPointer { ys in
                indices.withUnsafeMutableBufferPointer { idx in
                    for step in 0..<steps {
                        for c in callbacks { c.onTestBatchBegin(step, logs: [:]) }
                        let start = step * batchSize, n = min(batchSize, samples - start)
                        for i in 0..<n { idx[i] = start + i }
                        gather(xs, ys, indices: UnsafeBufferPointer(rebasing: idx[0..<n]), plan: plan, labels: labels)
                        testStep(plan, labels: labels, batch: n)
                        writeResults(into: &logs)
                        for c in callbacks { c.onTestBatchEnd(step, logs: logs) }
                        progress?.onTrainBatchEnd(step, logs: logs)
                    }
                }
            }
        }
        progress?.onEpochEnd(0, logs: logs)
        for c in callbacks { c.onTestEnd(logs: logs) }
        return logs
    }

    /// Loss and metrics on a dataset, by name (Keras `evaluate(..., return_dict=True)`).
    @discardableResult
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, verbose: Int = 1,
                         callbacks: [Callback] = []) throws -> [String: Float] {
        guard batchSize > 0 else { throw KestrelError.invalidArgument("\(name).evaluate: batchSize must be positive, found \(batchSize)") }
        try prepareInput(x, "evaluate")
        try prepareLabels(y, samples: x.shape[0], "evaluate")
        for c in callbacks { c.setModel(self) }
        let steps = (x.shape[0] + batchSize - 1) / batchSize
        let progress = verbose > 0 ? ProgbarLogger(verbose: verbose, epochs: 1, steps: steps) : nil
        return try evaluateLoop(x, y, batchSize: batchSize, callbacks: callbacks, progress: progress)
    }

    /// The model's outputs for `x`, computed in batches in inference mode (Keras `predict`).
    public func predict(_ x: Tensor, batchSize: Int = 32, verbose: Int = 0,
                        callbacks: [Callback] = []) throws -> Tensor {
        guard batchSize > 0 else { throw KestrelError.invalidArgument("\(name).predict: batchSize must be positive, found \(batchSize)") }
        try prepareInput(x, "predict")
        let samples = x.shape[0]
        let out = outputShape!
        let outSize = out.reduce(1, *)
        var result = Tensor.zeros([samples] + out)
        guard samples > 0 else { return result }
        for c in callbacks { c.setModel(self) }
        let capacity = min(batchSize, samples)
        let plan = plan(capacity: capacity, training: false)
        let steps = (samples + batchSize - 1) / batchSize
        let progress = verbose > 0 ? ProgbarLogger(verbose: verbose, epochs: 1, steps: steps) : nil
        var indices = Array(0..<capacity)
        for c in callbacks { c.onPredictBegin(logs: [:]) }
        progress?.onEpochBegin(0, logs: [:])
        x.scalars.withUnsafeBufferPointer { xs in
            result.scalars.withUnsafeMutableBufferPointer { rs in
                indices.withUnsafeMutableBufferPointer { idx in
                    for step in 0..<steps {
                        for c in callbacks { c.onPredictBatchBegin(step, logs: [:]) }
                        let start = step * batchSize, n = min(batchSize, samples - start)
                        for i in 0..<n { idx[i] = start + i }
                        gather(xs, nil, indices: UnsafeBufferPointer(rebasing: idx[0..<n]), plan: plan, labels: nil)
                        plan.forward(batch: n)
                        (rs.baseAddress! + start * outSize).update(from: plan.outputBuffer(), count: n * outSize)
                        for c in callbacks { c.onPredictBatchEnd(step, logs: [:]) }
                        progress?.onTrainBatchEnd(step, logs: [:])
                    }
                }
            }
        }
        progress?.onEpochEnd(0, logs: [:])
        for c in callbacks { c.onPredictEnd(logs: [:]) }
        return result
    }

    /// One optimizer step on one batch; returns that batch's loss and metrics (Keras `train_on_batch`).
    @discardableResult
    public func trainOnBatch(_ x: Tensor, _ y: Tensor) throws -> [String: Float] {
        try prepareInput(x, "trainOnBatch")
        guard optimizer != nil else { throw KestrelError.notReady("\(name).trainOnBatch: call compile(optimizer:loss:metrics:) first") }
        try prepareLabels(y, samples: x.shape[0], "trainOnBatch")
        let n = x.shape[0]
        guard n > 0 else { throw KestrelError.invalidArgument("\(name).trainOnBatch: empty batch") }
        let plan = plan(capacity: n, training: true)
        let labels = labelBuffer(capacity: n)
        resetMetrics()
        x.scalars.withUnsafeBufferPointer { plan.inputBuffer().update(from: $0.baseAddress!, count: $0.count) }
        y.scalars.withUnsafeBufferPointer { labels.update(from: $0.baseAddress!, count: $0.count) }
        _ = trainStep(plan, labels: labels, batch: n)
        var logs: [String: Float] = [:]
        writeResults(into: &logs)
        return logs
    }

    /// Loss and metrics of one batch in inference mode (Keras `test_on_batch`).
    public func testOnBatch(_ x: Tensor, _ y: Tensor) throws -> [String: Float] {
        try evaluate(x, y, batchSize: max(x.shape.first ?? 1, 1), verbose: 0)
    }

    /// The outputs for one batch in inference mode (Keras `predict_on_batch`).
    public func predictOnBatch(_ x: Tensor) throws -> Tensor {
        try predict(x, batchSize: max(x.shape.first ?? 1, 1))
    }

    // MARK: Measurement

    /// Runs `count` training steps on the first `batchSize` rows of `x`/`y`, without callbacks,
    /// metrics output or shuffling: what the benchmark and the allocation tests measure.
    public func runTrainingSteps(_ x: Tensor, _ y: Tensor, batchSize: Int, count: Int) throws {
        try prepareInput(x, "runTrainingSteps")
        try prepareLabels(y, samples: x.shape[0], "runTrainingSteps")
        let n = min(batchSize, x.shape[0])
        let plan = plan(capacity: n, training: true)
        let labels = labelBuffer(capacity: n)
        var indices = Array(0..<n)
        x.scalars.withUnsafeBufferPointer { xs in
            y.scalars.withUnsafeBufferPointer { ys in
                indices.withUnsafeMutableBufferPointer { idx in
                    for _ in 0..<count {
                        gather(xs, ys, indices: UnsafeBufferPointer(idx), plan: plan, labels: labels)
                        _ = trainStep(plan, labels: labels, batch: n)
                    }
                }
            }
        }
    }
}
