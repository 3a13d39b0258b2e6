import Foundation

/// The order in which `fit` asks a dataset for its batches. As Keras's epoch iterator does, a
/// pass over a finite dataset that `stepsPerEpoch` cuts short continues in the next epoch, and
/// an endless dataset's indices keep counting.
struct DatasetCursor {
    let count: Int?
    let continuesAcrossEpochs: Bool
    private var order: [Int]
    private var position: Int

    init(count: Int?, stepsPerEpoch: Int?) {
        self.count = count
        continuesAcrossEpochs = stepsPerEpoch != nil
        order = Array(0..<(count ?? 0))
        position = count ?? 0
    }

    /// Starts a pass unless one is under way and may continue; `shuffle` orders it at random.
    mutating func beginEpoch(shuffle: Bool, _ random: inout RandomGenerator) {
        guard let count, !continuesAcrossEpochs || position >= count else { return }
        for i in 0..<count { order[i] = i }
        if shuffle { order.withUnsafeMutableBufferPointer { random.shuffle($0) } }
        position = 0
    }

    /// The next batch index, or nil when the pass is over.
    mutating func next() -> Int? {
        if let count, position >= count { return nil }
        defer { position += 1 }
        return count == nil ? position : order[position]
    }
}

/// Copies a dataset's batches into an execution plan (one of enough capacity, made when a
/// larger batch arrives) and its label buffers, checking each against the model. Once the
/// plan exists a batch is checked and copied without touching the heap, so `fit` on a dataset
/// allocates only what the dataset itself does.
final class DatasetFeeder {
    let model: Model
    let training: Bool
    let what: String
    /// The losses and metrics resolved from the first batch; nil when targets are not read.
    let targets: TargetState?
    private(set) var plan: ExecutionPlan
    private(set) var labels: [UnsafeMutablePointer<Float>] = []
    /// The batch's sample weights, valid when `load` said the batch is weighted.
    private(set) var weights: UnsafeMutablePointer<Float>?
    /// Class weights turned into sample weights from each batch's labels.
    let classWeight: [Int: Float]?
    private let inputShapes: [[Int]], targetShapes: [[Int]], outputShapes: [[Int]]

    /// Prepares the model from `first`, a batch of the dataset (building it, resolving losses).
    init(model: Model, first: Batch, training: Bool, readsTargets: Bool, classWeight: [Int: Float]? = nil,
         what: String) throws {
        self.model = model
        self.training = training
        self.what = what
        self.classWeight = classWeight
        let n = try model.prepareInputs(first.inputs, what)
        guard n > 0 else { throw KestrelError.invalidArgument("\(model.name).\(what): batch 0 is empty") }
        targets = readsTargets ? try model.prepareTargets(first.targets, samples: n, what) : nil
        if classWeight != nil { try targets?.checkClassWeights(model, what) }
        inputShapes = model.inputShapes
        targetShapes = first.targets.map { Array($0.shape.dropFirst()) }
        outputShapes = model.outputShapes
        if training { model.updateTrainableVariables() }
        // The plan exists before the first epoch, so that every epoch reseeds it first, as
        // array training does: a fit resumed at a later epoch then repeats the same draws.
        plan = try model.plan(capacity: n, training: training)
        if let targets {
            labels = targets.labels(capacity: n)
            weights = targets.sampleWeights(capacity: n)
        }
    }

    /// Whether `t` is `[n] + shape`.
    private static func matches(_ t: Tensor, _ n: Int, _ shape: [Int]) -> Bool {
        guard t.rank == shape.count + 1, t.shape[0] == n else { return false }
        for i in shape.indices where t.shape[i + 1] != shape[i] { return false }
        return true
    }

