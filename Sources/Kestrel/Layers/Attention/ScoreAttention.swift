import Foundation

/// The attention layers without projections (Keras's `Attention` and `AdditiveAttention`),
/// called on `[query, value]` or `[query, value, key]` (the key defaults to the value).
///
/// Samples are sequences: query `(Tq, dim)`, value `(Tv, valueDim)`, key `(Tv, dim)`. Each
/// query step scores every key step, the scores go through a softmax over the key steps
/// (with dropout on those weights in training), and the output `(Tq, valueDim)` is the
/// weighted sum of the value steps. The subclasses differ in the score. Masks act as in
/// Keras: masked value steps get no weight, masked query steps output zeros.
public class ScoreAttention: Layer {
    public override var supportsMasking: Bool { true }

    /// Keras: the value's mask keeps masked value steps out of every softmax, the query's zeroes
    /// the masked query steps' outputs and passes on; the key's is not used.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.first == true ? .propagate : .none
    }

    /// The fraction of attention weights dropped in training.
    public let dropout: Float
    /// The seed that fixes the dropout masks independently of the global generator, if given.
    public let seed: UInt64?
    /// Whether each query step attends only to value steps at or before its own position
    /// (Keras's call argument `use_causal_mask`). It applies to every call of the layer.
    public package(set) var useCausalMask: Bool

    init(dropout: Float, seed: UInt64?, useCausalMask: Bool, name: String?) {
        self.dropout = dropout
        self.seed = seed
        self.useCausalMask = useCausalMask
        super.init(name: name)
        if let seed { generator = RandomGenerator(seed: seed) }
    }

    /// Calls the layer on `[query, value]` or `[query, value, key]` the Keras way, with
    /// `useCausalMask` (Keras's call argument) set for the layer; a layer already called with
    /// the other setting throws.
    public func callAsFunction(_ inputs: [SymbolicTensor], useCausalMask: Bool) throws -> SymbolicTensor {
        try checkCausalMaskChange(useCausalMask, of: self, current: self.useCausalMask)
        self.useCausalMask = useCausalMask
        return try callAsFunction(inputs)
    }

    /// Sequence lengths and feature sizes, set at build so a step does not recompute them.
    struct Dimensions { var tq = 0, tv = 0, dim = 0, valueDim = 0, hasKey = false }
    var built = Dimensions()

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        let describe = "\(name) (\(className))"
        guard dropout >= 0 && dropout < 1 else {
            throw KestrelError.invalidArgument("\(describe): dropout must be in [0, 1), found \(dropout)")
        }
        guard shapes.count == 2 || shapes.count == 3 else {
            throw KestrelError.shapeMismatch(
                "\(describe): expected inputs [query, value] or [query, value, key], found \(shapes.count) input(s)")
        }
        for (shape, role) in zip(shapes, ["query", "value", "key"]) where shape.count != 2 || shape.contains(where: { $0 <= 0 }) {
            throw KestrelError.shapeMismatch("\(describe): expected the \(role) as samples of shape (timesteps, features), found \(shape)")
        }
        let key = shapes.count == 3 ? shapes[2] : shapes[1]
        guard key[0] == shapes[1][0] else {
            throw KestrelError.shapeMismatch(
                "\(describe): the key and the value must have the same number of timesteps, found key \(key) and value \(shapes[1])")
        }
        guard key[1] == shapes[0][1] else {
            throw KestrelError.shapeMismatch(
                "\(describe): the query and the key must have the same number of features, found query \(shapes[0]) and key \(key)")
        }
        built = Dimensions(tq: shapes[0][0], tv: shapes[1][0], dim: shapes[0][1], valueDim: shapes[1][1], hasKey: shapes.count == 3)
        return [shapes[0][0], shapes[1][1]]
    }

    public override func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs {
        // The matrix products only: the value weighting, and the scores when they are dot products.
        let d = built, products = 2 * batch * d.tq * d.tv * (d.valueDim + (scoresAreProducts ? d.dim : 0))
        return LayerFLOPs(forward: products, inputGradients: 2 * products)
    }

    /// Whether the scores are matrix products (counted as FLOPs) rather than element-wise work.
    var scoresAreProducts: Bool { false }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        let n = built.tq * built.tv
        // Raw scores and attention weights per sample, the dropout mask, one sample's scratch.
        return batch * n * (training && dropout > 0 ? 3 : 2) + n
    }

    // MARK: Scores (the subclasses')

    /// Writes the raw scores `(Tq, Tv)` of one sample: what the weights multiply.
    func rawScores(query: UnsafePointer<Float>, key: UnsafePointer<Float>, into raw: UnsafeMutablePointer<Float>,
                   weights: [UnsafeMutablePointer<Float>]) {
        preconditionFailure("\(className) does not implement rawScores")
    }

    /// The score a raw score gives (a scale applied, or the identity).
    func score(_ raw: Float, weights: [UnsafeMutablePointer<Float>]) -> Float { raw }

    /// Adds the gradients of the query, key and weights for one sample, given the scores'
    /// gradient `dScores` and the raw scores.
    func scoreBackward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, raw: UnsafePointer<Float>,
                       dScores: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>?, dKey: UnsafeMutablePointer<Float>?,
                       weights: [UnsafeMutablePointer<Float>], weightGradients: [UnsafeMutablePointer<Float>]) {
        preconditionFailure("\(className) does not implement scoreBackward")
    }

    // MARK: Forward and backward

    private func pointers(_ c: LayerContext, _ b: Int) -> (q: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                                                         k: UnsafeMutablePointer<Float>) {
        let d = built
        let q = c.inputs[0] + b * d.tq * d.dim, v = c.inputs[1] + b * d.tv * d.valueDim
        return (q, v, d.hasKey ? c.inputs[2] + b * d.tv * d.dim : v)
    }

    public override func forward(_ c: LayerContext) {
        let d = built, n = d.tq * d.tv
        let raw = c.workspace, attention = c.workspace + c.batch * n
        let dropping = c.training && dropout > 0
        let mask = c.workspace + 2 * c.batch * n
        for b in 0..<c.batch {
            let (q, v, k) = pointers(c, b)
            let r = raw + b * n, p = attention + b * n
            rawScores(query: q, key: k, into: r, weights: c.weights)
            for i in 0..<n { p[i] = score(r[i], weights: c.weights) }
            if c.inputMasks[1] != nil || useCausalMask {
                // Keras subtracts 1e9 from the scores of masked value steps and, with the causal
                // mask, of key steps after the query's own.
                let m = c.inputMasks[1].map { $0 + b * d.tv }
                for row in 0..<d.tq {
                    for j in 0..<d.tv where m?[j] == 0 || (useCausalMask && j > row) { p[row * d.tv + j] -= 1e9 }
                }
            }
            Kernels.softmaxRows(p, p, rows: d.tq, columns: d.tv)
            var weighted = UnsafePointer(p)
            if dropping {
                // The dropped weights are kept apart: backward needs the softmax's own.
                let m = mask + b * n, scratch = c.workspace + (dropping ? 3 : 2) * c.batch * n
                let keep = 1 / (1 - dropout)
                for i in 0..<n {
                    m[i] = c.generator.nextUnitFloat() >= dropout ? keep : 0
                    scratch[i] = p[i] * m[i]
                }
                weighted = UnsafePointer(scratch)
            }
            Kernels.gemm(transposeA: false, transposeB: false, m: d.tq, n: d.valueDim, k: d.tv, alpha: 1, a: weighted, lda: d.tv,
                         b: v, ldb: d.valueDim, beta: 0, c: c.output + b * d.tq * d.valueDim, ldc: d.valueDim)
            zeroMaskedQueries(c, b, c.output + b * d.tq * d.valueDim)
        }
    }

    /// Zeroes the rows `(Tq, valueDim)` of sample `b` whose query step is masked (Keras's
    /// output, and so its gradient).
    private func zeroMaskedQueries(_ c: LayerContext, _ b: Int, _ rows: UnsafeMutablePointer<Float>) {
        guard let queryMask = c.inputMasks[0] else { return }
        let d = built, m = queryMask + b * d.tq
        for row in 0..<d.tq where m[row] == 0 { (rows + row * d.valueDim).update(repeating: 0, count: d.valueDim) }
    }

    public override func backward(_ c: LayerContext) {
        let d = built, n = d.tq * d.tv
        let raw = c.workspace, attention = c.workspace + c.batch * n
        let dropping = c.training && dropout > 0
        let mask = c.workspace + 2 * c.batch * n, scratch = c.workspace + (dropping ? 3 : 2) * c.batch * n
        let weightGradients = c.weightGradients
        if !c.accumulateWeightGradients {
            for (spec, g) in zip(weightSpecs, weightGradients) { g.update(repeating: 0, count: spec.count) }
        }
        let dQueries = c.inputGradients[0], dValues = c.inputGradients[1]
        let dKeys = d.hasKey ? c.inputGradients[2] : dValues
        for b in 0..<c.batch {
            let (q, v, k) = pointers(c, b)
            let r = raw + b * n, p = attention + b * n, m = mask + b * n
            let dy = c.outputGradient! + b * d.tq * d.valueDim
            zeroMaskedQueries(c, b, dy)   // this call's own output gradient, read by nobody else
            let dv = dValues.map { $0 + b * d.tv * d.valueDim }
            // dValue = weightsᵀ · dy, with the weights as applied (dropped ones zero).
            if let dv {
                if dropping { for i in 0..<n { scratch[i] = p[i] * m[i] } }
                Kernels.gemm(transposeA: true, transposeB: false, m: d.tv, n: d.valueDim, k: d.tq, alpha: 1,
                             a: dropping ? scratch : p, lda: d.tv, b: dy, ldb: d.valueDim, beta: 0, c: dv, ldc: d.valueDim)
            }
            // d(weights) = dy · valueᵀ, through the dropout mask and the softmax into dScores.
            Kernels.gemm(transposeA: false, transposeB: true, m: d.tq, n: d.tv, k: d.valueDim, alpha: 1, a: dy, lda: d.valueDim,
                         b: v, ldb: d.valueDim, beta: 0, c: scratch, ldc: d.tv)
            if dropping { for i in 0..<n { scratch[i] *= m[i] } }
            for row in 0..<d.tq {
                let s = scratch + row * d.tv, pr = p + row * d.tv
                var dot: Float = 0
                for j in 0..<d.tv { dot += s[j] * pr[j] }
                for j in 0..<d.tv { s[j] = pr[j] * (s[j] - dot) }
            }
            let dq = dQueries.map { $0 + b * d.tq * d.dim }
            let dk = dKeys.map { $0 + b * d.tv * d.dim }
            // The query's gradient is written here; the key's is added (it may be the value's).
            dq?.update(repeating: 0, count: d.tq * d.dim)
            if d.hasKey { dk?.update(repeating: 0, count: d.tv * d.dim) }
            scoreBackward(query: q, key: k, raw: r, dScores: scratch, dQuery: dq, dKey: dk,
                          weights: c.weights, weightGradients: weightGradients)
        }
    }
}

