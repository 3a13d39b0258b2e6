import CKestrelKernels
import Foundation

/// An element-wise (or, for softmax, row-wise) activation function, as in `keras.activations`.
public enum ActivationFunction: Sendable, Equatable, Hashable {
    /// Identity (Keras `"linear"`, the default of Dense).
    case linear
    /// `max(x, 0)`.
    case relu
    /// `1 / (1 + exp(-x))`.
    case sigmoid
    /// Hyperbolic tangent.
    case tanh
    /// Softmax over the last axis.
    case softmax
    /// `x` for x > 0, `alpha * (exp(x) - 1)` otherwise (Keras default alpha 1).
    case elu(alpha: Float)
    /// Scaled ELU with Keras's fixed alpha and scale.
    case selu
    /// Gaussian error linear unit; `approximate` uses the tanh form (Keras default false).
    case gelu(approximate: Bool)
    /// `log(exp(x) + 1)`.
    case softplus
    /// `x / (|x| + 1)`.
    case softsign
    /// `x * sigmoid(x)` (also called SiLU).
    case swish
    /// `x` for x ≥ 0, `negativeSlope * x` otherwise (Keras's activation default 0.2).
    case leakyRelu(negativeSlope: Float)
    /// Piecewise-linear sigmoid `clip(x / 6 + 0.5, 0, 1)` (Keras 3).
    case hardSigmoid
    /// `exp(x)`.
    case exponential

    /// ELU with Keras's default alpha 1.
    public static var elu: ActivationFunction { .elu(alpha: 1) }
    /// GELU with Keras's default (exact, erf-based).
    public static var gelu: ActivationFunction { .gelu(approximate: false) }
    /// Leaky ReLU with Keras's activation default slope 0.2.
    public static var leakyRelu: ActivationFunction { .leakyRelu(negativeSlope: 0.2) }
    /// SiLU, the same function as swish.
    public static var silu: ActivationFunction { .swish }

    /// The activation for a Keras name ("relu", "softmax", "silu", …).
    public init(named name: String) throws {
        switch name.lowercased() {
        case "linear", "none", "": self = .linear
        case "relu": self = .relu
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        case "elu": self = .elu
        case "selu": self = .selu
        case "gelu": self = .gelu
        case "softplus": self = .softplus
        case "softsign": self = .softsign
        case "swish", "silu": self = .swish
        case "leaky_relu", "leakyrelu": self = .leakyRelu
        case "hard_sigmoid", "hardsigmoid": self = .hardSigmoid
        case "exponential": self = .exponential
        default:
            throw KestrelError.invalidArgument(
                "activation: unknown name '\(name)'; expected one of linear, relu, sigmoid, tanh, softmax, elu, selu, gelu, softplus, softsign, swish, silu, leaky_relu, hard_sigmoid, exponential")
        }
    }

    /// The Keras name of the activation.
    public var kerasName: String {
        switch self {
        case .linear: "linear"
        case .relu: "relu"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .softmax: "softmax"
        case .elu: "elu"
        case .selu: "selu"
        case .gelu: "gelu"
        case .softplus: "softplus"
        case .softsign: "softsign"
        case .swish: "silu"
        case .leakyRelu: "leaky_relu"
        case .hardSigmoid: "hard_sigmoid"
        case .exponential: "exponential"
        }
    }

    /// Whether the derivative needs the input `x` rather than only the output `y`.
    /// Layers keep the pre-activation values only for these.
    public var derivativeNeedsInput: Bool {
        switch self {
        case .gelu, .swish, .softsign: true
        default: false
        }
    }

    static let seluAlpha: Float = 1.6732632423543772
    static let seluScale: Float = 1.0507009873554805

