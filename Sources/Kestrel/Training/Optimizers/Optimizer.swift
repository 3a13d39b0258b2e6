import CKestrelKernels
import Foundation

/// The base of every optimizer (Keras `keras.optimizers.Optimizer`).
///
/// An optimizer updates a model's flat parameter buffer from its flat gradient buffer, one
/// loop per trainable variable, with per-parameter state (slots) in flat buffers of its own.
/// A step runs as Keras's does: gradient accumulation (`gradientAccumulationSteps`), clipping
/// (`clipnorm` per variable, `clipvalue`, `globalClipnorm`), weight decay (`weightDecay`),
/// the optimizer's own update, then the weights' moving average (`useEMA`).
open class Optimizer {
    /// Keras's name, e.g. "adam".
    public let name: String
    /// The step size. With a `learningRateSchedule` it is the schedule's value at the current
    /// step, refreshed before each update.
    public var learningRate: Float
    /// A schedule giving the learning rate at each step (Keras passes a
    /// `LearningRateSchedule` as `learning_rate`); evaluated at `iterations` before each update.
    public var learningRateSchedule: (any LearningRateSchedule)? {
        didSet { if let learningRateSchedule { learningRate = learningRateSchedule(iterations) } }
    }
    /// Clip each variable's gradient to this L2 norm.
    public var clipnorm: Float?
    /// Clip each gradient element to ±this value.
    public var clipvalue: Float?
    /// Clip all gradients together to this global L2 norm.
    public var globalClipnorm: Float?
    /// Decoupled weight decay (Keras `weight_decay`, nil for none): before each update every
    /// trainable variable not excluded by `excludeFromWeightDecay` shrinks by
    /// `w -= w·weightDecay·learningRate`.
    public var weightDecay: Float?
    /// Whether to keep an exponential moving average of the trainable weights (Keras `use_ema`);
    /// `fit` copies the average into the model when it ends, as Keras's does.
    public var useEMA: Bool
    /// The average's momentum (Keras `ema_momentum`, 0.99):
    /// `average = m·average + (1 − m)·w` after each step (`average = w` after the first).
    public var emaMomentum: Float
    /// Copy the average into the model every this many steps (Keras `ema_overwrite_frequency`);
    /// nil copies it only when `fit` ends.
    public var emaOverwriteFrequency: Int?
    /// Update the weights every this many batches (at least 2) with the mean of their gradients
    /// (Keras `gradient_accumulation_steps`); nil updates after every batch.
    public var gradientAccumulationSteps: Int?
    /// Batches applied so far, accumulated ones included (Keras's `iterations` variable, the one
    /// saved with the optimizer).
    public internal(set) var appliedBatches: Int = 0
    /// Updates applied so far (Keras `iterations`): `appliedBatches` divided by the
    /// accumulation steps.
    public var iterations: Int { appliedBatches / accumulationSteps }

    /// The weight names (Keras `var_names`) excluded from weight decay: a variable is excluded
    /// when one of them occurs in its name ("bias" excludes every bias).
    public private(set) var weightDecayExclusions: [String] = []
    /// Which of the variables last passed to `apply` decay, cached by their names.
    private var decayCache: (names: [String], exclusions: [String], decays: [Bool]) = ([], [], [])

    /// Per-parameter state buffers, each as long as the parameter buffer: the subclass's
    /// `slotsPerParameter` first, then the base's own (moving average, gradient accumulator).
    var slots: [UnsafeMutablePointer<Float>] = []
    var slotCount = 0
    private var builtFor = -1

    /// An optimizer with Keras's common arguments.
    public init(name: String, learningRate: Float, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, weightDecay: Float? = nil, useEMA: Bool = false,
                emaMomentum: Float = 0.99, emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.name = name
        self.learningRate = learningRate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.globalClipnorm = globalClipnorm
        self.weightDecay = weightDecay
        self.useEMA = useEMA
        self.emaMomentum = emaMomentum
        self.emaOverwriteFrequency = emaOverwriteFrequency
        self.gradientAccumulationSteps = gradientAccumulationSteps
    }

