#!/usr/bin/env python3
"""Loads Kestrel's PyTorch-layout safetensors export of the ported MNIST network into PyTorch's
original `nn.Module` with `load_state_dict(strict=True)` and compares its outputs with
Kestrel's predictions on the same images.

Not run by CI: torch from PyPI pulls gigabytes of CUDA wheels. Run it by hand in an
environment that has torch and numpy (the CPU wheel is enough; the `safetensors` package is
used when installed, otherwise the file is read by the few lines below, which follow the
format's specification):

    swift build -c release --product mnist-cnn
    .build/release/mnist-cnn --model pytorch --epochs 1 --export-pytorch DIR
    python scripts/interop/torch_state_dict_check.py DIR

DIR holds what `mnist-cnn --export-pytorch` writes: net.safetensors (the state_dict),
inputs.json (normalised test images, channels-last, {"shape": [...], "data": [...]}) and
logits.json (Kestrel's predictions for them). Exits with status 1 when the outputs differ
by more than the tolerance.
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_file(path):
    """The tensors of a safetensors file, as `safetensors.torch.load_file` returns them."""
    try:
        from safetensors.torch import load_file as load
        return load(path)
    except ImportError:
        pass
    import struct
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    dtypes = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


class Net(nn.Module):
    """PyTorch's introductory MNIST network (pytorch/examples, mnist), as in
    Docs/MigratingFromPyTorch.md."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        return F.log_softmax(self.fc2(x), dim=1)


def read_tensor(path):
    with open(path) as f:
        t = json.load(f)
    return np.asarray(t["data"], dtype=np.float32).reshape(t["shape"])


def main(directory, tolerance=1e-5):
    net = Net()
    state = load_file(f"{directory}/net.safetensors")
    net.load_state_dict(state, strict=True)
    net.eval()
    images = read_tensor(f"{directory}/inputs.json")                    # (n, 28, 28, 1)
    logits = read_tensor(f"{directory}/logits.json")                    # Kestrel's (n, 10)
    with torch.no_grad():
        # NCHW with standard strides, as ToTensor() gives: a transposed one-channel array has
        # strides that torch takes for channels_last memory, which breaks the module's `view`.
        x = torch.empty(images.shape[0], images.shape[3], images.shape[1], images.shape[2])
        x.copy_(torch.from_numpy(images).permute(0, 3, 1, 2))
        ours = net(x).numpy()
    # The module ends in log_softmax; Kestrel's model outputs the logits it is applied to.
    kestrel = torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()
    difference = float(np.abs(ours - kestrel).max())
    agree = int((ours.argmax(axis=1) == kestrel.argmax(axis=1)).sum())
    print(f"torch {torch.__version__}: load_state_dict(strict=True) accepted {len(state)} tensors "
          f"({', '.join(sorted(state))})")
    print(f"{len(images)} images: max |torch - Kestrel| of log_softmax outputs = {difference:.3g}; "
          f"predicted classes agree on {agree}/{len(images)}")
    return 0 if difference <= tolerance else 1


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], *(float(a) for a in sys.argv[2:])))
