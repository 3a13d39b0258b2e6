import CKestrelKernels

/// The machinery shared by `Conv1D`, `Conv2D` and `Conv3D` (Keras `BaseConv`): a `GroupedConvolution`
/// followed by the bias and the activation, applied to each tile of output while it is in cache.
public class BaseConv: Layer {
    /// The number of spatial axes (1 for Conv1D, 2 for Conv2D, 3 for Conv3D).
    public let rank: Int
    /// The number of output channels.
    public let filters: Int
    /// The window size along each spatial axis.
    public let kernelSize: [Int]
    /// The step between windows along each spatial axis.
    public let strides: [Int]
    /// How borders are treated.
    public let padding: Padding
    /// The spacing between kernel taps along each spatial axis (atrous convolution).
    public let dilationRate: [Int]
    /// The number of channel groups; each group of filters sees only its group of input channels.
    public let groups: Int
    /// The activation applied to the output.
    public let activation: ActivationFunction
    /// Whether the layer adds a bias vector.
    public let useBias: Bool
    /// How the kernel starts (Keras default glorot-uniform).
    public let kernelInitializer: Initializer
    /// How the bias starts (Keras default zeros).
    public let biasInitializer: Initializer
    /// The penalty on the kernel added to the loss, if any.
    public let kernelRegularizer: Regularizer?
    /// The penalty on the bias added to the loss, if any.
    public let biasRegularizer: Regularizer?
    /// The projection applied to the kernel after each optimizer step, if any.
    public let kernelConstraint: Constraint?
    /// The projection applied to the bias after each optimizer step, if any.
    public let biasConstraint: Constraint?

    private let arguments: (kernel: SpatialSize, strides: SpatialSize, dilation: SpatialSize)
    private var geometry: WindowGeometry?

    init(rank: Int, filters: Int, kernelSize: SpatialSize, strides: SpatialSize, padding: Padding,
         dilationRate: SpatialSize, groups: Int, activation: ActivationFunction, useBias: Bool,
         kernelInitializer: Initializer, biasInitializer: Initializer,
         kernelRegularizer: Regularizer?, biasRegularizer: Regularizer?,
         kernelConstraint: Constraint?, biasConstraint: Constraint?,
         inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.filters = filters
        self.kernelSize = kernelSize.resolved(rank: rank) ?? kernelSize.values
        self.strides = strides.resolved(rank: rank) ?? strides.values
        self.padding = padding
        self.dilationRate = dilationRate.resolved(rank: rank) ?? dilationRate.values
        self.groups = groups
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        arguments = (kernelSize, strides, dilationRate)
        super.init(name: name, inputShape: inputShape)
        weightRegularizers = [kernelRegularizer, useBias ? biasRegularizer : nil]
        weightConstraints = [kernelConstraint, useBias ? biasConstraint : nil]
    }

    private var describe: String { "\(name) (\(className))" }

