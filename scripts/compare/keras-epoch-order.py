"""Prints the order in which Keras's fit(shuffle=True) feeds samples, epoch by epoch.

On the TensorFlow backend, once keras.utils.set_random_seed has been called (as every script
that wants reproducible runs does), fit repeats its first epoch's order in every epoch; without
a seed it draws a new order each epoch, as Kestrel's fit always does (from the fit's seed and
the epoch). This matters when comparing accuracies over seeds with Keras's: the seeded Keras
runs of keras-convnet-accuracy.py train on one fixed order unless --reshuffle is given.

    python keras-epoch-order.py            # seeded: the same order three times
    python keras-epoch-order.py --no-seed  # three different orders
"""
import argparse
import os


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-seed", action="store_true", help="do not call keras.utils.set_random_seed")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    if not args.no_seed:
        keras.utils.set_random_seed(1)
    seen = []

    def record(x):
        seen.extend(x.numpy().ravel().astype(int).tolist())
        return x

    class Record(keras.layers.Layer):
        """Passes its input through, noting in training which samples (their index) it saw."""

        def call(self, x, training=False):
            if not training:
                return x
            y = tf.py_function(record, [x], tf.float32)
            y.set_shape(x.shape)
            return y

    model = keras.Sequential([keras.Input((1,)), Record(), keras.layers.Dense(1)])
    model.compile("sgd", "mse", jit_compile=False)
    x = np.arange(args.samples, dtype="float32").reshape(-1, 1)
    model.fit(x, np.zeros(args.samples), batch_size=5, epochs=args.epochs, shuffle=True, verbose=0)
    n = args.samples
    for epoch in range(args.epochs):
        print(f"epoch {epoch + 1}:", " ".join(map(str, seen[epoch * n:(epoch + 1) * n])))
    orders = {tuple(seen[e * n:(e + 1) * n]) for e in range(args.epochs)}
    print(f"{len(orders)} distinct orders in {args.epochs} epochs (keras {keras.__version__}, "
          f"tensorflow {tf.__version__}, {'no seed' if args.no_seed else 'keras.utils.set_random_seed(1)'})")


if __name__ == "__main__":
    main()