/// Dot-product attention (Keras `Attention`): scores `query · key`, times a learned scalar
/// when `useScale`; or, with `scoreMode: .concat`, `Σ tanh(query + key)` over the features
/// (scaled inside the tanh when `useScale`) times a learned scalar.
public final class Attention: ScoreAttention {
    /// How queries and keys are scored.
    public enum ScoreMode: String, Sendable {
        /// `query · key`.
        case dot
        /// `Σ tanh(query + key)` over the features.
        case concat
    }

    /// Whether a learned scalar `scale` (starting at 1) multiplies the scores.
    public let useScale: Bool
    /// How queries and keys are scored (Keras default `dot`).
    public let scoreMode: ScoreMode

    /// Dot-product attention with Keras's defaults (no scale, dot scores, no dropout).
    public init(useScale: Bool = false, scoreMode: ScoreMode = .dot, dropout: Float = 0, useCausalMask: Bool = false,
                seed: UInt64? = nil, name: String? = nil) {
        self.useScale = useScale
        self.scoreMode = scoreMode
        super.init(dropout: dropout, seed: seed, useCausalMask: useCausalMask, name: name)
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        var specs: [WeightSpec] = []
        if useScale { specs.append(WeightSpec(name: "scale", shape: [], initializer: .ones)) }
        if scoreMode == .concat { specs.append(WeightSpec(name: "concat_score_weight", shape: [], initializer: .ones)) }
        return specs
    }

