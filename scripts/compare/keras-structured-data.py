"""Keras's structured-data tutorial model on a generated heart-disease-like CSV file, to set
beside `kestrel-bench --structured-data FILE`, which trains the same model in Kestrel
(Docs/StructuredData.md). Prints the preprocessing time, each epoch's time, the validation
accuracy and the peak memory.

    # the file (rows like the UCI heart-disease data; the target follows a noisy rule)
    python3 scripts/compare/keras-structured-data.py --write-csv /tmp/heart-like.csv --rows 200000
    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python scripts/compare/keras-structured-data.py /tmp/heart-like.csv --epochs 3

Writing the file needs only NumPy; training needs TensorFlow (the string input, Hashing and
HashedCrossing are TensorFlow ops in Keras 3).
"""
import argparse
import os
import resource
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

NUMERIC = ["trestbps", "chol", "thalach", "oldpeak", "slope"]


def write_csv(path, rows, seed=7):
    rng = np.random.default_rng(seed)
    age = rng.integers(29, 78, rows)
    sex = rng.integers(0, 2, rows)
    cp = rng.integers(0, 5, rows)
    trestbps = rng.integers(94, 201, rows)
    chol = rng.integers(126, 565, rows)
    thalach = rng.integers(71, 203, rows)
    oldpeak = np.round(rng.gamma(1.2, 0.9, rows), 1)
    slope = rng.integers(0, 3, rows)
    ca = rng.integers(0, 4, rows)
    thal = rng.choice(["fixed", "normal", "reversible"], rows, p=[0.1, 0.55, 0.35])
    z = (-1.2 + 0.05 * (age - 54) + 1.3 * sex * (cp >= 2) - 0.03 * (thalach - 150) + 0.7 * oldpeak
         + 1.6 * (thal == "reversible") + 0.5 * ca)
    target = (rng.uniform(size=rows) < 1 / (1 + np.exp(-z))).astype(int)
    with open(path, "w") as f:
        f.write("age,sex,cp,trestbps,chol,thalach,oldpeak,slope,ca,thal,target\n")
        for r in range(rows):
            f.write(f"{age[r]},{sex[r]},{cp[r]},{trestbps[r]},{chol[r]},{thalach[r]},{oldpeak[r]},{slope[r]},"
                    f"{ca[r]},{thal[r]},{target[r]}\n")


def train(path, epochs):
    import keras
    import pandas as pd
    from keras import layers

    keras.utils.set_random_seed(1)
    start = time.perf_counter()
    dataframe = pd.read_csv(path)
    validation = dataframe.sample(frac=0.2, random_state=1337)
    training = dataframe.drop(validation.index)

    def columns(frame):
        return {"age": frame[["age"]].to_numpy("float32"), "sex": frame[["sex"]].to_numpy("int64"),
                "cp": frame[["cp"]].to_numpy("int64"), "ca": frame[["ca"]].to_numpy("int64"),
                "numbers": frame[NUMERIC].to_numpy("float32"), "thal": frame[["thal"]].to_numpy(object)}

    x_train, x_val = columns(training), columns(validation)
    y_train, y_val = training[["target"]].to_numpy("float32"), validation[["target"]].to_numpy("float32")
    normalizer = layers.Normalization()
    normalizer.adapt(x_train["numbers"])
    age_buckets = layers.Discretization(num_bins=4, output_mode="one_hot")
    age_buckets.adapt(x_train["age"])
    thal = layers.StringLookup(output_mode="one_hot")
    thal.adapt(x_train["thal"].reshape(-1))
    inputs = {"age": keras.Input((1,), name="age"), "sex": keras.Input((1,), name="sex", dtype="int64"),
              "cp": keras.Input((1,), name="cp", dtype="int64"), "ca": keras.Input((1,), name="ca", dtype="int64"),
              "numbers": keras.Input((len(NUMERIC),), name="numbers"),
              "thal": keras.Input((1,), name="thal", dtype="string")}
    features = layers.Concatenate()([
        normalizer(inputs["numbers"]), age_buckets(inputs["age"]),
        layers.CategoryEncoding(2, output_mode="one_hot")(inputs["sex"]),
        layers.CategoryEncoding(5, output_mode="one_hot")(inputs["cp"]),
        layers.Hashing(8, output_mode="one_hot")(inputs["ca"]),
        layers.HashedCrossing(16, output_mode="one_hot")((inputs["sex"], inputs["cp"])),
        thal(inputs["thal"]),
    ])
    x = layers.Dense(32, activation="relu")(features)
    x = layers.Dropout(0.5)(x)
    model = keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    print(f"keras: read and adapted {len(dataframe)} rows in {time.perf_counter() - start:.2f} s")

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            print(f"keras: epoch {epoch + 1}: {time.perf_counter() - self.start:.2f} s, "
                  f"loss {logs['loss']:.4f}, val_accuracy {logs['val_accuracy']:.4f}")

    # As the tutorial does: tf.data datasets of feature dictionaries (Keras's fit takes no
    # NumPy string arrays), shuffled like fit shuffles arrays.
    import tensorflow as tf
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(y_train), seed=1).batch(32)
    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(32)
    model.fit(train_ds, epochs=epochs, validation_data=val_ds, verbose=0, callbacks=[Timer()])
    print(f"keras: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


parser = argparse.ArgumentParser()
parser.add_argument("file", nargs="?")
parser.add_argument("--write-csv")
parser.add_argument("--rows", type=int, default=200_000)
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
if args.write_csv:
    write_csv(args.write_csv, args.rows)
    print(f"wrote {args.rows} rows to {args.write_csv}")
elif args.file:
    train(args.file, args.epochs)
else:
    parser.error("give a CSV file to train on, or --write-csv FILE")
