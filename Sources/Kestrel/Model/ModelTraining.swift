import Foundation

/// What `fit`/`evaluate` resolved from `compile` and the label shapes: losses, metrics, log
/// names and the label buffers of each batch capacity.
final class TargetState {
    let labelShapes: [[Int]]
    let labelSizes: [Int]
    let losses: [Loss]
    let weights: [Float]
    let metrics: [[Metric]]
    let lossTracker = Mean(name: "loss")
    /// Per-output loss trackers, logged as `<output>_loss` when there are several outputs.
    let outputLossTrackers: [Mean]
    private var labelBuffers: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var weightBuffers: [Int: UnsafeMutablePointer<Float>] = [:]

    /// For an output with a mask: its unmasked positions' predictions, labels and gradient,
    /// packed together, and the per-position shape the loss sees.
    struct PackedPositions {
        let predictions: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Float>
        let gradient: UnsafeMutablePointer<Float>
        /// Each kept position's sample weight, when the batch is weighted.
        let weights: UnsafeMutablePointer<Float>
        let positionShape: [Int]
    }
    private var packedBuffers: [Int: [Int: PackedPositions]] = [:]

    init(labelShapes: [[Int]], labelSizes: [Int], losses: [Loss], weights: [Float], metrics: [[Metric]],
         outputNames: [String]) {
        self.labelShapes = labelShapes
        self.labelSizes = labelSizes
        self.losses = losses
        self.weights = weights
        self.metrics = metrics
        outputLossTrackers = outputNames.count > 1 ? outputNames.map { Mean(name: "\($0)_loss") } : []
    }

    deinit {
        for (_, buffers) in labelBuffers { buffers.forEach { $0.deallocate() } }
        for (_, buffer) in weightBuffers { buffer.deallocate() }
        for (_, outputs) in packedBuffers {
            for (_, p) in outputs { [p.predictions, p.labels, p.gradient, p.weights].forEach { $0.deallocate() } }
        }
    }

    /// The packing buffers of output `k` (per-sample shape `outputShape`) for batches of up to
    /// `capacity` samples; made on the first masked step of each capacity.
    func packed(capacity: Int, output k: Int, outputShape: [Int]) -> PackedPositions {
        if let p = packedBuffers[capacity]?[k] { return p }
        func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            return p
        }
        let size = outputShape.reduce(1, *)
        let p = PackedPositions(predictions: buffer(capacity * size), labels: buffer(capacity * labelSizes[k]),
                                gradient: buffer(capacity * size), weights: buffer(capacity * size / max(outputShape.last ?? 1, 1)),
                                positionShape: [outputShape.last ?? 1])
        packedBuffers[capacity, default: [:]][k] = p
        return p
    }

    /// One label buffer per output for batches of up to `capacity` samples.
    func labels(capacity: Int) -> [UnsafeMutablePointer<Float>] {
        if let b = labelBuffers[capacity] { return b }
        let b = labelSizes.map { size -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(capacity * size, 1))
            p.initialize(repeating: 0, count: max(capacity * size, 1))
            return p
        }
        labelBuffers[capacity] = b
        return b
    }

    /// The sample-weight buffer for batches of up to `capacity` samples.
    func sampleWeights(capacity: Int) -> UnsafeMutablePointer<Float> {
        if let b = weightBuffers[capacity] { return b }
        let b = UnsafeMutablePointer<Float>.allocate(capacity: max(capacity, 1))
        b.initialize(repeating: 1, count: max(capacity, 1))
        weightBuffers[capacity] = b
        return b
    }

    /// Checks that class weights can be read from the single output's labels (class indices,
    /// one unit, or one-hot rows), as Keras's `class_weight` requires.
    func checkClassWeights(_ model: Model, _ what: String) throws {
        guard labelShapes.count == 1 else {
            throw KestrelError.invalidArgument("\(model.name).\(what): classWeight is only supported for models with a single output, found \(labelShapes.count)")
        }
        // One class per sample: an output of per-sample shape [classes] (or [1]), labelled by
        // index, by a [1] column or by one-hot rows (a sequence output has no single class).
        guard model.outputShapes.first?.count == 1, labelShapes[0].count <= 1 else {
            throw KestrelError.invalidArgument(
                "\(model.name).\(what): classWeight needs labels of class indices [batch], [batch, 1] or one-hot rows [batch, classes] for an output of shape [batch, classes]; found labels [batch] + \(labelShapes[0]) for an output [batch] + \(model.outputShapes.first ?? [])")
        }
    }

    /// Writes each sample's class weight (Keras `class_weight_to_sample_weights`: the label
    /// rounded, or the one-hot row's largest entry; 1 for classes not listed) into `weights`.
    func fillClassWeights(_ classWeight: [Int: Float], labels: UnsafePointer<Float>, batch: Int,
                          into weights: UnsafeMutablePointer<Float>) {
        let width = labelSizes[0]
        for i in 0..<batch {
            var label = 0
            if width == 1 {
                label = Int(labels[i].rounded(.toNearestOrEven))
            } else {
                for j in 1..<width where labels[i * width + j] > labels[i * width + label] { label = j }
            }
            weights[i] = classWeight[label] ?? 1
        }
    }

    func reset() {
        lossTracker.reset()
        outputLossTrackers.forEach { $0.reset() }
        metrics.forEach { $0.forEach { $0.reset() } }
    }

    /// Writes the running results into `logs` (allocation-free once the keys exist).
    func write(into logs: inout [String: Float], prefix: String = "") {
        logs[prefix + "loss"] = lossTracker.result()
        for t in outputLossTrackers { logs[prefix + t.name] = t.result() }
        for list in metrics { for m in list { logs[prefix + m.name] = m.result() } }
    }
}

