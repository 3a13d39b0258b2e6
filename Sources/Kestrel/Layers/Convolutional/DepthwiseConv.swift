import CKestrelKernels

/// What the depthwise convolutions share (Keras `BaseDepthwiseConv`): each input channel is
/// convolved with its own `depthMultiplier` filters, giving `channels · depthMultiplier`
/// outputs. The kernel has Keras's layout `kernelSize + (channels, depthMultiplier)`, which is
/// a grouped convolution's kernel with one group per channel.
public class BaseDepthwiseConv: Layer {
    /// The number of spatial axes (1 for `DepthwiseConv1D`, 2 for `DepthwiseConv2D`).
    public let rank: Int
    /// The window size along each spatial axis.
    public let kernelSize: [Int]
    /// The step between windows.
    public let strides: [Int]
    /// How borders are treated.
    public let padding: Padding
    /// Output channels per input channel.
    public let depthMultiplier: Int
    /// The spacing between kernel taps.
    public let dilationRate: [Int]
    /// The activation applied to the output.
    public let activation: ActivationFunction
    /// Whether the layer adds a bias vector.
    public let useBias: Bool
    /// How the depthwise kernel starts (Keras default glorot-uniform).
    public let depthwiseInitializer: Initializer
    /// How the bias starts (Keras default zeros).
    public let biasInitializer: Initializer
    /// The penalty on the depthwise kernel added to the loss, if any.
    public let depthwiseRegularizer: Regularizer?
    /// The penalty on the bias added to the loss, if any.
    public let biasRegularizer: Regularizer?
    /// The projection applied to the depthwise kernel after each optimizer step, if any.
    public let depthwiseConstraint: Constraint?
    /// The projection applied to the bias after each optimizer step, if any.
    public let biasConstraint: Constraint?

    private let arguments: (kernel: SpatialSize, strides: SpatialSize, dilation: SpatialSize)
    private var engine: GroupedConvolution?

    init(rank: Int, kernelSize: SpatialSize, strides: SpatialSize, padding: Padding, depthMultiplier: Int,
         dilationRate: SpatialSize, activation: ActivationFunction, useBias: Bool, depthwiseInitializer: Initializer,
         biasInitializer: Initializer, depthwiseRegularizer: Regularizer?, biasRegularizer: Regularizer?,
         depthwiseConstraint: Constraint?, biasConstraint: Constraint?, inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.kernelSize = kernelSize.resolved(rank: rank) ?? kernelSize.values
        self.strides = strides.resolved(rank: rank) ?? strides.values
        self.padding = padding
        self.depthMultiplier = depthMultiplier
        self.dilationRate = dilationRate.resolved(rank: rank) ?? dilationRate.values
        self.activation = activation
        self.useBias = useBias
        self.depthwiseInitializer = depthwiseInitializer
        self.biasInitializer = biasInitializer
        self.depthwiseRegularizer = depthwiseRegularizer
        self.biasRegularizer = biasRegularizer
        self.depthwiseConstraint = depthwiseConstraint
        self.biasConstraint = biasConstraint
        arguments = (kernelSize, strides, dilationRate)
        super.init(name: name, inputShape: inputShape)
        weightRegularizers = [depthwiseRegularizer, useBias ? biasRegularizer : nil]
        weightConstraints = [depthwiseConstraint, useBias ? biasConstraint : nil]
    }

