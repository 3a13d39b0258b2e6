import Kestrel

/// Which end of a sequence padding or truncation applies to (Keras `padding`, `truncating`).
public enum SequenceEnd: String, Sendable, CaseIterable {
    /// Before the sequence (Keras's default for both).
    case pre
    /// After it.
    case post
}

/// Pads sequences of token indices to one length (Keras `pad_sequences`), e.g. the word
/// indices of Keras's IMDB reviews before an `Embedding`: rows of `maxLength` (default: the
/// longest sequence), `value` filling the `padding` end, longer sequences losing their
/// `truncating` end. Returns `(sequences, maxLength)`.
public func padSequences<Element: BinaryInteger>(_ sequences: [[Element]], maxLength: Int? = nil,
                                                 padding: SequenceEnd = .pre, truncating: SequenceEnd = .pre,
                                                 value: Float = 0) throws -> Tensor {
    try padSequences(sequences.map { $0.map(Float.init) }, maxLength: maxLength, padding: padding,
                     truncating: truncating, value: value)
}

/// Pads sequences of numbers to one length (Keras `pad_sequences`; see the integer version).
public func padSequences(_ sequences: [[Float]], maxLength: Int? = nil, padding: SequenceEnd = .pre,
                         truncating: SequenceEnd = .pre, value: Float = 0) throws -> Tensor {
    let length = maxLength ?? sequences.map(\.count).max() ?? 0
    guard length >= 0 else { throw KestrelError.invalidArgument("padSequences: maxLength must be 0 or more, found \(length)") }
    var out = [Float](repeating: value, count: sequences.count * length)
    for (row, sequence) in sequences.enumerated() {
        let kept = truncating == .pre ? sequence.suffix(length) : sequence.prefix(length)
        let start = row * length + (padding == .pre ? length - kept.count : 0)
        for (j, v) in kept.enumerated() { out[start + j] = v }
    }
    return Tensor(shape: [sequences.count, length], scalars: out)
}

/// One-hot rows for class indices (Keras `to_categorical`): a tensor of shape `s` becomes
/// `s + [numClasses]` (a last axis of 1 is replaced), `numClasses` defaulting to the largest
/// index plus one.
public func toCategorical(_ labels: Tensor, numClasses: Int? = nil) throws -> Tensor {
    var indices: [Int] = []
    indices.reserveCapacity(labels.scalars.count)
    for v in labels.scalars {
        guard v >= 0, v.rounded() == v, v < 1e9 else {
            throw KestrelError.invalidArgument("toCategorical: labels must be class indices (whole numbers 0 or more), found \(v)")
        }
        indices.append(Int(v))
    }
    let classes = numClasses ?? ((indices.max() ?? -1) + 1)
    if let bad = indices.first(where: { $0 >= classes }) {
        throw KestrelError.invalidArgument("toCategorical: label \(bad) is outside 0..<\(classes) (numClasses \(classes))")
    }
    var shape = labels.shape
    if shape.count > 1 && shape.last == 1 { shape.removeLast() }
    var out = [Float](repeating: 0, count: indices.count * classes)
    for (i, index) in indices.enumerated() { out[i * classes + index] = 1 }
    return Tensor(shape: shape + [classes], scalars: out)
}

/// One-hot rows for class indices given as integers (Keras `to_categorical`).
public func toCategorical<Label: BinaryInteger>(_ labels: [Label], numClasses: Int? = nil) throws -> Tensor {
    try toCategorical(Tensor(shape: [labels.count], scalars: labels.map(Float.init)), numClasses: numClasses)
}

/// Windows of a time series and the target at each window's start (Keras
/// `timeseries_dataset_from_array`): window `i` holds `sequenceLength` rows of `data` taken
/// every `samplingRate` rows from `startIndex + p`, and its target is `targets[startIndex + p]`,
/// for p = 0, `sequenceStride`, … while the window fits before `endIndex` (and there are
/// targets). `inputs` is `[windows, sequenceLength] + data.shape.dropFirst()`.
///
/// Keras returns batches; here every window is materialised (overlapping windows repeat
/// rows, so memory grows with `sequenceLength / sequenceStride`); `TimeseriesBatches` makes
/// the windows of each batch only when asked. `shuffle` orders the windows with Kestrel's
/// generator, not NumPy's.
public func timeseriesDatasetFromArray(
    _ data: Tensor, targets: Tensor?, sequenceLength: Int, sequenceStride: Int = 1, samplingRate: Int = 1,
    shuffle: Bool = false, seed: UInt64? = nil, startIndex: Int? = nil, endIndex: Int? = nil
) throws -> (inputs: Tensor, targets: Tensor?) {
    let windows = try TimeseriesWindows(data, targets: targets, sequenceLength: sequenceLength,
                                        sequenceStride: sequenceStride, samplingRate: samplingRate, shuffle: shuffle,
                                        seed: seed, startIndex: startIndex, endIndex: endIndex,
                                        what: "timeseriesDatasetFromArray")
    return windows.make(windows.positions[...])
}

/// The windows of a time series made a batch at a time, for `fit`, `evaluate` and `predict`
/// (what Keras's `timeseries_dataset_from_array` gives them, `batchSize` 128 by default): the
/// same windows and targets as `timeseriesDatasetFromArray`, without holding them all, as
/// Keras's weather-forecasting tutorial needs (300,000 windows of 120 steps would take 1 GB).
/// With `shuffle` the windows are shuffled once, by `seed`.
public struct TimeseriesBatches: BatchDataset {
    private let windows: TimeseriesWindows
    /// Windows per batch (the last batch may hold fewer).
    public let batchSize: Int

