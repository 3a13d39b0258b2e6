import Foundation

/// Adamax, Adam with the infinity norm (Keras `Adamax`: lr 0.001, beta1 0.9, beta2 0.999,
/// epsilon 1e-7): `m += (g − m)(1 − β1)`, `u = max(β2·u, |g|)`, `w −= lr·m / ((1 − β1^t)(u + ε))`.
public final class Adamax: Optimizer {
    /// Decay of the first moment.
    public var beta1: Float
    /// Decay of the infinity norm.
    public var beta2: Float
    /// Added to the norm.
    public var epsilon: Float

    /// An Adamax optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        (self.beta1, self.beta2, self.epsilon) = (beta1, beta2, epsilon)
        super.init(name: "adamax", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An Adamax optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-7, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), beta1: beta1, beta2: beta2, epsilon: epsilon, clipnorm: clipnorm,
                  clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 2 }
    public override var slotNames: [String] { ["momentum", "norm"] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let m = slots[0], u = slots[1], (b1, b2, eps) = (beta1, beta2, epsilon)
        let step = learningRate / (1 - pow(b1, Float(iterations)))
        for i in range {
            m[i] += (g[i] - m[i]) * (1 - b1)
            u[i] = max(b2 * u[i], abs(g[i]))
            w[i] -= step * m[i] / (u[i] + eps)
        }
    }
}

/// Nadam, Adam with Nesterov momentum and Keras's momentum schedule (Keras `Nadam`: lr 0.001,
/// beta1 0.9, beta2 0.999, epsilon 1e-7): `μₜ = β1(1 − ½·0.96ᵗ)`,
/// `m̂ = μₜ₊₁·m / (1 − Πμ₁…μₜ₊₁) + (1 − μₜ)·g / (1 − Πμ₁…μₜ)`, `w −= lr·m̂ / (√(v / (1 − β2ᵗ)) + ε)`.
public final class Nadam: Optimizer {
    /// Decay of the first moment (before the momentum schedule).
    public var beta1: Float
    /// Decay of the second moment.
    public var beta2: Float
    /// Added after the square root.
    public var epsilon: Float
    /// `Πμ₁…μₜ` at step `productStep` (Keras's `u_product` variable), kept across the
    /// variables of a step; recomputed when the step count was set from saved state.
    private var product: Float = 1, productStep = 0

    /// A Nadam optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        (self.beta1, self.beta2, self.epsilon) = (beta1, beta2, epsilon)
        super.init(name: "nadam", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// A Nadam optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-7, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), beta1: beta1, beta2: beta2, epsilon: epsilon, clipnorm: clipnorm,
                  clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 2 }
    public override var slotNames: [String] { ["momentum", "velocity"] }

    /// The momentum schedule's `μₜ`.
    private func mu(_ t: Int) -> Float { beta1 * (1 - 0.5 * pow(Float(0.96), Float(t))) }

    /// The momentum schedule's product `Πμ₁…μₜ` after step `t` (Keras's `u_product`), in float32
    /// step by step as Keras's variable accumulates it.
    public func momentumProduct(_ t: Int) -> Float {
        if productStep > t { (product, productStep) = (1, 0) }
        while productStep < t {
            productStep += 1
            product *= mu(productStep)
        }
        return product
    }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let t = iterations, m = slots[0], v = slots[1], (b1, b2, eps) = (beta1, beta2, epsilon)
        let muT = mu(t), muNext = mu(t + 1), productT = momentumProduct(t), productNext = productT * muNext
        let secondCorrection = 1 - pow(b2, Float(t))
        for i in range {
            m[i] += (g[i] - m[i]) * (1 - b1)
            v[i] += (g[i] * g[i] - v[i]) * (1 - b2)
            let mHat = muNext * m[i] / (1 - productNext) + (1 - muT) * g[i] / (1 - productT)
            w[i] -= learningRate * mHat / ((v[i] / secondCorrection).squareRoot() + eps)
        }
    }
}

/// Adadelta (Keras `Adadelta`: lr 0.001, rho 0.95, epsilon 1e-7): step sizes from running
/// averages of squared gradients and squared updates, `Δ = −√(D + ε)·g / √(G + ε)`, `w += lr·Δ`.
public final class Adadelta: Optimizer {
    /// Decay of both running averages.
    public var rho: Float
    /// Added inside both square roots.
    public var epsilon: Float

    /// An Adadelta optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7, clipnorm: Float? = nil,
                clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        (self.rho, self.epsilon) = (rho, epsilon)
        super.init(name: "adadelta", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An Adadelta optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, rho: Float = 0.95, epsilon: Float = 1e-7,
                            clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), rho: rho, epsilon: epsilon, clipnorm: clipnorm, clipvalue: clipvalue,
                  globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 2 }
    public override var slotNames: [String] { ["accumulated_grad", "accumulated_delta_var"] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let grads = slots[0], deltas = slots[1], (r, eps) = (rho, epsilon)
        for i in range {
            grads[i] = r * grads[i] + (1 - r) * g[i] * g[i]
            let delta = -(deltas[i] + eps).squareRoot() * g[i] / (grads[i] + eps).squareRoot()
            deltas[i] = r * deltas[i] + (1 - r) * delta * delta
            w[i] += learningRate * delta
        }
    }
}