/// Calls `body` with stable pointers to the scalars of every tensor.
func withScalarBuffers<R>(_ tensors: [Tensor], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) throws -> R {
    var pointers: [UnsafeBufferPointer<Float>] = []
    pointers.reserveCapacity(tensors.count)
    func next(_ i: Int) throws -> R {
        if i == tensors.count { return try body(pointers) }
        return try tensors[i].scalars.withUnsafeBufferPointer { p in
            pointers.append(p)
            return try next(i + 1)
        }
    }
    return try next(0)
}

extension Model {
    // MARK: Checking data

    /// Checks inputs against the model (building it, and for a Sequential without a declared
    /// input, taking the shape from the data); returns the number of samples.
    func prepareInputs(_ xs: [Tensor], _ what: String) throws -> Int {
        if let sequential = self as? Sequential, sequential.inputShape == nil, xs.count == 1, xs[0].rank >= 1 {
            try sequential.build(inputShape: Array(xs[0].shape.dropFirst()))
        }
        try build()
        let expected = inputShapes
        guard xs.count == expected.count else {
            throw KestrelError.shapeMismatch(
                "\(name).\(what): the model has \(expected.count) inputs (\(inputNames.joined(separator: ", "))), found \(xs.count) arrays")
        }
        guard xs.allSatisfy({ $0.rank >= 1 }) else {
            throw KestrelError.shapeMismatch("\(name).\(what): expected batches of samples, found a scalar tensor")
        }
        let samples = xs[0].shape[0]
        for (k, (x, shape)) in zip(xs, expected).enumerated() {
            let sample = Array(x.shape.dropFirst())
            guard sample == shape else {
                let which = expected.count > 1 ? " input '\(inputNames[k])'" : ""
                throw KestrelError.shapeMismatch(
                    "\(name).\(what):\(which) the model expects samples of shape \(shape) (input \(x.shape) should be [batch] + \(shape)), found samples of shape \(sample)")
            }
            guard x.shape[0] == samples else {
                throw KestrelError.shapeMismatch(
                    "\(name).\(what): inputs have different numbers of samples (\(samples) and \(x.shape[0]))")
            }
        }
        return samples
    }

    /// Checks targets against the losses and output shapes, resolving what `compile` asked for.
    func prepareTargets(_ ys: [Tensor], samples: Int, _ what: String) throws -> TargetState {
        guard optimizer != nil, let pendingLosses, let pendingMetrics else {
            throw KestrelError.notReady("\(name).\(what): call compile(optimizer:loss:metrics:) first")
        }
        let outputs = outputNames
        guard ys.count == outputs.count else {
            throw KestrelError.shapeMismatch(
                "\(name).\(what): the model has \(outputs.count) outputs (\(outputs.joined(separator: ", "))), found \(ys.count) target arrays")
        }
        let outShapes = outputShapes
        let labelShapes = ys.map { Array($0.shape.dropFirst()) }
        for (k, y) in ys.enumerated() {
            guard y.rank >= 1, y.shape[0] == samples else {
                throw KestrelError.shapeMismatch(
                    "\(name).\(what): x has \(samples) samples but y\(outputs.count > 1 ? " for '\(outputs[k])'" : "") has \(y.rank >= 1 ? y.shape[0] : 0) (shape \(y.shape))")
            }
        }
        let current: TargetState
        if let targets, targets.labelShapes == labelShapes {
            current = targets
        } else {
            let losses = try pendingLosses.resolve(outputs: outputs, default: nil, what: "losses", model: name)
            let weights = try pendingLossWeights?.resolve(outputs: outputs, default: 1, what: "lossWeights", model: name)
                ?? outputs.map { _ in 1 }
            let specs = try pendingMetrics.resolve(outputs: outputs, default: [], what: "metrics", model: name)
            var sizes: [Int] = []
            for k in outputs.indices {
                sizes.append(try losses[k].labelSize(outputShape: outShapes[k], labelShape: labelShapes[k]))
            }
            let metrics = try specs.enumerated().map { k, list in
                try list.map { spec -> Metric in
                    let m = spec.make(outShapes[k], labelShapes[k])
                    if let unknown = m as? UnknownMetric {
                        throw KestrelError.invalidArgument("\(name).compile: \(unknown.message)")
                    }
                    if outputs.count > 1 { m.name = "\(outputs[k])_\(m.name)" }
                    return m
                }
            }
            current = TargetState(labelShapes: labelShapes, labelSizes: sizes, losses: losses, weights: weights,
                                  metrics: metrics, outputNames: outputs)
            targets = current
            let fused = logitsLossesFor(losses)
            if Set(fused.keys) != Set(logitsLosses.keys) {
                // Plans hold logits buffers for exactly these outputs.
                trainingPlans = [:]
                inferencePlans = [:]
            }
            logitsLosses = fused
        }
        for (k, y) in ys.enumerated() {
            try y.scalars.withUnsafeBufferPointer { try current.losses[k].validate(labels: $0, outputShape: outShapes[k]) }
        }
        return current
    }

