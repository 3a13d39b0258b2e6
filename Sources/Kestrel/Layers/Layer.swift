import Foundation
import Synchronization

/// A weight variable a layer declares: its name, shape, how it starts, and whether the
/// optimizer updates it.
public struct WeightSpec: Sendable, Equatable {
    /// The variable's name within its layer (Keras: "kernel", "bias", …).
    public var name: String
    /// The variable's shape (Keras's layout, e.g. Dense's kernel is (inputDim, units)).
    public var shape: [Int]
    /// How the variable starts.
    public var initializer: Initializer
    /// Whether the optimizer updates it (moving statistics are not trainable).
    public var trainable: Bool

    /// A weight specification.
    public init(name: String, shape: [Int], initializer: Initializer, trainable: Bool = true) {
        self.name = name
        self.shape = shape
        self.initializer = initializer
        self.trainable = trainable
    }

    /// The number of scalars.
    public var count: Int { shape.reduce(1, *) }
}

/// One flat buffer of parameters and one of their gradients, shared by all layers of a model.
final class ParameterStore: @unchecked Sendable {
    let count: Int
    let values: UnsafeMutablePointer<Float>
    let gradients: UnsafeMutablePointer<Float>

    init(count: Int) {
        self.count = count
        let n = max(count, 1)
        values = .allocate(capacity: n)
        values.initialize(repeating: 0, count: n)
        gradients = .allocate(capacity: n)
        gradients.initialize(repeating: 0, count: n)
    }

    deinit {
        values.deallocate()
        gradients.deallocate()
    }
}

/// Everything a layer's forward and backward kernels see during one plan step.
///
/// A plan creates one context per layer call when it is built; a step only updates `batch`
/// and `training`, so running a step allocates nothing.
public final class LayerContext {
    /// Rows in this step (at most the plan's batch capacity).
    public internal(set) var batch: Int = 0
    /// Whether this is a training step (dropout and batch statistics active).
    public internal(set) var training: Bool = false
    /// The per-sample shapes of the inputs (no batch axis).
    public let inputShapes: [[Int]]
    /// The per-sample output shape (no batch axis).
    public let outputShape: [Int]
    /// Input buffers, `batch × inputSize` each.
    public internal(set) var inputs: [UnsafeMutablePointer<Float>]
    /// The output buffer, `batch × outputSize`.
    public internal(set) var output: UnsafeMutablePointer<Float>
    /// The gradient of the loss with respect to the output (backward only).
    public internal(set) var outputGradient: UnsafeMutablePointer<Float>?
    /// Where to write the gradient with respect to each input; nil when nobody needs it.
    public internal(set) var inputGradients: [UnsafeMutablePointer<Float>?]
    /// The layer's weights, one pointer per `WeightSpec`, into the model's flat buffer.
    public internal(set) var weights: [UnsafeMutablePointer<Float>]
    /// The gradients of the layer's weights, one pointer per `WeightSpec`.
    public internal(set) var weightGradients: [UnsafeMutablePointer<Float>]
    /// Whether backward adds to the weight gradients (a shared layer's second call) instead
    /// of overwriting them.
    public internal(set) var accumulateWeightGradients = false
    /// Scratch memory the layer asked for with `workspaceSize`, kept between forward and backward.
    public internal(set) var workspace: UnsafeMutablePointer<Float>
    /// A generator for this call's randomness (dropout masks).
    public var generator: RandomGenerator
    /// Set when the loss is computed from this layer's logits (the values before its final
    /// sigmoid or softmax, see `Layer.logitsActivation`): forward stores them here (unless
    /// they are the layer's input), and `outputGradient` is then the gradient with respect to
    /// them, so backward skips the activation's derivative.
    public internal(set) var logits: UnsafeMutablePointer<Float>?
    /// Set by the plan on a convolution whose only reader is a pooling layer: the convolution
    /// pools each tile of its output while the tile is in cache, and the pooling layer's own
    /// forward and backward are skipped.
    var fusedPooling: PoolingPass?
    /// Each input's mask `(batch, positions)`: 1 where a step (or position) takes part, 0 where
    /// it is padding (Keras's `_keras_mask`); nil for an input without a mask.
    public internal(set) var inputMasks: [UnsafeMutablePointer<Float>?]
    /// Where a layer whose `maskHandling` is `.compute` writes its output's mask in forward.
    public internal(set) var outputMask: UnsafeMutablePointer<Float>?
    /// Buffers for the outputs after the first (`Layer.additionalOutputShapes`, a recurrent
    /// layer's final states); nil where the model does not read that output.
    public internal(set) var additionalOutputs: [UnsafeMutablePointer<Float>?] = []
    /// The gradients with respect to those outputs (backward only); nil where none flows.
    public internal(set) var additionalOutputGradients: [UnsafeMutablePointer<Float>?] = []

