import CKestrelKernels
/// Long short-term memory over a sequence of feature vectors (Keras `LSTM`).
///
/// Input samples are `(timesteps, features)`; the output is the last hidden state `(units)`, or
/// every hidden state `(timesteps, units)` with `returnSequences`. Weights use Keras's layout and
/// gate order (input, forget, cell, output): `kernel (features, 4·units)`, `recurrent_kernel
/// (units, 4·units)`, `bias (4·units)`, so Keras weights load unchanged.
///
/// Forward projects every timestep's input with one matrix product, then runs one
/// `(batch, units) × (units, 4·units)` product per step followed by a fused gate loop. The
/// gates, cell states and hidden states of every step stay in the workspace, time-major, so
/// backward through time needs no allocation and ends with one product per weight.
public final class LSTM: RecurrentLayer {
    /// The activation of the input, forget and output gates (Keras default sigmoid).
    public let recurrentActivation: ActivationFunction
    /// Whether the forget gate's bias starts at one instead (Keras default true), which keeps
    /// the cell state flowing early in training.
    public let unitForgetBias: Bool

    /// An LSTM layer with `units` hidden units and Keras's defaults.
    public init(_ units: Int, activation: ActivationFunction = .tanh, recurrentActivation: ActivationFunction = .sigmoid,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                recurrentInitializer: Initializer = .orthogonal, biasInitializer: Initializer = .zeros,
                unitForgetBias: Bool = true, kernelRegularizer: Regularizer? = nil, recurrentRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil,
                returnSequences: Bool = false, returnState: Bool = false, goBackwards: Bool = false,
                zeroOutputForMask: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        self.recurrentActivation = recurrentActivation
        self.unitForgetBias = unitForgetBias
        super.init(units: units, activation: activation, useBias: useBias, kernelInitializer: kernelInitializer,
                   recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
                   regularizers: (kernelRegularizer, recurrentRegularizer, biasRegularizer),
                   constraints: (kernelConstraint, recurrentConstraint, biasConstraint),
                   dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, zeroOutputForMask: zeroOutputForMask,
                   inputShape: inputShape, name: name)
    }

    override func reversedCopy(name: String) -> RecurrentLayer {
        LSTM(units, activation: activation, recurrentActivation: recurrentActivation, useBias: useBias,
             kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer, biasInitializer: biasInitializer,
             unitForgetBias: unitForgetBias, kernelRegularizer: kernelRegularizer, recurrentRegularizer: recurrentRegularizer,
             biasRegularizer: biasRegularizer, kernelConstraint: kernelConstraint, recurrentConstraint: recurrentConstraint,
             biasConstraint: biasConstraint, dropout: dropout, recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
             returnState: returnState, goBackwards: !goBackwards, zeroOutputForMask: zeroOutputForMask,
             name: name)
    }

