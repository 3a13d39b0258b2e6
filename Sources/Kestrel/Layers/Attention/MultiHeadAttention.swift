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
/// Masks act as in Keras: a query step may attend to a key step only where the query's, the
/// value's and the key's masks all keep them (and, with `useCausalMask`, only to key steps at
/// or before its own position); forbidden weights are zero, so a query step with nothing to
/// attend to gets the output bias alone. The output carries the query's mask. Dropout drops
/// attention weights in training, as Keras's does. Asked for (Keras's `return_attention_scores`),
/// a call also returns the attention weights `(heads, Tq, Tv)`, as the softmax gave them (before
/// dropout, as in Keras).
///
/// The projections are one matrix product each over every row of the batch; scores and
/// weighted values are products per sample and head over strided views of the projections,
/// with the softmax fused in between. `attention_axes` other than the time axis, `use_gate`
/// and `sliding_window` are not supported.
public final class MultiHeadAttention: Layer {
    public override var supportsMasking: Bool { true }

    /// The output has the query's mask (Keras); the value's and the key's only shape the weights.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.first == true ? .propagate : .none
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
    /// The penalty on each of the four projection kernels (Keras `kernel_regularizer`).
    public let kernelRegularizer: Regularizer?
    /// The penalty on each projection bias (Keras `bias_regularizer`).
    public let biasRegularizer: Regularizer?
    /// The projection of each kernel after every step (Keras `kernel_constraint`).
    public let kernelConstraint: Constraint?
    /// The projection of each bias after every step (Keras `bias_constraint`).
    public let biasConstraint: Constraint?
    /// The fraction of attention weights dropped in training (Keras `dropout`).
    public let dropout: Float
    /// The seed that fixes the dropout masks independently of the global generator, if given.
    public let seed: UInt64?
    /// Whether each query step attends only to key steps at or before its own position (Keras's
    /// call argument `use_causal_mask`, for decoder self-attention). It applies to every call
    /// of the layer.
    public package(set) var useCausalMask: Bool
    /// Whether the layer's calls also return the attention weights (Keras's call argument
    /// `return_attention_scores`), set by the first call that asks for them; calls that do not
    /// ask simply leave them unused.
    public package(set) var returnAttentionScores = false

    /// With `returnAttentionScores`, the weights `(heads, Tq, Tv)`.
    public override func additionalOutputShapes(forInputs shapes: [[Int]]) -> [[Int]] {
        guard returnAttentionScores, shapes.count >= 2, !shapes[0].isEmpty, !shapes[1].isEmpty else { return [] }
        return [[numHeads, shapes[0][0], shapes[1][0]]]
    }

    /// Multi-head attention with `numHeads` heads of `keyDim` and Keras's defaults.
    public init(numHeads: Int, keyDim: Int, valueDim: Int? = nil, dropout: Float = 0, useBias: Bool = true,
                outputShape: Int? = nil, useCausalMask: Bool = false,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil,
                kernelConstraint: Constraint? = nil, biasConstraint: Constraint? = nil,
                seed: UInt64? = nil, name: String? = nil) {
        self.numHeads = numHeads
        self.keyDim = keyDim
        self.valueDim = valueDim ?? keyDim
        self.dropout = dropout
        self.useBias = useBias
        self.outputShape = outputShape
        self.useCausalMask = useCausalMask
        self.kernelInitializer = kernelInitializer
        self.biasInitializer = biasInitializer
        self.seed = seed
        self.kernelRegularizer = kernelRegularizer
        self.biasRegularizer = biasRegularizer
        self.kernelConstraint = kernelConstraint
        self.biasConstraint = biasConstraint
        super.init(name: name)
        if let seed { generator = RandomGenerator(seed: seed) }
        // Weight order: each projection's kernel, then its bias when there are biases.
        let parts = 0..<4
        weightRegularizers = parts.flatMap { _ in useBias ? [kernelRegularizer, biasRegularizer] : [kernelRegularizer] }
        weightConstraints = parts.flatMap { _ in useBias ? [kernelConstraint, biasConstraint] : [kernelConstraint] }
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
        guard dropout >= 0 && dropout < 1 else {
            throw KestrelError.invalidArgument("\(describe): dropout must be in [0, 1), found \(dropout)")
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
                 "use_bias": "\(useBias)", "dropout": "\(dropout)"]
        if useCausalMask { c["use_causal_mask"] = "true" }
        if let outputShape { c["output_shape"] = "\(outputShape)" }
        return c
    }

