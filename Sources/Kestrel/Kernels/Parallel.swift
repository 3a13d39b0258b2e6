import CKestrelKernels

/// Kestrel's threads: a persistent pool (`kestrel_parallel_run`, parallel.c) that splits large
/// matrix products and shares out convolution tiles, so that work on several cores allocates
/// nothing per call.
package enum Parallel {
    /// How many per-thread scratch areas plans reserve (and so the most shares a layer's loop
    /// is cut into): the threads Kestrel had when it started (`OPENBLAS_NUM_THREADS` or the
    /// cores). Fixed for the process, so that plans built at different times agree.
    package static let scratchSlots: Int = {
        _ = blasBackend
        return max(1, kestrel_parallel_threads())
    }()
}

extension Parallel {
    /// Runs `body(part)` for `parts` parts on Kestrel's threads and returns when all are done.
    /// For Swift loops whose parts touch disjoint data (such as the rows of texts being
    /// vectorized); the kernels pass C functions directly.
    package static func forEach(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1 else {
            if parts == 1 { body(0) }
            return
        }
        // The pool returns only when every part is done, so the closure does not outlive the call.
        withoutActuallyEscaping(body) { body in
            let box = Body(body)
            withExtendedLifetime(box) {
                kestrel_parallel_run(runBody, Unmanaged.passUnretained(box).toOpaque(), parts)
            }
        }
    }

    private final class Body {
        let run: (Int) -> Void
        init(_ run: @escaping (Int) -> Void) { self.run = run }
    }

    private static let runBody: kestrel_task = { context, part, _ in
        Unmanaged<Body>.fromOpaque(context!).takeUnretainedValue().run(part)
    }
}
