import CKestrelKernels

/// What the recurrent layers share: input samples `(timesteps, features)`; the output is the
/// last hidden state `(units)`, or every hidden state `(timesteps, units)` with
/// `returnSequences`; weights in Keras's layout (`kernel`, `recurrent_kernel`, `bias`), so
/// Keras weights load unchanged. `dropout` drops input features in training, one mask per
/// sequence shared by its steps, as Keras does. A mask on the input (from Embedding's
/// `maskZero` or Masking) skips the masked steps: the state carries over them unchanged, as in
/// Keras. `recurrentDropout` drops the previous state's units in training, a mask per gate
/// and sequence, as Keras's cells do. With `returnState` a call also returns the final states
/// (Keras's `[output, state_h, state_c]` for LSTM, `[output, state]` otherwise), and a call may
/// start from given states (Keras's `initial_state`): `let outputs: [SymbolicTensor] =
/// try lstm(x)`, `try lstm(x, initialState: [h, c])`. Statefulness is not supported.
public class RecurrentLayer: Layer {
    /// The size of the hidden state.
    public let units: Int
    /// The activation of the hidden state's candidate values (Keras default tanh).
    public let activation: ActivationFunction
    /// Whether the layer adds bias vectors.
    public let useBias: Bool
    /// How the input kernel starts (Keras default glorot-uniform).
    public let kernelInitializer: Initializer
    /// How the recurrent kernel starts (Keras default orthogonal).
    public let recurrentInitializer: Initializer
    /// How the bias starts (Keras default zeros).
    public let biasInitializer: Initializer
    /// Whether the output holds the hidden state of every step instead of only the last.
    public let returnSequences: Bool
    /// Whether a call also returns the final states (Keras `return_state`): the hidden state
    /// `(units)`, and for LSTM then the cell state, each the state after the last unmasked step.
    public let returnState: Bool
    /// Whether the sequence is read from its last step to its first; returned sequences are
    /// then in that reading order, as in Keras.
    public let goBackwards: Bool
    /// The fraction of input features dropped in training (Keras `dropout`): one mask per
    /// sequence, the same at every step, the kept features scaled by `1 / (1 - dropout)`.
    public let dropout: Float
    /// The fraction of the previous state's units dropped in training (Keras
    /// `recurrent_dropout`): as in Keras, one mask per sequence for each gate's recurrent
    /// product (and then one input mask per gate too), the kept units scaled by `1 / (1 - rate)`.
    public let recurrentDropout: Float
    /// The seed that fixes the dropout masks independently of the global generator, if given.
    public let seed: UInt64?
    /// Whether a masked step's output is zero instead of the state carried over it (Keras
    /// `zero_output_for_mask`, default false; `Bidirectional` sets it to `returnSequences`).
    public internal(set) var zeroOutputForMask: Bool
    /// The penalty on the input kernel added to the loss (Keras `kernel_regularizer`).
    public let kernelRegularizer: Regularizer?
    /// The penalty on the recurrent kernel (Keras `recurrent_regularizer`).
    public let recurrentRegularizer: Regularizer?
    /// The penalty on the bias (Keras `bias_regularizer`).
    public let biasRegularizer: Regularizer?
    /// The projection of the input kernel after each step (Keras `kernel_constraint`).
    public let kernelConstraint: Constraint?
    /// The projection of the recurrent kernel after each step (Keras `recurrent_constraint`).
    public let recurrentConstraint: Constraint?
    /// The projection of the bias after each step (Keras `bias_constraint`).
    public let biasConstraint: Constraint?