    init(inputShapes: [[Int]], outputShape: [Int], inputs: [UnsafeMutablePointer<Float>],
         output: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<Float>,
         weights: [UnsafeMutablePointer<Float>], weightGradients: [UnsafeMutablePointer<Float>],
         generator: RandomGenerator) {
        self.inputShapes = inputShapes
        self.outputShape = outputShape
        self.inputs = inputs
        self.output = output
        self.inputGradients = inputs.map { _ in nil }
        self.inputMasks = inputs.map { _ in nil }
        self.workspace = workspace
        self.weights = weights
        self.weightGradients = weightGradients
        self.generator = generator
    }

    /// The first input buffer.
    public var input: UnsafeMutablePointer<Float> { inputs[0] }
    /// The first input's mask, if it has one.
    public var inputMask: UnsafeMutablePointer<Float>? { inputMasks[0] }
    /// The first input's gradient buffer, if needed.
    public var inputGradient: UnsafeMutablePointer<Float>? { inputGradients[0] }
    /// Scalars per sample of the first input.
    public var inputSize: Int { inputShapes[0].reduce(1, *) }
    /// Scalars per sample of the output.
    public var outputSize: Int { outputShape.reduce(1, *) }
}

/// What a layer's output mask is (`Layer.maskHandling`).
public enum MaskHandling: Sendable, Equatable {
    /// The output has no mask.
    case none
    /// The output has the first input's mask, unchanged.
    case propagate
    /// The layer writes its output's mask `(batch, positions)` to `LayerContext.outputMask` in
    /// forward; positions are the output's axes except the last.
    case compute
}

/// The base class of every layer (Keras `keras.layers.Layer`).
///
/// A layer declares its weights, infers its output shape from its input shape (throwing a
/// message that names the layer and both shapes when they don't fit), and runs forward and
/// backward kernels over buffers a plan hands it. Shapes here never include the batch axis.
open class Layer {
    /// The layer's unique name (Keras style: `dense`, `dense_1`, …).
    public var name: String
    /// Whether the optimizer updates this layer's trainable weights.
    public var trainable: Bool = true
    /// Per-sample input shape declared at construction (Keras `input_shape`), if any.
    public let declaredInputShape: [Int]?

    /// The per-sample input shapes, once the layer is built.
    public internal(set) var builtInputShapes: [[Int]]?
    /// The per-sample output shape, once the layer is built.
    public internal(set) var builtOutputShape: [Int]?
    /// The weight variables, once the layer is built.
    public internal(set) var weightSpecs: [WeightSpec] = []

    var store: ParameterStore?
    var storeOffset = 0
    /// Randomness for initialisers and per-call generators, split from the global generator
    /// when the layer is created so that creation order fixes the weights.
    var generator: RandomGenerator

    /// Creates a layer; `name` defaults to a unique snake_case name from the class.
    public init(name: String? = nil, inputShape: [Int]? = nil) {
        self.declaredInputShape = inputShape
        self.generator = GlobalRandom.split()
        self.name = name ?? LayerNames.unique(for: LayerNames.snakeCase(String(describing: type(of: self))))
    }

    /// The Keras class name shown by `summary()` (the Swift type name by default).
    open var className: String { String(describing: type(of: self)) }

    // MARK: Overridable behaviour

    /// The output shape for the given input shapes (single-input layers override
    /// `outputShape(for:)` instead).
    open func outputShape(forInputs shapes: [[Int]]) throws -> [Int] {
        guard shapes.count == 1 else {
            throw KestrelError.shapeMismatch("\(name) (\(className)): expected 1 input, found \(shapes.count)")
        }
        return try outputShape(for: shapes[0])
    }

    /// The output shape for one input shape; the identity by default.
    open func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    /// The per-sample shapes of the outputs a call returns after its first (Keras layers
    /// that return a list: a recurrent layer's states with `returnState`); none by default.
    open func additionalOutputShapes(forInputs shapes: [[Int]]) -> [[Int]] { [] }

    /// Whether a built layer may be called again on other input shapes that need the same
    /// weights (a recurrent layer on sequences of another length, Dense on another leading
    /// shape), as Keras allows; other layers must be called on the shapes they were built for.
    open var acceptsOtherShapesWithSameWeights: Bool { false }

    /// The weight variables the layer needs for these input shapes; none by default.
    open func weightSpecs(forInputs shapes: [[Int]]) throws -> [WeightSpec] { [] }

