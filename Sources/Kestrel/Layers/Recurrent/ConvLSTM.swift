import CKestrelKernels

/// What `ConvLSTM1D`, `ConvLSTM2D` and `ConvLSTM3D` share (Keras `ConvLSTM`): an LSTM whose
/// input and recurrent transformations are convolutions, over sequences of images (or of
/// sequences, or of volumes), as in precipitation nowcasting and next-frame prediction.
///
/// Input samples are `(timesteps,) + spatial + (channels,)`; the state of every step is an
/// image `outputSpatial + (filters,)`, where `outputSpatial` is the input convolution's output
/// (Keras's formulas for `strides`, `padding`, `dilationRate`). The recurrent convolution runs
/// with unit strides and "same" padding, as in Keras. Weights use Keras's layout and gate order
/// (input, forget, cell, output): `kernel kernelSize + (channels, 4·filters)`,
/// `recurrent_kernel kernelSize + (filters, 4·filters)`, `bias (4·filters)`, so Keras weights
/// load unchanged.
///
/// Forward convolves every step's input at once (one batched convolution over all steps), then
/// runs one recurrent convolution per step and the LSTM's fused gate loop with each position as
/// a row. Backward through time takes one recurrent input gradient per step; both kernels'
/// gradients are one batched convolution each at the end. `dropout` and `recurrentDropout`
/// draw one mask per gate and sequence, as Keras's ConvLSTM cells do: the four gates then
/// read differently dropped copies of the input (or state), which run as one convolution with
/// four groups. With `returnState` a call also returns the final hidden and cell states, and a
/// call may start from given ones (Keras's `initial_state`). Masking and statefulness are not
/// supported.
public class BaseConvLSTM: Layer {
    /// The number of spatial axes of each step (1, 2 or 3).
    public let rank: Int
    /// The number of channels of the state and of the output.
    public let filters: Int
    /// The window of both convolutions along each spatial axis.
    public let kernelSize: [Int]
    /// The input convolution's step along each spatial axis.
    public let strides: [Int]
    /// How the input convolution treats borders (the recurrent one is always "same").
    public let padding: Padding
    /// The input convolution's spacing between kernel taps.
    public let dilationRate: [Int]
    /// The activation of the cell's candidate values and of the cell state (Keras default tanh).
    public let activation: ActivationFunction
    /// The activation of the input, forget and output gates (Keras default sigmoid).
    public let recurrentActivation: ActivationFunction
    /// Whether the layer adds a bias to the gates.
    public let useBias: Bool
    /// How the input kernel starts (Keras default glorot-uniform).
    public let kernelInitializer: Initializer
    /// How the recurrent kernel starts (Keras default orthogonal).
    public let recurrentInitializer: Initializer
    /// How the bias starts (Keras default zeros).
    public let biasInitializer: Initializer
    /// Whether the forget gate's bias starts at one instead (Keras default true).
    public let unitForgetBias: Bool
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
    /// The fraction of input values dropped in training: one mask per gate and sequence, the
    /// same at every step, the kept values scaled by `1 / (1 - dropout)`.
    public let dropout: Float
    /// The fraction of the previous state's values dropped in training, drawn like `dropout`.
    public let recurrentDropout: Float
    /// The seed that fixes the dropout masks independently of the global generator, if given.
    public let seed: UInt64?
    /// Whether the output holds the hidden state of every step instead of only the last.
    public let returnSequences: Bool
    /// Whether a call also returns the final hidden and cell states.
    public let returnState: Bool
    /// Whether the sequence is read from its last step to its first; returned sequences are
    /// then in that reading order, as in Keras.
    public let goBackwards: Bool

    private let arguments: (kernel: SpatialSize, strides: SpatialSize, dilation: SpatialSize)
    /// The geometries of the input and recurrent convolutions, resolved when the layer is built
    /// (forward must not allocate), each also for four dropped copies side by side.
    private var geometries: Geometries?

    private struct Geometries {
        var input: WindowGeometry, recurrent: WindowGeometry
        var droppedInput: WindowGeometry, droppedRecurrent: WindowGeometry
    }