    public override var config: [String: String] {
        var c = ["name": name, "use_scale": "\(useScale)", "score_mode": scoreMode.rawValue, "dropout": "\(dropout)"]
        if useCausalMask { c["use_causal_mask"] = "true" }
        return c
    }

    override var scoresAreProducts: Bool { scoreMode == .dot }

    /// The scale inside or outside the scores (1 without `useScale`).
    private func scale(_ weights: [UnsafeMutablePointer<Float>]) -> Float { useScale ? weights[0].pointee : 1 }

    override func rawScores(query: UnsafePointer<Float>, key: UnsafePointer<Float>, into raw: UnsafeMutablePointer<Float>,
                            weights: [UnsafeMutablePointer<Float>]) {
        let d = built
        switch scoreMode {
        case .dot:
            Kernels.gemm(transposeA: false, transposeB: true, m: d.tq, n: d.tv, k: d.dim, alpha: 1, a: query, lda: d.dim,
                         b: key, ldb: d.dim, beta: 0, c: raw, ldc: d.tv)
        case .concat:
            let s = scale(weights)
            for i in 0..<d.tq {
                for j in 0..<d.tv {
                    var sum: Float = 0
                    for f in 0..<d.dim { sum += tanhf(s * (query[i * d.dim + f] + key[j * d.dim + f])) }
                    raw[i * d.tv + j] = sum
                }
            }
        }
    }