    /// The workspace: projections, attention weights and per-head outputs from forward, then
    /// their gradients in backward; in training with dropout, the dropout masks of the weights
    /// (`dWeights` is one head's scratch, which forward also uses for the dropped weights).
    private struct Workspace {
        let query, key, value, weights, heads: UnsafeMutablePointer<Float>
        let dQuery, dKey, dValue, dWeights, dHeads: UnsafeMutablePointer<Float>
        let dropoutMasks: UnsafeMutablePointer<Float>

        static func size(_ d: Dimensions, batch b: Int, heads h: Int, keyDim k: Int, valueDim v: Int, dropping: Bool) -> Int {
            let q = b * d.queryLength * h * k, kk = b * d.valueLength * h * k, vv = b * d.valueLength * h * v
            let p = b * h * d.queryLength * d.valueLength, o = b * d.queryLength * h * v
            return 2 * (q + kk + vv + o) + p * (dropping ? 2 : 1) + d.queryLength * d.valueLength
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
            dropoutMasks = dWeights + d.queryLength * d.valueLength
        }
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        guard let d = try? dimensions(inputShapes) else { return 0 }
        return Workspace.size(d, batch: batch, heads: numHeads, keyDim: keyDim, valueDim: valueDim,
                              dropping: training && dropout > 0)
    }

    /// Sets the forbidden entries of one sample's `(Tq, Tv)` scores or weights to `value`, as
    /// Keras's masked softmax does: −1e9 before the softmax (which then gives them no weight),
    /// then 0 after it, so that a query step with every score forbidden attends to nothing
    /// rather than uniformly.
    private func setForbidden(_ p: UnsafeMutablePointer<Float>, to value: Float, sample s: Int, _ c: LayerContext,
                              _ d: Dimensions) {
        let tq = d.queryLength, tv = d.valueLength
        let queryMask = c.inputMasks[0].map { $0 + s * tq }
        let valueMask = c.inputMasks[1].map { $0 + s * tv }
        let keyMask = d.hasKey ? c.inputMasks[2].map { $0 + s * tv } : nil
        for i in 0..<tq {
            let row = p + i * tv
            if let queryMask, queryMask[i] == 0 {
                row.update(repeating: value, count: tv)
                continue
            }
            for j in 0..<tv where (useCausalMask && j > i) || valueMask?[j] == 0 || keyMask?[j] == 0 { row[j] = value }
        }
    }

