"""Keras trains the small convnet of `kestrel-bench --image-training MODE --image-folder DIR`
on a folder read by image_dataset_from_directory (batches decoded from disk as training goes,
as Keras's "image classification from scratch" tutorial does), printing each epoch's time
and the peak memory. Make the folder with keras-image-folder.py (2,000 JPEGs in 5 classes).

    KERAS_BACKEND=tensorflow /tmp/tf-venv/bin/python scripts/compare/keras-image-folder-fit.py DIR [--epochs 2]
"""
import argparse
import os
import resource
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import layers  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("folder")
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()

keras.utils.set_random_seed(1)
data = keras.utils.image_dataset_from_directory(args.folder, image_size=(180, 180), batch_size=32, seed=1,
                                                verbose=False)
data = data.prefetch(2)  # as the tutorial does: decode the next batches while training
model = keras.Sequential([
    keras.Input(shape=(180, 180, 3)),
    layers.Rescaling(1.0 / 255),
    layers.Conv2D(16, 3, strides=2, activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(32, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, activation="relu"),
    layers.GlobalAveragePooling2D(),
    layers.Dense(5),
])
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        print(f"epoch {epoch + 1}: {time.perf_counter() - self.start:.2f} s, loss {logs['loss']:.4f}, "
              f"accuracy {logs['accuracy']:.4f}")


start = time.perf_counter()
model.fit(data, epochs=args.epochs, verbose=0, callbacks=[EpochTimer()])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"keras streamed: {args.epochs} epochs in {time.perf_counter() - start:.2f} s; peak resident memory {peak:.0f} MB")
