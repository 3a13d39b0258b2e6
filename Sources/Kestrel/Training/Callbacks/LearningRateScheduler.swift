/// Sets the learning rate at the start of each epoch from a function of the epoch and the
/// current rate (Keras `LearningRateScheduler`).
public final class LearningRateScheduler: Callback {
    /// The rule: `(epoch, currentRate) -> newRate`, epochs 0-based.
    public let schedule: (Int, Float) throws -> Float
    /// 1 prints each new rate.
    public let verbose: Int
    private weak var model: Model?

    /// A scheduler applying `schedule` before every epoch.
    public init(verbose: Int = 0, schedule: @escaping (_ epoch: Int, _ learningRate: Float) throws -> Float) {
        self.schedule = schedule
        self.verbose = verbose
    }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) throws {
        let optimizer = try requireOptimizer(model, "LearningRateScheduler")
        if optimizer.learningRateSchedule != nil {
            throw KestrelError.invalidArgument(
                "LearningRateScheduler: the \(optimizer.name) optimizer already follows a LearningRateSchedule, which would overwrite the rate every step; use one or the other")
        }
    }

    public func onEpochBegin(_ epoch: Int, logs: [String: Float]) throws {
        let optimizer = try requireOptimizer(model, "LearningRateScheduler")
        let rate = try schedule(epoch, optimizer.learningRate)
        guard rate.isFinite else {
            throw KestrelError.invalidArgument(
                "LearningRateScheduler: the schedule returned \(rate) for epoch \(epoch); expected a finite learning rate")
        }
        optimizer.learningRate = rate
        if verbose > 0 {
            printCallbackMessage("\nEpoch \(epoch + 1): LearningRateScheduler setting learning rate to \(rate).")
        }
    }
}

/// Stops training as soon as a batch's loss is NaN or infinite (Keras `TerminateOnNaN`).
public final class TerminateOnNaN: Callback {
    /// The batch at which the loss became non-finite, if it did.
    public private(set) var terminatedAtBatch: Int?
    /// 1 prints a line when it stops training (as Keras always does).
    public let verbose: Int
    private weak var model: Model?

    /// A NaN guard.
    public init(verbose: Int = 1) { self.verbose = verbose }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) {
        guard let loss = logs["loss"], !loss.isFinite else { return }
        terminatedAtBatch = batch
        if verbose > 0 { printCallbackMessage("Batch \(batch): Invalid loss, terminating training") }
        model?.stopTraining = true
    }
}

/// A callback made of closures, for quick ad-hoc hooks (Keras `LambdaCallback`).
public final class LambdaCallback: Callback {
    private let epochBegin: ((Int, [String: Float]) throws -> Void)?
    private let epochEnd: ((Int, [String: Float]) throws -> Void)?
    private let batchBegin: ((Int, [String: Float]) throws -> Void)?
    private let batchEnd: ((Int, [String: Float]) throws -> Void)?
    private let trainBegin: (([String: Float]) throws -> Void)?
    private let trainEnd: (([String: Float]) throws -> Void)?

    /// A callback calling the given closures; omitted hooks do nothing.
    public init(onEpochBegin: ((_ epoch: Int, _ logs: [String: Float]) throws -> Void)? = nil,
                onEpochEnd: ((_ epoch: Int, _ logs: [String: Float]) throws -> Void)? = nil,
                onTrainBatchBegin: ((_ batch: Int, _ logs: [String: Float]) throws -> Void)? = nil,
                onTrainBatchEnd: ((_ batch: Int, _ logs: [String: Float]) throws -> Void)? = nil,
                onTrainBegin: ((_ logs: [String: Float]) throws -> Void)? = nil,
                onTrainEnd: ((_ logs: [String: Float]) throws -> Void)? = nil) {
        epochBegin = onEpochBegin
        epochEnd = onEpochEnd
        batchBegin = onTrainBatchBegin
        batchEnd = onTrainBatchEnd
        trainBegin = onTrainBegin
        trainEnd = onTrainEnd
    }

    public func onEpochBegin(_ epoch: Int, logs: [String: Float]) throws { try epochBegin?(epoch, logs) }
    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws { try epochEnd?(epoch, logs) }
    public func onTrainBatchBegin(_ batch: Int, logs: [String: Float]) throws { try batchBegin?(batch, logs) }
    public func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) throws { try batchEnd?(batch, logs) }
    public func onTrainBegin(logs: [String: Float]) throws { try trainBegin?(logs) }
    public func onTrainEnd(logs: [String: Float]) throws { try trainEnd?(logs) }
}