    init(rank: Int, filters: Int, kernelSize: SpatialSize, strides: SpatialSize, padding: Padding,
         dilationRate: SpatialSize, activation: ActivationFunction, recurrentActivation: ActivationFunction,
         useBias: Bool, kernelInitializer: Initializer, recurrentInitializer: Initializer, biasInitializer: Initializer,
         unitForgetBias: Bool, regularizers: (kernel: Regularizer?, recurrent: Regularizer?, bias: Regularizer?),
         constraints: (kernel: Constraint?, recurrent: Constraint?, bias: Constraint?),
         dropout: Float, recurrentDropout: Float, seed: UInt64?, returnSequences: Bool, returnState: Bool,
         goBackwards: Bool, inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.filters = filters
        self.kernelSize = kernelSize.resolved(rank: rank) ?? kernelSize.values
        self.strides = strides.resolved(rank: rank) ?? strides.values
        self.padding = padding
        self.dilationRate = dilationRate.resolved(rank: rank) ?? dilationRate.values
        arguments = (kernelSize, strides, dilationRate)
        self.activation = activation
        self.recurrentActivation = recurrentActivation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.recurrentInitializer = recurrentInitializer
        self.biasInitializer = biasInitializer
        self.unitForgetBias = unitForgetBias
        (kernelRegularizer, recurrentRegularizer, biasRegularizer) = regularizers
        (kernelConstraint, recurrentConstraint, biasConstraint) = constraints
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.seed = seed
        self.returnSequences = returnSequences
        self.returnState = returnState
        self.goBackwards = goBackwards
        super.init(name: name, inputShape: inputShape)
        if let seed { generator = RandomGenerator(seed: seed) }
        weightRegularizers = [regularizers.kernel, regularizers.recurrent] + (useBias ? [regularizers.bias] : [])
        weightConstraints = [constraints.kernel, constraints.recurrent] + (useBias ? [constraints.bias] : [])
    }

    private var describe: String { "\(name) (\(className))" }

    /// The geometries for an input shape `(timesteps,) + spatial + (channels,)`, every argument checked.
    private func makeGeometries(_ inputShape: [Int]) throws -> Geometries {
        guard filters > 0 else { throw KestrelError.invalidArgument("\(describe): filters must be positive, found \(filters)") }
        try checkRecurrentArguments(self, units: filters, activations: [("activation", activation),
                                                                          ("recurrentActivation", recurrentActivation)])
        for (argument, rate) in [("dropout", dropout), ("recurrentDropout", recurrentDropout)] where !(rate >= 0 && rate < 1) {
            throw KestrelError.invalidArgument("\(describe): \(argument) must be in [0, 1), found \(rate)")
        }
        guard padding != .causal else {
            throw KestrelError.invalidArgument("\(describe): padding must be \"valid\" or \"same\", found \"causal\"")
        }
        guard inputShape.count == rank + 2, inputShape.allSatisfy({ $0 > 0 }) else {
            let layout = "(timesteps, " + sampleLayout(rank: rank).dropFirst()
            throw KestrelError.shapeMismatch("\(describe): expected samples of rank \(rank + 2) \(layout), found shape \(inputShape)")
        }
        let kernel = try resolve(arguments.kernel, rank: rank, "kernelSize", describe)
        let strides = try resolve(arguments.strides, rank: rank, "strides", describe)
        let dilation = try resolve(arguments.dilation, rank: rank, "dilationRate", describe)
        let step = Array(inputShape.dropFirst())
        let input = try WindowGeometry(inputShape: step, rank: rank, kernel: kernel, strides: strides, dilation: dilation,
                                       padding: padding, describe: describe)
        let ones = Array(repeating: 1, count: rank)
        let recurrent = try WindowGeometry(inputShape: input.outputSpatial + [filters], rank: rank, kernel: kernel,
                                           strides: ones, dilation: ones, padding: .same, describe: describe)
        func dropped(_ g: WindowGeometry) -> WindowGeometry {
            var d = g
            d.channels *= 4
            d.groups = 4
            return d
        }
        return Geometries(input: input, recurrent: recurrent, droppedInput: dropped(input), droppedRecurrent: dropped(recurrent))
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let g = try makeGeometries(inputShape)
        geometries = g
        let state = g.input.outputSpatial + [filters]
        return returnSequences ? [inputShape[0]] + state : state
    }

