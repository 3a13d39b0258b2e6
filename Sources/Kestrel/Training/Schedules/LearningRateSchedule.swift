import Foundation

/// A learning rate that changes with the optimizer's step (Keras
/// `keras.optimizers.schedules.LearningRateSchedule`).
///
/// Pass one wherever a learning rate goes: `Adam(learningRate: ExponentialDecay(...))`. The
/// optimizer evaluates it at its `iterations` (0 for the first update) before every update, so
/// an implementation must be cheap and must not allocate.
public protocol LearningRateSchedule {
    /// The learning rate for optimizer step `step` (0-based).
    func callAsFunction(_ step: Int) -> Float
}

/// Checks a schedule argument, throwing a message that names the schedule and the argument.
private func require(_ condition: Bool, _ schedule: String, _ message: @autoclosure () -> String) throws {
    if !condition { throw KestrelError.invalidArgument("\(schedule): \(message())") }
}

/// `initialLearningRate · decayRate^(step / decaySteps)`, with the exponent floored when
/// `staircase` (Keras `ExponentialDecay`).
public struct ExponentialDecay: LearningRateSchedule, Sendable {
    /// The rate at step 0.
    public let initialLearningRate: Float
    /// Steps over which the rate is multiplied by `decayRate` once.
    public let decaySteps: Int
    /// The factor applied every `decaySteps` steps.
    public let decayRate: Float
    /// Whether the rate drops in whole steps of `decaySteps` instead of continuously.
    public let staircase: Bool

    /// An exponential decay; throws when `decaySteps` is not positive.
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) throws {
        try require(decaySteps > 0, "ExponentialDecay", "decaySteps must be positive, found \(decaySteps)")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.staircase = staircase
    }

    public func callAsFunction(_ step: Int) -> Float {
        var p = Double(step) / Double(decaySteps)
        if staircase { p.round(.down) }
        return Float(Double(initialLearningRate) * pow(Double(decayRate), p))
    }
}

/// A rate that is constant between step boundaries (Keras `PiecewiseConstantDecay`):
/// `values[0]` while `step <= boundaries[0]`, `values[i]` while
/// `boundaries[i-1] < step <= boundaries[i]`, and `values.last` after the last boundary.
public struct PiecewiseConstantDecay: LearningRateSchedule, Sendable {
    /// Increasing step boundaries.
    public let boundaries: [Int]
    /// One more value than boundaries.
    public let values: [Float]

    /// A piecewise-constant schedule; throws unless `values` has one more element than the
    /// increasing `boundaries`.
    public init(boundaries: [Int], values: [Float]) throws {
        try require(values.count == boundaries.count + 1, "PiecewiseConstantDecay",
                    "values must have one more element than boundaries; found \(boundaries.count) boundaries and \(values.count) values")
        try require(zip(boundaries, boundaries.dropFirst()).allSatisfy { $0 < $1 }, "PiecewiseConstantDecay",
                    "boundaries must increase, found \(boundaries)")
        self.boundaries = boundaries
        self.values = values
    }

    public func callAsFunction(_ step: Int) -> Float {
        for (i, boundary) in boundaries.enumerated() where step <= boundary { return values[i] }
        return values[values.count - 1]
    }
}

/// A polynomial ramp from `initialLearningRate` to `endLearningRate` over `decaySteps`
/// (Keras `PolynomialDecay`): `(initial - end) · (1 - step/decaySteps)^power + end`; after
/// `decaySteps` it stays at `end`, or with `cycle` the horizon grows to the next multiple of
/// `decaySteps`.
public struct PolynomialDecay: LearningRateSchedule, Sendable {
    /// The rate at step 0.
    public let initialLearningRate: Float
    /// Steps to reach `endLearningRate`.
    public let decaySteps: Int
    /// The final rate (Keras default 0.0001).
    public let endLearningRate: Float
    /// The polynomial's power (1: linear).
    public let power: Float
    /// Whether to restart beyond `decaySteps`.
    public let cycle: Bool

    /// A polynomial decay with Keras's defaults; throws when `decaySteps` is not positive.
    public init(initialLearningRate: Float, decaySteps: Int, endLearningRate: Float = 0.0001, power: Float = 1,
                cycle: Bool = false) throws {
        try require(decaySteps > 0, "PolynomialDecay", "decaySteps must be positive, found \(decaySteps)")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.endLearningRate = endLearningRate
        self.power = power
        self.cycle = cycle
    }

    public func callAsFunction(_ step: Int) -> Float {
        var s = Double(step)
        var horizon = Double(decaySteps)
        if cycle {
            // Keras: the multiplier is 1 at step 0, ceil(step / decaySteps) afterwards.
            horizon *= step == 0 ? 1 : (s / horizon).rounded(.up)
        } else {
            s = min(s, horizon)
        }
        let p = s / horizon
        let span = Double(initialLearningRate) - Double(endLearningRate)
        return Float(span * pow(1 - p, Double(power)) + Double(endLearningRate))
    }
}

/// `initialLearningRate / (1 + decayRate · step / decaySteps)`, the quotient floored when
/// `staircase` (Keras `InverseTimeDecay`).
public struct InverseTimeDecay: LearningRateSchedule, Sendable {
    /// The rate at step 0.
    public let initialLearningRate: Float
    /// The step scale of the decay.
    public let decaySteps: Int
    /// How fast the rate falls.
    public let decayRate: Float
    /// Whether the rate drops in whole steps of `decaySteps`.
    public let staircase: Bool

