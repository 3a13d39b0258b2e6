import CKestrelKernels

/// Gated recurrent unit over a sequence of feature vectors (Keras `GRU`).
///
/// Weights use Keras's layout and gate order (update z, reset r, candidate h): `kernel
/// (features, 3·units)`, `recurrent_kernel (units, 3·units)`, and `bias (2, 3·units)` (input
/// and recurrent biases) with `resetAfter`, Keras's default, or `bias (3·units)` without. Each
/// step computes `h = z · h₋₁ + (1 − z) · h̃`; with `resetAfter` the reset gate scales the
/// recurrent product, `h̃ = act(x·W_h + r · (h₋₁·U_h + b_h))` (cuDNN's convention and Keras 3's
/// default), without it the state before the product, `h̃ = act(x·W_h + (r · h₋₁)·U_h)`.
///
/// Forward projects every timestep's input with one matrix product, then runs the recurrent
/// products step by step; everything backward needs stays in the workspace, time-major.
public final class GRU: RecurrentLayer {
    /// The activation of the update and reset gates (Keras default sigmoid).
    public let recurrentActivation: ActivationFunction
    /// Whether the reset gate applies after the recurrent product (Keras default true).
    public let resetAfter: Bool

    /// A GRU layer with `units` hidden units and Keras's defaults.
    public init(_ units: Int, activation: ActivationFunction = .tanh, recurrentActivation: ActivationFunction = .sigmoid,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                recurrentInitializer: Initializer = .orthogonal, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, recurrentRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil,
                returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false,
                zeroOutputForMask: Bool = false, resetAfter: Bool = true, inputShape: [Int]? = nil, name: String? = nil) {
        self.recurrentActivation = recurrentActivation
        self.resetAfter = resetAfter
        super.init(units: units, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
                   regularizers: (kernelRegularizer, recurrentRegularizer, biasRegularizer),
                   constraints: (kernelConstraint, recurrentConstraint, biasConstraint),
                   dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, zeroOutputForMask: zeroOutputForMask,
                   inputShape: inputShape, name: name)
    }

    override func reversedCopy(name: String) -> RecurrentLayer {
        GRU(units, activation: activation, recurrentActivation: recurrentActivation, useBias: useBias,
            kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
            kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer, biasRegularizer: biasRegularizer,
            kernelConstraint: kernelConstraint, recurrentConstraint: recurrentConstraint, biasConstraint: biasConstraint,
            dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
            returnState: returnState, goBackwards: !goBackwards,
            zeroOutputForMask: zeroOutputForMask, resetAfter: resetAfter, name: name)
    }

