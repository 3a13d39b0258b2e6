@testable import Kestrel
import KestrelAllocationCounter
import XCTest

/// A training step must not touch the heap once its plan exists (DESIGN.md: "a training step
/// then runs the plan with no heap allocation").
final class AllocationTests: XCTestCase {
    func testCounterSeesAllocations() throws {
        try XCTSkipUnless(kestrel_allocation_counter_active() != 0,
                          "the allocation counter is not interposed in this test binary")
        let before = kestrel_allocation_count()
        let array = [Int](repeating: 1, count: 1000)
        XCTAssertEqual(array.count, 1000)
        XCTAssertGreaterThan(kestrel_allocation_count(), before)
    }

    func testTutorialMLPTrainingStepAllocatesNothing() throws {
        let model = Sequential {
            Flatten(inputShape: [28, 28])
            Dense(128, activation: .relu)
            Dense(10)
        }
        model.compile(optimizer: Adam(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let x = Tensor.randomUniform([64, 28, 28])
        let y = Tensor(labels: (0..<64).map { $0 % 10 })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 32, steps: 50)
    }

    func testEveryOptimizerAndLossStepAllocatesNothing() throws {
        let optimizers: [() -> Optimizer] = [
            { SGD(momentum: 0.9, nesterov: true) }, { Adam(amsgrad: true) }, { AdamW() },
            { RMSprop(centered: true) }, { Adagrad() }, { Adam(clipnorm: 1, clipvalue: 0.5, globalClipnorm: 1) },
            { Lamb() }, { Ftrl(l1RegularizationStrength: 0.01, l2ShrinkageRegularizationStrength: 0.01) },
            {
                // Every base option at once: decay with an exclusion, averaging, accumulation.
                let o = Nadam(weightDecay: 0.1, useEMA: true, emaOverwriteFrequency: 3, gradientAccumulationSteps: 2)
                o.excludeFromWeightDecay(names: ["bias"])
                return o
            },
        ]
        for make in optimizers {
            let model = Sequential {
                Dense(8, activation: .gelu, inputShape: [5])
                Dense(1, activation: .sigmoid)
            }
            model.compile(optimizer: make(), loss: BinaryCrossentropy(), metrics: [.accuracy])
            let x = Tensor.randomUniform([40, 5])
            let y = Tensor(labels: (0..<40).map { $0 % 2 })
            try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 16, steps: 50)
        }
    }

    /// Layers not in the models above: every reshaping, pooling, convolution variant and
    /// activation layer in one model (size-dependent scratch and per-call arrays both show here).
    func testLayerCatalogTrainingStepAllocatesNothing() throws {
        let model = Sequential {
            Input(shape: [10, 10, 3])
            Rescaling(0.5, offset: 0.1)
            Normalization(axis: [2, 3])
            RandomFlip()
            RandomRotation(0.1)
            RandomZoom(heightFactor: 0.2, widthFactor: 0.1, fillMode: .constant)
            RandomTranslation(heightFactor: 0.1, widthFactor: 0.2, fillMode: .wrap, interpolation: .nearest)
            RandomContrast(0.2, valueRange: -2...2)
            RandomBrightness(0.1, valueRange: -2...2)
            RandomInvert(valueRange: -2...2)
            RandomGrayscale()
            RandomCrop(9, 9)
            Resizing(12, 9)
            ZeroPadding2D(padding: 1)
            Conv2D(8, kernelSize: 3, strides: 2, padding: .same, dilationRate: 1, groups: 1, activation: .elu)
            Conv2D(8, kernelSize: 3, padding: .same, dilationRate: 2, groups: 2, activation: .gelu)
            GroupNormalization(groups: 4)
            PReLU(sharedAxes: [1, 2])
            GaussianNoise(0.1)
            SeparableConv2D(6, kernelSize: 3, padding: .same, depthMultiplier: 2, activation: .swish)
            Cropping2D(cropping: 1)
            UpSampling2D(size: 2)
            Conv2DTranspose(4, kernelSize: 3, strides: 2, padding: .same, outputPadding: 1)
            UpSampling2D(size: [1, 2], interpolation: .bilinear)
            LeakyReLU()
            MaxPooling2D(poolSize: 3, strides: 2, padding: .same)
            GlobalMaxPooling2D()
            RepeatVector(5)
            ZeroPadding1D(padding: [1, 2])
            UpSampling1D(size: 2)
            Cropping1D(cropping: [2, 1])
            Conv1DTranspose(5, kernelSize: 3, strides: 2, padding: .same, outputPadding: 1)
            Conv1D(7, kernelSize: 2, padding: .causal, activation: .tanh)
            MaxPooling1D(poolSize: 2)
            SpatialDropout1D(0.3)
            Permute([2, 1])
            AveragePooling1D(poolSize: 2)
            Reshape([-1])
            Dense(12, activation: .selu)
            AlphaDropout(0.1)
            GaussianDropout(0.2)
            ELU(alpha: 0.5)
            Identity()
            UnitNormalization()
            Softmax()
            Dense(4)
        }
        model.compile(optimizer: RMSprop(), loss: SparseCategoricalCrossentropy(fromLogits: true), metrics: [.accuracy])
        let x = Tensor.randomUniform([16, 10, 10, 3])
        let y = Tensor(labels: (0..<16).map { $0 % 4 })
        try assertTrainingStepsAllocateNothing(model, x: x, y: y, batchSize: 8)
    }

