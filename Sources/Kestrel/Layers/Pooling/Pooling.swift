import CKestrelKernels

/// The machinery shared by the max and average pooling layers (Keras `BasePooling`): a window
/// slides over the spatial axes of channels-last samples and reduces each channel.
public class BasePooling: Layer {
    /// Whether the window takes the maximum (else the mean).
    let isMax: Bool
    /// The number of spatial axes (1, 2 or 3).
    public let rank: Int
    /// The window size along each spatial axis.
    public let poolSize: [Int]
    /// The step between windows (Keras default: the pool size).
    public let strides: [Int]
    /// How borders are treated; "same" windows ignore the padding.
    public let padding: Padding

    private let arguments: (pool: SpatialSize, strides: SpatialSize?)
    private var geometry: WindowGeometry?

    init(max isMax: Bool, rank: Int, poolSize: SpatialSize, strides: SpatialSize?, padding: Padding,
         inputShape: [Int]?, name: String?) {
        self.isMax = isMax
        self.rank = rank
        self.poolSize = poolSize.resolved(rank: rank) ?? poolSize.values
        self.strides = (strides ?? poolSize).resolved(rank: rank) ?? (strides ?? poolSize).values
        self.padding = padding
        arguments = (poolSize, strides)
        super.init(name: name, inputShape: inputShape)
    }

    private var describe: String { "\(name) (\(className))" }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        let pool = try resolve(arguments.pool, rank: rank, "poolSize", describe)
        let strides = try resolve(arguments.strides ?? arguments.pool, rank: rank, "strides", describe)
        guard padding != .causal else {
            throw KestrelError.invalidArgument("\(describe): padding must be \"valid\" or \"same\", found \"causal\"")
        }
        let g = try WindowGeometry(inputShape: inputShape, rank: rank, kernel: pool, strides: strides,
                                   dilation: Array(repeating: 1, count: rank), padding: padding, describe: describe)
        geometry = g
        return g.outputSpatial + [g.channels]
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        // The winning input offset of every output (Int32, the size of a Float).
        guard isMax, let g = try? WindowGeometry(
            inputShape: inputShapes[0], rank: rank, kernel: poolSize, strides: strides,
            dilation: Array(repeating: 1, count: rank), padding: padding, describe: describe) else { return 0 }
        return batch * g.outputPositions * g.channels
    }

    public override var backwardNeedsInput: Bool { false }

    public override var config: [String: String] {
        ["name": name, "pool_size": "\(poolSize)", "strides": "\(strides)", "padding": padding.rawValue]
    }

    /// This layer's pass over the buffers of its context `c`: run here over the whole batch,
    /// or by the convolution before it, tile by tile (`LayerContext.fusedPooling`).
    func pass(_ c: LayerContext) -> PoolingPass {
        PoolingPass(window: geometry!.window, isMax: isMax, inputSize: c.inputSize, outputSize: c.outputSize,
                    output: c.output, argmax: isMax ? UnsafeMutableRawPointer(c.workspace).assumingMemoryBound(to: Int32.self) : nil,
                    outputGradient: c.outputGradient)
    }

    public override func forward(_ c: LayerContext) {
        var run = pass(c)
        run.forward(tile: c.input, first: 0, count: c.batch)
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        var run = pass(c)
        run.backward(tile: dx, first: 0, count: c.batch, relu: false)
    }
}

/// The maximum of each channel over 2-D windows (Keras `MaxPooling2D`).
public final class MaxPooling2D: BasePooling {
    /// Max pooling over `poolSize` windows (default 2×2), moving by `strides` (default: the pool size).
    public init(poolSize: SpatialSize = 2, strides: SpatialSize? = nil, padding: Padding = .valid,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: true, rank: 2, poolSize: poolSize, strides: strides, padding: padding,
                   inputShape: inputShape, name: name)
    }
}

/// The mean of each channel over 2-D windows (Keras `AveragePooling2D`).
public final class AveragePooling2D: BasePooling {
    /// Average pooling over `poolSize` windows (no default, as in Keras), moving by `strides`
    /// (default: the pool size).
    public init(poolSize: SpatialSize, strides: SpatialSize? = nil, padding: Padding = .valid,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: false, rank: 2, poolSize: poolSize, strides: strides, padding: padding,
                   inputShape: inputShape, name: name)
    }
}