    override var gateCount: Int { 3 }
    override var activationArguments: [(String, ActivationFunction)] {
        [("activation", activation), ("recurrentActivation", recurrentActivation)]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let features = shapes[0][1], g = 3 * units
        var specs = [WeightSpec(name: "kernel", shape: [features, g], initializer: kernelInitializer),
                     WeightSpec(name: "recurrent_kernel", shape: [units, g], initializer: recurrentInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: resetAfter ? [2, g] : [g], initializer: biasInitializer)) }
        return specs
    }

    override func stateWorkspaceSize(batch: Int, inputShapes: [[Int]]) -> Int {
        return Workspace.size(steps: inputShapes[0][0], batch: batch, features: inputShapes[0][1], units: units)
    }

    public override var config: [String: String] {
        recurrentConfig.merging(["recurrent_activation": recurrentActivation.kerasName, "reset_after": "\(resetAfter)"]) { $1 }
    }

    /// The workspace, time-major in reading order: step `s` of every sample is contiguous.
    struct Workspace {
        /// Inputs `(steps, batch, features)`.
        let x: UnsafeMutablePointer<Float>
        /// z, r and h̃ after their activations `(steps, batch, 3·units)`.
        let gates: UnsafeMutablePointer<Float>
        /// With `resetAfter` the recurrent candidate term `h₋₁·U_h + b_h` before the reset gate;
        /// without, the reset state `r · h₋₁` `(steps, batch, units)`.
        let candidate: UnsafeMutablePointer<Float>
        /// Hidden states `(steps + 1, batch, units)`; slot 0 is the initial state (zero unless given).
        let hidden: UnsafeMutablePointer<Float>
        /// Backward: gradients of the input projections' pre-activations `(steps, batch, 3·units)`.
        let inputSide: UnsafeMutablePointer<Float>
        /// Backward: gradients of the recurrent products `(steps, batch, 3·units)` (with
        /// `resetAfter`; without, only the candidate's third is written, the rest unused).
        let recurrentSide: UnsafeMutablePointer<Float>
        /// Forward: one step's recurrent product `(batch, 3·units)`; backward: the gradient
        /// flowing into the current hidden state `(batch, units)` and a scratch row block.
        let product: UnsafeMutablePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>,
            scratch: UnsafeMutablePointer<Float>
        /// Backward: input gradients `(steps, batch, features)`.
        let inputGradient: UnsafeMutablePointer<Float>

        static func size(steps t: Int, batch b: Int, features f: Int, units u: Int) -> Int {
            2 * t * b * f + 3 * t * b * 3 * u + t * b * u + (t + 1) * b * u + b * 3 * u + 2 * b * u
        }

        init(_ base: UnsafeMutablePointer<Float>, steps t: Int, batch b: Int, features f: Int, units u: Int) {
            x = base
            gates = x + t * b * f
            candidate = gates + t * b * 3 * u
            hidden = candidate + t * b * u
            inputSide = hidden + (t + 1) * b * u
            recurrentSide = inputSide + t * b * 3 * u
            product = recurrentSide + t * b * 3 * u
            hiddenGradient = product + b * 3 * u
            scratch = hiddenGradient + b * u
            inputGradient = scratch + b * u
        }
    }

    /// Keras's default GRU (reset after, sigmoid gates, tanh) runs its gate loops as fused C passes.
    private var fusedGates: Bool { resetAfter && recurrentActivation == .sigmoid && activation == .tanh }

    public override func forward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units, g = 3 * u
        let w = Workspace(c.workspace, steps: t, batch: b, features: f, units: u)
        projectInputs(c, into: w.x, projections: w.gates, columns: g)
        let recurrent = c.weights[1]
        let inputBias: UnsafeMutablePointer<Float>? = useBias ? c.weights[2] : nil
        let recurrentBias: UnsafeMutablePointer<Float>? = useBias && resetAfter ? c.weights[2] + g : nil
        writeInitialStates(c, hidden: w.hidden)
        let mask = stepMask(c), candidateMask = recurrentMask(c, gate: 2), initial = hasInitialState(c)
        for s in 0..<t {
            let z = w.gates + s * b * g, previous = w.hidden + s * b * u, next = w.hidden + (s + 1) * b * u
            defer { carryMaskedStates(mask, step: s, batch: b, previous: previous, next: next, width: u) }
            let candidate = w.candidate + s * b * u
            // The recurrent product for z and r (and, with resetAfter, h̃); zero at the first step
            // unless the call starts from given states.
            let gates = resetAfter ? 3 : 2
            if s > 0 || initial {
                addRecurrentProduct(c, state: previous, into: w.product, columns: g, gates: 0..<gates, beta: 0)
            } else {
                for r in 0..<b { (w.product + r * g).update(repeating: 0, count: gates * u) }
            }
            if fusedGates {
                kestrel_gru_forward_gates(z, inputBias, w.product, recurrentBias, previous, candidate, next, b, u)
                continue
            }
            for r in 0..<b {
                let zr = z + r * g, pr = w.product + r * g
                if let inputBias { for j in 0..<g { zr[j] += inputBias[j] } }
                if let recurrentBias { for j in 0..<g { pr[j] += recurrentBias[j] } }
                for j in 0..<(2 * u) { zr[j] += pr[j] }
                recurrentActivation.apply(zr, zr, count: 2 * u, rowLength: 2 * u)
                if resetAfter {
                    let cr = candidate + r * u
                    for j in 0..<u {
                        cr[j] = pr[2 * u + j]
                        zr[2 * u + j] += zr[u + j] * cr[j]
                    }
                } else {
                    // The reset state r · h₋₁ (with recurrent dropout, h̃'s mask too).
                    let cr = candidate + r * u, hp = previous + r * u
                    for j in 0..<u { cr[j] = zr[u + j] * hp[j] }
                    if let m = candidateMask { for j in 0..<u { cr[j] *= m[r * u + j] } }
                }
            }
            if !resetAfter {
                // h̃'s pre-activation gains (r · h₋₁)·U_h.
                Kernels.gemm(transposeA: false, transposeB: false, m: b, n: u, k: u, alpha: 1, a: candidate, lda: u,
                             b: recurrent + 2 * u, ldb: g, beta: 1, c: z + 2 * u, ldc: g)
            }
            for r in 0..<b {
                let zr = z + r * g, hp = previous + r * u, h = next + r * u
                activation.apply(zr + 2 * u, zr + 2 * u, count: u, rowLength: u)
                for j in 0..<u { h[j] = zr[j] * hp[j] + (1 - zr[j]) * zr[2 * u + j] }
            }
        }
        writeOutput(fromHidden: w.hidden, c)
        writeFinalStates(c, hidden: w.hidden + t * b * u)
    }

    public override func backward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units, g = 3 * u
        let w = Workspace(c.workspace, steps: t, batch: b, features: f, units: u)
        let recurrent = c.weights[1], dh = w.hiddenGradient
        seedStateGradients(c, hidden: dh)
        let mask = stepMask(c), candidateMask = recurrentMask(c, gate: 2), initial = hasInitialState(c)
        for s in stride(from: t - 1, through: 0, by: -1) {
            addOutputGradient(step: s, c, into: dh)
            let z = w.gates + s * b * g, previous = w.hidden + s * b * u, candidate = w.candidate + s * b * u
            let di = w.inputSide + s * b * g, dr = w.recurrentSide + s * b * g
            keepMaskedGradients(mask, step: s, c, saving: true, dh)
            // A masked sample's step did nothing: its gate gradients are zero and its state
            // gradient passes on unchanged (the recurrent products below then add zero to it).
            defer { keepMaskedGradients(mask, step: s, c, saving: false, dh) }
            if fusedGates {
                kestrel_gru_backward_gates(z, candidate, previous, dh, di, dr, b, u)
                zeroMaskedGateGradients(mask, step: s, batch: b, di, dr, width: g, stride: g)
                if s > 0 || initial { recurrentStateGradient(c, dr, into: dh, columns: g, accumulate: true) }
                continue
            }
            // h = z·h₋₁ + (1 − z)·h̃: the gradients of z and h̃, then of h̃'s pre-activation.
            for r in 0..<b {
                let zr = z + r * g, dir = di + r * g, dhr = dh + r * u, hp = previous + r * u
                for j in 0..<u {
                    dir[j] = dhr[j] * (hp[j] - zr[2 * u + j])
                    dir[2 * u + j] = dhr[j] * (1 - zr[j])
                    dhr[j] *= zr[j]   // the direct path to h₋₁
                }
                activation.backward(x: nil, y: zr + 2 * u, dy: dir + 2 * u, dx: dir + 2 * u, count: u, rowLength: u)
            }
            if resetAfter {
                // h̃ = act(x_h + r · c), c = h₋₁·U_h + b_h.
                for r in 0..<b {
                    let zr = z + r * g, dir = di + r * g, drr = dr + r * g, cr = candidate + r * u
                    for j in 0..<u {
                        dir[u + j] = dir[2 * u + j] * cr[j]
                        drr[2 * u + j] = dir[2 * u + j] * zr[u + j]
                    }
                }
            } else {
                // h̃ = act(x_h + (r · h₋₁)·U_h): the reset state's gradient, to r and to h₋₁.
                Kernels.gemm(transposeA: false, transposeB: true, m: b, n: u, k: u, alpha: 1, a: di + 2 * u, lda: g,
                             b: recurrent + 2 * u, ldb: g, beta: 0, c: w.scratch, ldc: u)
                for r in 0..<b {
                    let zr = z + r * g, dir = di + r * g, dhr = dh + r * u, hp = previous + r * u, ds = w.scratch + r * u
                    if let m = candidateMask { for j in 0..<u { ds[j] *= m[r * u + j] } }
                    for j in 0..<u {
                        dir[u + j] = ds[j] * hp[j]
                        dhr[j] += ds[j] * zr[u + j]
                    }
                }
            }
            for r in 0..<b {
                let zr = z + r * g, dir = di + r * g
                recurrentActivation.backward(x: nil, y: zr, dy: dir, dx: dir, count: 2 * u, rowLength: 2 * u)
                if resetAfter {
                    let drr = dr + r * g
                    for j in 0..<(2 * u) { drr[j] = dir[j] }
                }
            }
            zeroMaskedGateGradients(mask, step: s, batch: b, di, dr, width: g, stride: g)
            guard s > 0 || initial else { continue }
            // h₋₁'s gradient through the recurrent products.
            if resetAfter {
                recurrentStateGradient(c, dr, into: dh, columns: g, accumulate: true)
            } else {
                recurrentStateGradient(c, di, into: dh, columns: g, gates: 0..<2, accumulate: true)
            }
        }
        writeInitialStateGradients(c, hidden: dh)
        // The input biases are the first row of a reset-after GRU's bias, the recurrent ones the second.
        inputSideGradients(c, x: w.x, gradients: w.inputSide, columns: g, scratch: w.inputGradient)
        if resetAfter {
            recurrentKernelGradient(c, states: w.hidden, gradients: w.recurrentSide, columns: g, stride: g)
            if useBias {
                Kernels.columnSums(w.recurrentSide, rows: t * b, columns: g, into: c.weightGradients[2] + g,
                                   accumulate: c.accumulateWeightGradients)
            }
        } else {
            // z and r multiplied the previous state, h̃ the reset state.
            recurrentKernelGradient(c, states: w.hidden, gradients: w.inputSide, columns: 2 * u, stride: g)
            recurrentKernelGradient(c, states: w.candidate, gradients: w.inputSide + 2 * u, columns: u, stride: g, column: 2 * u,
                                    statesDropped: true)
        }
    }
}