    /// The windows of `data` with the arguments of `timeseriesDatasetFromArray`, in batches.
    public init(_ data: Tensor, targets: Tensor?, sequenceLength: Int, sequenceStride: Int = 1, samplingRate: Int = 1,
                batchSize: Int = 128, shuffle: Bool = false, seed: UInt64? = nil, startIndex: Int? = nil,
                endIndex: Int? = nil) throws {
        guard batchSize > 0 else {
            throw KestrelError.invalidArgument("TimeseriesBatches: batchSize must be positive, found \(batchSize)")
        }
        windows = try TimeseriesWindows(data, targets: targets, sequenceLength: sequenceLength,
                                        sequenceStride: sequenceStride, samplingRate: samplingRate, shuffle: shuffle,
                                        seed: seed, startIndex: startIndex, endIndex: endIndex, what: "TimeseriesBatches")
        self.batchSize = batchSize
    }

    /// Windows in all.
    public var count: Int { windows.positions.count }

    public var batchCount: Int? { (count + batchSize - 1) / batchSize }

    /// The windows of batch `index` and, when there are targets, theirs.
    public func batch(_ index: Int) throws -> Batch {
        let (inputs, targets) = windows.make(windows.positions[try batchRange(index, batchSize: batchSize, count: count,
                                                                                 "TimeseriesBatches")])
        return Batch(inputs: [inputs], targets: targets.map { [$0] } ?? [])
    }
}

/// The checked arguments of a windowed time series and the start of each window.
struct TimeseriesWindows {
    let data: Tensor, targets: Tensor?
    let sequenceLength: Int, samplingRate: Int, start: Int
    /// Each window's first row, relative to `start`, in the order windows are given.
    let positions: [Int]

    init(_ data: Tensor, targets: Tensor?, sequenceLength: Int, sequenceStride: Int, samplingRate: Int,
         shuffle: Bool, seed: UInt64?, startIndex: Int?, endIndex: Int?, what: String) throws {
        guard let rows = data.shape.first else { throw KestrelError.shapeMismatch("\(what): data must have a first (time) axis, found a scalar") }
        if let startIndex, startIndex != 0 {
            guard startIndex > 0 else { throw KestrelError.invalidArgument("\(what): startIndex must be 0 or greater, found \(startIndex)") }
            guard startIndex < rows else {
                throw KestrelError.invalidArgument("\(what): startIndex must be lower than the data's length \(rows), found \(startIndex)")
            }
        }
        if let endIndex, endIndex != 0 {
            if let startIndex, startIndex != 0, endIndex <= startIndex {
                throw KestrelError.invalidArgument("\(what): endIndex must be higher than startIndex \(startIndex), found \(endIndex)")
            }
            guard endIndex < rows else {
                throw KestrelError.invalidArgument("\(what): endIndex must be lower than the data's length \(rows), found \(endIndex)")
            }
            guard endIndex > 0 else { throw KestrelError.invalidArgument("\(what): endIndex must be higher than 0, found \(endIndex)") }
        }
        for (name, value) in [("samplingRate", samplingRate), ("sequenceStride", sequenceStride)] {
            guard value > 0 else { throw KestrelError.invalidArgument("\(what): \(name) must be higher than 0, found \(value)") }
            guard value < rows else {
                throw KestrelError.invalidArgument("\(what): \(name) must be lower than the data's length \(rows), found \(value)")
            }
        }
        guard sequenceLength > 0 else { throw KestrelError.invalidArgument("\(what): sequenceLength must be positive, found \(sequenceLength)") }
        if let targets, targets.shape.isEmpty {
            throw KestrelError.shapeMismatch("\(what): targets must have a first axis, found a scalar")
        }
        let start = startIndex ?? 0, end = endIndex ?? rows
        var count = end - start - (sequenceLength - 1) * samplingRate
        if let targets { count = min(count, targets.shape[0]) }
        var positions = count > 0 ? Array(stride(from: 0, to: count, by: sequenceStride)) : []
        if shuffle {
            var generator = RandomGenerator(seed: seed ?? UInt64.random(in: 0..<1_000_000))
            positions.shuffle(using: &generator)
        }
        if let targets, let last = positions.max(), start + last >= targets.shape[0] {
            throw KestrelError.shapeMismatch(
                "\(what): window \(last) starting at row \(start + last) has no target; targets have \(targets.shape[0]) rows")
        }
        self.data = data
        self.targets = targets
        self.sequenceLength = sequenceLength
        self.samplingRate = samplingRate
        self.start = start
        self.positions = positions
    }

    /// The windows starting at `picked` and their targets.
    func make(_ picked: ArraySlice<Int>) -> (inputs: Tensor, targets: Tensor?) {
        let rowSize = data.shape.dropFirst().reduce(1, *)
        var inputs = [Float](repeating: 0, count: picked.count * sequenceLength * rowSize)
        data.scalars.withUnsafeBufferPointer { source in
            inputs.withUnsafeMutableBufferPointer { out in
                for (i, p) in picked.enumerated() {
                    for step in 0..<sequenceLength {
                        (out.baseAddress! + (i * sequenceLength + step) * rowSize)
                            .update(from: source.baseAddress! + (start + p + step * samplingRate) * rowSize, count: rowSize)
                    }
                }
            }
        }
        let windows = Tensor(shape: [picked.count, sequenceLength] + data.shape.dropFirst(), scalars: inputs)
        guard let targets else { return (windows, nil) }
        let targetSize = targets.shape.dropFirst().reduce(1, *)
        var chosen = [Float]()
        chosen.reserveCapacity(picked.count * targetSize)
        for p in picked { chosen += targets.scalars[((start + p) * targetSize)..<((start + p + 1) * targetSize)] }
        return (windows, Tensor(shape: [picked.count] + targets.shape.dropFirst(), scalars: chosen))
    }
}
