import CBLAS

/// An n-dimensional array of `Float` values: contiguous, row-major, channels-last like Keras.
///
/// `Tensor` is a value type with copy-on-write storage. The first axis is the batch axis
/// wherever a model takes or returns a tensor.
public struct Tensor: Sendable, Equatable {
    /// The size of each axis, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order.
    public var scalars: [Float]

    /// A tensor with the given shape and elements (row-major).
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor with the given shape and elements; throws when the counts disagree.
    public init(validating scalars: [Float], shape: [Int]) throws {
        let count = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), count == scalars.count else {
            throw KestrelError.shapeMismatch(
                "Tensor(shape:scalars:): shape \(shape) needs \(count) scalars, found \(scalars.count)")
        }
        self.init(shape: shape, scalars: scalars)
    }

    /// A tensor of the given shape with every element equal to `value` (Keras `ops.full`).
    public init(filling value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    /// A rank-1 tensor holding the array.
    public init(_ scalars: [Float]) {
        self.init(shape: [scalars.count], scalars: scalars)
    }

    /// A rank-2 tensor from rows of equal length; throws for ragged rows.
    public init(_ rows: [[Float]]) throws {
        let width = rows.first?.count ?? 0
        for (i, row) in rows.enumerated() where row.count != width {
            throw KestrelError.shapeMismatch(
                "Tensor(rows): row \(i) has \(row.count) values, expected \(width) like row 0")
        }
        self.init(shape: [rows.count, width], scalars: rows.flatMap { $0 })
    }

    /// A rank-1 tensor holding integer values (class labels, indices) as floats.
    public init<I: BinaryInteger>(labels: [I]) {
        self.init(shape: [labels.count], scalars: labels.map { Float($0) })
    }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) {
        self.init(shape: [], scalars: [scalar])
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(filling: 0, shape: shape) }
    /// A tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(filling: 1, shape: shape) }

    /// Elements drawn uniformly from `[minval, maxval)` with the given generator
    /// (Keras `random.uniform`).
    public static func randomUniform(_ shape: [Int], minval: Float = 0, maxval: Float = 1,
                                     generator: inout RandomGenerator) -> Tensor {
        var t = Tensor.zeros(shape)
        t.scalars.withUnsafeMutableBufferPointer { generator.fillUniform($0, low: minval, high: maxval) }
        return t
    }

    /// Elements drawn from a normal distribution with the given generator (Keras `random.normal`).
    public static func randomNormal(_ shape: [Int], mean: Float = 0, stddev: Float = 1,
                                    generator: inout RandomGenerator) -> Tensor {
        var t = Tensor.zeros(shape)
        t.scalars.withUnsafeMutableBufferPointer { generator.fillNormal($0, mean: mean, stddev: stddev) }
        return t
    }

    /// Uniform random elements from the global generator (seed it with `Kestrel.setRandomSeed`).
    public static func randomUniform(_ shape: [Int], minval: Float = 0, maxval: Float = 1) -> Tensor {
        GlobalRandom.with { randomUniform(shape, minval: minval, maxval: maxval, generator: &$0) }
    }

    /// Normal random elements from the global generator (seed it with `Kestrel.setRandomSeed`).
    public static func randomNormal(_ shape: [Int], mean: Float = 0, stddev: Float = 1) -> Tensor {
        GlobalRandom.with { randomNormal(shape, mean: mean, stddev: stddev, generator: &$0) }
    }

    /// The number of axes.
    public var rank: Int { shape.count }
    /// The number of elements.
    public var count: Int { scalars.count }
    /// The value of a rank-0 or one-element tensor.
    public var scalar: Float? { scalars.count == 1 ? scalars[0] : nil }

    /// The element at a full index.
    public subscript(index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    private func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "Tensor: index \(index) for shape \(shape)")
        var flat = 0
        for (i, n) in zip(index, shape) {
            precondition(i >= 0 && i < n, "Tensor: index \(index) out of range for shape \(shape)")
            flat = flat * n + i
        }
        return flat
    }

    /// The same elements under a new shape; one dimension may be -1 and is inferred.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        var dims = newShape
        let known = dims.filter { $0 != -1 }.reduce(1, *)
        let unknown = dims.indices.filter { dims[$0] == -1 }
        guard unknown.count <= 1, dims.allSatisfy({ $0 >= -1 }) else {
            throw KestrelError.shapeMismatch("reshaped: at most one -1 allowed, got \(newShape)")
        }
        if let u = unknown.first {
            guard known > 0, count % known == 0 else {
                throw KestrelError.shapeMismatch("reshaped: cannot reshape \(shape) (\(count) elements) into \(newShape)")
            }
            dims[u] = count / known
        }
        guard dims.reduce(1, *) == count else {
            throw KestrelError.shapeMismatch("reshaped: cannot reshape \(shape) (\(count) elements) into \(newShape)")
        }
        return Tensor(shape: dims, scalars: scalars)
    }

    /// The number of elements in one sample (everything after the first axis).
    public var sampleSize: Int { shape.dropFirst().reduce(1, *) }

    /// Samples `range` along the first axis.
    public subscript(batch range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0],
                     "Tensor: batch range \(range) out of bounds for shape \(shape)")
        let s = sampleSize
        var newShape = shape
        newShape[0] = range.count
        return Tensor(shape: newShape, scalars: Array(scalars[(range.lowerBound * s)..<(range.upperBound * s)]))
    }

    /// The samples at `indices` along the first axis, in that order.
    public func gathering(_ indices: [Int]) -> Tensor {
        precondition(rank >= 1, "Tensor.gathering: needs rank >= 1")
        let s = sampleSize
        var out = [Float](repeating: 0, count: indices.count * s)
        scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (row, i) in indices.enumerated() {
                    precondition(i >= 0 && i < shape[0], "Tensor.gathering: index \(i) out of range 0..<\(shape[0])")
                    (dst.baseAddress! + row * s).update(from: src.baseAddress! + i * s, count: s)
                }
            }
        }
        var newShape = shape
        newShape[0] = indices.count
        return Tensor(shape: newShape, scalars: out)
    }

    /// Sum of all elements.
    public func sum() -> Float {
        scalars.withUnsafeBufferPointer { Kernels.sum($0.baseAddress!, count: $0.count) }
    }

    /// Mean of all elements.
    public func mean() -> Float { count == 0 ? .nan : sum() / Float(count) }

    /// Reduces along one axis (negative counts from the end), removing it unless `keepDims`.
    private func reduce(alongAxis axis: Int, keepDims: Bool, _ initial: Float,
                        _ combine: (Float, Float) -> Float) throws -> Tensor {
        let a = try normalizedAxis(axis)
        let outer = shape[..<a].reduce(1, *), n = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        var out = [Float](repeating: initial, count: outer * inner)
        for o in 0..<outer {
            for k in 0..<n {
                let base = (o * n + k) * inner
                for i in 0..<inner { out[o * inner + i] = combine(out[o * inner + i], scalars[base + i]) }
            }
        }
        var newShape = shape
        if keepDims { newShape[a] = 1 } else { newShape.remove(at: a) }
        return Tensor(shape: newShape, scalars: out)
    }

    func normalizedAxis(_ axis: Int) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < rank else {
            throw KestrelError.invalidArgument("axis \(axis) is out of range for a tensor of rank \(rank) (shape \(shape))")
        }
        return a
    }

    /// Sum along an axis.
    public func sum(alongAxis axis: Int, keepDims: Bool = false) throws -> Tensor {
        try reduce(alongAxis: axis, keepDims: keepDims, 0, +)
    }

    /// Mean along an axis.
    public func mean(alongAxis axis: Int, keepDims: Bool = false) throws -> Tensor {
        let a = try normalizedAxis(axis)
        let n = Float(shape[a])
        return try sum(alongAxis: a, keepDims: keepDims) / n
    }

    /// Maximum along an axis.
    public func max(alongAxis axis: Int, keepDims: Bool = false) throws -> Tensor {
        try reduce(alongAxis: axis, keepDims: keepDims, -.infinity) { Swift.max($0, $1) }
    }

    /// The index of the largest element along the last axis, one per row (Keras `ops.argmax(x, -1)`).
    public func argmax() -> [Int] {
        guard let last = shape.last, last > 0 else { return [] }
        let rows = count / last
        return scalars.withUnsafeBufferPointer { p in
            (0..<rows).map { Kernels.argmax(p.baseAddress! + $0 * last, count: last) }
        }
    }

    /// Matrix product of two rank-2 tensors through `cblas_sgemm`.
    public func matmul(_ other: Tensor) throws -> Tensor {
        guard rank == 2, other.rank == 2, shape[1] == other.shape[0] else {
            throw KestrelError.shapeMismatch("matmul: expected (m, k) × (k, n), found \(shape) × \(other.shape)")
        }
        let m = shape[0], k = shape[1], n = other.shape[1]
        var out = Tensor.zeros([m, n])
        scalars.withUnsafeBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                out.scalars.withUnsafeMutableBufferPointer { c in
                    Kernels.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k,
                                 alpha: 1, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n,
                                 beta: 0, c: c.baseAddress!, ldc: n)
                }
            }
        }
        return out
    }

    /// The transpose of a rank-2 tensor.
    public func transposed() throws -> Tensor {
        guard rank == 2 else {
            throw KestrelError.shapeMismatch("transposed: expected a rank-2 tensor, found shape \(shape)")
        }
        let r = shape[0], c = shape[1]
        var out = [Float](repeating: 0, count: count)
        for i in 0..<r { for j in 0..<c { out[j * r + i] = scalars[i * c + j] } }
        return Tensor(shape: [c, r], scalars: out)
    }

    /// Applies `transform` to every element.
    public func map(_ transform: (Float) -> Float) -> Tensor {
        Tensor(shape: shape, scalars: scalars.map(transform))
    }
}

extension Tensor: CustomStringConvertible {
    /// A short description: shape and the first elements.
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", …" : "")])"
    }
}