    /// Loads batch `index`; returns its number of samples and whether its losses are weighted
    /// (by its sample weights or the class weights). A plan made now is seeded from `random`.
    func load(_ b: Batch, index: Int, random: inout RandomGenerator) throws -> (samples: Int, weighted: Bool) {
        guard let n = b.inputs.first?.shape.first, n > 0, b.inputs.count == inputShapes.count,
              zip(b.inputs, inputShapes).allSatisfy({ Self.matches($0, n, $1) }) else {
            throw KestrelError.shapeMismatch(
                "\(model.name).\(what): batch \(index) has inputs of shapes \(b.inputs.map(\.shape)); expected \(inputShapes.count) of [batch] + \(inputShapes) with at least one sample")
        }
        if let targets {
            // The losses were resolved for the first batch's label shapes; later batches must match.
            guard b.targets.count == targetShapes.count, zip(b.targets, targetShapes).allSatisfy({ Self.matches($0, n, $1) }) else {
                throw KestrelError.shapeMismatch(
                    "\(model.name).\(what): batch \(index) of \(n) samples has targets of shapes \(b.targets.map(\.shape)); the first batch's were [batch] + \(targetShapes)")
            }
            for (k, y) in b.targets.enumerated() {
                try y.scalars.withUnsafeBufferPointer { try targets.losses[k].validate(labels: $0, outputShape: outputShapes[k]) }
            }
            if let w = b.sampleWeights {
                guard classWeight == nil else {
                    throw KestrelError.invalidArgument(
                        "\(model.name).\(what): batch \(index) has sample weights and classWeight was given; Keras takes one or the other")
                }
                guard w.rank <= 2, w.scalars.count == n, w.shape.first == n else {
                    throw KestrelError.shapeMismatch(
                        "\(model.name).\(what): batch \(index) needs one sample weight per sample, shape [\(n)], found \(w.shape)")
                }
            }
        }
        if plan.capacity < n {
            let p = try model.plan(capacity: n, training: training)
            if training { p.reseed(random.next()) }
            plan = p
            if let targets {
                labels = targets.labels(capacity: n)
                weights = targets.sampleWeights(capacity: n)
            }
        }
        let plan = self.plan
        for (k, x) in b.inputs.enumerated() {
            x.scalars.withUnsafeBufferPointer { plan.inputBuffer(k).update(from: $0.baseAddress!, count: $0.count) }
        }
        guard let targets else { return (n, false) }
        for (k, y) in b.targets.enumerated() {
            y.scalars.withUnsafeBufferPointer { labels[k].update(from: $0.baseAddress!, count: $0.count) }
        }
        if let w = b.sampleWeights {
            w.scalars.withUnsafeBufferPointer { weights!.update(from: $0.baseAddress!, count: n) }
            return (n, true)
        }
        if let classWeight {
            targets.fillClassWeights(classWeight, labels: labels[0], batch: n, into: weights!)
            return (n, true)
        }
        return (n, false)
    }
}

extension Model {
    /// Steps in one epoch of a dataset: `steps` if given, else its batch count.
    private func datasetSteps(_ data: any BatchDataset, _ steps: Int?, argument: String, _ what: String) throws -> Int {
        if let steps {
            guard steps > 0 else { throw KestrelError.invalidArgument("\(name).\(what): \(argument) must be positive, found \(steps)") }
            return steps
        }
        guard let count = data.batchCount else {
            throw KestrelError.invalidArgument(
                "\(name).\(what): the dataset is endless (batchCount is nil); pass \(argument) to say how many batches to read")
        }
        guard count > 0 else { throw KestrelError.invalidArgument("\(name).\(what): the dataset has no batches") }
        return count
    }

    /// Keras's warning when a dataset runs out before the steps asked for.
    private func warnRanOut(_ what: String, after steps: Int) {
        FileHandle.standardError.write(Data("""
            \(name).\(what): the dataset ran out of batches after \(steps) steps; interrupting the epoch. \
            Make sure it can give at least the steps asked for.\n
            """.utf8))
    }

    // MARK: fit

