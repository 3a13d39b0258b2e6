#!/usr/bin/env bash
# Regenerates Sources/KestrelONNX/Generated/onnx.pb.swift from Sources/KestrelONNX/Protos/onnx.proto.
#
# The generated Swift is committed, so building Kestrel needs neither protoc nor the plugin;
# run this only after changing onnx.proto (e.g. a newer ONNX release).
#
# Needs:
#   - protoc (Debian: apt-get install protobuf-compiler)
#   - protoc-gen-swift from swift-protobuf at the version Package.swift pins (1.39.0). Build it
#     once from that package's sources, e.g.
#         git clone --branch 1.39.0 https://github.com/apple/swift-protobuf
#         (cd swift-protobuf && swift build -c release --product protoc-gen-swift)
#     and pass its path in PROTOC_GEN_SWIFT, or put it on PATH.
#
# Where onnx.proto comes from: the `onnx` wheel on PyPI ships onnx/onnx.proto, e.g.
#     pip download onnx==1.23.2 --no-deps -d /some/dir && unzip /some/dir/onnx-*.whl onnx/onnx.proto
set -euo pipefail
cd "$(dirname "$0")/.."

plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
if [ -z "$plugin" ] || [ ! -x "$plugin" ]; then
    echo "generate-onnx-proto: set PROTOC_GEN_SWIFT to the protoc-gen-swift binary (swift-protobuf 1.39.0), or put it on PATH" >&2
    exit 1
fi
command -v protoc >/dev/null || { echo "generate-onnx-proto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

protoc --plugin=protoc-gen-swift="$plugin" \
    --proto_path=Sources/KestrelONNX/Protos \
    --swift_out=Sources/KestrelONNX/Generated \
    --swift_opt=Visibility=Internal \
    onnx.proto
echo "generate-onnx-proto: wrote Sources/KestrelONNX/Generated/onnx.pb.swift"
