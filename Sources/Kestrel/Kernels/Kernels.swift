import CBLAS
import CKestrelKernels
import Foundation

/// The numeric kernels: plain loops over raw buffers that the layers and losses call.
/// They never allocate and know nothing about layers.
public enum Kernels {
    /// The shape of one matrix product, as recorded by `traceGEMMs`.
    public struct GEMMShape: Sendable, Hashable {
        public var transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int
        /// Whether the product is one of a loop's independent products that Kestrel shares out
        /// over its threads (a convolution's tiles), rather than one it splits.
        public var shared = false
        /// Multiply-adds counted as two operations.
        public var flops: Int { 2 * m * n * k }
    }

    // Only the benchmark sets these, from one thread, around a single step.
    nonisolated(unsafe) static var gemmTrace: [GEMMShape]?
    nonisolated(unsafe) static var gemmTraceShared = false

    /// Runs `body` (which shares independent products over the threads) with the products it
    /// makes traced as shared ones.
    static func tracingShared(_ body: () -> Void) {
        guard gemmTrace != nil else { return body() }
        gemmTraceShared = true
        defer { gemmTraceShared = false }
        body()
    }

    /// Runs `body` and returns the shapes of every matrix product it made, direct convolutions'
    /// included as the products their im2col lowering would make (for measuring the `sgemm`
    /// floor of a workload). Not thread-safe; for benchmarks.
    public static func traceGEMMs(_ body: () throws -> Void) rethrows -> [GEMMShape] {
        gemmTrace = []
        defer { gemmTrace = nil }
        try body()
        return gemmTrace!
    }

    /// Records, while `traceGEMMs` runs, a product made by `gemm` or one that a kernel computes
    /// without sgemm (a direct convolution's, as the im2col product it replaces), so that the
    /// floor covers it.
    @inline(__always)
    static func traceProduct(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int) {
        if gemmTrace != nil {
            gemmTrace!.append(GEMMShape(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                        shared: gemmTraceShared))
        }
    }

    /// Runs one product of each shape on `a` and `b` (large enough for every shape; their
    /// values are irrelevant) as the engine ran them, for timing them alone: in order, each
    /// split over the threads as `gemm` splits it, except that each run of consecutive shared
    /// products is shared out over the threads, each product whole on one. `c` must hold
    /// `cStride` floats per thread of the pool.
    public static func runGEMMs(_ shapes: [GEMMShape], a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                c: UnsafeMutablePointer<Float>, cStride: Int) {
        shapes.withUnsafeBufferPointer { list in
            var i = 0
            while i < list.count {
                var end = i + 1
                if list[i].shared { while end < list.count && list[end].shared { end += 1 } }
                var job = GEMMList(shapes: list.baseAddress! + i, a: a, b: b, c: c, cStride: cStride)
                if list[i].shared {
                    withUnsafeMutablePointer(to: &job) { kestrel_parallel_run(gemmListPart, $0, end - i) }
                } else {
                    job.run(0, thread: 0)
                }
                i = end
            }
        }
    }

    /// `C = alpha * op(A) * op(B) + beta * C`, row-major, through `cblas_sgemm`. Products of
    /// at least `splitThreshold` multiply-adds are cut into one block of rows (or columns) of C
    /// per thread of Kestrel's pool, each a single-threaded `cblas_sgemm`.
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = blasBackend
        traceProduct(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k)
        var product = SplitProduct(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                                   a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        let threads = kestrel_parallel_threads()
        if threads > 1 && m * n * k >= splitThreshold && kestrel_parallel_inside() == 0 {
            product.splitRows = m >= n
            let extent = product.splitRows ? m : n
            // Blocks of whole register tiles (16), at most one per thread.
            product.block = (extent / threads + 15) / 16 * 16
            let parts = product.block > 0 ? (extent + product.block - 1) / product.block : 1
            if parts > 1 {
                withUnsafeMutablePointer(to: &product) { kestrel_parallel_run(splitProductPart, $0, parts) }
                return
            }
        }
        product.run(rows: 0..<m, columns: 0..<n)
    }

    /// Products smaller than this run whole on the calling thread: below it, handing half to
    /// another core costs more than it saves (measured with kestrel-bench on 2 cores).
    static let splitThreshold = 1 << 18

    /// The arguments of one product, shared with the pool's threads through a pointer.
    struct SplitProduct {
        var transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float
        var a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
        var beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
        var splitRows = true, block = 0

        /// The block `rows × columns` of C.
        func run(rows: Range<Int>, columns: Range<Int>) {
            // OpenBLAS 0.3.21's small-matrix kernel for untransposed products (SkylakeX and
            // CooperLake cores, M·N·K ≤ 10⁶, K ≥ 32) mallocs a buffer on every call when the
            // column count leaves a remainder of 1 to 8 after multiples of 16 (measured). Those
            // columns are done here instead, so that a training step allocates nothing.
            if !transposeA && !transposeB && k >= 32 && rows.count * columns.count * k <= 1_000_000 {
                let tail = columns.count % 16
                if (1...8).contains(tail) {
                    let head = columns.lowerBound..<(columns.upperBound - tail)
                    if !head.isEmpty { blas(rows: rows, columns: head) }
                    narrowColumns(rows: rows, columns: head.upperBound..<columns.upperBound)
                    return
                }
            }
            blas(rows: rows, columns: columns)
        }

