/// A graph node that is not a layer call but one of the outputs after the first of the call
/// it reads (Keras's `keras_history` tensor index: an LSTM's `state_h` and `state_c` with
/// `returnState`). The plan gives the call a buffer for that output (`LayerContext
/// .additionalOutputs`) and this node shares it; the node itself never runs.
final class OutputSelector: Layer {
    /// The layer whose call produces the output.
    let source: Layer
    /// Which output of the call: 1 for the first after the main one.
    let index: Int

    init(source: Layer, index: Int) {
        precondition(index >= 1, "an output selector picks an output after the first")
        self.source = source
        self.index = index
        super.init(name: source.name, inputShape: nil)
    }

    override var className: String { source.className }

    override func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        let extra = source.additionalOutputShapes(forInputs: source.builtInputShapes ?? [])
        guard index - 1 < extra.count else {
            throw KestrelError.invalidArgument(
                "\(source.name) (\(source.className)): a call returns \(extra.count + 1) tensors, output \(index) was asked for")
        }
        return extra[index - 1]
    }

    /// (Its source may be called again on another length, which changes the main output's
    /// shape that this node reads; it holds no weights.)
    override var acceptsOtherShapesWithSameWeights: Bool { true }

    override func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling { .none }

    override func forward(_ context: LayerContext) {
        preconditionFailure("an output selector's buffer is written by its source's call")
    }
}

extension Layer {
    /// Calls the layer on symbolic tensors and returns every tensor the call produces, as
    /// Keras's call returns a list: the main output, then `additionalOutputShapes`' outputs.
    func callReturningAll(_ inputs: [SymbolicTensor]) throws -> [SymbolicTensor] {
        let main = try callAsFunction(inputs)
        let extra = additionalOutputShapes(forInputs: inputs.map(\.shape))
        return [main] + (try extra.indices.map { k in try OutputSelector(source: self, index: k + 1)(main) })
    }
}