    /// The engine for an input shape, with every argument checked; `describe` names the layer
    /// in error messages (a separable convolution's own name rather than its inner layer's).
    func makeEngine(_ inputShape: [Int], describe: String? = nil) throws -> GroupedConvolution {
        let describe = describe ?? "\(name) (\(className))"
        guard depthMultiplier > 0 else {
            throw KestrelError.invalidArgument("\(describe): depthMultiplier must be positive, found \(depthMultiplier)")
        }
        guard padding != .causal else {
            throw KestrelError.invalidArgument("\(describe): padding must be \"valid\" or \"same\", found \"causal\"")
        }
        var g = try WindowGeometry(inputShape: inputShape, rank: rank,
                                   kernel: try resolve(arguments.kernel, rank: rank, "kernelSize", describe),
                                   strides: try resolve(arguments.strides, rank: rank, "strides", describe),
                                   dilation: try resolve(arguments.dilation, rank: rank, "dilationRate", describe),
                                   padding: padding, describe: describe)
        g.groups = g.channels
        return GroupedConvolution(geometry: g, filters: g.channels * depthMultiplier)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let e = try makeEngine(inputShape)
        engine = e
        return e.geometry.outputSpatial + [e.filters]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let channels = shapes[0].last!
        var specs = [WeightSpec(name: "depthwise_kernel", shape: kernelSize + [channels, depthMultiplier],
                                initializer: depthwiseInitializer)]
        if useBias {
            specs.append(WeightSpec(name: "bias", shape: [channels * depthMultiplier], initializer: biasInitializer))
        }
        return specs
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let e = try? makeEngine(inputShapes[0]) else { return LayerFLOPs() }
        return LayerFLOPs(product: e.multiplyAdds(batch: batch))
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let e = try? makeEngine(inputShapes[0]) else { return 0 }
        return e.columnCount(batch: batch)
            + (activation.derivativeNeedsInput ? batch * e.geometry.outputPositions * e.filters : 0)
    }

    public override var config: [String: String] {
        ["name": name, "kernel_size": "\(kernelSize)", "strides": "\(strides)", "padding": padding.rawValue,
         "depth_multiplier": "\(depthMultiplier)", "dilation_rate": "\(dilationRate)",
         "activation": activation.kerasName, "use_bias": "\(useBias)"]
    }

    public override func forward(_ c: LayerContext) {
        let e = engine!
        e.forward(input: c.input, kernel: c.weights[0], output: c.output, columns: c.workspace, batch: c.batch)
        finishOutput(c.output, bias: useBias ? c.weights[1] : nil, rows: c.batch * e.geometry.outputPositions,
                     columns: e.filters, preactivation: c.workspace + e.columnCount(batch: c.batch),
                     activation: activation)
    }

    public override func backward(_ c: LayerContext) {
        let e = engine!
        let rows = c.batch * e.geometry.outputPositions
        let dz = c.outputGradient!
        activationBackward(dz, output: c.output, count: rows * e.filters, rowLength: e.filters,
                           preactivation: c.workspace + e.columnCount(batch: c.batch), activation: activation)
        if useBias {
            kestrel_column_sums(dz, rows, e.filters, c.weightGradients[1], c.accumulateWeightGradients ? 1 : 0)
        }
        e.backward(outputGradient: dz, input: c.input, kernel: c.weights[0], kernelGradient: c.weightGradients[0],
                   accumulate: c.accumulateWeightGradients, inputGradient: c.inputGradient,
                   columns: c.workspace, batch: c.batch)
    }
}