    init(units: Int, activation: ActivationFunction, useBias: Bool, kernelInitializer: Initializer,
         recurrentInitializer: Initializer, biasInitializer: Initializer,
         regularizers: (kernel: Regularizer?, recurrent: Regularizer?, bias: Regularizer?),
         constraints: (kernel: Constraint?, recurrent: Constraint?, bias: Constraint?),
         dropout: Float, recurrentDropout: Float = 0, seed: UInt64?,
         returnSequences: Bool, returnState: Bool, goBackwards: Bool, zeroOutputForMask: Bool, inputShape: [Int]?,
         name: String?) {
        self.returnState = returnState
        (kernelRegularizer, recurrentRegularizer, biasRegularizer) = regularizers
        (kernelConstraint, recurrentConstraint, biasConstraint) = constraints
        self.zeroOutputForMask = zeroOutputForMask
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.seed = seed
        self.units = units
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.recurrentInitializer = recurrentInitializer
        self.biasInitializer = biasInitializer
        self.returnSequences = returnSequences
        self.goBackwards = goBackwards
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
        // Weight order: kernel, recurrent_kernel, then bias when there is one.
        weightRegularizers = [regularizers.kernel, regularizers.recurrent] + (useBias ? [regularizers.bias] : [])
        weightConstraints = [constraints.kernel, constraints.recurrent] + (useBias ? [constraints.bias] : [])
    }

    /// A new layer with the same arguments reading in the other direction, named `name`
    /// (Bidirectional's backward half).
    func reversedCopy(name: String) -> RecurrentLayer {
        preconditionFailure("\(className) must copy itself")
    }

    public override var supportsMasking: Bool { true }