    override var gateCount: Int { 4 }
    public override var stateCount: Int { 2 }
    override var activationArguments: [(String, ActivationFunction)] {
        [("activation", activation), ("recurrentActivation", recurrentActivation)]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let features = shapes[0][1]
        var specs = [WeightSpec(name: "kernel", shape: [features, 4 * units], initializer: kernelInitializer),
                     WeightSpec(name: "recurrent_kernel", shape: [units, 4 * units], initializer: recurrentInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [4 * units], initializer: biasInitializer)) }
        return specs
    }

    public override func initializeWeight(_ index: Int, spec: WeightSpec, _ buffer: UnsafeMutableBufferPointer<Float>) {
        guard spec.name == "bias", unitForgetBias else {
            return super.initializeWeight(index, spec: spec, buffer)
        }
        // Keras: concat(init(units), ones(units), init(2·units)).
        let u = units
        biasInitializer.fill(UnsafeMutableBufferPointer(rebasing: buffer[0..<u]), shape: [u], generator: &generator)
        UnsafeMutableBufferPointer(rebasing: buffer[u..<2 * u]).update(repeating: 1)
        biasInitializer.fill(UnsafeMutableBufferPointer(rebasing: buffer[2 * u..<4 * u]), shape: [2 * u],
                             generator: &generator)
    }

    override func stateWorkspaceSize(batch: Int, inputShapes: [[Int]]) -> Int {
        return Workspace.size(steps: inputShapes[0][0], batch: batch, features: inputShapes[0][1], units: units)
    }

    public override var config: [String: String] {
        recurrentConfig.merging(["recurrent_activation": recurrentActivation.kerasName,
                                 "unit_forget_bias": "\(unitForgetBias)"]) { $1 }
    }

    /// The workspace, time-major in reading order: step `s` of every sample is contiguous.
    struct Workspace {
        /// Inputs `(steps, batch, features)`.
        let x: UnsafeMutablePointer<Float>
        /// Gate values after their activations `(steps, batch, 4·units)`.
        let gates: UnsafeMutablePointer<Float>
        /// Hidden states `(steps + 1, batch, units)`; slot 0 is the initial state (zero unless given).
        let hidden: UnsafeMutablePointer<Float>
        /// Cell states `(steps + 1, batch, units)`; slot 0 is the initial state (zero unless given).
        let cell: UnsafeMutablePointer<Float>
        /// `activation(cell)` of every step `(steps, batch, units)`.
        let cellActivation: UnsafeMutablePointer<Float>
        /// Backward: gradients of the gates' pre-activations `(steps, batch, 4·units)`.
        let gateGradients: UnsafeMutablePointer<Float>
        /// Backward: the gradient flowing into the current step's hidden and cell state.
        let hiddenGradient: UnsafeMutablePointer<Float>, cellGradient: UnsafeMutablePointer<Float>
        /// Backward: input gradients `(steps, batch, features)`.
        let inputGradient: UnsafeMutablePointer<Float>

        static func size(steps: Int, batch: Int, features: Int, units: Int) -> Int {
            let t = steps, b = batch
            return 2 * t * b * features + 2 * t * b * 4 * units + 2 * (t + 1) * b * units + t * b * units + 2 * b * units
        }

        init(_ base: UnsafeMutablePointer<Float>, steps t: Int, batch b: Int, features f: Int, units u: Int) {
            x = base
            gates = x + t * b * f
            hidden = gates + t * b * 4 * u
            cell = hidden + (t + 1) * b * u
            cellActivation = cell + (t + 1) * b * u
            gateGradients = cellActivation + t * b * u
            hiddenGradient = gateGradients + t * b * 4 * u
            cellGradient = hiddenGradient + b * u
            inputGradient = cellGradient + b * u
        }
    }

    /// One step's gates for `rows` rows of `units` (shared with the ConvLSTM layers, whose rows
    /// are a sample's positions): adds `bias` to the pre-activations `z` (i, f, c, o) and
    /// activates them in place, then writes the new cell, its activation (`squashed`) and the
    /// hidden state. Keras's default activations run as one fused C loop.
    static func gatesForward(_ z: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
                             previousCell: UnsafePointer<Float>, cell: UnsafeMutablePointer<Float>,
                             squashed: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, rows b: Int,
                             units u: Int, activation: ActivationFunction, recurrentActivation: ActivationFunction) {
        let g = 4 * u
        if recurrentActivation == .sigmoid && activation == .tanh {
            kestrel_lstm_forward_gates(z, bias, previousCell, cell, squashed, hidden, b, u)
            return
        }
        for r in 0..<b {
            let zr = z + r * g
            if let bias { for j in 0..<g { zr[j] += bias[j] } }
            recurrentActivation.apply(zr, zr, count: 2 * u, rowLength: 2 * u)
            activation.apply(zr + 2 * u, zr + 2 * u, count: u, rowLength: u)
            recurrentActivation.apply(zr + 3 * u, zr + 3 * u, count: u, rowLength: u)
            let previous = previousCell + r * u, next = cell + r * u
            for j in 0..<u { next[j] = zr[u + j] * previous[j] + zr[j] * zr[2 * u + j] }
            let squashedRow = squashed + r * u
            activation.apply(next, squashedRow, count: u, rowLength: u)
            let h = hidden + r * u
            for j in 0..<u { h[j] = zr[3 * u + j] * squashedRow[j] }
        }
    }

    /// Backward through one step's gates (`gatesForward`'s rows): the pre-activation gradients
    /// `dz` from the hidden state's gradient `dh` and the cell's `dc`, which becomes the
    /// previous cell's gradient.
    static func gatesBackward(_ z: UnsafePointer<Float>, previousCell: UnsafePointer<Float>, squashed: UnsafePointer<Float>,
                              dh: UnsafePointer<Float>, dc: UnsafeMutablePointer<Float>, dz: UnsafeMutablePointer<Float>,
                              rows b: Int, units u: Int, activation: ActivationFunction,
                              recurrentActivation: ActivationFunction) {
        let g = 4 * u
        if recurrentActivation == .sigmoid && activation == .tanh {
            kestrel_lstm_backward_gates(z, previousCell, squashed, dh, dc, dz, b, u)
            return
        }
        for r in 0..<b {
            let dhr = dh + r * u, dcr = dc + r * u
            let zr = z + r * g, dzr = dz + r * g
            let squashedRow = squashed + r * u, previous = previousCell + r * u
            // h = o · act(c): the output gate's gradient, then act(c)'s into the cell gradient.
            for j in 0..<u {
                dzr[3 * u + j] = dhr[j] * squashedRow[j]
                dzr[2 * u + j] = dhr[j] * zr[3 * u + j]
            }
            activation.backward(x: nil, y: squashedRow, dy: dzr + 2 * u, dx: dzr + 2 * u, count: u, rowLength: u)
            // c = f · c₋₁ + i · g.
            for j in 0..<u {
                let dcell = dcr[j] + dzr[2 * u + j]
                dzr[j] = dcell * zr[2 * u + j]
                dzr[u + j] = dcell * previous[j]
                dzr[2 * u + j] = dcell * zr[j]
                dcr[j] = dcell * zr[u + j]
            }
            recurrentActivation.backward(x: nil, y: zr, dy: dzr, dx: dzr, count: 2 * u, rowLength: 2 * u)
            activation.backward(x: nil, y: zr + 2 * u, dy: dzr + 2 * u, dx: dzr + 2 * u, count: u, rowLength: u)
            recurrentActivation.backward(x: nil, y: zr + 3 * u, dy: dzr + 3 * u, dx: dzr + 3 * u, count: u, rowLength: u)
        }
    }

    public override func forward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units, g = 4 * u
        let w = Workspace(c.workspace, steps: t, batch: b, features: f, units: u)
        projectInputs(c, into: w.x, projections: w.gates, columns: g)
        writeInitialStates(c, hidden: w.hidden, cell: w.cell)
        let initial = hasInitialState(c)
        let bias: UnsafeMutablePointer<Float>? = useBias ? c.weights[2] : nil
        let mask = stepMask(c)
        for s in 0..<t {
            let z = w.gates + s * b * g
            if s > 0 || initial { addRecurrentProduct(c, state: w.hidden + s * b * u, into: z, columns: g) }
            defer {
                carryMaskedStates(mask, step: s, batch: b, previous: w.hidden + s * b * u, next: w.hidden + (s + 1) * b * u, width: u)
                carryMaskedStates(mask, step: s, batch: b, previous: w.cell + s * b * u, next: w.cell + (s + 1) * b * u, width: u)
            }
            Self.gatesForward(z, bias: bias, previousCell: w.cell + s * b * u, cell: w.cell + (s + 1) * b * u,
                              squashed: w.cellActivation + s * b * u, hidden: w.hidden + (s + 1) * b * u, rows: b, units: u,
                              activation: activation, recurrentActivation: recurrentActivation)
        }
        writeOutput(fromHidden: w.hidden, c)
        writeFinalStates(c, hidden: w.hidden + t * b * u, cell: w.cell + t * b * u)
    }

    public override func backward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units, g = 4 * u
        let w = Workspace(c.workspace, steps: t, batch: b, features: f, units: u)
        let dh = w.hiddenGradient, dc = w.cellGradient
        seedStateGradients(c, hidden: dh, cell: dc)
        let mask = stepMask(c), initial = hasInitialState(c)
        for s in stride(from: t - 1, through: 0, by: -1) {
            let z = w.gates + s * b * g, dz = w.gateGradients + s * b * g
            addOutputGradient(step: s, c, into: dh)
            keepMaskedGradients(mask, step: s, c, saving: true, dh, dc)
            Self.gatesBackward(z, previousCell: w.cell + s * b * u, squashed: w.cellActivation + s * b * u, dh: dh, dc: dc,
                               dz: dz, rows: b, units: u, activation: activation, recurrentActivation: recurrentActivation)
            zeroMaskedGateGradients(mask, step: s, batch: b, dz, width: g, stride: g)
            if s > 0 || initial { recurrentStateGradient(c, dz, into: dh, columns: g) }
            keepMaskedGradients(mask, step: s, c, saving: false, dh, dc)
        }
        writeInitialStateGradients(c, hidden: dh, cell: dc)
        inputSideGradients(c, x: w.x, gradients: w.gateGradients, columns: g, scratch: w.inputGradient)
        recurrentKernelGradient(c, states: w.hidden, gradients: w.gateGradients, columns: g, stride: g)
    }
}
