import Foundation

/// The base of the element-wise merge layers: several inputs of one shape, one output of that
/// shape (Keras `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`).
public class ElementwiseMerge: Layer {
    /// How many inputs the layer takes (nil for "two or more").
    var requiredInputs: Int? { nil }

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        if let n = requiredInputs, shapes.count != n {
            throw KestrelError.shapeMismatch("\(name) (\(className)): expected exactly \(n) inputs, found \(shapes.count)")
        }
        guard shapes.count >= 2 else {
            throw KestrelError.shapeMismatch("\(name) (\(className)): expected at least 2 inputs, found \(shapes.count)")
        }
        for s in shapes.dropFirst() where s != shapes[0] {
            throw KestrelError.shapeMismatch(
                "\(name) (\(className)): all inputs must have the same shape, found \(shapes.map { "\($0)" }.joined(separator: " and "))")
        }
        return shapes[0]
    }

    public override var supportsMasking: Bool { true }

    /// Keras: the inputs' masks or-ed together when every input has one, else no mask.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.allSatisfy { $0 } ? .compute : .none
    }

    public override func forwardMask(_ c: LayerContext) {
        orMasks(c)
    }
}

/// Writes the positions' masks of a merge: the or of its inputs' masks, an input without one
/// counting as all kept.
func orMasks(_ c: LayerContext) {
    let out = c.outputMask!, positions = c.batch * (c.outputSize / max(c.outputShape.last ?? 1, 1))
    out.update(repeating: 0, count: positions)
    for m in c.inputMasks {
        guard let m else { out.update(repeating: 1, count: positions); return }
        for i in 0..<positions where m[i] != 0 { out[i] = 1 }
    }
}

/// The sum of its inputs (Keras `Add`).
public final class Add: ElementwiseMerge {
    /// An add layer.
    public init(name: String? = nil) { super.init(name: name) }
    public override var backwardNeedsInput: Bool { false }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        c.output.update(from: c.inputs[0], count: n)
        for k in 1..<c.inputs.count {
            let x = c.inputs[k]
            for i in 0..<n { c.output[i] += x[i] }
        }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        for case let dx? in c.inputGradients { dx.update(from: c.outputGradient!, count: n) }
    }
}

/// The first input minus the second (Keras `Subtract`).
public final class Subtract: ElementwiseMerge {
    /// A subtract layer.
    public init(name: String? = nil) { super.init(name: name) }
    override var requiredInputs: Int? { 2 }
    public override var backwardNeedsInput: Bool { false }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        let a = c.inputs[0], b = c.inputs[1]
        for i in 0..<n { c.output[i] = a[i] - b[i] }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, dy = c.outputGradient!
        if let da = c.inputGradients[0] { da.update(from: dy, count: n) }
        if let db = c.inputGradients[1] { for i in 0..<n { db[i] = -dy[i] } }
    }
}

/// The element-wise product of its inputs (Keras `Multiply`).
public final class Multiply: ElementwiseMerge {
    /// A multiply layer.
    public init(name: String? = nil) { super.init(name: name) }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        c.output.update(from: c.inputs[0], count: n)
        for k in 1..<c.inputs.count {
            let x = c.inputs[k]
            for i in 0..<n { c.output[i] *= x[i] }
        }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, dy = c.outputGradient!
        for (k, dx) in c.inputGradients.enumerated() {
            guard let dx else { continue }
            dx.update(from: dy, count: n)
            for (j, x) in c.inputs.enumerated() where j != k {
                for i in 0..<n { dx[i] *= x[i] }
            }
        }
    }
}

/// The element-wise mean of its inputs (Keras `Average`).
public final class Average: ElementwiseMerge {
    /// An average layer.
    public init(name: String? = nil) { super.init(name: name) }
    public override var backwardNeedsInput: Bool { false }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        let scale = 1 / Float(c.inputs.count)
        c.output.update(from: c.inputs[0], count: n)
        for k in 1..<c.inputs.count {
            let x = c.inputs[k]
            for i in 0..<n { c.output[i] += x[i] }
        }
        for i in 0..<n { c.output[i] *= scale }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, dy = c.outputGradient!
        let scale = 1 / Float(c.inputs.count)
        for case let dx? in c.inputGradients { for i in 0..<n { dx[i] = dy[i] * scale } }
    }
}

/// The element-wise maximum (Keras `Maximum`) or minimum (Keras `Minimum`) of its inputs;
/// the gradient goes to the first input holding the extreme value.
public class ExtremumMerge: ElementwiseMerge {
    var isMaximum: Bool { true }

