import CKestrelSupport
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
}
