import Foundation

/// An optimizer's state for a model: its step count and, for each state buffer (Keras's slot
/// names: "momentum", "velocity", …), one tensor per trainable variable.
public struct OptimizerState: Equatable, Sendable {
    /// Batches applied so far (Keras's saved `iterations` variable; with gradient accumulation
    /// every batch counts, not only those that updated the weights).
    public var iterations: Int
    /// The learning rate at the time the state was taken.
    public var learningRate: Float
    /// The slot names, in `slots` order.
    public var slotNames: [String]
    /// `slots[k][v]`: slot `k` of trainable variable `v` (in `Model.trainableVariableNames` order).
    public var slots: [[Tensor]]

    /// A state with the given values.
    public init(iterations: Int, learningRate: Float, slotNames: [String], slots: [[Tensor]]) {
        self.iterations = iterations
        self.learningRate = learningRate
        self.slotNames = slotNames
        self.slots = slots
    }
}

extension Model {
    /// The `<layer>/<variable>` names of the weights the optimizer updates, in its order.
    public var trainableVariableNames: [String] {
        guard let graph else { return [] }
        return graph.uniqueLayers.flatMap { layer in
            layer.weightSpecs.filter { layer.trainable && $0.trainable }.map { "\(layer.name)/\($0.name)" }
        }
    }

    /// The positional (Keras `.weights.h5`) paths of the weights the optimizer updates, in its
    /// order: checkpoints key optimizer slots by them, so they survive automatic renaming.
    var trainableVariablePaths: [String] {
        namedVariables(.keras).filter { $0.layer.trainable && $0.layer.weightSpecs[$0.index].trainable }.map(\.name)
    }

    /// The shapes of the weights the optimizer updates, in its order.
    var trainableVariableShapes: [[Int]] {
        guard let graph else { return [] }
        return graph.uniqueLayers.flatMap { layer in
            layer.weightSpecs.filter { layer.trainable && $0.trainable }.map(\.shape)
        }
    }

    /// The compiled optimizer's state (step count and per-variable slots).
    public func optimizerState() throws -> OptimizerState {
        guard let optimizer else { throw KestrelError.notReady("\(name).optimizerState: call compile first") }
        try build()
        optimizer.build(parameterCount: store!.count)
        let shapes = trainableVariableShapes
        let slots = optimizer.slots.map { slot in
            zip(trainableVariables, shapes).map { range, shape in
                Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: slot + range.lowerBound, count: range.count)))
            }
        }
        return OptimizerState(iterations: optimizer.appliedBatches, learningRate: optimizer.learningRate,
                              slotNames: optimizer.stateSlotNames, slots: slots)
    }

    /// Restores the compiled optimizer's state, so that training continues where it stopped.
    public func setOptimizerState(_ state: OptimizerState) throws {
        guard let optimizer else { throw KestrelError.notReady("\(name).setOptimizerState: call compile first") }
        try build()
        optimizer.build(parameterCount: store!.count)
        guard state.slotNames == optimizer.stateSlotNames else {
            throw KestrelError.invalidArgument(
                "\(name).setOptimizerState: the state has slots \(state.slotNames), the \(optimizer.name) optimizer has \(optimizer.stateSlotNames)")
        }
        let shapes = trainableVariableShapes
        for slot in state.slots {
            guard slot.map(\.shape) == shapes else {
                throw KestrelError.shapeMismatch(
                    "\(name).setOptimizerState: slot shapes \(slot.map(\.shape)) do not match the trainable variables \(shapes)")
            }
        }
        for (k, slot) in state.slots.enumerated() {
            for (tensor, range) in zip(slot, trainableVariables) {
                tensor.scalars.withUnsafeBufferPointer { (optimizer.slots[k] + range.lowerBound).update(from: $0.baseAddress!, count: range.count) }
            }
        }
        optimizer.restore(appliedBatches: state.iterations)
        optimizer.learningRate = state.learningRate
    }

    /// Saves weights, optimizer state and the number of finished epochs to one safetensors
    /// file, atomically: what `BackupAndRestore` and resumable training need.
    public func saveCheckpoint(to path: String, epoch: Int) throws {
        try build()
        var tensors = namedVariables(.keras).map { v in (name: v.name, tensor: v.layer.getWeights()[v.index]) }
        var metadata = ["format": "kestrel-checkpoint", "epoch": "\(epoch)"]
        if optimizer != nil {
            let state = try optimizerState()
            let names = trainableVariablePaths
            for (k, slot) in state.slots.enumerated() {
                for (v, tensor) in slot.enumerated() {
                    tensors.append((name: "optimizer/\(state.slotNames[k])/\(names[v])", tensor: tensor))
                }
            }
            metadata["optimizer"] = optimizer!.name
            metadata["iterations"] = "\(state.iterations)"
            metadata["learning_rate"] = "\(state.learningRate)"
        }
        try Safetensors.write(tensors, metadata: metadata, to: path)
    }

    /// Restores a checkpoint written by `saveCheckpoint` (weights, and optimizer state when the
    /// model is compiled with the same optimizer); returns the number of finished epochs.
    /// Everything is checked before anything changes.
    @discardableResult
    public func loadCheckpoint(from path: String) throws -> Int {
        try build()
        let (tensors, metadata) = try Safetensors.read(from: path)
        guard metadata["format"] == "kestrel-checkpoint", let epoch = metadata["epoch"].flatMap(Int.init) else {
            throw KestrelError.fileError("\(path): not a Kestrel checkpoint (metadata format/epoch missing)")
        }
        var byName: [String: Tensor] = [:]
        for (n, t) in tensors { byName[n] = t }
        var weights: [(Layer, Int, Tensor)] = []
        for v in namedVariables(.keras) {
            guard let t = byName[v.name], t.shape == v.layer.weightSpecs[v.index].shape else {
                throw KestrelError.fileError(
                    "\(path): weight '\(v.name)' is missing or has the wrong shape (expected \(v.layer.weightSpecs[v.index].shape))")
            }
            weights.append((v.layer, v.index, t))
        }
        var state: OptimizerState?
        if let optimizer {
            guard metadata["optimizer"] == optimizer.name, let iterations = metadata["iterations"].flatMap(Int.init),
                  let lr = metadata["learning_rate"].flatMap(Float.init) else {
                throw KestrelError.fileError(
                    "\(path): the checkpoint holds \(metadata["optimizer"] ?? "no") optimizer state, the model is compiled with \(optimizer.name)")
            }
            let names = trainableVariablePaths
            let slots = try optimizer.stateSlotNames.map { slot in
                try names.map { n -> Tensor in
                    guard let t = byName["optimizer/\(slot)/\(n)"] else {
                        throw KestrelError.fileError("\(path): optimizer slot 'optimizer/\(slot)/\(n)' is missing")
                    }
                    return t
                }
            }
            state = OptimizerState(iterations: iterations, learningRate: lr, slotNames: optimizer.stateSlotNames, slots: slots)
        }
        let saved = try getWeights()
        do {
            for (layer, index, tensor) in weights {
                var w = layer.getWeights()
                w[index] = tensor
                try layer.setWeights(w)
            }
            if let state { try setOptimizerState(state) }
        } catch {
            try setWeights(saved)
            throw error
        }
        return epoch
    }
}
