import Foundation

/// Reads a dataset's batches ahead on a background thread while the model trains on the
/// current one (tf.data's `prefetch`, Keras's PyDataset queue): up to `depth` batches wait,
/// in the order asked for. One thread serves a whole `fit`; between epochs it is idle, so the
/// dataset's epoch hooks never run while a batch is being read.
final class Prefetcher: @unchecked Sendable {
    private let condition = NSCondition()
    private let depth: Int
    private let read: (Int) throws -> Batch
    // Guarded by `condition`:
    private var indices: [Int] = []
    private var requested = 0
    private var ready: [Result<Batch, Error>] = []
    private var reading = false
    private var closed = false
    private var running = true

    /// Starts the thread; `read` is called on it.
    init(depth: Int, read: @escaping (Int) throws -> Batch) {
        self.depth = max(1, depth)
        self.read = read
        let thread = Thread { [self] in work() }
        thread.name = "kestrel-prefetch"
        thread.start()
    }

    private func work() {
        condition.lock()
        while true {
            while !closed && (requested == indices.count || ready.count >= depth) { condition.wait() }
            if closed { break }
            let index = indices[requested]
            requested += 1
            reading = true
            condition.unlock()
            let result = Result { try read(index) }
            condition.lock()
            reading = false
            // A batch read for an epoch that was cancelled meanwhile is dropped.
            if requested > 0 { ready.append(result) }
            condition.broadcast()
        }
        running = false
        condition.broadcast()
        condition.unlock()
    }

    /// Begins reading `indices` in order; any earlier request must have been cancelled.
    func start(_ indices: [Int]) {
        condition.lock()
        self.indices = indices
        requested = 0
        ready.removeAll(keepingCapacity: true)
        condition.broadcast()
        condition.unlock()
    }

    /// The next batch, waiting for it if need be; rethrows what reading it threw.
    func next() throws -> Batch {
        condition.lock()
        while ready.isEmpty { condition.wait() }
        let result = ready.removeFirst()
        condition.broadcast()
        condition.unlock()
        return try result.get()
    }

    /// Stops reading this epoch's batches and waits until no batch is being read.
    func cancel() {
        condition.lock()
        indices = []
        requested = 0
        while reading { condition.wait() }
        ready.removeAll(keepingCapacity: true)
        condition.unlock()
    }

    /// Ends the thread.
    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }
}
