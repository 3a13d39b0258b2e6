import Foundation

/// Applies an activation function to its input (Keras `Activation`).
public final class Activation: Layer {
    public override var supportsMasking: Bool { true }
    /// The function applied.
    public let function: ActivationFunction

    /// An activation layer.
    public init(_ function: ActivationFunction, inputShape: [Int]? = nil, name: String? = nil) {
        self.function = function
        super.init(name: name, inputShape: inputShape)
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int { 0 }
    public override var config: [String: String] { ["name": name, "activation": function.kerasName] }

    public override func forward(_ c: LayerContext) {
        function.apply(c.input, c.output, count: c.batch * c.outputSize, rowLength: c.outputShape.last ?? 1)
    }

    public override var logitsActivation: ActivationFunction? {
        function == .sigmoid || function == .softmax ? function : nil
    }
    public override var logitsAreInput: Bool { true }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        if c.logits != nil {
            dx.update(from: c.outputGradient!, count: c.batch * c.outputSize)
            return
        }
        function.backward(x: c.input, y: c.output, dy: c.outputGradient!, dx: dx,
                          count: c.batch * c.outputSize, rowLength: c.outputShape.last ?? 1)
    }
}

/// Rectified linear unit with Keras's options (Keras `ReLU`): `maxValue` caps the output,
/// inputs at or below `threshold` give 0, and below it `negativeSlope * (x - threshold)`.
public final class ReLU: Layer {
    public override var supportsMasking: Bool { true }
    /// The largest output value, or nil for no cap.
    public let maxValue: Float?
    /// The slope below the threshold.
    public let negativeSlope: Float
    /// The value below which the negative slope applies.
    public let threshold: Float

    /// A ReLU layer (defaults: no cap, slope 0, threshold 0).
    public init(maxValue: Float? = nil, negativeSlope: Float = 0, threshold: Float = 0,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.maxValue = maxValue
        self.negativeSlope = negativeSlope
        self.threshold = threshold
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        if let maxValue, maxValue < 0 {
            throw KestrelError.invalidArgument("\(name) (ReLU): maxValue must be >= 0, found \(maxValue)")
        }
        guard negativeSlope >= 0 else {
            throw KestrelError.invalidArgument("\(name) (ReLU): negativeSlope must be >= 0, found \(negativeSlope)")
        }
        return inputShape
    }

    public override var config: [String: String] {
        ["name": name, "max_value": maxValue.map { "\($0)" } ?? "None",
         "negative_slope": "\(negativeSlope)", "threshold": "\(threshold)"]
    }

    // Keras's formula: the positive part is `x·[x > threshold]` (plain relu for threshold 0),
    // clipped to [0, maxValue] when capped; minus `negativeSlope·max(threshold - x, 0)`.
    @inline(__always)
    private func positivePart(_ v: Float) -> (value: Float, slope: Float) {
        var p: Float = threshold != 0 ? (v > threshold ? v : 0) : max(v, 0)
        var d: Float = (threshold != 0 ? v > threshold : v > 0) ? 1 : 0
        if let maxValue {
            if p <= 0 { p = 0; d = 0 } else if p >= maxValue { p = maxValue; d = 0 }
        }
        return (p, d)
    }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        let x = c.input, y = c.output
        for i in 0..<n {
            let v = x[i]
            y[i] = positivePart(v).value - negativeSlope * max(threshold - v, 0)
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let n = c.batch * c.outputSize
        let x = c.input, dy = c.outputGradient!
        for i in 0..<n {
            let v = x[i]
            dx[i] = dy[i] * (positivePart(v).slope + (v < threshold ? negativeSlope : 0))
        }
    }
}

/// Leaky ReLU, `x` for x ≥ 0 and `negativeSlope * x` otherwise (Keras `LeakyReLU`, default 0.3).
public final class LeakyReLU: Layer {
    public override var supportsMasking: Bool { true }
    /// The slope for negative inputs.
    public let negativeSlope: Float

    /// A leaky ReLU layer.
    public init(negativeSlope: Float = 0.3, inputShape: [Int]? = nil, name: String? = nil) {
        self.negativeSlope = negativeSlope
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard negativeSlope >= 0 else {
            throw KestrelError.invalidArgument("\(name) (LeakyReLU): negativeSlope must be >= 0, found \(negativeSlope)")
        }
        return inputShape
    }

    public override var config: [String: String] { ["name": name, "negative_slope": "\(negativeSlope)"] }