    /// Keras: a returned sequence keeps the input's mask; the last state has none.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.first == true && returnSequences ? .propagate : .none
    }

    /// How many blocks of `units` columns the kernels have (LSTM 4, GRU 3, SimpleRNN 1).
    var gateCount: Int { 1 }

    /// How many state vectors the layer carries (LSTM 2: hidden and cell; otherwise 1).
    public var stateCount: Int { 1 }

    /// With `returnState`, one `(units)` output per state.
    public override func additionalOutputShapes(forInputs shapes: [[Int]]) -> [[Int]] {
        returnState ? Array(repeating: [units], count: stateCount) : []
    }

    /// The weights depend on the features only: the layer may read sequences of other lengths.
    public override var acceptsOtherShapesWithSameWeights: Bool { true }

    /// The sequence, then optionally the initial states (`(units)` each, `stateCount` of them).
    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        guard shapes.count == 1 || shapes.count == 1 + stateCount else {
            throw KestrelError.shapeMismatch(
                "\(name) (\(className)): expected a sequence and optionally \(stateCount) initial state\(stateCount == 1 ? "" : "s"), found \(shapes.count) inputs")
        }
        for (k, shape) in shapes.dropFirst().enumerated() where shape != [units] {
            throw KestrelError.shapeMismatch(
                "\(name) (\(className)): initial state \(k) must have shape [\(units)] (units), found \(shape)")
        }
        return try outputShape(for: shapes[0])
    }

    /// Calls the layer on `input`, starting from `initialState` if given (Keras `initial_state`:
    /// `[h]`, or `[h, c]` for LSTM), and returns Keras's list: the output, then with
    /// `returnState` the final states.
    public func callAsFunction(_ input: SymbolicTensor, initialState: [SymbolicTensor] = []) throws -> [SymbolicTensor] {
        try callReturningAll([input] + initialState)
    }

    /// Forward's start: slot 0 of `hidden` (and of `cell`, for LSTM) `(batch, units)` from the
    /// initial-state inputs, or zero. (State by state, not through an array: a step allocates nothing.)
    func writeInitialStates(_ c: LayerContext, hidden: UnsafeMutablePointer<Float>, cell: UnsafeMutablePointer<Float>? = nil) {
        func fill(_ k: Int, _ slot: UnsafeMutablePointer<Float>) {
            if c.inputs.count > 1 + k { slot.update(from: c.inputs[1 + k], count: c.batch * units) }
            else { slot.update(repeating: 0, count: c.batch * units) }
        }
        fill(0, hidden)
        if let cell { fill(1, cell) }
    }

    /// Whether this call starts from given states (then step 0 has a recurrent product).
    func hasInitialState(_ c: LayerContext) -> Bool { c.inputs.count > 1 }

    /// Forward's end: the final states (`(batch, units)` each, hidden then cell) into the
    /// outputs the model reads.
    func writeFinalStates(_ c: LayerContext, hidden: UnsafePointer<Float>, cell: UnsafePointer<Float>? = nil) {
        func write(_ k: Int, _ state: UnsafePointer<Float>) {
            if k < c.additionalOutputs.count, let out = c.additionalOutputs[k] { out.update(from: state, count: c.batch * units) }
        }
        write(0, hidden)
        if let cell { write(1, cell) }
    }

    /// Backward's start: the gradients flowing into the final states, from the returned
    /// states' gradients, or zero.
    func seedStateGradients(_ c: LayerContext, hidden: UnsafeMutablePointer<Float>, cell: UnsafeMutablePointer<Float>? = nil) {
        func seed(_ k: Int, _ slot: UnsafeMutablePointer<Float>) {
            if k < c.additionalOutputGradients.count, let d = c.additionalOutputGradients[k] {
                slot.update(from: d, count: c.batch * units)
            } else {
                slot.update(repeating: 0, count: c.batch * units)
            }
        }
        seed(0, hidden)
        if let cell { seed(1, cell) }
    }

    /// Backward's end: the initial states' gradients (what flowed past step 0) where needed.
    func writeInitialStateGradients(_ c: LayerContext, hidden: UnsafePointer<Float>, cell: UnsafePointer<Float>? = nil) {
        func write(_ k: Int, _ state: UnsafePointer<Float>) {
            if 1 + k < c.inputGradients.count, let d = c.inputGradients[1 + k] { d.update(from: state, count: c.batch * units) }
        }
        write(0, hidden)
        if let cell { write(1, cell) }
    }

    /// The activation arguments, checked when the layer is built.
    var activationArguments: [(String, ActivationFunction)] { [("activation", activation)] }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        try checkRecurrentArguments(self, units: units, activations: activationArguments)
        guard dropout >= 0 && dropout < 1 else {
            throw KestrelError.invalidArgument("\(name) (\(className)): dropout must be in [0, 1), found \(dropout)")
        }
        guard recurrentDropout >= 0 && recurrentDropout < 1 else {
            throw KestrelError.invalidArgument(
                "\(name) (\(className)): recurrentDropout must be in [0, 1), found \(recurrentDropout)")
        }
        let (steps, _) = try sequenceShape(self, inputShape)
        return returnSequences ? [steps, units] : [units]
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard inputShapes[0].count == 2 else { return LayerFLOPs() }
        let rows = batch * inputShapes[0][0], f = inputShapes[0][1], g = gateCount * units
        // Forward: the inputs' projection and one recurrent product per step. Backward: both
        // weight gradients and the state's gradient through the recurrent kernel (needed
        // whether or not the input's is); the input gradient is one more product.
        return LayerFLOPs(forward: 2 * rows * g * (f + units), weightGradients: 2 * rows * g * (f + 2 * units),
                          inputGradients: 2 * rows * g * f)
    }

    /// The arguments every recurrent layer shares, for `config`.
    var recurrentConfig: [String: String] {
        ["name": name, "units": "\(units)", "activation": activation.kerasName, "use_bias": "\(useBias)",
         "return_sequences": "\(returnSequences)", "return_state": "\(returnState)", "go_backwards": "\(goBackwards)", "dropout": "\(dropout)",
         "recurrent_dropout": "\(recurrentDropout)", "zero_output_for_mask": "\(zeroOutputForMask)"]
    }

    /// Writes the output from the time-major hidden states `(steps + 1, batch, units)` whose
    /// slot 0 is the initial state; masked steps have zero output with `zeroOutputForMask`.
    func writeOutput(fromHidden hidden: UnsafePointer<Float>, _ c: LayerContext) {
        let t = c.inputShapes[0][0], b = c.batch, u = units
        if returnSequences {
            fromTimeMajor(hidden + b * u, c.output, steps: t, batch: b, features: u, reversed: false)
        } else {
            c.output.update(from: hidden + t * b * u, count: b * u)
        }
        guard zeroOutputForMask, let mask = stepMask(c) else { return }
        for r in 0..<b {
            if returnSequences {
                for s in 0..<t where !mask.keeps(row: r, step: s) { (c.output + (r * t + s) * u).update(repeating: 0, count: u) }
            } else if !mask.keeps(row: r, step: t - 1) {
                (c.output + r * u).update(repeating: 0, count: u)
            }
        }
    }

    /// The input's mask read in this layer's reading order.
    struct StepMask {
        let mask: UnsafePointer<Float>, steps: Int, reversed: Bool

        init?(_ c: LayerContext, reversed: Bool) {
            guard let m = c.inputMask else { return nil }
            mask = UnsafePointer(m)
            steps = c.inputShapes[0][0]
            self.reversed = reversed
        }

        /// Whether sample `row` takes part at reading step `step`.
        @inline(__always) func keeps(row: Int, step: Int) -> Bool {
            mask[row * steps + (reversed ? steps - 1 - step : step)] != 0
        }
    }

    /// The mask of this call in reading order, if the input has one.
    func stepMask(_ c: LayerContext) -> StepMask? { StepMask(c, reversed: goBackwards) }

    /// Forward, after step `s` wrote `next` from `previous` (`(batch, width)` states): masked
    /// samples keep their previous state, as Keras's masked steps do.
    func carryMaskedStates(_ mask: StepMask?, step s: Int, batch b: Int, previous: UnsafePointer<Float>,
                           next: UnsafeMutablePointer<Float>, width: Int) {
        guard let mask else { return }
        for r in 0..<b where !mask.keeps(row: r, step: s) { (next + r * width).update(from: previous + r * width, count: width) }
    }

    /// Backward, step `s`: with `saving`, copies the state gradients of masked samples
    /// (`(batch, units)`: the hidden state's and, for LSTM, the cell's) aside before the step's
    /// gates change them; without, puts them back once the step's recurrent products have run,
    /// so that they pass to the previous step unchanged. (Two parameters rather than an array,
    /// so that a step allocates nothing.)
    func keepMaskedGradients(_ mask: StepMask?, step s: Int, _ c: LayerContext, saving: Bool,
                             _ hidden: UnsafeMutablePointer<Float>, _ cell: UnsafeMutablePointer<Float>? = nil) {
        guard let mask else { return }
        let b = c.batch, u = units, saved = maskScratch(c)
        func move(_ row: UnsafeMutablePointer<Float>, _ aside: UnsafeMutablePointer<Float>) {
            if saving { aside.update(from: row, count: u) } else { row.update(from: aside, count: u) }
        }
        for r in 0..<b where !mask.keeps(row: r, step: s) {
            move(hidden + r * u, saved + r * u)
            if let cell { move(cell + r * u, saved + (b + r) * u) }
        }
    }

    /// Backward, step `s`, after the gates: a masked sample's step did nothing, so its gate
    /// gradients (a row of `width` at `stride` in `gates`, and in `more` if given) are zero.
    func zeroMaskedGateGradients(_ mask: StepMask?, step s: Int, batch b: Int, _ gates: UnsafeMutablePointer<Float>,
                                 _ more: UnsafeMutablePointer<Float>? = nil, width: Int, stride: Int) {
        guard let mask else { return }
        for r in 0..<b where !mask.keeps(row: r, step: s) {
            (gates + r * stride).update(repeating: 0, count: width)
            if let more { (more + r * stride).update(repeating: 0, count: width) }
        }
    }

    /// Where the dropout masks and their scratch sit, after the layer's own state: the input
    /// masks (one `(batch, features)` block, or one per gate with recurrent dropout, as Keras's
    /// cells draw them), the recurrent masks (one `(batch, units)` block per gate), scratch for
    /// the per-gate products, then two `(batch, units)` blocks for masked state gradients.
    private struct DropoutLayout {
        var inputMasks = 0, recurrentMasks = 0, scratch = 0, maskedGradients = 0, total = 0

        init(_ layer: RecurrentLayer, batch b: Int, inputShapes: [[Int]], training: Bool) {
            let t = inputShapes[0][0], f = inputShapes[0][1], u = layer.units
            let perGate = training && layer.recurrentDropout > 0
            var offset = layer.stateWorkspaceSize(batch: b, inputShapes: inputShapes)
            inputMasks = offset
            if training && layer.dropout > 0 { offset += (perGate ? layer.gateCount : 1) * b * f }
            recurrentMasks = offset
            if perGate { offset += layer.gateCount * b * u }
            scratch = offset
            if perGate { offset += t * b * max(f, u) }
            maskedGradients = offset
            total = offset + 2 * b * u
        }
    }

    private func layout(_ c: LayerContext) -> DropoutLayout {
        DropoutLayout(self, batch: c.batch, inputShapes: c.inputShapes, training: c.training)
    }

    /// Two `(batch, units)` blocks for masked gradients.
    private func maskScratch(_ c: LayerContext) -> UnsafeMutablePointer<Float> { c.workspace + layout(c).maskedGradients }

    /// The floats the layer's own state needs between forward and backward (each layer's).
    func stateWorkspaceSize(batch: Int, inputShapes: [[Int]]) -> Int {
        preconditionFailure("\(className) must size its workspace")
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard inputShapes[0].count == 2 else { return 0 }
        return DropoutLayout(self, batch: batch, inputShapes: inputShapes, training: training).total
    }

    /// Whether this call drops recurrent units, with a mask and an input mask per gate.
    private func perGate(_ c: LayerContext) -> Bool { c.training && recurrentDropout > 0 }

    /// The input dropout masks `(batch, features)` of this call (one, or one per gate), or nil
    /// when nothing is dropped.
    private func dropoutMask(_ c: LayerContext) -> UnsafeMutablePointer<Float>? {
        guard c.training && dropout > 0 else { return nil }
        return c.workspace + layout(c).inputMasks
    }

    /// The recurrent dropout masks, one `(batch, units)` block per gate, or nil.
    private func recurrentMasks(_ c: LayerContext) -> UnsafeMutablePointer<Float>? {
        perGate(c) ? c.workspace + layout(c).recurrentMasks : nil
    }

    /// Masks for tests, in the layout the layer draws them (input blocks, then recurrent
    /// blocks), used instead of drawn ones so that Keras's masks can be replayed.
    var replayedDropoutMasks: [Float]?

    /// Fills `count` mask values: `1 / (1 - rate)` with probability `1 - rate`, else 0.
    private func drawMask(_ c: LayerContext, _ mask: UnsafeMutablePointer<Float>, count: Int, rate: Float, offset: Int) {
        if let replayed = replayedDropoutMasks {
            for i in 0..<count { mask[i] = replayed[offset + i] }
            return
        }
        let keep = 1 / (1 - rate)
        for i in 0..<count { mask[i] = c.generator.nextUnitFloat() >= rate ? keep : 0 }
    }

    /// `x` `(steps, batch, width)` times `mask` `(batch, width)` at every step, into `y` (which
    /// may be `x`).
    private func masked(_ x: UnsafePointer<Float>, _ mask: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                        steps: Int, rows: Int) {
        for s in 0..<steps {
            let from = x + s * rows, to = y + s * rows
            for i in 0..<rows { to[i] = from[i] * mask[i] }
        }
    }

    /// Forward's first step: this call's dropout masks, the inputs time-major in reading order
    /// into `x` (dropped out in training), and every step's input projection `x·kernel` at once
    /// into `projections` (`columns` per row); with a mask per gate, one product per gate.
    func projectInputs(_ c: LayerContext, into x: UnsafeMutablePointer<Float>, projections: UnsafeMutablePointer<Float>,
                       columns: Int) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units
        let gates = perGate(c) ? gateCount : 1
        toTimeMajor(c.input, x, steps: t, batch: b, features: f, reversed: goBackwards)
        if let mask = dropoutMask(c) { drawMask(c, mask, count: gates * b * f, rate: dropout, offset: 0) }
        if let masks = recurrentMasks(c) {
            drawMask(c, masks, count: gates * b * u, rate: recurrentDropout, offset: c.training && dropout > 0 ? gates * b * f : 0)
        }
        guard let mask = dropoutMask(c) else {
            Kernels.gemm(transposeA: false, transposeB: false, m: t * b, n: columns, k: f, alpha: 1, a: x, lda: f,
                         b: c.weights[0], ldb: columns, beta: 0, c: projections, ldc: columns)
            return
        }
        if !perGate(c) {
            masked(x, mask, into: x, steps: t, rows: b * f)
            Kernels.gemm(transposeA: false, transposeB: false, m: t * b, n: columns, k: f, alpha: 1, a: x, lda: f,
                         b: c.weights[0], ldb: columns, beta: 0, c: projections, ldc: columns)
            return
        }
        // Keras's cells with recurrent dropout drop the input separately for each gate; `x` keeps
        // the undropped inputs and backward masks them again.
        let scratch = c.workspace + layout(c).scratch
        for g in 0..<gates {
            masked(x, mask + g * b * f, into: scratch, steps: t, rows: b * f)
            Kernels.gemm(transposeA: false, transposeB: false, m: t * b, n: u, k: f, alpha: 1, a: scratch, lda: f,
                         b: c.weights[0] + g * u, ldb: columns, beta: 0, c: projections + g * u, ldc: columns)
        }
    }

    /// Adds (or, with `beta` 0, writes) the recurrent product of `state` `(batch, units)` for
    /// the gates in `gates` (all by default) to `z`, whose rows hold `columns` values starting
    /// with the first gate's: one product, or with recurrent dropout one per gate of the state
    /// times that gate's mask.
    func addRecurrentProduct(_ c: LayerContext, state: UnsafePointer<Float>, into z: UnsafeMutablePointer<Float>,
                             columns: Int, gates: Range<Int>? = nil, beta: Float = 1) {
        let b = c.batch, u = units, gates = gates ?? 0..<gateCount, stride = gateCount * u
        guard let masks = recurrentMasks(c) else {
            Kernels.gemm(transposeA: false, transposeB: false, m: b, n: gates.count * u, k: u, alpha: 1, a: state, lda: u,
                         b: c.weights[1] + gates.lowerBound * u, ldb: stride, beta: beta, c: z, ldc: columns)
            return
        }
        let scratch = c.workspace + layout(c).scratch
        for g in gates {
            masked(state, masks + g * b * u, into: scratch, steps: 1, rows: b * u)
            Kernels.gemm(transposeA: false, transposeB: false, m: b, n: u, k: u, alpha: 1, a: scratch, lda: u,
                         b: c.weights[1] + g * u, ldb: stride, beta: beta, c: z + (g - gates.lowerBound) * u, ldc: columns)
        }
    }

    /// Sets (or, with `accumulate`, adds to) `dh` `(batch, units)` the previous state's
    /// gradient through the recurrent product of the gates in `gates` (all by default), from the
    /// gradients `dz` of its result (rows of `columns` values starting with the first gate's).
    func recurrentStateGradient(_ c: LayerContext, _ dz: UnsafePointer<Float>, into dh: UnsafeMutablePointer<Float>,
                                columns: Int, gates: Range<Int>? = nil, accumulate: Bool = false) {
        let b = c.batch, u = units, gates = gates ?? 0..<gateCount, stride = gateCount * u
        guard let masks = recurrentMasks(c) else {
            Kernels.gemm(transposeA: false, transposeB: true, m: b, n: u, k: gates.count * u, alpha: 1, a: dz, lda: columns,
                         b: c.weights[1] + gates.lowerBound * u, ldb: stride, beta: accumulate ? 1 : 0, c: dh, ldc: u)
            return
        }
        let scratch = c.workspace + layout(c).scratch
        if !accumulate { dh.update(repeating: 0, count: b * u) }
        for g in gates {
            Kernels.gemm(transposeA: false, transposeB: true, m: b, n: u, k: u, alpha: 1, a: dz + (g - gates.lowerBound) * u,
                         lda: columns, b: c.weights[1] + g * u, ldb: stride, beta: 0, c: scratch, ldc: u)
            let m = masks + g * b * u
            for i in 0..<(b * u) { dh[i] += scratch[i] * m[i] }
        }
    }

    /// Gate `g`'s recurrent dropout mask `(batch, units)` in this call, if units are dropped.
    func recurrentMask(_ c: LayerContext, gate g: Int) -> UnsafeMutablePointer<Float>? {
        recurrentMasks(c).map { $0 + g * c.batch * units }
    }

    /// Backward's input side, from the gradients of every step's input projection `(steps·batch,
    /// columns)`: the kernel's gradient, the bias's (its first `columns` values, if the layer has
    /// a bias) and, where an earlier layer needs it, the input's (through `scratch`, time-major).
    func inputSideGradients(_ c: LayerContext, x: UnsafePointer<Float>, gradients: UnsafePointer<Float>, columns g: Int,
                            scratch: UnsafeMutablePointer<Float>) {
        let t = c.inputShapes[0][0], f = c.inputShapes[0][1], b = c.batch, u = units
        let beta: Float = c.accumulateWeightGradients ? 1 : 0
        if useBias {
            Kernels.columnSums(gradients, rows: t * b, columns: g, into: c.weightGradients[2],
                               accumulate: c.accumulateWeightGradients)
        }
        if perGate(c), let mask = dropoutMask(c) {
            // One input mask per gate: each gate's kernel saw its own dropped inputs.
            let dropped = c.workspace + layout(c).scratch
            if c.inputGradient != nil { scratch.update(repeating: 0, count: t * b * f) }
            for k in 0..<gateCount {
                let m = mask + k * b * f
                masked(x, m, into: dropped, steps: t, rows: b * f)
                Kernels.gemm(transposeA: true, transposeB: false, m: f, n: u, k: t * b, alpha: 1, a: dropped, lda: f,
                             b: gradients + k * u, ldb: g, beta: beta, c: c.weightGradients[0] + k * u, ldc: g)
                guard c.inputGradient != nil else { continue }
                Kernels.gemm(transposeA: false, transposeB: true, m: t * b, n: f, k: u, alpha: 1, a: gradients + k * u,
                             lda: g, b: c.weights[0] + k * u, ldb: g, beta: 0, c: dropped, ldc: f)
                for s in 0..<t {
                    let from = dropped + s * b * f, to = scratch + s * b * f
                    for i in 0..<(b * f) { to[i] += from[i] * m[i] }
                }
            }
            if let dx = c.inputGradient { fromTimeMajor(scratch, dx, steps: t, batch: b, features: f, reversed: goBackwards) }
            return
        }
        Kernels.gemm(transposeA: true, transposeB: false, m: f, n: g, k: t * b, alpha: 1, a: x, lda: f,
                     b: gradients, ldb: g, beta: beta, c: c.weightGradients[0], ldc: g)
        if let dx = c.inputGradient {
            Kernels.gemm(transposeA: false, transposeB: true, m: t * b, n: f, k: g, alpha: 1, a: gradients, lda: g,
                         b: c.weights[0], ldb: g, beta: 0, c: scratch, ldc: f)
            if let mask = dropoutMask(c) { masked(scratch, mask, into: scratch, steps: t, rows: b * f) }
            fromTimeMajor(scratch, dx, steps: t, batch: b, features: f, reversed: goBackwards)
        }
    }

    /// Adds to (or sets) `columns` columns of the recurrent kernel's gradient, starting at
    /// `column`: the states the steps multiplied, `(steps·batch, units)` (each step's previous
    /// hidden state, slot 0 the initial one), against the gradients of their products
    /// (`columns` of a row of `stride`); with recurrent dropout each gate's states as dropped,
    /// unless `statesDropped` says the states already are (GRU's reset states).
    func recurrentKernelGradient(_ c: LayerContext, states: UnsafePointer<Float>, gradients: UnsafePointer<Float>,
                                 columns: Int, stride: Int, column: Int = 0, statesDropped: Bool = false) {
        let t = c.inputShapes[0][0], b = c.batch, u = units, rows = t * b
        let beta: Float = c.accumulateWeightGradients ? 1 : 0
        guard let masks = recurrentMasks(c), !statesDropped else {
            Kernels.gemm(transposeA: true, transposeB: false, m: u, n: columns, k: rows, alpha: 1, a: states, lda: u,
                         b: gradients, ldb: stride, beta: beta, c: c.weightGradients[1] + column, ldc: gateCount * u)
            return
        }
        let dropped = c.workspace + layout(c).scratch
        for k in 0..<(columns / u) {
            let g = column / u + k
            masked(states, masks + g * b * u, into: dropped, steps: t, rows: b * u)
            Kernels.gemm(transposeA: true, transposeB: false, m: u, n: u, k: rows, alpha: 1, a: dropped, lda: u,
                         b: gradients + k * u, ldb: stride, beta: beta, c: c.weightGradients[1] + g * u, ldc: gateCount * u)
        }
    }

    /// Adds the output's gradient with respect to step `s`'s hidden state to `dh` `(batch, units)`.
    func addOutputGradient(step s: Int, _ c: LayerContext, into dh: UnsafeMutablePointer<Float>) {
        let t = c.inputShapes[0][0], u = units, dy = c.outputGradient!
        guard returnSequences || s == t - 1 else { return }
        let mask = zeroOutputForMask ? stepMask(c) : nil
        for r in 0..<c.batch where mask?.keeps(row: r, step: s) ?? true {
            let y = returnSequences ? dy + (r * t + s) * u : dy + r * u, d = dh + r * u
            for j in 0..<u { d[j] += y[j] }
        }
    }
}

