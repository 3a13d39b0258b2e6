import CKestrelKernels

/// The machinery shared by `Conv1D` and `Conv2D` (Keras `BaseConv`): a `GroupedConvolution`
/// followed by the bias and the activation, applied to each tile of output while it is in cache.
public class BaseConv: Layer {
    /// The number of spatial axes (1 for Conv1D, 2 for Conv2D).
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
        return engine(g).columnCount(batch: batch) + keep
    }

    public override var config: [String: String] {
        ["name": name, "filters": "\(filters)", "kernel_size": "\(kernelSize)", "strides": "\(strides)",
         "padding": padding.rawValue, "dilation_rate": "\(dilationRate)", "groups": "\(groups)",
         "activation": activation.kerasName, "use_bias": "\(useBias)"]
    }

    public override var hasWeightPenaltiesOrConstraints: Bool {
        kernelRegularizer != nil || biasRegularizer != nil || kernelConstraint != nil || biasConstraint != nil
    }

    public override func regularizationPenalty(addGradients: Bool) -> Float {
        weightPenalty(self, [kernelRegularizer, useBias ? biasRegularizer : nil], addGradients: addGradients)
    }

    public override func applyConstraints() {
        constrainWeights(self, [kernelConstraint, useBias ? biasConstraint : nil])
    }

    public override func forward(_ c: LayerContext) {
        let e = engine(geometry!)
        let bias = useBias ? UnsafePointer(c.weights[1]) : nil
        let preactivation = c.workspace + e.columnCount(batch: c.batch)
        e.forward(input: c.input, kernel: c.weights[0], output: c.output, columns: c.workspace, batch: c.batch) { first, rows in
            finishOutput(c.output + first * filters, bias: bias, rows: rows, columns: filters,
                         preactivation: preactivation + first * filters, activation: activation)
        }
    }

    public override func backward(_ c: LayerContext) {
        let e = engine(geometry!)
        let rows = c.batch * e.geometry.outputPositions
        let dz = c.outputGradient!
        activationBackward(dz, output: c.output, count: rows * filters, rowLength: filters,
                           preactivation: c.workspace + e.columnCount(batch: c.batch), activation: activation)
        if useBias {
            kestrel_column_sums(dz, rows, filters, c.weightGradients[1], c.accumulateWeightGradients ? 1 : 0)
        }
        e.backward(outputGradient: dz, input: c.input, kernel: c.weights[0], kernelGradient: c.weightGradients[0],
                   accumulate: c.accumulateWeightGradients, inputGradient: c.inputGradient,
                   columns: c.workspace, batch: c.batch)
    }
}

