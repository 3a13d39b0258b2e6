import Foundation

/// A loss function (Keras `keras.losses.Loss`), reduced Keras's default way,
/// `sum_over_batch_size`: the mean over every sample (and every position of a sequence).
///
/// Losses work on raw buffers so that a training step allocates nothing: `compute` returns
/// the reduced loss and writes its gradient with respect to the predictions.
open class Loss {
    /// Keras's name, used in logs and configs (e.g. "sparse_categorical_crossentropy").
    public let name: String

    /// A loss with Keras's snake_case name.
    public init(name: String) { self.name = name }

    /// Scalars per sample in the labels, for predictions of per-sample shape `outputShape`
    /// and labels of per-sample shape `labelShape`; throws when they don't fit.
    open func labelSize(outputShape: [Int], labelShape: [Int]) throws -> Int {
        guard labelShape == outputShape else {
            throw KestrelError.shapeMismatch(
                "\(name): labels of per-sample shape \(labelShape) do not match predictions of shape \(outputShape)")
        }
        return outputShape.reduce(1, *)
    }

    /// The same loss computed from logits, and the output activation it undoes: when a model's
    /// output layer ends in that activation, the loss is computed from the layer's logits.
    open var logitsCounterpart: (activation: ActivationFunction, loss: Loss)? { nil }

    /// Checks label values before training (class indices in range, probabilities in [0, 1]).
    open func validate(labels: UnsafeBufferPointer<Float>, outputShape: [Int]) throws {}

    /// The reduced loss of `batch` samples; writes dLoss/dPrediction into `gradient` if given.
    open func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                      outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        preconditionFailure("\(type(of: self)) does not implement compute")
    }

    /// The loss of `batch` samples weighted per sample, reduced as Keras reduces a weighted
    /// `sum_over_batch_size` loss: Σᵢ wᵢ·lossᵢ / batch, where lossᵢ is sample i's own mean
    /// (over its positions); writes the gradient if given. Each sample is computed alone, so
    /// every loss takes weights without a weighted variant of its own.
    public func computeWeighted(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>,
                                weights: UnsafePointer<Float>, batch: Int, outputShape: [Int], labelSize: Int,
                                gradient: UnsafeMutablePointer<Float>?) -> Float {
        let size = outputShape.reduce(1, *)
        var total: Float = 0
        for i in 0..<batch {
            let value = compute(predictions: predictions + i * size, labels: labels + i * labelSize, batch: 1,
                                outputShape: outputShape, gradient: gradient.map { $0 + i * size })
            total += weights[i] * value
            if let gradient {
                let scale = weights[i] / Float(batch)
                for j in (i * size)..<((i + 1) * size) { gradient[j] *= scale }
            }
        }
        return total / Float(max(batch, 1))
    }

    /// The reduced loss between label and prediction tensors (batch first), like calling a
    /// Keras loss; `sampleWeight` (`[batch]`) weights each sample's loss as Keras does.
    public func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor, sampleWeight: Tensor) throws -> Float {
        _ = try callAsFunction(yTrue, yPred)   // checks shapes and labels
        let n = yPred.shape[0]
        guard sampleWeight.shape == [n] || sampleWeight.shape == [n, 1] else {
            throw KestrelError.shapeMismatch("\(name): sampleWeight needs one weight per sample, shape [\(n)], found \(sampleWeight.shape)")
        }
        let outputShape = Array(yPred.shape.dropFirst())
        let labelSize = try labelSize(outputShape: outputShape, labelShape: Array(yTrue.shape.dropFirst()))
        return yTrue.scalars.withUnsafeBufferPointer { t in
            yPred.scalars.withUnsafeBufferPointer { p in
                sampleWeight.scalars.withUnsafeBufferPointer { w in
                    computeWeighted(predictions: p.baseAddress!, labels: t.baseAddress!, weights: w.baseAddress!,
                                    batch: n, outputShape: outputShape, labelSize: labelSize, gradient: nil)
                }
            }
        }
    }

    /// The reduced loss between label and prediction tensors (batch first), like calling a Keras loss.
    public func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor) throws -> Float {
        guard yPred.rank >= 1, yTrue.rank >= 1, yTrue.shape[0] == yPred.shape[0] else {
            throw KestrelError.shapeMismatch(
                "\(name): labels \(yTrue.shape) and predictions \(yPred.shape) must have the same batch size")
        }
        let outputShape = Array(yPred.shape.dropFirst())
        _ = try labelSize(outputShape: outputShape, labelShape: Array(yTrue.shape.dropFirst()))
        try yTrue.scalars.withUnsafeBufferPointer { try validate(labels: $0, outputShape: outputShape) }
        return yTrue.scalars.withUnsafeBufferPointer { t in
            yPred.scalars.withUnsafeBufferPointer { p in
                compute(predictions: p.baseAddress!, labels: t.baseAddress!, batch: yPred.shape[0],
                        outputShape: outputShape, gradient: nil)
            }
        }
    }

    /// The reduced loss and its gradient with respect to the predictions.
    public func valueAndGradient(_ yTrue: Tensor, _ yPred: Tensor) throws -> (Float, Tensor) {
        _ = try callAsFunction(yTrue, yPred)
        var g = Tensor.zeros(yPred.shape)
        let v = yTrue.scalars.withUnsafeBufferPointer { t in
            yPred.scalars.withUnsafeBufferPointer { p in
                g.scalars.withUnsafeMutableBufferPointer { gp in
                    compute(predictions: p.baseAddress!, labels: t.baseAddress!, batch: yPred.shape[0],
                            outputShape: Array(yPred.shape.dropFirst()), gradient: gp.baseAddress!)
                }
            }
        }
        return (v, g)
    }
}

/// A loss computed element by element between labels and predictions of the same shape.
/// Like Keras, it also accepts labels without the trailing unit axis of a one-unit output.
open class ElementwiseLoss: Loss {
    public override func labelSize(outputShape: [Int], labelShape: [Int]) throws -> Int {
        if outputShape.last == 1 && labelShape == Array(outputShape.dropLast()) { return labelShape.reduce(1, *) }
        return try super.labelSize(outputShape: outputShape, labelShape: labelShape)
    }

    /// Keras's `sum_over_batch_size` of an element-wise loss: the mean of `term(prediction,
    /// label)`'s values over `batch` samples of `outputShape`, its derivatives (divided by the
    /// count) written to `gradient` if given.
    @inline(__always)
    func elementwiseMean(_ predictions: UnsafePointer<Float>, _ labels: UnsafePointer<Float>, batch: Int, outputShape: [Int],
                         gradient: UnsafeMutablePointer<Float>?,
                         _ term: (_ prediction: Float, _ label: Float) -> (value: Float, derivative: Float)) -> Float {
        let n = batch * outputShape.reduce(1, *), scale = 1 / Float(n)
        var total: Double = 0
        for i in 0..<n {
            let (value, derivative) = term(predictions[i], labels[i])
            total += Double(value)
            gradient?[i] = scale * derivative
        }
        return Float(total / Double(n))
    }
}

/// Keras's clipping bound for probabilities (`backend.epsilon()`).
let probabilityEpsilon: Float = 1e-7