    public override func forward(_ c: LayerContext) {
        let n = c.batch * c.outputSize
        c.output.update(from: c.inputs[0], count: n)
        for k in 1..<c.inputs.count {
            let x = c.inputs[k]
            if isMaximum { for i in 0..<n { c.output[i] = max(c.output[i], x[i]) } }
            else { for i in 0..<n { c.output[i] = min(c.output[i], x[i]) } }
        }
    }

    public override func backward(_ c: LayerContext) {
        let n = c.batch * c.outputSize, dy = c.outputGradient!
        for case let dx? in c.inputGradients { dx.update(repeating: 0, count: n) }
        for i in 0..<n {
            let y = c.output[i]
            guard let k = c.inputs.firstIndex(where: { $0[i] == y }) else { continue }
            c.inputGradients[k]?[i] = dy[i]
        }
    }
}

/// The element-wise maximum of its inputs (Keras `Maximum`).
public final class Maximum: ExtremumMerge {
    /// A maximum layer.
    public init(name: String? = nil) { super.init(name: name) }
}

/// The element-wise minimum of its inputs (Keras `Minimum`).
public final class Minimum: ExtremumMerge {
    /// A minimum layer.
    public init(name: String? = nil) { super.init(name: name) }
    override var isMaximum: Bool { false }
}

/// Joins its inputs along an axis (Keras `Concatenate`, default the last axis).
public final class Concatenate: Layer {
    /// The axis, counted in the full tensor (negative from the end; the batch axis is 0).
    public let axis: Int

    /// A concatenate layer.
    public init(axis: Int = -1, name: String? = nil) {
        self.axis = axis
        super.init(name: name)
    }

    public override var config: [String: String] { ["name": name, "axis": "\(axis)"] }

    public override var supportsMasking: Bool { true }

    /// Keras's masks: an input without one counts as all kept; joining features or-s the
    /// masks, joining along another axis (the steps) joins them along that axis.
    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        inputsMasked.contains(true) ? .compute : .none
    }

    public override func forwardMask(_ c: LayerContext) {
        let last = c.outputShape.count - 1, a = try! sampleAxis(rank: c.outputShape.count)
        guard a < last else { return orMasks(c) }
        // Masks have the positions' shape (every axis but the last): the same blocks as forward.
        let outer = c.batch * c.outputShape[..<a].reduce(1, *), total = c.outputShape[a..<last].reduce(1, *)
        let out = c.outputMask!
        var offset = 0
        for k in c.inputShapes.indices {
            let len = c.inputShapes[k][a..<last].reduce(1, *)
            for o in 0..<outer {
                if let m = c.inputMasks[k] {
                    (out + o * total + offset).update(from: m + o * len, count: len)
                } else {
                    (out + o * total + offset).update(repeating: 1, count: len)
                }
            }
            offset += len
        }
    }
    public override var backwardNeedsInput: Bool { false }

    private func sampleAxis(rank: Int) throws -> Int {
        let a = axis < 0 ? rank + axis : axis - 1
        guard a >= 0 && a < rank else {
            throw KestrelError.invalidArgument("\(name) (Concatenate): axis \(axis) is out of range for samples of rank \(rank)")
        }
        return a
    }

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        guard shapes.count >= 2 else {
            throw KestrelError.shapeMismatch("\(name) (Concatenate): expected at least 2 inputs, found \(shapes.count)")
        }
        let a = try sampleAxis(rank: shapes[0].count)
        var out = shapes[0]
        for s in shapes.dropFirst() {
            var x = s, y = shapes[0]
            guard s.count == shapes[0].count else {
                throw KestrelError.shapeMismatch("\(name) (Concatenate): inputs of different ranks \(shapes[0]) and \(s)")
            }
            x[a] = 0; y[a] = 0
            guard x == y else {
                throw KestrelError.shapeMismatch(
                    "\(name) (Concatenate): shapes \(shapes[0]) and \(s) differ outside the concatenation axis \(axis)")
            }
            out[a] += s[a]
        }
        return out
    }

    /// Rows before the axis (per batch), the output's block length and the sample axis. Each
    /// input's block length is computed where it is used, not collected into an array: a
    /// training step must not allocate.
    private func blocks(_ c: LayerContext) -> (outer: Int, total: Int, axis: Int) {
        let a = try! sampleAxis(rank: c.outputShape.count)
        return (c.batch * c.outputShape[..<a].reduce(1, *), c.outputShape[a...].reduce(1, *), a)
    }

    public override func forward(_ c: LayerContext) {
        let (outer, total, a) = blocks(c)
        var offset = 0
        for k in c.inputShapes.indices {
            let len = c.inputShapes[k][a...].reduce(1, *)
            for o in 0..<outer {
                (c.output + o * total + offset).update(from: c.inputs[k] + o * len, count: len)
            }
            offset += len
        }
    }

    public override func backward(_ c: LayerContext) {
        let (outer, total, a) = blocks(c)
        let dy = c.outputGradient!
        var offset = 0
        for k in c.inputShapes.indices {
            let len = c.inputShapes[k][a...].reduce(1, *)
            if let dx = c.inputGradients[k] {
                for o in 0..<outer { (dx + o * len).update(from: dy + o * total + offset, count: len) }
            }
            offset += len
        }
    }
}

