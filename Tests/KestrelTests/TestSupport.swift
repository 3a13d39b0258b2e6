@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// Runs one layer forward and backward over owned buffers, for gradient checks.
final class LayerHarness {
    let layer: Layer
    let inputShapes: [[Int]]
    let outputShape: [Int]
    let batch: Int
    let training: Bool
    var inputs: [[Float]]
    var seed: UInt64 = 99
    /// The first input's mask `(batch, positions)`, held fixed while the inputs move.
    var inputMask: [Float]? {
        get { inputMasks.first ?? nil }
        set { inputMasks = [newValue] + inputMasks.dropFirst() }
    }
    /// Every input's mask (or nil), for layers with several inputs.
    var inputMasks: [[Float]?] = [] {
        didSet {
            maskBuffers.forEach { $0?.deallocate() }
            maskBuffers = inputMasks.map { mask in
                mask.map { m in
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: max(m.count, 1))
                    p.initialize(from: m, count: m.count)
                    return p
                }
            }
        }
    }
    private var maskBuffers: [UnsafeMutablePointer<Float>?] = []

    deinit { maskBuffers.forEach { $0?.deallocate() } }

    /// `avoid` lists kinks of the function: inputs closer than 0.05 to one are moved off it,
    /// so central differences never straddle a point where the derivative jumps.
    init(_ layer: Layer, inputShapes: [[Int]], batch: Int, training: Bool = true, seed: UInt64 = 5,
         avoid: [Float] = []) throws {
        self.layer = layer
        self.inputShapes = inputShapes
        self.batch = batch
        self.training = training
        outputShape = try layer.build(inputShapes: inputShapes)
        var rng = RandomGenerator(seed: seed)
        inputs = inputShapes.map { shape in
            var v = [Float](repeating: 0, count: batch * shape.reduce(1, *))
            v.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1.5, high: 1.5) }
            for i in v.indices { for k in avoid where abs(v[i] - k) < 0.05 { v[i] = k + (v[i] < k ? -0.05 : 0.05) } }
            return v
        }
    }

    var outputCount: Int { batch * outputShape.reduce(1, *) }

    /// Forward pass with a fixed generator (so dropout masks repeat); returns output and context.
    func forward() -> ([Float], LayerContext, [UnsafeMutablePointer<Float>], UnsafeMutablePointer<Float>) {
        let ins = inputs.map { values -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
            p.initialize(from: values, count: values.count)
            return p
        }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: max(outputCount, 1))
        out.initialize(repeating: 0, count: max(outputCount, 1))
        let wsCount = max(layer.workspaceSize(batch: batch, inputShapes: inputShapes, training: training), 1)
        let ws = UnsafeMutablePointer<Float>.allocate(capacity: wsCount)
        ws.initialize(repeating: 0, count: wsCount)
        let c = LayerContext(inputShapes: inputShapes, outputShape: outputShape, inputs: ins, output: out,
                             workspace: ws, weights: layer.weightPointers(), weightGradients: layer.gradientPointers(),
                             generator: RandomGenerator(seed: seed))
        c.batch = batch
        c.training = training
        for (k, mask) in maskBuffers.enumerated() where k < c.inputMasks.count { c.inputMasks[k] = mask }
        if layer.isIdentity(training: training) {
            out.update(from: ins[0], count: outputCount)
        } else {
            layer.forward(c)
        }
        return (Array(UnsafeBufferPointer(start: out, count: outputCount)), c, ins, ws)
    }

    /// Loss = Σ output · weights (fixed random), so dLoss/dOutput = weights.
    func loss(_ projection: [Float]) -> Double {
        let (y, _, ins, ws) = forward()
        defer { ins.forEach { $0.deallocate() }; ws.deallocate() }
        return zip(y, projection).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Checks analytic input and weight gradients against central differences.
    func check(tolerance: Double = 2e-2, epsilon: Float = 1e-2, label: String = "", file: StaticString = #filePath, line: UInt = #line) {
        var rng = RandomGenerator(seed: 11)
        var projection = [Float](repeating: 0, count: outputCount)
        projection.withUnsafeMutableBufferPointer { rng.fillUniform($0, low: -1, high: 1) }

        let (_, c, ins, ws) = forward()
        let dy = UnsafeMutablePointer<Float>.allocate(capacity: max(outputCount, 1))
        dy.initialize(from: projection, count: outputCount)
        c.outputGradient = dy
        let dxs = inputs.map { values -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
            p.initialize(repeating: 0, count: max(values.count, 1))
            return p
        }
        c.inputGradients = dxs
        c.accumulateWeightGradients = false
        if layer.isIdentity(training: training) {
            dxs[0].update(from: dy, count: outputCount)
        } else {
            layer.backward(c)
        }
        let analyticInputs = zip(dxs, inputs).map { Array(UnsafeBufferPointer(start: $0, count: $1.count)) }
        let analyticWeights = zip(layer.gradientPointers(), layer.weightSpecs).map {
            Array(UnsafeBufferPointer(start: $0, count: $1.count))
        }
        ins.forEach { $0.deallocate() }; ws.deallocate(); dy.deallocate(); dxs.forEach { $0.deallocate() }

        // Central differences at two step sizes; where they disagree the step straddles a
        // kink (ReLU at 0), the derivative is undefined there and the point is skipped.
        var checked = 0, skipped = 0
        // A kink right at the point gives the same blend at both step sizes, so the one-sided
        // differences are compared too: across a kink they differ by the jump in slope.
        func difference(_ f: (Float) -> Double) -> Double? {
            let center = f(0), plus = f(epsilon / 2), minus = f(-epsilon / 2)
            let wide = (f(epsilon) - f(-epsilon)) / Double(2 * epsilon)
            let narrow = (plus - minus) / Double(epsilon)
            let forward = (plus - center) / Double(epsilon / 2), backward = (center - minus) / Double(epsilon / 2)
            checked += 1
            if abs(wide - narrow) > tolerance * max(1, abs(wide))
                || abs(forward - backward) > 5 * tolerance * max(1, abs(narrow)) {
                skipped += 1
                return nil
            }
            return narrow
        }
        defer {
            XCTAssertLessThanOrEqual(skipped * 10, checked, "\(layer.className)\(label): too many non-smooth points",
                                     file: file, line: line)
        }
        func compare(_ analytic: Float, _ numeric: Double, _ what: String) {
            let scale = max(1.0, abs(numeric), Double(abs(analytic)))
            XCTAssertLessThanOrEqual(abs(Double(analytic) - numeric) / scale, tolerance,
                                     "\(layer.className)\(label) \(what): analytic \(analytic) vs numeric \(numeric)",
                                     file: file, line: line)
        }
        for k in inputs.indices {
            for i in stride(from: 0, to: inputs[k].count, by: max(1, inputs[k].count / 60)) {
                let saved = inputs[k][i]
                let numeric = difference { h in inputs[k][i] = saved + h; defer { inputs[k][i] = saved }; return loss(projection) }
                if let numeric { compare(analyticInputs[k][i], numeric, "d input\(k)[\(i)]") }
            }
        }
        for (w, (spec, pointer)) in zip(layer.weightSpecs, layer.weightPointers()).enumerated() where spec.trainable {
            for i in stride(from: 0, to: spec.count, by: max(1, spec.count / 60)) {
                let saved = pointer[i]
                let numeric = difference { h in pointer[i] = saved + h; defer { pointer[i] = saved }; return loss(projection) }
                if let numeric { compare(analyticWeights[w][i], numeric, "d \(spec.name)[\(i)]") }
            }
        }
    }
}

