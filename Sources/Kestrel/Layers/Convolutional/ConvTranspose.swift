import CKestrelKernels

/// What the transposed convolutions share: the adjoint of a convolution, which spreads each
/// input position over a window of the larger output.
///
/// The kernel has Keras's layout `kernelSize + (filters, inChannels)`. Forward multiplies the
/// input by the kernel (one product) into per-position windows and folds them into the output
/// with col2im; backward is im2col of the output gradient and two products.
public class BaseConvTranspose: Layer {
    /// The number of spatial axes (1 for `Conv1DTranspose`, 2 for `Conv2DTranspose`, 3 for `Conv3DTranspose`).
    public let rank: Int
    /// The number of output channels.
    public let filters: Int
    /// The window size along each spatial axis.
    public let kernelSize: [Int]
    /// The upsampling step along each spatial axis.
    public let strides: [Int]
    /// How borders are treated: "valid" output is `input · stride + max(window − stride, 0)`,
    /// "same" output is `input · stride` (without an `outputPadding`).
    public let padding: Padding
    /// Extra rows and columns at the output's end, each below its stride; when given, the
    /// output is `(input − 1) · stride + window + outputPadding` for "valid" and
    /// `(input − 1) · stride + window mod 2 + outputPadding` for "same" (Keras's formulas;
    /// the window counts dilation). `nil`: Keras's default sizes above.
    public let outputPadding: [Int]?
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

    private let arguments: (kernel: SpatialSize, strides: SpatialSize, dilation: SpatialSize, outputPadding: SpatialSize?)
    /// The window geometry seen from the output: the output is the "image", the input the
    /// grid of window positions.
    private var geometry: WindowGeometry?

    init(rank: Int, filters: Int, kernelSize: SpatialSize, strides: SpatialSize, padding: Padding,
         outputPadding: SpatialSize?, dilationRate: SpatialSize, activation: ActivationFunction, useBias: Bool,
         kernelInitializer: Initializer, biasInitializer: Initializer, kernelRegularizer: Regularizer?,
         biasRegularizer: Regularizer?, kernelConstraint: Constraint?, biasConstraint: Constraint?,
         inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.filters = filters
        self.kernelSize = kernelSize.resolved(rank: rank) ?? kernelSize.values
        self.strides = strides.resolved(rank: rank) ?? strides.values
        self.padding = padding
        self.outputPadding = outputPadding.map { $0.resolved(rank: rank) ?? $0.values }
        self.dilationRate = dilationRate.resolved(rank: rank) ?? dilationRate.values
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        arguments = (kernelSize, strides, dilationRate, outputPadding)
        super.init(name: name, inputShape: inputShape)
        weightRegularizers = [kernelRegularizer, useBias ? biasRegularizer : nil]
        weightConstraints = [kernelConstraint, useBias ? biasConstraint : nil]
    }