    public override func forward(_ c: LayerContext) {
        ActivationFunction.leakyRelu(negativeSlope: negativeSlope)
            .apply(c.input, c.output, count: c.batch * c.outputSize, rowLength: 1)
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let n = c.batch * c.outputSize
        let x = c.input, dy = c.outputGradient!
        for i in 0..<n { dx[i] = x[i] >= 0 ? dy[i] : negativeSlope * dy[i] }
    }
}

/// Softmax along an axis of each sample (Keras `Softmax`, default the last axis).
public final class Softmax: Layer {
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        // Keras adds -1e9 to masked logits, broadcasting the mask against the trailing axes.
        guard inputsMasked.first != true else {
            throw KestrelError.invalidArgument(
                "\(name) (Softmax): the input carries a mask (from Embedding maskZero or Masking), which Keras would add to the logits; masked softmax is not supported")
        }
        return .none
    }

    /// The axis, counted in the full tensor (negative from the end; the batch axis is 0).
    public let axis: Int

    /// A softmax layer.
    public init(axis: Int = -1, inputShape: [Int]? = nil, name: String? = nil) {
        self.axis = axis
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        _ = try sampleAxis(inputShape)
        return inputShape
    }

    public override var config: [String: String] { ["name": name, "axis": "\(axis)"] }

    /// The axis within a sample's shape.
    private func sampleAxis(_ shape: [Int]) throws -> Int {
        let a = axis < 0 ? shape.count + axis : axis - 1
        guard a >= 0 && a < shape.count else {
            throw KestrelError.invalidArgument(
                "\(name) (Softmax): axis \(axis) is out of range for samples of shape \(shape) (batch axis 0 not allowed)")
        }
        return a
    }

    private func geometry(_ c: LayerContext) -> (outer: Int, n: Int, inner: Int) {
        let shape = c.outputShape
        let a = try! sampleAxis(shape)
        return (c.batch * shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    public override func forward(_ c: LayerContext) {
        let (outer, n, inner) = geometry(c)
        if inner == 1 {
            Kernels.softmaxRows(c.input, c.output, rows: outer, columns: n)
            return
        }
        let x = c.input, y = c.output
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var m = -Float.infinity
                for k in 0..<n { m = max(m, x[base + k * inner]) }
                var s: Float = 0
                for k in 0..<n { let e = expf(x[base + k * inner] - m); y[base + k * inner] = e; s += e }
                for k in 0..<n { y[base + k * inner] /= s }
            }
        }
    }

    public override var backwardNeedsInput: Bool { false }
    public override var logitsActivation: ActivationFunction? { axis == -1 ? .softmax : nil }
    public override var logitsAreInput: Bool { true }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        if c.logits != nil {
            dx.update(from: c.outputGradient!, count: c.batch * c.outputSize)
            return
        }
        let (outer, n, inner) = geometry(c)
        let y = c.output, dy = c.outputGradient!
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * n * inner + i
                var dot: Float = 0
                for k in 0..<n { dot += dy[base + k * inner] * y[base + k * inner] }
                for k in 0..<n { dx[base + k * inner] = y[base + k * inner] * (dy[base + k * inner] - dot) }
            }
        }
    }
}

/// Exponential linear unit, `x` for x > 0 and `alpha * (exp(x) - 1)` otherwise (Keras `ELU`).
public final class ELU: Layer {
    public override var supportsMasking: Bool { true }
    /// The value the output approaches for large negative inputs is `-alpha`.
    public let alpha: Float

    /// An ELU layer (Keras default alpha 1).
    public init(alpha: Float = 1, inputShape: [Int]? = nil, name: String? = nil) {
        self.alpha = alpha
        super.init(name: name, inputShape: inputShape)
    }

    public override var config: [String: String] { ["name": name, "alpha": "\(alpha)"] }

    public override func forward(_ c: LayerContext) {
        ActivationFunction.elu(alpha: alpha).apply(c.input, c.output, count: c.batch * c.outputSize, rowLength: 1)
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        ActivationFunction.elu(alpha: alpha).backward(x: c.input, y: c.output, dy: c.outputGradient!, dx: dx,
                                                      count: c.batch * c.outputSize, rowLength: 1)
    }
}