/// The maximum of each channel over windows of steps (Keras `MaxPooling1D`).
public final class MaxPooling1D: BasePooling {
    /// Max pooling over `poolSize` steps (default 2), moving by `strides` (default: the pool size).
    public init(poolSize: SpatialSize = 2, strides: SpatialSize? = nil, padding: Padding = .valid,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: true, rank: 1, poolSize: poolSize, strides: strides, padding: padding,
                   inputShape: inputShape, name: name)
    }
}

/// The mean of each channel over windows of steps (Keras `AveragePooling1D`).
public final class AveragePooling1D: BasePooling {
    /// Average pooling over `poolSize` steps (no default, as in Keras), moving by `strides`
    /// (default: the pool size).
    public init(poolSize: SpatialSize, strides: SpatialSize? = nil, padding: Padding = .valid,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: false, rank: 1, poolSize: poolSize, strides: strides, padding: padding,
                   inputShape: inputShape, name: name)
    }
}

/// The maximum of each channel over 3-D windows (Keras `MaxPooling3D`).
public final class MaxPooling3D: BasePooling {
    /// Max pooling over `poolSize` windows (default 2×2×2), moving by `strides` (default: the pool size).
    public init(poolSize: SpatialSize = 2, strides: SpatialSize? = nil, padding: Padding = .valid,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: true, rank: 3, poolSize: poolSize, strides: strides, padding: padding,
                   inputShape: inputShape, name: name)
    }
}

/// The mean of each channel over 3-D windows (Keras `AveragePooling3D`).
public final class AveragePooling3D: BasePooling {
    /// Average pooling over `poolSize` windows (no default, as in Keras), moving by `strides`
    /// (default: the pool size).
    public init(poolSize: SpatialSize, strides: SpatialSize? = nil, padding: Padding = .valid,
                inputShape: [Int]? = nil, name: String? = nil) {
        super.init(max: false, rank: 3, poolSize: poolSize, strides: strides, padding: padding,
                   inputShape: inputShape, name: name)
    }
}

/// A pooling layer's forward and backward over a run of images. The layer runs it over its
/// batch; a convolution it is fused into runs it on each tile of images it has just produced
/// (or, backward, is about to consume), so that the convolution's output is pooled while it
/// is in cache instead of being read back from memory.
struct PoolingPass {
    var window: kestrel_window
    let isMax: Bool
    /// Floats per image of the pooling's input (the convolution's output) and output.
    let inputSize: Int, outputSize: Int
    let output: UnsafeMutablePointer<Float>
    /// The winning offsets of max pooling.
    let argmax: UnsafeMutablePointer<Int32>?
    /// The gradient of the pooling's output (training plans).
    let outputGradient: UnsafeMutablePointer<Float>?

    /// Pools images `first..<first + count`, whose input values start at `tile`.
    mutating func forward(tile: UnsafePointer<Float>, first: Int, count: Int) {
        let y = output + first * outputSize
        if isMax {
            kestrel_max_pool_forward(tile, y, argmax! + first * outputSize, &window, count)
        } else {
            kestrel_average_pool_forward(tile, y, &window, count)
        }
    }

    /// Writes the gradient of images `first..<first + count` of the pooling's input to `tile`.
    /// With `relu` (a fused convolution's ReLU), its derivative is applied first, to the pooled
    /// gradient: a max window passes its gradient to its winner, whose value is the pooled
    /// one, so testing that value is the same as testing the winner (and reads a quarter as
    /// much, and not the convolution's output).
    mutating func backward(tile dx: UnsafeMutablePointer<Float>, first: Int, count: Int, relu: Bool) {
        let dy = outputGradient! + first * outputSize
        if isMax {
            if relu { kestrel_relu_backward_in_place(dy, output + first * outputSize, count * outputSize) }
            kestrel_max_pool_backward(dy, argmax! + first * outputSize, dx, &window, count)
        } else {
            kestrel_average_pool_backward(dy, dx, &window, count)
        }
    }
}
