import Foundation

/// Multi-head scaled dot-product attention (Keras `MultiHeadAttention`), called on
/// `[query, value]` or `[query, value, key]` (the key defaults to the value, so self-attention
/// is `[x, x]`).
///
/// Samples are sequences: query `(Tq, queryFeatures)`, value `(Tv, valueFeatures)`, key `(Tv,
/// keyFeatures)`; the output is `(Tq, outputShape ?? queryFeatures)`. The weights have the
/// layout of Keras's `EinsumDense` sublayers, in Keras's order: `query/kernel (queryFeatures,
/// heads, keyDim)` and `query/bias (heads, keyDim)`, the same for `key` and for `value` (with
/// `valueDim`), then `attention_output/kernel (heads, valueDim, outputFeatures)` and its bias.
///
/// The projections are one matrix product each over every row of the batch; scores and
/// weighted values are products per sample and head over strided views of the projections,
/// with the softmax fused in between. Attention dropout, masks and `attention_axes` are not
/// supported.
public final class MultiHeadAttention: Layer {
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        guard !inputsMasked.contains(true) else {
            throw KestrelError.invalidArgument(
                "\(name) (\(className)): an input carries a mask (from Embedding maskZero or Masking); masked attention (Keras's query, value and key masks) is not supported")
        }
        return .none
    }

    /// The number of attention heads.
    public let numHeads: Int
    /// The size of each head's query and key projections.
    public let keyDim: Int
    /// The size of each head's value projection (Keras default `keyDim`).
    public let valueDim: Int
    /// Whether the projections add biases.
    public let useBias: Bool
    /// The output's feature size; nil keeps the query's (Keras `output_shape`).
    public let outputShape: Int?
    /// How the projection kernels start (Keras default glorot-uniform).
    public let kernelInitializer: Initializer
    /// How the biases start (Keras default zeros).
    public let biasInitializer: Initializer

    /// Multi-head attention with `numHeads` heads of `keyDim` and Keras's defaults.
    public init(numHeads: Int, keyDim: Int, valueDim: Int? = nil, useBias: Bool = true, outputShape: Int? = nil,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                name: String? = nil) {
        self.numHeads = numHeads
        self.keyDim = keyDim
        self.valueDim = valueDim ?? keyDim
        self.useBias = useBias
        self.outputShape = outputShape
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        super.init(name: name)
    }

    private var describe: String { "\(name) (MultiHeadAttention)" }

    /// Sequence lengths and feature sizes of the inputs, checked.
    private struct Dimensions {
        var queryLength = 0, valueLength = 0, queryFeatures = 0, valueFeatures = 0, keyFeatures = 0
        var hasKey = false
    }

    private func dimensions(_ shapes: [[Int]]) throws -> Dimensions {
        guard numHeads > 0, keyDim > 0, valueDim > 0 else {
            throw KestrelError.invalidArgument(
                "\(describe): numHeads, keyDim and valueDim must be positive, found \(numHeads), \(keyDim), \(valueDim)")
        }
        if let o = outputShape, o <= 0 {
            throw KestrelError.invalidArgument("\(describe): outputShape must be positive, found \(o)")
        }
        guard shapes.count == 2 || shapes.count == 3 else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected inputs [query, value] or [query, value, key], found \(shapes.count) input(s)")
        }
        for (shape, role) in zip(shapes, ["query", "value", "key"]) where shape.count != 2 || shape.contains(where: { $0 <= 0 }) {
            throw KestrelError.shapeMismatch(
                "\(describe): expected the \(role) as samples of shape (timesteps, features), found \(shape)")
        }
        var d = Dimensions()
        d.queryLength = shapes[0][0]
        d.queryFeatures = shapes[0][1]
        d.valueLength = shapes[1][0]
        d.valueFeatures = shapes[1][1]
        d.hasKey = shapes.count == 3
        d.keyFeatures = d.hasKey ? shapes[2][1] : d.valueFeatures
        if d.hasKey, shapes[2][0] != d.valueLength {
            throw KestrelError.shapeMismatch(
                "\(describe): the key and the value must have the same number of timesteps, found key \(shapes[2]) and value \(shapes[1])")
        }
        return d
    }

    /// The dimensions the layer was built for (a step must not recompute them: that allocates).
    private var built: Dimensions?

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        let d = try dimensions(shapes)
        built = d
        return [d.queryLength, outputShape ?? d.queryFeatures]
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        guard let d = try? dimensions(inputShapes) else { return LayerFLOPs() }
        let h = numHeads, out = outputShape ?? d.queryFeatures
        let projections = d.queryLength * d.queryFeatures * h * keyDim + d.valueLength * d.keyFeatures * h * keyDim
            + d.valueLength * d.valueFeatures * h * valueDim
        let attention = h * d.queryLength * d.valueLength * (keyDim + valueDim)
        let output = d.queryLength * h * valueDim * out
        // Backward: every projection's weight gradient, the output's input gradient and the two
        // products of each attention product (all needed for the weights); then the three
        // projections' input gradients.
        return LayerFLOPs(forward: 2 * batch * (projections + attention + output),
                          weightGradients: 2 * batch * (projections + 2 * attention + 2 * output),
                          inputGradients: 2 * batch * projections)
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        let d = try dimensions(shapes), h = numHeads
        let out = outputShape ?? d.queryFeatures
        var specs: [WeightSpec] = []
        for (part, features, size) in [("query", d.queryFeatures, keyDim), ("key", d.keyFeatures, keyDim),
                                       ("value", d.valueFeatures, valueDim)] {
            specs.append(WeightSpec(name: "\(part)/kernel", shape: [features, h, size], initializer: kernelInitializer))
            if useBias { specs.append(WeightSpec(name: "\(part)/bias", shape: [h, size], initializer: biasInitializer)) }
        }
        specs.append(WeightSpec(name: "attention_output/kernel", shape: [h, valueDim, out], initializer: kernelInitializer))
        if useBias { specs.append(WeightSpec(name: "attention_output/bias", shape: [out], initializer: biasInitializer)) }
        return specs
    }

    public override var config: [String: String] {
        var c = ["name": name, "num_heads": "\(numHeads)", "key_dim": "\(keyDim)", "value_dim": "\(valueDim)",
                 "use_bias": "\(useBias)", "dropout": "0.0"]
        if let outputShape { c["output_shape"] = "\(outputShape)" }
        return c
    }

    /// The workspace: projections, attention weights and per-head outputs from forward, then
    /// their gradients in backward.
    private struct Workspace {
        let query, key, value, weights, heads: UnsafeMutablePointer<Float>
        let dQuery, dKey, dValue, dWeights, dHeads: UnsafeMutablePointer<Float>

        static func size(_ d: Dimensions, batch b: Int, heads h: Int, keyDim k: Int, valueDim v: Int) -> Int {
            let q = b * d.queryLength * h * k, kk = b * d.valueLength * h * k, vv = b * d.valueLength * h * v
            let p = b * h * d.queryLength * d.valueLength, o = b * d.queryLength * h * v
            return 2 * (q + kk + vv + o) + p + d.queryLength * d.valueLength
        }

        init(_ base: UnsafeMutablePointer<Float>, _ d: Dimensions, batch b: Int, heads h: Int, keyDim k: Int, valueDim v: Int) {
            query = base
            key = query + b * d.queryLength * h * k
            value = key + b * d.valueLength * h * k
            weights = value + b * d.valueLength * h * v
            heads = weights + b * h * d.queryLength * d.valueLength
            dQuery = heads + b * d.queryLength * h * v
            dKey = dQuery + b * d.queryLength * h * k
            dValue = dKey + b * d.valueLength * h * k
            dHeads = dValue + b * d.valueLength * h * v
            dWeights = dHeads + b * d.queryLength * h * v
        }
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let d = try? dimensions(inputShapes) else { return 0 }
        return Workspace.size(d, batch: batch, heads: numHeads, keyDim: keyDim, valueDim: valueDim)
    }

    /// `y = x · kernel (+ bias)` over `rows` rows: a dense projection with a flattened kernel.
    private func project(_ x: UnsafePointer<Float>, rows: Int, features: Int, kernel: UnsafePointer<Float>,
                         bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, width: Int) {
        Kernels.gemm(transposeA: false, transposeB: false, m: rows, n: width, k: features, alpha: 1, a: x, lda: features,
                     b: kernel, ldb: width, beta: 0, c: y, ldc: width)
        if let bias { Kernels.addRowVector(bias, to: y, rows: rows, columns: width) }
    }

    /// The weights' indices: kernels, and biases when `useBias`.
    private func weightIndex(_ part: Int, bias: Bool) -> Int { useBias ? 2 * part + (bias ? 1 : 0) : part }

    public override func forward(_ c: LayerContext) {
        let d = built!
        let b = c.batch, h = numHeads, k = keyDim, v = valueDim, tq = d.queryLength, tv = d.valueLength
        let out = c.outputShape[1]
        let w = Workspace(c.workspace, d, batch: b, heads: h, keyDim: k, valueDim: v)
        func bias(_ part: Int) -> UnsafePointer<Float>? { useBias ? UnsafePointer(c.weights[weightIndex(part, bias: true)]) : nil }
        let keyInput = d.hasKey ? c.inputs[2] : c.inputs[1]
        project(c.inputs[0], rows: b * tq, features: d.queryFeatures, kernel: c.weights[weightIndex(0, bias: false)],
                bias: bias(0), into: w.query, width: h * k)
        project(keyInput, rows: b * tv, features: d.keyFeatures, kernel: c.weights[weightIndex(1, bias: false)],
                bias: bias(1), into: w.key, width: h * k)
        project(c.inputs[1], rows: b * tv, features: d.valueFeatures, kernel: c.weights[weightIndex(2, bias: false)],
                bias: bias(2), into: w.value, width: h * v)
        let scale = 1 / Float(k).squareRoot()
        for s in 0..<b {
            for head in 0..<h {
                let p = w.weights + (s * h + head) * tq * tv
                // scores = scale · Q_h K_hᵀ, then softmax over the keys.
                Kernels.gemm(transposeA: false, transposeB: true, m: tq, n: tv, k: k, alpha: scale,
                             a: w.query + s * tq * h * k + head * k, lda: h * k,
                             b: w.key + s * tv * h * k + head * k, ldb: h * k, beta: 0, c: p, ldc: tv)
                Kernels.softmaxRows(p, p, rows: tq, columns: tv)
                Kernels.gemm(transposeA: false, transposeB: false, m: tq, n: v, k: tv, alpha: 1, a: p, lda: tv,
                             b: w.value + s * tv * h * v + head * v, ldb: h * v, beta: 0,
                             c: w.heads + s * tq * h * v + head * v, ldc: h * v)
            }
        }
        project(w.heads, rows: b * tq, features: h * v, kernel: c.weights[weightIndex(3, bias: false)],
                bias: bias(3), into: c.output, width: out)
    }

    public override func backward(_ c: LayerContext) {
        let d = built!
        let b = c.batch, h = numHeads, k = keyDim, v = valueDim, tq = d.queryLength, tv = d.valueLength
        let out = c.outputShape[1]
        let w = Workspace(c.workspace, d, batch: b, heads: h, keyDim: k, valueDim: v)
        let dy = c.outputGradient!
        let accumulate = c.accumulateWeightGradients, beta: Float = accumulate ? 1 : 0
        func kernel(_ part: Int) -> UnsafeMutablePointer<Float> { c.weights[weightIndex(part, bias: false)] }
        func kernelGradient(_ part: Int) -> UnsafeMutablePointer<Float> { c.weightGradients[weightIndex(part, bias: false)] }

        // Output projection.
        Kernels.gemm(transposeA: true, transposeB: false, m: h * v, n: out, k: b * tq, alpha: 1, a: w.heads, lda: h * v,
                     b: dy, ldb: out, beta: beta, c: kernelGradient(3), ldc: out)
        if useBias {
            Kernels.columnSums(dy, rows: b * tq, columns: out, into: c.weightGradients[weightIndex(3, bias: true)],
                               accumulate: accumulate)
        }
        Kernels.gemm(transposeA: false, transposeB: true, m: b * tq, n: h * v, k: out, alpha: 1, a: dy, lda: out,
                     b: kernel(3), ldb: out, beta: 0, c: w.dHeads, ldc: h * v)

        // Attention, per sample and head.
        let scale = 1 / Float(k).squareRoot()
        let dp = w.dWeights
        for s in 0..<b {
            for head in 0..<h {
                let p = w.weights + (s * h + head) * tq * tv
                let q = w.query + s * tq * h * k + head * k, key = w.key + s * tv * h * k + head * k
                let value = w.value + s * tv * h * v + head * v, dHead = w.dHeads + s * tq * h * v + head * v
                // dP = dO_h V_hᵀ; dV_h = Pᵀ dO_h.
                Kernels.gemm(transposeA: false, transposeB: true, m: tq, n: tv, k: v, alpha: 1, a: dHead, lda: h * v,
                             b: value, ldb: h * v, beta: 0, c: dp, ldc: tv)
                Kernels.gemm(transposeA: true, transposeB: false, m: tv, n: v, k: tq, alpha: 1, a: p, lda: tv,
                             b: dHead, ldb: h * v, beta: 0, c: w.dValue + s * tv * h * v + head * v, ldc: h * v)
                // Softmax backward: dS = P ∘ (dP − Σ dP∘P), in place.
                for r in 0..<tq {
                    let pr = p + r * tv, dr = dp + r * tv
                    var dot: Float = 0
                    for j in 0..<tv { dot += pr[j] * dr[j] }
                    for j in 0..<tv { dr[j] = pr[j] * (dr[j] - dot) }
                }
                // S = scale · Q Kᵀ: dQ = scale · dS K, dK = scale · dSᵀ Q.
                Kernels.gemm(transposeA: false, transposeB: false, m: tq, n: k, k: tv, alpha: scale, a: dp, lda: tv,
                             b: key, ldb: h * k, beta: 0, c: w.dQuery + s * tq * h * k + head * k, ldc: h * k)
                Kernels.gemm(transposeA: true, transposeB: false, m: tv, n: k, k: tq, alpha: scale, a: dp, lda: tv,
                             b: q, ldb: h * k, beta: 0, c: w.dKey + s * tv * h * k + head * k, ldc: h * k)
            }
        }

        // Input projections: weight gradients, then the inputs' gradients.
        func projectionGradients(_ part: Int, input: Int, rows: Int, features: Int,
                                 gradient: UnsafeMutablePointer<Float>, width: Int) {
            Kernels.gemm(transposeA: true, transposeB: false, m: features, n: width, k: rows, alpha: 1,
                         a: c.inputs[input], lda: features, b: gradient, ldb: width, beta: beta,
                         c: kernelGradient(part), ldc: width)
            if useBias {
                Kernels.columnSums(gradient, rows: rows, columns: width,
                                   into: c.weightGradients[weightIndex(part, bias: true)], accumulate: accumulate)
            }
        }
        projectionGradients(0, input: 0, rows: b * tq, features: d.queryFeatures, gradient: w.dQuery, width: h * k)
        projectionGradients(1, input: d.hasKey ? 2 : 1, rows: b * tv, features: d.keyFeatures, gradient: w.dKey, width: h * k)
        projectionGradients(2, input: 1, rows: b * tv, features: d.valueFeatures, gradient: w.dValue, width: h * v)
        // Without a key input the value feeds both projections, so its gradient sums both.
        if let dx = c.inputGradients[0] {
            Kernels.gemm(transposeA: false, transposeB: true, m: b * tq, n: d.queryFeatures, k: h * k, alpha: 1,
                         a: w.dQuery, lda: h * k, b: kernel(0), ldb: h * k, beta: 0, c: dx, ldc: d.queryFeatures)
        }
        if let dx = c.inputGradients[1] {
            Kernels.gemm(transposeA: false, transposeB: true, m: b * tv, n: d.valueFeatures, k: h * v, alpha: 1,
                         a: w.dValue, lda: h * v, b: kernel(2), ldb: h * v, beta: 0, c: dx, ldc: d.valueFeatures)
            if !d.hasKey {
                Kernels.gemm(transposeA: false, transposeB: true, m: b * tv, n: d.valueFeatures, k: h * k, alpha: 1,
                             a: w.dKey, lda: h * k, b: kernel(1), ldb: h * k, beta: 1, c: dx, ldc: d.valueFeatures)
            }
        }
        if d.hasKey, let dx = c.inputGradients[2] {
            Kernels.gemm(transposeA: false, transposeB: true, m: b * tv, n: d.keyFeatures, k: h * k, alpha: 1,
                         a: w.dKey, lda: h * k, b: kernel(1), ldb: h * k, beta: 0, c: dx, ldc: d.keyFeatures)
        }
    }
}

extension MultiHeadAttention {
    /// Calls the layer on symbolic tensors the Keras way, `mha(query: x, value: y)`; the key
    /// defaults to the value.
    public func callAsFunction(query: SymbolicTensor, value: SymbolicTensor, key: SymbolicTensor? = nil) throws -> SymbolicTensor {
        try callAsFunction([query, value] + (key.map { [$0] } ?? []))
    }
}
