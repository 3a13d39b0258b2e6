import CBLAS
import CKestrelKernels
import CKestrelSupport
import Foundation
import Synchronization

/// Which OpenBLAS kernel runs matrix products, and how it was chosen.
///
/// Debian's OpenBLAS picks its kernel family when it loads, from the CPU it recognises. On
/// CPUs newer than the library it falls back to `Prescott` (SSE3), about 6x slower. Kestrel
/// checks the choice before its first product: when OpenBLAS fell back although the CPU
/// supports a faster family, Kestrel switches to that family in-process, verifies it against
/// a naive product, and keeps it only if they agree. If the switch is impossible, a one-time
/// warning on standard error says how to fix it (`OPENBLAS_CORETYPE`).
public struct BLASBackend: Sendable, CustomStringConvertible {
    /// The kernel family OpenBLAS chose when it loaded.
    public let detectedCore: String
    /// The kernel family in use now.
    public let activeCore: String
    /// The fastest family this CPU supports among those OpenBLAS ships.
    public let bestCore: String
    /// Whether Kestrel switched the family (true) or kept OpenBLAS's own choice.
    public let switchedByKestrel: Bool
    /// Whether the active family was checked against a naive product and agreed.
    public let verified: Bool
    /// The user's `OPENBLAS_CORETYPE` at start-up, which Kestrel never overrides.
    public let userCoreType: String?
    /// OpenBLAS's configuration string (version, build options).
    public let configuration: String
    /// OpenBLAS's thread count at start-up (`OPENBLAS_NUM_THREADS` or the number of cores).
    public let threads: Int
    /// The most threads Kestrel uses for one large product (each thread runs OpenBLAS single-threaded).
    public var maxThreads: Int { maxBLASThreads.load(ordering: .relaxed) }
    /// A warning for the user, when the active family is slower than the CPU allows.
    public let warning: String?

    /// Whether the kernel in use is as fast as this CPU allows.
    public var isFastKernel: Bool { BLASBackend.rank(of: activeCore) >= BLASBackend.rank(of: bestCore) }

    public var description: String {
        var text = "OpenBLAS \(version), kernel \(activeCore)"
        if switchedByKestrel { text += " (selected by Kestrel; OpenBLAS detected \(detectedCore))" }
        else if userCoreType != nil { text += " (from OPENBLAS_CORETYPE)" }
        text += verified ? ", verified" : ""
        text += ", up to \(maxThreads) threads"
        return text
    }

    /// The OpenBLAS version from its configuration string.
    public var version: String {
        let parts = configuration.split(separator: " ")
        return parts.count > 1 ? String(parts[1]) : configuration
    }

    // Families Debian's x86-64 OpenBLAS 0.3.21 ships, ranked by the instructions they need.
    private static let ranks: [String: Int] = [
        "prescott": 1, "core2": 1, "penryn": 1, "dunnington": 1, "nehalem": 1, "atom": 1,
        "nano": 1, "opteron": 1, "opteron_sse3": 1, "barcelona": 1, "bobcat": 1, "katmai": 0,
        "coppermine": 0, "northwood": 0, "banias": 0, "athlon": 0,
        "sandybridge": 2, "bulldozer": 2, "piledriver": 2, "steamroller": 2, "excavator": 2,
        "haswell": 3, "zen": 3, "skylakex": 4, "cooperlake": 4,
    ]

    static func rank(of core: String) -> Int { ranks[core.lowercased()] ?? 3 }

    static func bestCore(for f: kestrel_cpu_features) -> String {
        if f.avx512f != 0 && f.avx512bw != 0 && f.avx512dq != 0 && f.avx512vl != 0 && f.avx2 != 0 && f.fma != 0 {
            return "SkylakeX"
        }
        if f.avx2 != 0 && f.fma != 0 { return "Haswell" }
        if f.avx != 0 { return "Sandybridge" }
        return "Prescott"
    }

    static func currentCore() -> String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Compares a product by the active kernel with a naive triple loop.
    static func agreesWithNaiveProduct() -> Bool {
        let m = 37, n = 23, k = 29
        var rng = RandomGenerator(seed: 7)
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
        a.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        b.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
        var c = [Float](repeating: 0, count: m * n)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                if abs(Double(c[i * n + j]) - s) > 1e-4 * max(1, abs(s)) { return false }
            }
        }
        return true
    }

    /// Checks OpenBLAS's choice and switches to the best family when it fell back; `userChoice`
    /// is the `OPENBLAS_CORETYPE` the program started with (never overridden).
    static func configure(userChoice: String? = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]) -> BLASBackend {
        let detected = currentCore()
        let best = bestCore(for: kestrel_cpu_features_get())
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        var active = detected, switched = false, warning: String?

        if userChoice == nil && rank(of: detected) < rank(of: best) {
            if kestrel_openblas_select_core(best) == 0, currentCore().lowercased() == best.lowercased(),
               agreesWithNaiveProduct() {
                active = best
                switched = true
            } else {
                _ = kestrel_openblas_select_core(detected)
                unsetenv("OPENBLAS_CORETYPE")
                active = currentCore()
            }
        }
        let verified = agreesWithNaiveProduct()
        if rank(of: active) < rank(of: best) {
            warning = """
                Kestrel: OpenBLAS is running its slow '\(active)' kernel although this CPU supports \
                '\(best)' (matrix products run several times slower). Start the program with \
                OPENBLAS_CORETYPE=\(best) in its environment\(userChoice != nil ? " instead of OPENBLAS_CORETYPE=\(userChoice!)" : "").
                """
        }
        if !verified {
            warning = (warning.map { $0 + "\n" } ?? "")
                + "Kestrel: OpenBLAS's '\(active)' kernel disagrees with a naive matrix product; results may be wrong."
        }
        return BLASBackend(detectedCore: detected, activeCore: active, bestCore: best,
                           switchedByKestrel: switched, verified: verified, userCoreType: userChoice,
                           configuration: config, threads: Int(openblas_get_num_threads()), warning: warning)
    }
}

/// Configured once, before Kestrel's first matrix product.
let blasBackend: BLASBackend = {
    let backend = BLASBackend.configure()
    if let warning = backend.warning {
        FileHandle.standardError.write(Data((warning + "\n").utf8))
    }
    // Kestrel splits large products over its own threads (`Kernels.gemm`); OpenBLAS's threaded
    // driver allocates on every call and would compete with them for the cores.
    openblas_set_num_threads(1)
    kestrel_parallel_set_threads(backend.threads)
    maxBLASThreads.store(backend.threads, ordering: .relaxed)
    return backend
}()

/// The thread limit for large products and parallel loops (`Kestrel.setBLASThreads`).
let maxBLASThreads = Atomic<Int>(1)

extension Kestrel {
    /// The BLAS backend in use: library, kernel family and how it was chosen.
    public static var backend: BLASBackend { blasBackend }
    /// One line describing the BLAS backend, e.g. "OpenBLAS 0.3.21, kernel Haswell, verified, 2 threads".
    public static var backendDescription: String { blasBackend.description }
    /// Sets the most threads Kestrel uses for one large matrix product or parallel loop
    /// (small products always run on one thread).
    public static func setBLASThreads(_ count: Int) {
        _ = blasBackend
        kestrel_parallel_set_threads(max(1, count))
        maxBLASThreads.store(max(1, count), ordering: .relaxed)
    }
    /// The most threads one matrix product or parallel loop may use (`setBLASThreads`).
    public static var blasThreads: Int {
        _ = blasBackend
        return kestrel_parallel_threads()
    }
}