/// A grouped convolution, as used by every convolution layer (a depthwise convolution is one
/// with a group per input channel).
///
/// Windows of few values (one group, `window · channels <= directDepthLimit`) are convolved
/// directly. Otherwise the batch is processed in tiles of a few images: im2col of the tile into
/// `columns`, then one product per group with the kernel seen as a `(window · inChannels/groups)
/// × filters` matrix. A tile's columns stay in cache between im2col and the product (a whole
/// batch's would stream through memory), and backward rebuilds them tile by tile.
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

    /// A 1×1 convolution with unit strides and one group reads its input as the column matrix.
    var isPointwise: Bool {
        geometry.kernel.allSatisfy { $0 == 1 } && geometry.strides.allSatisfy { $0 == 1 } && groups == 1
    }

    /// Whether the convolution runs without a column matrix or matrix products.
    var isDirect: Bool { groups == 1 && !isPointwise && groupDepth <= Self.directDepthLimit }

    /// Floats of column matrix per image.
    private var columnsPerImage: Int { geometry.outputPositions * geometry.windowSize * geometry.channels }

    /// Images per tile.
    var tileImages: Int { max(1, Self.tileBytes / (MemoryLayout<Float>.size * columnsPerImage)) }

    /// Floats of column matrix for a batch: one tile's (none for a pointwise or direct convolution).
    func columnCount(batch: Int) -> Int {
        isPointwise || isDirect ? 0 : min(batch, tileImages) * columnsPerImage
    }

    /// `output = conv(input, kernel)` (no bias, no activation), tile by tile; `finish(firstRow,
    /// rows)` is called on each tile's output rows while they are still in cache.
    func forward(input: UnsafePointer<Float>, kernel: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                 columns: UnsafeMutablePointer<Float>, batch: Int, finish: (Int, Int) -> Void = { _, _ in }) {
        var window = geometry.window
        let positions = geometry.outputPositions, inputSize = geometry.inputPositions * geometry.channels
        let k = groupDepth, fg = filters / groups
        for first in stride(from: 0, to: batch, by: tileImages) {
            let count = min(tileImages, batch - first), rows = count * positions
            let x = input + first * inputSize, y = output + first * positions * filters
            if isDirect {
                kestrel_conv_direct_forward(x, kernel, y, &window, count, filters)
            } else {
                let cols: UnsafePointer<Float>
                if isPointwise {
                    cols = x
                } else {
                    kestrel_im2col(x, columns, &window, count)
                    cols = UnsafePointer(columns)
                }
                for group in 0..<groups {
                    Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: fg, k: k,
                                 alpha: 1, a: cols + group * k, lda: groups * k, b: kernel + group * fg, ldb: filters,
                                 beta: 0, c: y + group * fg, ldc: filters)
                }
            }
            finish(first * positions, rows)
        }
    }

    /// Kernel gradient (stored, or added when `accumulate`) and, when wanted, the input
    /// gradient, from the pre-activation gradient `outputGradient`; `columns` is scratch.
    func backward(outputGradient dz: UnsafePointer<Float>, input: UnsafePointer<Float>, kernel: UnsafePointer<Float>,
                  kernelGradient: UnsafeMutablePointer<Float>, accumulate: Bool,
                  inputGradient dx: UnsafeMutablePointer<Float>?, columns: UnsafeMutablePointer<Float>, batch: Int) {
        var window = geometry.window
        if isDirect {
            kestrel_conv_direct_kernel_gradient(input, dz, kernelGradient, &window, batch, filters, accumulate ? 1 : 0)
            if let dx { kestrel_conv_direct_input_gradient(dz, kernel, dx, &window, batch, filters) }
            return
        }
        let positions = geometry.outputPositions, inputSize = geometry.inputPositions * geometry.channels
        let k = groupDepth, fg = filters / groups
        for first in stride(from: 0, to: batch, by: tileImages) {
            let count = min(tileImages, batch - first), rows = count * positions
            let x = input + first * inputSize, g = dz + first * positions * filters
            let cols: UnsafePointer<Float>
            if isPointwise {
                cols = x
            } else {
                kestrel_im2col(x, columns, &window, count)
                cols = UnsafePointer(columns)
            }
            // Later tiles add to the first one's kernel gradient.
            let beta: Float = accumulate || first > 0 ? 1 : 0
            for group in 0..<groups {
                Kernels.gemm(transposeA: true, transposeB: false, m: k, n: fg, k: rows,
                             alpha: 1, a: cols + group * k, lda: groups * k, b: g + group * fg, ldb: filters,
                             beta: beta, c: kernelGradient + group * fg, ldc: filters)
            }
            guard let dx else { continue }
            // The columns' gradient replaces the columns (already used above), or is the input
            // gradient itself for a pointwise convolution.
            let dxTile = dx + first * inputSize
            let dcols = isPointwise ? dxTile : columns
            for group in 0..<groups {
                Kernels.gemm(transposeA: false, transposeB: true, m: rows, n: k, k: fg,
                             alpha: 1, a: g + group * fg, lda: filters, b: kernel + group * fg, ldb: filters,
                             beta: 0, c: dcols + group * k, ldc: groups * k)
            }
            if !isPointwise { kestrel_col2im(dcols, dxTile, &window, count) }
        }
    }
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