    /// The sequence, then optionally the initial hidden and cell states (each of the state's shape).
    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        guard shapes.count == 1 || shapes.count == 3 else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected a sequence and optionally 2 initial states (hidden, cell), found \(shapes.count) inputs")
        }
        let output = try outputShape(for: shapes[0])
        let state = returnSequences ? Array(output.dropFirst()) : output
        for (k, shape) in shapes.dropFirst().enumerated() where shape != state {
            throw KestrelError.shapeMismatch("\(describe): initial state \(k) must have the state's shape \(state), found \(shape)")
        }
        return output
    }

    /// With `returnState`, the final hidden and cell states.
    public override func additionalOutputShapes(forInputs shapes: [[Int]]) -> [[Int]] {
        guard returnState, let g = geometries else { return [] }
        let state = g.input.outputSpatial + [filters]
        return [state, state]
    }

    /// Calls the layer on `input`, starting from `initialState` (`[h, c]`) if given, and returns
    /// Keras's list: the output, then with `returnState` the final hidden and cell states.
    public func callAsFunction(_ input: SymbolicTensor, initialState: [SymbolicTensor] = []) throws -> [SymbolicTensor] {
        try callReturningAll([input] + initialState)
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let channels = shapes[0].last!
        var specs = [WeightSpec(name: "kernel", shape: kernelSize + [channels, 4 * filters], initializer: kernelInitializer),
                     WeightSpec(name: "recurrent_kernel", shape: kernelSize + [filters, 4 * filters],
                                initializer: recurrentInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [4 * filters], initializer: biasInitializer)) }
        return specs
    }

    public override func initializeWeight(_ index: Int, spec: WeightSpec, _ buffer: UnsafeMutableBufferPointer<Float>) {
        guard spec.name == "bias", unitForgetBias else { return super.initializeWeight(index, spec: spec, buffer) }
        // Keras: concat(init(filters), ones(filters), init(2·filters)).
        let u = filters
        biasInitializer.fill(UnsafeMutableBufferPointer(rebasing: buffer[0..<u]), shape: [u], generator: &generator)
        UnsafeMutableBufferPointer(rebasing: buffer[u..<2 * u]).update(repeating: 1)
        biasInitializer.fill(UnsafeMutableBufferPointer(rebasing: buffer[2 * u..<4 * u]), shape: [2 * u], generator: &generator)
    }

    public override var config: [String: String] {
        ["name": name, "filters": "\(filters)", "kernel_size": "\(kernelSize)", "strides": "\(strides)",
         "padding": padding.rawValue, "dilation_rate": "\(dilationRate)", "activation": activation.kerasName,
         "recurrent_activation": recurrentActivation.kerasName, "use_bias": "\(useBias)",
         "unit_forget_bias": "\(unitForgetBias)", "dropout": "\(dropout)", "recurrent_dropout": "\(recurrentDropout)",
         "return_sequences": "\(returnSequences)", "return_state": "\(returnState)", "go_backwards": "\(goBackwards)"]
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let g = try? makeGeometries(inputShapes[0]) else { return LayerFLOPs() }
        let n = inputShapes[0][0] * batch
        let input = GroupedConvolution(geometry: g.input, filters: 4 * filters).multiplyAdds(batch: n)
        let recurrent = GroupedConvolution(geometry: g.recurrent, filters: 4 * filters).multiplyAdds(batch: n)
        // As for LSTM: the state's gradient through the recurrent kernel is needed whether or
        // not the input's is.
        return LayerFLOPs(forward: 2 * (input + recurrent), weightGradients: 2 * (input + 2 * recurrent),
                          inputGradients: 2 * input)
    }

    // MARK: - Workspace

    /// Where everything sits in the workspace, time-major in reading order (step `s` of every
    /// sample contiguous); `n = steps · batch` images.
    private struct Layout {
        // Backward's buffers are there in inference too: a gradient may be asked of an
        // inference-mode call.
        /// Floats of a step's input image, of a state image, of a gate image (4·filters channels).
        let image: Int, state: Int, gate: Int
        let inputGroups: Int, recurrentGroups: Int
        /// Inputs `(n, image)`; with dropout, then the four dropped copies `(n, 4·image)` and
        /// the masks `(4, batch, image)`.
        var x = 0, droppedX = 0, inputMasks = 0
        /// Gate values after their activations `(n, gate)`, and their pre-activation gradients.
        var gates = 0, gateGradients = 0
        /// Hidden and cell states `(steps + 1, batch, state)`; slot 0 is the initial state.
        var hidden = 0, cell = 0
        /// `activation(cell)` of every step `(n, state)`.
        var squashed = 0
        /// With recurrent dropout, the dropped states every step multiplied `(n, 4·state)` and the
        /// masks `(4, batch, state)`.
        var droppedHidden = 0, recurrentMasks = 0
        /// A step's recurrent product `(batch, gate)`; backward's state gradients and a step's
        /// gradient of the dropped states `(batch, 4·state)`.
        var product = 0, hiddenGradient = 0, cellGradient = 0, droppedGradient = 0
        /// The input gradient, time-major `(n, inputGroups · image)`, then the convolutions' scratch.
        var inputGradient = 0, columns = 0, total = 0

        init(_ layer: BaseConvLSTM, _ g: Geometries, steps t: Int, batch b: Int, training: Bool) {
            let n = t * b, f = 4 * layer.filters
            image = g.input.inputPositions * g.input.channels
            state = g.recurrent.inputPositions * layer.filters
            gate = g.input.outputPositions * f
            inputGroups = training && layer.dropout > 0 ? 4 : 1
            recurrentGroups = training && layer.recurrentDropout > 0 ? 4 : 1
            var offset = 0
            func take(_ count: Int) -> Int { defer { offset += count }; return offset }
            x = take(n * image)
            if inputGroups > 1 { droppedX = take(4 * n * image); inputMasks = take(4 * b * image) }
            gates = take(n * gate)
            hidden = take((t + 1) * b * state)
            cell = take((t + 1) * b * state)
            squashed = take(n * state)
            if recurrentGroups > 1 { droppedHidden = take(4 * n * state); recurrentMasks = take(4 * b * state) }
            product = take(b * gate)
            gateGradients = take(n * gate)
            hiddenGradient = take(b * state)
            cellGradient = take(b * state)
            if recurrentGroups > 1 { droppedGradient = take(4 * b * state) }
            inputGradient = take(inputGroups * n * image)
            let input = GroupedConvolution(geometry: inputGroups > 1 ? g.droppedInput : g.input, filters: f)
            let recurrent = GroupedConvolution(geometry: recurrentGroups > 1 ? g.droppedRecurrent : g.recurrent, filters: f)
            columns = take(max(input.columnCount(batch: n), recurrent.columnCount(batch: n), recurrent.columnCount(batch: b)))
            total = offset
        }
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let g = try? makeGeometries(inputShapes[0]) else { return 0 }
        return Layout(self, g, steps: inputShapes[0][0], batch: batch, training: training).total
    }

    /// The convolution engines of this call: the input's and the recurrent one, each over four
    /// dropped copies when that side drops values.
    private func engines(_ l: Layout) -> (input: GroupedConvolution, recurrent: GroupedConvolution) {
        let g = geometries!
        return (GroupedConvolution(geometry: l.inputGroups > 1 ? g.droppedInput : g.input, filters: 4 * filters),
                GroupedConvolution(geometry: l.recurrentGroups > 1 ? g.droppedRecurrent : g.recurrent, filters: 4 * filters))
    }

    /// Fills `count` mask values: `1 / (1 - rate)` with probability `1 - rate`, else 0.
    private func drawMask(_ c: LayerContext, _ mask: UnsafeMutablePointer<Float>, count: Int, rate: Float) {
        let keep = 1 / (1 - rate)
        for i in 0..<count { mask[i] = c.generator.nextUnitFloat() >= rate ? keep : 0 }
    }

    /// Four dropped copies of `images` images of `width` channels-last values side by side, as
    /// one image of 4× the channels: copy `k` of row `r` is `x · masks[k][r]`.
    private func interleaveDropped(_ x: UnsafePointer<Float>, masks: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                                   images: Int, batch b: Int, width: Int, channels: Int) {
        let positions = width / channels
        for image in 0..<images {
            let r = image % b, from = x + image * width, to = y + image * 4 * width
            for p in 0..<positions {
                for k in 0..<4 {
                    let m = masks + (k * b + r) * width + p * channels, out = to + (p * 4 + k) * channels
                    for ch in 0..<channels { out[ch] = from[p * channels + ch] * m[ch] }
                }
            }
        }
    }

    /// The gradient of `images` images from that of their four dropped copies (`interleaveDropped`'s
    /// layout): `Σₖ dy[k] · masks[k][r]`.
    private func sumDropped(_ dy: UnsafePointer<Float>, masks: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>,
                            images: Int, batch b: Int, width: Int, channels: Int) {
        let positions = width / channels
        for image in 0..<images {
            let r = image % b, from = dy + image * 4 * width, to = dx + image * width
            for p in 0..<positions {
                for ch in 0..<channels {
                    var sum: Float = 0
                    for k in 0..<4 { sum += from[(p * 4 + k) * channels + ch] * masks[(k * b + r) * width + p * channels + ch] }
                    to[p * channels + ch] = sum
                }
            }
        }
    }

    // MARK: - Forward and backward

    public override func forward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], b = c.batch, n = t * b
        let l = Layout(self, geometries!, steps: t, batch: b, training: c.training), w = c.workspace
        let (inputEngine, recurrentEngine) = engines(l)
        let x = w + l.x, gates = w + l.gates, hidden = w + l.hidden, cell = w + l.cell, columns = w + l.columns
        toTimeMajor(c.input, x, steps: t, batch: b, features: l.image, reversed: goBackwards)
        if l.inputGroups > 1 {
            drawMask(c, w + l.inputMasks, count: 4 * b * l.image, rate: dropout)
            interleaveDropped(x, masks: w + l.inputMasks, into: w + l.droppedX, images: n, batch: b, width: l.image,
                              channels: geometries!.input.channels)
        }
        if l.recurrentGroups > 1 {
            drawMask(c, w + l.recurrentMasks, count: 4 * b * l.state, rate: recurrentDropout)
        }
        // Every step's input convolution at once; the gate loop adds the bias.
        inputEngine.forward(input: l.inputGroups > 1 ? w + l.droppedX : x, kernel: c.weights[0], output: gates,
                            columns: columns, batch: n)
        let initial = c.inputs.count > 1
        // State by state, not through an array: a step allocates nothing.
        func start(_ k: Int, _ slot: UnsafeMutablePointer<Float>) {
            if initial { slot.update(from: c.inputs[1 + k], count: b * l.state) } else { slot.update(repeating: 0, count: b * l.state) }
        }
        start(0, hidden)
        start(1, cell)
        let bias: UnsafePointer<Float>? = useBias ? UnsafePointer(c.weights[2]) : nil
        for s in 0..<t {
            let z = gates + s * b * l.gate, state = hidden + s * b * l.state
            if l.recurrentGroups > 1 {
                // Kept for the kernel's gradient, zero for a step 0 without initial state.
                interleaveDropped(state, masks: w + l.recurrentMasks, into: w + l.droppedHidden + s * b * 4 * l.state,
                                  images: b, batch: b, width: l.state, channels: filters)
            }
            if s > 0 || initial {
                let source = l.recurrentGroups > 1 ? w + l.droppedHidden + s * b * 4 * l.state : state
                recurrentEngine.forward(input: source, kernel: c.weights[1], output: w + l.product, columns: columns, batch: b)
                Kernels.add(w + l.product, to: z, count: b * l.gate)
            }
            LSTM.gatesForward(z, bias: bias, previousCell: cell + s * b * l.state, cell: cell + (s + 1) * b * l.state,
                              squashed: w + l.squashed + s * b * l.state, hidden: hidden + (s + 1) * b * l.state,
                              rows: b * l.state / filters, units: filters, activation: activation,
                              recurrentActivation: recurrentActivation)
        }
        if returnSequences {
            fromTimeMajor(hidden + b * l.state, c.output, steps: t, batch: b, features: l.state, reversed: false)
        } else {
            c.output.update(from: hidden + t * b * l.state, count: b * l.state)
        }
        func finish(_ k: Int, _ states: UnsafeMutablePointer<Float>) {
            if k < c.additionalOutputs.count { c.additionalOutputs[k]?.update(from: states + t * b * l.state, count: b * l.state) }
        }
        finish(0, hidden)
        finish(1, cell)
    }

    public override func backward(_ c: LayerContext) {
        let t = c.inputShapes[0][0], b = c.batch, n = t * b
        let l = Layout(self, geometries!, steps: t, batch: b, training: c.training), w = c.workspace
        let (inputEngine, recurrentEngine) = engines(l)
        let gates = w + l.gates, dz = w + l.gateGradients, cell = w + l.cell, columns = w + l.columns
        let dh = w + l.hiddenGradient, dc = w + l.cellGradient, dy = c.outputGradient!
        func seed(_ k: Int, _ slot: UnsafeMutablePointer<Float>) {
            if k < c.additionalOutputGradients.count, let d = c.additionalOutputGradients[k] {
                slot.update(from: d, count: b * l.state)
            } else {
                slot.update(repeating: 0, count: b * l.state)
            }
        }
        seed(0, dh)
        seed(1, dc)
        let initial = c.inputs.count > 1
        for s in stride(from: t - 1, through: 0, by: -1) {
            if returnSequences {
                for r in 0..<b { Kernels.add(dy + (r * t + s) * l.state, to: dh + r * l.state, count: l.state) }
            } else if s == t - 1 {
                Kernels.add(dy, to: dh, count: b * l.state)
            }
            let dzs = dz + s * b * l.gate
            LSTM.gatesBackward(gates + s * b * l.gate, previousCell: cell + s * b * l.state,
                               squashed: w + l.squashed + s * b * l.state, dh: dh, dc: dc, dz: dzs,
                               rows: b * l.state / filters, units: filters, activation: activation,
                               recurrentActivation: recurrentActivation)
            guard s > 0 || initial else { continue }
            if l.recurrentGroups > 1 {
                recurrentEngine.inputGradient(outputGradient: dzs, kernel: c.weights[1], into: w + l.droppedGradient,
                                              columns: columns, batch: b)
                sumDropped(w + l.droppedGradient, masks: w + l.recurrentMasks, into: dh, images: b, batch: b,
                           width: l.state, channels: filters)
            } else {
                recurrentEngine.inputGradient(outputGradient: dzs, kernel: c.weights[1], into: dh, columns: columns, batch: b)
            }
        }
        func initialGradient(_ k: Int, _ state: UnsafeMutablePointer<Float>) {
            if 1 + k < c.inputGradients.count { c.inputGradients[1 + k]?.update(from: state, count: b * l.state) }
        }
        initialGradient(0, dh)
        initialGradient(1, dc)
        // Both kernels' gradients over every step at once: the states each step multiplied
        // (slot 0 the initial one, zero without) and the inputs, against the gates' gradients.
        recurrentEngine.backward(outputGradient: dz, input: l.recurrentGroups > 1 ? w + l.droppedHidden : w + l.hidden,
                                 kernel: c.weights[1], kernelGradient: c.weightGradients[1],
                                 accumulate: c.accumulateWeightGradients, inputGradient: nil, columns: columns, batch: n)
        let dx = c.inputGradient == nil ? nil : w + l.inputGradient
        inputEngine.backward(outputGradient: dz, input: l.inputGroups > 1 ? w + l.droppedX : w + l.x, kernel: c.weights[0],
                             kernelGradient: c.weightGradients[0], accumulate: c.accumulateWeightGradients,
                             inputGradient: dx, columns: columns, batch: n, biasGradient: useBias ? c.weightGradients[2] : nil)
        guard let dx, let inputGradient = c.inputGradient else { return }
        var timeMajor = dx
        if l.inputGroups > 1 {
            // The four copies' gradients summed through their masks, into the inputs' place.
            sumDropped(dx, masks: w + l.inputMasks, into: w + l.x, images: n, batch: b, width: l.image,
                       channels: geometries!.input.channels)
            timeMajor = w + l.x
        }
        fromTimeMajor(timeMajor, inputGradient, steps: t, batch: b, features: l.image, reversed: goBackwards)
    }
}

