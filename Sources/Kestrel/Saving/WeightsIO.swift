import Foundation

/// How `saveWeights`/`loadWeights` name and lay out the weights in a safetensors file.
public enum WeightNaming: Sendable, Equatable {
    /// The paths of Keras's `.weights.h5` files, `layers/<snake_case_class>[_N]/vars/<i>`
    /// (the second Dense is `layers/dense_1/vars/0`), in Keras's layouts. Positional, so a
    /// model rebuilt with other automatic layer names still loads them.
    case keras
    /// PyTorch `state_dict` names and layouts: `<module>.weight` / `.bias` (`running_mean`, …
    /// for batch normalization), Dense kernels transposed to `(out, in)`, convolution kernels
    /// as `(out, in, kH, kW)`. `modules` maps layer names to module names (default: the layer
    /// name), e.g. `["dense": "fc1"]`.
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
                    let (to, from) = PyTorchLayout.conversion(for: layer, spec: spec)
                    result.append((layer, i, "\(module).\(variable)", to, from))
                }
            }
        }
        return result
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
    static func conversion(for layer: Layer, spec: WeightSpec) -> ((Tensor) -> Tensor, (Tensor) -> Tensor) {
        let rank = spec.shape.count
        guard spec.name.hasSuffix("kernel"), rank >= 2 else { return ({ $0 }, { $0 }) }
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
