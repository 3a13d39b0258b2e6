import CKestrelKernels
/// A fully connected layer, `activation(x · kernel + bias)` over the last axis (Keras `Dense`).
///
/// The kernel has Keras's layout `(inputDim, units)`. Bias-add and activation run in one pass
/// over each output row, right after the matrix product.
public final class Dense: Layer {
    public override var supportsMasking: Bool { true }
    /// The kernel depends on the last axis only: other leading shapes may share it (Keras's
    /// seq2seq decoder applies its Dense to whole sequences in training, to one step in inference).
    public override var acceptsOtherShapesWithSameWeights: Bool { true }
    /// The number of output features.
    public let units: Int
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

    /// A dense layer with `units` outputs.
    public init(_ units: Int, activation: ActivationFunction = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                activityRegularizer: Regularizer? = nil, inputShape: [Int]? = nil, name: String? = nil) {
        self.units = units
        self.activation = activation
        self.useBias = useBias
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name, inputShape: inputShape)
        self.activityRegularizer = activityRegularizer
        weightRegularizers = [kernelRegularizer, useBias ? biasRegularizer : nil]
        weightConstraints = [kernelConstraint, useBias ? biasConstraint : nil]
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard units > 0 else {
            throw KestrelError.invalidArgument("\(name) (Dense): units must be positive, found \(units)")
        }
        guard let last = inputShape.last, last > 0 else {
            throw KestrelError.shapeMismatch(
                "\(name) (Dense): expected an input with a last axis of features, found shape \(inputShape); add Flatten or give inputShape")
        }
        return Array(inputShape.dropLast()) + [units]
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let inputDim = shapes[0].last!
        var specs = [WeightSpec(name: "kernel", shape: [inputDim, units], initializer: kernelInitializer)]
        if useBias { specs.append(WeightSpec(name: "bias", shape: [units], initializer: biasInitializer)) }
        return specs
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        // The pre-activation values, only for activations whose derivative needs them.
        activation.derivativeNeedsInput ? batch * (inputShapes[0].dropLast().reduce(1, *)) * units : 0
    }

    public override var logitsActivation: ActivationFunction? {
        activation == .sigmoid || activation == .softmax ? activation : nil
    }

    public override var config: [String: String] {
        ["name": name, "units": "\(units)", "activation": activation.kerasName, "use_bias": "\(useBias)"]
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        let shape = inputShapes[0]
        return LayerFLOPs(product: batch * shape.dropLast().reduce(1, *) * shape.last! * units)
    }

    public override func forward(_ c: LayerContext) {
        let inputDim = c.inputShapes[0].last!
        let rows = c.batch * (c.inputSize / inputDim)
        Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: units, k: inputDim,
                     alpha: 1, a: c.input, lda: inputDim, b: c.weights[0], ldb: units,
                     beta: 0, c: c.output, ldc: units)
        let bias: UnsafeMutablePointer<Float>? = useBias ? c.weights[1] : nil
        let keep = activation.derivativeNeedsInput
        if (activation == .relu || activation == .linear) && c.logits == nil {
            // One fused pass (shared over threads for large outputs).
            if bias != nil || activation == .relu {
                kestrel_bias_relu_rows(c.output, bias, rows, units, activation == .relu ? 1 : 0)
            }
            return
        }
        for r in 0..<rows {
            let y = c.output + r * units
            if let bias { for j in 0..<units { y[j] += bias[j] } }
            if keep { (c.workspace + r * units).update(from: y, count: units) }
            if let logits = c.logits { (logits + r * units).update(from: y, count: units) }
            if activation != .linear { activation.apply(y, y, count: units, rowLength: units) }
        }
    }

    public override func backward(_ c: LayerContext) {
        let inputDim = c.inputShapes[0].last!
        let rows = c.batch * (c.inputSize / inputDim)
        let dz = c.outputGradient!
        if activation != .linear && c.logits == nil {
            activation.backward(x: activation.derivativeNeedsInput ? UnsafePointer(c.workspace) : nil,
                                y: c.output, dy: dz, dx: dz, count: rows * units, rowLength: units)
        }
        let beta: Float = c.accumulateWeightGradients ? 1 : 0
        Kernels.gemm(transposeA: true, transposeB: false, m: inputDim, n: units, k: rows,
                     alpha: 1, a: c.input, lda: inputDim, b: dz, ldb: units,
                     beta: beta, c: c.weightGradients[0], ldc: units)
        if useBias {
            Kernels.columnSums(dz, rows: rows, columns: units, into: c.weightGradients[1],
                               accumulate: c.accumulateWeightGradients)
        }
        if let dx = c.inputGradient {
            Kernels.gemm(transposeA: false, transposeB: true, m: rows, n: inputDim, k: units,
                         alpha: 1, a: dz, lda: units, b: c.weights[0], ldb: units,
                         beta: 0, c: dx, ldc: inputDim)
        }
    }
}