    /// Every merging layer, shared inputs and attention in a Functional graph.
    func testMergingLayersAllocateNothing() throws {
        let input = Input(shape: [6, 5])
        let a = try Dense(8, activation: .relu)(input)
        let b = try Dense(8)(input)
        let dot = try Dot(axes: 2, normalize: true)([a, b])                 // (6, 6)
        let added = try Add()([a, b])
        let mult = try Multiply()([a, b])
        let sub = try Subtract()([added, mult])
        let mx = try Maximum()([sub, a])
        let mn = try Minimum()([mx, b])
        let av = try Average()([mn, a])
        let cat = try Concatenate()([av, b, dot])
        let ln = try LayerNormalization()(cat)
        let att = try MultiHeadAttention(numHeads: 2, keyDim: 4)([ln, ln])
        let dotAttention = try Attention(useScale: true, dropout: 0.2)([att, ln])
        let additive = try AdditiveAttention(dropout: 0.1)([dotAttention, b, try Dense(22)(b)])
        let concat = try Attention(scoreMode: .concat)([additive, b])
        let pooled = try GlobalAveragePooling1D()(concat)
        let out = try Dense(3, activation: .softmax)(pooled)
        let model = try Model(inputs: input, outputs: out)
        model.compile(optimizer: SGD(momentum: 0.9), loss: CategoricalCrossentropy(), metrics: [.accuracy])
        let x = Tensor.randomUniform([16, 6, 5])
        var onehot = Tensor.zeros([16, 3])
        for i in 0..<16 { onehot.scalars[i * 3 + i % 3] = 1 }
        try assertTrainingStepsAllocateNothing(model, x: x, y: onehot, batchSize: 8)
    }

    /// Integer inputs through Embedding and a sequence-returning LSTM, a regression loss and metrics.
    func testEmbeddingRecurrentRegressionStepAllocatesNothing() throws {
        let model = Sequential {
            Input(shape: [7])
            Embedding(inputDim: 20, outputDim: 6)
            LSTM(9, returnSequences: true)
            GlobalMaxPooling1D()
            Dense(2)
        }
        model.compile(optimizer: Adagrad(), loss: Huber(),
                      metrics: [.meanAbsoluteError, "root_mean_squared_error", "logcosh", "cosine_similarity", "mape"])
        var xs = Tensor.zeros([16, 7])
        for i in 0..<xs.scalars.count { xs.scalars[i] = Float(i % 20) }
        let y = Tensor.randomUniform([16, 2])
        try assertTrainingStepsAllocateNothing(model, x: xs, y: y, batchSize: 8)
    }

    /// The focal cross-entropies in a training step (their per-row loops keep no state).
    func testFocalLossStepsAllocateNothing() throws {
        let x = Tensor.randomUniform([16, 5])
        let onehot = Tensor(shape: [16, 3], scalars: (0..<48).map { $0 % 3 == ($0 / 3) % 3 ? 1 : 0 })
        let categorical = Sequential { Input(shape: [5]); Dense(3) }
        categorical.compile(optimizer: Nadam(), loss: CategoricalFocalCrossentropy(fromLogits: true))
        try assertTrainingStepsAllocateNothing(categorical, x: x, y: onehot, batchSize: 8)
        let binary = Sequential { Input(shape: [5]); Dense(3, activation: .sigmoid) }
        binary.compile(optimizer: Lion(), loss: BinaryFocalCrossentropy(applyClassBalancing: true))
        try assertTrainingStepsAllocateNothing(binary, x: x, y: onehot, batchSize: 8)
    }
}
