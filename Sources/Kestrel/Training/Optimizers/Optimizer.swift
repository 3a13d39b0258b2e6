import CKestrelKernels
import Foundation

/// The base of every optimizer (Keras `keras.optimizers.Optimizer`).
///
/// An optimizer updates a model's flat parameter buffer from its flat gradient buffer, one
/// loop per trainable variable, with per-parameter state (slots) in flat buffers of its own.
/// Gradient clipping (`clipnorm` per variable, `clipvalue`, `globalClipnorm`) runs first.
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
    /// Steps applied so far (Keras `iterations`).
    public internal(set) var iterations: Int = 0

    /// Per-parameter state buffers, each as long as the parameter buffer.
    var slots: [UnsafeMutablePointer<Float>] = []
    var slotCount = 0
    private var builtFor = -1

    /// An optimizer with Keras's common arguments.
    public init(name: String, learningRate: Float, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil) {
        self.name = name
        self.learningRate = learningRate
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.globalClipnorm = globalClipnorm
    }

    deinit { for s in slots { s.deallocate() } }

    /// How many state buffers the optimizer keeps per parameter.
    open var slotsPerParameter: Int { 0 }

    /// Keras's names of the per-parameter state buffers, in slot order.
    open var slotNames: [String] { [] }

    /// The length of each slot buffer: the model's parameter count once `compile`/`fit` has
    /// built the optimizer, 0 before.
    public var slotLength: Int { slotCount }

    /// Slot `index` (in `slotNames` order), `slotLength` scalars laid out as the model's flat
    /// parameter buffer, so that `update` of a subclass in another module can read and write
    /// its state at `range` as the built-in optimizers do. Its lifetime is the optimizer's
    /// until it is rebuilt for another model; hold it only inside `update`.
    public final func slot(_ index: Int) -> UnsafeMutablePointer<Float> {
        precondition(slots.indices.contains(index),
                     "\(name): no slot \(index); \(slots.count) built (slotsPerParameter \(slotsPerParameter))")
        return slots[index]
    }

    /// The slot called `name` in `slotNames` ("momentum", "velocity", …), or nil when the
    /// optimizer has no such slot or is not built yet.
    public final func slot(named name: String) -> UnsafeMutablePointer<Float>? {
        guard let k = slotNames.firstIndex(of: name), slots.indices.contains(k) else { return nil }
        return slots[k]
    }

    /// The initial value of each slot (Adagrad starts its accumulator at 0.1).
    open func initialSlotValue(_ slot: Int) -> Float { 0 }

    /// Allocates state for a parameter buffer of `count` scalars (once per model).
    func build(parameterCount count: Int) {
        guard builtFor != count else { return }
        for s in slots { s.deallocate() }
        slots = (0..<slotsPerParameter).map { k in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: initialSlotValue(k), count: max(count, 1))
            return p
        }
        slotCount = count
        builtFor = count
        iterations = 0
    }

    /// Clips and applies one step to each variable range of the buffers.
    func apply(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>,
               variables: [Range<Int>]) {
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
        if let learningRateSchedule { learningRate = learningRateSchedule(iterations) }
        iterations += 1
        for v in variables { update(parameters: parameters, gradients: gradients, range: v) }
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

    /// Updates `parameters[range]` from `gradients[range]` for step `iterations` (starting at 1).
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
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.momentum = momentum
        self.nesterov = nesterov
        super.init(name: "SGD", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm)
    }

    /// An SGD optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, momentum: Float = 0,
                            nesterov: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil) {
        self.init(learningRate: schedule(0), momentum: momentum, nesterov: nesterov, clipnorm: clipnorm,
                  clipvalue: clipvalue, globalClipnorm: globalClipnorm)
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
                amsgrad: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        super.init(name: "adam", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm)
    }

    /// An Adam optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, beta1: Float = 0.9,
                            beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false,
                            clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.init(learningRate: schedule(0), beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
        learningRateSchedule = schedule
    }

    init(name: String, learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool,
         clipnorm: Float?, clipvalue: Float?, globalClipnorm: Float?) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.amsgrad = amsgrad
        super.init(name: name, learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm)
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

/// Adam with decoupled weight decay (Keras `AdamW`, weight decay 0.004): each step first
/// shrinks weights by `w -= w·weightDecay·lr`, then applies Adam.
public final class AdamW: Adam {
    /// The decoupled weight-decay factor.
    public var weightDecay: Float

    /// An AdamW optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7, amsgrad: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil,
                globalClipnorm: Float? = nil) {
        self.weightDecay = weightDecay
        super.init(name: "adamw", learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                   amsgrad: amsgrad, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
    }

    /// An AdamW optimizer whose learning rate follows `schedule` (the decay uses it too).
    public convenience init(learningRate schedule: any LearningRateSchedule, weightDecay: Float = 0.004,
                            beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false,
                            clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.init(learningRate: schedule(0), weightDecay: weightDecay, beta1: beta1, beta2: beta2, epsilon: epsilon,
                  amsgrad: amsgrad, clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
        learningRateSchedule = schedule
    }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        kestrel_scale_in_place(w, range.lowerBound, range.upperBound, weightDecay * learningRate)
        super.update(parameters: w, gradients: g, range: range)
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
                centered: Bool = false, clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        super.init(name: "rmsprop", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm)
    }

    /// An RMSprop optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, rho: Float = 0.9, momentum: Float = 0,
                            epsilon: Float = 1e-7, centered: Bool = false, clipnorm: Float? = nil,
                            clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.init(learningRate: schedule(0), rho: rho, momentum: momentum, epsilon: epsilon, centered: centered,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
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
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil) {
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        super.init(name: "adagrad", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm)
    }

    /// An Adagrad optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, initialAccumulatorValue: Float = 0.1,
                            epsilon: Float = 1e-7, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil) {
        self.init(learningRate: schedule(0), initialAccumulatorValue: initialAccumulatorValue, epsilon: epsilon,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm)
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