    deinit { for s in slots { s.deallocate() } }

    /// Excludes from weight decay every trainable variable whose name contains one of `names`
    /// (Keras `exclude_from_weight_decay(var_names=...)`; names are the weights' own, e.g.
    /// "bias", "gamma", "beta", "embeddings").
    public func excludeFromWeightDecay(names: [String]) {
        weightDecayExclusions = names
    }

    /// Checks the base arguments as Keras's constructor does.
    open func validateArguments() throws {
        if let steps = gradientAccumulationSteps, steps < 2 {
            throw KestrelError.invalidArgument(
                "\(name): gradientAccumulationSteps must be an integer >= 2, got \(steps)")
        }
        if useEMA && !(0...1).contains(emaMomentum) {
            throw KestrelError.invalidArgument("\(name): emaMomentum must be in [0, 1], got \(emaMomentum)")
        }
        if useEMA, let f = emaOverwriteFrequency, f < 1 {
            throw KestrelError.invalidArgument("\(name): emaOverwriteFrequency must be >= 1 or nil, got \(f)")
        }
    }

    private var accumulationSteps: Int { max(gradientAccumulationSteps ?? 1, 1) }

    /// How many state buffers the optimizer keeps per parameter.
    open var slotsPerParameter: Int { 0 }

    /// Keras's names of the per-parameter state buffers, in slot order.
    open var slotNames: [String] { [] }

    /// The base's own state buffers, after the subclass's: Keras's "average" (`useEMA`) and
    /// "gradient_accumulator" (`gradientAccumulationSteps`).
    private var baseSlotNames: [String] {
        (useEMA ? ["average"] : []) + (accumulationSteps > 1 ? ["gradient_accumulator"] : [])
    }

    /// Every state buffer's name in slot order: `slotNames`, then "average" with `useEMA` and
    /// "gradient_accumulator" with `gradientAccumulationSteps`.
    public var stateSlotNames: [String] { slotNames + baseSlotNames }

    /// The length of each slot buffer: the model's parameter count once `compile`/`fit` has
    /// built the optimizer, 0 before.
    public var slotLength: Int { slotCount }

    /// Slot `index` (in `stateSlotNames` order), `slotLength` scalars laid out as the model's flat
    /// parameter buffer, so that `update` of a subclass in another module can read and write
    /// its state at `range` as the built-in optimizers do. Its lifetime is the optimizer's
    /// until it is rebuilt for another model; hold it only inside `update`.
    public final func slot(_ index: Int) -> UnsafeMutablePointer<Float> {
        precondition(slots.indices.contains(index),
                     "\(name): no slot \(index); \(slots.count) built (slotsPerParameter \(slotsPerParameter))")
        return slots[index]
    }

    /// The slot called `name` in `stateSlotNames` ("momentum", "velocity", "average", …), or nil
    /// when the optimizer has no such slot or is not built yet.
    public final func slot(named name: String) -> UnsafeMutablePointer<Float>? {
        guard let k = stateSlotNames.firstIndex(of: name), slots.indices.contains(k) else { return nil }
        return slots[k]
    }

    /// The initial value of each slot (Adagrad starts its accumulator at 0.1).
    open func initialSlotValue(_ slot: Int) -> Float { 0 }

