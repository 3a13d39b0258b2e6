import Foundation

/// Lowers the learning rate when a monitored quantity has stopped improving (Keras
/// `ReduceLROnPlateau`).
///
/// After `patience` epochs in which `monitor` did not beat the best value by more than
/// `minDelta`, the optimizer's learning rate is multiplied by `factor` (not below `minLR`), then
/// `cooldown` epochs pass before waiting starts again.
public final class ReduceLROnPlateau: Callback {
    /// The logged quantity watched.
    public let monitor: String
    /// The factor applied to the learning rate, in (0, 1).
    public let factor: Float
    /// Epochs without improvement before reducing.
    public let patience: Int
    /// Whether the quantity should fall or rise.
    public let mode: MonitorMode
    /// The smallest change that counts as an improvement.
    public let minDelta: Float
    /// Epochs to wait after a reduction before counting again.
    public let cooldown: Int
    /// The lowest learning rate.
    public let minLR: Float
    /// 1 prints each reduction.
    public let verbose: Int

    /// Epochs since the last improvement.
    public private(set) var wait = 0
    /// Epochs of cooldown left.
    public private(set) var cooldownCounter = 0
    /// The best monitored value so far.
    public private(set) var best: Float
    private let increases: Bool
    private weak var model: Model?

    /// A plateau scheduler with Keras's defaults (factor 0.1, patience 10, minDelta 1e-4);
    /// throws for a `factor` outside (0, 1), negative counts, or an undecidable `monitor`.
    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 10, verbose: Int = 0,
                mode: MonitorMode = .auto, minDelta: Float = 1e-4, cooldown: Int = 0, minLR: Float = 0) throws {
        guard factor < 1 && factor > 0 else {
            throw KestrelError.invalidArgument("ReduceLROnPlateau: factor must be in (0, 1), found \(factor)")
        }
        guard patience >= 0, cooldown >= 0 else {
            throw KestrelError.invalidArgument(
                "ReduceLROnPlateau: patience (\(patience)) and cooldown (\(cooldown)) must not be negative")
        }
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.mode = mode
        self.minDelta = minDelta
        self.cooldown = cooldown
        self.minLR = minLR
        increases = try monitorIncreases(monitor, mode: mode, callback: "ReduceLROnPlateau")
        best = increases ? -.infinity : .infinity
    }

    public func setModel(_ model: Model) { self.model = model }

    public func onTrainBegin(logs: [String: Float]) throws {
        let optimizer = try requireOptimizer(model, "ReduceLROnPlateau")
        if optimizer.learningRateSchedule != nil {
            throw KestrelError.invalidArgument(
                "ReduceLROnPlateau: the \(optimizer.name) optimizer's learning rate follows a schedule, which would overwrite every reduction; use a constant learning rate")
        }
        best = increases ? -.infinity : .infinity
        wait = 0
        cooldownCounter = 0
    }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        guard let current = logs[monitor] else {
            if verbose > 0 {
                printCallbackMessage("ReduceLROnPlateau: monitor '\(monitor)' is not in the logs (available: \(logs.keys.sorted().joined(separator: ", ")))")
            }
            return
        }
        if cooldownCounter > 0 {
            cooldownCounter -= 1
            wait = 0
        }
        if increases ? current > best + minDelta : current < best - minDelta {
            best = current
            wait = 0
        } else if cooldownCounter == 0 {
            wait += 1
            if wait >= patience {
                let optimizer = try requireOptimizer(model, "ReduceLROnPlateau")
                let old = optimizer.learningRate
                if old > minLR {
                    let new = max(old * factor, minLR)
                    optimizer.learningRate = new
                    if verbose > 0 {
                        printCallbackMessage("\nEpoch \(epoch + 1): ReduceLROnPlateau reducing learning rate to \(new).")
                    }
                    cooldownCounter = cooldown
                    wait = 0
                }
            }
        }
    }
}

/// The compiled optimizer of the model a callback drives, or an error naming the callback.
func requireOptimizer(_ model: Model?, _ callback: String) throws -> Optimizer {
    let model = try attachedModel(model, callback)
    guard let optimizer = model.optimizer else {
        throw KestrelError.notReady("\(callback): model '\(model.name)' has no optimizer; call compile first")
    }
    return optimizer
}
