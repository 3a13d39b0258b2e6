"""Trains Keras's mnist_convnet example on Fashion-MNIST and prints its test accuracy.

The same model, data split and schedule as `mnist-cnn --model convnet` (validation_split 0.1
unless --validation-split says otherwise, batch 128, Adam), so Kestrel's accuracy can be
compared with Keras's own on this data:

    python keras-convnet-accuracy.py --epochs 12 --seed 1 [--validation-split 0]

To check that Kestrel trains as Keras does, step for step, take the random streams out:
no dropout, no shuffling, and Kestrel starting from Keras's initial weights:

    python keras-convnet-accuracy.py --epochs 1 --validation-split 0 --dropout 0 --no-shuffle \
        --save-initial-weights /tmp/convnet-init.safetensors
    mnist-cnn --model convnet --epochs 1 --validation-split 0 --dropout 0 --no-shuffle \
        --initial-weights /tmp/convnet-init.safetensors

Seeded as here, Keras's fit on the TensorFlow backend repeats its first epoch's sample order in
every epoch (see keras-epoch-order.py); --reshuffle draws a new order each epoch, as Kestrel's
fit and an unseeded Keras do:

    python keras-convnet-accuracy.py --epochs 12 --seed 1 --validation-split 0 --reshuffle

Reads the IDX files of Debian's dataset-fashion-mnist (or --data DIR).
"""
import argparse
import json
import os
import struct

import numpy as np

import fashion_idx


def save_safetensors(path, named):
    """Writes float32 arrays as safetensors (header length, JSON header, raw little-endian data)."""
    header, offset, blobs = {}, 0, []
    for name, array in named:
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--dropout", type=float, default=0.5, help="rate of the Dropout layer")
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--no-shuffle", action="store_true", help="keep the training samples in file order")
    order.add_argument("--reshuffle", action="store_true",
                        help="draw a new order every epoch (numpy, from --seed): seeded by keras.utils.set_random_seed, "
                             "fit(shuffle=True) on the TensorFlow backend repeats its first epoch's order in every epoch")
    parser.add_argument("--save-initial-weights", metavar="FILE",
                        help="write the initial weights as safetensors with Keras's weight paths, for mnist-cnn --initial-weights")
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    keras.utils.set_random_seed(args.seed)
    x_train, y_train, x_test, y_test = fashion_idx.load(args.data)
    x_train, x_test = x_train[..., None], x_test[..., None]
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dropout(args.dropout), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    if args.save_initial_weights:
        # The paths Keras's .weights.h5 uses (Kestrel's WeightNaming.keras).
        paths = [f"layers/{layer.name}/vars/{i}" for layer in model.layers for i in range(len(layer.weights))]
        save_safetensors(args.save_initial_weights, zip(paths, model.get_weights()))
    if args.reshuffle:
        # One fit call per epoch on a freshly permuted copy; the optimizer's state, its step count
        # and the Dropout seed generator carry over between calls. Keras's validation_split takes
        # the last samples before shuffling, so the split is made here the same way.
        held = int(len(x_train) * args.validation_split)
        keep = len(x_train) - held
        validation = (x_train[keep:], y_train[keep:]) if held else None
        generator = np.random.default_rng(args.seed)
        val_accuracy = []
        for epoch in range(args.epochs):
            p = generator.permutation(keep)
            h = model.fit(x_train[:keep][p], y_train[:keep][p], batch_size=128, epochs=epoch + 1, initial_epoch=epoch,
                          validation_data=validation, shuffle=False, verbose=2)
            val_accuracy += h.history.get("val_accuracy", [])
    else:
        history = model.fit(x_train, y_train, batch_size=128, epochs=args.epochs,
                            validation_split=args.validation_split, shuffle=not args.no_shuffle, verbose=2)
        val_accuracy = history.history.get("val_accuracy", [])
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps(dict(epochs=args.epochs, seed=args.seed, test_loss=loss, test_accuracy=accuracy,
                          val_accuracy=val_accuracy or None, keras=keras.__version__)))


if __name__ == "__main__":
    main()