    /// Allocates state for a parameter buffer of `count` scalars (once per model, and again
    /// when the slots change, e.g. after `useEMA` is switched on).
    func build(parameterCount count: Int) {
        let names = stateSlotNames
        guard builtFor != count || slots.count != names.count else { return }
        for s in slots { s.deallocate() }
        slots = (0..<names.count).map { k in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: k < slotsPerParameter ? initialSlotValue(k) : 0, count: max(count, 1))
            return p
        }
        slotCount = count
        builtFor = count
        appliedBatches = 0
    }

    /// Sets the step count from saved state (Keras's `iterations` variable, batches applied).
    func restore(appliedBatches count: Int) {
        appliedBatches = count
        if let learningRateSchedule { learningRate = learningRateSchedule(iterations) }
    }

    /// Applies one batch's gradients to each variable range of the buffers: accumulates them,
    /// or clips them (in place), decays the weights and updates them, then averages the
    /// weights. `names` are the variables' weight names, for `excludeFromWeightDecay`.
    func apply(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>,
               variables: [Range<Int>], names: [String] = []) {
        let steps = accumulationSteps
        // Keras's `iterations` before this batch: the step the schedule, the decay and the
        // average see.
        let step = iterations
        if steps > 1 {
            // The accumulator is the last slot (`stateSlotNames` would allocate here).
            let accumulated = slots[slots.count - 1]
            if (appliedBatches + 1) % steps != 0 {
                for v in variables { for i in v { accumulated[i] += gradients[i] } }
                averageWeights(parameters, variables: variables, step: step)
                appliedBatches += 1
                return
            }
            let scale = 1 / Float(steps)
            for v in variables {
                for i in v {
                    gradients[i] = (gradients[i] + accumulated[i]) * scale
                    accumulated[i] = 0
                }
            }
        }
        if let clipvalue {
            for v in variables { for i in v { gradients[i] = min(max(gradients[i], -clipvalue), clipvalue) } }
        }
        if let clipnorm {
            for v in variables { scale(gradients, v, toNorm: clipnorm, norm: norm(gradients, [v])) }
        }
        if let globalClipnorm {
            let n = norm(gradients, variables)
            for v in variables { scale(gradients, v, toNorm: globalClipnorm, norm: n) }
        }
        // Keras evaluates the schedule at the step count before it is incremented (0 first).
        if let learningRateSchedule { learningRate = learningRateSchedule(step) }
        if let weightDecay {
            let decays = decayingVariables(variables.count, names: names)
            let factor = weightDecay * learningRate
            for (v, range) in variables.enumerated() where decays[v] {
                kestrel_scale_in_place(parameters, range.lowerBound, range.upperBound, factor)
            }
        }
        // Counted first, so that the subclass sees `iterations` as this update's number, from 1.
        appliedBatches += 1
        for v in variables { update(parameters: parameters, gradients: gradients, range: v) }
        averageWeights(parameters, variables: variables, step: step)
    }

    /// Updates the moving average after batch `step` and copies it into the weights when due.
    private func averageWeights(_ w: UnsafeMutablePointer<Float>, variables: [Range<Int>], step: Int) {
        if useEMA {
            let average = slots[slotsPerParameter]
            let m = step == 0 ? 0 : emaMomentum
            for v in variables { for i in v { average[i] = m * average[i] + (1 - m) * w[i] } }
            if let f = emaOverwriteFrequency, f > 0, (step + 1) % f == 0 {
                for v in variables { (w + v.lowerBound).update(from: average + v.lowerBound, count: v.count) }
            }
        }
    }

    /// Copies the moving average into the weights (Keras `finalize_variable_values`, which
    /// `fit` calls when it ends); does nothing without `useEMA` or before the first step.
    /// When `SwapEMAWeights` left the average in the weights, the average takes them instead
    /// (as Keras's callback does after the last epoch), so the model keeps the average.
    func finalizeVariableValues(parameters w: UnsafeMutablePointer<Float>, variables: [Range<Int>]) {
        guard useEMA, appliedBatches > 0, slots.count > slotsPerParameter else { return }
        let average = slots[slotsPerParameter]
        for v in variables {
            if averageSwappedIn {
                (average + v.lowerBound).update(from: w + v.lowerBound, count: v.count)
            } else {
                (w + v.lowerBound).update(from: average + v.lowerBound, count: v.count)
            }
        }
        averageSwappedIn = false
    }

    /// Whether `SwapEMAWeights` has exchanged the weights and their average.
    var averageSwappedIn = false

    /// Exchanges the trainable weights and their moving average (`SwapEMAWeights`).
    func swapAverage(parameters w: UnsafeMutablePointer<Float>, variables: [Range<Int>]) {
        precondition(useEMA && slots.count > slotsPerParameter, "\(name): no moving average to swap")
        let average = slots[slotsPerParameter]
        for v in variables { for i in v { swap(&w[i], &average[i]) } }
        averageSwappedIn.toggle()
    }

    /// Whether each variable decays: true unless one of `weightDecayExclusions` occurs in its
    /// name. Recomputed only when the names or the exclusions change (`==` on the same array
    /// storage returns at once, so a training step does not allocate).
    private func decayingVariables(_ count: Int, names: [String]) -> [Bool] {
        if decayCache.names != names || decayCache.exclusions != weightDecayExclusions || decayCache.decays.count != count {
            let decays = (0..<count).map { v in
                v >= names.count || !weightDecayExclusions.contains { !$0.isEmpty && names[v].contains($0) }
            }
            decayCache = (names, weightDecayExclusions, decays)
        }
        return decayCache.decays
    }

    private func norm(_ g: UnsafeMutablePointer<Float>, _ ranges: [Range<Int>]) -> Float {
        var s: Double = 0
        for r in ranges { for i in r { s += Double(g[i]) * Double(g[i]) } }
        return Float(s.squareRoot())
    }

    private func scale(_ g: UnsafeMutablePointer<Float>, _ r: Range<Int>, toNorm limit: Float, norm: Float) {
        guard norm > limit else { return }
        let f = limit / norm
        for i in r { g[i] *= f }
    }

    /// Updates `parameters[range]` from `gradients[range]` for update `iterations` (starting at 1).
    open func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>,
                     range: Range<Int>) {
        preconditionFailure("\(type(of: self)) does not implement update")
    }
}

