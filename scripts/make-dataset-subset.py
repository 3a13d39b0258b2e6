#!/usr/bin/env python3
"""Regenerate the small Fashion-MNIST subset committed in Datasets/fashion-mnist-subset/.

The subset lets the tests and the tutorial run on a machine that does not have the
full dataset installed. It is cut from the Debian package `dataset-fashion-mnist`
(sudo apt-get install dataset-fashion-mnist), which installs the original gzip'd IDX
files under /usr/share/datasets/fashion-mnist.

The output keeps the original file names so that the Swift loader treats the subset
directory exactly like a full dataset directory. Output is byte-for-byte reproducible:
the samples are the first N of each split (no shuffling), and the gzip header carries
no timestamp or file name (mtime=0), so re-running the script yields the same
SHA256SUMS.

Usage:
    python3 scripts/make-dataset-subset.py [--source DIR] [--output DIR]
                                           [--train N] [--test N] [--check]

Only the Python 3 standard library is used.
"""

import argparse
import gzip
import hashlib
import os
import struct
import sys

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
# Relative to this script so the script works from any current directory.
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              os.pardir, "Datasets", "fashion-mnist-subset")

SPLITS = {
    # split: (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

IMAGES_MAGIC = 0x00000803  # unsigned bytes, rank 3
LABELS_MAGIC = 0x00000801  # unsigned bytes, rank 1


def fail(message):
    sys.exit("make-dataset-subset: " + message)


def read_idx(path, magic):
    """Returns (dimensions, payload) after checking the header against the payload size."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        fail(f"{path}: not found; install it with `sudo apt-get install dataset-fashion-mnist`"
             " or pass --source DIR")
    except (OSError, EOFError) as error:
        fail(f"{path}: cannot decompress: {error}")
    if len(data) < 4:
        fail(f"{path}: expected an IDX header, found {len(data)} bytes")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        fail(f"{path}: expected magic 0x{magic:08x}, found 0x{found:08x}")
    rank = magic & 0xFF
    header = 4 + 4 * rank
    dims = list(struct.unpack(f">{rank}I", data[4:header]))
    expected = 1
    for d in dims:
        expected *= d
    if len(data) - header != expected:
        fail(f"{path}: header declares {dims} = {expected} bytes, found {len(data) - header}")
    return dims, data[header:]


def write_idx(path, magic, dims, payload):
    header = struct.pack(f">I{len(dims)}I", magic, *dims)
    # mtime=0 and no file name in the gzip header keep the output reproducible.
    blob = gzip.compress(header + payload, compresslevel=9, mtime=0)
    with open(path, "wb") as f:
        f.write(blob)
    return blob


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=DEBIAN_DIR,
                        help=f"directory with the full gzip'd IDX files (default {DEBIAN_DIR})")
    parser.add_argument("--output", default=DEFAULT_OUTPUT,
                        help="directory to write the subset to (default Datasets/fashion-mnist-subset)")
    parser.add_argument("--train", type=int, default=2000, help="training samples to keep (default 2000)")
    parser.add_argument("--test", type=int, default=1000, help="test samples to keep (default 1000)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the committed subset holds other samples than a fresh one")
    args = parser.parse_args()

    output = os.path.normpath(args.output)
    if not args.check:
        os.makedirs(output, exist_ok=True)

    sums = []
    mismatches = []
    for split, count in (("train", args.train), ("test", args.test)):
        images_name, labels_name = SPLITS[split]
        image_dims, pixels = read_idx(os.path.join(args.source, images_name), IMAGES_MAGIC)
        label_dims, labels = read_idx(os.path.join(args.source, labels_name), LABELS_MAGIC)
        if image_dims[0] != label_dims[0]:
            fail(f"{split}: {image_dims[0]} images but {label_dims[0]} labels")
        if not 0 < count <= image_dims[0]:
            fail(f"{split}: asked for {count} samples, the source has {image_dims[0]}")

        pixels_per_image = image_dims[1] * image_dims[2]
        subset_pixels = pixels[:count * pixels_per_image]
        subset_labels = labels[:count]

        balance = [subset_labels.count(c) for c in range(10)]
        print(f"{split}: {count} of {image_dims[0]} samples; per class {balance}")

        for name, magic, dims, payload in (
            (images_name, IMAGES_MAGIC, [count] + image_dims[1:], subset_pixels),
            (labels_name, LABELS_MAGIC, [count], subset_labels),
        ):
            path = os.path.join(output, name)
            if args.check:
                # Compares the decompressed content: another zlib version may compress
                # the same bytes differently, which is not a change to the data.
                header = struct.pack(f">I{len(dims)}I", magic, *dims)
                try:
                    with open(path, "rb") as f:
                        blob = f.read()
                    if gzip.decompress(blob) != header + payload:
                        mismatches.append(name)
                except (OSError, EOFError):
                    mismatches.append(name)
                    continue
            else:
                blob = write_idx(path, magic, dims, payload)
            sums.append((hashlib.sha256(blob).hexdigest(), name, len(blob)))

    for digest, name, size in sums:
        print(f"{digest}  {name}  ({size} bytes)")

    if args.check:
        if mismatches:
            fail("differs from a fresh subset: " + ", ".join(mismatches))
        print("the committed subset matches")
        return

    # Same format as `sha256sum`, so `sha256sum -c SHA256SUMS` verifies the files.
    with open(os.path.join(output, "SHA256SUMS"), "w") as f:
        for digest, name, _ in sums:
            f.write(f"{digest}  {name}\n")
    print(f"wrote {len(sums)} files and SHA256SUMS to {output}")


if __name__ == "__main__":
    main()
