// The models of Docs/FunctionalAPI.md, built with the Functional API.
import Kestrel

/// A residual MLP: the second block's output is added back to its input (a skip connection).
func residualModel() throws -> Model {
    let inputs = Input(shape: [28, 28], name: "image")
    let x = try Flatten()(inputs)
    let h = try Dense(128, activation: .relu, name: "block_in")(x)
    let branch = try Dense(128, activation: .relu, name: "branch_1")(h)
    let branchOut = try Dense(128, name: "branch_2")(branch)
    let sum = try Add(name: "skip")([h, branchOut])
    let merged = try Activation(.relu)(sum)
    let outputs = try Dense(10, name: "logits")(merged)
    return try Model(inputs: inputs, outputs: outputs, name: "residual_mlp")
}

/// Two inputs (the image and a vector of 28 row brightnesses) and two outputs (the class and
/// the fraction of bright pixels).
func twoHeadedModel() throws -> Model {
    let image = Input(shape: [28, 28], name: "image")
    let profile = Input(shape: [28], name: "row_profile")
    let imageFeatures = try Dense(128, activation: .relu, name: "image_features")(try Flatten()(image))
    let profileFeatures = try Dense(16, activation: .relu, name: "profile_features")(profile)
    let joined = try Concatenate(name: "joined")([imageFeatures, profileFeatures])
    let classOut = try Dense(10, name: "class_out")(joined)
    let coverageOut = try Dense(1, activation: .sigmoid, name: "coverage_out")(joined)
    return try Model(inputs: [image, profile], outputs: [classOut, coverageOut], name: "two_headed")
}

/// The second model's extra input and regression target, derived from images in [0, 1]:
/// the mean of each row, and the fraction of pixels brighter than 0.5.
func rowProfilesAndCoverage(_ images: Tensor) throws -> (profiles: Tensor, coverage: Tensor) {
    let n = images.shape[0]
    let profiles = try images.mean(alongAxis: 2)
    var coverage = [Float](repeating: 0, count: n)
    images.scalars.withUnsafeBufferPointer { px in
        for i in 0..<n {
            var bright = 0
            for j in 0..<784 where px[i * 784 + j] > 0.5 { bright += 1 }
            coverage[i] = Float(bright) / 784
        }
    }
    return (profiles, Tensor(shape: [n, 1], scalars: coverage))
}
