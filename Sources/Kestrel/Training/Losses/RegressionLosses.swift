/// The mean of squared differences (Keras `MeanSquaredError`).
public final class MeanSquaredError: ElementwiseLoss {
    /// A mean squared error loss.
    public init() { super.init(name: "mean_squared_error") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let n = batch * outputShape.reduce(1, *)
        let scale = 2 / Float(n)
        var total: Double = 0
        for i in 0..<n {
            let d = predictions[i] - labels[i]
            total += Double(d * d)
            gradient?[i] = scale * d
        }
        return Float(total / Double(n))
    }
}

/// The mean of absolute differences (Keras `MeanAbsoluteError`).
public final class MeanAbsoluteError: ElementwiseLoss {
    /// A mean absolute error loss.
    public init() { super.init(name: "mean_absolute_error") }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let n = batch * outputShape.reduce(1, *)
        let scale = 1 / Float(n)
        var total: Double = 0
        for i in 0..<n {
            let d = predictions[i] - labels[i]
            total += Double(abs(d))
            gradient?[i] = d > 0 ? scale : (d < 0 ? -scale : 0)
        }
        return Float(total / Double(n))
    }
}

/// Quadratic for small errors and linear beyond `delta` (Keras `Huber`, delta 1).
public final class Huber: ElementwiseLoss {
    /// Where the loss turns from quadratic to linear.
    public let delta: Float

    /// A Huber loss.
    public init(delta: Float = 1) {
        self.delta = delta
        super.init(name: "huber_loss")
    }

    public override func compute(predictions: UnsafePointer<Float>, labels: UnsafePointer<Float>, batch: Int,
                                 outputShape: [Int], gradient: UnsafeMutablePointer<Float>?) -> Float {
        let n = batch * outputShape.reduce(1, *)
        let scale = 1 / Float(n)
        var total: Double = 0
        for i in 0..<n {
            let d = predictions[i] - labels[i]
            let a = abs(d)
            if a <= delta {
                total += Double(0.5 * d * d)
                gradient?[i] = scale * d
            } else {
                total += Double(delta * (a - 0.5 * delta))
                gradient?[i] = scale * (d > 0 ? delta : -delta)
            }
        }
        return Float(total / Double(n))
    }
}
