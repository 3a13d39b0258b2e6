import Foundation
import Kestrel

/// The training side of a `.keras` archive: `compile_config` (optimizer and loss) and the
/// optimizer's variables under `optimizer/vars` in the weights file.
enum KerasTraining {
    // MARK: compile_config

    static func compileConfig(of model: Model) throws -> [String: Any]? {
        guard let optimizer = model.optimizer else { return nil }
        let weights = model.compiledLossWeights
        let metrics = model.compiledMetricNames
        var config: [String: Any] = [
            "optimizer": try optimizerConfig(optimizer),
            "loss_weights": weights.map { $0.map(jsonNumber) as Any } ?? NSNull(),
            "metrics": metrics.allSatisfy(\.isEmpty) ? NSNull() as Any : metrics.count == 1 ? metrics[0] as Any : metrics as Any,
            "weighted_metrics": NSNull(), "run_eagerly": false, "steps_per_execution": 1, "jit_compile": false,
        ]
        let losses = try (model.compiledLosses ?? []).map(lossConfig)
        config["loss"] = losses.isEmpty ? NSNull() as Any : losses.count == 1 ? losses[0] as Any : losses as Any
        return config
    }

    private static func serialized(_ module: String, _ className: String, _ config: [String: Any]) -> [String: Any] {
        ["module": module, "class_name": className, "config": config, "registered_name": NSNull()]
    }

    static func optimizerConfig(_ o: Optimizer) throws -> [String: Any] {
        func optional(_ v: Float?) -> Any { v.map(jsonNumber) ?? NSNull() }
        var c: [String: Any] = [
            "name": o.name, "learning_rate": jsonNumber(o.learningRate), "weight_decay": optional(o.weightDecay),
            "clipnorm": optional(o.clipnorm), "global_clipnorm": optional(o.globalClipnorm),
            "clipvalue": optional(o.clipvalue), "use_ema": o.useEMA, "ema_momentum": jsonNumber(o.emaMomentum),
            "ema_overwrite_frequency": o.emaOverwriteFrequency.map { $0 as Any } ?? NSNull(),
            "loss_scale_factor": NSNull(),
            "gradient_accumulation_steps": o.gradientAccumulationSteps.map { $0 as Any } ?? NSNull(),
        ]
        let className: String
        switch o {
        case let a as AdamW:
            className = "AdamW"
            c["beta_1"] = jsonNumber(a.beta1); c["beta_2"] = jsonNumber(a.beta2)
            c["epsilon"] = jsonNumber(a.epsilon); c["amsgrad"] = a.amsgrad
        case let a as Adam:
            className = "Adam"
            c["beta_1"] = jsonNumber(a.beta1); c["beta_2"] = jsonNumber(a.beta2)
            c["epsilon"] = jsonNumber(a.epsilon); c["amsgrad"] = a.amsgrad
        case let s as SGD:
            className = "SGD"
            c["momentum"] = jsonNumber(s.momentum); c["nesterov"] = s.nesterov
        case let r as RMSprop:
            className = "RMSprop"
            c["rho"] = jsonNumber(r.rho); c["momentum"] = jsonNumber(r.momentum)
            c["epsilon"] = jsonNumber(r.epsilon); c["centered"] = r.centered
        case let a as Adagrad:
            className = "Adagrad"
            c["initial_accumulator_value"] = jsonNumber(a.initialAccumulatorValue); c["epsilon"] = jsonNumber(a.epsilon)
        case let a as Adamax:
            className = "Adamax"
            c["beta_1"] = jsonNumber(a.beta1); c["beta_2"] = jsonNumber(a.beta2); c["epsilon"] = jsonNumber(a.epsilon)
        case let n as Nadam:
            className = "Nadam"
            c["beta_1"] = jsonNumber(n.beta1); c["beta_2"] = jsonNumber(n.beta2); c["epsilon"] = jsonNumber(n.epsilon)
        case let a as Adadelta:
            className = "Adadelta"
            c["rho"] = jsonNumber(a.rho); c["epsilon"] = jsonNumber(a.epsilon)
        case let l as Lion:
            className = "Lion"
            c["beta_1"] = jsonNumber(l.beta1); c["beta_2"] = jsonNumber(l.beta2)
        case let l as Lamb:
            className = "Lamb"
            c["beta_1"] = jsonNumber(l.beta1); c["beta_2"] = jsonNumber(l.beta2); c["epsilon"] = jsonNumber(l.epsilon)
        case let f as Ftrl:
            className = "Ftrl"
            c["learning_rate_power"] = jsonNumber(f.learningRatePower)
            c["initial_accumulator_value"] = jsonNumber(f.initialAccumulatorValue)
            c["l1_regularization_strength"] = jsonNumber(f.l1RegularizationStrength)
            c["l2_regularization_strength"] = jsonNumber(f.l2RegularizationStrength)
            c["l2_shrinkage_regularization_strength"] = jsonNumber(f.l2ShrinkageRegularizationStrength)
            c["beta"] = jsonNumber(f.beta)
        default:
            throw KestrelError.invalidArgument("save: the optimizer '\(o.name)' (\(type(of: o))) has no Keras equivalent")
        }
        return serialized("keras.optimizers", className, c)
    }

