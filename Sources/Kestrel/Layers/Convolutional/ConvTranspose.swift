import CKestrelKernels

/// A transposed 2-D convolution ("deconvolution"): the adjoint of a Conv2D, which spreads
/// each input pixel over a window of the larger output (Keras `Conv2DTranspose`).
///
/// The kernel has Keras's layout `kernelSize + (filters, inChannels)`. Forward multiplies the
/// input by the kernel (one product) into per-pixel windows and folds them into the output
/// with col2im; backward is im2col of the output gradient and two products.
public final class Conv2DTranspose: Layer {
    /// The number of output channels.
    public let filters: Int
    /// The window size along each spatial axis.
    public let kernelSize: [Int]
    /// The upsampling step along each spatial axis.
    public let strides: [Int]
    /// How borders are treated: "valid" output is `input · stride + max(window − stride, 0)`,
    /// "same" output is `input · stride`.
    public let padding: Padding
    /// The spacing between kernel taps.
    public let dilationRate: [Int]
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
    /// The window geometry seen from the output: the output is the "image", the input the
    /// grid of window positions.
    private var geometry: WindowGeometry?

    /// A transposed convolution with `filters` outputs and a `kernelSize` window; defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.filters = filters
        self.kernelSize = kernelSize.resolved(rank: 2) ?? kernelSize.values
        self.strides = strides.resolved(rank: 2) ?? strides.values
        self.padding = padding
        self.dilationRate = dilationRate.resolved(rank: 2) ?? dilationRate.values
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

    private func makeGeometry(_ inputShape: [Int]) throws -> WindowGeometry {
        let describe = "\(name) (Conv2DTranspose)"
        guard filters > 0 else { throw KestrelError.invalidArgument("\(describe): filters must be positive, found \(filters)") }
        guard padding != .causal else {
            throw KestrelError.invalidArgument("\(describe): padding must be \"valid\" or \"same\", found \"causal\"")
        }
        let kernel = try resolve(arguments.kernel, rank: 2, "kernelSize", describe)
        let strides = try resolve(arguments.strides, rank: 2, "strides", describe)
        let dilation = try resolve(arguments.dilation, rank: 2, "dilationRate", describe)
        guard inputShape.count == 3, inputShape.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.shapeMismatch("\(describe): expected samples of rank 3 (height, width, channels), found shape \(inputShape)")
        }
        // Output sizes as Keras computes them; the padding is the one a Conv2D from that
        // output size back to the input size would use, which makes this its adjoint.
        var outSpatial: [Int] = []
        for axis in 0..<2 {
            let span = (kernel[axis] - 1) * dilation[axis] + 1
            let n = inputShape[axis], s = strides[axis]
            outSpatial.append(padding == .valid ? n * s + max(span - s, 0) : n * s)
        }
        var g = try WindowGeometry(inputShape: outSpatial + [filters], rank: 2, kernel: kernel, strides: strides,
                                   dilation: dilation, padding: padding, describe: describe)
        precondition(g.outputSpatial == Array(inputShape.prefix(2)), "transposed geometry must invert")
        g.groups = 1
        return g
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let g = try makeGeometry(inputShape)
        geometry = g
        return g.inputSpatial + [filters]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        var specs = [WeightSpec(name: "kernel", shape: kernelSize + [filters, shapes[0].last!],
                                initializer: kernelInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [filters], initializer: biasInitializer)) }
        return specs
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let g = try? makeGeometry(inputShapes[0]) else { return LayerFLOPs() }
        return LayerFLOPs(product: batch * g.outputPositions * g.windowSize * filters * inputShapes[0][2])
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let g = try? makeGeometry(inputShapes[0]) else { return 0 }
        let cols = batch * g.outputPositions * g.windowSize * filters
        return cols + (activation.derivativeNeedsInput ? batch * g.inputPositions * filters : 0)
    }

    public override var config: [String: String] {
        ["name": name, "filters": "\(filters)", "kernel_size": "\(kernelSize)", "strides": "\(strides)",
         "padding": padding.rawValue, "dilation_rate": "\(dilationRate)", "activation": activation.kerasName,
         "use_bias": "\(useBias)"]
    }

    public override func forward(_ c: LayerContext) {
        let g = geometry!
        var window = g.window
        let pixels = c.batch * g.outputPositions, channels = c.inputShapes[0][2], depth = g.windowSize * filters
        // Each input pixel's window contribution: x · kernelᵀ, kernel seen as (window · filters) × channels.
        Kernels.gemm(transposeA: false, transposeB: true, m: pixels, n: depth, k: channels,
                     alpha: 1, a: c.input, lda: channels, b: c.weights[0], ldb: channels,
                     beta: 0, c: c.workspace, ldc: depth)
        kestrel_col2im(c.workspace, c.output, &window, c.batch)
        finishOutput(c.output, bias: useBias ? c.weights[1] : nil, rows: c.batch * g.inputPositions, columns: filters,
                     preactivation: c.workspace + pixels * depth, activation: activation)
    }

    public override func backward(_ c: LayerContext) {
        let g = geometry!
        var window = g.window
        let pixels = c.batch * g.outputPositions, channels = c.inputShapes[0][2], depth = g.windowSize * filters
        let rows = c.batch * g.inputPositions
        let dz = c.outputGradient!
        activationBackward(dz, output: c.output, count: rows * filters, rowLength: filters,
                           preactivation: c.workspace + pixels * depth, activation: activation)
        let accumulate = c.accumulateWeightGradients
        if useBias { kestrel_column_sums(dz, rows, filters, c.weightGradients[1], accumulate ? 1 : 0) }
        kestrel_im2col(dz, c.workspace, &window, c.batch)
        Kernels.gemm(transposeA: true, transposeB: false, m: depth, n: channels, k: pixels,
                     alpha: 1, a: c.workspace, lda: depth, b: c.input, ldb: channels,
                     beta: accumulate ? 1 : 0, c: c.weightGradients[0], ldc: channels)
        if let dx = c.inputGradient {
            Kernels.gemm(transposeA: false, transposeB: false, m: pixels, n: channels, k: depth,
                         alpha: 1, a: c.workspace, lda: depth, b: c.weights[0], ldb: channels,
                         beta: 0, c: dx, ldc: channels)
        }
    }
}