/// What the separable convolutions share (Keras `BaseSeparableConv`): a depthwise convolution
/// followed by a pointwise one mixing its channels into `filters` outputs. Weights in Keras's
/// order: `depthwise_kernel` `kernelSize + (channels, depthMultiplier)`, `pointwise_kernel`
/// `(1, …, channels · depthMultiplier, filters)` (a 1 per spatial axis), `bias` `(filters)`.
public class BaseSeparableConv: Layer {
    /// The number of spatial axes (1 for `SeparableConv1D`, 2 for `SeparableConv2D`).
    public let rank: Int
    /// The number of output channels.
    public let filters: Int
    /// The window size along each spatial axis.
    public let kernelSize: [Int]
    /// The step between windows.
    public let strides: [Int]
    /// How borders are treated.
    public let padding: Padding
    /// Depthwise output channels per input channel.
    public let depthMultiplier: Int
    /// The spacing between kernel taps.
    public let dilationRate: [Int]
    /// The activation applied to the output.
    public let activation: ActivationFunction
    /// Whether the layer adds a bias vector.
    public let useBias: Bool
    /// How the depthwise kernel starts (Keras default glorot-uniform).
    public let depthwiseInitializer: Initializer
    /// How the pointwise kernel starts (Keras default glorot-uniform).
    public let pointwiseInitializer: Initializer
    /// How the bias starts (Keras default zeros).
    public let biasInitializer: Initializer
    /// The penalty on the depthwise kernel added to the loss, if any.
    public let depthwiseRegularizer: Regularizer?
    /// The penalty on the pointwise kernel added to the loss, if any.
    public let pointwiseRegularizer: Regularizer?
    /// The penalty on the bias added to the loss, if any.
    public let biasRegularizer: Regularizer?
    /// The projection applied to the depthwise kernel after each optimizer step, if any.
    public let depthwiseConstraint: Constraint?
    /// The projection applied to the pointwise kernel after each optimizer step, if any.
    public let pointwiseConstraint: Constraint?
    /// The projection applied to the bias after each optimizer step, if any.
    public let biasConstraint: Constraint?

    private let depthwise: BaseDepthwiseConv
    private var engine: GroupedConvolution?

