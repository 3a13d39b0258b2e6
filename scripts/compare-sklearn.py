#!/usr/bin/env python3
"""scikit-learn's side of the Kestrel comparison (Docs/ScikitLearnStyle.md): MLPClassifier on
Fashion-MNIST with hidden (128,), batch 32, 5 iterations, adam, pixels scaled by /255.

Run from a virtual environment with scikit-learn 1.9, for example:
    python3 -m venv /tmp/sk-venv && /tmp/sk-venv/bin/pip install 'scikit-learn==1.9.*'
    /tmp/sk-venv/bin/python scripts/compare-sklearn.py [--data DIR] [--seed N]
DIR defaults to Debian's /usr/share/datasets/fashion-mnist (dataset-fashion-mnist).
"""
import argparse
import gzip
import os
import platform
import struct
import time
import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier


def read_idx(path):
    """An IDX file (gzip or plain) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{stem}[.gz] not in {directory}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()

    def load(kind):
        x = read_idx(find(args.data, f"{kind}-images-idx3-ubyte")).reshape(-1, 784)
        y = read_idx(find(args.data, f"{kind}-labels-idx1-ubyte"))
        # float32 as Kestrel; scikit-learn then trains in float32 too.
        return x.astype(np.float32) / 255, y

    x_train, y_train = load("train")
    x_test, y_test = load("t10k")
    clf = MLPClassifier(hidden_layer_sizes=(128,), batch_size=32, max_iter=args.iterations,
                        solver="adam", random_state=args.seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    accuracy = clf.score(x_test, y_test)
    print(f"scikit-learn {sklearn.__version__} numpy {np.__version__} python {platform.python_version()}")
    print(f"train {x_train.shape} test {x_test.shape}")
    print(f"fit: {seconds:.2f} s for {clf.n_iter_} iterations, loss curve "
          + ", ".join(f"{v:.4f}" for v in clf.loss_curve_))
    print(f"test accuracy: {accuracy:.4f}")


if __name__ == "__main__":
    main()
