/// Marks padding steps of a sequence (Keras `Masking`): a step whose features all equal
/// `maskValue` is masked, so recurrent layers and `GlobalAveragePooling1D` downstream skip it,
/// and its output features are set to zero.
///
/// The mask covers every axis but the last (the features), as in Keras.
public final class Masking: Layer {
    /// The value that marks padding when every feature of a step has it (Keras default 0).
    public let maskValue: Float

    /// A masking layer for steps whose features all equal `maskValue`.
    public init(maskValue: Float = 0, inputShape: [Int]? = nil, name: String? = nil) {
        self.maskValue = maskValue
        super.init(name: name, inputShape: inputShape)
    }

    public override var supportsMasking: Bool { true }

    public override func outputShape(for inputShape: [Int]) throws -> [Int] {
        guard !inputShape.isEmpty else {
            throw KestrelError.shapeMismatch("\(name) (Masking): expected samples with a features axis, found a scalar per sample")
        }
        return inputShape
    }

    public override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling { .compute }

    public override var config: [String: String] { ["name": name, "mask_value": "\(maskValue)"] }

    /// Calls `body(position, kept)` for every position (all axes but the last) of the batch.
    @inline(__always)
    private func forEachPosition(_ c: LayerContext, _ body: (Int, Bool) -> Void) {
        let features = c.inputShapes[0].last!, positions = c.batch * c.inputSize / features
        for p in 0..<positions {
            let x = c.input + p * features
            var kept = false
            for j in 0..<features where x[j] != maskValue { kept = true; break }
            body(p, kept)
        }
    }

    public override func forward(_ c: LayerContext) {
        let features = c.inputShapes[0].last!
        forEachPosition(c) { p, kept in
            let y = c.output + p * features
            if kept { y.update(from: c.input + p * features, count: features) } else { y.update(repeating: 0, count: features) }
        }
    }

    public override func forwardMask(_ c: LayerContext) {
        forEachPosition(c) { p, kept in c.outputMask![p] = kept ? 1 : 0 }
    }

    public override func backward(_ c: LayerContext) {
        guard let dx = c.inputGradient else { return }
        let features = c.inputShapes[0].last!, dy = c.outputGradient!
        forEachPosition(c) { p, kept in
            let g = dx + p * features
            if kept { g.update(from: dy + p * features, count: features) } else { g.update(repeating: 0, count: features) }
        }
    }
}
