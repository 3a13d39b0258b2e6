import CKestrelSupport
import KestrelAllocationCounter
@testable import Kestrel
import XCTest

final class BackendTests: XCTestCase {
    /// Under the test runner, as in the tutorial, products run on the fastest kernel family
    /// this CPU supports, and that kernel agrees with a naive product.
    func testFastKernelIsActiveAndVerified() {
        let backend = Kestrel.backend
        XCTAssertTrue(backend.isFastKernel, "active \(backend.activeCore), best \(backend.bestCore)")
        XCTAssertTrue(backend.verified)
        XCTAssertNil(backend.warning)
        XCTAssertEqual(BLASBackend.currentCore().lowercased(), backend.activeCore.lowercased())
        XCTAssertTrue(Kestrel.backendDescription.contains(backend.activeCore))
    }

    func testMatmulAgreesWithNaiveProduct() throws {
        var rng = RandomGenerator(seed: 3)
        let a = Tensor.randomUniform([67, 45], minval: -1, maxval: 1, generator: &rng)
        let b = Tensor.randomUniform([45, 38], minval: -1, maxval: 1, generator: &rng)
        let c = try a.matmul(b)
        for i in 0..<67 {
            for j in 0..<38 {
                var s: Double = 0
                for k in 0..<45 { s += Double(a[i, k]) * Double(b[k, j]) }
                XCTAssertEqual(Double(c[i, j]), s, accuracy: 1e-4)
            }
        }
    }

    /// Simulates a CPU that OpenBLAS does not recognise: force the Prescott fallback, then
    /// let Kestrel's start-up check switch to the fast family and verify it.
    func testSwitchesAwayFromPrescottFallback() throws {
        _ = Kestrel.backend
        let original = BLASBackend.currentCore()
        let best = BLASBackend.bestCore(for: kestrel_cpu_features_get())
        try XCTSkipIf(best == "Prescott", "this CPU has no AVX: Prescott is already its best family")
        defer {
            _ = kestrel_openblas_select_core(original)
            unsetenv("OPENBLAS_CORETYPE")
        }
        XCTAssertEqual(kestrel_openblas_select_core("Prescott"), 0)
        XCTAssertEqual(BLASBackend.currentCore(), "Prescott")
        unsetenv("OPENBLAS_CORETYPE")

        let switched = BLASBackend.configure(userChoice: nil)
        XCTAssertEqual(switched.detectedCore, "Prescott")
        XCTAssertEqual(switched.activeCore, best)
        XCTAssertTrue(switched.switchedByKestrel)
        XCTAssertTrue(switched.verified)
        XCTAssertNil(switched.warning)
        XCTAssertEqual(BLASBackend.currentCore().lowercased(), best.lowercased())
        XCTAssertTrue(switched.description.contains("selected by Kestrel"))
    }

    /// A user's explicit OPENBLAS_CORETYPE is kept, with a warning saying how to fix it.
    func testExplicitSlowChoiceIsRespectedWithWarning() throws {
        _ = Kestrel.backend
        let original = BLASBackend.currentCore()
        let best = BLASBackend.bestCore(for: kestrel_cpu_features_get())
        try XCTSkipIf(best == "Prescott", "this CPU has no AVX")
        defer {
            _ = kestrel_openblas_select_core(original)
            unsetenv("OPENBLAS_CORETYPE")
        }
        XCTAssertEqual(kestrel_openblas_select_core("Prescott"), 0)
        let kept = BLASBackend.configure(userChoice: "Prescott")
        XCTAssertEqual(kept.activeCore, "Prescott")
        XCTAssertFalse(kept.switchedByKestrel)
        XCTAssertFalse(kept.isFastKernel)
        let warning = try XCTUnwrap(kept.warning)
        XCTAssertTrue(warning.contains("OPENBLAS_CORETYPE=\(best)"), warning)
    }

    func testBestCoreFollowsCPUFeatures() {
        var f = kestrel_cpu_features()
        XCTAssertEqual(BLASBackend.bestCore(for: f), "Prescott")
        f.avx = 1
        XCTAssertEqual(BLASBackend.bestCore(for: f), "Sandybridge")
        f.avx2 = 1; f.fma = 1
        XCTAssertEqual(BLASBackend.bestCore(for: f), "Haswell")
        f.avx512f = 1; f.avx512bw = 1; f.avx512dq = 1; f.avx512vl = 1
        XCTAssertEqual(BLASBackend.bestCore(for: f), "SkylakeX")
    }

    /// Untransposed products whose column count leaves 1 to 8 after multiples of 16 (where
    /// OpenBLAS's small-matrix kernel would allocate) agree with a naive product, never read C
    /// with beta 0, add to it otherwise, and allocate nothing.
    func testNarrowColumnProductsAgreeAndAllocateNothing() {
        var rng = RandomGenerator(seed: 12)
        for (m, n, k) in [(8, 3, 700), (5, 19, 40), (4, 24, 33), (3, 8, 32), (6, 17, 31), (2, 16, 64)] {
            var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
            a.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
            b.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }
            for (alpha, beta) in [(Float(1), Float(0)), (2, 0.5)] {
                var c = [Float](repeating: beta == 0 ? .nan : 1, count: m * n)
                let before = kestrel_allocation_count()
                c.withUnsafeMutableBufferPointer { c in
                    a.withUnsafeBufferPointer { a in
                        b.withUnsafeBufferPointer { b in
                            Kernels.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: alpha,
                                         a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: n, beta: beta,
                                         c: c.baseAddress!, ldc: n)
                        }
                    }
                }
                #if !DEBUG
                XCTAssertEqual(kestrel_allocation_count(), before, "\(m)x\(n)x\(k) allocated")
                #endif
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Double = 0
                        for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                        let expected = Double(alpha) * s + (beta == 0 ? 0 : Double(beta))
                        XCTAssertEqual(Double(c[i * n + j]), expected, accuracy: 1e-4, "\(m)x\(n)x\(k) [\(i), \(j)]")
                    }
                }
            }
        }
    }
}