    /// Whether this call restricts attention (a mask on an input, or the causal mask).
    private func isMasked(_ c: LayerContext, _ d: Dimensions) -> Bool {
        useCausalMask || c.inputMasks[0] != nil || c.inputMasks[1] != nil || (d.hasKey && c.inputMasks[2] != nil)
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
        let masked = isMasked(c, d), dropping = c.training && dropout > 0, keep = 1 / (1 - dropout)
        for s in 0..<b {
            for head in 0..<h {
                let p = w.weights + (s * h + head) * tq * tv
                // scores = scale · Q_h K_hᵀ, then softmax over the keys.
                Kernels.gemm(transposeA: false, transposeB: true, m: tq, n: tv, k: k, alpha: scale,
                             a: w.query + s * tq * h * k + head * k, lda: h * k,
                             b: w.key + s * tv * h * k + head * k, ldb: h * k, beta: 0, c: p, ldc: tv)
                if masked { setForbidden(p, to: -1e9, sample: s, c, d) }
                Kernels.softmaxRows(p, p, rows: tq, columns: tv)
                if masked { setForbidden(p, to: 0, sample: s, c, d) }
                var weighted = UnsafePointer(p)
                if dropping {
                    // The dropped weights go to scratch: backward needs the softmax's own.
                    let m = w.dropoutMasks + (s * h + head) * tq * tv
                    for i in 0..<tq * tv {
                        m[i] = c.generator.nextUnitFloat() >= dropout ? keep : 0
                        w.dWeights[i] = p[i] * m[i]
                    }
                    weighted = UnsafePointer(w.dWeights)
                }
                Kernels.gemm(transposeA: false, transposeB: false, m: tq, n: v, k: tv, alpha: 1, a: weighted, lda: tv,
                             b: w.value + s * tv * h * v + head * v, ldb: h * v, beta: 0,
                             c: w.heads + s * tq * h * v + head * v, ldc: h * v)
            }
        }
        project(w.heads, rows: b * tq, features: h * v, kernel: c.weights[weightIndex(3, bias: false)],
                bias: bias(3), into: c.output, width: out)
        // The returned scores share the weights' layout `(batch, heads, Tq, Tv)`.
        if let scores = c.additionalOutputs.first ?? nil { scores.update(from: w.weights, count: b * h * tq * tv) }
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
        let dp = w.dWeights, dropping = c.training && dropout > 0
        for s in 0..<b {
            for head in 0..<h {
                let p = w.weights + (s * h + head) * tq * tv
                let q = w.query + s * tq * h * k + head * k, key = w.key + s * tv * h * k + head * k
                let value = w.value + s * tv * h * v + head * v, dHead = w.dHeads + s * tq * h * v + head * v
                // dV_h = (P∘M)ᵀ dO_h, with the weights as applied (dropped ones zero; M is the
                // dropout mask, 1 without dropout); dP = dO_h V_hᵀ ∘ M.
                let m = w.dropoutMasks + (s * h + head) * tq * tv
                if dropping { for i in 0..<tq * tv { dp[i] = p[i] * m[i] } }
                Kernels.gemm(transposeA: true, transposeB: false, m: tv, n: v, k: tq, alpha: 1, a: dropping ? dp : p, lda: tv,
                             b: dHead, ldb: h * v, beta: 0, c: w.dValue + s * tv * h * v + head * v, ldc: h * v)
                Kernels.gemm(transposeA: false, transposeB: true, m: tq, n: tv, k: v, alpha: 1, a: dHead, lda: h * v,
                             b: value, ldb: h * v, beta: 0, c: dp, ldc: tv)
                if dropping { for i in 0..<tq * tv { dp[i] *= m[i] } }
                // Returned scores are the softmax's weights: their gradient joins dP.
                if let dScores = c.additionalOutputGradients.first ?? nil {
                    let g = dScores + (s * h + head) * tq * tv
                    for i in 0..<tq * tv { dp[i] += g[i] }
                }
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
    /// defaults to the value. `useCausalMask: true` (Keras's call argument) turns the causal
    /// mask on for the layer; a layer already called with the other setting throws.
    public func callAsFunction(query: SymbolicTensor, value: SymbolicTensor, key: SymbolicTensor? = nil,
                               useCausalMask: Bool? = nil) throws -> SymbolicTensor {
        if let useCausalMask {
            try checkCausalMaskChange(useCausalMask, of: self, current: self.useCausalMask)
            self.useCausalMask = useCausalMask
        }
        return try callAsFunction([query, value] + (key.map { [$0] } ?? []))
    }

    /// The same call with Keras's `return_attention_scores`: the output, then (when asked) the
    /// attention weights `(heads, Tq, Tv)`.
    public func callAsFunction(query: SymbolicTensor, value: SymbolicTensor, key: SymbolicTensor? = nil,
                               useCausalMask: Bool? = nil, returnAttentionScores: Bool) throws -> [SymbolicTensor] {
        if let useCausalMask {
            try checkCausalMaskChange(useCausalMask, of: self, current: self.useCausalMask)
            self.useCausalMask = useCausalMask
        }
        if returnAttentionScores { self.returnAttentionScores = true }
        let all = try callReturningAll([query, value] + (key.map { [$0] } ?? []))
        return returnAttentionScores ? all : [all[0]]
    }
}
