/// Stops training when a monitored quantity has stopped improving (Keras `EarlyStopping`).
///
/// At the end of each epoch from `startFromEpoch` on, the value of `monitor` counts as an
/// improvement when it beats the best so far by more than `minDelta`. After `patience` epochs
/// without one, `fit` stops. With a `baseline`, the wait only restarts once the value also beats
/// the baseline. With `restoreBestWeights`, the weights of the best epoch are put back when
/// training ends.
public final class EarlyStopping: Callback {
    /// The logged quantity watched, e.g. "val_loss".
    public let monitor: String
    /// The smallest change that counts as an improvement (its absolute value is used).
    public let minDelta: Float
    /// Epochs without improvement before stopping.
    public let patience: Int
    /// Whether the quantity should fall or rise.
    public let mode: MonitorMode
    /// A value the quantity must beat before the wait restarts.
    public let baseline: Float?
    /// Whether to put back the best epoch's weights when training ends.
    public let restoreBestWeights: Bool
    /// Epochs to wait before monitoring starts (a warm-up).
    public let startFromEpoch: Int
    /// 1 prints when it stops and when it restores weights.
    public let verbose: Int

    /// Epochs since the last improvement.
    public private(set) var wait = 0
    /// The epoch at which training was stopped (0 when it was not).
    public private(set) var stoppedEpoch = 0
    /// The best monitored value so far.
    public private(set) var best: Float?
    /// The epoch of the best value.
    public private(set) var bestEpoch = 0
    private var bestWeights: [Tensor]?
    private let increases: Bool
    private weak var model: Model?

    /// An early-stopping callback with Keras's defaults; throws for a negative `patience` or
    /// `startFromEpoch`, or a `monitor` whose direction `.auto` cannot tell.
    public init(monitor: String = "val_loss", minDelta: Float = 0, patience: Int = 0, verbose: Int = 0,
                mode: MonitorMode = .auto, baseline: Float? = nil, restoreBestWeights: Bool = false,
                startFromEpoch: Int = 0) throws {
        guard patience >= 0, startFromEpoch >= 0 else {
            throw KestrelError.invalidArgument(
                "EarlyStopping: patience (\(patience)) and startFromEpoch (\(startFromEpoch)) must not be negative")
        }
        self.monitor = monitor
        self.minDelta = abs(minDelta)
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.baseline = baseline
        self.restoreBestWeights = restoreBestWeights
        self.startFromEpoch = startFromEpoch
        increases = try monitorIncreases(monitor, mode: mode, callback: "EarlyStopping")
    }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) {
        wait = 0
        stoppedEpoch = 0
        best = nil
        bestWeights = nil
        bestEpoch = 0
    }

    private func isImprovement(_ value: Float, over reference: Float?) -> Bool {
        guard let reference else { return true }
        return increases ? value - minDelta > reference : value + minDelta < reference
    }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        guard let current = logs[monitor] else {
            // Keras warns and carries on; a missing name is usually a typo, so say which exist.
            if verbose > 0 {
                printCallbackMessage("EarlyStopping: monitor '\(monitor)' is not in the logs (available: \(logs.keys.sorted().joined(separator: ", ")))")
            }
            return
        }
        guard epoch >= startFromEpoch else { return }
        let model = try attachedModel(model, "EarlyStopping")
        if restoreBestWeights && bestWeights == nil {
            // Until something is better, the first monitored epoch's weights are the best.
            bestWeights = try model.getWeights()
            bestEpoch = epoch
        }
        wait += 1
        if isImprovement(current, over: best) {
            best = current
            bestEpoch = epoch
            if restoreBestWeights { bestWeights = try model.getWeights() }
            if baseline == nil || isImprovement(current, over: baseline) { wait = 0 }
            return
        }
        if wait >= patience && epoch > 0 {
            stoppedEpoch = epoch
            model.stopTraining = true
        }
    }

    public func onTrainEnd(logs: [String: Float]) throws {
        if stoppedEpoch > 0 && verbose > 0 { printCallbackMessage("Epoch \(stoppedEpoch + 1): early stopping") }
        if restoreBestWeights, let bestWeights {
            if verbose > 0 {
                printCallbackMessage("Restoring model weights from the end of the best epoch: \(bestEpoch + 1).")
            }
            try attachedModel(model, "EarlyStopping").setWeights(bestWeights)
        }
    }
}
