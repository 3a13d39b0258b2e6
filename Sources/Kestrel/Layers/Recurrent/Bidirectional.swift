/// How `Bidirectional` combines its two directions (Keras `merge_mode`).
public enum BidirectionalMerge: String, Sendable, Equatable, CaseIterable {
    /// The forward output, then the backward one, along the features (Keras's default).
    case concat
    /// Their sum.
    case sum
    /// Their product.
    case mul
    /// Their mean.
    case ave
}

/// Runs a recurrent layer over each sequence in both directions and merges the two outputs
/// (Keras `Bidirectional`). The backward half is a copy of the layer reading from the last
/// step (or `backwardLayer`, which must read the other way); with `returnSequences` its
/// outputs are put back in time order before merging, so step t sees the whole sequence.
///
/// The weights are the forward layer's, then the backward layer's, as in Keras. With
/// `returnState` on both halves a call also returns their final states, the forward half's then
/// the backward half's (Keras's `[output, h, c, h_back, c_back]` for LSTM), and a call may start
/// from given states in the same order (`initialState:`).
public final class Bidirectional: Layer {
    /// The layer reading the sequences as given (the layer passed in).
    public let forwardLayer: RecurrentLayer
    /// The layer reading them the other way.
    public let backwardLayer: RecurrentLayer
    /// How the two outputs are combined.
    public let mergeMode: BidirectionalMerge

    private var forwardSpecs: [WeightSpec] = [], backwardSpecs: [WeightSpec] = []

    /// Both directions of `layer`, merged by `mergeMode`; `backwardLayer` replaces the default
    /// backward half (a copy of `layer` reading the other way).
    public init(_ layer: RecurrentLayer, mergeMode: BidirectionalMerge = .concat, backwardLayer: RecurrentLayer? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        forwardLayer = layer
        self.backwardLayer = backwardLayer ?? layer.reversedCopy(name: "backward_" + layer.name)
        self.mergeMode = mergeMode
        // As Keras does: masked steps of returned sequences are zero in both halves.
        forwardLayer.zeroOutputForMask = forwardLayer.returnSequences
        self.backwardLayer.zeroOutputForMask = self.backwardLayer.returnSequences
        super.init(name: name, inputShape: inputShape)
        // The halves' penalties, on this layer's weights (the forward half's, then the backward's).
        weightRegularizers = forwardLayer.weightRegularizers + self.backwardLayer.weightRegularizers
        weightConstraints = forwardLayer.weightConstraints + self.backwardLayer.weightConstraints
    }

    public override var supportsMasking: Bool { true }