/// Asserts that `body` throws a KestrelError whose message contains every fragment.
func assertThrowsMessage<T>(_ body: @autoclosure () throws -> T, contains fragments: [String],
                            file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let error as KestrelError {
        for f in fragments {
            XCTAssertTrue(error.message.contains(f), "message '\(error.message)' lacks '\(f)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// Values of a tensor compared element-wise within a tolerance.
func assertClose(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5, _ message: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "count \(message)", file: file, line: line)
    for (i, (x, y)) in zip(a, b).enumerated() {
        let scale = max(1, abs(x), abs(y))
        if abs(x - y) / scale > tolerance {
            XCTFail("\(message) element \(i): \(x) vs \(y)", file: file, line: line)
            return
        }
    }
}

/// Asserts that training steps of a compiled model allocate nothing once the plan exists:
/// `steps` steps must allocate no more than 1 (`runTrainingSteps` itself allocates a
/// fixed handful per call, e.g. its index array), so any per-step allocation shows up.
func assertTrainingStepsAllocateNothing(_ model: Model, x: Tensor, y: Tensor, batchSize: Int, steps: Int = 30,
                                        file: StaticString = #filePath, line: UInt = #line) throws {
    #if DEBUG
    // Unoptimised builds keep temporaries on the heap that -O removes; the claim is about
    // release builds, which is what the benchmark and `swift test -c release` run.
    throw XCTSkip("allocation counts are checked in release builds (swift test -c release)")
    #else
    XCTAssertNotEqual(kestrel_allocation_counter_active(), 0, "allocation counter inactive", file: file, line: line)
    try model.runTrainingSteps(x, y, batchSize: batchSize, count: 3)   // warm-up: plan, buffers, threads
    let before = kestrel_allocation_count()
    try model.runTrainingSteps(x, y, batchSize: batchSize, count: steps)
    let after = kestrel_allocation_count()
    let beforeOne = kestrel_allocation_count()
    try model.runTrainingSteps(x, y, batchSize: batchSize, count: 1)
    let one = kestrel_allocation_count() - beforeOne
    // A per-step allocation adds at least `steps - 1` to the first count; a stray allocation
    // by another thread of the test runner can add one to either, so allow two.
    XCTAssertLessThanOrEqual(after - before, one + 2, "allocations grow with the number of steps (\(steps) steps: \(after - before), 1 step: \(one))",
                             file: file, line: line)
    #endif
}

/// Compares the analytic gradients of a whole model (`analytic`, in `getWeights()` order) with
/// central differences of `loss` for about `perWeight` entries of every weight variable;
/// returns how many entries it compared.
@discardableResult
func assertModelGradientsMatchFiniteDifferences(_ model: Model, analytic: [Tensor], step h: Float, perWeight: Int,
                                                file: StaticString = #filePath, line: UInt = #line,
                                                loss: () throws -> Float) throws -> Int {
    var checked = 0
    var expectedGradients = analytic.makeIterator()
    for layer in model.layers {
        for (w, spec) in layer.weightSpecs.enumerated() {
            let expected = expectedGradients.next()!
            let pointer = layer.weightPointer(w)
            for i in stride(from: 0, to: spec.count, by: max(1, spec.count / perWeight)) {
                let saved = pointer[i]
                pointer[i] = saved + h
                let plus = try loss()
                pointer[i] = saved - h
                let minus = try loss()
                pointer[i] = saved
                let numeric = (plus - minus) / (2 * h)
                XCTAssertEqual(expected.scalars[i], numeric, accuracy: 2e-3 + 2e-2 * abs(numeric),
                               "\(layer.name).\(spec.name)[\(i)]", file: file, line: line)
                checked += 1
            }
        }
    }
    return checked
}

/// Asserts that a spatial dropout layer (rate 0.5) keeps or drops each channel of each sample
/// as a whole in training, scaling kept ones by 2, drops a plausible share, and is the
/// identity in inference; `shape` is the batch's (samples, positions…, channels).
func assertDropsWholeChannels(_ layer: Layer, shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
    let x = Tensor.ones(shape)
    let y = try layer(x, training: true)
    let samples = shape[0], channels = shape.last!, positions = shape.dropFirst().dropLast().reduce(1, *)
    var dropped = 0
    for n in 0..<samples {
        for ch in 0..<channels {
            let values = (0..<positions).map { y.scalars[(n * positions + $0) * channels + ch] }
            XCTAssertTrue(values.allSatisfy { $0 == values[0] }, "a channel is kept or dropped as a whole", file: file, line: line)
            XCTAssertTrue(values[0] == 0 || values[0] == 2, "kept channels are scaled by 1/(1-rate)", file: file, line: line)
            if values[0] == 0 { dropped += 1 }
        }
    }
    XCTAssertGreaterThan(dropped, samples * channels / 8, file: file, line: line)
    XCTAssertLessThan(dropped, samples * channels * 7 / 8, file: file, line: line)
    XCTAssertEqual(try layer(x, training: false), x, file: file, line: line)
}