/// Lion, sign momentum (Keras `Lion`: lr 0.001, beta1 0.9, beta2 0.99):
/// `w −= lr·sign(β1·m + (1 − β1)·g)`, then `m = β2·m + (1 − β2)·g`.
public final class Lion: Optimizer {
    /// The interpolation between momentum and gradient that gives the step's sign.
    public var beta1: Float
    /// Decay of the momentum.
    public var beta2: Float

    /// A Lion optimizer with Keras's defaults (Lion wants a learning rate 3–10× smaller than Adam's).
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.99, clipnorm: Float? = nil,
                clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        (self.beta1, self.beta2) = (beta1, beta2)
        super.init(name: "lion", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// A Lion optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.99,
                            clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), beta1: beta1, beta2: beta2, clipnorm: clipnorm, clipvalue: clipvalue,
                  globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 1 }
    public override var slotNames: [String] { ["momentum"] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let m = slots[0], (b1, b2) = (beta1, beta2)
        for i in range {
            let direction = b1 * m[i] + (1 - b1) * g[i]
            w[i] -= learningRate * (direction > 0 ? 1 : (direction < 0 ? -1 : 0))
            m[i] = b2 * m[i] + (1 - b2) * g[i]
        }
    }
}

/// Lamb, Adam with a layer-wise trust ratio (Keras `Lamb`: lr 0.001, beta1 0.9, beta2 0.999,
/// epsilon 1e-7): Adam's bias-corrected step `u = m̂ / (√v̂ + ε)` is scaled per variable by
/// `‖w‖ / ‖u‖` (1 when either norm is 0), `w −= lr·(‖w‖/‖u‖)·u`.
public final class Lamb: Optimizer {
    /// Decay of the first moment.
    public var beta1: Float
    /// Decay of the second moment.
    public var beta2: Float
    /// Added after the square root.
    public var epsilon: Float

    /// A Lamb optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        (self.beta1, self.beta2, self.epsilon) = (beta1, beta2, epsilon)
        super.init(name: "lamb", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// A Lamb optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, beta1: Float = 0.9, beta2: Float = 0.999,
                            epsilon: Float = 1e-7, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), beta1: beta1, beta2: beta2, epsilon: epsilon, clipnorm: clipnorm,
                  clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 2 }
    public override var slotNames: [String] { ["momentum", "velocity"] }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let m = slots[0], v = slots[1], (b1, b2, eps) = (beta1, beta2, epsilon)
        let t = Float(iterations)
        let firstCorrection = 1 - pow(b1, t), secondCorrection = 1 - pow(b2, t)
        // The moments first, with both norms; the step's elements are recomputed in the second
        // pass rather than kept in a buffer.
        var weightSquares: Double = 0, stepSquares: Double = 0
        for i in range {
            m[i] += (g[i] - m[i]) * (1 - b1)
            v[i] += (g[i] * g[i] - v[i]) * (1 - b2)
            let step = (m[i] / firstCorrection) / ((v[i] / secondCorrection).squareRoot() + eps)
            weightSquares += Double(w[i]) * Double(w[i])
            stepSquares += Double(step) * Double(step)
        }
        let ratio = weightSquares > 0 && stepSquares > 0 ? Float((weightSquares / stepSquares).squareRoot()) : 1
        let scale = ratio * learningRate
        for i in range {
            w[i] -= scale * ((m[i] / firstCorrection) / ((v[i] / secondCorrection).squareRoot() + eps))
        }
    }
}

/// FTRL-Proximal, "follow the regularized leader" (Keras `Ftrl`: lr 0.001, learning-rate power
/// −0.5, initial accumulator 0.1, no L1/L2/shrinkage, beta 0), the online-learning optimizer
/// for wide, sparse models: per weight an accumulator `n += g²` and a linear term `z`, from
/// which the weight is solved in closed form, `w = (clip(z, ±l1) − z) / (n^−p/lr + 2·l2)`.
public final class Ftrl: Optimizer {
    /// The power `p` of the accumulator in the per-weight step size (≤ 0; −0.5 is Adagrad's).
    public var learningRatePower: Float
    /// The accumulator's starting value (≥ 0).
    public var initialAccumulatorValue: Float
    /// L1 strength (≥ 0): weights whose `|z|` stays below it are exactly 0.
    public var l1RegularizationStrength: Float
    /// L2 strength (≥ 0) of the stabilization penalty.
    public var l2RegularizationStrength: Float
    /// L2 strength (≥ 0) of the magnitude penalty, added to the gradient as `2·s·w`.
    public var l2ShrinkageRegularizationStrength: Float
    /// Keras's `beta`, added to the L2 strength as `beta / (2·lr)`.
    public var beta: Float