    /// Keras: returned sequences keep the input's mask; the last states have none.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.first == true && forwardLayer.returnSequences ? .propagate : .none
    }

    /// The halves' state shapes: the forward half's, then the backward half's.
    private var stateShapes: [[Int]] {
        Array(repeating: [forwardLayer.units], count: forwardLayer.stateCount)
            + Array(repeating: [backwardLayer.units], count: backwardLayer.stateCount)
    }

    /// Whether a call also returns the halves' final states (Keras `return_state`, taken from
    /// the wrapped layer).
    public var returnState: Bool { forwardLayer.returnState }

    /// With `returnState`, the halves' final states.
    public override func additionalOutputShapes(forInputs shapes: [[Int]]) -> [[Int]] {
        returnState ? stateShapes : []
    }

    /// The weights depend on the features only: the layer may read sequences of other lengths.
    public override var acceptsOtherShapesWithSameWeights: Bool { true }

    /// The sequence, then optionally the initial states (the forward half's, then the backward half's).
    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        let states = stateShapes
        guard shapes.count == 1 || shapes.count == 1 + states.count else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected a sequence and optionally \(states.count) initial states (the forward layer's, then the backward layer's), found \(shapes.count) inputs")
        }
        for (k, (shape, expected)) in zip(shapes.dropFirst(), states).enumerated() where shape != expected {
            throw KestrelError.shapeMismatch("\(describe): initial state \(k) must have shape \(expected), found \(shape)")
        }
        return try outputShape(for: shapes[0])
    }

    /// Calls the layer on `input`, starting from `initialState` if given (the forward half's
    /// states, then the backward half's), and returns Keras's list: the output, then with
    /// `returnState` the halves' final states.
    public func callAsFunction(_ input: SymbolicTensor, initialState: [SymbolicTensor] = []) throws -> [SymbolicTensor] {
        try callReturningAll([input] + initialState)
    }

    /// How many of the layer's weights are the forward half's (they come first), once built.
    public var forwardWeightCount: Int { forwardSpecs.count }

    private var describe: String { "\(name) (Bidirectional)" }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let (f, b) = (forwardLayer, backwardLayer)
        guard f.activityRegularizer == nil && b.activityRegularizer == nil else {
            throw KestrelError.invalidArgument(
                "\(describe): a half has an activity regularizer, which Kestrel applies to a model's layers only; set it on the Bidirectional layer")
        }
        guard f !== b, f.goBackwards != b.goBackwards else {
            throw KestrelError.invalidArgument(
                "\(describe): the backward layer must be another layer reading the other way, found goBackwards \(f.goBackwards) for both")
        }
        guard f.returnState == b.returnState else {
            throw KestrelError.invalidArgument(
                "\(describe): both layers must have the same returnState, found \(f.returnState) and \(b.returnState)")
        }
        guard f.returnSequences == b.returnSequences else {
            throw KestrelError.invalidArgument(
                "\(describe): both layers must have the same returnSequences, found \(f.returnSequences) and \(b.returnSequences)")
        }
        guard mergeMode == .concat || f.units == b.units else {
            throw KestrelError.invalidArgument(
                "\(describe): merge mode \(mergeMode.rawValue) needs layers of the same units, found \(f.units) and \(b.units)")
        }
        let forwardShape = try f.outputShape(for: inputShape)
        _ = try b.outputShape(for: inputShape)
        forwardSpecs = try f.weightSpecs(forInputs: [inputShape])
        backwardSpecs = try b.weightSpecs(forInputs: [inputShape])
        let features = mergeMode == .concat ? f.units + b.units : f.units
        return Array(forwardShape.dropLast()) + [features]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let forward = try forwardLayer.weightSpecs(forInputs: shapes), backward = try backwardLayer.weightSpecs(forInputs: shapes)
        func prefixed(_ specs: [WeightSpec], _ prefix: String) -> [WeightSpec] {
            specs.map { var s = $0; s.name = prefix + "/" + s.name; return s }
        }
        return prefixed(forward, "forward_layer") + prefixed(backward, "backward_layer")
    }

    public override func initializeWeight(_ index: Int, spec: WeightSpec, _ buffer: UnsafeMutableBufferPointer<Float>) {
        // Each half fills its own weights (LSTM's forget bias included) from its own generator.
        if index < forwardSpecs.count {
            forwardLayer.initializeWeight(index, spec: forwardSpecs[index], buffer)
        } else {
            let k = index - forwardSpecs.count
            backwardLayer.initializeWeight(k, spec: backwardSpecs[k], buffer)
        }
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        let f = forwardLayer.flops(batch: batch, inputShapes: inputShapes)
        let b = backwardLayer.flops(batch: batch, inputShapes: inputShapes)
        return LayerFLOPs(forward: f.forward + b.forward, weightGradients: f.weightGradients + b.weightGradients,
                          inputGradients: f.inputGradients + b.inputGradients)
    }

    /// The halves' output sizes per sample.
    private func halfSizes(_ inputShapes: [[Int]]) -> (forward: Int, backward: Int) {
        let steps = forwardLayer.returnSequences ? inputShapes[0][0] : 1
        return (steps * forwardLayer.units, steps * backwardLayer.units)
    }

    /// The workspace: each half's own, then each half's output, output gradient, and (for the
    /// backward half) input gradient, which is added to the forward half's.
    private func layout(batch: Int, inputShapes: [[Int]], training: Bool)
        -> (forwardWork: Int, backwardWork: Int, outputs: (Int, Int), total: Int) {
        let fw = forwardLayer.workspaceSize(batch: batch, inputShapes: inputShapes, training: training)
        let bw = backwardLayer.workspaceSize(batch: batch, inputShapes: inputShapes, training: training)
        let (fo, bo) = halfSizes(inputShapes)
        let input = inputShapes[0].reduce(1, *)
        return (fw, bw, (fo, bo), fw + bw + 2 * batch * (fo + bo) + batch * input)
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard inputShapes[0].count == 2 else { return 0 }
        return layout(batch: batch, inputShapes: inputShapes, training: training).total
    }

    public override var config: [String: String] {
        ["name": name, "merge_mode": mergeMode.rawValue, "layer": forwardLayer.className,
         "units": "\(forwardLayer.units)", "return_sequences": "\(forwardLayer.returnSequences)"]
    }

    /// The halves' contexts for one of the plan's contexts, made on its first call (so later
    /// steps allocate nothing) and pointed at this call's buffers every time.
    private struct Halves {
        weak var parent: LayerContext?
        let forward: LayerContext, backward: LayerContext
        let backwardInputGradient: UnsafeMutablePointer<Float>
    }
    private var halves: [ObjectIdentifier: Halves] = [:]

    private func contexts(_ c: LayerContext) -> Halves {
        let shapes = c.inputShapes
        let (fw, bw, outputs, _) = layout(batch: c.batch, inputShapes: shapes, training: c.training)
        let forwardOutput = c.workspace + fw + bw, backwardOutput = forwardOutput + c.batch * outputs.0
        let forwardGradient = backwardOutput + c.batch * outputs.1
        let backwardGradient = forwardGradient + c.batch * outputs.0
        let backwardInputGradient = backwardGradient + c.batch * outputs.1
        let n = forwardSpecs.count
        var h = halves[ObjectIdentifier(c)]
        let initial = c.inputs.count > 1
        if h == nil || h!.parent !== c {
            // A half reads the sequence and, when the call starts from states, its own states.
            func make(_ layer: RecurrentLayer) -> LayerContext {
                let states = initial ? Array(repeating: [layer.units], count: layer.stateCount) : []
                let half = LayerContext(inputShapes: [shapes[0]] + states, outputShape: try! layer.outputShape(for: shapes[0]),
                                        inputs: Array(repeating: c.input, count: 1 + states.count), output: c.output,
                                        workspace: c.workspace, weights: [], weightGradients: [], generator: c.generator)
                let returned = layer.additionalOutputShapes(forInputs: half.inputShapes).count
                half.additionalOutputs = Array(repeating: nil, count: returned)
                half.additionalOutputGradients = Array(repeating: nil, count: returned)
                return half
            }
            h = Halves(parent: c, forward: make(forwardLayer), backward: make(backwardLayer),
                       backwardInputGradient: backwardInputGradient)
            h!.forward.weights = Array(c.weights[..<n])
            h!.forward.weightGradients = Array(c.weightGradients[..<n])
            h!.backward.weights = Array(c.weights[n...])
            h!.backward.weightGradients = Array(c.weightGradients[n...])
            // Contexts of finished calls (eager calls make one each) are dropped here.
            halves = halves.filter { $0.value.parent != nil }
            halves[ObjectIdentifier(c)] = h
        }
        let result = Halves(parent: c, forward: h!.forward, backward: h!.backward, backwardInputGradient: backwardInputGradient)
        // (Element by element, so that a step allocates nothing.)
        func point(_ half: LayerContext, workspace: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>,
                   outputGradient: UnsafeMutablePointer<Float>, firstWeight: Int, firstState: Int) {
            half.batch = c.batch
            half.training = c.training
            half.accumulateWeightGradients = c.accumulateWeightGradients
            half.inputs[0] = c.input
            half.inputMasks[0] = c.inputMasks[0]
            for k in half.inputs.indices.dropFirst() { half.inputs[k] = c.inputs[firstState + k] }
            for k in half.additionalOutputs.indices where firstState + k < c.additionalOutputs.count {
                half.additionalOutputs[k] = c.additionalOutputs[firstState + k]
                half.additionalOutputGradients[k] = c.additionalOutputGradients[firstState + k]
            }
            half.workspace = workspace
            half.output = output
            half.outputGradient = outputGradient
            for i in half.weights.indices {
                half.weights[i] = c.weights[firstWeight + i]
                half.weightGradients[i] = c.weightGradients[firstWeight + i]
            }
        }
        let forwardStates = forwardLayer.stateCount
        point(result.forward, workspace: c.workspace, output: forwardOutput, outputGradient: forwardGradient, firstWeight: 0,
              firstState: 0)
        point(result.backward, workspace: c.workspace + fw, output: backwardOutput, outputGradient: backwardGradient,
              firstWeight: n, firstState: forwardStates)
        return result
    }

    /// Calls `body(forwardIndex, backwardIndex, outputIndex, width)` for each output step of
    /// each sample: the backward half's step is mirrored in time when sequences are returned.
    @inline(__always)
    private func forEachStep(_ c: LayerContext, _ body: (Int, Int, Int) -> Void) {
        let steps = forwardLayer.returnSequences ? c.inputShapes[0][0] : 1
        let (fu, bu) = (forwardLayer.units, backwardLayer.units), width = c.outputShape.last!
        for r in 0..<c.batch {
            for s in 0..<steps {
                body((r * steps + s) * fu, (r * steps + steps - 1 - s) * bu, (r * steps + s) * width)
            }
        }
    }

    public override func forward(_ c: LayerContext) {
        let h = contexts(c)
        forwardLayer.forward(h.forward)
        backwardLayer.forward(h.backward)
        let (f, b, y) = (h.forward.output, h.backward.output, c.output)
        let (fu, bu) = (forwardLayer.units, backwardLayer.units)
        forEachStep(c) { i, j, o in
            switch mergeMode {
            case .concat:
                (y + o).update(from: f + i, count: fu)
                (y + o + fu).update(from: b + j, count: bu)
            case .sum: for k in 0..<fu { y[o + k] = f[i + k] + b[j + k] }
            case .mul: for k in 0..<fu { y[o + k] = f[i + k] * b[j + k] }
            case .ave: for k in 0..<fu { y[o + k] = (f[i + k] + b[j + k]) / 2 }
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dy = c.outputGradient else { return }
        let h = contexts(c)
        let (f, b) = (h.forward.output, h.backward.output)
        let (df, db) = (h.forward.outputGradient!, h.backward.outputGradient!)
        let (fu, bu) = (forwardLayer.units, backwardLayer.units)
        forEachStep(c) { i, j, o in
            switch mergeMode {
            case .concat:
                (df + i).update(from: dy + o, count: fu)
                (db + j).update(from: dy + o + fu, count: bu)
            case .sum:
                (df + i).update(from: dy + o, count: fu)
                (db + j).update(from: dy + o, count: fu)
            case .mul:
                for k in 0..<fu {
                    df[i + k] = dy[o + k] * b[j + k]
                    db[j + k] = dy[o + k] * f[i + k]
                }
            case .ave:
                for k in 0..<fu {
                    df[i + k] = dy[o + k] / 2
                    db[j + k] = dy[o + k] / 2
                }
            }
        }
        h.forward.inputGradients[0] = c.inputGradient
        h.backward.inputGradients[0] = c.inputGradient == nil ? nil : h.backwardInputGradient
        // Each half's initial states get their own gradients.
        let forwardStates = forwardLayer.stateCount
        for k in h.forward.inputGradients.indices.dropFirst() { h.forward.inputGradients[k] = c.inputGradients[k] }
        for k in h.backward.inputGradients.indices.dropFirst() {
            h.backward.inputGradients[k] = c.inputGradients[forwardStates + k]
        }
        forwardLayer.backward(h.forward)
        backwardLayer.backward(h.backward)
        if let dx = c.inputGradient {
            let other = h.backwardInputGradient
            for i in 0..<(c.batch * c.inputSize) { dx[i] += other[i] }
        }
    }
}