    /// The outputs whose cross-entropy can be computed from the output layer's logits: the
    /// layer ends in the activation the loss undoes, and nothing else reads its output.
    func logitsLossesFor(_ losses: [Loss]) -> [Int: Loss] {
        guard let g = graph else { return [:] }
        var result: [Int: Loss] = [:]
        for (k, node) in g.outputNodes.enumerated() {
            let layer = g.nodes[node].layer
            guard let (activation, logitsLoss) = losses[k].logitsCounterpart, layer.logitsActivation == activation,
                  !(layer.isIdentity(training: true)),
                  layer.activityRegularizer == nil,   // its penalty's gradient is the output's, not the logits'
                  !g.nodes.contains(where: { $0.inputs.contains(node) }),
                  g.outputNodes.filter({ $0 == node }).count == 1 else { continue }
            result[k] = logitsLoss
        }
        return result
    }

    // MARK: Steps

    /// Copies rows `indices` of every input and target into the plan's and label buffers.
    func gather(_ xs: [UnsafeBufferPointer<Float>], _ ys: [UnsafeBufferPointer<Float>],
                indices: UnsafeBufferPointer<Int>, plan: ExecutionPlan, labels: [UnsafeMutablePointer<Float>],
                targets: TargetState?) {
        for k in 0..<xs.count {
            Kernels.gatherRows(xs[k].baseAddress!, rowLength: plan.shapes[plan.graph.inputNodes[k]].reduce(1, *),
                               indices: indices, into: plan.inputBuffer(k))
        }
        if let targets {
            for k in 0..<ys.count {
                Kernels.gatherRows(ys[k].baseAddress!, rowLength: targets.labelSizes[k], indices: indices, into: labels[k])
            }
        }
    }

    /// Losses (and, when training, their gradients) of every output; returns the weighted total.
    private func computeLosses(_ plan: ExecutionPlan, _ t: TargetState, labels: [UnsafeMutablePointer<Float>],
                               weights: UnsafePointer<Float>?, batch: Int, training: Bool) -> Float {
        var total: Float = 0
        for k in 0..<t.losses.count {
            let shape = plan.shapes[plan.graph.outputNodes[k]]
            let gradient = training ? plan.outputGradientBuffer(k) : nil
            func reduce(_ loss: Loss, _ predictions: UnsafePointer<Float>) -> Float {
                guard let weights else {
                    return loss.compute(predictions: predictions, labels: labels[k], batch: batch, outputShape: shape,
                                        gradient: gradient)
                }
                return loss.computeWeighted(predictions: predictions, labels: labels[k], weights: weights, batch: batch,
                                            outputShape: shape, labelSize: t.labelSizes[k], gradient: gradient)
            }
            let value: Float
            if let mask = plan.outputMask(k) {
                value = maskedLoss(plan, t, output: k, mask: mask, labels: labels[k], weights: weights, batch: batch,
                                   gradient: gradient)
            } else if let logitsLoss = logitsLosses[k], let logits = plan.logitsBuffer(k) {
                value = reduce(logitsLoss, logits)
            } else {
                value = reduce(t.losses[k], plan.outputBuffer(k))
            }
            let w = t.weights[k]
            if let gradient, w != 1 {
                for i in 0..<(batch * shape.reduce(1, *)) { gradient[i] *= w }
            }
            total += w * value
            if !t.outputLossTrackers.isEmpty { t.outputLossTrackers[k].update(value: value, weight: Float(batch)) }
            guard plan.outputMask(k) == nil else { continue }   // maskedLoss updated them
            for m in t.metrics[k] {
                m.update(predictions: plan.outputBuffer(k), labels: labels[k], batch: batch, outputShape: shape)
            }
        }
        // Weight and activity regularizers' penalties join the loss and its reported value, as in Keras.
        for layer in penaltyLayers { total += layer.regularizationPenalty(addGradients: false) }
        total += plan.activityPenalty(batch: batch)
        t.lossTracker.update(value: total, weight: Float(batch))
        return total
    }