// MARK: - Helpers

/// Checks the arguments every recurrent layer shares: positive units, and activations whose
/// derivative follows from their output (the layers keep only activated values).
func checkRecurrentArguments(_ layer: Layer, units: Int, activations: [(String, ActivationFunction)]) throws {
    guard units > 0 else {
        throw KestrelError.invalidArgument("\(layer.name) (\(layer.className)): units must be positive, found \(units)")
    }
    for (argument, f) in activations where f == .softmax || f.derivativeNeedsInput {
        throw KestrelError.invalidArgument(
            "\(layer.name) (\(layer.className)): \(argument) must be element-wise with a derivative given by its output (tanh, sigmoid, relu, linear, …), found \(f.kerasName)")
    }
}

/// `(timesteps, features)` of a sequence input, or an error naming the layer.
func sequenceShape(_ layer: Layer, _ shape: [Int]) throws -> (steps: Int, features: Int) {
    guard shape.count == 2, shape[0] > 0, shape[1] > 0 else {
        throw KestrelError.shapeMismatch(
            "\(layer.name) (\(layer.className)): expected samples of shape (timesteps, features), found \(shape)")
    }
    return (shape[0], shape[1])
}

/// `(batch, steps, features)` → `(steps, batch, features)`, with the steps reversed if asked.
func toTimeMajor(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, steps: Int, batch: Int,
                 features: Int, reversed: Bool) {
    for s in 0..<steps {
        let time = reversed ? steps - 1 - s : s
        for r in 0..<batch {
            (y + (s * batch + r) * features).update(from: x + (r * steps + time) * features, count: features)
        }
    }
}

/// `(steps, batch, features)` → `(batch, steps, features)`, with the steps reversed if asked.
func fromTimeMajor(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, steps: Int, batch: Int,
                   features: Int, reversed: Bool) {
    for s in 0..<steps {
        let time = reversed ? steps - 1 - s : s
        for r in 0..<batch {
            (y + (r * steps + time) * features).update(from: x + (s * batch + r) * features, count: features)
        }
    }
}