    /// Trains the model on batches read from `data` (Keras `fit` with a `PyDataset`), so the
    /// data need not be in memory. Each epoch reads every batch once, in a new random order
    /// when `shuffle`; `stepsPerEpoch` reads that many instead, continuing the pass in the next
    /// epoch as Keras does (and is needed for an endless dataset). `validationData` is
    /// evaluated after each epoch, or every `validationFreq` epochs (`validationSteps`
    /// batches, or all). Batches weight their
    /// samples with `Batch.sampleWeights`, or `classWeight` weights them by label, as in
    /// array `fit`. Returns the History.
    @discardableResult
    public func fit(_ data: some BatchDataset, epochs: Int = 1, verbose: Int = 1, callbacks: [Callback] = [],
                    validationData: (any BatchDataset)? = nil, shuffle: Bool = true, classWeight: [Int: Float]? = nil,
                    initialEpoch: Int = 0, stepsPerEpoch: Int? = nil, validationSteps: Int? = nil,
                    validationFreq: Int = 1, seed: UInt64? = nil) throws -> History {
        guard epochs >= 0, initialEpoch >= 0 else {
            throw KestrelError.invalidArgument("\(name).fit: epochs (\(epochs)) and initialEpoch (\(initialEpoch)) must not be negative")
        }
        try checkValidationFreq(validationFreq)
        let steps = try datasetSteps(data, stepsPerEpoch, argument: "stepsPerEpoch", "fit")
        if let validationData { _ = try datasetSteps(validationData, validationSteps, argument: "validationSteps", "fit") }
        let feeder = try DatasetFeeder(model: self, first: try data.batch(0), training: true, readsTargets: true,
                                       classWeight: classWeight, what: "fit")
        let t = feeder.targets!
        var cursor = DatasetCursor(count: data.batchCount, stepsPerEpoch: stepsPerEpoch)
        // Each epoch's batch indices are drawn at its start, so that a prefetcher can read ahead.
        var epochIndices: [Int] = []
        epochIndices.reserveCapacity(steps)
        let prefetcher = data.prefetch > 0 ? Prefetcher(depth: data.prefetch) { try data.batch($0) } : nil
        defer { prefetcher?.close() }
        return try trainEpochs(
            t, epochs: epochs, initialEpoch: initialEpoch, steps: steps, verbose: verbose, callbacks: callbacks,
            seed: seed, validationFreq: validationFreq,
            beginEpoch: { random in
                data.onEpochBegin()
                feeder.plan.reseed(random.next())
                cursor.beginEpoch(shuffle: shuffle, &random)
                epochIndices.removeAll(keepingCapacity: true)
                while epochIndices.count < steps, let index = cursor.next() { epochIndices.append(index) }
                prefetcher?.start(epochIndices)
            },
            step: { step, random in
                guard step < epochIndices.count else {
                    warnRanOut("fit", after: step)
                    return false
                }
                let index = epochIndices[step]
                let (n, weighted) = try feeder.load(try prefetcher?.next() ?? data.batch(index), index: index, random: &random)
                trainStep(feeder.plan, t, labels: feeder.labels, weights: weighted ? feeder.weights : nil, batch: n)
                return true
            },
            endEpoch: {
                prefetcher?.cancel()
                data.onEpochEnd()
            },
            validate: validationData.map { v in
                { try self.evaluateLoop(v, steps: validationSteps, callbacks: callbacks) }
            })
    }

    /// A prefetcher reading batches `0..<count` of `data`, when it prefetches.
    private func makePrefetcher(_ data: any BatchDataset, count: Int) -> Prefetcher? {
        guard data.prefetch > 0 else { return nil }
        let p = Prefetcher(depth: data.prefetch) { try data.batch($0) }
        p.start(Array(0..<min(count, data.batchCount ?? count)))
        return p
    }

    // MARK: evaluate

    func evaluateLoop(_ data: any BatchDataset, steps: Int?, callbacks: [Callback],
                      progress: ProgbarLogger? = nil) throws -> [String: Float] {
        let count = try datasetSteps(data, steps, argument: "steps", "evaluate")
        data.onEpochBegin()
        let feeder = try DatasetFeeder(model: self, first: try data.batch(0), training: false, readsTargets: true,
                                       what: "evaluate")
        let t = feeder.targets!
        t.reset()
        let prefetcher = makePrefetcher(data, count: count)
        defer { prefetcher?.close() }
        var logs: [String: Float] = [:]
        var unused = RandomGenerator(seed: 0)
        for c in callbacks { try c.onTestBegin(logs: [:]) }
        progress?.onEpochBegin(0, logs: [:])
        for step in 0..<count {
            if let total = data.batchCount, step >= total {
                warnRanOut("evaluate", after: step)
                break
            }
            for c in callbacks { try c.onTestBatchBegin(step, logs: [:]) }
            let (n, weighted) = try feeder.load(try prefetcher?.next() ?? data.batch(step), index: step, random: &unused)
            testStep(feeder.plan, t, labels: feeder.labels, weights: weighted ? feeder.weights : nil, batch: n)
            t.write(into: &logs)
            for c in callbacks { try c.onTestBatchEnd(step, logs: logs) }
            progress?.onTrainBatchEnd(step, logs: logs)
        }
        data.onEpochEnd()
        progress?.onEpochEnd(0, logs: logs)
        for c in callbacks { try c.onTestEnd(logs: logs) }
        return logs
    }