    /// The floating-point operations of the layer's products and convolutions for `batch`
    /// samples (a multiply-add counts as two; element-wise work is not counted). Zero for
    /// layers without such arithmetic.
    open func flops(batch: Int, inputShapes: [[Int]]) -> LayerFLOPs { LayerFLOPs() }

    /// Fills a weight variable when the layer is built: with its spec's initializer by default.
    /// Layers whose Keras initial values are not one initializer's (LSTM's unit forget bias)
    /// override it, drawing from `generator` so that creation order still fixes the weights.
    open func initializeWeight(_ index: Int, spec: WeightSpec, _ buffer: UnsafeMutableBufferPointer<Float>) {
        spec.initializer.fill(buffer, shape: spec.shape, generator: &generator)
    }

    /// Scratch floats this layer needs between forward and backward for a batch.
    open func workspaceSize(batch: Int, inputShapes: [[Int]], training: Bool) -> Int { 0 }

    /// Whether the output is the input reinterpreted (same scalars, same order), so a plan
    /// can skip the layer and share the buffer (Flatten, Reshape, inference-time Dropout).
    open func isIdentity(training: Bool) -> Bool { false }

    /// Whether backward needs the layer's input values (if not, a plan may reuse that buffer).
    open var backwardNeedsInput: Bool { true }

    /// Whether, in training, a sample's output depends on the other samples of its batch
    /// (BatchNormalization's batch statistics, RandomCrop's one window per batch), so that
    /// `TimeDistributed` must call it once per step, as Keras 3 does, not on all steps at once.
    open var couplesSamplesInTraining: Bool { false }

    /// The sigmoid or softmax the layer applies last, when a cross-entropy loss on its output
    /// may be computed from the values before it instead (Keras's TensorFlow backend does the
    /// same with `_keras_logits`): exact, and no gradient lost to a saturated activation.
    open var logitsActivation: ActivationFunction? { nil }

    /// Whether the output keeps the (first) input's mask (Keras `supports_masking`): true for
    /// layers that work on each step (or position) alone, such as Dense, activations, dropout
    /// and normalization over features. A mask reaching a layer without it ends there, as in
    /// Keras.
    open var supportsMasking: Bool { false }

    /// What the layer does with masks, given which inputs carry one (Keras `compute_mask`):
    /// by default the first input's mask passes through when `supportsMasking`. Layers that
    /// make a mask (Embedding's `maskZero`, Masking) or combine masks (merges) return
    /// `.compute`; layers that would need a mask Keras uses and Kestrel does not throw here,
    /// naming themselves.
    open func maskHandling(inputsMasked: [Bool], training: Bool) throws -> MaskHandling {
        supportsMasking && inputsMasked.first == true ? .propagate : .none
    }

    /// Writes the output's mask to `context.outputMask` (1 kept, 0 masked, one value per output
    /// position); the plan calls it after `forward` for layers whose `maskHandling` is `.compute`.
    open func forwardMask(_ context: LayerContext) {
        preconditionFailure("\(className) computes a mask but does not implement forwardMask(_:)")
    }

    /// Whether those logits are the layer's input (an activation layer) rather than values the
    /// layer computes (Dense).
    open var logitsAreInput: Bool { false }

    /// Computes the output from the inputs.
    open func forward(_ context: LayerContext) {
        preconditionFailure("\(className) does not implement forward(_:)")
    }

    /// Computes input gradients (where requested) and weight gradients from the output gradient.
    open func backward(_ context: LayerContext) {
        preconditionFailure("\(className) does not implement backward(_:)")
    }

    /// Keras-style configuration (name, arguments) for summaries and saving.
    open var config: [String: String] { ["name": name] }

    /// Each weight's regularizer, in weight order (nil: none). Layers taking Keras's
    /// `*_regularizer` arguments set it in their initialiser; the default
    /// `regularizationPenalty` applies it.
    public var weightRegularizers: [Regularizer?] = []

    /// Each weight's constraint, in weight order (nil: none), applied by the default
    /// `applyConstraints`.
    public var weightConstraints: [Constraint?] = []

    /// A penalty on the layer's output added to the loss (Keras `activity_regularizer`, which
    /// every Keras layer takes): the regularizer of each batch's output divided by the batch
    /// size, as Keras 3 does, in training and in evaluation.
    public var activityRegularizer: Regularizer?

    /// The penalty the layer's weight regularizers add to the loss for the current weights;
    /// when `addGradients` is set it also adds the penalty's gradient to the weight gradients.
    /// Called once per step, so it must not allocate.
    open func regularizationPenalty(addGradients: Bool) -> Float {
        weightPenalty(self, weightRegularizers, addGradients: addGradients)
    }

