import Foundation
import Kestrel

/// Logs training to TensorBoard (Keras `keras.callbacks.TensorBoard`).
///
/// Writes the runs `<logDir>/train` and `<logDir>/validation` as Keras does: at the end of each
/// epoch the scalars `epoch_<name>` (`epoch_loss`, `epoch_accuracy`, …; validation values without
/// their `val_` prefix) with step = epoch, plus `epoch_learning_rate` in the train run. With
/// `updateFrequency: .batches(n)` it also writes `batch_<name>` every `n` batches (step = batches
/// seen). With `histogramFrequency` k > 0, every k-th epoch adds a histogram of each weight
/// (`<layer>/<weight>/histogram`). View with `tensorboard --logdir <logDir>`.
///
/// Nothing is written on the per-batch path unless batch scalars are requested, and epoch
/// records are flushed at the end of each epoch so a running TensorBoard sees them.
public final class TensorBoard: Callback {
    /// When scalars are written.
    public enum UpdateFrequency: Equatable, Sendable {
        /// Once per epoch.
        case epoch
        /// Every `n` training batches, in addition to the epoch scalars.
        case batches(Int)
    }

    /// The log directory (runs go in its `train` and `validation` subdirectories).
    public let logDir: String
    /// Epochs between weight histograms (0: none).
    public let histogramFrequency: Int
    /// When scalars are written.
    public let updateFrequency: UpdateFrequency
    private var trainWriter: SummaryWriter?
    private var validationWriter: SummaryWriter?
    private var globalBatch = 0
    private weak var model: Model?

    /// A TensorBoard logger with Keras's defaults (epoch scalars, no histograms). Throws for a
    /// negative `histogramFrequency` or a non-positive batch frequency.
    public init(logDir: String = "logs", histogramFrequency: Int = 0, updateFrequency: UpdateFrequency = .epoch) throws {
        guard histogramFrequency >= 0 else {
            throw KestrelError.invalidArgument("TensorBoard: histogramFrequency must not be negative, found \(histogramFrequency)")
        }
        if case .batches(let n) = updateFrequency, n <= 0 {
            throw KestrelError.invalidArgument("TensorBoard: updateFrequency .batches(n) needs n > 0, found \(n)")
        }
        self.logDir = logDir
        self.histogramFrequency = histogramFrequency
        self.updateFrequency = updateFrequency
    }

    /// The event files written so far (train first), for tools and tests.
    public var eventFiles: [String] { [trainWriter?.path, validationWriter?.path].compactMap { $0 } }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) throws {
        trainWriter = try SummaryWriter(logDir: (logDir as NSString).appendingPathComponent("train"))
        validationWriter = nil
        globalBatch = 0
    }

    public func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) throws {
        guard case .batches(let n) = updateFrequency else { return }
        globalBatch += 1
        guard globalBatch % n == 0, let trainWriter else { return }
        try trainWriter.scalars(logs.keys.sorted().map { ("batch_" + $0, logs[$0]!) }, step: globalBatch)
    }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        guard let trainWriter else { throw KestrelError.notReady("TensorBoard: onEpochEnd before onTrainBegin") }
        var train: [(tag: String, value: Float)] = []
        var validation: [(tag: String, value: Float)] = []
        for name in logs.keys.sorted() {
            if name.hasPrefix("val_") {
                validation.append(("epoch_" + name.dropFirst(4), logs[name]!))
            } else {
                train.append(("epoch_" + name, logs[name]!))
            }
        }
        if let optimizer = model?.optimizer { train.append(("epoch_learning_rate", optimizer.learningRate)) }
        try trainWriter.scalars(train, step: epoch)
        if !validation.isEmpty {
            // The validation run is created on first use so a fit without validation has none.
            if validationWriter == nil {
                validationWriter = try SummaryWriter(logDir: (logDir as NSString).appendingPathComponent("validation"))
            }
            try validationWriter!.scalars(validation, step: epoch)
            try validationWriter!.flush()
        }
        if histogramFrequency > 0 && epoch % histogramFrequency == 0, let model {
            for layer in model.layers {
                for (index, spec) in layer.weightSpecs.enumerated() {
                    let buffer = UnsafeBufferPointer(start: layer.weightPointer(index), count: spec.count)
                    try trainWriter.histogram("\(layer.name)/\(spec.name)/histogram", buffer, step: epoch)
                }
            }
        }
        try trainWriter.flush()
    }

    public func onTrainEnd(logs: [String: Float]) throws {
        try trainWriter?.close()
        try validationWriter?.close()
    }
}
