"""Fashion-MNIST's IDX files (Debian's dataset-fashion-mnist) as numpy arrays, for the comparison scripts."""
import gzip
import os

import numpy as np


def read_idx(path):
    """One gzip-compressed IDX file of unsigned bytes, shaped as its header says."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(directory):
    """(x_train, y_train, x_test, y_test): images as float32 in [0, 1], labels as int64."""
    read = lambda name: read_idx(os.path.join(directory, name))
    return (read("train-images-idx3-ubyte.gz").astype("float32") / 255,
            read("train-labels-idx1-ubyte.gz").astype("int64"),
            read("t10k-images-idx3-ubyte.gz").astype("float32") / 255,
            read("t10k-labels-idx1-ubyte.gz").astype("int64"))