    static func lossConfig(_ l: Loss) throws -> [String: Any] {
        var c: [String: Any] = ["name": l.name, "reduction": "sum_over_batch_size"]
        let className: String
        switch l {
        case let s as SparseCategoricalCrossentropy:
            className = "SparseCategoricalCrossentropy"
            c["from_logits"] = s.fromLogits; c["ignore_class"] = NSNull()
        case let s as CategoricalCrossentropy:
            className = "CategoricalCrossentropy"
            c["from_logits"] = s.fromLogits; c["label_smoothing"] = jsonNumber(s.labelSmoothing); c["axis"] = -1
        case let s as BinaryCrossentropy:
            className = "BinaryCrossentropy"
            c["from_logits"] = s.fromLogits; c["label_smoothing"] = jsonNumber(s.labelSmoothing); c["axis"] = -1
        case is MeanSquaredError: className = "MeanSquaredError"
        case is MeanAbsoluteError: className = "MeanAbsoluteError"
        case let h as Huber:
            className = "Huber"
            c["delta"] = jsonNumber(h.delta)
        case is MeanSquaredLogarithmicError: className = "MeanSquaredLogarithmicError"
        case is MeanAbsolutePercentageError: className = "MeanAbsolutePercentageError"
        case is LogCosh: className = "LogCosh"
        case is CosineSimilarity:
            className = "CosineSimilarity"
            c["axis"] = -1
        case is Hinge: className = "Hinge"
        case is SquaredHinge: className = "SquaredHinge"
        case is CategoricalHinge: className = "CategoricalHinge"
        case is KLDivergence: className = "KLDivergence"
        case is Poisson: className = "Poisson"
        case let f as BinaryFocalCrossentropy:
            className = "BinaryFocalCrossentropy"
            c["apply_class_balancing"] = f.applyClassBalancing; c["alpha"] = jsonNumber(f.alpha); c["gamma"] = jsonNumber(f.gamma)
            c["from_logits"] = f.fromLogits; c["label_smoothing"] = jsonNumber(f.labelSmoothing); c["axis"] = -1
        case let f as CategoricalFocalCrossentropy:
            className = "CategoricalFocalCrossentropy"
            c["alpha"] = jsonNumber(f.alpha); c["gamma"] = jsonNumber(f.gamma)
            c["from_logits"] = f.fromLogits; c["label_smoothing"] = jsonNumber(f.labelSmoothing); c["axis"] = -1
        default:
            throw KestrelError.invalidArgument("save: the loss '\(l.name)' (\(type(of: l))) has no Keras equivalent")
        }
        return serialized("keras.losses", className, c)
    }