    /// The geometry for an input shape, with every argument checked.
    func makeGeometry(_ inputShape: [Int]) throws -> WindowGeometry {
        guard filters > 0 else { throw KestrelError.invalidArgument("\(describe): filters must be positive, found \(filters)") }
        guard groups > 0 else { throw KestrelError.invalidArgument("\(describe): groups must be positive, found \(groups)") }
        let kernel = try resolve(arguments.kernel, rank: rank, "kernelSize", describe)
        let strides = try resolve(arguments.strides, rank: rank, "strides", describe)
        let dilation = try resolve(arguments.dilation, rank: rank, "dilationRate", describe)
        if padding == .causal && rank != 1 {
            throw KestrelError.invalidArgument("\(describe): padding \"causal\" is only for Conv1D; use \"valid\" or \"same\"")
        }
        var g = try WindowGeometry(inputShape: inputShape, rank: rank, kernel: kernel, strides: strides,
                                   dilation: dilation, padding: padding, describe: describe)
        guard g.channels % groups == 0, filters % groups == 0 else {
            throw KestrelError.shapeMismatch(
                "\(describe): input channels (\(g.channels)) and filters (\(filters)) must both be divisible by groups (\(groups)), found input shape \(inputShape)")
        }
        g.groups = groups
        return g
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let g = try makeGeometry(inputShape)
        geometry = g
        return g.outputSpatial + [filters]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let channels = shapes[0].last!
        var specs = [WeightSpec(name: "kernel", shape: kernelSize + [channels / groups, filters],
                                initializer: kernelInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [filters], initializer: biasInitializer)) }
        return specs
    }

    private func engine(_ g: WindowGeometry) -> GroupedConvolution { GroupedConvolution(geometry: g, filters: filters) }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let g = try? makeGeometry(inputShapes[0]) else { return 0 }
        let keep = activation.derivativeNeedsInput ? batch * g.outputPositions * filters : 0
        let tiles = acceptsPoolingFusion ? engine(g).tileOutputCount(batch: batch) : 0
        return engine(g).columnCount(batch: batch) + keep + tiles
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let g = try? makeGeometry(inputShapes[0]) else { return LayerFLOPs() }
        return LayerFLOPs(product: engine(g).multiplyAdds(batch: batch))
    }

    public override var config: [String: String] {
        ["name": name, "filters": "\(filters)", "kernel_size": "\(kernelSize)", "strides": "\(strides)",
         "padding": padding.rawValue, "dilation_rate": "\(dilationRate)", "groups": "\(groups)",
         "activation": activation.kerasName, "use_bias": "\(useBias)"]
    }

    public override func forward(_ c: LayerContext) {
        let e = engine(geometry!)
        e.forward(input: c.input, kernel: c.weights[0], output: c.output, columns: c.workspace, batch: c.batch,
                  bias: useBias ? UnsafePointer(c.weights[1]) : nil, activation: activation,
                  preactivation: c.workspace + e.columnCount(batch: c.batch), pooling: c.fusedPooling,
                  tileOutputs: tileOutputs(c, e))
    }

    public override func backward(_ c: LayerContext) {
        let e = engine(geometry!)
        let rows = c.batch * e.geometry.outputPositions
        // With a fused pooling layer the engine writes this gradient (or, for max pooling, its
        // scratch) tile by tile from the pooling's.
        let dz = c.outputGradient!
        // ReLU's derivative and the bias gradient are taken tile by tile inside the engine.
        let fused = activation == .relu || activation == .linear
        if !fused {
            activationBackward(dz, output: c.output, count: rows * filters, rowLength: filters,
                               preactivation: c.workspace + e.columnCount(batch: c.batch), activation: activation)
        }
        e.backward(outputGradient: dz, input: c.input, kernel: c.weights[0], kernelGradient: c.weightGradients[0],
                   accumulate: c.accumulateWeightGradients, inputGradient: c.inputGradient,
                   columns: c.workspace, batch: c.batch, biasGradient: useBias ? c.weightGradients[1] : nil,
                   reluOutput: activation == .relu ? UnsafePointer(c.output) : nil, pooling: c.fusedPooling,
                   tileOutputs: tileOutputs(c, e))
    }

    /// Scratch for the tiles of output when a max pooling is fused: nothing reads the output
    /// or its gradient outside a tile then, so they need not go to memory.
    private func tileOutputs(_ c: LayerContext, _ e: GroupedConvolution) -> UnsafeMutablePointer<Float>? {
        guard c.fusedPooling?.isMax == true else { return nil }
        return c.workspace + e.columnCount(batch: c.batch)
    }

    /// Whether the plan may hand this layer the pooling layer that reads its output
    /// (`LayerContext.fusedPooling`): only activations whose derivative the engine applies
    /// tile by tile.
    var acceptsPoolingFusion: Bool { activation == .relu || activation == .linear }
}

/// A grouped convolution, as used by every convolution layer (a depthwise convolution is one
/// with a group per input channel).
///
/// Windows of few values (one group, `window · channels <= directDepthLimit`) are convolved
/// directly, an image at a time. Otherwise the batch is processed in tiles of a few images:
/// im2col of the tile into a column buffer, then one product per group with the kernel seen as
/// a `(window · inChannels/groups) × filters` matrix. A tile's columns stay in cache between
/// im2col and the product (a whole batch's would stream through memory), and backward rebuilds
/// them tile by tile. Kestrel's threads claim tiles (forward) or slices of consecutive tiles
/// (backward) one at a time, so that a thread slowed by something else does not hold the other
/// up; each thread has its own column buffer, each slice its own kernel gradient, summed in
/// slice order afterwards, so the result does not depend on which thread ran what. The
/// products inside a tile run single-threaded.
struct GroupedConvolution {
    let geometry: WindowGeometry
    let filters: Int