/// Stochastic gradient descent with optional (Nesterov) momentum (Keras `SGD`: lr 0.01,
/// momentum 0). Keras's form: `v = momentum·v - lr·g; w += v` (Nesterov: `w += momentum·v - lr·g`).
public final class SGD: Optimizer {
    /// The momentum factor.
    public var momentum: Float
    /// Whether to use Nesterov momentum.
    public var nesterov: Bool

    /// An SGD optimizer.
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.momentum = momentum
        self.nesterov = nesterov
        super.init(name: "SGD", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An SGD optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, momentum: Float = 0,
                            nesterov: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), momentum: momentum, nesterov: nesterov, clipnorm: clipnorm,
                  clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { momentum > 0 ? 1 : 0 }
    public override var slotNames: [String] { momentum > 0 ? ["momentum"] : [] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        kestrel_sgd(w, g, momentum > 0 ? slots[0] : nil, range.lowerBound, range.upperBound, learningRate, momentum,
                    nesterov ? 1 : 0)
    }
}

/// Adam (Keras `Adam`: lr 0.001, beta1 0.9, beta2 0.999, epsilon 1e-7), in Keras's
/// "epsilon hat" form: `alpha = lr·sqrt(1-β2^t)/(1-β1^t)`, `w -= alpha·m/(sqrt(v)+ε)`.
public class Adam: Optimizer {
    /// Decay of the first moment.
    public var beta1: Float
    /// Decay of the second moment.
    public var beta2: Float
    /// Added after the square root, not bias-corrected.
    public var epsilon: Float
    /// Whether to use the AMSGrad variant (maximum of past second moments).
    public var amsgrad: Bool

