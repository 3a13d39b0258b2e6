"""Trains Keras's mnist_convnet example on Fashion-MNIST and prints its test accuracy.

The same model, data split and schedule as `mnist-cnn --model convnet` (validation_split 0.1
unless --validation-split says otherwise, batch 128, Adam), so Kestrel's accuracy can be
compared with Keras's own on this data:

    python keras-convnet-accuracy.py --epochs 12 --seed 1 [--validation-split 0]

Reads the IDX files of Debian's dataset-fashion-mnist (or --data DIR).
"""
import argparse
import gzip
import json
import os

import numpy as np


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    keras.utils.set_random_seed(args.seed)
    load = lambda name: idx(os.path.join(args.data, name))
    x_train = load("train-images-idx3-ubyte.gz").astype("float32")[..., None] / 255
    y_train = load("train-labels-idx1-ubyte.gz").astype("int64")
    x_test = load("t10k-images-idx3-ubyte.gz").astype("float32")[..., None] / 255
    y_test = load("t10k-labels-idx1-ubyte.gz").astype("int64")
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, validation_split=args.validation_split, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps(dict(epochs=args.epochs, seed=args.seed, test_loss=loss, test_accuracy=accuracy,
                          val_accuracy=history.history.get("val_accuracy"), keras=keras.__version__)))


if __name__ == "__main__":
    main()