    /// Projects the weights onto the layer's constraints after an optimizer step (Keras
    /// `kernel_constraint`).
    open func applyConstraints() { constrainWeights(self, weightConstraints) }

    /// Whether `regularizationPenalty` or `applyConstraints` do anything, so a model calls
    /// them only for the layers that need it.
    open var hasWeightPenaltiesOrConstraints: Bool {
        weightRegularizers.contains { $0 != nil } || weightConstraints.contains { $0 != nil }
    }

    /// The `index`-th weight variable in the current store (no allocation).
    public func weightPointer(_ index: Int) -> UnsafeMutablePointer<Float> {
        var offset = storeOffset
        for i in 0..<index { offset += weightSpecs[i].count }
        return store!.values + offset
    }

    /// The gradient of the `index`-th weight variable in the current store (no allocation).
    public func gradientPointer(_ index: Int) -> UnsafeMutablePointer<Float> {
        var offset = storeOffset
        for i in 0..<index { offset += weightSpecs[i].count }
        return store!.gradients + offset
    }

    // MARK: Building and weights

    /// Whether the layer has weights.
    public var isBuilt: Bool { builtInputShapes != nil }

    /// Builds the layer for a per-sample input shape: infers the output shape and creates and
    /// initialises its weights. Returns the output shape.
    @discardableResult
    public func build(inputShape: [Int]) throws -> [Int] { try build(inputShapes: [inputShape]) }

    /// Builds the layer for several per-sample input shapes (merge layers).
    @discardableResult
    public func build(inputShapes: [[Int]]) throws -> [Int] {
        if let built = builtInputShapes {
            if built != inputShapes, acceptsOtherShapesWithSameWeights,
               let specs = try? weightSpecs(forInputs: inputShapes), specs.map(\.shape) == weightSpecs.map(\.shape) {
                return try outputShape(forInputs: inputShapes)
            }
            guard built == inputShapes else {
                throw KestrelError.shapeMismatch(
                    "\(name) (\(className)): built for input shape \(describeShapes(built)), called with \(describeShapes(inputShapes))")
            }
            return builtOutputShape!
        }
        let out = try outputShape(forInputs: inputShapes)
        let specs = try weightSpecs(forInputs: inputShapes)
        let total = specs.reduce(0) { $0 + $1.count }
        let own = ParameterStore(count: total)
        var offset = 0
        for (index, spec) in specs.enumerated() {
            initializeWeight(index, spec: spec,
                             UnsafeMutableBufferPointer(start: own.values + offset, count: spec.count))
            offset += spec.count
        }
        weightSpecs = specs
        store = own
        storeOffset = 0
        storeDidChange()
        builtInputShapes = inputShapes
        builtOutputShape = out
        return out
    }

    /// The number of scalars in the layer's weights.
    public var parameterCount: Int { weightSpecs.reduce(0) { $0 + $1.count } }
    /// The number of scalars in weights the optimizer updates.
    public var trainableParameterCount: Int {
        trainable ? weightSpecs.filter(\.trainable).reduce(0) { $0 + $1.count } : 0
    }

    /// Pointers to each weight variable inside the current store.
    func weightPointers() -> [UnsafeMutablePointer<Float>] {
        guard let store else { return [] }
        var p = store.values + storeOffset
        return weightSpecs.map { spec in defer { p += spec.count }; return p }
    }

    func gradientPointers() -> [UnsafeMutablePointer<Float>] {
        guard let store else { return [] }
        var p = store.gradients + storeOffset
        return weightSpecs.map { spec in defer { p += spec.count }; return p }
    }

    /// Moves the weights into `newStore` at `offset` (a model gathering its flat buffer).
    func rebind(to newStore: ParameterStore, offset: Int) {
        if let store {
            (newStore.values + offset).update(from: store.values + storeOffset, count: parameterCount)
        }
        store = newStore
        storeOffset = offset
        storeDidChange()
    }

    /// Called when the layer's weights move to another store (built, or gathered into a
    /// model's flat buffer); a wrapper points the layer it wraps at the same weights here.
    func storeDidChange() {}

    /// The current weights as tensors, in `weightSpecs` order (Keras `get_weights`).
    public func getWeights() -> [Tensor] {
        zip(weightSpecs, weightPointers()).map { spec, p in
            Tensor(shape: spec.shape, scalars: Array(UnsafeBufferPointer(start: p, count: spec.count)))
        }
    }

