/// A fully connected recurrent layer, `h = act(x·W + h₋₁·U + b)` at each step (Keras
/// `SimpleRNN`). Weights use Keras's layout: `kernel (features, units)`, `recurrent_kernel
/// (units, units)`, `bias (units)`.
public final class SimpleRNN: RecurrentLayer {
    /// A SimpleRNN layer with `units` hidden units and Keras's defaults.
    public init(_ units: Int, activation: ActivationFunction = .tanh, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal,
                biasInitializer: Initializer = .zeros, kernelRegularizer: Regularizer? = nil, recurrentRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil,
                returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false,
                zeroOutputForMask: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(units: units, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
                   regularizers: (kernelRegularizer, recurrentRegularizer, biasRegularizer),
                   constraints: (kernelConstraint, recurrentConstraint, biasConstraint),
                   dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, zeroOutputForMask: zeroOutputForMask,
                   inputShape: inputShape, name: name)
    }

    override func reversedCopy(name: String) -> RecurrentLayer {
        SimpleRNN(units, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                  recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
                  kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer, biasRegularizer: biasRegularizer,
                  kernelConstraint: kernelConstraint, recurrentConstraint: recurrentConstraint, biasConstraint: biasConstraint,
                  dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                  returnState: returnState, goBackwards: !goBackwards, zeroOutputForMask: zeroOutputForMask, name: name)
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        var specs = [WeightSpec(name: "kernel", shape: [shapes[0][1], units], initializer: kernelInitializer),
                     WeightSpec(name: "recurrent_kernel", shape: [units, units], initializer: recurrentInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [units], initializer: biasInitializer)) }
        return specs
    }

    override func stateWorkspaceSize(batch: Int, inputShapes: [[Int]]) -> Int {
        let t = inputShapes[0][0], f = inputShapes[0][1], b = batch, u = units
        return 2 * t * b * f + (t + 1) * b * u + t * b * u + b * u
    }

    public override var config: [String: String] { recurrentConfig }

    /// The workspace, time-major: inputs and input gradients `(steps, batch, features)`, hidden
    /// states `(steps + 1, batch, units)` with the initial state in slot 0, the
    /// pre-activation gradients `(steps, batch, units)` and the gradient flowing into the
    /// current state `(batch, units)`.
    private func parts(_ c: LayerContext) -> (x: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>,
                                             preGradient: UnsafeMutablePointer<Float>, hiddenGradient: UnsafeMutablePointer<Float>,
                                             inputGradient: UnsafeMutablePointer<Float>) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units
        let x = c.workspace, hidden = x + t * b * f, preGradient = hidden + (t + 1) * b * u
        let hiddenGradient = preGradient + t * b * u
        return (x, hidden, preGradient, hiddenGradient, hiddenGradient + b * u)
    }

    public override func forward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], b = c.batch, u = units
        let w = parts(c)
        writeInitialStates(c, hidden: w.hidden)
        let initial = hasInitialState(c)
        // Every step's input projection at once, into the state slots the steps then complete.
        projectInputs(c, into: w.x, projections: w.hidden + b * u, columns: u)
        let mask = stepMask(c)
        for s in 0..<t {
            let h = w.hidden + (s + 1) * b * u
            if s > 0 || initial { addRecurrentProduct(c, state: w.hidden + s * b * u, into: h, columns: u) }
            if useBias {
                let bias = c.weights[2]
                for r in 0..<b { for j in 0..<u { h[r * u + j] += bias[j] } }
            }
            activation.apply(h, h, count: b * u, rowLength: u)
            carryMaskedStates(mask, step: s, batch: b, previous: w.hidden + s * b * u, next: h, width: u)
        }
        writeOutput(fromHidden: w.hidden, c)
        writeFinalStates(c, hidden: w.hidden + t * b * u)
    }

    public override func backward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], b = c.batch, u = units
        let w = parts(c), dh = w.hiddenGradient
        seedStateGradients(c, hidden: dh)
        let mask = stepMask(c), initial = hasInitialState(c)
        for s in stride(from: t - 1, through: 0, by: -1) {
            addOutputGradient(step: s, c, into: dh)
            let dz = w.preGradient + s * b * u
            keepMaskedGradients(mask, step: s, c, saving: true, dh)
            activation.backward(x: nil, y: w.hidden + (s + 1) * b * u, dy: dh, dx: dz, count: b * u, rowLength: u)
            zeroMaskedGateGradients(mask, step: s, batch: b, dz, width: u, stride: u)
            if s > 0 || initial { recurrentStateGradient(c, dz, into: dh, columns: u) }
            keepMaskedGradients(mask, step: s, c, saving: false, dh)
        }
        writeInitialStateGradients(c, hidden: dh)
        inputSideGradients(c, x: w.x, gradients: w.preGradient, columns: u, scratch: w.inputGradient)
        recurrentKernelGradient(c, states: w.hidden, gradients: w.preGradient, columns: u, stride: u)
    }
}