/// A convolutional LSTM over sequences of images (Keras `ConvLSTM2D`): samples
/// `(timesteps, height, width, channels)`, each state an image `(height', width', filters)`.
public final class ConvLSTM2D: BaseConvLSTM {
    /// A ConvLSTM with `filters` state channels and a `kernelSize` window (`3` or `[3, 5]`);
    /// defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, activation: ActivationFunction = .tanh,
                recurrentActivation: ActivationFunction = .sigmoid, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal,
                biasInitializer: Initializer = .zeros, unitForgetBias: Bool = true, kernelRegularizer: Regularizer? = nil,
                recurrentRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, dropout: Float = 0,
                recurrentDropout: Float = 0, seed: UInt64? = nil, returnSequences: Bool = false, returnState: Bool = false,
                goBackwards: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   dilationRate: dilationRate, activation: activation, recurrentActivation: recurrentActivation,
                   useBias: useBias, kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer,
                   biasInitializer: biasInitializer, unitForgetBias: unitForgetBias,
                   regularizers: (kernelRegularizer, recurrentRegularizer, biasRegularizer),
                   constraints: (kernelConstraint, recurrentConstraint, biasConstraint), dropout: dropout,
                   recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, inputShape: inputShape, name: name)
        self.activityRegularizer = activityRegularizer
    }
}