    /// An Adam optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                amsgrad: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        super.init(name: "adam", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An Adam optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, beta1: Float = 0.9,
                            beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false,
                            clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    init(name: String, learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool,
         clipnorm: Float?, clipvalue: Float?, globalClipnorm: Float?,
         weightDecay: Float?, useEMA: Bool, emaMomentum: Float,
         emaOverwriteFrequency: Int?, gradientAccumulationSteps: Int?) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        super.init(name: name, learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    public override var slotsPerParameter: Int { amsgrad ? 3 : 2 }
    public override var slotNames: [String] { amsgrad ? ["momentum", "velocity", "velocity_hat"] : ["momentum", "velocity"] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let t = Double(iterations)
        let alpha = Float(Double(learningRate) * (1 - pow(Double(beta2), t)).squareRoot() / (1 - pow(Double(beta1), t)))
        kestrel_adam(w, g, slots[0], slots[1], amsgrad ? slots[2] : nil, range.lowerBound, range.upperBound,
                     alpha, beta1, beta2, epsilon)
    }
}

/// Adam with decoupled weight decay (Keras `AdamW`): Adam whose `weightDecay` defaults to
/// 0.004, so each step first shrinks weights by `w -= w·weightDecay·lr`, then applies Adam.
public final class AdamW: Adam {
    /// An AdamW optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7, amsgrad: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        super.init(name: "adamw", learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                   amsgrad: amsgrad, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An AdamW optimizer whose learning rate follows `schedule` (the decay uses it too).
    public convenience init(learningRate schedule: any LearningRateSchedule, weightDecay: Float = 0.004,
                            beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false,
                            clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                            useEMA: Bool = false, emaMomentum: Float = 0.99, emaOverwriteFrequency: Int? = nil,
                            gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), weightDecay: weightDecay, beta1: beta1, beta2: beta2, epsilon: epsilon,
                  amsgrad: amsgrad, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  useEMA: useEMA, emaMomentum: emaMomentum, emaOverwriteFrequency: emaOverwriteFrequency,
                  gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }
}

/// RMSprop (Keras `RMSprop`: lr 0.001, rho 0.9, momentum 0, epsilon 1e-7, not centered):
/// `v = ρ·v + (1-ρ)·g²`, `w -= lr·g/sqrt(v + ε)` (ε inside the root, as Keras).
public final class RMSprop: Optimizer {
    /// Decay of the squared-gradient average.
    public var rho: Float
    /// Momentum applied to the increments.
    public var momentum: Float
    /// Added to the average before the square root.
    public var epsilon: Float
    /// Whether to subtract the squared mean gradient (centered RMSprop).
    public var centered: Bool

    /// An RMSprop optimizer with Keras's defaults (the default optimizer of `compile`).
    public init(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                centered: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        super.init(name: "rmsprop", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An RMSprop optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, rho: Float = 0.9, momentum: Float = 0,
                            epsilon: Float = 1e-7, centered: Bool = false, clipnorm: Float? = nil,
                            clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), rho: rho, momentum: momentum, epsilon: epsilon, centered: centered,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    // Slot 0: squared average; 1: momentum; 2: mean gradient (centered).
    public override var slotsPerParameter: Int { 3 }
    public override var slotNames: [String] { ["velocity", "momentum", "average_gradient"] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        kestrel_rmsprop(w, g, slots[0], slots[1], slots[2], range.lowerBound, range.upperBound, learningRate, rho,
                        momentum, epsilon, centered ? 1 : 0)
    }
}

/// Adagrad (Keras `Adagrad`: lr 0.001, initial accumulator 0.1, epsilon 1e-7):
/// `a += g²`, `w -= lr·g/sqrt(a + ε)`.
public final class Adagrad: Optimizer {
    /// The accumulator's starting value.
    public var initialAccumulatorValue: Float
    /// Added to the accumulator before the square root.
    public var epsilon: Float

    /// An Adagrad optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        super.init(name: "adagrad", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An Adagrad optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, initialAccumulatorValue: Float = 0.1,
                            epsilon: Float = 1e-7, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), initialAccumulatorValue: initialAccumulatorValue, epsilon: epsilon,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 1 }
    public override var slotNames: [String] { ["accumulator"] }
    public override func initialSlotValue(_ slot: Int) -> Float { initialAccumulatorValue }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        kestrel_adagrad(w, g, slots[0], range.lowerBound, range.upperBound, learningRate, epsilon)
    }
}
