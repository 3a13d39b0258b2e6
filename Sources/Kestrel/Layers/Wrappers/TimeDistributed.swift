/// Applies a layer to every timestep of a sequence independently (Keras `TimeDistributed`):
/// samples `(steps, …)` become `steps` samples of shape `…` for the wrapped layer, which shares
/// its weights across the steps. `TimeDistributed(Conv2D(…))` runs a convolution on each
/// frame of a video.
///
/// The wrapped layer runs once over all `batch × steps` rows (the buffers are laid out the
/// same), so it costs what one call on a batch that size costs. Layers whose training output
/// couples the samples of a batch (BatchNormalization) run once per step instead, over the
/// batch's samples at that step, as Keras 3 runs every wrapped layer: each step normalised
/// with its own statistics, the moving statistics updated step after step.
public final class TimeDistributed: Layer {
    public override var supportsMasking: Bool { true }

    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        guard inputsMasked.first == true else { return .none }
        // Keras hands each step's mask to the wrapped layer; one that would use it is refused by
        // its own check.
        _ = try layer.maskHandling(inputsMasked: [true], training: training)
        return .propagate
    }

    /// The layer applied at each step.
    public let layer: Layer

    /// Wraps `layer`, which must take one input.
    public init(_ layer: Layer, inputShape: [Int]? = nil, name: String? = nil) {
        self.layer = layer
        super.init(name: name, inputShape: inputShape)
    }

    private var describe: String { "\(name) (TimeDistributed)" }

    /// The wrapped layer's input shapes, kept from the build so that a step builds no arrays.
    private var stepShapes: [[Int]] = []

    /// The per-step shape for a sample shape.
    private func stepShape(_ inputShape: [Int]) throws -> [Int] {
        guard inputShape.count >= 2 else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected samples of shape (timesteps, …) with at least one axis per step, found \(inputShape)")
        }
        return Array(inputShape.dropFirst())
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard layer !== self else { throw KestrelError.invalidArgument("\(describe): a layer cannot wrap itself") }
        guard layer.activityRegularizer == nil else {
            throw KestrelError.invalidArgument(
                "\(describe): the wrapped layer '\(layer.name)' has an activity regularizer, which Kestrel applies to a model's layers only; set it on the TimeDistributed layer")
        }
        // Building the wrapped layer fixes its weights (drawn from its own generator).
        let step = try stepShape(inputShape)
        let inner = try layer.build(inputShape: step)
        stepShapes = [step]
        return [inputShape[0]] + inner
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] { layer.weightSpecs }

    public override func initializeWeight(_ index: Int, spec: WeightSpec, _ buffer: UnsafeMutableBufferPointer<Float>) {
        buffer.baseAddress!.update(from: layer.weightPointer(index), count: spec.count)
    }

    override func storeDidChange() {
        // The wrapped layer reads and writes the same weights (its getWeights, its penalties).
        guard let store, layer.store !== store || layer.storeOffset != storeOffset else { return }
        layer.rebind(to: store, offset: storeOffset)
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let step = try? stepShape(inputShapes[0]) else { return LayerFLOPs() }
        return layer.flops(batch: batch * inputShapes[0][0], inputShapes: [step])
    }

    /// Whether a call runs step by step (see the type's comment).
    private func stepwise(training: Bool) -> Bool { training && layer.couplesSamplesInTraining }

    /// Step by step: the input and output, and their gradients, in time-major order (each
    /// step's samples together), then one workspace of the wrapped layer per step.
    private struct StepwiseLayout {
        var steps = 0, inputSize = 0, outputSize = 0, innerWorkspace = 0
        var total: Int { steps * innerWorkspace }
        func inputs(_ batch: Int) -> Int { 0 }
        func outputs(_ batch: Int) -> Int { batch * steps * inputSize }
        func outputGradients(_ batch: Int) -> Int { outputs(batch) + batch * steps * outputSize }
        func inputGradients(_ batch: Int) -> Int { outputGradients(batch) + batch * steps * outputSize }
        // Whole cache lines, so a wrapped layer's doubles stay aligned.
        func workspaces(_ batch: Int) -> Int { (inputGradients(batch) + batch * steps * inputSize + 15) / 16 * 16 }
    }

    private func stepwiseLayout(batch: Int, inputShape: [Int], training: Bool) -> StepwiseLayout {
        let steps = inputShape[0], inputSize = inputShape.reduce(1, *) / steps
        let inner = stepShapes.isEmpty ? [Array(inputShape.dropFirst())] : stepShapes
        // (The wrapped layer's shape for these steps: a layer that takes other shapes with the
        // same weights may have been built for another one.)
        let outputShape = (try? layer.outputShape(forInputs: inner)) ?? layer.builtOutputShape ?? []
        return StepwiseLayout(steps: steps, inputSize: inputSize, outputSize: outputShape.reduce(1, *),
                              innerWorkspace: (layer.workspaceSize(batch: batch, inputShapes: inner, training: training) + 15) / 16 * 16)
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let step = try? stepShape(inputShapes[0]) else { return 0 }
        if stepwise(training: training) {
            let l = stepwiseLayout(batch: batch, inputShape: inputShapes[0], training: training)
            return l.workspaces(batch) + l.total
        }
        return layer.workspaceSize(batch: batch * inputShapes[0][0], inputShapes: [step], training: training)
    }

    public override func isIdentity(training: Bool) -> Bool { layer.isIdentity(training: training) }
    public override var backwardNeedsInput: Bool { layer.backwardNeedsInput }
    public override var config: [String: String] { ["name": name, "layer": layer.className] }

    public override func regularizationPenalty(addGradients: Bool) -> Float {
        layer.regularizationPenalty(addGradients: addGradients)
    }
    public override func applyConstraints() { layer.applyConstraints() }
    public override var hasWeightPenaltiesOrConstraints: Bool { layer.hasWeightPenaltiesOrConstraints }

    /// The wrapped layer's context for each of the plan's contexts, made on its first call (so
    /// later steps allocate nothing) and pointed at this call's buffers every time.
    private struct Inner { weak var parent: LayerContext?; let context: LayerContext }
    private var inners: [ObjectIdentifier: Inner] = [:]

    private func context(_ c: LayerContext) -> LayerContext {
        let steps = c.inputShapes[0][0]
        var inner = inners[ObjectIdentifier(c)]
        if inner == nil || inner!.parent !== c {
            let step = Array(c.inputShapes[0].dropFirst()), out = Array(c.outputShape.dropFirst())
            inner = Inner(parent: c, context: LayerContext(inputShapes: [step], outputShape: out, inputs: [c.input],
                                                           output: c.output, workspace: c.workspace, weights: c.weights,
                                                           weightGradients: c.weightGradients, generator: c.generator))
            // Contexts of finished calls (eager calls make one each) are dropped here.
            inners = inners.filter { $0.value.parent != nil }
            inners[ObjectIdentifier(c)] = inner
        }
        let t = inner!.context
        t.batch = c.batch * steps
        t.training = c.training
        t.accumulateWeightGradients = c.accumulateWeightGradients
        t.inputs[0] = c.input
        t.inputGradients[0] = c.inputGradient
        t.output = c.output
        t.outputGradient = c.outputGradient
        t.workspace = c.workspace
        t.generator = c.generator
        for i in t.weights.indices {
            t.weights[i] = c.weights[i]
            t.weightGradients[i] = c.weightGradients[i]
        }
        return t
    }

    public override func forward(_ c: LayerContext) {
        let t = context(c)
        if stepwise(training: c.training) {
            let l = stepwiseLayout(batch: c.batch, inputShape: c.inputShapes[0], training: true), w = c.workspace
            toTimeMajor(c.input, w + l.inputs(c.batch), steps: l.steps, batch: c.batch, features: l.inputSize, reversed: false)
            t.batch = c.batch
            for step in 0..<l.steps {
                t.inputs[0] = w + l.inputs(c.batch) + step * c.batch * l.inputSize
                t.output = w + l.outputs(c.batch) + step * c.batch * l.outputSize
                t.workspace = w + l.workspaces(c.batch) + step * l.innerWorkspace
                layer.forward(t)
            }
            fromTimeMajor(w + l.outputs(c.batch), c.output, steps: l.steps, batch: c.batch, features: l.outputSize, reversed: false)
        } else {
            layer.forward(t)
        }
        c.generator = t.generator   // the draws the wrapped layer made are used up
    }

    public override func backward(_ c: LayerContext) {
        let t = context(c)
        guard stepwise(training: c.training) else { return layer.backward(t) }
        let l = stepwiseLayout(batch: c.batch, inputShape: c.inputShapes[0], training: true), w = c.workspace
        toTimeMajor(c.outputGradient!, w + l.outputGradients(c.batch), steps: l.steps, batch: c.batch, features: l.outputSize,
                    reversed: false)
        t.batch = c.batch
        for step in 0..<l.steps {
            t.inputs[0] = w + l.inputs(c.batch) + step * c.batch * l.inputSize
            t.output = w + l.outputs(c.batch) + step * c.batch * l.outputSize
            t.outputGradient = w + l.outputGradients(c.batch) + step * c.batch * l.outputSize
            t.inputGradients[0] = c.inputGradient == nil ? nil : w + l.inputGradients(c.batch) + step * c.batch * l.inputSize
            t.workspace = w + l.workspaces(c.batch) + step * l.innerWorkspace
            // The weights are shared by the steps: their gradients add up.
            t.accumulateWeightGradients = c.accumulateWeightGradients || step > 0
            layer.backward(t)
        }
        if let dx = c.inputGradient {
            fromTimeMajor(w + l.inputGradients(c.batch), dx, steps: l.steps, batch: c.batch, features: l.inputSize, reversed: false)
        }
    }
}