    init(rank: Int, filters: Int, kernelSize: SpatialSize, strides: SpatialSize, padding: Padding,
         depthMultiplier: Int, dilationRate: SpatialSize, activation: ActivationFunction, useBias: Bool,
         depthwiseInitializer: Initializer, pointwiseInitializer: Initializer, biasInitializer: Initializer,
         depthwiseRegularizer: Regularizer?, pointwiseRegularizer: Regularizer?, biasRegularizer: Regularizer?,
         depthwiseConstraint: Constraint?, pointwiseConstraint: Constraint?, biasConstraint: Constraint?,
         inputShape: [Int]?, name: String?) {
        self.rank = rank
        self.filters = filters
        depthwise = BaseDepthwiseConv(rank: rank, kernelSize: kernelSize, strides: strides, padding: padding,
                                      depthMultiplier: depthMultiplier, dilationRate: dilationRate, activation: .linear,
                                      useBias: false, depthwiseInitializer: depthwiseInitializer, biasInitializer: .zeros,
                                      depthwiseRegularizer: nil, biasRegularizer: nil, depthwiseConstraint: nil,
                                      biasConstraint: nil, inputShape: nil, name: "separable_depthwise")
        self.kernelSize = depthwise.kernelSize
        self.strides = depthwise.strides
        self.padding = padding
        self.depthMultiplier = depthMultiplier
        self.dilationRate = depthwise.dilationRate
        self.activation = activation
        self.useBias = useBias
        self.depthwiseInitializer = depthwiseInitializer
        self.pointwiseInitializer = pointwiseInitializer
        self.biasInitializer = biasInitializer
        self.depthwiseRegularizer = depthwiseRegularizer
        self.pointwiseRegularizer = pointwiseRegularizer
        self.biasRegularizer = biasRegularizer
        self.depthwiseConstraint = depthwiseConstraint
        self.pointwiseConstraint = pointwiseConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name, inputShape: inputShape)
        weightRegularizers = [depthwiseRegularizer, pointwiseRegularizer, useBias ? biasRegularizer : nil]
        weightConstraints = [depthwiseConstraint, pointwiseConstraint, useBias ? biasConstraint : nil]
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard filters > 0 else {
            throw KestrelError.invalidArgument("\(name) (\(className)): filters must be positive, found \(filters)")
        }
        let e = try depthwise.makeEngine(inputShape, describe: "\(name) (\(className))")
        engine = e
        return e.geometry.outputSpatial + [filters]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let channels = shapes[0].last!
        var specs = [
            WeightSpec(name: "depthwise_kernel", shape: kernelSize + [channels, depthMultiplier],
                       initializer: depthwiseInitializer),
            WeightSpec(name: "pointwise_kernel", shape: Array(repeating: 1, count: rank) + [channels * depthMultiplier, filters],
                       initializer: pointwiseInitializer),
        ]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [filters], initializer: biasInitializer)) }
        return specs
    }

    /// Workspace: depthwise columns, then the depthwise output, its gradient, and the
    /// pre-activation values when the activation needs them.
    private func layout(_ e: GroupedConvolution, batch: Int) -> (middle: Int, middleGradient: Int, keep: Int, total: Int) {
        let cols = e.columnCount(batch: batch)
        let mid = batch * e.geometry.outputPositions * e.filters
        let keep = activation.derivativeNeedsInput ? batch * e.geometry.outputPositions * filters : 0
        return (cols, cols + mid, cols + 2 * mid, cols + 2 * mid + keep)
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let e = try? depthwise.makeEngine(inputShapes[0]) else { return LayerFLOPs() }
        let pointwise = batch * e.geometry.outputPositions * e.filters * filters
        return LayerFLOPs(product: e.multiplyAdds(batch: batch) + pointwise)
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let e = try? depthwise.makeEngine(inputShapes[0]) else { return 0 }
        return layout(e, batch: batch).total
    }

    public override var config: [String: String] {
        ["name": name, "filters": "\(filters)", "kernel_size": "\(kernelSize)", "strides": "\(strides)",
         "padding": padding.rawValue, "depth_multiplier": "\(depthMultiplier)",
         "dilation_rate": "\(dilationRate)", "activation": activation.kerasName, "use_bias": "\(useBias)"]
    }

    public override func forward(_ c: LayerContext) {
        let e = engine!, l = layout(e, batch: c.batch)
        let rows = c.batch * e.geometry.outputPositions
        let middle = c.workspace + l.middle
        e.forward(input: c.input, kernel: c.weights[0], output: middle, columns: c.workspace, batch: c.batch)
        Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: filters, k: e.filters,
                     alpha: 1, a: middle, lda: e.filters, b: c.weights[1], ldb: filters,
                     beta: 0, c: c.output, ldc: filters)
        finishOutput(c.output, bias: useBias ? c.weights[2] : nil, rows: rows, columns: filters,
                     preactivation: c.workspace + l.keep, activation: activation)
    }

    public override func backward(_ c: LayerContext) {
        let e = engine!, l = layout(e, batch: c.batch)
        let rows = c.batch * e.geometry.outputPositions
        let dz = c.outputGradient!
        activationBackward(dz, output: c.output, count: rows * filters, rowLength: filters,
                           preactivation: c.workspace + l.keep, activation: activation)
        let accumulate = c.accumulateWeightGradients
        if useBias { kestrel_column_sums(dz, rows, filters, c.weightGradients[2], accumulate ? 1 : 0) }
        let middle = c.workspace + l.middle, middleGradient = c.workspace + l.middleGradient
        Kernels.gemm(transposeA: true, transposeB: false, m: e.filters, n: filters, k: rows,
                     alpha: 1, a: middle, lda: e.filters, b: dz, ldb: filters,
                     beta: accumulate ? 1 : 0, c: c.weightGradients[1], ldc: filters)
        Kernels.gemm(transposeA: false, transposeB: true, m: rows, n: e.filters, k: filters,
                     alpha: 1, a: dz, lda: filters, b: c.weights[1], ldb: filters,
                     beta: 0, c: middleGradient, ldc: e.filters)
        e.backward(outputGradient: middleGradient, input: c.input, kernel: c.weights[0],
                   kernelGradient: c.weightGradients[0], accumulate: accumulate, inputGradient: c.inputGradient,
                   columns: c.workspace, batch: c.batch)
    }
}

