/// One batch of a `BatchDataset`: the inputs in the model's input order and the targets in
/// its output order (Keras's `(x, y)` tuple; no targets for `predict`).
public struct Batch {
    /// One tensor per model input, each `[batch] + inputShape`.
    public var inputs: [Tensor]
    /// One tensor per model output, each with the batch's samples first; empty for `predict`.
    public var targets: [Tensor]
    /// A weight per sample (`[batch]`) for every output's loss (Keras's third tuple entry), or nil.
    public var sampleWeights: Tensor?

    /// A batch of a model with several inputs and/or outputs.
    public init(inputs: [Tensor], targets: [Tensor] = [], sampleWeights: Tensor? = nil) {
        self.inputs = inputs
        self.targets = targets
        self.sampleWeights = sampleWeights
    }

    /// A batch of a single-input, single-output model.
    public init(_ x: Tensor, _ y: Tensor, sampleWeights: Tensor? = nil) {
        self.init(inputs: [x], targets: [y], sampleWeights: sampleWeights)
    }

    /// Inputs only, for `predict`.
    public init(_ x: Tensor) {
        self.init(inputs: [x])
    }
}

/// A source of whole batches that `fit`, `evaluate` and `predict` read one at a time (Keras
/// `keras.utils.PyDataset`, formerly `Sequence`): data that need not fit in memory, such as
/// images decoded from disk per batch, or batches computed on the fly.
///
/// `batch(_:)` is asked for indices `0..<batchCount` (shuffled by `fit(shuffle: true)`, as
/// Keras shuffles a PyDataset's batch order each epoch). Batches may differ in size (the
/// last one is usually smaller) but not in sample shapes.
public protocol BatchDataset {
    /// Batches in one pass over the data (Keras `num_batches`/`__len__`); nil for an endless
    /// source, which then needs `stepsPerEpoch`/`steps`.
    var batchCount: Int? { get }
    /// Batch `index`.
    func batch(_ index: Int) throws -> Batch
    /// Called before each epoch of `fit`, and before `evaluate`/`predict`.
    func onEpochBegin()
    /// Called after each epoch of `fit` and after `evaluate`/`predict`, e.g. to reshuffle.
    func onEpochEnd()
    /// How many batches `fit`, `evaluate` and `predict` may read ahead on a background thread
    /// while the model works on the current one (tf.data's `prefetch`, the queue of Keras's
    /// PyDataset workers); 0, the default, reads each batch when it is needed. A dataset that
    /// prefetches has `batch(_:)` called on that thread (never two at once, and never during
    /// the epoch hooks).
    var prefetch: Int { get }
}

/// The samples of batch `index` when `count` samples are cut into batches of `batchSize`;
/// throws, naming `what`, for an index outside the batches.
package func batchRange(_ index: Int, batchSize: Int, count: Int, _ what: String) throws -> Range<Int> {
    let batches = (count + batchSize - 1) / batchSize
    guard index >= 0, index < batches else { throw KestrelError.invalidArgument("\(what): batch \(index) of \(batches)") }
    return (index * batchSize)..<min((index + 1) * batchSize, count)
}

extension BatchDataset {
    public var prefetch: Int { 0 }
    public func onEpochBegin() {}
    public func onEpochEnd() {}
}

/// Arrays cut into consecutive batches, the last one possibly smaller (Keras
/// `tf.data.Dataset.from_tensor_slices((x, y)).batch(batchSize)`); the batch order is
/// shuffled by `fit`, the samples within a batch stay together.
public struct TensorBatches: BatchDataset {
    /// The arrays, samples first.
    public let inputs: [Tensor], targets: [Tensor]
    /// A weight per sample, or nil.
    public let sampleWeights: Tensor?
    /// Samples per batch.
    public let batchSize: Int
    /// Samples in all.
    public let count: Int

    /// Batches of `x` (and of `y` and `sampleWeights`, when given).
    public init(_ x: Tensor, _ y: Tensor? = nil, sampleWeights: Tensor? = nil, batchSize: Int = 32) throws {
        try self.init(inputs: [x], targets: y.map { [$0] } ?? [], sampleWeights: sampleWeights, batchSize: batchSize)
    }

    /// Batches of several arrays that share their number of samples.
    public init(inputs: [Tensor], targets: [Tensor] = [], sampleWeights: Tensor? = nil, batchSize: Int = 32) throws {
        guard batchSize > 0 else {
            throw KestrelError.invalidArgument("TensorBatches: batchSize must be positive, found \(batchSize)")
        }
        guard let first = inputs.first else { throw KestrelError.invalidArgument("TensorBatches: no input arrays") }
        let all = inputs + targets + (sampleWeights.map { [$0] } ?? [])
        for t in all {
            guard t.rank >= 1, t.shape[0] == first.shape.first else {
                throw KestrelError.shapeMismatch(
                    "TensorBatches: every array needs the same number of samples (first dimension); found shapes \(all.map(\.shape))")
            }
        }
        self.inputs = inputs
        self.targets = targets
        self.sampleWeights = sampleWeights
        self.batchSize = batchSize
        count = first.shape[0]
    }

    public var batchCount: Int? { (count + batchSize - 1) / batchSize }

    public func batch(_ index: Int) throws -> Batch {
        let range = try batchRange(index, batchSize: batchSize, count: count, "TensorBatches")
        return Batch(inputs: inputs.map { $0[batch: range] }, targets: targets.map { $0[batch: range] },
                     sampleWeights: sampleWeights?[batch: range])
    }
}
