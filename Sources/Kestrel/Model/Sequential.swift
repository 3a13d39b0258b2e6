/// Collects layers for `Sequential { … }`.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: Layer) -> [Layer] { [layer] }
    /// `Input(shape:)` inside a Sequential declares its input shape, as in Keras 3.
    public static func buildExpression(_ input: SymbolicTensor) -> [Layer] { [input.layer] }
    public static func buildExpression(_ layers: [Layer]) -> [Layer] { layers }
    /// A model inside a Sequential contributes its layers, which it keeps sharing (the same
    /// weights), preceded by its input declaration.
    public static func buildExpression(_ model: Model) -> [Layer] {
        (model.inputShape.map { [InputLayer(shape: $0)] } ?? []) + model.layers
    }
    public static func buildBlock(_ parts: [Layer]...) -> [Layer] { parts.flatMap { $0 } }
    public static func buildArray(_ parts: [[Layer]]) -> [Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [Layer]?) -> [Layer] { part ?? [] }
    public static func buildEither(first: [Layer]) -> [Layer] { first }
    public static func buildEither(second: [Layer]) -> [Layer] { second }
}

/// A linear stack of layers (Keras `Sequential`). It compiles into the same graph and plan
/// as a Functional model: an input node followed by each layer.
///
/// The input shape comes from a leading `Input(shape:)`/`InputLayer`, from the first layer's
/// `inputShape:` argument, or from the data given to the first `fit`/`predict`.
public final class Sequential: Model {
    private var stack: [Layer]
    private var input: InputLayer?

    /// A model from the layers listed in the builder.
    public init(name: String? = nil, @LayerBuilder _ content: () -> [Layer]) {
        stack = []
        super.init(name: name ?? LayerNames.unique(for: "sequential"))
        for layer in content() { append(layer) }
    }

    /// A model from an array of layers.
    public init(_ layers: [Layer], name: String? = nil) {
        stack = []
        super.init(name: name ?? LayerNames.unique(for: "sequential"))
        for layer in layers { append(layer) }
    }

    private func append(_ layer: Layer) {
        if let inputLayer = layer as? InputLayer {
            // Only a leading input declares the model's input; a nested model's input layer
            // further down adds nothing to a chain.
            if stack.isEmpty && input == nil { input = inputLayer }
            return
        }
        if stack.isEmpty, input == nil, let shape = layer.declaredInputShape {
            input = InputLayer(shape: shape)
        }
        stack.append(layer)
    }

    /// Appends a layer (Keras `add`); checks at once that it fits when the input shape is known.
    public func add(_ layer: Layer) throws {
        if layer is InputLayer && !(stack.isEmpty && input == nil) {
            throw KestrelError.invalidArgument("\(name).add: an InputLayer can only come first")
        }
        append(layer)
        invalidate()
        if input != nil {
            do { try build() } catch {
                stack.removeLast()
                invalidate()
                throw error
            }
        }
    }

    /// Removes and returns the last layer (Keras `pop`).
    @discardableResult
    public func pop() throws -> Layer {
        guard let last = stack.popLast() else {
            throw KestrelError.invalidArgument("\(name).pop: there are no layers to remove")
        }
        invalidate()
        return last
    }

    /// Declares the per-sample input shape and builds the model (Keras `build(input_shape)`;
    /// shape without the batch axis).
    public func build(inputShape: [Int]) throws {
        if let input, input.shape != inputShape {
            throw KestrelError.shapeMismatch("\(name).build: the model's input shape is \(input.shape), found \(inputShape)")
        }
        if input == nil { input = InputLayer(shape: inputShape) }
        invalidate()
        try build()
    }

    override func makeGraph() throws -> ModelGraph {
        if let graph { return graph }
        guard let input else {
            throw KestrelError.notReady(
                "\(name): the input shape is unknown; start with Input(shape:), pass inputShape: to the first layer, or call fit/predict/build(inputShape:)")
        }
        guard !stack.isEmpty else { throw KestrelError.notReady("\(name): the model has no layers") }
        // Keras's Sequential would hand the next layer a list; such layers need the functional API.
        if let l = stack.first(where: \.returnsState) {
            throw KestrelError.invalidArgument(
                "\(name): layer '\(l.name)' (\(l.className)) has returnState, so it returns several tensors; a Sequential model passes one from layer to layer (use the functional API)")
        }
        return ModelGraph.chain(input: input, layers: stack)
    }
}

extension Layer {
    /// Whether a call returns final states besides its output (a recurrent layer, a ConvLSTM
    /// or a `Bidirectional` with `returnState`), which a Sequential model cannot pass on.
    package var returnsState: Bool {
        (self as? RecurrentLayer)?.returnState == true || (self as? Bidirectional)?.returnState == true
            || (self as? BaseConvLSTM)?.returnState == true
    }

    /// Whether the layer's call takes starting states after its sequence (Keras `initial_state`).
    package var takesInitialState: Bool { self is RecurrentLayer || self is Bidirectional || self is BaseConvLSTM }
}
