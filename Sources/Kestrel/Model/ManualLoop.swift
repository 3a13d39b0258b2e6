/// The gradients of a model's loss with respect to all of its weights, as computed by
/// `Model.lossAndGradients`: a view of the model's flat gradient buffer (no copy), valid until
/// the next step of that model.
///
/// PyTorch users: this is `loss.backward()` filling every parameter's `.grad`; pass it to
/// `optimizer.apply(_:to:)` for `optimizer.step()`.
public struct Gradients {
    /// The model the gradients belong to.
    public let model: Model
    let store: ParameterStore

    /// The gradient of every weight variable, in `model.getWeights()` order (copies).
    public var tensors: [Tensor] {
        var offset = 0
        return model.layers.flatMap { layer in
            layer.weightSpecs.map { spec in
                defer { offset += spec.count }
                return Tensor(shape: spec.shape, scalars: Array(UnsafeBufferPointer(start: store.gradients + offset, count: spec.count)))
            }
        }
    }

    /// The global L2 norm of the gradients of the trainable weights.
    public var globalNorm: Float {
        var s: Double = 0
        for r in model.trainableVariables { for i in r { s += Double(store.gradients[i]) * Double(store.gradients[i]) } }
        return Float(s.squareRoot())
    }
}

extension Model {
    /// Runs the model on a batch, in inference mode unless `training` (dropout active);
    /// Keras's `model(x, training=...)`, PyTorch's `model(x)`.
    public func callAsFunction(_ x: Tensor, training: Bool = false) throws -> Tensor {
        let outputs = try callAsFunction([x], training: training)
        guard outputs.count == 1 else {
            throw KestrelError.invalidArgument("\(name): has \(outputs.count) outputs; call it with an array of inputs")
        }
        return outputs[0]
    }

    /// Runs a multi-input/output model on one batch.
    public func callAsFunction(_ x: [Tensor], training: Bool = false) throws -> [Tensor] {
        let n = try prepareInputs(x, "call")
        guard n > 0 else { return outputShapes.map { Tensor.zeros([0] + $0) } }
        let plan = try plan(capacity: n, training: training)
        for (k, xk) in x.enumerated() {
            xk.scalars.withUnsafeBufferPointer { plan.inputBuffer(k).update(from: $0.baseAddress!, count: $0.count) }
        }
        plan.forward(batch: n)
        return outputShapes.enumerated().map { k, shape in
            Tensor(shape: [n] + shape, scalars: Array(UnsafeBufferPointer(start: plan.outputBuffer(k), count: n * shape.reduce(1, *))))
        }
    }

    /// The loss on one batch (forward in training mode) and its gradients with respect to every
    /// weight (backward), without updating anything: the manual training loop's step.
    /// Uses the loss given to `compile` (an optimizer given there is not used).
    public func lossAndGradients(_ x: Tensor, _ y: Tensor) throws -> (loss: Float, gradients: Gradients) {
        try lossAndGradients([x], [y])
    }

    /// `lossAndGradients` for a model with several inputs and/or outputs.
    public func lossAndGradients(_ x: [Tensor], _ y: [Tensor]) throws -> (loss: Float, gradients: Gradients) {
        let (plan, t, labels, n) = try loadTrainingBatch(x, y, "lossAndGradients")
        let loss = forwardBackward(plan, t, labels: labels, batch: n)
        return (loss, Gradients(model: self, store: store!))
    }
}

extension Optimizer {
    /// Applies one step with gradients from `model.lossAndGradients` (PyTorch's
    /// `optimizer.step()`, Keras's `optimizer.apply(grads, vars)`).
    public func apply(_ gradients: Gradients, to model: Model) throws {
        guard gradients.model === model, gradients.store === model.store else {
            throw KestrelError.invalidArgument(
                "\(name).apply: the gradients belong to model '\(gradients.model.name)', not '\(model.name)', or are out of date")
        }
        try validateArguments()
        build(parameterCount: gradients.store.count)
        apply(parameters: gradients.store.values, gradients: gradients.store.gradients, variables: model.trainableVariables,
              names: model.trainableWeightNames)
        for layer in model.penaltyLayers { layer.applyConstraints() }
    }

    /// Copies the weights' moving average into `model` (Keras `finalize_variable_values`):
    /// what `fit` does when it ends, for a manual loop with `useEMA`. Does nothing without it.
    public func finalizeVariableValues(_ model: Model) throws {
        guard let store = model.store, slotLength == store.count else {
            throw KestrelError.notReady("\(name).finalizeVariableValues: the optimizer has not been applied to model '\(model.name)'")
        }
        finalizeVariableValues(parameters: store.values, variables: model.trainableVariables)
    }
}
