#!/usr/bin/env python3
"""scikit-learn's MLPClassifier against KestrelLearn's (Docs/Performance.md): Fashion-MNIST with
hidden (128,), batch 32, 5 iterations, adam, pixels scaled by /255, both in the same session.

Run from a virtual environment with scikit-learn 1.9, for example:
    python3 -m venv "$TMPDIR/sk-venv" && "$TMPDIR/sk-venv/bin/pip" install 'scikit-learn==1.9.*'
    "$TMPDIR/sk-venv/bin/python" scripts/compare-sklearn.py [--data DIR] [--seed N] [--no-kestrel]
DIR defaults to Debian's /usr/share/datasets/fashion-mnist (dataset-fashion-mnist). After
scikit-learn, the script runs Kestrel's side, `swift run -c release learn-compare`, from the
repository root (building it first if needed; the build time is not measured) and prints the ratio.
"""
import argparse
import gzip
import os
import platform
import re
import struct
import subprocess
import sys
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
    parser.add_argument("--no-kestrel", dest="kestrel", action="store_false",
                        help="run scikit-learn's side only")
    parser.add_argument("--skip-build", action="store_true",
                        help="run the learn-compare already built instead of building it first")
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
    start, cpu_start = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    accuracy = clf.score(x_test, y_test)
    print(f"scikit-learn {sklearn.__version__} numpy {np.__version__} python {platform.python_version()}")
    print(f"train {x_train.shape} test {x_test.shape}")
    print(f"scikit-learn MLPClassifier fit: {seconds:.2f} s (CPU {cpu:.2f} s) for {clf.n_iter_} iterations, loss curve "
          + ", ".join(f"{v:.4f}" for v in clf.loss_curve_))
    print(f"scikit-learn test accuracy: {accuracy:.4f}")
    sys.stdout.flush()
    if args.kestrel:
        run_kestrel(args, seconds, cpu, accuracy)


def run_kestrel(args, sklearn_seconds, sklearn_cpu, sklearn_accuracy):
    """Builds and runs learn-compare, then prints both fit times side by side."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not args.skip_build:
        subprocess.run(["swift", "build", "-c", "release", "--product", "learn-compare"], cwd=root, check=True,
                       stdout=subprocess.DEVNULL)
    command = ["swift", "run", "-c", "release", "--skip-build", "learn-compare", "--data", args.data,
               "--seed", str(args.seed), "--iterations", str(args.iterations)]
    output = subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout
    print(output, end="")
    fit = re.search(r"MLPClassifier fit: ([0-9.]+) s \(CPU ([0-9.]+) s\)", output)
    accuracy = re.search(r"KestrelLearn test accuracy: ([0-9.]+)", output)
    if fit and accuracy:
        kestrel_seconds, kestrel_cpu = float(fit.group(1)), float(fit.group(2))
        print(f"scikit-learn {sklearn_seconds:.2f} s (CPU {sklearn_cpu:.2f} s, accuracy {sklearn_accuracy:.4f}) vs "
              f"KestrelLearn {kestrel_seconds:.2f} s (CPU {kestrel_cpu:.2f} s, accuracy {float(accuracy.group(1)):.4f}): "
              f"KestrelLearn takes {kestrel_seconds / sklearn_seconds:.2f} of scikit-learn's wall time "
              f"({sklearn_seconds / kestrel_seconds:.1f}x faster), {kestrel_cpu / sklearn_cpu:.2f} of its CPU time")


if __name__ == "__main__":
    main()