/// A depthwise 2-D convolution over `(height, width, channels)` samples: each input channel is
/// convolved with its own `depthMultiplier` filters (Keras `DepthwiseConv2D`).
public final class DepthwiseConv2D: BaseDepthwiseConv {
    /// A depthwise convolution with a `kernelSize` window; defaults as in Keras.
    public init(kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                depthMultiplier: Int = 1, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, depthwiseInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros,
                depthwiseRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                depthwiseConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 2, kernelSize: kernelSize, strides: strides, padding: padding, depthMultiplier: depthMultiplier,
                   dilationRate: dilationRate, activation: activation, useBias: useBias,
                   depthwiseInitializer: depthwiseInitializer, biasInitializer: biasInitializer,
                   depthwiseRegularizer: depthwiseRegularizer, biasRegularizer: biasRegularizer,
                   depthwiseConstraint: depthwiseConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
    }
}

/// A depthwise 1-D convolution over `(steps, channels)` samples: each input channel is
/// convolved with its own `depthMultiplier` filters (Keras `DepthwiseConv1D`).
public final class DepthwiseConv1D: BaseDepthwiseConv {
    /// A depthwise convolution with a window of `kernelSize` steps; defaults as in Keras.
    public init(kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                depthMultiplier: Int = 1, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, depthwiseInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros,
                depthwiseRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                depthwiseConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 1, kernelSize: kernelSize, strides: strides, padding: padding, depthMultiplier: depthMultiplier,
                   dilationRate: dilationRate, activation: activation, useBias: useBias,
                   depthwiseInitializer: depthwiseInitializer, biasInitializer: biasInitializer,
                   depthwiseRegularizer: depthwiseRegularizer, biasRegularizer: biasRegularizer,
                   depthwiseConstraint: depthwiseConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
    }
}

/// A depthwise 2-D convolution followed by a 1×1 convolution mixing its channels into
/// `filters` outputs (Keras `SeparableConv2D`).
public final class SeparableConv2D: BaseSeparableConv {
    /// A separable convolution with `filters` outputs and a `kernelSize` window; defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                depthMultiplier: Int = 1, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, depthwiseInitializer: Initializer = .glorotUniform,
                pointwiseInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                depthwiseRegularizer: Regularizer? = nil, pointwiseRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, depthwiseConstraint: Constraint? = nil,
                pointwiseConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   depthMultiplier: depthMultiplier, dilationRate: dilationRate, activation: activation, useBias: useBias,
                   depthwiseInitializer: depthwiseInitializer, pointwiseInitializer: pointwiseInitializer,
                   biasInitializer: biasInitializer, depthwiseRegularizer: depthwiseRegularizer,
                   pointwiseRegularizer: pointwiseRegularizer, biasRegularizer: biasRegularizer,
                   depthwiseConstraint: depthwiseConstraint, pointwiseConstraint: pointwiseConstraint,
                   biasConstraint: biasConstraint, inputShape: inputShape, name: name)
    }
}

/// A depthwise 1-D convolution followed by a pointwise one mixing its channels into `filters`
/// outputs (Keras `SeparableConv1D`).
public final class SeparableConv1D: BaseSeparableConv {
    /// A separable convolution with `filters` outputs and a window of `kernelSize` steps;
    /// defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                depthMultiplier: Int = 1, dilationRate: SpatialSize = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, depthwiseInitializer: Initializer = .glorotUniform,
                pointwiseInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                depthwiseRegularizer: Regularizer? = nil, pointwiseRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, depthwiseConstraint: Constraint? = nil,
                pointwiseConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(rank: 1, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   depthMultiplier: depthMultiplier, dilationRate: dilationRate, activation: activation, useBias: useBias,
                   depthwiseInitializer: depthwiseInitializer, pointwiseInitializer: pointwiseInitializer,
                   biasInitializer: biasInitializer, depthwiseRegularizer: depthwiseRegularizer,
                   pointwiseRegularizer: pointwiseRegularizer, biasRegularizer: biasRegularizer,
                   depthwiseConstraint: depthwiseConstraint, pointwiseConstraint: pointwiseConstraint,
                   biasConstraint: biasConstraint, inputShape: inputShape, name: name)
    }
}