    private func makeGeometry(_ inputShape: [Int]) throws -> WindowGeometry {
        let describe = "\(name) (\(className))"
        guard filters > 0 else { throw KestrelError.invalidArgument("\(describe): filters must be positive, found \(filters)") }
        guard padding != .causal else {
            throw KestrelError.invalidArgument("\(describe): padding must be \"valid\" or \"same\", found \"causal\"")
        }
        let kernel = try resolve(arguments.kernel, rank: rank, "kernelSize", describe)
        let strides = try resolve(arguments.strides, rank: rank, "strides", describe)
        let dilation = try resolve(arguments.dilation, rank: rank, "dilationRate", describe)
        guard inputShape.count == rank + 1, inputShape.allSatisfy({ $0 > 0 }) else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected samples of rank \(rank + 1) \(sampleLayout(rank: rank)), found shape \(inputShape)")
        }
        var outputPadding: [Int]?
        if let given = arguments.outputPadding {
            guard let values = given.resolved(rank: rank), values.allSatisfy({ $0 >= 0 }) else {
                throw KestrelError.invalidArgument(
                    "\(describe): outputPadding must be one non-negative integer or \(rank) of them, found \(given)")
            }
            guard zip(values, strides).allSatisfy({ $0 < $1 }) else {
                throw KestrelError.invalidArgument(
                    "\(describe): outputPadding must be less than strides on every axis, found \(values) with strides \(strides)")
            }
            outputPadding = values
        }
        // Output sizes and placement as Keras computes them (its JAX backend's padding of the
        // stride-dilated input, which TensorFlow agrees with wherever it accepts the sizes).
        // The geometry is that of the Conv2D from the output back to the input, which makes
        // this layer its adjoint: input pixel i's window starts at output row i · s − before.
        var outSpatial: [Int] = [], before: [Int] = []
        for axis in 0..<rank {
            let span = (kernel[axis] - 1) * dilation[axis] + 1
            let n = inputShape[axis], s = strides[axis]
            let dilatedPadding: (left: Int, right: Int)
            switch (padding, outputPadding?[axis]) {
            case (.valid, let extra):
                dilatedPadding = (span - 1, span - 1 + (extra ?? max(span, s) - span))
            case (_, let extra):
                let total = extra.map { span + span % 2 - 2 + $0 } ?? s + span - 2
                let left = min((total + 1) / 2, span - 1)
                dilatedPadding = (left, total - left)
            }
            let length = (n - 1) * s + 1 + dilatedPadding.left + dilatedPadding.right - span + 1
            guard length > 0 else {
                throw KestrelError.shapeMismatch(
                    "\(describe): input shape \(inputShape) gives an empty output with kernelSize \(kernel), strides \(strides) and padding \"\(padding.rawValue)\"")
            }
            outSpatial.append(length)
            before.append(span - 1 - dilatedPadding.left)
        }
        var g = WindowGeometry(inputSpatial: outSpatial, channels: filters, outputSpatial: Array(inputShape.prefix(rank)),
                               kernel: kernel, strides: strides, dilation: dilation, padBefore: before)
        g.groups = 1
        return g
    }

    /// Where the output of an input of `inputShape` lies: its spatial sizes, and for each axis
    /// how far before output row 0 the window of input pixel 0 starts (the padding of the
    /// Conv2D this layer is the adjoint of; ONNX's leading `pads`).
    public func placement(forInputShape inputShape: [Int]) throws -> (outputSpatial: [Int], padBefore: [Int]) {
        let g = try makeGeometry(inputShape)
        return (g.inputSpatial, g.padBefore)
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
        return LayerFLOPs(product: batch * g.outputPositions * g.windowSize * filters * inputShapes[0][rank])
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let g = try? makeGeometry(inputShapes[0]) else { return 0 }
        let cols = batch * g.outputPositions * g.windowSize * filters
        return cols + (activation.derivativeNeedsInput ? batch * g.inputPositions * filters : 0)
    }

    public override var config: [String: String] {
        ["name": name, "filters": "\(filters)", "kernel_size": "\(kernelSize)", "strides": "\(strides)",
         "padding": padding.rawValue, "output_padding": outputPadding.map { "\($0)" } ?? "None", "dilation_rate": "\(dilationRate)", "activation": activation.kerasName,
         "use_bias": "\(useBias)"]
    }

    public override func forward(_ c: LayerContext) {
        let g = geometry!
        var window = g.window
        let pixels = c.batch * g.outputPositions, channels = c.inputShapes[0][rank], depth = g.windowSize * filters
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
        let pixels = c.batch * g.outputPositions, channels = c.inputShapes[0][rank], depth = g.windowSize * filters
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

/// A transposed 2-D convolution ("deconvolution") over `(height, width, channels)` samples: the
/// adjoint of a Conv2D, which spreads each input pixel over a window of the larger output
/// (Keras `Conv2DTranspose`).
public final class Conv2DTranspose: BaseConvTranspose {
    /// A transposed convolution with `filters` outputs and a `kernelSize` window; defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                outputPadding: SpatialSize? = nil, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   outputPadding: outputPadding, dilationRate: dilationRate, activation: activation, useBias: useBias,
                   kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, inputShape: inputShape, name: name)
    }
}

/// A transposed 1-D convolution over `(steps, channels)` samples: the adjoint of a Conv1D,
/// which spreads each input step over a window of the longer output (Keras `Conv1DTranspose`).
public final class Conv1DTranspose: BaseConvTranspose {
    /// A transposed convolution with `filters` outputs and a window of `kernelSize` steps;
    /// defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                outputPadding: SpatialSize? = nil, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 1, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   outputPadding: outputPadding, dilationRate: dilationRate, activation: activation, useBias: useBias,
                   kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, inputShape: inputShape, name: name)
    }
}

/// A transposed 3-D convolution over `(depth, height, width, channels)` samples: the adjoint
/// of a Conv3D, which spreads each input voxel over a window of the larger output (Keras
/// `Conv3DTranspose`).
public final class Conv3DTranspose: BaseConvTranspose {
    /// A transposed convolution with `filters` outputs and a `kernelSize` window; defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                outputPadding: SpatialSize? = nil, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 3, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   outputPadding: outputPadding, dilationRate: dilationRate, activation: activation, useBias: useBias,
                   kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint, inputShape: inputShape, name: name)
    }
}