    /// The deepest window convolved directly: below it a product's inner dimension is too short
    /// for sgemm to approach its peak.
    static let directDepthLimit = 32
    /// Bytes of column matrix per tile: about half an L2 cache, leaving room for the packed
    /// kernel and the tile's output.
    static let tileBytes = 256 << 10

    var groups: Int { geometry.groups }
    /// Rows of each group's kernel matrix.
    var groupDepth: Int { geometry.windowSize * (geometry.channels / geometry.groups) }
    /// Floats in the kernel.
    var kernelCount: Int { groupDepth * filters }

    /// Multiply-adds of a forward pass over `batch` images (as many for each half of backward).
    func multiplyAdds(batch: Int) -> Int { batch * geometry.outputPositions * groupDepth * (filters / groups) * groups }

    /// A 1×1 convolution with unit strides and one group reads its input as the column matrix.
    var isPointwise: Bool {
        geometry.kernel.allSatisfy { $0 == 1 } && geometry.strides.allSatisfy { $0 == 1 } && groups == 1
    }

    /// Whether the convolution runs without a column matrix or matrix products (the direct
    /// kernels walk 2-D windows; 3-D ones always go through im2col).
    var isDirect: Bool {
        groups == 1 && !isPointwise && groupDepth <= Self.directDepthLimit && geometry.inputSpatial.count <= 2
    }

    /// Floats of one image's im2col rows.
    private var imageColumns: Int { geometry.outputPositions * geometry.windowSize * geometry.channels }

    /// Floats of column matrix per image (none for a pointwise or direct convolution).
    var columnsPerImage: Int { isPointwise || isDirect ? 0 : imageColumns }

    /// Images per tile (one for a direct convolution: its output, read again by the bias,
    /// activation and gradient passes, is then still in cache).
    var tileImages: Int { isDirect ? 1 : max(1, Self.tileBytes / (MemoryLayout<Float>.size * imageColumns)) }

    /// Backward slices per thread: enough that the threads finish close together.
    static let slicesPerThread = 4

    /// Tiles in a batch.
    func tiles(batch: Int) -> Int { (batch + tileImages - 1) / tileImages }

    /// How many threads take part: at most one per tile. (Scratch is sized by this; a call may
    /// use fewer, see `ConvolutionJob.threads`.)
    func threads(batch: Int) -> Int { max(1, min(Parallel.scratchSlots, tiles(batch: batch))) }

    /// How many slices backward cuts a batch into, each with its own kernel gradient: fixed
    /// for the process (not by the threads of the moment), so that sums are always formed alike.
    func slices(batch: Int) -> Int { max(1, min(tiles(batch: batch), Self.slicesPerThread * Parallel.scratchSlots)) }

    /// Floats of scratch for a batch: a tile's columns per thread, then the kernel and bias
    /// gradients of every slice but the first.
    func columnCount(batch: Int) -> Int {
        threads(batch: batch) * min(batch, tileImages) * columnsPerImage + (slices(batch: batch) - 1) * (kernelCount + filters)
    }

    /// Floats of scratch for the output tiles of a batch (`tileOutputs` below).
    func tileOutputCount(batch: Int) -> Int { threads(batch: batch) * min(batch, tileImages) * geometry.outputPositions * filters }

    /// `output = activation(conv(input, kernel) + bias)`; `preactivation` keeps the values
    /// before the activation where its derivative needs them. With `pooling`, each tile is
    /// pooled as soon as it is done; with `tileOutputs` too (`tileOutputCount` floats),
    /// the tiles are made there instead of in `output`, which is left as it was.
    func forward(input: UnsafePointer<Float>, kernel: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                 columns: UnsafeMutablePointer<Float>, batch: Int, bias: UnsafePointer<Float>? = nil,
                 activation: ActivationFunction = .linear, preactivation: UnsafeMutablePointer<Float>? = nil,
                 pooling: PoolingPass? = nil, tileOutputs: UnsafeMutablePointer<Float>? = nil) {
        var job = ConvolutionJob(self, input: input, kernel: kernel, output: output, columns: columns, batch: batch)
        job.pooling = pooling
        job.tileOutputs = pooling == nil ? nil : tileOutputs
        job.bias = bias
        job.activation = activation
        job.preactivation = preactivation
        Kernels.tracingShared {
            withUnsafeMutablePointer(to: &job) {
                kestrel_parallel_run_on(convolutionForwardTile, $0, $0.pointee.tiles, $0.pointee.threads)
            }
        }
    }