    /// Loss and metrics over batches read from `data` (all of them, or the first `steps`), by
    /// name (Keras `evaluate` with a `PyDataset`).
    @discardableResult
    public func evaluate(_ data: some BatchDataset, steps: Int? = nil, verbose: Int = 1,
                         callbacks: [Callback] = []) throws -> [String: Float] {
        for c in callbacks { c.setModel(self) }
        let count = try datasetSteps(data, steps, argument: "steps", "evaluate")
        let progress = verbose > 0 ? ProgbarLogger(verbose: verbose, epochs: 1, steps: count) : nil
        return try evaluateLoop(data, steps: steps, callbacks: callbacks, progress: progress)
    }

    // MARK: predict

    /// Every output of the model for the inputs of the batches read from `data` (all of them,
    /// or the first `steps`), in batch order; the batches' targets are ignored (Keras `predict`
    /// of a model with several outputs).
    public func predictOutputs(_ data: some BatchDataset, steps: Int? = nil, verbose: Int = 0,
                               callbacks: [Callback] = []) throws -> [Tensor] {
        let count = try datasetSteps(data, steps, argument: "steps", "predict")
        for c in callbacks { c.setModel(self) }
        data.onEpochBegin()
        let feeder = try DatasetFeeder(model: self, first: try data.batch(0), training: false, readsTargets: false,
                                       what: "predict")
        let outShapes = outputShapes, sizes = outShapes.map { $0.reduce(1, *) }
        var results = outShapes.map { _ in [Float]() }
        var samples = 0
        var unused = RandomGenerator(seed: 0)
        let prefetcher = makePrefetcher(data, count: count)
        defer { prefetcher?.close() }
        let progress = verbose > 0 ? ProgbarLogger(verbose: verbose, epochs: 1, steps: count) : nil
        for c in callbacks { try c.onPredictBegin(logs: [:]) }
        progress?.onEpochBegin(0, logs: [:])
        for step in 0..<count {
            if let total = data.batchCount, step >= total {
                warnRanOut("predict", after: step)
                break
            }
            for c in callbacks { try c.onPredictBatchBegin(step, logs: [:]) }
            let n = try feeder.load(try prefetcher?.next() ?? data.batch(step), index: step, random: &unused).samples
            let plan = feeder.plan
            plan.forward(batch: n)
            for k in results.indices {
                results[k].append(contentsOf: UnsafeBufferPointer(start: plan.outputBuffer(k), count: n * sizes[k]))
            }
            samples += n
            for c in callbacks { try c.onPredictBatchEnd(step, logs: [:]) }
            progress?.onTrainBatchEnd(step, logs: [:])
        }
        data.onEpochEnd()
        progress?.onEpochEnd(0, logs: [:])
        for c in callbacks { try c.onPredictEnd(logs: [:]) }
        return zip(outShapes, results).map { Tensor(shape: [samples] + $0, scalars: $1) }
    }

    /// The model's output for the inputs of the batches read from `data` (all of them, or the
    /// first `steps`), in batch order; the batches' targets are ignored (Keras `predict` with a
    /// `PyDataset`). A model with several outputs uses `predictOutputs`.
    public func predict(_ data: some BatchDataset, steps: Int? = nil, verbose: Int = 0,
                        callbacks: [Callback] = []) throws -> Tensor {
        guard outputNames.count <= 1 else {
            throw KestrelError.invalidArgument(
                "\(name).predict: the model has \(outputNames.count) outputs (\(outputNames.joined(separator: ", "))); use predictOutputs to get them all")
        }
        let outputs = try predictOutputs(data, steps: steps, verbose: verbose, callbacks: callbacks)
        return outputs[0]
    }
}