    /// The loss of output `k`, whose positions carry `mask`, as Keras weights it: the mean over
    /// unmasked positions only (0 when none is), its gradient zero at masked positions, and the
    /// metrics over unmasked positions. The kept positions are packed and the loss and metrics
    /// see them as samples of the per-position shape, so every loss and metric works unchanged.
    private func maskedLoss(_ plan: ExecutionPlan, _ t: TargetState, output k: Int, mask: UnsafePointer<Float>,
                            labels: UnsafeMutablePointer<Float>, weights: UnsafePointer<Float>?, batch: Int,
                            gradient: UnsafeMutablePointer<Float>?) -> Float {
        let shape = plan.shapes[plan.graph.outputNodes[k]], width = shape.last ?? 1
        let perSample = shape.reduce(1, *) / width, positions = batch * perSample
        let labelWidth = t.labelSizes[k] / perSample
        let p = t.packed(capacity: plan.capacity, output: k, outputShape: shape)
        let logitsLoss = logitsLosses[k], logits = plan.logitsBuffer(k)
        let useLogits = logitsLoss != nil && logits != nil
        // Copies the unmasked positions' rows of `width` values from `source` to the front of `target`.
        func pack(_ source: UnsafePointer<Float>, width: Int, into target: UnsafeMutablePointer<Float>) -> Int {
            var kept = 0
            for i in 0..<positions where mask[i] != 0 {
                (target + kept * width).update(from: source + i * width, count: width)
                kept += 1
            }
            return kept
        }
        let kept = pack(useLogits ? logits! : plan.outputBuffer(k), width: width, into: p.predictions)
        _ = pack(labels, width: labelWidth, into: p.labels)
        var value: Float = 0
        if kept > 0 {
            let loss = useLogits ? logitsLoss! : t.losses[k]
            if let weights {
                // Keras weights a masked loss by sample weight × mask: Σ w·loss over kept positions / kept.
                var row = 0
                for i in 0..<positions where mask[i] != 0 {
                    p.weights[row] = weights[i / perSample]
                    row += 1
                }
                value = loss.computeWeighted(predictions: p.predictions, labels: p.labels, weights: p.weights, batch: kept,
                                             outputShape: p.positionShape, labelSize: labelWidth,
                                             gradient: gradient == nil ? nil : p.gradient)
            } else {
                value = loss.compute(predictions: p.predictions, labels: p.labels, batch: kept, outputShape: p.positionShape,
                                     gradient: gradient == nil ? nil : p.gradient)
            }
        }
        if let gradient {
            gradient.update(repeating: 0, count: positions * width)
            var row = 0
            for i in 0..<positions where mask[i] != 0 {
                (gradient + i * width).update(from: p.gradient + row * width, count: width)
                row += 1
            }
        }
        if kept > 0 && !t.metrics[k].isEmpty {
            if useLogits { _ = pack(plan.outputBuffer(k), width: width, into: p.predictions) }
            for m in t.metrics[k] {
                m.update(predictions: p.predictions, labels: p.labels, batch: kept, outputShape: p.positionShape)
            }
        }
        return value
    }

    /// Forward, losses and backward on rows already in the plan's buffers: the model's
    /// gradients are then in its flat gradient buffer. Returns the loss.
    func forwardBackward(_ plan: ExecutionPlan, _ t: TargetState, labels: [UnsafeMutablePointer<Float>],
                         weights: UnsafePointer<Float>? = nil, batch: Int) -> Float {
        plan.forward(batch: batch)
        let value = computeLosses(plan, t, labels: labels, weights: weights, batch: batch, training: true)
        plan.backward(batch: batch)
        for layer in penaltyLayers { _ = layer.regularizationPenalty(addGradients: true) }
        return value
    }

    /// One training step on rows already gathered into the plan's buffers; returns the loss.
    @discardableResult
    func trainStep(_ plan: ExecutionPlan, _ t: TargetState, labels: [UnsafeMutablePointer<Float>],
                   weights: UnsafePointer<Float>? = nil, batch: Int) -> Float {
        let value = forwardBackward(plan, t, labels: labels, weights: weights, batch: batch)
        optimizer!.apply(parameters: store!.values, gradients: store!.gradients, variables: trainableVariables,
                         names: trainableWeightNames)
        for layer in penaltyLayers { layer.applyConstraints() }
        return value
    }

    /// One evaluation step: forward in inference mode, then losses and metrics.
    func testStep(_ plan: ExecutionPlan, _ t: TargetState, labels: [UnsafeMutablePointer<Float>],
                  weights: UnsafePointer<Float>? = nil, batch: Int) {
        plan.forward(batch: batch)
        _ = computeLosses(plan, t, labels: labels, weights: weights, batch: batch, training: false)
    }

    // MARK: fit

