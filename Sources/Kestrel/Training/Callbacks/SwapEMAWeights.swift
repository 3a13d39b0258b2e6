/// Evaluates with the optimizer's moving average of the weights (Keras `SwapEMAWeights`): the
/// model's weights and their average (`useEMA: true`) change places for validation and
/// `evaluate`, and back afterwards, so the metrics are those of the averaged model while
/// training goes on from the trained weights.
///
/// With `swapOnEpoch` the average is also in the model between epochs, so that callbacks
/// after this one (`ModelCheckpoint`, say) see and save it. Either way the model ends `fit`
/// with the average, as Keras's does.
public final class SwapEMAWeights: Callback {
    /// Whether to swap at each epoch's end and back at the next one's start.
    public let swapOnEpoch: Bool
    private weak var model: Model?

    /// A callback swapping in the moving average for evaluation (and between epochs with
    /// `swapOnEpoch`).
    public init(swapOnEpoch: Bool = false) {
        self.swapOnEpoch = swapOnEpoch
    }

    public func setModel(_ model: Model) { self.model = model }

    /// The model's optimizer with its average built, the model's buffers and trainable ranges.
    private func target() throws -> (Optimizer, ParameterStore, [Range<Int>]) {
        let model = try attachedModel(model, "SwapEMAWeights")
        let optimizer = try requireOptimizer(model, "SwapEMAWeights")
        guard optimizer.useEMA else {
            throw KestrelError.invalidArgument(
                "SwapEMAWeights: the \(optimizer.name) optimizer of model '\(model.name)' has useEMA false; create it with useEMA: true")
        }
        try model.build()
        let store = model.store!
        optimizer.build(parameterCount: store.count)
        return (optimizer, store, model.trainableVariables)
    }

    private func swap(intoModel: Bool) throws {
        let (optimizer, store, variables) = try target()
        if optimizer.averageSwappedIn != intoModel {
            optimizer.swapAverage(parameters: store.values, variables: variables)
        }
    }

    public func onTrainBegin(logs: [String: Float]) throws { _ = try target() }
    public func onEpochBegin(_ epoch: Int, logs: [String: Float]) throws {
        if swapOnEpoch { try swap(intoModel: false) }
    }
    public func onEpochEnd(_ epoch: Int, logs: [String: Float]) throws {
        if swapOnEpoch { try swap(intoModel: true) }
    }
    public func onTestBegin(logs: [String: Float]) throws { try swap(intoModel: true) }
    public func onTestEnd(logs: [String: Float]) throws { try swap(intoModel: false) }
    public func onPredictBegin(logs: [String: Float]) throws { try swap(intoModel: true) }
    public func onPredictEnd(logs: [String: Float]) throws { try swap(intoModel: false) }
}