/// A convolutional LSTM over sequences of sequences (Keras `ConvLSTM1D`): samples
/// `(timesteps, steps, channels)`, each state `(steps', filters)`.
public final class ConvLSTM1D: BaseConvLSTM {
    /// A ConvLSTM with `filters` state channels and a window of `kernelSize` steps; defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, activation: ActivationFunction = .tanh,
                recurrentActivation: ActivationFunction = .sigmoid, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal,
                biasInitializer: Initializer = .zeros, unitForgetBias: Bool = true, kernelRegularizer: Regularizer? = nil,
                recurrentRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, dropout: Float = 0,
                recurrentDropout: Float = 0, seed: UInt64? = nil, returnSequences: Bool = false, returnState: Bool = false,
                goBackwards: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 1, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   dilationRate: dilationRate, activation: activation, recurrentActivation: recurrentActivation,
                   useBias: useBias, kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer,
                   biasInitializer: biasInitializer, unitForgetBias: unitForgetBias,
                   regularizers: (kernelRegularizer, recurrentRegularizer, biasRegularizer),
                   constraints: (kernelConstraint, recurrentConstraint, biasConstraint), dropout: dropout,
                   recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, inputShape: inputShape, name: name)
        self.activityRegularizer = activityRegularizer
    }
}

/// A convolutional LSTM over sequences of volumes (Keras `ConvLSTM3D`): samples
/// `(timesteps, depth, height, width, channels)`, each state `(depth', height', width', filters)`.
public final class ConvLSTM3D: BaseConvLSTM {
    /// A ConvLSTM with `filters` state channels and a `kernelSize` window (`3` or `[2, 3, 3]`);
    /// defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, activation: ActivationFunction = .tanh,
                recurrentActivation: ActivationFunction = .sigmoid, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, recurrentInitializer: Initializer = .orthogonal,
                biasInitializer: Initializer = .zeros, unitForgetBias: Bool = true, kernelRegularizer: Regularizer? = nil,
                recurrentRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                activityRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                recurrentConstraint: Constraint? = nil, biasConstraint: Constraint? = nil, dropout: Float = 0,
                recurrentDropout: Float = 0, seed: UInt64? = nil, returnSequences: Bool = false, returnState: Bool = false,
                goBackwards: Bool = false, inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 3, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   dilationRate: dilationRate, activation: activation, recurrentActivation: recurrentActivation,
                   useBias: useBias, kernelInitializer: kernelInitializer, recurrentInitializer: recurrentInitializer,
                   biasInitializer: biasInitializer, unitForgetBias: unitForgetBias,
                   regularizers: (kernelRegularizer, recurrentRegularizer, biasRegularizer),
                   constraints: (kernelConstraint, recurrentConstraint, biasConstraint), dropout: dropout,
                   recurrentDropout: recurrentDropout, seed: seed, returnSequences: returnSequences,
                   returnState: returnState, goBackwards: goBackwards, inputShape: inputShape, name: name)
        self.activityRegularizer = activityRegularizer
    }
}
