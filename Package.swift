// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Kestrel",
    products: [
        .library(name: "Kestrel", targets: ["Kestrel"]),
        .library(name: "KestrelDatasets", targets: ["KestrelDatasets"]),
        .library(name: "KestrelTensorBoard", targets: ["KestrelTensorBoard"]),
        .library(name: "KestrelLearn", targets: ["KestrelLearn"]),
        .executable(name: "fashion-mnist", targets: ["fashion-mnist"]),
        .executable(name: "kestrel-bench", targets: ["kestrel-bench"]),
        .library(name: "KestrelKeras", targets: ["KestrelKeras"]),
        .library(name: "KestrelONNX", targets: ["KestrelONNX"]),
        .executable(name: "kestrel", targets: ["kestrel"]),
        .executable(name: "mnist-cnn", targets: ["mnist-cnn"]),
        .executable(name: "functional-examples", targets: ["functional-examples"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // Not "CZlib": ZIPFoundation (used by KestrelKeras) has a module of that name on Linux.
        .systemLibrary(
            name: "CKestrelZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "CKestrelSupport", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "CKestrelKernels",
            // No errno from sqrtf, so the loops vectorise; -ffp-contract=off keeps results
            // identical between the AVX2/FMA clone and the baseline one.
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno", "-ffp-contract=off"])]
        ),
        .target(
            name: "Kestrel",
            dependencies: ["CBLAS", "CKestrelSupport", "CKestrelKernels"]
        ),
        // PNG and JPEG decoding (Debian's libpng-dev, libjpeg-dev) for image folders.
        .target(name: "CKestrelImage", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        .target(
            name: "KestrelDatasets",
            dependencies: ["Kestrel", "CKestrelZlib", "CKestrelImage", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        .target(name: "KestrelLearn", dependencies: ["Kestrel"]),
        .target(name: "KestrelAllocationCounter"),
        // HDF5 (Debian's libhdf5-dev, serial build) for Keras's `.weights.h5`, kept out of
        // the core target.
        .systemLibrary(name: "CHDF5", providers: [.apt(["libhdf5-dev"])]),
        .target(
            name: "KestrelKeras",
            dependencies: ["Kestrel", "CHDF5", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        .target(
            name: "KestrelONNX",
            dependencies: ["Kestrel", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Protos"]
        ),
        .executableTarget(
            name: "kestrel",
            dependencies: [
                "Kestrel", "KestrelDatasets", "KestrelKeras", "KestrelONNX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // TensorBoard event files (protobuf) in a module of their own, so the core has no
        // protobuf dependency; Protos/ holds the schema the generated code came from.
        .target(
            name: "KestrelTensorBoard",
            dependencies: ["Kestrel", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Protos"]
        ),
        // A child process for BackupAndRestore's kill-and-resume test.
        .executableTarget(name: "kestrel-resume-probe", dependencies: ["Kestrel"]),
        .executableTarget(
            name: "fashion-mnist",
            dependencies: [
                "Kestrel", "KestrelDatasets", "KestrelTensorBoard", "KestrelKeras", "KestrelONNX",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "functional-examples",
            dependencies: [
                "Kestrel", "KestrelDatasets",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "mnist-cnn",
            dependencies: [
                "Kestrel", "KestrelDatasets",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // KestrelLearn's side of the scikit-learn comparison (scripts/compare-sklearn.py).
        .executableTarget(
            name: "learn-compare",
            dependencies: [
                "Kestrel", "KestrelDatasets", "KestrelLearn",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "kestrel-bench",
            dependencies: [
                "Kestrel", "KestrelDatasets", "KestrelAllocationCounter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "KestrelTests",
            dependencies: ["Kestrel", "KestrelAllocationCounter", "kestrel-resume-probe"],
            exclude: ["make_fixtures.py", "make_text_fixtures.py", "make_weight_fixtures.py", "make_hash_fixtures.py",
                      "make_structured_fixtures.py", "make_metric_fixtures.py"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "KestrelTensorBoardTests", dependencies: ["KestrelTensorBoard", "KestrelDatasets"]),
        // .keras, .weights.h5 and ONNX together: they share the Python interop venv helpers.
        .testTarget(
            name: "KestrelSavingTests",
            dependencies: ["KestrelKeras", "KestrelONNX", "KestrelDatasets", .product(name: "ZIPFoundation", package: "ZIPFoundation")]
        ),
        .testTarget(name: "KestrelCLITests", dependencies: ["kestrel", "KestrelKeras"]),
        .testTarget(
            name: "KestrelDatasetsTests",
            dependencies: ["KestrelDatasets", "functional-examples"],
            exclude: ["make_image_fixtures.py", "make_sequence_fixtures.py", "make_numpy_fixtures.py", "make_audio_fixtures.py"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "KestrelLearnTests", dependencies: ["KestrelLearn", "KestrelDatasets", "KestrelAllocationCounter"]),
    ]
)