/// Dot products between samples of two inputs along the given axes (Keras `Dot`); with
/// `normalize`, inputs are L2-normalised along those axes first (cosine similarity).
///
/// Supports per-sample shapes `[n]` (result `[1]`) and `[a, n]` (matrix products, the
/// contracted axes given in full-tensor numbering as Keras: 1 or 2).
public final class Dot: Layer {
    /// The axis of each input that is contracted (full-tensor numbering, batch axis 0).
    public let axes: (Int, Int)
    /// Whether inputs are L2-normalised along the axes before the product.
    public let normalize: Bool

    /// A dot layer contracting `axes` of the two inputs.
    public init(axes: (Int, Int), normalize: Bool = false, name: String? = nil) {
        self.axes = axes
        self.normalize = normalize
        super.init(name: name)
    }

    /// A dot layer contracting the same axis of both inputs.
    public convenience init(axes: Int, normalize: Bool = false, name: String? = nil) {
        self.init(axes: (axes, axes), normalize: normalize, name: name)
    }

    public override var config: [String: String] { ["name": name, "axes": "[\(axes.0), \(axes.1)]", "normalize": "\(normalize)"] }

    /// Per-sample geometry: each input as a matrix (rows, cols) and whether it is transposed.
    private struct Geometry { var m, n, k: Int; var transposeA, transposeB: Bool; var aSize, bSize: Int }

    private func geometry(_ shapes: [[Int]]) throws -> Geometry {
        guard shapes.count == 2 else {
            throw KestrelError.shapeMismatch("\(name) (Dot): expected 2 inputs, found \(shapes.count)")
        }
        let (sa, sb) = (shapes[0], shapes[1])
        guard sa.count == sb.count, (1...2).contains(sa.count) else {
            throw KestrelError.shapeMismatch("\(name) (Dot): expected two inputs of per-sample rank 1 or 2, found \(sa) and \(sb)")
        }
        func local(_ axis: Int, _ rank: Int) throws -> Int {
            let a = axis < 0 ? rank + axis : axis - 1
            guard a >= 0 && a < rank else {
                throw KestrelError.invalidArgument("\(name) (Dot): axis \(axis) is out of range for samples of rank \(rank)")
            }
            return a
        }
        let a0 = try local(axes.0, sa.count), a1 = try local(axes.1, sb.count)
        guard sa[a0] == sb[a1] else {
            throw KestrelError.shapeMismatch(
                "\(name) (Dot): contracted axes differ in size: \(sa) axis \(axes.0) has \(sa[a0]), \(sb) axis \(axes.1) has \(sb[a1])")
        }
        if sa.count == 1 { return Geometry(m: 1, n: 1, k: sa[0], transposeA: false, transposeB: false, aSize: sa[0], bSize: sb[0]) }
        // A as (m × k): contracted axis last unless it is axis 0 (then transposed).
        let m = sa[1 - a0], n = sb[1 - a1], k = sa[a0]
        return Geometry(m: m, n: n, k: k, transposeA: a0 == 0, transposeB: a1 == 1,
                        aSize: sa[0] * sa[1], bSize: sb[0] * sb[1])
    }