    /// Kernel gradient (stored, or added when `accumulate`), the bias gradient when asked
    /// for, and, when wanted, the input gradient, from the output gradient `dz`. A ReLU's
    /// derivative (given the layer's `output`) is applied to `dz` in place, tile by tile;
    /// other activations must have been applied by the caller. `columns` is scratch. With
    /// `pooling`, `dz` is first written, tile by tile, from the pooling's output gradient
    /// (into `tileOutputs` instead, when given, as in forward).
    func backward(outputGradient dz: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                  kernel: UnsafePointer<Float>, kernelGradient: UnsafeMutablePointer<Float>, accumulate: Bool,
                  inputGradient dx: UnsafeMutablePointer<Float>?, columns: UnsafeMutablePointer<Float>, batch: Int,
                  biasGradient: UnsafeMutablePointer<Float>? = nil, reluOutput: UnsafePointer<Float>? = nil,
                  pooling: PoolingPass? = nil, tileOutputs: UnsafeMutablePointer<Float>? = nil) {
        var job = ConvolutionJob(self, input: input, kernel: kernel, output: dz, columns: columns, batch: batch)
        job.pooling = pooling
        job.tileOutputs = pooling == nil ? nil : tileOutputs
        job.kernelGradient = kernelGradient
        job.biasGradient = biasGradient
        job.reluOutput = reluOutput
        job.accumulate = accumulate
        job.inputGradient = dx
        Kernels.tracingShared {
            withUnsafeMutablePointer(to: &job) {
                kestrel_parallel_run_on(convolutionBackwardSlice, $0, $0.pointee.slices, $0.pointee.threads)
            }
        }
        // Every slice after the first left its gradients in scratch.
        for slice in 1..<job.slices where job.kernelGradient != nil {
            Kernels.add(job.sliceGradient(slice), to: kernelGradient, count: kernelCount)
            if let biasGradient { Kernels.add(job.sliceBiasGradient(slice), to: biasGradient, count: filters) }
        }
    }

    /// The input gradient alone, written to `dx`, from the output gradient `dz` (left as it
    /// is): for a recurrent convolution, whose kernel gradient is taken once for all steps.
    func inputGradient(outputGradient dz: UnsafeMutablePointer<Float>, kernel: UnsafePointer<Float>,
                       into dx: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>, batch: Int) {
        // Without a kernel gradient the job never reads its input: `dx` stands in for it.
        var job = ConvolutionJob(self, input: UnsafePointer(dx), kernel: kernel, output: dz, columns: columns, batch: batch)
        job.inputGradient = dx
        Kernels.tracingShared {
            withUnsafeMutablePointer(to: &job) {
                kestrel_parallel_run_on(convolutionBackwardSlice, $0, $0.pointee.slices, $0.pointee.threads)
            }
        }
    }
}

/// Everything a tile or slice of a convolution needs, passed to the pool's threads by pointer
/// (no Swift arrays or closures, so that nothing is allocated or reference-counted per call).
struct ConvolutionJob {
    var window: kestrel_window
    var direct: Bool, pointwise: Bool
    var positions: Int, inputSize: Int, depth: Int, filters: Int, groups: Int, kernelCount: Int
    var tileImages: Int, tileColumns: Int, batch: Int, tiles: Int, slices: Int
    /// Threads the scratch is laid out for, and those taking part now (one while tracing).
    var scratchThreads: Int, threads: Int
    var input: UnsafePointer<Float>, kernel: UnsafePointer<Float>
    /// The output (forward) or the pre-activation gradient (backward).
    var output: UnsafeMutablePointer<Float>
    var columns: UnsafeMutablePointer<Float>
    var bias: UnsafePointer<Float>? = nil
    var activation: ActivationFunction = .linear
    var preactivation: UnsafeMutablePointer<Float>? = nil
    var kernelGradient: UnsafeMutablePointer<Float>? = nil
    var biasGradient: UnsafeMutablePointer<Float>? = nil
    var reluOutput: UnsafePointer<Float>? = nil
    var accumulate = false
    var inputGradient: UnsafeMutablePointer<Float>? = nil
    /// The pooling layer run on each tile after it (forward) or before it (backward).
    var pooling: PoolingPass? = nil
    /// Per-thread scratch that takes each tile of output (or of its gradient) instead of `output`.
    var tileOutputs: UnsafeMutablePointer<Float>? = nil