        /// Up to eight columns of an untransposed product, eight lanes at a time along the row.
        private func narrowColumns(rows: Range<Int>, columns: Range<Int>) {
            let width = columns.count
            for i in rows {
                var sum = SIMD8<Float>()
                let aRow = a + i * lda
                for p in 0..<k {
                    let bRow = b + p * ldb + columns.lowerBound
                    var bLanes = SIMD8<Float>()
                    for j in 0..<width { bLanes[j] = bRow[j] }
                    sum += aRow[p] * bLanes
                }
                let cRow = c + i * ldc + columns.lowerBound
                // beta 0 must not read C, which may hold anything (NaN included).
                for j in 0..<width { cRow[j] = beta == 0 ? alpha * sum[j] : alpha * sum[j] + beta * cRow[j] }
            }
        }

        private func blas(rows: Range<Int>, columns: Range<Int>) {
            let aBlock = transposeA ? a + rows.lowerBound : a + rows.lowerBound * lda
            let bBlock = transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                        Int32(rows.count), Int32(columns.count), Int32(k), alpha, aBlock, Int32(lda), bBlock, Int32(ldb),
                        beta, c + rows.lowerBound * ldc + columns.lowerBound, Int32(ldc))
        }
    }

    /// `y += x` over `count` floats.
    public static func add(_ x: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, count: Int) {
        cblas_saxpy(Int32(count), 1, x, 1, y, 1)
    }

    /// Sum of `count` floats (accumulated in Double for stability).
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var s: Double = 0
        for i in 0..<count { s += Double(x[i]) }
        return Float(s)
    }

    /// Σx² of `count` floats, in sixteen lanes so that it vectorises (a single running sum
    /// is a chain of dependent additions, several times slower on a weight matrix).
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var lanes = SIMD16<Float>()
        let whole = count / 16 * 16
        var i = 0
        while i < whole {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes += v * v
            i += 16
        }
        var s = lanes.sum()
        while i < count {
            s += x[i] * x[i]
            i += 1
        }
        return s
    }

    /// Index of the largest of `count` floats (first on ties).
    @inline(__always)
    public static func argmax(_ x: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        var value = x[0]
        for i in 1..<max(count, 1) where x[i] > value {
            value = x[i]
            best = i
        }
        return best
    }

    /// Adds a row vector to every row of a `rows × columns` matrix in place.
    @inline(__always)
    public static func addRowVector(_ v: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>,
                                    rows: Int, columns: Int) {
        for r in 0..<rows {
            let row = y + r * columns
            for j in 0..<columns { row[j] += v[j] }
        }
    }

    /// Column sums of a `rows × columns` matrix, added to (or stored in) `out`.
    @inline(__always)
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, columns: Int,
                                  into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if !accumulate { out.update(repeating: 0, count: columns) }
        for r in 0..<rows {
            let row = x + r * columns
            for j in 0..<columns { out[j] += row[j] }
        }
    }

    /// Row-wise softmax of `rows × columns` values, numerically stable; `y` may equal `x`.
    public static func softmaxRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                   rows: Int, columns: Int) {
        kestrel_softmax_rows(x, y, rows, columns)
    }

    /// Copies rows `indices[i]` of a `? × rowLength` source into consecutive rows of `destination`.
    @inline(__always)
    public static func gatherRows(_ source: UnsafePointer<Float>, rowLength: Int,
                                  indices: UnsafeBufferPointer<Int>,
                                  into destination: UnsafeMutablePointer<Float>) {
        for (row, i) in indices.enumerated() {
            (destination + row * rowLength).update(from: source + i * rowLength, count: rowLength)
        }
    }
}

/// One block of a split product (a C function: the pool calls it without allocating).
private let splitProductPart: kestrel_task = { context, part, _ in
    let product = context!.assumingMemoryBound(to: Kernels.SplitProduct.self).pointee
    let first = part * product.block
    if product.splitRows {
        product.run(rows: first..<min(product.m, first + product.block), columns: 0..<product.n)
    } else {
        product.run(rows: 0..<product.m, columns: first..<min(product.n, first + product.block))
    }
}

/// The products `Kernels.runGEMMs` runs, by pointer for the pool's C tasks.
private struct GEMMList {
    let shapes: UnsafePointer<Kernels.GEMMShape>
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>
    let c: UnsafeMutablePointer<Float>
    let cStride: Int

    func run(_ index: Int, thread: Int) {
        let s = shapes[index]
        Kernels.gemm(transposeA: s.transposeA, transposeB: s.transposeB, m: s.m, n: s.n, k: s.k, alpha: 1,
                     a: a, lda: s.transposeA ? s.m : s.k, b: b, ldb: s.transposeB ? s.k : s.n,
                     beta: 0, c: c + thread * cStride, ldc: s.n)
    }
}

private let gemmListPart: kestrel_task = { context, part, thread in
    context!.assumingMemoryBound(to: GEMMList.self).pointee.run(part, thread: thread)
}