/// Parametric ReLU, `x` for x ≥ 0 and `alpha * x` otherwise, with `alpha` learned for every
/// input element or shared along `sharedAxes` (Keras `PReLU`).
public final class PReLU: Layer {
    public override var supportsMasking: Bool { true }
    /// How `alpha` starts (zeros: the layer starts as a ReLU).
    public let alphaInitializer: Initializer
    /// The penalty on `alpha`, if any.
    public let alphaRegularizer: Regularizer?
    /// The constraint on `alpha`, if any.
    public let alphaConstraint: Constraint?
    /// Axes of the full tensor (1 is the first axis after the batch) along which one `alpha`
    /// is shared; `[1, 2]` gives one slope per channel of an image.
    public let sharedAxes: [Int]?

    // The sample shape and, per axis, the step in `alpha` (0 along shared axes): set at build,
    // so that forward and backward map elements to slopes without allocating.
    private var sampleShape: [Int] = []
    private var alphaStrides: [Int] = []
    private var perChannel = false

    /// A PReLU layer with Keras's defaults.
    public init(alphaInitializer: Initializer = .zeros, alphaRegularizer: Regularizer? = nil,
                alphaConstraint: Constraint? = nil, sharedAxes: [Int]? = nil,
                inputShape: [Int]? = nil, name: String? = nil) {
        self.alphaInitializer = alphaInitializer
        self.alphaRegularizer = alphaRegularizer
        self.alphaConstraint = alphaConstraint
        self.sharedAxes = sharedAxes
        super.init(name: name, inputShape: inputShape)
        weightRegularizers = [alphaRegularizer]
        weightConstraints = [alphaConstraint]
    }

    /// The shape of `alpha` for a sample shape: the sample's, with shared axes set to 1.
    private func alphaShape(_ inputShape: [Int]) throws -> [Int] {
        var shape = inputShape
        for axis in sharedAxes ?? [] {
            guard axis >= 1 && axis <= inputShape.count else {
                throw KestrelError.invalidArgument(
                    "\(name) (PReLU): sharedAxes entry \(axis) is out of range for samples of shape \(inputShape) (axes 1...\(inputShape.count); the batch axis 0 cannot be shared)")
            }
            shape[axis - 1] = 1
        }
        return shape
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        _ = try alphaShape(inputShape)
        return inputShape
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let shape = try alphaShape(shapes[0])
        sampleShape = shapes[0]
        alphaStrides = Array(repeating: 0, count: shape.count)
        var step = 1
        for k in stride(from: shape.count - 1, through: 0, by: -1) where shape[k] != 1 {
            alphaStrides[k] = step
            step *= shape[k]
        }
        // One slope per channel (every other axis shared), the usual case for images.
        perChannel = alphaStrides.dropLast().allSatisfy { $0 == 0 } && alphaStrides.last == 1
        return [WeightSpec(name: "alpha", shape: shape, initializer: alphaInitializer)]
    }

    public override var config: [String: String] {
        ["name": name, "alpha_initializer": "\(alphaInitializer)",
         "shared_axes": sharedAxes.map { "\($0)" } ?? "None"]
    }

    /// The index in `alpha` of element `i` of a sample.
    @inline(__always)
    private func alphaIndex(_ i: Int) -> Int {
        if sharedAxes == nil { return i }
        if perChannel { return i % sampleShape[sampleShape.count - 1] }
        var rest = i, index = 0
        for k in stride(from: sampleShape.count - 1, through: 0, by: -1) {
            let d = sampleShape[k]
            index += (rest % d) * alphaStrides[k]
            rest /= d
        }
        return index
    }

    public override func forward(_ c: LayerContext) {
        let n = c.outputSize, alpha = c.weights[0]
        for b in 0..<c.batch {
            let x = c.input + b * n, y = c.output + b * n
            for i in 0..<n {
                let v = x[i]
                y[i] = v > 0 ? v : alpha[alphaIndex(i)] * v
            }
        }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.outputSize, alpha = c.weights[0], dAlpha = c.weightGradients[0]
        if !c.accumulateWeightGradients { dAlpha.update(repeating: 0, count: weightSpecs[0].count) }
        for b in 0..<c.batch {
            let x = c.input + b * n, dy = c.outputGradient! + b * n
            let dx = c.inputGradient.map { $0 + b * n }
            for i in 0..<n {
                let v = x[i]
                if v > 0 {
                    dx?[i] = dy[i]
                } else {
                    let a = alphaIndex(i)
                    dx?[i] = alpha[a] * dy[i]
                    dAlpha[a] += dy[i] * v
                }
            }
        }
    }
}
