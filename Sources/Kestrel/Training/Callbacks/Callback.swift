/// Hooks into `fit`, `evaluate` and `predict` (Keras `keras.callbacks.Callback`).
///
/// Every hook has an empty default, so a callback implements only what it needs. `logs` map
/// names ("loss", "accuracy", "val_loss", …) to values. Set `model.stopTraining = true`
/// from a hook to end `fit` (after the current batch, then validation and `onEpochEnd` run,
/// as in Keras). A hook that throws ends `fit` with its error, as an exception raised in a
/// Keras callback does; `onTrainEnd` is then not called, so backups stay in place.
public protocol Callback: AnyObject {
    /// Called once when `fit` (or `evaluate`/`predict`) starts with the model it drives.
    func setModel(_ model: Model)
    /// Called at the start of `fit`.
    func onTrainBegin(logs: [String: Float]) throws
    /// Called after `onTrainBegin`: the epoch `fit` starts from, given the one it would start
    /// from (its `initialEpoch`, or what an earlier callback returned). `BackupAndRestore`
    /// returns the number of epochs its backup had finished (Keras sets `model._initial_epoch`).
    func initialEpoch(resuming proposed: Int) throws -> Int
    /// Called at the end of `fit`.
    func onTrainEnd(logs: [String: Float]) throws
    /// Called at the start of each epoch (0-based).
    func onEpochBegin(_ epoch: Int, logs: [String: Float]) throws
    /// Called at the end of each epoch with its training and validation results.
    func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws
    /// Called before each training batch.
    func onTrainBatchBegin(_ batch: Int, logs: [String: Float]) throws
    /// Called after each training batch with the running epoch averages.
    func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) throws
    /// Called at the start of `evaluate` and of validation.
    func onTestBegin(logs: [String: Float]) throws
    /// Called at the end of `evaluate` and of validation.
    func onTestEnd(logs: [String: Float]) throws
    /// Called before each evaluation batch.
    func onTestBatchBegin(_ batch: Int, logs: [String: Float]) throws
    /// Called after each evaluation batch.
    func onTestBatchEnd(_ batch: Int, logs: [String: Float]) throws
    /// Called at the start of `predict`.
    func onPredictBegin(logs: [String: Float]) throws
    /// Called at the end of `predict`.
    func onPredictEnd(logs: [String: Float]) throws
    /// Called before each prediction batch.
    func onPredictBatchBegin(_ batch: Int, logs: [String: Float]) throws
    /// Called after each prediction batch.
    func onPredictBatchEnd(_ batch: Int, logs: [String: Float]) throws
}

public extension Callback {
    func setModel(_ model: Model) {}
    func onTrainBegin(logs: [String: Float]) {}
    func initialEpoch(resuming proposed: Int) -> Int { proposed }
    func onTrainEnd(logs: [String: Float]) {}
    func onEpochBegin(_ epoch: Int, logs: [String: Float]) {}
    func onEpochEnd(_ epoch: Int, logs: [String: Float]) {}
    func onTrainBatchBegin(_ batch: Int, logs: [String: Float]) {}
    func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) {}
    func onTestBegin(logs: [String: Float]) {}
    func onTestEnd(logs: [String: Float]) {}
    func onTestBatchBegin(_ batch: Int, logs: [String: Float]) {}
    func onTestBatchEnd(_ batch: Int, logs: [String: Float]) {}
    func onPredictBegin(logs: [String: Float]) {}
    func onPredictEnd(logs: [String: Float]) {}
    func onPredictBatchBegin(_ batch: Int, logs: [String: Float]) {}
    func onPredictBatchEnd(_ batch: Int, logs: [String: Float]) {}
}

/// The record of a `fit` call (Keras `History`): per-epoch values of every logged name.
public final class History: Callback {
    /// Each logged name ("loss", "accuracy", "val_loss", …) mapped to its per-epoch values.
    public private(set) var history: [String: [Float]] = [:]
    /// The epochs recorded (0-based, continuing from `initialEpoch`).
    public private(set) var epoch: [Int] = []
    /// The model that was trained.
    public private(set) weak var model: Model?

    /// An empty history.
    public init() {}

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) {}

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) {
        self.epoch.append(epoch)
        for (name, value) in logs { history[name, default: []].append(value) }
    }

    /// The values of one logged name, e.g. `history["val_accuracy"]`.
    public subscript(name: String) -> [Float]? { history[name] }
}