    public override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        let g = try geometry(shapes)
        return shapes[0].count == 1 ? [1] : [g.m, g.n]
    }

    public override func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int {
        // Normalised copies of both inputs and their norms per contracted vector.
        normalize ? batch * (2 * inputShapes[0].reduce(1, *) + 2 * inputShapes[1].reduce(1, *)) : 0
    }

    /// Normalises `count` vectors of length `k` with stride `stride` between elements.
    private func normalizeVectors(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                                  norms: UnsafeMutablePointer<Float>, size: Int, k: Int, alongRows: Bool) {
        // Along rows: vectors are rows of a (size/k × k) matrix; otherwise columns of (k × size/k).
        let count = size / k
        for v in 0..<count {
            var s: Float = 0
            for j in 0..<k { let e = x[alongRows ? v * k + j : j * count + v]; s += e * e }
            let norm = max(s, 1e-12).squareRoot()
            norms[v] = norm
            for j in 0..<k { let i = alongRows ? v * k + j : j * count + v; y[i] = x[i] / norm }
        }
    }

    private func pointers(_ c: LayerContext, _ g: Geometry) -> (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>,
                                                               UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let w = c.workspace
        let na = w, nb = w + c.batch * g.aSize
        let normsA = nb + c.batch * g.bSize, normsB = normsA + c.batch * g.aSize
        return (na, nb, normsA, normsB)
    }

    public override func forward(_ c: LayerContext) {
        let g = try! geometry(c.inputShapes)
        var a = c.inputs[0], b = c.inputs[1]
        if normalize {
            let (na, nb, normsA, normsB) = pointers(c, g)
            for s in 0..<c.batch {
                normalizeVectors(a + s * g.aSize, into: na + s * g.aSize, norms: normsA + s * g.aSize, size: g.aSize,
                                 k: g.k, alongRows: !g.transposeA)
                normalizeVectors(b + s * g.bSize, into: nb + s * g.bSize, norms: normsB + s * g.bSize, size: g.bSize,
                                 k: g.k, alongRows: g.transposeB)
            }
            a = na
            b = nb
        }
        for s in 0..<c.batch {
            Kernels.gemm(transposeA: g.transposeA, transposeB: g.transposeB, m: g.m, n: g.n, k: g.k, alpha: 1,
                         a: a + s * g.aSize, lda: g.transposeA ? g.m : g.k,
                         b: b + s * g.bSize, ldb: g.transposeB ? g.k : g.n,
                         beta: 0, c: c.output + s * g.m * g.n, ldc: g.n)
        }
    }

    public override func backward(_ c: LayerContext) {
        let g = try! geometry(c.inputShapes)
        let dy = c.outputGradient!
        var a = c.inputs[0], b = c.inputs[1]
        if normalize { let p = pointers(c, g); a = p.0; b = p.1 }
        for s in 0..<c.batch {
            let dys = dy + s * g.m * g.n
            // C = op(A)·op(B): dA = dC·op(B)ᵀ (in A's layout), dB = op(A)ᵀ·dC (in B's layout).
            if let da = c.inputGradients[0] {
                if g.transposeA {
                    Kernels.gemm(transposeA: g.transposeB, transposeB: true, m: g.k, n: g.m, k: g.n, alpha: 1,
                                 a: b + s * g.bSize, lda: g.transposeB ? g.k : g.n, b: dys, ldb: g.n,
                                 beta: 0, c: da + s * g.aSize, ldc: g.m)
                } else {
                    Kernels.gemm(transposeA: false, transposeB: !g.transposeB, m: g.m, n: g.k, k: g.n, alpha: 1,
                                 a: dys, lda: g.n, b: b + s * g.bSize, ldb: g.transposeB ? g.k : g.n,
                                 beta: 0, c: da + s * g.aSize, ldc: g.k)
                }
            }
            if let db = c.inputGradients[1] {
                if g.transposeB {
                    Kernels.gemm(transposeA: true, transposeB: g.transposeA, m: g.n, n: g.k, k: g.m, alpha: 1,
                                 a: dys, lda: g.n, b: a + s * g.aSize, ldb: g.transposeA ? g.m : g.k,
                                 beta: 0, c: db + s * g.bSize, ldc: g.k)
                } else {
                    Kernels.gemm(transposeA: !g.transposeA, transposeB: false, m: g.k, n: g.n, k: g.m, alpha: 1,
                                 a: a + s * g.aSize, lda: g.transposeA ? g.m : g.k, b: dys, ldb: g.n,
                                 beta: 0, c: db + s * g.bSize, ldc: g.n)
                }
            }
        }
        guard normalize else { return }
        // Through the normalisation: dx = (dx̂ - x̂·<x̂, dx̂>) / ‖x‖ per contracted vector.
        let (na, nb, normsA, normsB) = pointers(c, g)
        func unnormalize(_ d: UnsafeMutablePointer<Float>?, _ xn: UnsafeMutablePointer<Float>,
                         _ norms: UnsafeMutablePointer<Float>, size: Int, alongRows: Bool) {
            guard let d else { return }
            let count = size / g.k
            for s in 0..<c.batch {
                let ds = d + s * size, xs = xn + s * size, ns = norms + s * size
                for v in 0..<count {
                    var dot: Float = 0
                    for j in 0..<g.k { let i = alongRows ? v * g.k + j : j * count + v; dot += xs[i] * ds[i] }
                    for j in 0..<g.k { let i = alongRows ? v * g.k + j : j * count + v; ds[i] = (ds[i] - xs[i] * dot) / ns[v] }
                }
            }
        }
        unnormalize(c.inputGradients[0], na, normsA, size: g.aSize, alongRows: !g.transposeA)
        unnormalize(c.inputGradients[1], nb, normsB, size: g.bSize, alongRows: g.transposeB)
    }
}