    /// Replaces the weights; shapes must match `weightSpecs` (Keras `set_weights`).
    public func setWeights(_ tensors: [Tensor]) throws {
        guard isBuilt else {
            throw KestrelError.notReady("\(name).setWeights: the layer is not built yet; build it or its model first")
        }
        guard tensors.count == weightSpecs.count else {
            throw KestrelError.shapeMismatch(
                "\(name).setWeights: expected \(weightSpecs.count) arrays (\(weightSpecs.map(\.name).joined(separator: ", "))), found \(tensors.count)")
        }
        for (spec, t) in zip(weightSpecs, tensors) where spec.shape != t.shape {
            throw KestrelError.shapeMismatch(
                "\(name).setWeights: '\(spec.name)' expects shape \(spec.shape), found \(t.shape)")
        }
        for ((spec, t), p) in zip(zip(weightSpecs, tensors), weightPointers()) {
            t.scalars.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: spec.count) }
        }
    }

    /// Runs the layer on a batch (first axis) outside any model, in inference mode unless
    /// `training` is set; builds it on first use.
    public func callAsFunction(_ x: Tensor, training: Bool = false) throws -> Tensor {
        guard x.rank >= 1 else {
            throw KestrelError.shapeMismatch("\(name) (\(className)): expected a batch of samples, found a scalar")
        }
        let sample = Array(x.shape.dropFirst())
        let outShape = try build(inputShape: sample)
        let batch = x.shape[0]
        var out = Tensor.zeros([batch] + outShape)
        let ws = workspaceSize(batch: batch, inputShapes: [sample], training: training)
        let workspace = UnsafeMutablePointer<Float>.allocate(capacity: max(ws, 1))
        workspace.initialize(repeating: 0, count: max(ws, 1))
        defer { workspace.deallocate() }
        var input = x.scalars
        input.withUnsafeMutableBufferPointer { inp in
            out.scalars.withUnsafeMutableBufferPointer { o in
                let ctx = LayerContext(inputShapes: [sample], outputShape: outShape,
                                       inputs: [inp.baseAddress!], output: o.baseAddress!,
                                       workspace: workspace, weights: weightPointers(),
                                       weightGradients: gradientPointers(), generator: generator.split())
                ctx.batch = batch
                ctx.training = training
                if isIdentity(training: training) {
                    o.baseAddress!.update(from: inp.baseAddress!, count: o.count)
                } else {
                    forward(ctx)
                }
            }
        }
        return out
    }
}

func describeShapes(_ shapes: [[Int]]) -> String {
    shapes.count == 1 ? "\(shapes[0])" : "\(shapes)"
}

/// Keras-style layer names: unique per process (`dense`, `dense_1`, …) and Keras's
/// snake_case of class names, which also names weight groups in Keras's files.
public enum LayerNames {
    static let counters = Mutex([String: Int]())

    static func unique(for base: String) -> String {
        counters.withLock { counts in
            let n = counts[base, default: 0]
            counts[base] = n + 1
            return n == 0 ? base : "\(base)_\(n)"
        }
    }

    /// `LeakyReLU` → `leaky_re_lu`, `Conv2D` → `conv2d`, with Keras's `to_snake_case` rules:
    /// an underscore before each capitalised word that follows something, then between a
    /// lower-case letter and a capital.
    public static func snakeCase(_ name: String) -> String {
        let word = try! NSRegularExpression(pattern: "(.)([A-Z][a-z]+)")
        let camel = try! NSRegularExpression(pattern: "([a-z])([A-Z])")
        var s = name.filter { $0.isLetter || $0.isNumber || $0 == "_" }
        s = word.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: "$1_$2")
        s = camel.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: "$1_$2")
        return s.lowercased()
    }
}

/// The arithmetic of one layer call (`Layer.flops`): a multiply-add counts as two operations.
public struct LayerFLOPs: Sendable, Equatable {
    /// The forward pass.
    public var forward = 0
    /// The weight gradients of a backward pass.
    public var weightGradients = 0
    /// The input gradients of a backward pass (done only where an earlier layer needs them).
    public var inputGradients = 0

    /// Counts for a forward pass and its two backward halves.
    public init(forward: Int = 0, weightGradients: Int = 0, inputGradients: Int = 0) {
        self.forward = forward
        self.weightGradients = weightGradients
        self.inputGradients = inputGradients
    }

    /// A layer whose three passes are one product of `multiplyAdds` each (Dense, convolutions).
    init(product multiplyAdds: Int) {
        self.init(forward: 2 * multiplyAdds, weightGradients: 2 * multiplyAdds, inputGradients: 2 * multiplyAdds)
    }
}
