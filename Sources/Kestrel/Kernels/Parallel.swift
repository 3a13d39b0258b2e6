import CKestrelKernels

/// Kestrel's threads: a persistent pool (`kestrel_parallel_run`, parallel.c) that splits large
/// matrix products and shares out convolution tiles, so that work on several cores allocates
/// nothing per call.
enum Parallel {
    /// How many per-thread scratch areas plans reserve (and so the most shares a layer's loop
    /// is cut into): the threads Kestrel had when it started (`OPENBLAS_NUM_THREADS` or the
    /// cores). Fixed for the process, so that plans built at different times agree.
    static let scratchSlots: Int = {
        _ = blasBackend
        return max(1, kestrel_parallel_threads())
    }()
}