    /// An inverse-time decay; throws when `decaySteps` is not positive.
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) throws {
        try require(decaySteps > 0, "InverseTimeDecay", "decaySteps must be positive, found \(decaySteps)")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.staircase = staircase
    }

    public func callAsFunction(_ step: Int) -> Float {
        var p = Double(step) / Double(decaySteps)
        if staircase { p.round(.down) }
        return Float(Double(initialLearningRate) / (1 + Double(decayRate) * p))
    }
}

/// Cosine decay with optional linear warmup (Keras `CosineDecay`).
///
/// Without warmup: `initial · ((1 - alpha) · ½(1 + cos(π · min(step, decaySteps) / decaySteps)) + alpha)`.
/// With `warmupTarget`: a linear ramp from `initialLearningRate` to `warmupTarget` over
/// `warmupSteps`, then the cosine decay from `warmupTarget` over `decaySteps`.
public struct CosineDecay: LearningRateSchedule, Sendable {
    /// The rate at step 0.
    public let initialLearningRate: Float
    /// Steps of the cosine part.
    public let decaySteps: Int
    /// The final rate as a fraction of the rate the decay starts from.
    public let alpha: Float
    /// The rate reached at the end of the warmup (nil: no warmup).
    public let warmupTarget: Float?
    /// Steps of the linear warmup.
    public let warmupSteps: Int

    /// A cosine decay with Keras's defaults; throws when `decaySteps` is not positive or
    /// `warmupSteps` is negative.
    public init(initialLearningRate: Float, decaySteps: Int, alpha: Float = 0, warmupTarget: Float? = nil,
                warmupSteps: Int = 0) throws {
        try require(decaySteps > 0, "CosineDecay", "decaySteps must be positive, found \(decaySteps)")
        try require(warmupSteps >= 0, "CosineDecay", "warmupSteps must not be negative, found \(warmupSteps)")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.alpha = alpha
        self.warmupTarget = warmupTarget
        self.warmupSteps = warmupSteps
    }

    private func decayed(_ step: Double, from rate: Double) -> Double {
        let cosine = 0.5 * (1 + cos(Double.pi * step / Double(decaySteps)))
        return ((1 - Double(alpha)) * cosine + Double(alpha)) * rate
    }

    public func callAsFunction(_ step: Int) -> Float {
        guard let warmupTarget else {
            return Float(decayed(Double(min(step, decaySteps)), from: Double(initialLearningRate)))
        }
        let s = Double(min(step, decaySteps + warmupSteps))
        if s < Double(warmupSteps) {
            let fraction = s / Double(warmupSteps)
            return Float((Double(warmupTarget) - Double(initialLearningRate)) * fraction + Double(initialLearningRate))
        }
        return Float(decayed(s - Double(warmupSteps), from: Double(warmupTarget)))
    }
}

/// Cosine decay with warm restarts, SGDR (Keras `CosineDecayRestarts`): each period is `tMul`
/// times longer than the previous one (the first lasts `firstDecaySteps`) and starts from a rate
/// `mMul` times the previous period's.
public struct CosineDecayRestarts: LearningRateSchedule, Sendable {
    /// The rate at step 0.
    public let initialLearningRate: Float
    /// Steps of the first period.
    public let firstDecaySteps: Int
    /// Growth of each period's length (Keras default 2).
    public let tMul: Float
    /// Factor of each period's starting rate (Keras default 1).
    public let mMul: Float
    /// The lowest rate as a fraction of the period's starting rate.
    public let alpha: Float

    /// SGDR with Keras's defaults; throws when `firstDecaySteps` or `tMul` is not positive.
    public init(initialLearningRate: Float, firstDecaySteps: Int, tMul: Float = 2, mMul: Float = 1,
                alpha: Float = 0) throws {
        try require(firstDecaySteps > 0, "CosineDecayRestarts",
                    "firstDecaySteps must be positive, found \(firstDecaySteps)")
        try require(tMul > 0, "CosineDecayRestarts", "tMul must be positive, found \(tMul)")
        self.initialLearningRate = initialLearningRate
        self.firstDecaySteps = firstDecaySteps
        self.tMul = tMul
        self.mMul = mMul
        self.alpha = alpha
    }

    public func callAsFunction(_ step: Int) -> Float {
        var fraction = Double(step) / Double(firstDecaySteps)
        let t = Double(tMul)
        let restart: Double
        if tMul == 1 {
            restart = fraction.rounded(.down)
            fraction -= restart
        } else {
            // Periods 1, t, t², …: the restart index solves the geometric sum for `fraction`.
            restart = (log(1 - fraction * (1 - t)) / log(t)).rounded(.down)
            let sum = (1 - pow(t, restart)) / (1 - t)
            fraction = (fraction - sum) / pow(t, restart)
        }
        let cosine = 0.5 * pow(Double(mMul), restart) * (1 + cos(Double.pi * fraction))
        return Float(Double(initialLearningRate) * ((1 - Double(alpha)) * cosine + Double(alpha)))
    }
}