    init(_ e: GroupedConvolution, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
         output: UnsafeMutablePointer<Float>, columns: UnsafeMutablePointer<Float>, batch: Int) {
        window = e.geometry.window
        direct = e.isDirect
        pointwise = e.isPointwise
        positions = e.geometry.outputPositions
        inputSize = e.geometry.inputPositions * e.geometry.channels
        depth = e.groupDepth
        filters = e.filters
        groups = e.groups
        kernelCount = e.kernelCount
        tileImages = e.tileImages
        tileColumns = min(batch, tileImages) * e.columnsPerImage
        self.batch = batch
        tiles = e.tiles(batch: batch)
        // One thread while the benchmark traces products: the trace is not thread-safe.
        scratchThreads = e.threads(batch: batch)
        threads = Kernels.gemmTrace == nil ? scratchThreads : 1
        slices = e.slices(batch: batch)
        self.input = input
        self.kernel = kernel
        self.output = output
        self.columns = columns
    }

    func threadColumns(_ thread: Int) -> UnsafeMutablePointer<Float> { columns + thread * tileColumns }

    /// Where `thread` makes the tile starting at image `first`: its scratch, or the tile's place in `output`.
    func tileOutput(_ thread: Int, first: Int) -> UnsafeMutablePointer<Float> {
        guard let tileOutputs else { return output + first * positions * filters }
        return tileOutputs + thread * min(batch, tileImages) * positions * filters
    }

    /// Where `slice` puts its kernel gradient: the caller's for the first, scratch for the others.
    func sliceGradient(_ slice: Int) -> UnsafeMutablePointer<Float> {
        slice == 0 ? kernelGradient! : columns + scratchThreads * tileColumns + (slice - 1) * kernelCount
    }

    /// Where `slice` puts its bias gradient, after every slice's kernel gradient.
    func sliceBiasGradient(_ slice: Int) -> UnsafeMutablePointer<Float> {
        slice == 0 ? biasGradient! : columns + scratchThreads * tileColumns + (slices - 1) * kernelCount + (slice - 1) * filters
    }