    /// An FTRL optimizer with Keras's defaults.
    public init(learningRate: Float = 0.001, learningRatePower: Float = -0.5, initialAccumulatorValue: Float = 0.1,
                l1RegularizationStrength: Float = 0, l2RegularizationStrength: Float = 0,
                l2ShrinkageRegularizationStrength: Float = 0, beta: Float = 0,
                clipnorm: Float? = nil, clipvalue: Float? = nil, globalClipnorm: Float? = nil,
                weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.learningRatePower = learningRatePower
        self.initialAccumulatorValue = initialAccumulatorValue
        self.l1RegularizationStrength = l1RegularizationStrength
        self.l2RegularizationStrength = l2RegularizationStrength
        self.l2ShrinkageRegularizationStrength = l2ShrinkageRegularizationStrength
        self.beta = beta
        super.init(name: "ftrl", learningRate: learningRate, clipnorm: clipnorm, clipvalue: clipvalue,
                   globalClipnorm: globalClipnorm,
                   weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                   emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
    }

    /// An FTRL optimizer whose learning rate follows `schedule`.
    public convenience init(learningRate schedule: any LearningRateSchedule, learningRatePower: Float = -0.5,
                            initialAccumulatorValue: Float = 0.1, l1RegularizationStrength: Float = 0,
                            l2RegularizationStrength: Float = 0, l2ShrinkageRegularizationStrength: Float = 0,
                            beta: Float = 0, clipnorm: Float? = nil, clipvalue: Float? = nil,
                            globalClipnorm: Float? = nil,
                            weightDecay: Float? = nil, useEMA: Bool = false, emaMomentum: Float = 0.99,
                            emaOverwriteFrequency: Int? = nil, gradientAccumulationSteps: Int? = nil) {
        self.init(learningRate: schedule(0), learningRatePower: learningRatePower,
                  initialAccumulatorValue: initialAccumulatorValue, l1RegularizationStrength: l1RegularizationStrength,
                  l2RegularizationStrength: l2RegularizationStrength,
                  l2ShrinkageRegularizationStrength: l2ShrinkageRegularizationStrength, beta: beta,
                  clipnorm: clipnorm, clipvalue: clipvalue, globalClipnorm: globalClipnorm,
                  weightDecay: weightDecay, useEMA: useEMA, emaMomentum: emaMomentum,
                  emaOverwriteFrequency: emaOverwriteFrequency, gradientAccumulationSteps: gradientAccumulationSteps)
        learningRateSchedule = schedule
    }

    public override var slotsPerParameter: Int { 2 }
    public override var slotNames: [String] { ["accumulator", "linear"] }
    public override func initialSlotValue(_ slot: Int) -> Float { slot == 0 ? initialAccumulatorValue : 0 }

    /// Keras's checks: the accumulator and the strengths non-negative, the power not positive.
    public override func validateArguments() throws {
        try super.validateArguments()
        for (argument, value) in [("initialAccumulatorValue", initialAccumulatorValue),
                                  ("l1RegularizationStrength", l1RegularizationStrength),
                                  ("l2RegularizationStrength", l2RegularizationStrength),
                                  ("l2ShrinkageRegularizationStrength", l2ShrinkageRegularizationStrength)] where value < 0 {
            throw KestrelError.invalidArgument("\(name): \(argument) must be positive or zero, got \(value)")
        }
        if learningRatePower > 0 {
            throw KestrelError.invalidArgument("\(name): learningRatePower must be negative or zero, got \(learningRatePower)")
        }
    }

    public override func update(parameters w: UnsafeMutablePointer<Float>, gradients g: UnsafeMutablePointer<Float>,
                                range: Range<Int>) {
        let n = slots[0], z = slots[1], lr = learningRate, power = -learningRatePower
        let l1 = l1RegularizationStrength, l2 = l2RegularizationStrength + beta / (2 * lr)
        let shrinkage = 2 * l2ShrinkageRegularizationStrength
        // Keras's default power −0.5 is a square root; pow only for the others.
        func raised(_ x: Float) -> Float { power == 0.5 ? x.squareRoot() : pow(x, power) }
        for i in range {
            let grad = g[i] + shrinkage * w[i]
            let newN = n[i] + g[i] * g[i]
            let newRoot = raised(newN)
            z[i] += grad - (newRoot - raised(n[i])) / lr * w[i]
            n[i] = newN
            let quadratic = newRoot / lr + 2 * l2
            w[i] = (min(max(z[i], -l1), l1) - z[i]) / quadratic
        }
    }
}
