/// A directed acyclic graph of layer calls: what `Sequential` and the Functional API both
/// produce, and what a plan executes.
struct ModelGraph {
    /// One call of a layer on the outputs of earlier nodes (an `InputLayer` node has no inputs).
    struct Node {
        let layer: Layer
        let inputs: [Int]
    }

    /// Nodes in topological order.
    var nodes: [Node]
    /// Indices of the model's input nodes.
    var inputNodes: [Int]
    /// Indices of the model's output nodes.
    var outputNodes: [Int]

    /// A chain: an input node followed by each layer applied to the previous one.
    static func chain(input: InputLayer, layers: [Layer]) -> ModelGraph {
        var nodes = [Node(layer: input, inputs: [])]
        for layer in layers { nodes.append(Node(layer: layer, inputs: [nodes.count - 1])) }
        return ModelGraph(nodes: nodes, inputNodes: [0], outputNodes: [nodes.count - 1])
    }

    /// The distinct layers, in first-call order (output selectors are not layers of the model).
    var uniqueLayers: [Layer] {
        var seen = Set<ObjectIdentifier>()
        return nodes.map(\.layer).filter { !($0 is OutputSelector) && seen.insert(ObjectIdentifier($0)).inserted }
    }

    /// For a node that is an output after the first of the call it reads (`OutputSelector`),
    /// that call's node and the output's index; nil for a layer call.
    func selectedOutput(_ i: Int) -> (node: Int, index: Int)? {
        (nodes[i].layer as? OutputSelector).map { (nodes[i].inputs[0], $0.index) }
    }

    /// Builds every layer for its input shapes and returns each node's per-sample output shape.
    func inferShapes() throws -> [[Int]] {
        var shapes: [[Int]] = []
        for node in nodes {
            if let input = node.layer as? InputLayer {
                shapes.append(try input.build(inputShape: input.shape))
            } else {
                shapes.append(try node.layer.build(inputShapes: node.inputs.map { shapes[$0] }))
            }
        }
        return shapes
    }
}

extension ModelGraph {
    /// Keras requires distinct layer names within a model (they key weights and outputs).
    func checkUniqueNames(model: String) throws {
        var seen: [String: ObjectIdentifier] = [:]
        for layer in uniqueLayers {
            if let other = seen[layer.name], other != ObjectIdentifier(layer) {
                throw KestrelError.invalidArgument(
                    "\(model): two different layers are named '\(layer.name)'; layer names must be unique within a model")
            }
            seen[layer.name] = ObjectIdentifier(layer)
        }
    }
}

extension ModelGraph {
    /// For each node, the node whose mask buffer holds its output's mask (itself when the layer
    /// computes one, an earlier node when masks pass through), or nil when the output has none.
    /// Throws when a layer would need a mask Kestrel cannot use (`Layer.maskHandling`).
    func maskSources(training: Bool) throws -> [Int?] {
        var source: [Int?] = Array(repeating: nil, count: nodes.count)
        for (i, node) in nodes.enumerated() where !(node.layer is InputLayer) {
            let masked = node.inputs.map { source[$0] != nil }
            switch try node.layer.maskHandling(inputsMasked: masked, training: training) {
            case .none: break
            case .propagate: source[i] = source[node.inputs[0]]
            case .compute: source[i] = i
            }
        }
        return source
    }
}