    /// Applies the activation to `count` values (rows of `rowLength` for softmax); `y` may equal `x`.
    public func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, rowLength: Int) {
        switch self {
        case .linear:
            if UnsafePointer(y) != x { y.update(from: x, count: count) }
        case .relu:
            for i in 0..<count { y[i] = max(x[i], 0) }
        case .sigmoid:
            kestrel_sigmoid(x, y, count)
        case .tanh:
            kestrel_tanh(x, y, count)
        case .softmax:
            Kernels.softmaxRows(x, y, rows: count / max(rowLength, 1), columns: rowLength)
        case .elu(let alpha):
            for i in 0..<count { let v = x[i]; y[i] = v > 0 ? v : alpha * (expf(v) - 1) }
        case .selu:
            let a = ActivationFunction.seluAlpha, s = ActivationFunction.seluScale
            for i in 0..<count { let v = x[i]; y[i] = v > 0 ? s * v : s * a * (expf(v) - 1) }
        case .gelu(let approximate):
            if approximate {
                let c: Float = 0.7978845608028654
                for i in 0..<count { let v = x[i]; y[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v))) }
            } else {
                for i in 0..<count { let v = x[i]; y[i] = 0.5 * v * (1 + erff(v * 0.7071067811865476)) }
            }
        case .softplus:
            for i in 0..<count { let v = x[i]; y[i] = max(v, 0) + log1pf(expf(-abs(v))) }
        case .softsign:
            for i in 0..<count { let v = x[i]; y[i] = v / (abs(v) + 1) }
        case .swish:
            kestrel_swish(x, y, count)
        case .leakyRelu(let slope):
            for i in 0..<count { let v = x[i]; y[i] = v >= 0 ? v : slope * v }
        case .hardSigmoid:
            for i in 0..<count { y[i] = min(max(x[i] / 6 + 0.5, 0), 1) }
        case .exponential:
            kestrel_exp(x, y, count)
        }
    }

    /// Turns the output gradient `dy` into the input gradient `dx` (which may equal `dy`),
    /// given the output `y` and, where `derivativeNeedsInput`, the input `x`.
    public func backward(x: UnsafePointer<Float>?, y: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>, count: Int, rowLength: Int) {
        switch self {
        case .linear:
            if UnsafePointer(dx) != dy { dx.update(from: dy, count: count) }
        case .relu:
            for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : 0 }
        case .sigmoid:
            for i in 0..<count { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        case .tanh:
            for i in 0..<count { dx[i] = dy[i] * (1 - y[i] * y[i]) }
        case .softmax:
            let rows = count / max(rowLength, 1)
            for r in 0..<rows {
                let o = r * rowLength
                var dot: Float = 0
                for j in 0..<rowLength { dot += dy[o + j] * y[o + j] }
                for j in 0..<rowLength { dx[o + j] = y[o + j] * (dy[o + j] - dot) }
            }
        case .elu(let alpha):
            for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] : dy[i] * (y[i] + alpha) }
        case .selu:
            let a = ActivationFunction.seluAlpha, s = ActivationFunction.seluScale
            for i in 0..<count { dx[i] = y[i] > 0 ? dy[i] * s : dy[i] * (y[i] + s * a) }
        case .gelu(let approximate):
            let x = x!
            if approximate {
                let c: Float = 0.7978845608028654
                for i in 0..<count {
                    let v = x[i]
                    let t = tanhf(c * (v + 0.044715 * v * v * v))
                    let dt = (1 - t * t) * c * (1 + 3 * 0.044715 * v * v)
                    dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * dt)
                }
            } else {
                for i in 0..<count {
                    let v = x[i]
                    let cdf = 0.5 * (1 + erff(v * 0.7071067811865476))
                    let pdf = expf(-0.5 * v * v) * 0.3989422804014327
                    dx[i] = dy[i] * (cdf + v * pdf)
                }
            }
        case .softplus:
            // softplus'(x) = sigmoid(x) = 1 - exp(-y)
            for i in 0..<count { dx[i] = dy[i] * (1 - expf(-y[i])) }
        case .softsign:
            let x = x!
            for i in 0..<count { let d = abs(x[i]) + 1; dx[i] = dy[i] / (d * d) }
        case .swish:
            let x = x!
            for i in 0..<count {
                let s = 1 / (1 + expf(-x[i]))
                dx[i] = dy[i] * (s + x[i] * s * (1 - s))
            }
        case .leakyRelu(let slope):
            for i in 0..<count { dx[i] = y[i] >= 0 ? dy[i] : dy[i] * slope }
        case .hardSigmoid:
            for i in 0..<count { dx[i] = (y[i] > 0 && y[i] < 1) ? dy[i] / 6 : 0 }
        case .exponential:
            for i in 0..<count { dx[i] = dy[i] * y[i] }
        }
    }

    /// Applies the activation to a tensor (softmax over its last axis).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var out = x
        let row = x.shape.last ?? 1
        x.scalars.withUnsafeBufferPointer { src in
            out.scalars.withUnsafeMutableBufferPointer { dst in
                apply(src.baseAddress!, dst.baseAddress!, count: x.count, rowLength: row)
            }
        }
        return out
    }
}