    func forward(tile: Int, thread: Int) {
        var window = window
        let columns = threadColumns(thread), fg = filters / groups
        let first = tile * tileImages, count = min(tileImages, batch - first)
        let rows = count * positions
        let x = input + first * inputSize, y = tileOutput(thread, first: first)
        if direct {
            kestrel_conv_direct_forward(x, kernel, y, &window, count, filters)
            Kernels.traceProduct(transposeA: false, transposeB: false, m: rows, n: filters, k: depth)
        } else {
            let cols: UnsafePointer<Float>
            if pointwise {
                cols = x
            } else {
                kestrel_im2col(x, columns, &window, count)
                cols = UnsafePointer(columns)
            }
            // The products add to the bias (sgemm then skips zeroing its output).
            if let bias { kestrel_fill_rows(y, bias, rows, filters) }
            for group in 0..<groups {
                Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: fg, k: depth,
                             alpha: 1, a: cols + group * depth, lda: groups * depth, b: kernel + group * fg,
                             ldb: filters, beta: bias == nil ? 0 : 1, c: y + group * fg, ldc: filters)
            }
        }
        let biasLeft = direct ? bias : nil
        if biasLeft != nil || activation != .linear {
            finishOutput(y, bias: biasLeft, rows: rows, columns: filters,
                         preactivation: preactivation.map { $0 + first * positions * filters } ?? y, activation: activation)
        }
        if var pooling { pooling.forward(tile: y, first: first, count: count) }
    }

    func backward(slice: Int, thread: Int) {
        var window = window
        // No kernel gradient: only the input's is wanted (`GroupedConvolution.inputGradient`).
        let columns = threadColumns(thread), gradient = kernelGradient == nil ? nil : sliceGradient(slice)
        let fg = filters / groups
        // A slice's later tiles add to its first one's kernel gradient.
        var add = slice == 0 && accumulate
        for tile in (slice * tiles / slices)..<((slice + 1) * tiles / slices) {
            defer { add = true }
            let first = tile * tileImages, count = min(tileImages, batch - first)
            let rows = count * positions
            let x = input + first * inputSize, dz = tileOutput(thread, first: first), g = UnsafePointer(dz)
            var reluOutput = reluOutput
            if var pooling {
                // Max pooling's gradient takes the ReLU's derivative along (see `PoolingPass`).
                let throughMax = pooling.isMax && reluOutput != nil
                pooling.backward(tile: dz, first: first, count: count, relu: throughMax)
                if throughMax { reluOutput = nil }
            }
            switch (reluOutput, biasGradient != nil) {
            case let (reluOutput?, true):
                kestrel_relu_backward_column_sums(dz, reluOutput + first * positions * filters,
                                                  rows, filters, sliceBiasGradient(slice), add ? 1 : 0)
            case let (reluOutput?, false):
                kestrel_relu_backward_in_place(dz, reluOutput + first * positions * filters, rows * filters)
            case (nil, true):
                kestrel_column_sums(g, rows, filters, sliceBiasGradient(slice), add ? 1 : 0)
            case (nil, false):
                break
            }
            if direct {
                if let gradient {
                    kestrel_conv_direct_kernel_gradient(x, g, gradient, &window, count, filters, add ? 1 : 0)
                    Kernels.traceProduct(transposeA: true, transposeB: false, m: depth, n: filters, k: rows)
                }
                if let dx = inputGradient {
                    kestrel_conv_direct_input_gradient(g, kernel, dx + first * inputSize, &window, count, filters)
                    Kernels.traceProduct(transposeA: false, transposeB: true, m: rows, n: depth, k: filters)
                }
                continue
            }
            if let gradient {
                let cols: UnsafePointer<Float>
                if pointwise {
                    cols = x
                } else {
                    kestrel_im2col(x, columns, &window, count)
                    cols = UnsafePointer(columns)
                }
                for group in 0..<groups {
                    Kernels.gemm(transposeA: true, transposeB: false, m: depth, n: fg, k: rows,
                                 alpha: 1, a: cols + group * depth, lda: groups * depth, b: g + group * fg, ldb: filters,
                                 beta: add ? 1 : 0, c: gradient + group * fg, ldc: filters)
                }
            }
            guard let dx = inputGradient else { continue }
            // The columns' gradient replaces the columns (already used above), or is the input
            // gradient itself for a pointwise convolution.
            let dxTile = dx + first * inputSize
            let dcols = pointwise ? dxTile : columns
            for group in 0..<groups {
                Kernels.gemm(transposeA: false, transposeB: true, m: rows, n: depth, k: fg,
                             alpha: 1, a: g + group * fg, lda: filters, b: kernel + group * fg, ldb: filters,
                             beta: 0, c: dcols + group * depth, ldc: groups * depth)
            }
            if !pointwise { kestrel_col2im(dcols, dxTile, &window, count) }
        }
        // A slice that got no tile still owes a defined (zero) gradient.
        if !add {
            gradient?.update(repeating: 0, count: kernelCount)
            if biasGradient != nil { sliceBiasGradient(slice).update(repeating: 0, count: filters) }
        }
    }
}

private let convolutionForwardTile: kestrel_task = { context, tile, thread in
    context!.assumingMemoryBound(to: ConvolutionJob.self).pointee.forward(tile: tile, thread: thread)
}

private let convolutionBackwardSlice: kestrel_task = { context, slice, thread in
    context!.assumingMemoryBound(to: ConvolutionJob.self).pointee.backward(slice: slice, thread: thread)
}

/// Adds the bias to each row and applies the activation, fused into one pass for ReLU and
/// linear; keeps the pre-activation values in `preactivation` when the derivative needs them.
func finishOutput(_ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, columns: Int,
                  preactivation: UnsafeMutablePointer<Float>, activation: ActivationFunction) {
    switch activation {
    case .relu, .linear:
        if bias != nil || activation == .relu {
            kestrel_bias_relu_rows(y, bias, rows, columns, activation == .relu ? 1 : 0)
        }
    default:
        if let bias { kestrel_bias_relu_rows(y, bias, rows, columns, 0) }
        if activation.derivativeNeedsInput { preactivation.update(from: y, count: rows * columns) }
        activation.apply(y, y, count: rows * columns, rowLength: columns)
    }
}

/// Turns the output gradient into the pre-activation gradient in place.
func activationBackward(_ dy: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int, rowLength: Int,
                        preactivation: UnsafePointer<Float>, activation: ActivationFunction) {
    switch activation {
    case .linear: break
    case .relu: kestrel_relu_backward_in_place(dy, output, count)
    default:
        activation.backward(x: activation.derivativeNeedsInput ? preactivation : nil, y: output, dy: dy, dx: dy,
                            count: count, rowLength: rowLength)
    }
}