    override func score(_ raw: Float, weights: [UnsafeMutablePointer<Float>]) -> Float {
        switch scoreMode {
        case .dot: raw * scale(weights)
        case .concat: raw * weights[useScale ? 1 : 0].pointee
        }
    }

    override func scoreBackward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, raw: UnsafePointer<Float>,
                                dScores: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>?,
                                dKey: UnsafeMutablePointer<Float>?, weights: [UnsafeMutablePointer<Float>],
                                weightGradients: [UnsafeMutablePointer<Float>]) {
        let d = built, n = d.tq * d.tv, s = scale(weights)
        switch scoreMode {
        case .dot:
            // scores = s · raw: ds = Σ dScores·raw; dQuery = s · dScores · key, dKey = s · dScoresᵀ · query.
            if useScale {
                var g: Float = 0
                for i in 0..<n { g += dScores[i] * raw[i] }
                weightGradients[0].pointee += g
            }
            if let dQuery {
                Kernels.gemm(transposeA: false, transposeB: false, m: d.tq, n: d.dim, k: d.tv, alpha: s, a: dScores, lda: d.tv,
                             b: key, ldb: d.dim, beta: 1, c: dQuery, ldc: d.dim)
            }
            if let dKey {
                Kernels.gemm(transposeA: true, transposeB: false, m: d.tv, n: d.dim, k: d.tq, alpha: s, a: dScores, lda: d.tv,
                             b: query, ldb: d.dim, beta: 1, c: dKey, ldc: d.dim)
            }
        case .concat:
            // scores = w · Σ_f tanh(s·(q + k)).
            let w = weights[useScale ? 1 : 0].pointee
            var dW: Float = 0, dS: Float = 0
            for i in 0..<d.tq {
                for j in 0..<d.tv {
                    let ds = dScores[i * d.tv + j]
                    dW += ds * raw[i * d.tv + j]
                    for f in 0..<d.dim {
                        let sum = query[i * d.dim + f] + key[j * d.dim + f]
                        let t = tanhf(s * sum)
                        let g = ds * w * (1 - t * t)
                        dS += g * sum
                        dQuery?[i * d.dim + f] += g * s
                        dKey?[j * d.dim + f] += g * s
                    }
                }
            }
            weightGradients[useScale ? 1 : 0].pointee += dW
            if useScale { weightGradients[0].pointee += dS }
        }
    }
}

