import Foundation
import Kestrel
import SwiftProtobuf

/// What `exportONNX` writes: versions chosen so that onnxruntime releases of the last years
/// load the file (newer IR versions are refused by older runtimes).
public enum ONNXFormat {
    /// The ONNX IR version written (8: onnxruntime 1.10 and later).
    public static let irVersion: Int64 = 8
    /// The default operator set (17: has LayerNormalization; ReduceMean still takes `axes` as
    /// an attribute).
    public static let defaultOpset: Int64 = 17
    /// The name of the symbolic batch dimension of every input and output.
    public static let batchDimension = "batch"
}

extension Model {
    /// Exports the model for inference as an ONNX file that onnxruntime (or any ONNX runtime)
    /// runs: Dense as Gemm/MatMul, convolutions and pooling in NCHW between transposes (so
    /// inputs and outputs keep Keras's channels-last layout), batch normalization folded into
    /// a scale and shift, dropout removed. Inputs and outputs are named like the model's
    /// (`inputNames`, `outputNames`), float32, with a symbolic batch dimension.
    ///
    /// Written to a temporary file and renamed into place. Throws for a layer that has no
    /// ONNX translation yet, naming it.
    public func exportONNX(to path: String) throws {
        try writeAtomically(try onnxModelData(), to: path)
    }

    /// The serialized ONNX `ModelProto` that `exportONNX(to:)` writes.
    public func onnxModelData() throws -> Data {
        var builder = ONNXGraphBuilder(modelName: name)
        let (nodes, inputs, outputs) = try graphNodes()
        var names = [String](repeating: "", count: nodes.count)
        for (k, i) in inputs.enumerated() {
            names[i] = inputNames[k]
            builder.graph.input.append(valueInfo(names[i], shape: nodes[i].outputShape))
        }
        let outputNodeNames = Set(outputs)
        for (i, node) in nodes.enumerated() where !inputs.contains(i) {
            if let k = node.selectedOutput {
                // A state the call of `inputs[0]` returned with its output.
                names[i] = builder.additionalOutputs[names[node.inputs[0]]]![k - 1]
                continue
            }
            let args = node.inputs.map { names[$0] }
            let inputShapes = node.inputs.map { nodes[$0].outputShape }
            names[i] = try builder.translate(node.layer, inputs: args, inputShapes: inputShapes, outputShape: node.outputShape)
            _ = outputNodeNames
        }
        var usedOutputNames = Set<String>()
        for (k, o) in outputs.enumerated() {
            // Outputs get the model's output names; an Identity renames when needed (an output
            // that is also an input, or a layer whose value is shared with its input). A name
            // given twice (a layer's output and its returned states, as Keras names them) gets
            // `_1`, `_2`, … after the first.
            var wanted = outputNames[k], suffix = 0
            while !usedOutputNames.insert(wanted).inserted {
                suffix += 1
                wanted = "\(outputNames[k])_\(suffix)"
            }
            builder.add("Identity", [names[o]], [wanted])
            builder.graph.output.append(valueInfo(wanted, shape: nodes[o].outputShape))
        }
        var model = Onnx_ModelProto()
        model.irVersion = ONNXFormat.irVersion
        model.producerName = "Kestrel"
        model.producerVersion = "1"
        var opset = Onnx_OperatorSetIdProto()
        opset.domain = ""
        opset.version = ONNXFormat.defaultOpset
        model.opsetImport = [opset]
        model.graph = builder.graph
        return try model.serializedData()
    }
}

/// A float32 value with a symbolic batch dimension followed by `shape`.
func valueInfo(_ name: String, shape: [Int]) -> Onnx_ValueInfoProto {
    var info = Onnx_ValueInfoProto()
    info.name = name
    var tensor = Onnx_TypeProto.Tensor()
    tensor.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
    var batch = Onnx_TensorShapeProto.Dimension()
    batch.dimParam = ONNXFormat.batchDimension
    tensor.shape.dim = [batch] + shape.map { d in
        var dim = Onnx_TensorShapeProto.Dimension()
        dim.dimValue = Int64(d)
        return dim
    }
    info.type.tensorType = tensor
    return info
}

/// Accumulates ONNX nodes and initializers, naming every value uniquely.
struct ONNXGraphBuilder {
    var graph = Onnx_GraphProto()
    private var counter = 0
    /// The values of a translated call's outputs after its first (a recurrent layer's final
    /// states), keyed by the value of its first output.
    var additionalOutputs: [String: [String]] = [:]

    init(modelName: String) {
        graph.name = modelName
    }

    /// A fresh value name derived from `base`.
    mutating func fresh(_ base: String) -> String {
        counter += 1
        return "\(base)__\(counter)"
    }

    /// Appends a node computing `outputs` from `inputs`.
    mutating func add(_ op: String, _ inputs: [String], _ outputs: [String], _ attributes: [Onnx_AttributeProto] = []) {
        var node = Onnx_NodeProto()
        node.opType = op
        node.input = inputs
        node.output = outputs
        node.name = outputs[0]
        node.attribute = attributes
        graph.node.append(node)
    }

    /// Appends a node with one fresh output and returns its name.
    mutating func op(_ op: String, _ inputs: [String], base: String, _ attributes: [Onnx_AttributeProto] = []) -> String {
        let out = fresh(base)
        add(op, inputs, [out], attributes)
        return out
    }

    /// Adds a float32 initializer and returns its name.
    mutating func constant(_ name: String, shape: [Int], scalars: [Float]) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(name)
        t.dims = shape.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        t.rawData = scalars.withUnsafeBufferPointer { Data(buffer: $0) }
        graph.initializer.append(t)
        return t.name
    }

    /// Adds an int64 initializer (shapes for Reshape) and returns its name.
    mutating func int64Constant(_ name: String, _ values: [Int64], shape: [Int]? = nil) -> String {
        var t = Onnx_TensorProto()
        t.name = fresh(name)
        t.dims = (shape ?? [values.count]).map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        t.rawData = values.withUnsafeBufferPointer { Data(buffer: $0) }
        graph.initializer.append(t)
        return t.name
    }
}

/// Attribute constructors.
enum Attribute {
    static func int(_ name: String, _ v: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(v)
        return a
    }

    static func ints(_ name: String, _ v: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = v.map(Int64.init)
        return a
    }

    static func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = v
        return a
    }

    static func floats(_ name: String, _ v: [Float]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .floats
        a.floats = v
        return a
    }

    static func strings(_ name: String, _ v: [String]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .strings
        a.strings = v.map { Data($0.utf8) }
        return a
    }

    static func string(_ name: String, _ v: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(v.utf8)
        return a
    }
}
