#!/usr/bin/env bash
# Regenerates the swift-protobuf code of module KestrelTensorBoard from TensorBoard's event-file
# schema (Event, Summary, HistogramProto, TensorProto and what they import).
#
#   scripts/generate-tensorboard-protos.sh                # regenerate from the committed schema
#   scripts/generate-tensorboard-protos.sh --refresh      # first re-extract the schema from PyPI
#
# Inputs
#   Sources/KestrelTensorBoard/Protos/tensorboard.protoset — a FileDescriptorSet of
#   tensorboard/compat/proto/{types,tensor_shape,resource_handle,tensor,histogram,summary,event}.proto
#   taken from the `tensorboard` wheel on PyPI (version below). The wheel ships no .proto sources,
#   only `*_pb2.py` modules that embed each file's serialized descriptor;
#   scripts/interop/tensorboard/extract_descriptors.py collects those into the set. `--refresh`
#   downloads the wheel (`pip download tensorboard==VERSION --no-deps`) and rewrites the set and
#   the licence beside it.
#
# Tools
#   protoc                 Debian: apt-get install protobuf-compiler
#   protoc-gen-swift       the swift-protobuf plugin at the version Package.swift resolves
#                          (1.39.0). Build it once:
#                            git clone --branch 1.39.0 https://github.com/apple/swift-protobuf
#                            cd swift-protobuf && swift build -c release --product protoc-gen-swift
#                          then put .build/release on PATH or set PROTOC_GEN_SWIFT to the binary.
set -euo pipefail

TENSORBOARD_VERSION=2.21.0
here="$(cd "$(dirname "$0")/.." && pwd)"
module="$here/Sources/KestrelTensorBoard"
protoset="$module/Protos/tensorboard.protoset"
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"

command -v protoc >/dev/null || { echo "protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
[ -n "$plugin" ] && [ -x "$plugin" ] || {
    echo "protoc-gen-swift not found: set PROTOC_GEN_SWIFT or put it on PATH (see the header of $0)" >&2
    exit 1
}

if [ "${1:-}" = "--refresh" ]; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    python3 -m pip download "tensorboard==$TENSORBOARD_VERSION" --no-deps --quiet -d "$work"
    (cd "$work" && python3 -m zipfile -e tensorboard-*.whl unpacked)
    mkdir -p "$module/Protos"
    python3 "$here/scripts/interop/tensorboard/extract_descriptors.py" "$work/unpacked" "$protoset"
    cp "$work"/unpacked/tensorboard-*.dist-info/licenses/LICENSE "$module/Protos/LICENSE" 2>/dev/null \
        || cp "$work"/unpacked/tensorboard-*.dist-info/LICENSE "$module/Protos/LICENSE"
fi

[ -f "$protoset" ] || { echo "missing $protoset (run with --refresh)" >&2; exit 1; }
rm -rf "$module/Generated"
mkdir -p "$module/Generated"
# Internal visibility: the messages are an implementation detail of the module's writer.
protoc --descriptor_set_in="$protoset" \
    --plugin=protoc-gen-swift="$plugin" \
    --swift_out="$module/Generated" \
    --swift_opt=Visibility=Internal \
    --swift_opt=FileNaming=DropPath \
    tensorboard/compat/proto/types.proto \
    tensorboard/compat/proto/tensor_shape.proto \
    tensorboard/compat/proto/resource_handle.proto \
    tensorboard/compat/proto/tensor.proto \
    tensorboard/compat/proto/histogram.proto \
    tensorboard/compat/proto/summary.proto \
    tensorboard/compat/proto/event.proto
echo "generated: $(ls "$module/Generated" | tr '\n' ' ')"
