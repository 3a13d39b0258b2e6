import Foundation
import Kestrel

extension ONNXGraphBuilder {
    /// Translates one layer call into ONNX nodes; returns the name of its output value.
    /// Values stay in Kestrel's channels-last layout between layers.
    mutating func translate(_ layer: Layer, inputs: [String], inputShapes: [[Int]], outputShape: [Int]) throws -> String {
        let base = layer.name
        func unsupported(_ why: String = "") -> KestrelError {
            KestrelError.invalidArgument(
                "exportONNX: layer '\(layer.name)' (\(layer.className)) has no ONNX translation yet\(why.isEmpty ? "" : ": \(why)")")
        }
        switch layer {
        case let l as Dense:
            let w = l.getWeights()
            let kernel = constant("\(base)/kernel", shape: w[0].shape, scalars: w[0].scalars)
            var y: String
            if inputShapes[0].count == 1 {
                // Gemm with Keras's (in, units) kernel as it is: transB = 0.
                var args = [inputs[0], kernel]
                if l.useBias { args.append(constant("\(base)/bias", shape: w[1].shape, scalars: w[1].scalars)) }
                y = op("Gemm", args, base: base)
            } else {
                y = op("MatMul", [inputs[0], kernel], base: base)
                if l.useBias { y = op("Add", [y, constant("\(base)/bias", shape: w[1].shape, scalars: w[1].scalars)], base: base) }
            }
            return try activation(l.activation, y, base: base, layer: l)
        case let l as Activation:
            return try activation(l.function, inputs[0], base: base, layer: l)
        case let l as ReLU:
            return relu(l, inputs[0], base: base)
        case let l as LeakyReLU:
            return op("LeakyRelu", [inputs[0]], base: base, [Attribute.float("alpha", l.negativeSlope)])
        case let l as Softmax:
            return op("Softmax", [inputs[0]], base: base, [Attribute.int("axis", l.axis)])
        case is Dropout, is InputLayer:
            return inputs[0]
        case is Flatten:
            // Values are channels-last here, so ONNX's row-major Flatten matches Keras's order.
            return op("Flatten", [inputs[0]], base: base, [Attribute.int("axis", 1)])
        case is Reshape:
            let shape = int64Constant("\(base)/shape", [-1] + outputShape.map(Int64.init))
            return op("Reshape", [inputs[0], shape], base: base)
        case is Add: return op("Sum", inputs, base: base)
        case is Average: return op("Mean", inputs, base: base)
        case is Maximum: return op("Max", inputs, base: base)
        case is Minimum: return op("Min", inputs, base: base)
        case is Subtract:
            guard inputs.count == 2 else { throw unsupported("Subtract takes exactly 2 inputs") }
            return op("Sub", inputs, base: base)
        case is Multiply:
            var y = inputs[0]
            for x in inputs.dropFirst() { y = op("Mul", [y, x], base: base) }
            return y
        case let l as Concatenate:
            return op("Concat", inputs, base: base, [Attribute.int("axis", l.axis)])
        case let l as Dot:
            guard inputShapes[0].count == 1 else { throw unsupported("only Dot of vectors is exported") }
            var (a, b) = (inputs[0], inputs[1])
            if l.normalize {
                a = op("LpNormalization", [a], base: base, [Attribute.int("axis", -1), Attribute.int("p", 2)])
                b = op("LpNormalization", [b], base: base, [Attribute.int("axis", -1), Attribute.int("p", 2)])
            }
            let product = op("Mul", [a, b], base: base)
            return op("ReduceSum", [product, int64Constant("\(base)/axes", [1])], base: base, [Attribute.int("keepdims", 1)])
        default:
            throw unsupported()
        }
    }

    /// Applies an activation function to `x`.
    mutating func activation(_ f: ActivationFunction, _ x: String, base: String, layer: Layer) throws -> String {
        switch f {
        case .linear: return x
        case .relu: return op("Relu", [x], base: base)
        case .sigmoid: return op("Sigmoid", [x], base: base)
        case .tanh: return op("Tanh", [x], base: base)
        case .softmax: return op("Softmax", [x], base: base, [Attribute.int("axis", -1)])
        case .elu(let alpha): return op("Elu", [x], base: base, [Attribute.float("alpha", alpha)])
        case .selu:
            // Keras's constants (ONNX's defaults differ in the last digits).
            return op("Selu", [x], base: base, [Attribute.float("alpha", 1.6732632423543772),
                                                 Attribute.float("gamma", 1.0507009873554805)])
        case .softplus: return op("Softplus", [x], base: base)
        case .softsign: return op("Softsign", [x], base: base)
        case .exponential: return op("Exp", [x], base: base)
        case .leakyRelu(let slope): return op("LeakyRelu", [x], base: base, [Attribute.float("alpha", slope)])
        case .hardSigmoid:
            // Keras 3: relu6(x + 3) / 6.
            return op("HardSigmoid", [x], base: base, [Attribute.float("alpha", 1.0 / 6), Attribute.float("beta", 0.5)])
        case .swish:
            return op("Mul", [x, op("Sigmoid", [x], base: base)], base: base)
        case .gelu(let approximate):
            let half = constant("\(base)/half", shape: [], scalars: [0.5])
            let one = constant("\(base)/one", shape: [], scalars: [1])
            let inner: String
            if approximate {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let cube = op("Mul", [x, op("Mul", [x, x], base: base)], base: base)
                let c = constant("\(base)/c", shape: [], scalars: [0.044715])
                let k = constant("\(base)/k", shape: [], scalars: [Float((2 / Double.pi).squareRoot())])
                let sum = op("Add", [x, op("Mul", [cube, c], base: base)], base: base)
                inner = op("Tanh", [op("Mul", [sum, k], base: base)], base: base)
            } else {
                // 0.5·x·(1 + erf(x/√2))
                let root2 = constant("\(base)/sqrt2", shape: [], scalars: [Float(2.0.squareRoot())])
                inner = op("Erf", [op("Div", [x, root2], base: base)], base: base)
            }
            let gate = op("Mul", [half, op("Add", [one, inner], base: base)], base: base)
            return op("Mul", [x, gate], base: base)
        }
    }

    /// Keras's ReLU: `min(x·[x > threshold], maxValue) − negativeSlope·max(threshold − x, 0)`.
    mutating func relu(_ l: ReLU, _ x: String, base: String) -> String {
        if l.threshold == 0 && l.negativeSlope == 0 {
            let y = op("Relu", [x], base: base)
            guard let maxValue = l.maxValue else { return y }
            return op("Min", [y, constant("\(base)/max", shape: [], scalars: [maxValue])], base: base)
        }
        let threshold = constant("\(base)/threshold", shape: [], scalars: [l.threshold])
        let zero = constant("\(base)/zero", shape: [], scalars: [0])
        var positive = op("Where", [op("Greater", [x, threshold], base: base), x, zero], base: base)
        if let maxValue = l.maxValue {
            positive = op("Min", [positive, constant("\(base)/max", shape: [], scalars: [maxValue])], base: base)
        }
        guard l.negativeSlope != 0 else { return positive }
        let below = op("Relu", [op("Sub", [threshold, x], base: base)], base: base)
        let slope = constant("\(base)/slope", shape: [], scalars: [l.negativeSlope])
        return op("Sub", [positive, op("Mul", [below, slope], base: base)], base: base)
    }
}
