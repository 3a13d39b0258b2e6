import Foundation

/// How `saveWeights`/`loadWeights` name and lay out the weights in a safetensors file.
public enum WeightNaming: Sendable, Equatable {
    /// The paths of Keras's `.weights.h5` files, `layers/<snake_case_class>[_N]/vars/<i>`
    /// (the second Dense is `layers/dense_1/vars/0`), in Keras's layouts. Positional, so a
    /// model rebuilt with other automatic layer names still loads them.
    case keras
    /// PyTorch `state_dict` names and layouts: `<module>.weight` / `.bias` (`running_mean`, …
    /// for batch normalization), Dense kernels transposed to `(out, in)`, convolution kernels
    /// as `(out, in, kH, kW)`. A Dense layer fed by `Flatten` of a convolutional feature map
    /// gets its input columns in PyTorch's channels-first flattening order (`x.view(n, -1)` of
    /// an NCHW tensor), so the ported module computes the same function. `modules` maps layer
    /// names to module names (default: the layer name), e.g. `["dense": "fc1"]`.
    case pytorch(modules: [String: String] = [:])
}

extension Model {
    /// Each weight variable's name under `naming`, with a function from Kestrel's layout to the
    /// file's and back.
    func namedVariables(_ naming: WeightNaming) -> [(layer: Layer, index: Int, name: String,
                                                      toFile: (Tensor) -> Tensor, fromFile: (Tensor) -> Tensor)] {
        var result: [(Layer, Int, String, (Tensor) -> Tensor, (Tensor) -> Tensor)] = []
        var perClass: [String: Int] = [:]
        for layer in layers {
            let base = LayerNames.snakeCase(layer.className)
            let position = perClass[base, default: 0]
            perClass[base] = position + 1
            let kerasPath = position == 0 ? "layers/\(base)" : "layers/\(base)_\(position)"
            for (i, spec) in layer.weightSpecs.enumerated() {
                switch naming {
                case .keras:
                    result.append((layer, i, "\(kerasPath)/vars/\(i)", { $0 }, { $0 }))
                case .pytorch(let modules):
                    let module = modules[layer.name] ?? layer.name
                    let names = ["kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                                 "moving_mean": "running_mean", "moving_variance": "running_var",
                                 "embeddings": "weight"]
                    let variable = names[spec.name] ?? spec.name
                    let (to, from) = PyTorchLayout.conversion(for: layer, spec: spec,
                                                              flattenedFeatureMap: flattenedFeatureMap(feeding: layer))
                    result.append((layer, i, "\(module).\(variable)", to, from))
                }
            }
        }
        return result
    }

    /// The per-sample shape `(spatial…, channels)` of the channels-last feature map that a
    /// `Flatten` (possibly followed by `Dropout`) turns into `layer`'s input, when `layer` is
    /// a Dense layer fed that way; nil otherwise. PyTorch flattens the same map from
    /// `(channels, spatial…)`, so such a kernel's rows are in a different order there.
    ///
    /// A rank-3 map is an image; a rank-2 map `(steps, channels)` counts only when it comes
    /// from a 1-D convolution or pooling (a plain `(rows, columns)` input, such as the
    /// tutorial's 28×28 images, flattens in the same order in both libraries).
    func flattenedFeatureMap(feeding layer: Layer) -> [Int]? {
        guard layer is Dense, let graph, shapes.count == graph.nodes.count,
              let n = graph.nodes.firstIndex(where: { $0.layer === layer }), graph.nodes[n].inputs.count == 1 else { return nil }
        var p = graph.nodes[n].inputs[0]
        while graph.nodes[p].layer is Dropout, graph.nodes[p].inputs.count == 1 { p = graph.nodes[p].inputs[0] }
        guard graph.nodes[p].layer is Flatten, graph.nodes[p].inputs.count == 1 else { return nil }
        let source = graph.nodes[p].inputs[0]
        let map = shapes[source]
        guard map.count >= 2, map.last! > 1 else { return nil }
        if map.count >= 3 { return map }
        // Walk back through shape-preserving layers (activations, dropout, normalization) to
        // the layer that made the sequence.
        var q = source
        while true {
            let l = graph.nodes[q].layer
            if l is Conv1D || (l as? BasePooling)?.rank == 1 { return map }
            guard graph.nodes[q].inputs.count == 1, shapes[graph.nodes[q].inputs[0]] == map,
                  !(l is InputLayer) else { return nil }
            q = graph.nodes[q].inputs[0]
        }
    }

    /// Saves every weight to a safetensors file (Keras `save_weights`; PyTorch names with
    /// `naming: .pytorch()`). Written to a temporary file and renamed into place.
    public func saveWeights(to path: String, naming: WeightNaming = .keras) throws {
        guard path.hasSuffix(".safetensors") else {
            throw KestrelError.invalidArgument(
                "\(name).saveWeights: \(path): the core library writes .safetensors; .weights.h5 and .keras come from KestrelKeras")
        }
        try build()
        let tensors = namedVariables(naming).map { v in (v.name, v.toFile(v.layer.getWeights()[v.index])) }
        let format = naming == .keras ? "keras" : "pt"
        try Safetensors.write(tensors, metadata: ["format": format], to: path)
    }

