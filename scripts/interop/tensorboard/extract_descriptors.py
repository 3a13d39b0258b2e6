#!/usr/bin/env python3
"""Writes a protobuf FileDescriptorSet of TensorBoard's event-file schema, taken from the
tensorboard wheel on PyPI.

The wheel ships no .proto sources, only the generated `*_pb2.py` modules; each of those embeds
its file's serialized FileDescriptorProto (the argument of `AddSerializedFile`). Those bytes are
exactly what protoc would produce from the .proto file, so a set of them is a faithful input
for `protoc --descriptor_set_in`. Parsing is done with `ast` (no protobuf package needed).

Usage: extract_descriptors.py WHEEL_ROOT OUTPUT.protoset
  WHEEL_ROOT is the directory the wheel was unzipped into (it holds `tensorboard/`).
"""
import ast
import pathlib
import sys

# Only what event.proto and summary.proto need, dependencies before dependants.
FILES = [
    "types", "tensor_shape", "resource_handle", "tensor", "histogram", "summary", "event",
]


def serialized_descriptor(module_path: pathlib.Path) -> bytes:
    tree = ast.parse(module_path.read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "AddSerializedFile" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, bytes)):
            return node.args[0].value
    raise SystemExit(f"{module_path}: no AddSerializedFile(b'...') call found")


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    root = pathlib.Path(sys.argv[1]) / "tensorboard" / "compat" / "proto"
    output = bytearray()
    for name in FILES:
        data = serialized_descriptor(root / f"{name}_pb2.py")
        # FileDescriptorSet.file is field 1, length-delimited: tag byte 0x0A.
        output += b"\x0a" + varint(len(data)) + data
    pathlib.Path(sys.argv[2]).write_bytes(bytes(output))


if __name__ == "__main__":
    main()
