/// A 2-D convolution over `(height, width, channels)` samples (Keras `Conv2D`).
///
/// The kernel has Keras's layout `kernelSize + (inChannels / groups, filters)`.
public final class Conv2D: BaseConv {
    /// A 2-D convolution with `filters` output channels and a `kernelSize` window
    /// (`3` or `[3, 5]`); defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, groups: Int = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros, kernelRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                biasConstraint: Constraint? = nil, activityRegularizer: Regularizer? = nil, inputShape: [Int]? = nil,
                name: String? = nil) {
        super.init(rank: 2, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   dilationRate: dilationRate, groups: groups, activation: activation, useBias: useBias,
                   kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        self.activityRegularizer = activityRegularizer
    }
}

/// A 1-D convolution over `(steps, channels)` samples (Keras `Conv1D`); padding may also be
/// `.causal`.
///
/// The kernel has Keras's layout `(kernelSize, inChannels / groups, filters)`.
public final class Conv1D: BaseConv {
    /// A 1-D convolution with `filters` output channels and a window of `kernelSize` steps;
    /// defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, groups: Int = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros, kernelRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                biasConstraint: Constraint? = nil, activityRegularizer: Regularizer? = nil, inputShape: [Int]? = nil,
                name: String? = nil) {
        super.init(rank: 1, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   dilationRate: dilationRate, groups: groups, activation: activation, useBias: useBias,
                   kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        self.activityRegularizer = activityRegularizer
    }
}

/// A 3-D convolution over `(depth, height, width, channels)` samples (Keras `Conv3D`), as used
/// on video clips and volumetric scans.
///
/// The kernel has Keras's layout `kernelSize + (inChannels / groups, filters)`.
public final class Conv3D: BaseConv {
    /// A 3-D convolution with `filters` output channels and a `kernelSize` window
    /// (`3` or `[2, 3, 3]`); defaults as in Keras.
    public init(_ filters: Int, kernelSize: SpatialSize, strides: SpatialSize = 1, padding: Padding = .valid,
                dilationRate: SpatialSize = 1, groups: Int = 1, activation: ActivationFunction = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros, kernelRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, kernelConstraint: Constraint? = nil,
                biasConstraint: Constraint? = nil, activityRegularizer: Regularizer? = nil, inputShape: [Int]? = nil,
                name: String? = nil) {
        super.init(rank: 3, filters: filters, kernelSize: kernelSize, strides: strides, padding: padding,
                   dilationRate: dilationRate, groups: groups, activation: activation, useBias: useBias,
                   kernelInitializer: kernelInitializer, biasInitializer: biasInitializer,
                   kernelRegularizer: kernelRegularizer, biasRegularizer: biasRegularizer,
                   kernelConstraint: kernelConstraint, biasConstraint: biasConstraint,
                   inputShape: inputShape, name: name)
        self.activityRegularizer = activityRegularizer
    }
}