    /// Trains the model (Keras `fit`). `validationSplit` holds out the last fraction of the
    /// samples before shuffling; `validationData` overrides it. `classWeight` (class index →
    /// weight, 1 for classes not listed) or `sampleWeight` (`[samples]`) weights each sample's
    /// loss, as Keras does (metrics stay unweighted, as Keras's `metrics` are). `seed` (not in
    /// Keras) fixes this call's shuffles and dropout masks without touching the global
    /// generator; nil draws it from the global generator (`Kestrel.setRandomSeed`), as Keras
    /// does. `validationFreq` validates every that many epochs (Keras `validation_freq`).
    /// Returns the History.
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, epochs: Int = 1, verbose: Int = 1,
                    callbacks: [Callback] = [], validationSplit: Float = 0,
                    validationData: (Tensor, Tensor)? = nil, shuffle: Bool = true, classWeight: [Int: Float]? = nil,
                    sampleWeight: Tensor? = nil, initialEpoch: Int = 0, validationFreq: Int = 1,
                    seed: UInt64? = nil) throws -> History {
        try fit([x], [y], batchSize: batchSize, epochs: epochs, verbose: verbose, callbacks: callbacks,
                validationSplit: validationSplit, validationData: validationData.map { ([$0.0], [$0.1]) },
                shuffle: shuffle, classWeight: classWeight, sampleWeight: sampleWeight, initialEpoch: initialEpoch,
                validationFreq: validationFreq, seed: seed)
    }

    /// Trains a model with inputs and targets given by input and output names.
    @discardableResult
    public func fit(_ x: [String: Tensor], _ y: [String: Tensor], batchSize: Int = 32, epochs: Int = 1,
                    verbose: Int = 1, callbacks: [Callback] = [], validationSplit: Float = 0,
                    validationData: ([String: Tensor], [String: Tensor])? = nil, shuffle: Bool = true,
                    classWeight: [Int: Float]? = nil, sampleWeight: Tensor? = nil,
                    initialEpoch: Int = 0, validationFreq: Int = 1, seed: UInt64? = nil) throws -> History {
        try fit(try ordered(x, inputNames, "inputs"), try ordered(y, outputNames, "targets"), batchSize: batchSize,
                epochs: epochs, verbose: verbose, callbacks: callbacks, validationSplit: validationSplit,
                validationData: try validationData.map {
                    (try ordered($0.0, inputNames, "inputs"), try ordered($0.1, outputNames, "targets"))
                },
                shuffle: shuffle, classWeight: classWeight, sampleWeight: sampleWeight, initialEpoch: initialEpoch,
                validationFreq: validationFreq, seed: seed)
    }

    /// Arranges name-keyed arrays in the model's order; throws for missing or unknown names.
    func ordered(_ dict: [String: Tensor], _ names: [String], _ what: String) throws -> [Tensor] {
        if let extra = dict.keys.first(where: { !names.contains($0) }) {
            throw KestrelError.invalidArgument("\(name): no \(what.dropLast()) named '\(extra)'; expected \(names.joined(separator: ", "))")
        }
        return try names.map { n in
            guard let t = dict[n] else {
                throw KestrelError.invalidArgument("\(name): missing \(what.dropLast()) '\(n)'; expected \(names.joined(separator: ", "))")
            }
            return t
        }
    }

    /// Trains a model with several inputs and/or outputs (arrays in `inputNames` and
    /// `outputNames` order).
    @discardableResult
    public func fit(_ x: [Tensor], _ y: [Tensor], batchSize: Int = 32, epochs: Int = 1, verbose: Int = 1,
                    callbacks: [Callback] = [], validationSplit: Float = 0,
                    validationData: ([Tensor], [Tensor])? = nil, shuffle: Bool = true,
                    classWeight: [Int: Float]? = nil, sampleWeight: Tensor? = nil,
                    initialEpoch: Int = 0, validationFreq: Int = 1, seed: UInt64? = nil) throws -> History {
        guard batchSize > 0 else { throw KestrelError.invalidArgument("\(name).fit: batchSize must be positive, found \(batchSize)") }
        guard epochs >= 0, initialEpoch >= 0 else {
            throw KestrelError.invalidArgument("\(name).fit: epochs (\(epochs)) and initialEpoch (\(initialEpoch)) must not be negative")
        }
        try checkValidationFreq(validationFreq)
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw KestrelError.invalidArgument("\(name).fit: validationSplit must be in [0, 1), found \(validationSplit)")
        }
        let total = try prepareInputs(x, "fit")
        let whole = try prepareTargets(y, samples: total, "fit")
        try checkSampleWeight(sampleWeight, samples: total, "fit")
        if classWeight != nil {
            guard sampleWeight == nil else {
                throw KestrelError.invalidArgument("\(name).fit: give classWeight or sampleWeight, not both (as in Keras)")
            }
            try whole.checkClassWeights(self, "fit")
        }

        var trainX = x, trainY = y, trainWeight = sampleWeight, validationWeight: Tensor?
        var validation = validationData
        if validation == nil && validationSplit > 0 {
            let splitAt = Int(Float(total) * (1 - validationSplit))
            guard splitAt > 0 && splitAt < total else {
                throw KestrelError.invalidArgument(
                    "\(name).fit: validationSplit \(validationSplit) of \(total) samples leaves no training or no validation samples")
            }
            validation = (x.map { $0[batch: splitAt..<total] }, y.map { $0[batch: splitAt..<total] })
            trainX = x.map { $0[batch: 0..<splitAt] }
            trainY = y.map { $0[batch: 0..<splitAt] }
            // Keras splits sample weights with the data, so validation losses are weighted too.
            validationWeight = sampleWeight?[batch: splitAt..<total]
            trainWeight = sampleWeight?[batch: 0..<splitAt]
        }
        if let (vx, vy) = validation {
            let n = try prepareInputs(vx, "fit(validationData:)")
            _ = try prepareTargets(vy, samples: n, "fit(validationData:)")
        }
        let samples = trainX[0].shape[0]
        guard samples > 0 else { throw KestrelError.invalidArgument("\(name).fit: no training samples") }
        let t = try prepareTargets(trainY, samples: samples, "fit")
        updateTrainableVariables()

        let capacity = min(batchSize, samples)
        let steps = (samples + batchSize - 1) / batchSize
        let plan = try plan(capacity: capacity, training: true)
        let labels = t.labels(capacity: capacity)
        let weighted = trainWeight != nil || classWeight != nil
        let weights = t.sampleWeights(capacity: capacity)
        var order = Array(0..<samples)
        return try withScalarBuffers(trainX) { xs in
            try withScalarBuffers(trainY) { ys in
                try withScalarBuffers(trainWeight.map { [$0] } ?? []) { ws in
                    try order.withUnsafeMutableBufferPointer { order in
                        try trainEpochs(t, epochs: epochs, initialEpoch: initialEpoch, steps: steps, verbose: verbose,
                                        callbacks: callbacks, seed: seed, validationFreq: validationFreq,
                                        beginEpoch: { random in
                                            plan.reseed(random.next())
                                            if shuffle {
                                                for i in 0..<samples { order[i] = i }
                                                random.shuffle(order)
                                            }
                                        },
                                        step: { step, _ in
                                            let start = step * batchSize, n = min(batchSize, samples - start)
                                            let rows = UnsafeBufferPointer(rebasing: order[start..<(start + n)])
                                            gather(xs, ys, indices: rows, plan: plan, labels: labels, targets: t)
                                            if let w = ws.first {
                                                Kernels.gatherRows(w.baseAddress!, rowLength: 1, indices: rows, into: weights)
                                            } else if let classWeight {
                                                t.fillClassWeights(classWeight, labels: labels[0], batch: n, into: weights)
                                            }
                                            trainStep(plan, t, labels: labels, weights: weighted ? weights : nil, batch: n)
                                            return true
                                        },
                                        endEpoch: {},
                                        validate: validation.map { (vx, vy) in
                                            { try self.evaluateLoop(vx, vy, batchSize: batchSize, callbacks: callbacks,
                                                                    sampleWeight: validationWeight) }
                                        })
                    }
                }
            }
        }
    }

    /// Checks Keras's `validation_freq`: a positive number of epochs.
    func checkValidationFreq(_ validationFreq: Int) throws {
        guard validationFreq > 0 else {
            throw KestrelError.invalidArgument("\(name).fit: validationFreq must be a positive number of epochs, found \(validationFreq)")
        }
    }

    /// Checks that `sampleWeight` holds one weight per sample (`[samples]` or `[samples, 1]`).
    func checkSampleWeight(_ sampleWeight: Tensor?, samples: Int, _ what: String) throws {
        guard let sampleWeight else { return }
        guard sampleWeight.shape == [samples] || sampleWeight.shape == [samples, 1] else {
            throw KestrelError.shapeMismatch(
                "\(name).\(what): sampleWeight needs one weight per sample, shape [\(samples)], found \(sampleWeight.shape)")
        }
    }

    /// The epochs of `fit`, whatever the data: callbacks, progress, seeding, validation and
    /// early stopping. `beginEpoch` prepares an epoch (dropout seeds, order); `step` trains
    /// one batch and returns false when the data ran out first, which ends the epoch as in
    /// Keras; `validate` gives the validation results, logged with a `val_` prefix.
    func trainEpochs(_ t: TargetState, epochs: Int, initialEpoch: Int, steps: Int, verbose: Int,
                     callbacks: [Callback], seed: UInt64?, validationFreq: Int,
                     beginEpoch: (inout RandomGenerator) throws -> Void,
                     step: (Int, inout RandomGenerator) throws -> Bool,
                     endEpoch: () throws -> Void,
                     validate: (() throws -> [String: Float])?) throws -> History {
        try optimizer?.validateArguments()
        let history = History()
        var all: [Callback] = [history]
        if verbose > 0 { all.append(ProgbarLogger(verbose: verbose, epochs: epochs, steps: steps)) }
        all += callbacks
        for c in all { c.setModel(self) }
        stopTraining = false
        // As Keras's `fit` does when it ends, even by an error: an optimizer with `useEMA` puts
        // the moving average into the weights.
        var finalized = false
        func finalizeWeights() {
            guard !finalized, epochs > 0, let optimizer, let store else { return }
            finalized = true
            optimizer.finalizeVariableValues(parameters: store.values, variables: trainableVariables)
        }
        defer { finalizeWeights() }

        // Each epoch's shuffle and dropout masks come from (fit seed, epoch), so a fit resumed
        // at `initialEpoch` (BackupAndRestore) repeats what an uninterrupted one would do.
        let fitSeed = seed ?? GlobalRandom.with { $0.next() }
        var logs: [String: Float] = [:]
        t.write(into: &logs)
        for c in all { try c.onTrainBegin(logs: [:]) }
        var firstEpoch = initialEpoch
        for c in all { firstEpoch = try c.initialEpoch(resuming: firstEpoch) }
        var epochLogs: [String: Float] = [:]
        for epoch in firstEpoch..<max(epochs, firstEpoch) {
            for c in all { try c.onEpochBegin(epoch, logs: [:]) }
            var epochRandom = RandomGenerator(seed: fitSeed ^ UInt64(epoch) &* 0xD1B5_4A32_D192_ED03)
            try beginEpoch(&epochRandom)
            t.reset()
            for s in 0..<steps {
                for c in callbacks { try c.onTrainBatchBegin(s, logs: [:]) }
                guard try step(s, &epochRandom) else { break }
                t.write(into: &logs)
                for c in all { try c.onTrainBatchEnd(s, logs: logs) }
                // Keras ends the epoch's batches as soon as a callback asks to stop.
                if stopTraining { break }
            }
            try endEpoch()
            epochLogs = logs
            // Keras counts the epochs from 1 here: with validationFreq 2, after the 2nd, 4th, …
            if let validate, (epoch + 1) % validationFreq == 0 {
                for (k, v) in try validate() { epochLogs["val_" + k] = v }
            }
            for c in all { try c.onEpochEnd(epoch, logs: epochLogs) }
            if stopTraining { break }
        }
        finalizeWeights()
        for c in all { try c.onTrainEnd(logs: epochLogs) }
        return history
    }

    // MARK: evaluate

    func evaluateLoop(_ x: [Tensor], _ y: [Tensor], batchSize: Int, callbacks: [Callback],
                      progress: ProgbarLogger? = nil, sampleWeight: Tensor? = nil) throws -> [String: Float] {
        let samples = try prepareInputs(x, "evaluate")
        guard samples > 0 else { throw KestrelError.invalidArgument("\(name).evaluate: no samples") }
        let t = try prepareTargets(y, samples: samples, "evaluate")
        try checkSampleWeight(sampleWeight, samples: samples, "evaluate")
        let capacity = min(batchSize, samples)
        let plan = try plan(capacity: capacity, training: false)
        let labels = t.labels(capacity: capacity)
        let weights = t.sampleWeights(capacity: capacity)
        let steps = (samples + batchSize - 1) / batchSize
        var indices = Array(0..<capacity)
        t.reset()
        var logs: [String: Float] = [:]
        for c in callbacks { try c.onTestBegin(logs: [:]) }
        progress?.onEpochBegin(0, logs: [:])
        try withScalarBuffers(x) { xs in
            try withScalarBuffers(y) { ys in
                try indices.withUnsafeMutableBufferPointer { idx in
                    for step in 0..<steps {
                        for c in callbacks { try c.onTestBatchBegin(step, logs: [:]) }
                        let start = step * batchSize, n = min(batchSize, samples - start)
                        for i in 0..<n { idx[i] = start + i }
                        gather(xs, ys, indices: UnsafeBufferPointer(rebasing: idx[0..<n]), plan: plan, labels: labels,
                               targets: t)
                        if let sampleWeight {
                            sampleWeight.scalars.withUnsafeBufferPointer { weights.update(from: $0.baseAddress! + start, count: n) }
                        }
                        testStep(plan, t, labels: labels, weights: sampleWeight == nil ? nil : weights, batch: n)
                        t.write(into: &logs)
                        for c in callbacks { try c.onTestBatchEnd(step, logs: logs) }
                        progress?.onTrainBatchEnd(step, logs: logs)
                    }
                }
            }
        }
        progress?.onEpochEnd(0, logs: logs)
        for c in callbacks { try c.onTestEnd(logs: logs) }
        return logs
    }

    /// Loss and metrics on a dataset, by name (Keras `evaluate(..., return_dict=True)`).
    @discardableResult
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32, verbose: Int = 1, sampleWeight: Tensor? = nil,
                         callbacks: [Callback] = []) throws -> [String: Float] {
        try evaluate([x], [y], batchSize: batchSize, verbose: verbose, sampleWeight: sampleWeight, callbacks: callbacks)
    }

    /// Loss and metrics of a model with several inputs and/or outputs.
    @discardableResult
    public func evaluate(_ x: [Tensor], _ y: [Tensor], batchSize: Int = 32, verbose: Int = 1,
                         sampleWeight: Tensor? = nil, callbacks: [Callback] = []) throws -> [String: Float] {
        guard batchSize > 0 else { throw KestrelError.invalidArgument("\(name).evaluate: batchSize must be positive, found \(batchSize)") }
        let samples = try prepareInputs(x, "evaluate")
        for c in callbacks { c.setModel(self) }
        let steps = (samples + batchSize - 1) / batchSize
        let progress = verbose > 0 ? ProgbarLogger(verbose: verbose, epochs: 1, steps: steps) : nil
        return try evaluateLoop(x, y, batchSize: batchSize, callbacks: callbacks, progress: progress,
                                sampleWeight: sampleWeight)
    }

    /// Loss and metrics with inputs and targets given by name.
    @discardableResult
    public func evaluate(_ x: [String: Tensor], _ y: [String: Tensor], batchSize: Int = 32, verbose: Int = 1,
                         sampleWeight: Tensor? = nil, callbacks: [Callback] = []) throws -> [String: Float] {
        try evaluate(try ordered(x, inputNames, "inputs"), try ordered(y, outputNames, "targets"),
                     batchSize: batchSize, verbose: verbose, sampleWeight: sampleWeight, callbacks: callbacks)
    }

    // MARK: predict

    /// The model's outputs for `x`, computed in batches in inference mode (Keras `predict`).
    public func predict(_ x: Tensor, batchSize: Int = 32, verbose: Int = 0,
                        callbacks: [Callback] = []) throws -> Tensor {
        let outputs = try predict([x], batchSize: batchSize, verbose: verbose, callbacks: callbacks)
        guard outputs.count == 1 else {
            throw KestrelError.invalidArgument(
                "\(name).predict: the model has \(outputs.count) outputs (\(outputNames.joined(separator: ", "))); use predict([x]) to get them all")
        }
        return outputs[0]
    }

    /// Outputs for inputs given by name, keyed by output name.
    public func predict(_ x: [String: Tensor], batchSize: Int = 32, verbose: Int = 0,
                        callbacks: [Callback] = []) throws -> [String: Tensor] {
        let outputs = try predict(try ordered(x, inputNames, "inputs"), batchSize: batchSize, verbose: verbose,
                                  callbacks: callbacks)
        return Dictionary(uniqueKeysWithValues: zip(outputNames, outputs))
    }

    /// Every output of a model with several inputs and/or outputs.
    public func predict(_ x: [Tensor], batchSize: Int = 32, verbose: Int = 0,
                        callbacks: [Callback] = []) throws -> [Tensor] {
        guard batchSize > 0 else { throw KestrelError.invalidArgument("\(name).predict: batchSize must be positive, found \(batchSize)") }
        let samples = try prepareInputs(x, "predict")
        let outShapes = outputShapes
        var results = outShapes.map { Tensor.zeros([samples] + $0) }
        guard samples > 0 else { return results }
        for c in callbacks { c.setModel(self) }
        let capacity = min(batchSize, samples)
        let plan = try plan(capacity: capacity, training: false)
        let steps = (samples + batchSize - 1) / batchSize
        let progress = verbose > 0 ? ProgbarLogger(verbose: verbose, epochs: 1, steps: steps) : nil
        var indices = Array(0..<capacity)
        for c in callbacks { try c.onPredictBegin(logs: [:]) }
        progress?.onEpochBegin(0, logs: [:])
        try withScalarBuffers(x) { xs in
            try indices.withUnsafeMutableBufferPointer { idx in
                for step in 0..<steps {
                    for c in callbacks { try c.onPredictBatchBegin(step, logs: [:]) }
                    let start = step * batchSize, n = min(batchSize, samples - start)
                    for i in 0..<n { idx[i] = start + i }
                    gather(xs, [], indices: UnsafeBufferPointer(rebasing: idx[0..<n]), plan: plan, labels: [], targets: nil)
                    plan.forward(batch: n)
                    for k in results.indices {
                        let size = outShapes[k].reduce(1, *)
                        results[k].scalars.withUnsafeMutableBufferPointer { rs in
                            (rs.baseAddress! + start * size).update(from: plan.outputBuffer(k), count: n * size)
                        }
                    }
                    for c in callbacks { try c.onPredictBatchEnd(step, logs: [:]) }
                    progress?.onTrainBatchEnd(step, logs: [:])
                }
            }
        }
        progress?.onEpochEnd(0, logs: [:])
        for c in callbacks { try c.onPredictEnd(logs: [:]) }
        return results
    }

    // MARK: One batch

    /// Checks one whole batch and copies it into a training plan's input and label buffers.
    func loadTrainingBatch(_ x: [Tensor], _ y: [Tensor], _ what: String) throws
        -> (plan: ExecutionPlan, targets: TargetState, labels: [UnsafeMutablePointer<Float>], batch: Int) {
        let n = try prepareInputs(x, what)
        guard n > 0 else { throw KestrelError.invalidArgument("\(name).\(what): empty batch") }
        let t = try prepareTargets(y, samples: n, what)
        updateTrainableVariables()
        let plan = try plan(capacity: n, training: true)
        let labels = t.labels(capacity: n)
        t.reset()
        for (k, xk) in x.enumerated() {
            xk.scalars.withUnsafeBufferPointer { plan.inputBuffer(k).update(from: $0.baseAddress!, count: $0.count) }
        }
        for (k, yk) in y.enumerated() {
            yk.scalars.withUnsafeBufferPointer { labels[k].update(from: $0.baseAddress!, count: $0.count) }
        }
        return (plan, t, labels, n)
    }

    /// One optimizer step on one batch; returns that batch's loss and metrics (Keras `train_on_batch`).
    @discardableResult
    public func trainOnBatch(_ x: Tensor, _ y: Tensor, sampleWeight: Tensor? = nil,
                             classWeight: [Int: Float]? = nil) throws -> [String: Float] {
        try trainOnBatch([x], [y], sampleWeight: sampleWeight, classWeight: classWeight)
    }

    /// One optimizer step on one batch of a multi-input/output model.
    @discardableResult
    public func trainOnBatch(_ x: [Tensor], _ y: [Tensor], sampleWeight: Tensor? = nil,
                             classWeight: [Int: Float]? = nil) throws -> [String: Float] {
        let (plan, t, labels, n) = try loadTrainingBatch(x, y, "trainOnBatch")
        try checkSampleWeight(sampleWeight, samples: n, "trainOnBatch")
        let weights = t.sampleWeights(capacity: n)
        if let sampleWeight {
            guard classWeight == nil else {
                throw KestrelError.invalidArgument("\(name).trainOnBatch: give classWeight or sampleWeight, not both (as in Keras)")
            }
            sampleWeight.scalars.withUnsafeBufferPointer { weights.update(from: $0.baseAddress!, count: n) }
        } else if let classWeight {
            try t.checkClassWeights(self, "trainOnBatch")
            t.fillClassWeights(classWeight, labels: labels[0], batch: n, into: weights)
        }
        trainStep(plan, t, labels: labels, weights: sampleWeight == nil && classWeight == nil ? nil : weights, batch: n)
        var logs: [String: Float] = [:]
        t.write(into: &logs)
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
        let samples = try prepareInputs([x], "runTrainingSteps")
        let t = try prepareTargets([y], samples: samples, "runTrainingSteps")
        let n = min(batchSize, samples)
        let plan = try plan(capacity: n, training: true)
        let labels = t.labels(capacity: n)
        var indices = Array(0..<n)
        try withScalarBuffers([x]) { xs in
            try withScalarBuffers([y]) { ys in
                indices.withUnsafeMutableBufferPointer { idx in
                    for _ in 0..<count {
                        gather(xs, ys, indices: UnsafeBufferPointer(idx), plan: plan, labels: labels, targets: t)
                        trainStep(plan, t, labels: labels, batch: n)
                    }
                }
            }
        }
    }
}