    /// Loads weights saved by `saveWeights` (or by PyTorch's `safetensors.torch.save_file` with
    /// `naming: .pytorch(...)`). Everything is checked before anything is set, so a bad file
    /// never leaves a half-loaded model. With `strict` (the default) the file must hold exactly
    /// the model's variables.
    public func loadWeights(from path: String, naming: WeightNaming = .keras, strict: Bool = true) throws {
        try build()
        let (tensors, _) = try Safetensors.read(from: path)
        var byName: [String: Tensor] = [:]
        for (n, t) in tensors { byName[n] = t }
        let variables = namedVariables(naming)
        var updates: [(Layer, Int, Tensor)] = []
        var missing: [String] = []
        for v in variables {
            guard let stored = byName.removeValue(forKey: v.name) else { missing.append(v.name); continue }
            let spec = v.layer.weightSpecs[v.index]
            let converted = v.fromFile(stored)
            guard converted.shape == spec.shape else {
                throw KestrelError.shapeMismatch(
                    "\(path): '\(v.name)' has shape \(stored.shape), but \(v.layer.name).\(spec.name) needs \(spec.shape) (in the file's layout: \(v.toFile(Tensor.zeros(spec.shape)).shape))")
            }
            updates.append((v.layer, v.index, converted))
        }
        if !missing.isEmpty {
            throw KestrelError.fileError("\(path): missing weights \(missing.joined(separator: ", ")) for model '\(name)'")
        }
        if strict && !byName.isEmpty {
            throw KestrelError.fileError(
                "\(path): unexpected weights \(byName.keys.sorted().joined(separator: ", ")) not in model '\(name)' (pass strict: false to ignore them)")
        }
        for (layer, index, tensor) in updates {
            var weights = layer.getWeights()
            weights[index] = tensor
            try layer.setWeights(weights)
        }
    }
}

/// Conversions between Keras's weight layouts and PyTorch's.
enum PyTorchLayout {
    static func permuted(_ t: Tensor, _ order: [Int]) -> Tensor {
        let shape = t.shape
        let newShape = order.map { shape[$0] }
        var strides = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * shape[i + 1] }
        var out = [Float](repeating: 0, count: t.count)
        var index = [Int](repeating: 0, count: shape.count)
        for flat in 0..<t.count {
            var source = 0
            for (k, axis) in order.enumerated() { source += index[k] * strides[axis] }
            out[flat] = t.scalars[source]
            var k = shape.count - 1
            while k >= 0 {
                index[k] += 1
                if index[k] < newShape[k] { break }
                index[k] = 0
                k -= 1
            }
        }
        return Tensor(shape: newShape, scalars: out)
    }

    static func inverse(_ order: [Int]) -> [Int] {
        var inv = [Int](repeating: 0, count: order.count)
        for (i, o) in order.enumerated() { inv[o] = i }
        return inv
    }

    /// Dense kernels `(in, out)` ↔ `(out, in)`; convolution kernels `(k…, in, out)` ↔
    /// `(out, in, k…)`; depthwise kernels `(kH, kW, in, multiplier)` ↔ `(in·multiplier, 1, kH, kW)`.
    /// A Dense kernel reading a flattened `(spatial…, C)` feature map has its rows reordered
    /// from channels-last to channels-first flattening: `(S·C, out)` ↔ `(out, C·S)`.
    static func conversion(for layer: Layer, spec: WeightSpec,
                           flattenedFeatureMap map: [Int]? = nil) -> ((Tensor) -> Tensor, (Tensor) -> Tensor) {
        let rank = spec.shape.count
        guard spec.name.hasSuffix("kernel"), rank >= 2 else { return ({ $0 }, { $0 }) }
        if let map, rank == 2, let channels = map.last, spec.shape[0] == map.reduce(1, *) {
            let (spatial, out) = (spec.shape[0] / channels, spec.shape[1])
            return ({ t in try! permuted(t.reshaped([spatial, channels, out]), [2, 1, 0]).reshaped([out, channels * spatial]) },
                    { t in
                        guard t.count == spec.count, let r = try? t.reshaped([out, channels, spatial]) else { return t }
                        return try! permuted(r, [2, 1, 0]).reshaped([spatial * channels, out])
                    })
        }
        if layer.className == "DepthwiseConv2D" || spec.name == "depthwise_kernel", rank == 4 {
            let (kh, kw, cin, mult) = (spec.shape[0], spec.shape[1], spec.shape[2], spec.shape[3])
            return ({ t in try! permuted(t, [2, 3, 0, 1]).reshaped([cin * mult, 1, kh, kw]) },
                    { t in
                        guard t.count == spec.count, let r = try? t.reshaped([cin, mult, kh, kw]) else { return t }
                        return permuted(r, [2, 3, 0, 1])
                    })
        }
        // (k…, in, out) → (out, in, k…); for a Dense kernel (in, out) → (out, in).
        let order = [rank - 1, rank - 2] + Array(0..<(rank - 2))
        return ({ permuted($0, order) }, { t in t.rank == rank ? permuted(t, inverse(order)) : t })
    }
}
