/// Repeats each `(features)` sample `n` times into `(n, features)` (Keras `RepeatVector`).
public final class RepeatVector: Layer {
    /// The number of repetitions.
    public let n: Int

    /// A layer repeating its input vector `n` times.
    public init(_ n: Int, inputShape: [Int]? = nil, name: String? = nil) {
        self.n = n
        super.init(name: name, inputShape: inputShape)
    }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard n > 0 else { throw KestrelError.invalidArgument("\(name) (RepeatVector): n must be positive, found \(n)") }
        guard inputShape.count == 1 else {
            throw KestrelError.shapeMismatch("\(name) (RepeatVector): expected samples of rank 1 (features), found shape \(inputShape)")
        }
        return [n, inputShape[0]]
    }

    public override var backwardNeedsInput: Bool { false }
    public override var config: [String: String] { ["name": name, "n": "\(n)"] }

    public override func forward(_ c: LayerContext) {
        let d = c.inputSize
        for b in 0..<c.batch {
            for r in 0..<n { (c.output + (b * n + r) * d).update(from: c.input + b * d, count: d) }
        }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let d = c.inputSize
        for b in 0..<c.batch {
            let g = dx + b * d
            g.update(from: c.outputGradient! + b * n * d, count: d)
            for r in 1..<n {
                let dy = c.outputGradient! + (b * n + r) * d
                for j in 0..<d { g[j] += dy[j] }
            }
        }
    }
}
