import Foundation

/// Prints training progress the way Keras does (Keras `ProgbarLogger`).
///
/// verbose 1: `1875/1875 ━━━━━━━━━━━━━━━━━━━━ 3s 1ms/step - accuracy: 0.8604 - loss: 0.4783`,
/// redrawn in place in a terminal (at most ~20 times a second, with an ETA while running) and
/// printed once per epoch otherwise. verbose 2: one line per epoch,
/// `1875/1875 - 5s - 3ms/step - accuracy: 0.8940 - loss: 0.2884`.
public final class ProgbarLogger: Callback {
    /// 1 for the bar, 2 for one line per epoch.
    public let verbose: Int
    private let epochs: Int
    private let steps: Int
    private let interactive: Bool
    private var start: Double = 0
    private var lastDraw: Double = 0
    private var seen = 0
    private var epochLogs: [String: Float] = [:]
    private let write: (String) -> Void

    /// A progress logger for `epochs` epochs of `steps` batches; `interactive` redraws in place
    /// (defaults to whether standard output is a terminal); `write` receives the text.
    public init(verbose: Int = 1, epochs: Int, steps: Int, interactive: Bool? = nil,
                write: ((String) -> Void)? = nil) {
        self.verbose = verbose
        self.epochs = epochs
        self.steps = steps
        self.interactive = interactive ?? (isatty(STDOUT_FILENO) != 0)
        // Through `print`'s buffered stream, flushed, so lines keep their order when piped.
        self.write = write ?? { text in
            print(text, terminator: "")
            fflush(nil)
        }
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    public func onEpochBegin(_ epoch: Int, logs: [String: Float]) {
        if epochs > 1 { write("Epoch \(epoch + 1)/\(epochs)\n") }
        start = ProgbarLogger.now()
        lastDraw = 0
        seen = 0
    }

    public func onTrainBatchEnd(_ batch: Int, logs: [String: Float]) {
        seen = batch + 1
        guard verbose == 1 && interactive else { return }
        let t = ProgbarLogger.now()
        if t - lastDraw < 0.05 && seen < steps { return }
        lastDraw = t
        write("\r" + line(logs: logs, finished: false) + "\u{1B}[K")
    }

    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) {
        seen = steps
        switch verbose {
        case 1: write((interactive ? "\r" : "") + line(logs: logs, finished: true) + (interactive ? "\u{1B}[K\n" : "\n"))
        case 2: write(compactLine(logs: logs) + "\n")
        default: break
        }
    }

    /// Formats a value with 4 decimals, or in scientific notation below 1e-3 (as Keras).
    static func format(_ v: Float) -> String {
        abs(v) >= 1e-3 || v == 0 ? String(format: "%.4f", v) : String(format: "%.4e", v)
    }

    static func formatStepTime(_ seconds: Double) -> String {
        if seconds >= 1 { return String(format: "%.0fs/step", seconds) }
        if seconds >= 1e-3 { return String(format: "%.0fms/step", seconds * 1e3) }
        return String(format: "%.0fus/step", seconds * 1e6)
    }

    static func formatDuration(_ s: Double) -> String {
        if s >= 3600 { return String(format: "%d:%02d:%02d", Int(s) / 3600, (Int(s) % 3600) / 60, Int(s) % 60) }
        if s >= 60 { return String(format: "%d:%02d", Int(s) / 60, Int(s) % 60) }
        return String(format: "%.0fs", s)
    }

    static func metricsText(_ logs: [String: Float]) -> String {
        logs.keys.sorted().map { " - \($0): \(format(logs[$0]!))" }.joined()
    }

    private func line(logs: [String: Float], finished: Bool) -> String {
        let digits = String(steps).count
        let count = String(repeating: " ", count: max(0, digits - String(seen).count)) + "\(seen)/\(steps)"
        let filled = steps > 0 ? Int(20 * Double(seen) / Double(steps)) : 20
        let bar: String
        if interactive {
            bar = "\u{1B}[32m" + String(repeating: "━", count: filled) + "\u{1B}[0m"
                + "\u{1B}[37m" + String(repeating: "━", count: 20 - filled) + "\u{1B}[0m"
        } else {
            bar = String(repeating: "━", count: 20)
        }
        let elapsed = ProgbarLogger.now() - start
        let perStep = seen > 0 ? elapsed / Double(seen) : 0
        let time = finished
            ? ProgbarLogger.formatDuration(elapsed)
            : ProgbarLogger.formatDuration(perStep * Double(steps - seen))
        return "\(count) \(bar) \(time) \(ProgbarLogger.formatStepTime(perStep))\(ProgbarLogger.metricsText(logs))"
    }

    private func compactLine(logs: [String: Float]) -> String {
        let elapsed = ProgbarLogger.now() - start
        return "\(steps)/\(steps) - \(ProgbarLogger.formatDuration(elapsed)) - "
            + ProgbarLogger.formatStepTime(elapsed / Double(max(steps, 1))) + ProgbarLogger.metricsText(logs)
    }
}