    /// The optimizer described by a Keras `compile_config.optimizer` (an object or a name).
    static func optimizer(from value: Any?, context: String) throws -> Optimizer {
        var className: String
        var c = JSONObject([:], context: context)
        if let s = value as? String {
            className = s
        } else {
            let o = try JSONObject(any: value, context: context)
            className = try o.string("class_name")
            c = try o.object("config")
        }
        let lr = try c.has("learning_rate") ? c.float("learning_rate") : nil
        let clip = (try c.optionalFloat("clipnorm"), try c.optionalFloat("clipvalue"), try c.optionalFloat("global_clipnorm"))
        let optimizer: Optimizer
        switch className.lowercased() {
        case "adam":
            optimizer = Adam(learningRate: lr ?? 0.001, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                             epsilon: try c.float("epsilon", default: 1e-7), amsgrad: try c.bool("amsgrad", default: false),
                             clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "adamw":
            // Keras's AdamW requires a weight decay; a null one is an error there too.
            optimizer = AdamW(learningRate: lr ?? 0.001, weightDecay: try c.float("weight_decay", default: 0.004),
                              beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                              epsilon: try c.float("epsilon", default: 1e-7), amsgrad: try c.bool("amsgrad", default: false),
                              clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "sgd":
            optimizer = SGD(learningRate: lr ?? 0.01, momentum: try c.float("momentum", default: 0),
                            nesterov: try c.bool("nesterov", default: false),
                            clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "rmsprop":
            optimizer = RMSprop(learningRate: lr ?? 0.001, rho: try c.float("rho", default: 0.9), momentum: try c.float("momentum", default: 0),
                                epsilon: try c.float("epsilon", default: 1e-7), centered: try c.bool("centered", default: false),
                                clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "adagrad":
            optimizer = Adagrad(learningRate: lr ?? 0.001, initialAccumulatorValue: try c.float("initial_accumulator_value", default: 0.1),
                                epsilon: try c.float("epsilon", default: 1e-7),
                                clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "adamax":
            optimizer = Adamax(learningRate: lr ?? 0.001, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                               epsilon: try c.float("epsilon", default: 1e-7), clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "nadam":
            optimizer = Nadam(learningRate: lr ?? 0.001, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                              epsilon: try c.float("epsilon", default: 1e-7), clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "adadelta":
            optimizer = Adadelta(learningRate: lr ?? 0.001, rho: try c.float("rho", default: 0.95), epsilon: try c.float("epsilon", default: 1e-7),
                                 clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "lion":
            optimizer = Lion(learningRate: lr ?? 0.001, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.99),
                             clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "lamb":
            optimizer = Lamb(learningRate: lr ?? 0.001, beta1: try c.float("beta_1", default: 0.9), beta2: try c.float("beta_2", default: 0.999),
                             epsilon: try c.float("epsilon", default: 1e-7), clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        case "ftrl":
            optimizer = Ftrl(learningRate: lr ?? 0.001, learningRatePower: try c.float("learning_rate_power", default: -0.5),
                             initialAccumulatorValue: try c.float("initial_accumulator_value", default: 0.1),
                             l1RegularizationStrength: try c.float("l1_regularization_strength", default: 0),
                             l2RegularizationStrength: try c.float("l2_regularization_strength", default: 0),
                             l2ShrinkageRegularizationStrength: try c.float("l2_shrinkage_regularization_strength", default: 0),
                             beta: try c.float("beta", default: 0), clipnorm: clip.0, clipvalue: clip.1, globalClipnorm: clip.2)
        default:
            throw KestrelError.fileError("\(context): unsupported optimizer '\(className.prefix(60))'")
        }
        if !(optimizer is AdamW) { optimizer.weightDecay = try c.optionalFloat("weight_decay") }
        optimizer.useEMA = try c.bool("use_ema", default: false)
        optimizer.emaMomentum = try c.float("ema_momentum", default: 0.99)
        optimizer.emaOverwriteFrequency = try c.optionalInt("ema_overwrite_frequency")
        optimizer.gradientAccumulationSteps = try c.optionalInt("gradient_accumulation_steps")
        if let factor = try c.optionalFloat("loss_scale_factor"), factor != 1 {
            throw KestrelError.fileError("\(context): loss_scale_factor \(factor) is not supported (Kestrel trains in float32)")
        }
        do {
            try optimizer.validateArguments()
        } catch KestrelError.invalidArgument(let message) {
            throw KestrelError.fileError("\(context): \(message)")
        }
        return optimizer
    }

    /// The loss described by a Keras `compile_config.loss` (an object or a name).
    static func loss(from value: Any?, context: String) throws -> Loss {
        var className: String
        var c = JSONObject([:], context: context)
        if let s = value as? String {
            className = s
        } else {
            let o = try JSONObject(any: value, context: context)
            className = try o.string("class_name")
            c = try o.object("config")
        }
        switch className {
        case "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy":
            return SparseCategoricalCrossentropy(fromLogits: try c.bool("from_logits", default: false))
        case "CategoricalCrossentropy", "categorical_crossentropy":
            return CategoricalCrossentropy(fromLogits: try c.bool("from_logits", default: false),
                                           labelSmoothing: try c.float("label_smoothing", default: 0))
        case "BinaryCrossentropy", "binary_crossentropy":
            return BinaryCrossentropy(fromLogits: try c.bool("from_logits", default: false),
                                      labelSmoothing: try c.float("label_smoothing", default: 0))
        case "MeanSquaredError", "mean_squared_error", "mse": return MeanSquaredError()
        case "MeanAbsoluteError", "mean_absolute_error", "mae": return MeanAbsoluteError()
        case "Huber", "huber": return Huber(delta: try c.float("delta", default: 1))
        case "MeanSquaredLogarithmicError", "mean_squared_logarithmic_error", "msle": return MeanSquaredLogarithmicError()
        case "MeanAbsolutePercentageError", "mean_absolute_percentage_error", "mape": return MeanAbsolutePercentageError()
        case "LogCosh", "log_cosh", "logcosh": return LogCosh()
        case "CosineSimilarity", "cosine_similarity":
            if c.has("axis"), try c.int("axis") != -1 {
                throw KestrelError.fileError("\(context): CosineSimilarity over axis \(try c.int("axis")) is not supported; Kestrel reads axis -1")
            }
            return CosineSimilarity()
        case "Hinge", "hinge": return Hinge()
        case "SquaredHinge", "squared_hinge": return SquaredHinge()
        case "CategoricalHinge", "categorical_hinge": return CategoricalHinge()
        case "KLDivergence", "kl_divergence", "kld", "KLD": return KLDivergence()
        case "Poisson", "poisson": return Poisson()
        case "BinaryFocalCrossentropy", "binary_focal_crossentropy":
            return BinaryFocalCrossentropy(applyClassBalancing: try c.bool("apply_class_balancing", default: false),
                                           alpha: try c.float("alpha", default: 0.25), gamma: try c.float("gamma", default: 2),
                                           fromLogits: try c.bool("from_logits", default: false),
                                           labelSmoothing: try c.float("label_smoothing", default: 0))
        case "CategoricalFocalCrossentropy", "categorical_focal_crossentropy":
            return CategoricalFocalCrossentropy(alpha: try c.float("alpha", default: 0.25), gamma: try c.float("gamma", default: 2),
                                                fromLogits: try c.bool("from_logits", default: false),
                                                labelSmoothing: try c.float("label_smoothing", default: 0))
        default:
            throw KestrelError.fileError("\(context): unsupported loss '\(className.prefix(60))'")
        }
    }

    /// Compiles `model` from a `compile_config` when it names an optimizer and a loss.
    /// Returns whether it compiled.
    static func compile(_ model: Model, from config: JSONObject) throws -> Bool {
        guard config.has("optimizer"), config.has("loss") else { return false }
        let optimizer = try optimizer(from: config.values["optimizer"], context: "\(config.context).optimizer")
        let lossValue = config.values["loss"]
        if let list = lossValue as? [Any] {
            guard list.count == model.outputNames.count else {
                throw KestrelError.fileError("\(config.context).loss: \(list.count) losses for \(model.outputNames.count) outputs")
            }
            let losses = try list.enumerated().map { try loss(from: $1, context: "\(config.context).loss[\($0)]") }
            var weights: [Float]?
            if let w = config.values["loss_weights"] as? [Any] {
                weights = w.compactMap { jsonDouble($0).map(Float.init) }
                guard weights!.count == losses.count else {
                    throw KestrelError.fileError("\(config.context).loss_weights: expected \(losses.count) numbers")
                }
            }
            let metrics = metricNames(config.values["metrics"]).map { names in names.compactMap { try? MetricSpec(named: $0) } }
            model.compile(optimizer: optimizer, losses: losses, lossWeights: weights,
                          metrics: metrics.count == losses.count ? metrics : [])
        } else {
            let metrics = metricNames(config.values["metrics"]).first ?? []
            model.compile(optimizer: optimizer, loss: try loss(from: lossValue, context: "\(config.context).loss"),
                          metrics: metrics.compactMap { try? MetricSpec(named: $0) })
        }
        return true
    }

    /// Metric names from Keras's `metrics` (a list of names or serialized metrics, or a list of
    /// such lists per output). Metrics Kestrel does not know are left out: they only affect logs.
    static func metricNames(_ value: Any?) -> [[String]] {
        func name(_ v: Any) -> String? {
            if let s = v as? String { return s }
            if let o = v as? [String: Any], let c = o["config"] as? [String: Any] { return c["name"] as? String }
            return nil
        }
        guard let list = value as? [Any] else { return [] }
        if list.contains(where: { $0 is [Any] }) {
            return list.map { ($0 as? [Any] ?? []).compactMap(name) }
        }
        return [list.compactMap(name)]
    }

    // MARK: Optimizer variables

    /// Keras's groups of slot names: each group is created variable by variable, names within
    /// a group interleaved (Adam: m₀, v₀, m₁, v₁, …), the groups one after another. The base
    /// optimizer's moving averages and gradient accumulators come first, as Keras's `build`
    /// creates them before the subclass's.
    static func kerasSlotGroups(_ o: Optimizer) -> [[String]] {
        let base = ["average", "gradient_accumulator"].filter(o.stateSlotNames.contains).map { [$0] }
        return base + optimizerSlotGroups(o)
    }

    private static func optimizerSlotGroups(_ o: Optimizer) -> [[String]] {
        switch o {
        case let a as Adam: return a.amsgrad ? [["momentum", "velocity"], ["velocity_hat"]] : [["momentum", "velocity"]]
        case let s as SGD: return s.momentum != 0 ? [["momentum"]] : []
        case let r as RMSprop:
            return [["velocity"]] + (r.momentum > 0 ? [["momentum"]] : []) + (r.centered ? [["average_gradient"]] : [])
        case is Adagrad: return [["accumulator"]]
        case is Adamax: return [["momentum", "norm"]]
        case is Nadam: return [["momentum", "velocity"]]
        case is Adadelta: return [["accumulated_grad", "accumulated_delta_var"]]
        case is Lamb: return [["momentum", "velocity"]]
        case is Ftrl: return [["accumulator", "linear"]]
        default: return o.slotNames.map { [$0] }
        }
    }

    /// Keras's trainable variables in its order, as indices into Kestrel's
    /// `trainableVariableNames` order.
    static func kerasTrainableOrder(_ model: Model, entries: [KerasLayerEntry]) -> [Int] {
        let names = model.trainableVariableNames
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() { index[n] = i }
        var order: [Int] = []
        for entry in entries where entry.layer.trainable {
            for v in KerasModelConfig.kerasVariableOrder(entry.layer) where entry.layer.weightSpecs[v].trainable {
                if let i = index["\(entry.layer.name)/\(entry.layer.weightSpecs[v].name)"] { order.append(i) }
            }
        }
        return order
    }

    /// Writes `optimizer/vars/<i>`: iterations, learning rate, then the slots in Keras's order.
    static func writeOptimizer(_ model: Model, entries: [KerasLayerEntry], to writer: HDF5Writer) throws {
        guard let optimizer = model.optimizer else { return }
        let state = try model.optimizerState()
        try writer.group("optimizer/vars")
        try writer.setAttribute("name", optimizer.name, onGroup: "optimizer/vars")
        try writer.writeInt64Scalar(Int64(state.iterations), at: "optimizer/vars/0")
        try writer.writeFloats([state.learningRate], shape: [], at: "optimizer/vars/1")
        var i = 2
        let order = kerasTrainableOrder(model, entries: entries)
        for group in kerasSlotGroups(optimizer) {
            for v in order {
                for name in group {
                    guard let k = state.slotNames.firstIndex(of: name) else { continue }
                    let t = state.slots[k][v]
                    try writer.writeFloats(t.scalars, shape: t.shape, at: "optimizer/vars/\(i)")
                    i += 1
                }
            }
        }
        // Nadam's momentum-schedule product, a scalar Keras keeps after the slots.
        if let nadam = optimizer as? Nadam {
            let updates = state.iterations / max(nadam.gradientAccumulationSteps ?? 1, 1)
            try writer.writeFloats([nadam.momentumProduct(updates)], shape: [], at: "optimizer/vars/\(i)")
        }
    }

    /// Reads `optimizer/vars` into a state for the model's compiled optimizer; slots Keras
    /// does not create (RMSprop's momentum without momentum) start at zero.
    static func readOptimizer(_ model: Model, entries: [KerasLayerEntry], from reader: HDF5Reader) throws -> OptimizerState? {
        guard let optimizer = model.optimizer, reader.exists("optimizer/vars") else { return nil }
        let current = try model.optimizerState()
        let order = kerasTrainableOrder(model, entries: entries)
        let groups = kerasSlotGroups(optimizer)
        // (Nadam's trailing product is recomputed from the step count rather than read.)
        let expected = 2 + order.count * groups.reduce(0) { $0 + $1.count } + (optimizer is Nadam ? 1 : 0)
        let members = try reader.members(of: "optimizer/vars")
        // Keras may save an optimizer that never ran (no slot variables yet); keep the fresh state.
        guard members.count == expected else {
            if members.count <= 2 { return nil }
            throw KestrelError.fileError(
                "\(reader.displayName): the optimizer state has \(members.count) variables, the \(optimizer.name) optimizer of this model needs \(expected)")
        }
        var state = current
        state.iterations = Int(clamping: try reader.readInt64Scalar("optimizer/vars/0"))
        guard state.iterations >= 0 else {
            throw KestrelError.fileError("\(reader.displayName): negative optimizer iteration count")
        }
        let lr = try reader.readFloats("optimizer/vars/1")
        guard lr.count == 1, lr.scalars[0].isFinite else {
            throw KestrelError.fileError("\(reader.displayName): optimizer/vars/1 should be the learning rate (a finite scalar)")
        }
        state.learningRate = lr.scalars[0]
        var i = 2
        for group in groups {
            for v in order {
                for name in group {
                    let path = "optimizer/vars/\(i)"
                    i += 1
                    guard let k = state.slotNames.firstIndex(of: name) else { continue }
                    let expectedShape = current.slots[k][v].shape
                    let shape = try reader.shape(of: path)
                    guard shape == expectedShape else {
                        throw KestrelError.fileError(
                            "\(reader.displayName): \(path) (\(name) of \(model.trainableVariableNames[v])) has shape \(shape), expected \(expectedShape)")
                    }
                    state.slots[k][v] = try reader.readFloats(path)
                }
            }
        }
        return state
    }
}
