import Foundation

/// Whether a monitored quantity should fall or rise (Keras's `mode` argument).
public enum MonitorMode: String, Sendable {
    /// Decide from the name: losses and errors fall, accuracies and similar scores rise.
    case auto
    /// Lower is better.
    case min
    /// Higher is better.
    case max
}

/// Resolves `mode` for `monitor`: true when higher values are better. Throws for `.auto` when
/// the name says nothing about the direction (Keras 3 raises the same way) rather than guess.
func monitorIncreases(_ monitor: String, mode: MonitorMode, callback: String) throws -> Bool {
    switch mode {
    case .min: return false
    case .max: return true
    case .auto:
        let name = monitor.hasPrefix("val_") ? String(monitor.dropFirst(4)) : monitor
        if name.hasSuffix("loss") { return false }
        let rising = ["acc", "auc", "precision", "recall", "fmeasure", "f1"]
        let falling = ["error", "crossentropy", "mse", "mae", "mape", "msle", "hinge", "divergence", "poisson"]
        if rising.contains(where: { name.contains($0) }) { return true }
        if falling.contains(where: { name.contains($0) }) { return false }
        throw KestrelError.invalidArgument(
            "\(callback): cannot tell whether monitor '\(monitor)' should be minimized or maximized; pass mode: .min or mode: .max")
    }
}

/// The model a callback was given by `fit`, or a `notReady` error naming the callback.
func attachedModel(_ model: Model?, _ callback: String) throws -> Model {
    guard let model else {
        throw KestrelError.notReady("\(callback): no model; pass the callback to fit(callbacks:)")
    }
    return model
}

/// Prints a callback's message the way Keras's `io_utils.print_msg` does: a line of its own,
/// flushed so it keeps its place among the progress bar's lines.
func printCallbackMessage(_ text: String) {
    print(text)
    fflush(nil)
}