/// Additive (Bahdanau-style) attention (Keras `AdditiveAttention`): scores
/// `Σ scale · tanh(query + key)` over the features, with a learned `scale` per feature
/// (glorot-uniform) when `useScale`.
public final class AdditiveAttention: ScoreAttention {
    /// Whether a learned per-feature `scale` weighs the tanh terms (Keras default true).
    public let useScale: Bool

    /// Additive attention with Keras's defaults (a learned scale, no dropout).
    public init(useScale: Bool = true, dropout: Float = 0, useCausalMask: Bool = false, seed: UInt64? = nil,
                name: String? = nil) {
        self.useScale = useScale
        super.init(dropout: dropout, seed: seed, useCausalMask: useCausalMask, name: name)
    }

    public override func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] {
        useScale ? [WeightSpec(name: "scale", shape: [shapes[0][1]], initializer: .glorotUniform)] : []
    }

    public override var config: [String: String] {
        var c = ["name": name, "use_scale": "\(useScale)", "dropout": "\(dropout)"]
        if useCausalMask { c["use_causal_mask"] = "true" }
        return c
    }

    override func rawScores(query: UnsafePointer<Float>, key: UnsafePointer<Float>, into raw: UnsafeMutablePointer<Float>,
                            weights: [UnsafeMutablePointer<Float>]) {
        let d = built, scale: UnsafeMutablePointer<Float>? = useScale ? weights[0] : nil
        for i in 0..<d.tq {
            for j in 0..<d.tv {
                var sum: Float = 0
                for f in 0..<d.dim { sum += (scale?[f] ?? 1) * tanhf(query[i * d.dim + f] + key[j * d.dim + f]) }
                raw[i * d.tv + j] = sum
            }
        }
    }

    override func scoreBackward(query: UnsafePointer<Float>, key: UnsafePointer<Float>, raw: UnsafePointer<Float>,
                                dScores: UnsafePointer<Float>, dQuery: UnsafeMutablePointer<Float>?,
                                dKey: UnsafeMutablePointer<Float>?, weights: [UnsafeMutablePointer<Float>],
                                weightGradients: [UnsafeMutablePointer<Float>]) {
        let d = built
        let scale: UnsafeMutablePointer<Float>? = useScale ? weights[0] : nil
        let dScale: UnsafeMutablePointer<Float>? = useScale ? weightGradients[0] : nil
        for i in 0..<d.tq {
            for j in 0..<d.tv {
                let ds = dScores[i * d.tv + j]
                for f in 0..<d.dim {
                    let t = tanhf(query[i * d.dim + f] + key[j * d.dim + f])
                    dScale?[f] += ds * t
                    let g = ds * (scale?[f] ?? 1) * (1 - t * t)
                    dQuery?[i * d.dim + f] += g
                    dKey?[j * d.dim + f] += g
                }
            }
        }
    }
}

/// Refuses to change `useCausalMask` on a layer already called: Kestrel keeps one setting for
/// every call of a layer, where Keras takes it per call.
func checkCausalMaskChange(_ value: Bool, of layer: Layer, current: Bool) throws {
    guard value != current, layer.isBuilt else { return }
    throw KestrelError.invalidArgument(
        "\(layer.name) (\(layer.className)): useCausalMask must be \(current), as in the layer's earlier calls (Kestrel applies one setting to every call of a layer), found \(value)")
}
